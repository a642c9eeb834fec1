"""The web client in real headless Chromium, with a fake camera fed from a real clip, against a real server.

The walker page's Web Audio, speech and vibration calls are observed by wrapping the browser's own APIs
(the calls still go through); the page under test is not modified.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from tests.conftest import empty_scene, free_port, read_frames, start_server
from vision.alerts import NOTICE_KINDS
from vision.phrases import COACH_PHRASES
from vision.pipeline import Pipeline
from vision.types import Analysis, Hazard

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # The camera and the walker are two phones, each page in front on its own screen; in one browser
    # here, so hidden tabs must not have their timers throttled to once a second.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]
ROOT = Path(__file__).resolve().parents[1]

RECORDER = """
(() => {
  const log = [];
  window.__played = log;
  const now = () => performance.now();
  const start = OscillatorNode.prototype.start;
  // The page renders its stop ahead in an OfflineAudioContext: those nodes are not heard when made.
  const Offline = window.OfflineAudioContext;
  const live = (node) => !(Offline && node.context instanceof Offline);
  OscillatorNode.prototype.start = function (...a) {
    if (live(this)) log.push({ what: "tone", freq: this.frequency.value, wave: this.type, at: now() });
    return start.apply(this, a);
  };
  const stop = OscillatorNode.prototype.stop;
  OscillatorNode.prototype.stop = function (...a) {
    if (a.length === 0 && live(this)) log.push({ what: "tone_off", freq: this.frequency.value, at: now() });
    return stop.apply(this, a);
  };
  // A looping buffer is the stop rendered ahead (the dead man's switch): when it would sound, and whether
  // it was stopped before then. Other buffers are spoken phrases.
  const later = (node, when) => now() + Math.max(0, ((when || 0) - node.context.currentTime) * 1000);
  const play = AudioBufferSourceNode.prototype.start;
  AudioBufferSourceNode.prototype.start = function (...a) {
    if (!live(this)) {
      // rendered ahead, not heard now
    } else if (this.loop) {
      this.__entry = { what: "stop_loop", at: now(), sounds_at: later(this, a[0]), stopped_at: null };
      log.push(this.__entry);
    } else {
      log.push({ what: "phrase", seconds: this.buffer ? this.buffer.duration : 0, at: now() });
    }
    return play.apply(this, a);
  };
  const halt = AudioBufferSourceNode.prototype.stop;
  AudioBufferSourceNode.prototype.stop = function (...a) {
    if (this.__entry && this.__entry.stopped_at === null) this.__entry.stopped_at = later(this, a[0]);
    return halt.apply(this, a);
  };
  // When each server message arrives, before the page's own handler runs.
  const WS = window.WebSocket;
  window.WebSocket = function (...a) {
    const ws = new WS(...a);
    ws.addEventListener("message", (ev) => {
      if (typeof ev.data !== "string") return;
      const m = JSON.parse(ev.data);
      if (m.type !== "cue") return;
      log.push({ what: "cue_msg", tier: m.tier, kind: m.kind, side: m.side, text: m.text, at: now() });
    });
    return ws;
  };
  window.WebSocket.prototype = WS.prototype;
  for (const k of ["CONNECTING", "OPEN", "CLOSING", "CLOSED"]) window.WebSocket[k] = WS[k];
  const connect = AudioNode.prototype.connect;
  AudioNode.prototype.connect = function (dest, ...a) {
    if (this instanceof StereoPannerNode) log.push({ what: "pan", pan: this.pan.value, at: now() });
    return connect.call(this, dest, ...a);
  };
  if (window.speechSynthesis) {
    const speak = speechSynthesis.speak.bind(speechSynthesis);
    speechSynthesis.speak = (u) => {
      if (u.text.trim()) log.push({ what: "speech", text: u.text, at: now() });
      return speak(u);
    };
  }
  if (navigator.vibrate) {
    const vib = navigator.vibrate.bind(navigator);
    navigator.vibrate = (p) => { log.push({ what: "vibrate", pattern: p, at: now() }); return vib(p); };
  }
})();
"""


def write_y4m(path: Path, frames: list[np.ndarray], fps: int) -> None:
    h, w = frames[0].shape[:2]
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())


@pytest.fixture(scope="module")
def fake_camera(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five seconds of a real person facing the camera, then five of the same place without her."""
    person = [cv2.resize(f, (360, 640)) for f in read_frames("squats_facing_camera.mp4", limit=25)]
    # The empty place as a camera films it: no two frames alike (a frozen picture is a lost camera)
    empty = [cv2.resize(empty_scene(seed=i), (360, 640)) for i in range(50)]
    frames = [person[i // 2] for i in range(50)] + empty  # 10 fps
    path = tmp_path_factory.mktemp("cam") / "walker_leaves.y4m"
    write_y4m(path, frames, fps=10)
    return path


def launch_server(env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("server did not start")
        time.sleep(0.1)
    return proc, base


def end_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
    proc.wait(timeout=10)


@pytest.fixture
def server_process() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    proc, base = launch_server()
    yield proc, base
    end_server(proc)


@contextlib.contextmanager
def chromium(camera_clip: Path) -> Iterator[Any]:
    """Headless Debian Chromium whose camera plays `camera_clip` (y4m); skips the test without Chromium."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (scripts/install.sh --test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={camera_clip}"],
        )
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def browser(fake_camera: Path) -> Iterator[Any]:
    with chromium(fake_camera) as b:
        yield b


def played(page: Any) -> list[dict[str, Any]]:
    return list(page.evaluate("window.__played"))


def wait_for_speech(page: Any, fragment: str, timeout_s: float) -> dict[str, Any]:
    """The cue whose words contain `fragment`, once the page has played it: its entry in the player's
    own log, checked against the browser's audio calls (a tone at once, then the words spoken either
    from the pre-rendered phrase or by the browser's speech)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        cues = page.evaluate("window.rearguard.player.played")
        for cue in cues:
            if fragment in (cue.get("text") or ""):
                time.sleep(0.3)
                log = played(page)
                if cue.get("local") and cue.get("looped"):
                    # The page's own stop, played by the audio thread from the loop rendered ahead (words
                    # included when the phrases are rendered); the page logs it when its timer sees it.
                    assert stop_loop_sounded(log, cue["at"] - 200, cue["at"] + 50), log
                    if cue.get("voice") == "rendered":
                        return dict(cue)
                else:
                    assert any(e["what"] == "tone" and abs(e["at"] - cue["at"]) < 50 for e in log), log
                spoken = [
                    e for e in log if e["what"] in ("phrase", "speech") and -50 < e["at"] - cue["at"] < 1500
                ]
                assert spoken, f"{fragment!r} was not spoken: {log}"
                return dict(cue)
        time.sleep(0.05)
    raise AssertionError(f"no {fragment!r} cue within {timeout_s} s; played: {played(page)}")


# A level meter on the audio thread (an AudioWorklet), tapped into the page's output bus: the audio-clock
# times at which the page's sound became loud, measured where the sound is made, so they hold while the
# page's own thread is frozen or busy.
METER = """
registerProcessor("meter", class extends AudioWorkletProcessor {
  constructor() { super(); this.loud = false; }
  process(inputs) {
    const ch = inputs[0][0];
    let peak = 0;
    if (ch) for (let i = 0; i < ch.length; i++) peak = Math.max(peak, Math.abs(ch[i]));
    if ((peak > 0.05) !== this.loud) {
      this.loud = !this.loud;
      if (this.loud) this.port.postMessage(currentTime);
    }
    return true;
  }
});
"""


def install_meter(page: Any) -> None:
    """Taps the page's output bus into METER; the onsets collect in window.__onsets (audio-clock s)."""
    page.evaluate(
        """async (src) => {
          const p = window.rearguard.player;
          const url = URL.createObjectURL(new Blob([src], { type: "text/javascript" }));
          await p.ctx.audioWorklet.addModule(url);
          const meter = new AudioWorkletNode(p.ctx, "meter");
          window.__onsets = [];
          meter.port.onmessage = (e) => window.__onsets.push(e.data);
          p.bus.connect(meter);
          meter.connect(p.ctx.destination);  // pulled by the graph; it writes silence
        }""",
        METER,
    )


def stop_loop_sounded(log: list[dict[str, Any]], start_ms: float, end_ms: float) -> bool:
    """Whether a stop loop started sounding between the two page times, and was not stopped first."""
    return any(
        e["what"] == "stop_loop"
        and start_ms <= e["sounds_at"] <= end_ms
        and (e["stopped_at"] is None or e["stopped_at"] > e["sounds_at"])
        for e in log
    )


def recorded_page(browser: Any, url: str) -> tuple[Any, Any]:
    """(context, page) with the audio recorder installed, the page opened at `url` and its start tapped."""
    ctx = browser.new_context()
    ctx.add_init_script(RECORDER)
    page = ctx.new_page()
    page.goto(url)
    page.click("#start")
    return ctx, page


def pair_pages(browser: Any, s: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(context, walker page, camera page) of session `s`, with the audio recorder; neither started."""
    ctx = browser.new_context()
    ctx.add_init_script(RECORDER)
    walker = ctx.new_page()
    walker.goto(s["walker_url"])
    camera = ctx.new_page()
    camera.goto(s["camera_url"])
    return ctx, walker, camera


def test_the_camera_page_stamps_each_frame_with_when_the_camera_took_it(
    server_process: tuple[subprocess.Popen[bytes], str], tmp_path: Path
) -> None:
    """The server times frames by their stamps (speeds come from motion between frames). A camera giving 10
    frames a second, sent by the page's 15 a second timer: the stamps are 100 ms apart, as the camera took
    the frames, not the timer's 67 or 133 ms."""
    _, base = server_process
    clip = tmp_path / "noise.y4m"
    write_y4m(clip, [empty_scene(seed=i) for i in range(60)], fps=10)  # no two frames alike
    stamps: list[float] = []

    def watch(ws: Any) -> None:
        def sent(payload: Any) -> None:
            if isinstance(payload, bytes | bytearray):  # a frame: magic, header length, JSON header, JPEG
                n = int.from_bytes(payload[4:6], "big")
                stamps.append(float(json.loads(payload[6 : 6 + n])["t"]))

        ws.on("framesent", sent)

    with chromium(clip) as b:
        s = httpx.post(f"{base}/api/sessions", json={"mode": "partner"}).json()
        page = b.new_context().new_page()
        page.on("websocket", watch)
        page.goto(s["camera_url"])
        page.click("#start")
        deadline = time.monotonic() + 20
        while len(stamps) < 30 and time.monotonic() < deadline:
            time.sleep(0.2)
    gaps = [b - a for a, b in itertools.pairwise(stamps[5:])]  # the camera settles in its first frames
    assert len(gaps) >= 20 and all(g > 0 for g in gaps), gaps
    # How far each gap is from a whole number of camera frames: about 0 (the fake camera's own timer wobbles
    # by a few ms on a busy machine); stamped by the send timer, 33 ms for most.
    off = sorted(abs(g / 100 - round(g / 100)) * 100 for g in gaps)
    assert off[len(off) // 2] <= 5 and off[int(0.9 * len(off))] <= 20, gaps


def test_camera_to_walker_cues_in_a_real_browser(
    browser: Any, server_process: tuple[subprocess.Popen[bytes], str]
) -> None:
    proc, base = server_process
    s = httpx.post(f"{base}/api/sessions", json={"mode": "partner"}).json()
    ctx, walker = recorded_page(browser, s["walker_url"])
    camera = ctx.new_page()
    camera.goto(s["camera_url"])
    camera.click("#start")

    # The person is in view: the system starts watching, the camera page shows figures, nothing is cued.
    walker.wait_for_function("document.getElementById('state').textContent === 'Watching'", timeout=20_000)
    camera.wait_for_function("document.getElementById('figures').textContent.includes('walker seen')")
    assert "fps" in camera.inner_text("#figures")
    # The fake camera gives 10 frames a second and the page may send 15: only the camera's new frames go
    # out (the same frame sent twice would be taken for a frozen camera).
    received = "window.rearguard.feed.lastStatus.received"
    first, t0 = camera.evaluate(received), time.monotonic()
    time.sleep(3)
    rate = (camera.evaluate(received) - first) / (time.monotonic() - t0)
    assert 5 < rate < 11.5, rate
    assert [e for e in played(walker) if e["what"] in ("speech", "phrase", "cue_msg")] == []

    # She leaves the view: a stop cue, spoken, with the siren tones and a vibration.
    cue = wait_for_speech(walker, "Walker not in view", timeout_s=12)
    tones = [e for e in played(walker) if e["what"] == "tone" and e["at"] >= cue["at"] - 50]
    assert {(t["freq"], t["wave"]) for t in tones} >= {(1200, "square"), (600, "square")}
    assert any(e["what"] == "pan" and e["pan"] == 0 for e in played(walker))
    assert walker.inner_text("#state").startswith("STOP")

    # The partner's camera stops: the walker hears that the camera is lost.
    camera.close()
    wait_for_speech(walker, "Camera lost", timeout_s=2)

    # The server hangs (no close, no heartbeat): the walker page's own watchdog cues within a second.
    # The walker's phone shows only this page (the screen is kept awake), so it is in front here too:
    # browsers throttle timers of hidden tabs to once a second.
    walker.bring_to_front()
    assert walker.evaluate("document.visibilityState") == "visible"
    hung_at = walker.evaluate("performance.now()")
    os.kill(proc.pid, signal.SIGSTOP)
    lost = wait_for_speech(walker, "Connection lost", timeout_s=3)
    assert lost["at"] - hung_at < 1000
    ctx.close()


ServerProc = tuple[subprocess.Popen[bytes], str]


def test_solo_page_plays_its_own_cues(browser: Any, server_process: ServerProc) -> None:
    _, base = server_process
    s = httpx.post(f"{base}/api/sessions", json={"mode": "solo"}).json()
    ctx, page = recorded_page(browser, s["solo_url"])
    page.wait_for_function("document.getElementById('state').textContent === 'Watching'", timeout=20_000)
    wait_for_speech(page, "Walker not in view", timeout_s=12)
    ctx.close()


def test_solo_page_tells_the_belt_and_height_and_shows_the_servers_errors(
    browser: Any, server_process: ServerProc
) -> None:
    """The page's setup (kept on the phone) reaches the treadmill monitor on connect and on a change, and an
    error from the server is shown (it was dropped without a word)."""
    _, base = server_process
    s = httpx.post(f"{base}/api/sessions", json={"mode": "solo"}).json()
    ctx = browser.new_context()
    ctx.add_init_script(
        """localStorage.setItem("rearguard.settings", JSON.stringify({ heightCm: 160, beltLengthCm: 127 }))"""
    )
    page = ctx.new_page()
    page.goto(s["solo_url"])
    assert page.input_value("#beltlength") == "127" and page.input_value("#beltwidth") == ""
    page.click("#start")
    page.evaluate(
        """() => new Promise((resolve) => {
          const watch = () => {
            const ws = window.rearguard.link && window.rearguard.link.ws;
            if (!ws) return setTimeout(watch, 50);
            window.__setups = [];
            ws.addEventListener("message", (e) => {
              if (typeof e.data !== "string") return;
              const m = JSON.parse(e.data);
              if (m.type === "status" && m.treadmill) window.__setups.push(m.treadmill.setup);
            });
            resolve();
          };
          watch();
        })"""
    )
    told = {"body_height_m": 1.6, "belt_length_m": 1.27, "belt_width_m": 0.5}
    wanted = json.dumps(told, separators=(",", ":"))
    page.wait_for_function(f"(window.__setups || []).some(u => JSON.stringify(u) === '{wanted}')")
    page.click("#setup summary")  # the panel opens
    page.fill("#beltwidth", "46")
    page.dispatch_event("#beltwidth", "change")
    page.wait_for_function("(window.__setups || []).some(u => u.belt_width_m === 0.46)")
    page.evaluate(
        "window.rearguard.link.sendJson({ type: 'settings', sensitivity: 'normal', belt_width_m: 9 })"
    )
    page.wait_for_function("document.getElementById('err').textContent.includes('belt_width_m must be')")
    ctx.close()


def test_wrong_token_is_shown_and_not_retried(browser: Any, server_process: ServerProc) -> None:
    _, base = server_process
    s = httpx.post(f"{base}/api/sessions", json={"mode": "partner"}).json()
    page = browser.new_page()
    page.goto(s["walker_url"].replace(s["token"], "not-the-token"))
    page.click("#start")
    page.wait_for_function("document.getElementById('err').textContent.includes('4401')")


# A person closes in from behind on the walker's left at 1 m/s, starting 4 m away 1 s after the first
# frame: time to contact 3 s at t=2 (advisory), 1.5 s at t=3.5 (urgent), 1 s at t=4 (stop), contact at 5.
DRILL = [{"kind": "person", "side": "left", "start_s": 1.0, "distance_m": 4.0, "closing_mps": 1.0}]


@pytest.fixture
def person_in_view(tmp_path_factory: pytest.TempPathFactory) -> Path:
    person = [cv2.resize(f, (360, 640)) for f in read_frames("squats_facing_camera.mp4", limit=65)]
    path = tmp_path_factory.mktemp("cam") / "walker_stays.y4m"
    write_y4m(path, [person[i // 2] for i in range(130)], fps=10)
    return path


def test_scripted_hazard_plays_in_order_on_time_and_silence_when_clear(
    person_in_view: Path, tmp_path: Path
) -> None:
    drill = tmp_path / "drill.json"
    drill.write_text(json.dumps(DRILL))
    proc, base = launch_server({"REARGUARD_DRILL": str(drill)})
    try:
        with chromium(person_in_view) as browser:
            s = httpx.post(f"{base}/api/sessions", json={"mode": "partner"}).json()
            _, walker, camera = pair_pages(browser, s)
            walker.click("#start")
            ready = (
                "(p => p.phrasesReady > 0 && p.phrasesReady === p.phraseText.size)(window.rearguard.player)"
            )
            walker.wait_for_function(ready, timeout=60_000)  # all phrases rendered and cached
            camera.bring_to_front()
            camera.click("#start")  # the drill's clock starts with the first frame
            walker.bring_to_front()
            walker.wait_for_function(
                "document.getElementById('state').textContent === 'Watching'", timeout=20_000
            )
            deadline = time.monotonic() + 15
            while (
                time.monotonic() < deadline and len([e for e in played(walker) if e["what"] == "cue_msg"]) < 3
            ):
                time.sleep(0.1)
            time.sleep(3.0)  # after contact the person is gone: the path is clear again
            # The server is killed: its socket closes and the walker hears the stop cue within a second.
            killed_at = walker.evaluate("performance.now()")
            proc.kill()
            lost = wait_for_speech(walker, "Connection lost", timeout_s=3)
            assert lost["at"] - killed_at < 1000
            log = played(walker)
            intervals = walker.evaluate(
                "import('/audio.js').then(m => [3, 2, 1.5, 1, 0.5, 0.2].map(m.beepInterval))"
            )
    finally:
        end_server(proc)

    cues = [e for e in log if e["what"] == "cue_msg"]
    # The walker squats in place: "I cannot see behind you" is for a walker on the move (DESIGN.md), so
    # here it would be a false notice, and it would break the silence that means clear.
    assert not [c for c in cues if c["kind"] == "path_hidden"], "path_hidden for a walker standing still"
    assert [(c["tier"], c["kind"], c["side"]) for c in cues] == [
        ("advisory", "person", "left"), ("urgent", "person", "left"), ("stop", "person", "left"),
    ]  # fmt: skip
    assert cues[1]["at"] - cues[0]["at"] == pytest.approx(1500, abs=300)
    assert cues[2]["at"] - cues[1]["at"] == pytest.approx(500, abs=300)
    for cue in cues:  # each cue starts sounding within 50 ms of its message arriving
        first = next(e for e in log if e["what"] == "tone" and e["at"] >= cue["at"])
        assert first["at"] - cue["at"] < 50
    # Tones on the hazard's side (the walker's left ear), words half-way there.
    pans = {
        round(e["pan"], 2) for e in log if e["what"] == "pan" and cues[0]["at"] <= e["at"] < cues[2]["at"]
    }
    assert pans == {-0.8, -0.4}
    phrases = [e for e in log if e["what"] == "phrase" and e["at"] >= cues[0]["at"]]
    assert len(phrases) >= 3  # the pre-rendered voice, not the browser's
    # Between urgent and stop the beeps quicken; at stop a continuous tone; it ends at contact.
    beeps = [
        e["at"]
        for e in log
        if e["what"] == "tone" and e["freq"] == 1000 and cues[1]["at"] <= e["at"] < cues[2]["at"]
    ]
    assert len(beeps) >= 3  # the urgent tier lasts 0.5 s: the cue's own two beeps, and the beeper's
    cont = [
        e
        for e in log
        if e["what"] == "tone" and e["freq"] == 1400 and e["wave"] == "sawtooth" and e["at"] >= cues[2]["at"]
    ]
    assert cont
    off = [e for e in log if e["what"] == "tone_off" and e["freq"] == 1400]
    assert off and off[0]["at"] - cues[2]["at"] < 2000
    # The beeper quickens as time to contact falls (a parking sensor).
    assert intervals == sorted(intervals, reverse=True) and intervals[0] > 2 * intervals[-1]
    # Silence means clear: nothing before the hazard, nothing after it ended.
    chime = (520, 780)  # the soft "watching again" chime when the system starts watching
    sounds = [e for e in log if e["what"] in ("tone", "phrase", "speech") and e.get("freq") not in chime]
    assert [e for e in sounds if e["at"] < cues[0]["at"]] == []
    assert [e for e in sounds if off[0]["at"] + 1000 < e["at"] < killed_at] == []


@pytest.fixture
def scripted_path(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What the pipeline says about the path, set by the test as it goes: every analysed frame carries
    `script["path"]` and, while the walker is in view, `script["hazards"]`.

    Injected so that each state the page must show comes when the test wants it (the real path view of a
    clip is tested in tests/test_obstacles.py). Everything else is real: the fake camera streams a real
    clip from the page, MediaPipe finds the walker, and the server builds the status and cue messages the
    pages draw and speak. `script["pitches"]` collects the tilt reading that came with each frame."""
    script: dict[str, Any] = {"path": {}, "hazards": (), "pitches": []}
    real = Pipeline.process_jpeg

    def process_jpeg(
        self: Pipeline, data: bytes, timestamp_ms: int, pitch_deg: float | None = None
    ) -> Analysis:
        script["pitches"].append(pitch_deg)  # the phone's tilt as the server passed it on
        a = real(self, data, timestamp_ms, pitch_deg)
        own = tuple(h for h in a.hazards if not from_path(h))  # the script replaces the real path view
        hazards = (*own, *script["hazards"]) if a.walker is not None else own
        return dataclasses.replace(a, path=script["path"], hazards=hazards)

    monkeypatch.setattr(Pipeline, "process_jpeg", process_jpeg)
    return script


def from_path(h: Hazard) -> bool:
    """A hazard the pipeline derived from its own view of the path (obstacles, path_hidden)."""
    return h.kind in NOTICE_KINDS or h.key.startswith("obs:")


HIDDEN = Hazard(kind="path_hidden", tier="advisory", text="I cannot see behind you", key="path_hidden")
# In pixels of the analysed frame (the fake camera's 360 x 640): a corridor along the left edge, clear of
# the walker's skeleton, so a pixel inside it shows the corridor's own colour.
CORRIDOR = [[10, 630], [90, 630], [80, 420], [20, 420]]
SAMPLE_CORRIDOR = """(() => {
  const c = document.getElementById('overlay');
  const [x, y] = [50 * c.width / 360, 560 * c.height / 640];
  return Array.from(c.getContext('2d').getImageData(Math.round(x), Math.round(y), 1, 1).data);
})()"""


def hidden_path(coverage: float, coach_id: str | None) -> dict[str, Any]:
    return {
        "coverage": coverage,
        "coverage_by_m": [coverage / 2, coverage, coverage * 1.5],
        "coverage_low": True,
        "coach": COACH_PHRASES[coach_id] if coach_id else None,
        "coach_id": coach_id,
        "walker_speed_mps": 0.6,
        "corridor_px": CORRIDOR,
        "obstacles": [
            {"id": 1, "kind": "bin", "distance_m": 2.4, "distance_sd_m": 0.3, "closing_mps": 0.6,
             "ttc_s": 4.0, "side": "left", "in_corridor": True, "box_px": [30, 450, 70, 500]},
        ],
    }  # fmt: skip


def test_camera_page_shows_the_path_and_coaches_the_partner(
    person_in_view: Path, scripted_path: dict[str, Any]
) -> None:
    scripted_path.update(path=hidden_path(0.2, "coach_left"), hazards=(HIDDEN,))
    srv = start_server()
    try:
        with chromium(person_in_view) as browser:
            s = srv.create_session()
            ctx, walker = recorded_page(browser, s["walker_url"])
            camera = ctx.new_page()
            camera.goto(s["camera_url"])
            assert camera.is_checked("#coachvoice")  # coaching is spoken unless the partner mutes it
            camera.click("#start")

            # Low coverage: the share seen, in the partner's words and colours, and the coaching.
            text = "document.getElementById('pathtext').textContent"
            camera.wait_for_function(f"{text} === 'Path seen: 20%'", timeout=20_000)
            assert "poor" in (camera.get_attribute("#path", "class") or "")
            assert camera.inner_text("#pathdetail").startswith("1 m 10% · 2 m 20% · 3 m 30%")
            assert camera.inner_text("#coach") == "Walk half a step to your left"
            assert "clear" not in camera.inner_text("#path").lower()
            # ... spoken once on the partner's phone, from the pre-rendered phrase or the browser's voice.
            camera.wait_for_function(
                "window.rearguard.player.played.some(e => e.kind === 'coach')", timeout=3_000
            )
            said = [e for e in camera.evaluate("window.rearguard.player.played") if e.get("kind") == "coach"]
            assert [(e["phrase"], e["text"]) for e in said] == [
                ("coach_left", "Walk half a step to your left")
            ]
            time.sleep(0.3)
            voices = [
                e
                for e in played(camera)
                if e["what"] in ("phrase", "speech") and e["at"] >= said[0]["at"] - 50
            ]
            assert voices, played(camera)
            # The hidden corridor is drawn grey over the video, scaled to the displayed canvas.
            r, g, b, a = camera.evaluate(SAMPLE_CORRIDOR)
            assert a > 0 and max(r, g, b) - min(r, g, b) < 40, (r, g, b, a)

            # The walker hears "I cannot see behind you" once; it does not set off the beeper.
            wait_for_speech(walker, "I cannot see behind you", timeout_s=5)
            assert walker.inner_text("#pathstate") == "The camera cannot see behind you"
            assert walker.inner_text("#state") == "Watching"
            assert camera.inner_text("#state") == "Watching · path hidden"
            assert walker.evaluate("window.rearguard.player.alert") is None

            # New advice within 8 s is shown at once but not spoken yet; muting is kept on the phone. Here
            # the floor is also too plain for the ground's flow: the page says the walker's speed is unknown.
            assert "speed unknown" not in camera.inner_text("#pathdetail")
            scripted_path.update(
                path={**hidden_path(0.3, "coach_right"), "motion_known": False, "walker_speed_mps": None}
            )
            camera.wait_for_function("document.getElementById('coach').textContent.includes('right')")
            assert "walking speed unknown" in camera.inner_text("#pathdetail")
            time.sleep(1.0)
            said = [e for e in camera.evaluate("window.rearguard.player.played") if e.get("kind") == "coach"]
            assert len(said) == 1
            camera.uncheck("#coachvoice")
            stored = json.loads(camera.evaluate("localStorage.getItem('rearguard.settings')"))
            assert stored["coachVoice"] is False
            assert camera.evaluate("window.rearguard.coach.pending") is None

            # The path shows: no coaching, a green corridor, still only "seen", never "clear".
            scripted_path.update(
                path={**hidden_path(0.85, None), "coverage_low": False, "obstacles": []}, hazards=()
            )
            camera.wait_for_function(f"{text} === 'Path seen: 85%'")
            camera.wait_for_function("document.getElementById('state').textContent === 'Watching'")
            assert "good" in (camera.get_attribute("#path", "class") or "")
            assert camera.is_hidden("#coach")
            r, g, b, a = camera.evaluate(SAMPLE_CORRIDOR)
            assert a > 0 and g > r + 30 and g > b, (r, g, b, a)
            walker.wait_for_function("document.getElementById('pathstate').textContent === ''")
            spoken = [
                e for e in walker.evaluate("window.rearguard.player.played") if e["kind"] == "path_hidden"
            ]
            assert len(spoken) == 1
    finally:
        srv.stop()


TILT = """([beta, gamma]) => {
  clearInterval(window.__tilt);
  if (beta !== null) window.__tilt = setInterval(() => window.dispatchEvent(
    new DeviceOrientationEvent("deviceorientation", { alpha: 0, beta, gamma })), 50);
}"""


def test_camera_page_sends_the_phones_tilt_as_the_cameras_elevation(
    person_in_view: Path, scripted_path: dict[str, Any]
) -> None:
    """The page turns DeviceOrientation's angles into the camera's elevation, portrait or landscape, and
    stops sending it when the phone stops reporting; the server hands each frame's reading to the
    pipeline (which measures the camera's height from it, tests/test_ground.py)."""
    pitches = scripted_path["pitches"]

    def readings_after(action: Any, n: int = 5) -> list[float | None]:
        action()
        time.sleep(0.7)  # older readings are out of the slot, newer frames carry the new one
        start = len(pitches)
        deadline = time.monotonic() + 10
        while len(pitches) < start + n and time.monotonic() < deadline:
            time.sleep(0.05)
        return pitches[start : start + n]

    srv = start_server()
    try:
        with chromium(person_in_view) as browser:
            camera = browser.new_page()
            camera.goto(srv.create_session()["camera_url"])
            camera.click("#start")
            camera.wait_for_function("document.getElementById('figures').textContent.includes('fps')")
            assert set(readings_after(lambda: None)) == {None}  # a phone without the sensor: nothing sent
            # held upright in portrait, tilted 20 deg down (the screen's top leans back)
            assert readings_after(lambda: camera.evaluate(TILT, [70, 0])) == [-20.0] * 5
            # in landscape (gamma near 90) and tilted 10 deg up
            assert readings_after(lambda: camera.evaluate(TILT, [180, 80])) == [10.0] * 5
            # the phone stops reporting: after half a second the page sends nothing, not the last angle
            assert set(readings_after(lambda: camera.evaluate(TILT, [None, None]))) == {None}
    finally:
        srv.stop()


def test_walker_page_tells_the_server_the_walkers_height(browser: Any) -> None:
    """The walker's height (the ground model's ruler) is a setting of the walker page: typed once, kept on
    the phone, sent to the session at once and again on every connect."""
    srv = start_server()
    try:
        s = srv.create_session()
        session = srv.server.config.app.state.registry.get(s["session_id"])
        ctx, walker = recorded_page(browser, s["walker_url"])

        def told(height: float | None) -> bool:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                if session.walker_height_m == height:
                    return True
                time.sleep(0.05)
            return False

        walker.click("#settings summary")
        walker.fill("#heightcm", "182")
        walker.dispatch_event("#heightcm", "change")
        assert told(1.82)
        stored = json.loads(walker.evaluate("localStorage.getItem('rearguard.settings')"))
        assert stored["heightCm"] == 182
        walker.fill("#heightcm", "5")  # not a height: cleared, and not sent
        walker.dispatch_event("#heightcm", "change")
        assert walker.input_value("#heightcm") == ""
        assert json.loads(walker.evaluate("localStorage.getItem('rearguard.settings')"))["heightCm"] is None
        assert told(None)  # back to the prior on the server too
        walker.fill("#heightcm", "176")
        walker.dispatch_event("#heightcm", "change")
        assert told(1.76)
        # a new session on the same phone: the saved height is sent when the page connects
        s2 = srv.create_session()
        session = srv.server.config.app.state.registry.get(s2["session_id"])
        walker.goto(s2["walker_url"])
        walker.reload()  # only the hash changed: load the page afresh, as opening the link would
        assert walker.input_value("#heightcm") == "176"
        walker.click("#start")
        assert told(1.76)
        ctx.close()
    finally:
        srv.stop()


def test_walker_page_watchdog_runs_from_the_tap_and_resyncs_after_a_stall(
    browser: Any, server_process: ServerProc
) -> None:
    """A server that never answers is silence too; after a stall that recovers, the page follows the
    server's heartbeats back to "Watching" instead of staying on the stop it played meanwhile; a socket
    silent for 2 s is given up and replaced."""
    proc, base = server_process
    s = httpx.post(f"{base}/api/sessions", json={"mode": "partner"}).json()
    ctx, walker, camera = pair_pages(browser, s)
    camera.click("#start")
    walker.bring_to_front()  # browsers throttle the timers of hidden tabs to once a second
    # The server hangs before the walker taps start: no message will ever come.
    os.kill(proc.pid, signal.SIGSTOP)
    walker.click("#start")
    tapped = walker.evaluate("performance.now()")
    lost = wait_for_speech(walker, "Connection lost", timeout_s=3)
    assert lost["at"] - tapped < 1100
    os.kill(proc.pid, signal.SIGCONT)
    walker.wait_for_function("document.getElementById('state').textContent === 'Watching'", timeout=20_000)

    # A stall of 1.5 s: the page cues, and the same socket comes back.
    walker.evaluate("window.__ws = window.rearguard.link.ws")
    os.kill(proc.pid, signal.SIGSTOP)
    time.sleep(1.5)
    os.kill(proc.pid, signal.SIGCONT)
    walker.wait_for_function("window.rearguard.ear.watching === false", timeout=2_000)
    walker.wait_for_function("document.getElementById('state').textContent === 'Watching'", timeout=5_000)
    assert walker.evaluate("window.rearguard.link.ws === window.__ws")
    # When only the walker's network stalls, the server's state does not change and no `state` is sent:
    # the page, on its local stop, is put right by the next heartbeat, which says the server is watching.
    walker.evaluate("window.rearguard.ear.localStop('Stop. Connection lost')")
    assert walker.inner_text("#state").startswith("STOP")
    walker.wait_for_function("document.getElementById('state').textContent === 'Watching'", timeout=2_000)

    # A stall of 3 s: the silent socket is given up after 2 s and a new one connects.
    os.kill(proc.pid, signal.SIGSTOP)
    time.sleep(3.0)
    os.kill(proc.pid, signal.SIGCONT)
    walker.wait_for_function("document.getElementById('state').textContent === 'Watching'", timeout=10_000)
    assert walker.evaluate("window.rearguard.link.ws !== window.__ws")
    ctx.close()


def test_a_browser_that_cannot_render_ahead_keeps_the_timer_watchdog(
    browser: Any, server_process: ServerProc
) -> None:
    """Without OfflineAudioContext (an old browser) the stop cannot be rendered ahead: the page still
    connects and watches, and its timer plays the stop, tones and words, within a second of a hung server."""
    proc, base = server_process
    s = httpx.post(f"{base}/api/sessions", json={"mode": "partner"}).json()
    ctx = browser.new_context()
    ctx.add_init_script("delete window.OfflineAudioContext;")
    ctx.add_init_script(RECORDER)
    walker = ctx.new_page()
    walker.goto(s["walker_url"])
    camera = ctx.new_page()
    camera.goto(s["camera_url"])
    camera.click("#start")
    walker.bring_to_front()
    walker.click("#start")
    walker.wait_for_function("document.getElementById('state').textContent === 'Watching'", timeout=20_000)
    assert walker.evaluate("window.rearguard.player.deadman") is None
    os.kill(proc.pid, signal.SIGSTOP)
    stopped = walker.evaluate("performance.now()")
    lost = wait_for_speech(walker, "Connection lost", timeout_s=3)
    assert not lost["looped"] and lost["at"] - stopped < 1100
    os.kill(proc.pid, signal.SIGCONT)
    ctx.close()


def test_a_walker_page_whose_timers_stall_still_counts_as_listening(
    browser: Any, server_process: ServerProc
) -> None:
    """A phone runs a hidden page's timers once a minute after five minutes (Chrome's intensive throttling),
    but still hands it the server's messages: the walker page answers those, so the camera page does not
    tell the partner that no phone is playing the warnings (the server counts a phone heard from within
    3 s). Here the walker page's timers of 200 ms or more never fire (its link's 250 ms watchdog among
    them); the audio's shorter ones run."""
    _, base = server_process
    s = httpx.post(f"{base}/api/sessions", json={"mode": "partner"}).json()
    wctx = browser.new_context()
    wctx.add_init_script(
        "(() => { const si = window.setInterval;"
        " window.setInterval = (f, ms, ...a) => (ms >= 200 ? 0 : si(f, ms, ...a)); })()"
    )
    walker = wctx.new_page()
    walker.goto(s["walker_url"])
    walker.click("#start")
    cctx = browser.new_context()
    camera = cctx.new_page()
    camera.goto(s["camera_url"])
    camera.click("#start")
    one = "document.getElementById('listeners').textContent.startsWith('1 phone')"
    camera.wait_for_function(one, timeout=20_000)
    for _ in range(6):  # 6 s: twice the server's 3 s
        time.sleep(1.0)
        assert camera.evaluate(one), camera.inner_text("#listeners")
    wctx.close()
    cctx.close()


def test_closing_on_purpose_plays_no_stop_and_stopped_sound_is_told(
    browser: Any, server_process: ServerProc
) -> None:
    _, base = server_process
    s = httpx.post(f"{base}/api/sessions", json={"mode": "solo"}).json()
    ctx, page = recorded_page(browser, s["solo_url"])
    page.wait_for_function("document.getElementById('state').textContent === 'Watching'", timeout=20_000)

    # The phone stops the audio and will not let the page resume it without a tap (iOS after a call): the
    # page says so, and a tap turns it back on.
    page.evaluate(
        """(() => {
          const ctx = window.rearguard.player.ctx;
          window.__resume = ctx.resume.bind(ctx);
          ctx.resume = () => Promise.resolve();  // refused until a tap
          ctx.suspend();
        })()"""
    )
    page.wait_for_function("document.getElementById('sound').textContent.includes('Sound is off')")
    # A cue meanwhile is said by the browser's speech, and no tone is scheduled on the stopped audio clock
    # (they would all sound at once when it starts again).
    before = len(played(page))
    page.evaluate(
        "window.rearguard.player.play({ tier: 'urgent', kind: 'obstacle', side: 'left',"
        " phrase: 'obstacle_urgent_left', text: 'Obstacle close, step right' })"
    )
    meanwhile = played(page)[before:]
    assert [e["what"] for e in meanwhile if e["what"] in ("tone", "phrase", "speech")] == ["speech"], (
        meanwhile
    )
    page.evaluate("window.rearguard.player.ctx.resume = window.__resume")
    page.click("#state")
    page.wait_for_function("document.getElementById('sound').textContent === ''", timeout=5_000)

    # End workout closes the socket on purpose: no "connection lost" siren, neither from the page's timer
    # nor from the stop scheduled ahead on the audio clock. Words off, so that a cue already sounding at
    # the end is over within 0.75 s; the meter hears everything the page plays.
    install_meter(page)
    page.evaluate("window.rearguard.player.settings.speech = false")
    time.sleep(2.0)
    ended = page.evaluate("[performance.now(), window.rearguard.player.ctx.currentTime]")
    page.click("#end")
    time.sleep(3.0)
    after = [c for c in page.evaluate("window.rearguard.player.played") if c["at"] > ended[0]]
    assert not [c for c in after if c.get("kind") == "connection_lost"], after
    onsets = page.evaluate("window.__onsets")
    assert not [t for t in onsets if t > ended[1] + 0.75], (ended, onsets)
    ctx.close()


# Each stop the page arms: [audio time when armed (a message was just handled), audio time it will sound].
ARMED = """(() => {
  const p = window.rearguard.player, arm = p.armSilence.bind(p);
  window.__armed = [];
  p.armSilence = (s) => { arm(s); if (p.deadman) window.__armed.push([p.ctx.currentTime, p.deadman.at]); };
})()"""


def sounded_loops(page: Any) -> list[tuple[float, float]]:
    """(from, to) page times of each stop loop that has sounded, in order (to: inf while it sounds)."""
    now, log = page.evaluate("[performance.now(), window.__played]")
    return sorted(
        (e["sounds_at"], e["stopped_at"] if e["stopped_at"] is not None else math.inf)
        for e in log
        if e["what"] == "stop_loop"
        and e["sounds_at"] <= now
        and (e["stopped_at"] is None or e["stopped_at"] > e["sounds_at"])
    )


def test_walker_stop_sounds_on_the_audio_clock_while_the_page_cannot_run(person_in_view: Path) -> None:
    """A phone slows or freezes the script of a page it is not showing (timers once a second, then once a
    minute, then none); the server's messages are not handled then, so the walker is not being warned and
    must hear so within a second: the stop is scheduled on the audio clock, which keeps running. Headless
    Chromium does not freeze a page on request (Page.setWebLifecycleState changed nothing here), so the
    page's script is paused in the DevTools debugger: no timer and no message handler runs, as in a frozen
    page. A level meter on the audio thread times the sound. When the script runs again and hears the
    server, the repeat being heard finishes (words and all) and the page is watching; if it stalls again
    meanwhile (a flapping link), the next stop follows that repeat instead of sounding over it."""
    srv = start_server()
    try:
        with chromium(person_in_view) as browser:
            s = srv.create_session()
            ctx, walker, camera = pair_pages(browser, s)
            walker.click("#start")
            camera.click("#start")
            walker.bring_to_front()
            watching = "document.getElementById('state').textContent === 'Watching'"
            walker.wait_for_function(watching, timeout=20_000)
            walker.wait_for_function("window.rearguard.player.deadman !== null", timeout=5_000)
            install_meter(walker)
            walker.evaluate(ARMED)
            time.sleep(1.0)
            cdp = ctx.new_cdp_session(walker)
            cdp.send("Debugger.enable")
            paused = walker.evaluate("window.rearguard.player.ctx.currentTime")
            period = walker.evaluate("window.rearguard.player.deadman.period")
            cdp.send("Debugger.pause")
            time.sleep(4.0)
            cdp.send("Debugger.resume")
            walker.wait_for_function(watching, timeout=5_000)
            resumed = walker.evaluate("window.rearguard.player.ctx.currentTime")
            time.sleep(4.0)
            onsets = walker.evaluate("window.__onsets")
            armed = walker.evaluate("window.__armed")
            first_loops = sounded_loops(walker)

            # A flapping link: stalled 1.5 s (the stop sounds), one message handled, stalled again.
            cdp.send("Debugger.pause")
            time.sleep(1.5)
            cdp.send("Debugger.resume")
            walker.wait_for_function(
                "performance.now() - window.rearguard.ear.lastHeard < 150", timeout=2_000
            )
            cdp.send("Debugger.pause")
            time.sleep(2.5)
            cdp.send("Debugger.resume")
            walker.wait_for_function(watching, timeout=5_000)
            time.sleep(4.0)
            loops = sounded_loops(walker)
            ctx.close()
    finally:
        srv.stop()
    during = [t for t in onsets if paused < t]
    assert during, "no sound while the page's script could not run"
    # The siren within a second of the last message the page handled (its watchdog allows 800 ms), on
    # the time the page had scheduled it for.
    armed_at, due = max((a for a in armed if a[1] <= during[0] + 0.01), key=lambda a: a[1])
    assert abs(during[0] - due) < 0.03, (armed, onsets)
    assert 0.75 <= during[0] - armed_at <= 1.0, (armed, onsets)
    # It repeats while the page cannot run (every 2 s or its words' length), and ends once the page hears
    # the server again: the repeat sounding then finishes, whole, and no other starts.
    assert [t for t in during if during[0] + period - 0.05 <= t < resumed], (period, resumed, onsets)
    assert max(during) < resumed + period, (period, resumed, onsets)
    assert len(first_loops) == 1, first_loops
    heard_for = (first_loops[0][1] - first_loops[0][0]) / 1000
    assert heard_for >= period - 0.04 and abs(heard_for / period - round(heard_for / period)) < 0.02
    # The flapping link: stops that never sound over each other, the second straight after the first.
    later = loops[1:]
    assert len(later) >= 2, loops
    for (_, end), (start, _) in itertools.pairwise(later):
        assert start >= end - 20, loops
    assert later[1][0] - later[0][1] < 40, loops
