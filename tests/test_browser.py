"""The web client in real headless Chromium, with a fake camera fed from a real clip, against a real server.

The walker page's Web Audio, speech and vibration calls are observed by wrapping the browser's own APIs
(the calls still go through); the page under test is not modified.
"""

from __future__ import annotations

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

from tests.conftest import empty_scene, free_port, read_frames

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]

RECORDER = """
(() => {
  const log = [];
  window.__played = log;
  const now = () => performance.now();
  const start = OscillatorNode.prototype.start;
  OscillatorNode.prototype.start = function (...a) {
    log.push({ what: "tone", freq: this.frequency.value, wave: this.type, at: now() });
    return start.apply(this, a);
  };
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
    empty = cv2.resize(empty_scene(), (360, 640))
    frames = [person[i // 2] for i in range(50)] + [empty] * 50  # 10 fps
    path = tmp_path_factory.mktemp("cam") / "walker_leaves.y4m"
    write_y4m(path, frames, fps=10)
    return path


@pytest.fixture
def server_process() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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
    yield proc, base
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
    proc.wait(timeout=10)


@pytest.fixture
def browser(fake_camera: Path) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (scripts/install.sh --test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-video-capture={fake_camera}",
                "--autoplay-policy=no-user-gesture-required",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


def played(page: Any) -> list[dict[str, Any]]:
    return list(page.evaluate("window.__played"))


def wait_for_speech(page: Any, fragment: str, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for entry in played(page):
            if entry["what"] == "speech" and fragment in entry["text"]:
                return entry
        time.sleep(0.05)
    raise AssertionError(f"no {fragment!r} cue within {timeout_s} s; played: {played(page)}")


def test_camera_to_walker_cues_in_a_real_browser(
    browser: Any, server_process: tuple[subprocess.Popen[bytes], str]
) -> None:
    proc, base = server_process
    s = httpx.post(f"{base}/api/sessions", json={"mode": "partner"}).json()
    ctx = browser.new_context()
    ctx.add_init_script(RECORDER)
    walker = ctx.new_page()
    walker.goto(s["walker_url"])
    walker.click("#start")
    camera = ctx.new_page()
    camera.goto(s["camera_url"])
    camera.click("#start")

    # The person is in view: the system starts watching, the camera page shows figures, nothing is cued.
    walker.wait_for_function("document.getElementById('state').textContent === 'Watching'", timeout=20_000)
    camera.wait_for_function("document.getElementById('figures').textContent.includes('walker seen')")
    assert "fps" in camera.inner_text("#figures")
    assert [e for e in played(walker) if e["what"] == "speech"] == []

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
    ctx = browser.new_context()
    ctx.add_init_script(RECORDER)
    page = ctx.new_page()
    page.goto(s["solo_url"])
    page.click("#start")
    page.wait_for_function("document.getElementById('state').textContent === 'Watching'", timeout=20_000)
    wait_for_speech(page, "Walker not in view", timeout_s=12)
    ctx.close()


def test_wrong_token_is_shown_and_not_retried(browser: Any, server_process: ServerProc) -> None:
    _, base = server_process
    s = httpx.post(f"{base}/api/sessions", json={"mode": "partner"}).json()
    page = browser.new_page()
    page.goto(s["walker_url"].replace(s["token"], "not-the-token"))
    page.click("#start")
    page.wait_for_function("document.getElementById('err').textContent.includes('4401')")
