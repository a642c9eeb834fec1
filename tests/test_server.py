"""The service through a real uvicorn on loopback with real WebSocket clients and MediaPipe on real frames."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

import server.sessions as sessions_module
from server.config import Settings
from server.protocol import pack_frame, path_payload
from server.sessions import Session, SessionRegistry
from tests.conftest import LiveServer, empty_scene, jpeg, read_frames, start_server
from vision.alerts import NOTICE_KINDS
from vision.pipeline import Pipeline
from vision.types import Analysis, Hazard

Msg = dict[str, Any]


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    srv = start_server(camera_timeout_s=0.7, walker_lost_grace_ms=400, max_sessions=64)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def walker_frames() -> list[bytes]:
    return [jpeg(f) for f in read_frames("squats_facing_camera.mp4", limit=30)]


EMPTY = [jpeg(empty_scene(seed=i)) for i in range(40)]  # frames of a camera: no two alike


def connect(url: str, **kwargs: Any) -> ClientConnection:
    """A client that buffers everything it is sent: a test that stops reading must not stall the close
    handshake behind websockets' default 16-message backpressure."""
    return ws_connect(url, max_queue=None, close_timeout=2, **kwargs)


def recv_until(ws: ClientConnection, pred: Callable[[Msg], bool], timeout: float = 5.0) -> Msg:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("no matching message before the timeout")
        msg = json.loads(ws.recv(timeout=left))
        if pred(msg):
            return dict(msg)


def close_code(ws: ClientConnection, timeout: float = 5.0) -> int | None:
    try:
        while True:
            ws.recv(timeout=timeout)
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None


def is_type(kind: str) -> Callable[[Msg], bool]:
    return lambda m: m.get("type") == kind


def stream(
    ws: ClientConnection, frames: list[bytes], fps: float, stop: threading.Event | None = None
) -> None:
    for i, f in enumerate(frames):
        if stop is not None and stop.is_set():
            return
        ws.send(pack_frame(f, seq=i, t=time.monotonic() * 1000))
        time.sleep(1 / fps)


def test_the_capture_clock_times_frames_when_taken_not_when_delivered() -> None:
    from server.sessions import CaptureClock

    clock = CaptureClock()
    cam = object()
    taken = [0.0, 100.0, 200.0, 300.0, 400.0, 500.0]
    delays = [60.0, 20.0, 90.0, 150.0, 25.0, 40.0]  # Wi-Fi: uneven; 300 and 400 arrive 25 ms apart
    times = [clock(t, t + d + 5000.0, cam) for t, d in zip(taken, delays, strict=True)]
    assert times[0] == 5060.0  # the first by its arrival, the others as far apart as they were taken
    assert [b - a for a, b in itertools.pairwise(times)] == [100.0] * 5
    # A stall, then the frames held up arrive in a burst, 1 ms apart: they keep their spacing.
    burst = [clock(t, 9000.0 + k, cam) for k, t in enumerate((600.0, 700.0, 800.0))]
    assert burst == [5660.0, 5760.0, 5860.0]
    # Stamps not believed: one going back (a clock restarted), one leaping far beyond what the arrivals
    # allow (2 s more), and the one after it: each as far after the one before as it arrived.
    assert clock(50.0, 9100.0, cam) == 5860.0 + 98.0
    assert clock(1e12, 9200.0, cam) == 5958.0 + 100.0
    assert clock(900.0, 9300.0, cam) == 6058.0 + 100.0
    assert clock(1000.0, 9400.0, cam) == 6158.0 + 100.0  # believed again
    assert clock(None, 9450.0, cam) == 6258.0 + 50.0  # no stamp: by its arrival
    # A new camera starts from its arrival, and time never goes back.
    assert clock(0.0, 20000.0, object()) == 20000.0
    assert clock(5.0, 1.0, object()) == 20001.0


def test_frames_are_analysed_at_the_time_they_were_taken(server: LiveServer) -> None:
    """A camera whose frames arrive in bursts (three taken 100 ms apart, sent at once), and after a stall:
    the vision sees them 100 ms apart, as taken, not 0 ms or seconds apart as delivered (status `t_ms`)."""
    s = server.create_session()
    with connect(server.ws_url("camera", s)) as cam:
        start = time.monotonic() * 1000
        for burst in range(7):
            if burst == 6:
                time.sleep(2.5)  # a stall: the last burst's frames were held up 2.5 s more
            for k in range(3):
                i = burst * 3 + k
                cam.send(pack_frame(EMPTY[i], seq=i, t=start + i * 100.0))
            time.sleep(0.3)
        got: dict[int, int] = {}
        deadline = time.monotonic() + 10
        while 20 not in got and time.monotonic() < deadline:
            msg = json.loads(cam.recv(timeout=5))
            if msg.get("type") == "status":
                got[msg["seq"]] = msg["t_ms"]
    seqs = sorted(got)
    assert len(seqs) >= 8 and 20 in seqs
    spacing = [(got[b] - got[a]) / (b - a) for a, b in itertools.pairwise(seqs)]
    assert all(abs(x - 100.0) <= 1.0 for x in spacing), spacing


def test_a_session_loop_that_dies_of_a_bug_says_so_in_the_log(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from server import sessions

    def broken(self: sessions.SessionStats, t_ms: float) -> None:
        raise RuntimeError("a bug after the analysis")

    monkeypatch.setattr(sessions.SessionStats, "tick", broken)
    s = server.create_session()
    with caplog.at_level(logging.ERROR, logger="server.sessions"), connect(server.ws_url("camera", s)) as cam:
        stream(cam, EMPTY[:3], fps=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any("stopped" in r.getMessage() for r in caplog.records):
            time.sleep(0.1)
    died = [
        r
        for r in caplog.records
        if r.getMessage() == f"session {s['session_id']}: vision-{s['session_id']} stopped"
    ]
    assert died and died[0].exc_info is not None and "a bug after the analysis" in str(died[0].exc_info[1])


def test_healthz_and_session_creation(server: LiveServer) -> None:
    assert httpx.get(f"{server.base}/healthz").json()["status"] == "ok"
    s = server.create_session("solo")
    assert s["mode"] == "solo" and len(s["token"]) >= 20
    assert s["walker_url"].endswith(f"walker.html#s={s['session_id']}&t={s['token']}")
    assert s["solo_url"].endswith(f"solo.html#s={s['session_id']}&t={s['token']}") and s["camera_url"] is None
    pair = server.create_session("partner")
    assert pair["camera_url"] and pair["walker_url"] and pair["solo_url"] is None
    assert set(pair["ws"]) == {"camera", "walker"} and set(s["ws"]) == {"solo", "walker"}
    assert httpx.post(f"{server.base}/api/sessions", json={"mode": "bogus"}).status_code == 422
    assert httpx.get(f"{server.base}/").status_code == 200
    assert "<svg" in httpx.get(f"{server.base}/api/qr.svg", params={"data": s["walker_url"]}).text


@contextlib.contextmanager
def streaming(ws: ClientConnection, frames: list[bytes], fps: float = 10) -> Iterator[None]:
    """`frames` sent at `fps` from a thread while the block runs (a camera that goes on sending)."""
    stop = threading.Event()
    sender = threading.Thread(target=stream, args=(ws, frames, fps, stop))
    sender.start()
    try:
        yield
    finally:
        stop.set()
        sender.join()


def test_status_carries_pose_and_timings_and_no_cue_while_walker_in_view(
    server: LiveServer, walker_frames: list[bytes]
) -> None:
    s = server.create_session()
    with connect(server.ws_url("camera", s)) as cam, connect(server.ws_url("walker", s)) as walker:
        assert recv_until(walker, is_type("welcome"))["role"] == "walker"
        stream(cam, walker_frames[:15], fps=10)
        status = recv_until(cam, lambda m: m["type"] == "status" and m["seq"] == 14)
        t = status["timings_ms"]
        assert set(t) >= {"queued", "decode", "pose", "pipeline", "analysed", "cue_sent", "server"}
        assert 0 < t["pose"] <= t["analysed"] <= t["server"]
        assert status["walker"] is not None and len(status["walker"]["xy"]) == 33
        assert status["received"] == 15 and status["bad_frames"] == 0
        assert "path" in status  # null until the pipeline knows the ground (tested below)
        assert recv_until(walker, lambda m: m["type"] == "state" and m["watching"])["reason"] is None
        # Up to now nothing was wrong, so nothing was cued.
        walker_msgs = []
        try:
            while True:
                walker_msgs.append(json.loads(walker.recv(timeout=0.2)))
        except TimeoutError:
            pass
        assert not [m for m in walker_msgs if m["type"] == "cue"]


def test_walker_leaving_view_gives_a_stop_cue(server: LiveServer, walker_frames: list[bytes]) -> None:
    s = server.create_session()
    with connect(server.ws_url("camera", s)) as cam, connect(server.ws_url("walker", s)) as walker:
        stream(cam, walker_frames[:8], fps=10)
        recv_until(cam, lambda m: m["type"] == "status" and m["seq"] == 7)
        left_at = time.monotonic()
        with streaming(cam, EMPTY):
            cue = recv_until(walker, is_type("cue"), timeout=3)
        assert (cue["tier"], cue["kind"]) == ("stop", "walker_lost")
        assert time.monotonic() - left_at < 1.0 + 0.4  # grace 0.4 s, then one frame and delivery


def test_camera_that_goes_silent_or_closes_gives_a_stop_cue_within_a_second(
    server: LiveServer, walker_frames: list[bytes]
) -> None:
    s = server.create_session()
    with connect(server.ws_url("walker", s)) as walker:
        with connect(server.ws_url("camera", s)) as cam:
            stream(cam, walker_frames[:5], fps=10)
            recv_until(cam, lambda m: m["type"] == "status" and m["seq"] == 4)
            silent_at = time.monotonic()
            cue = recv_until(walker, is_type("cue"), timeout=3)
            assert (cue["tier"], cue["kind"]) == ("stop", "camera_lost")
            assert time.monotonic() - silent_at < 1.0
            stream(cam, walker_frames[5:12], fps=10)  # the camera comes back: watching again
            assert recv_until(walker, lambda m: m["type"] == "state" and m["watching"])["reason"] is None
            closed_at = time.monotonic()
        cue = recv_until(walker, is_type("cue"), timeout=3)
        assert cue["kind"] == "camera_lost" and time.monotonic() - closed_at < 0.5


def collect(ws: ClientConnection, seconds: float) -> list[Msg]:
    """Every message for `seconds`."""
    out: list[Msg] = []
    end = time.monotonic() + seconds
    with contextlib.suppress(TimeoutError):
        while (left := end - time.monotonic()) > 0:
            out.append(json.loads(ws.recv(timeout=left)))
    return out


def test_a_frozen_picture_is_a_lost_camera(server: LiveServer, walker_frames: list[bytes]) -> None:
    """A camera that stops delivering while its page goes on encoding the last image (Android handing the
    camera to another app, a paused video element) sends the same bytes again and again, and the pose model
    keeps finding the walker in them: the walker hears the camera-lost stop within a second, as for
    silence."""
    s = server.create_session()
    with connect(server.ws_url("walker", s)) as walker, connect(server.ws_url("camera", s)) as cam:
        stream(cam, walker_frames[:5], fps=10)
        recv_until(walker, lambda m: m["type"] == "state" and m["watching"])
        frozen_at = time.monotonic()
        with streaming(cam, [walker_frames[5]] * 30):
            cue = recv_until(walker, is_type("cue"), timeout=3)
            state = recv_until(walker, is_type("state"))
        assert (cue["tier"], cue["kind"]) == ("stop", "camera_lost")
        assert time.monotonic() - frozen_at < 1.0 + 0.2  # the frame before the freeze, then the timeout
        assert (state["watching"], state["reason"]) == (False, "camera_lost")
        assert recv_until(cam, is_type("state"))["watching"] is False  # the partner's page says so too


def test_frames_that_cannot_be_analysed_are_blind_not_watching(
    server: LiveServer, walker_frames: list[bytes]
) -> None:
    """Frames keep coming but none can be analysed: the walker hears a stop within a second, and watching
    comes back with the first frame analysed again."""
    s = server.create_session()
    rng = np.random.default_rng(3)
    corrupt = [b"\xff\xd8" + rng.bytes(3000) + b"\xff\xd9" for _ in range(30)]
    with connect(server.ws_url("walker", s)) as walker, connect(server.ws_url("camera", s)) as cam:
        stream(cam, walker_frames[:5], fps=10)
        recv_until(walker, lambda m: m["type"] == "state" and m["watching"])
        bad_at = time.monotonic()
        with streaming(cam, corrupt):
            cue = recv_until(walker, is_type("cue"), timeout=3)
            state = recv_until(walker, is_type("state"))
        assert (cue["tier"], cue["kind"]) == ("stop", "camera_lost")
        assert time.monotonic() - bad_at < 1.0
        assert (state["watching"], state["reason"]) == (False, "vision_lost")
        stream(cam, walker_frames[5:10], fps=10)
        assert recv_until(walker, lambda m: m["type"] == "state" and m["watching"])["reason"] is None


def test_a_pose_model_that_fails_to_load_is_told_never_watched(
    walker_frames: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Session) -> Pipeline:
        raise RuntimeError("the model bundle is gone")

    monkeypatch.setattr(Session, "_new_pipeline", broken)
    srv = start_server(camera_timeout_s=0.7, vision_start_s=1.0, vision_retry_s=0.5)
    try:
        s = srv.create_session()
        with connect(srv.ws_url("walker", s)) as walker, connect(srv.ws_url("camera", s)) as cam:
            started = time.monotonic()
            with streaming(cam, walker_frames):
                err = recv_until(cam, is_type("error"), timeout=3)
                seen: list[Msg] = []
                cue = recv_until(walker, lambda m: seen.append(m) is None and m["type"] == "cue", timeout=4)
            assert err["code"] == "vision_unavailable" and "bundle is gone" in err["detail"]
            assert (cue["tier"], cue["kind"]) == ("stop", "camera_lost")
            assert time.monotonic() - started < 1.0 + 1.0  # vision_start_s, then a heartbeat
            assert not any(m["type"] in ("state", "heartbeat") and m["watching"] for m in seen)
    finally:
        srv.stop()


def test_a_frame_in_analysis_when_the_camera_closes_does_not_clear_the_stop(
    walker_frames: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    analyse = Pipeline.process_jpeg

    def slow(self: Pipeline, data: bytes, ts: int, pitch: float | None = None) -> Analysis:
        time.sleep(0.4)
        return analyse(self, data, ts, pitch)

    monkeypatch.setattr(Pipeline, "process_jpeg", slow)
    srv = start_server(camera_timeout_s=0.7)
    try:
        s = srv.create_session()
        with connect(srv.ws_url("walker", s)) as walker:
            with connect(srv.ws_url("camera", s)) as cam:
                stream(cam, walker_frames[:3], fps=10)
                recv_until(cam, is_type("status"))
                cam.send(pack_frame(walker_frames[9], seq=9))  # still in analysis when the camera closes
                time.sleep(0.1)
            cue = recv_until(walker, is_type("cue"), timeout=3)
            after = collect(walker, 1.0)
        assert cue["kind"] == "camera_lost"
        assert not any(m["type"] == "alert" and not m["active"] for m in after)  # no "all clear"
        assert not any(m["type"] == "cue" and not m["repeat"] for m in after)  # no second onset
    finally:
        srv.stop()


def test_a_dead_walker_socket_makes_room_for_a_new_one(server: LiveServer) -> None:
    s = server.create_session()
    with contextlib.ExitStack() as stack:
        n = server.settings.max_walkers_per_session
        walkers = [stack.enter_context(connect(server.ws_url("walker", s))) for _ in range(n)]
        with connect(server.ws_url("walker", s)) as extra:
            assert close_code(extra) == 4409  # every device is alive: full
        time.sleep(3.2)  # none of them pings: phones gone off the network without closing
        with connect(server.ws_url("walker", s)) as new:
            new.send(json.dumps({"type": "ping", "t": 1}))
            assert recv_until(new, is_type("pong"))["t"] == 1
        assert close_code(walkers[0]) == 4410


def test_a_session_refuses_the_roles_of_the_other_mode(server: LiveServer) -> None:
    """A solo page on a partner session ran the obstacle pipeline and said "Watching" with no treadmill
    monitor behind it (the solo link `serve` printed was one); a camera page on a solo session, the
    reverse."""
    pair, solo = server.create_session("partner"), server.create_session("solo")
    for role, session, says in (("solo", pair, "partner walk"), ("camera", solo, "solo treadmill")):
        with connect(server.ws_url(role, session)) as ws:
            deadline = time.monotonic() + 5
            with pytest.raises(ConnectionClosed) as closed:
                while time.monotonic() < deadline:  # a socket let in hears heartbeats until the deadline
                    ws.recv(timeout=1)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4405
            assert says in closed.value.rcvd.reason
    with connect(server.ws_url("walker", solo)) as walker:  # a phone that only listens to a solo workout
        walker.send(json.dumps({"type": "ping", "t": 1}))
        assert recv_until(walker, is_type("pong"))["t"] == 1


def test_a_solo_camera_back_after_a_network_drop_keeps_its_calibration(walker_frames: list[bytes]) -> None:
    """The pipeline of a session whose camera left is freed after `pipeline_release_s`, counted from the
    camera's last sign of life. Counted from the session's creation, a phone that dropped off the network
    for a moment lost its treadmill calibration and its workout figures at once."""
    srv = start_server(pipeline_release_s=3.0)
    try:
        s = srv.create_session("solo")
        with connect(srv.ws_url("solo", s)) as solo, streaming(solo, walker_frames * 3, fps=10):
            recv_until(solo, lambda m: m["type"] == "status" and not m["treadmill"]["calibrating"], 10)
            time.sleep(1.5)  # the session is now older than the release time
        time.sleep(0.8)  # several watchdog rounds with the camera away
        with connect(srv.ws_url("solo", s)) as solo:
            stream(solo, walker_frames[:3], fps=10)
            status = recv_until(solo, is_type("status"))
            assert status["treadmill"]["calibrating"] is False
    finally:
        srv.stop()


def test_the_solo_phone_tells_the_walkers_height_and_the_belts_size(
    walker_frames: list[bytes], server: LiveServer
) -> None:
    """The belt's ends are placed at calibration from its length and width in walker heights (belts are
    127-152 cm long, walkers 1-2.2 m tall): the solo page tells them, a change calibrates again, bad ones are
    refused."""
    s = server.create_session("solo")
    setup = {"belt_length_m": 1.27, "belt_width_m": 0.46}
    with connect(server.ws_url("solo", s)) as solo:
        solo.send(json.dumps({"type": "settings", "sensitivity": "normal", "height_m": 1.6, **setup}))
        told = recv_until(solo, is_type("settings"))
        assert told["height_m"] == 1.6 and {k: told[k] for k in setup} == setup
        stream(solo, walker_frames[:4], fps=10)
        status = recv_until(solo, lambda m: m["type"] == "status" and m["seq"] == 3)
        assert status["treadmill"]["setup"] == {"body_height_m": 1.6, **setup}
        for bad in ({"belt_length_m": 3.0}, {"belt_width_m": "wide"}, {"height_m": 2.25}):
            solo.send(json.dumps({"type": "settings", "sensitivity": "normal", **bad}))
            assert recv_until(solo, is_type("error"))["code"] == "bad_settings"
        with connect(server.ws_url("walker", s)) as listener:  # a phone that only listens sets neither
            listener.send(json.dumps({"type": "settings", "sensitivity": "normal", "height_m": 1.9, **setup}))
            assert recv_until(listener, is_type("settings"))
            stream(solo, walker_frames[4:8], fps=10)
            status = recv_until(solo, lambda m: m["type"] == "status" and m["seq"] == 3)
            assert status["treadmill"]["setup"]["body_height_m"] == 1.6
    pair = server.create_session("partner")
    with connect(server.ws_url("walker", pair)) as walker:
        walker.send(json.dumps({"type": "settings", "sensitivity": "normal", "belt_length_m": 1.4}))
        assert (
            recv_until(walker, is_type("error"))["detail"] == "belt sizes are for the solo (treadmill) phone"
        )


def test_a_session_ends_on_request_with_its_token(server: LiveServer) -> None:
    s = server.create_session()
    url = f"{server.base}/api/sessions/{s['session_id']}"
    with connect(server.ws_url("walker", s)) as walker:
        assert httpx.delete(url, params={"token": "not-it"}).status_code == 403
        assert httpx.delete(url).status_code == 403
        assert httpx.delete(url, params={"token": s["token"]}).status_code == 204
        assert close_code(walker) == 1001
    assert httpx.delete(url, params={"token": s["token"]}).status_code == 404
    with connect(server.ws_url("walker", s)) as again:
        assert close_code(again) == 4404


def test_pinned_sessions_are_never_reaped(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sessions whose links `serve` prints stay good however long the phones take to be fetched."""

    async def run() -> bool:
        registry = SessionRegistry(Settings(session_unjoined_ttl_s=60), executor=None)  # type: ignore[arg-type]
        pinned = registry.create("solo", pinned=True)
        assert pinned is not None
        t0 = sessions_module.now_ms()
        monkeypatch.setattr(sessions_module, "now_ms", lambda: t0 + 3_600_000)
        await registry.reap()
        out = pinned.id in registry.sessions
        await registry.close_all()
        return out

    assert asyncio.run(run())


def test_a_session_no_socket_joined_ends_sooner(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sessions are made without a token: a burst of them that nobody joins must not hold the server full for
    the half hour a session that was used is kept."""

    async def run() -> tuple[bool, bool]:
        settings = Settings(session_unjoined_ttl_s=60, session_idle_ttl_s=1800)
        registry = SessionRegistry(settings, executor=None)  # type: ignore[arg-type]
        unjoined, used = registry.create("partner"), registry.create("partner")
        assert unjoined is not None and used is not None
        used.ever_joined = True  # as Session.welcome marks it
        t0 = sessions_module.now_ms()
        monkeypatch.setattr(sessions_module, "now_ms", lambda: t0 + 61_000)
        await registry.reap()
        out = (unjoined.id in registry.sessions, used.id in registry.sessions)
        await registry.close_all()
        return out

    assert asyncio.run(run()) == (False, True)


def test_heartbeats_reach_every_peer(server: LiveServer) -> None:
    s = server.create_session()
    with connect(server.ws_url("walker", s)) as walker:
        start = time.monotonic()
        beats = 0
        while time.monotonic() - start < 1.0:
            beats += json.loads(walker.recv(timeout=1))["type"] == "heartbeat"
        assert beats >= 3
        walker.send(json.dumps({"type": "ping", "t": 42}))
        assert recv_until(walker, is_type("pong"))["t"] == 42


@pytest.mark.parametrize(
    ("role", "token", "session_id", "code"),
    [
        ("walker", "wrong", None, 4401),
        ("camera", "", None, 4401),
        ("camera", None, "nosuch", 4404),
        ("spy", None, None, 4404),
    ],
)
def test_refused_connections_get_a_close_code(
    server: LiveServer, role: str, token: str | None, session_id: str | None, code: int
) -> None:
    s = server.create_session()
    if session_id:
        s["session_id"] = session_id
    with connect(server.ws_url(role, s, token)) as ws:
        assert close_code(ws) == code


def test_second_camera_is_refused_but_a_reconnect_after_silence_takes_over(
    server: LiveServer, walker_frames: list[bytes]
) -> None:
    s = server.create_session()
    with connect(server.ws_url("camera", s)) as cam:
        stream(cam, walker_frames[:2], fps=20)
        with connect(server.ws_url("camera", s)) as second:
            assert close_code(second) == 4409
        time.sleep(1.0)  # the first camera goes silent, as a phone does when its network drops
        with connect(server.ws_url("camera", s)) as third:
            stream(third, walker_frames[2:4], fps=20)
            assert recv_until(third, is_type("status"))["received"] >= 3
        assert close_code(cam) == 4410


def test_bad_input_gets_clear_errors_and_the_session_goes_on(
    server: LiveServer, walker_frames: list[bytes]
) -> None:
    s = server.create_session()
    with connect(server.ws_url("camera", s)) as cam:
        for bad, code in [
            (b"GIF89a not a jpeg", "bad_frame"),
            (walker_frames[0][:2000], "bad_frame"),
            (b"RGF1\x00\x05nope!", "bad_frame_header"),
            ('{"type": "ping"', "bad_json"),
            ('{"type": "launch"}', "unknown_type"),
            ("[]", "bad_message"),
        ]:
            cam.send(bad)
            err = recv_until(cam, is_type("error"))
            assert err["code"] == code and err["detail"]
        cam.send(pack_frame(walker_frames[1], seq=99))
        status = recv_until(cam, lambda m: m["type"] == "status" and m["seq"] == 99)
        assert status["walker"] is not None and status["bad_frames"] == 2


@pytest.mark.parametrize(
    ("role", "payload", "code"),
    [
        ("camera", b"\xff\xd8" + b"\0" * 1_100_000, 1009),  # over max_frame_bytes
        ("camera", "x" * 5000, 1009),  # over max_text_bytes
        ("walker", b"\xff\xd8\xff\xd9", 1003),  # walkers send no frames
    ],
)
def test_oversized_or_misplaced_messages_close_the_socket(
    server: LiveServer, role: str, payload: bytes | str, code: int
) -> None:
    s = server.create_session()
    with connect(server.ws_url(role, s), max_size=None) as ws:
        ws.send(payload)
        assert close_code(ws) == code


def test_flood_of_garbage_is_closed_and_other_sessions_keep_running(
    server: LiveServer, walker_frames: list[bytes]
) -> None:
    good, bad = server.create_session(), server.create_session()
    with connect(server.ws_url("camera", good)) as cam, connect(server.ws_url("camera", bad)) as vandal:
        with contextlib.suppress(ConnectionClosed):  # the server may close it before the 40th
            for _ in range(40):
                vandal.send("{")
        assert close_code(vandal) == 1008
        stream(cam, walker_frames[:3], fps=20)
        assert recv_until(cam, lambda m: m["type"] == "status" and m["seq"] == 2)["walker"] is not None


def test_newest_frame_wins_when_the_camera_outruns_the_pipeline(
    server: LiveServer, walker_frames: list[bytes]
) -> None:
    s = server.create_session()
    with connect(server.ws_url("camera", s)) as cam:
        cam.send(pack_frame(walker_frames[0], seq=-1))  # the first frame also loads the model
        recv_until(cam, lambda m: m["type"] == "status" and m["seq"] == -1)
        n = 120
        for i in range(n):  # as fast as the socket takes them: far faster than pose runs
            cam.send(pack_frame(walker_frames[i % len(walker_frames)], seq=i))
        last = recv_until(cam, lambda m: m["type"] == "status" and m["seq"] == n - 1, timeout=10)
        assert last["received"] == n + 1
        # The burst's first frame repeats the one that loaded the model: a repeat, not a new frame.
        assert last["repeated"] == 1
        assert last["dropped"] > n / 2 and last["processed"] + last["dropped"] + last["repeated"] == n + 1
        # The last frame waited for at most one frame's analysis, not for a queue of them.
        assert last["timings_ms"]["queued"] < 4 * last["timings_ms"]["pipeline"] + 50


def test_solo_socket_gets_both_status_and_cues(server: LiveServer) -> None:
    s = server.create_session("solo")
    with connect(server.ws_url("solo", s)) as solo:
        stream(solo, EMPTY[:12], fps=10)
        seen: dict[str, Msg] = {}
        recv_until(solo, lambda m: seen.setdefault(m["type"], m) is None or {"status", "cue"} <= set(seen))
        assert seen["status"]["walker"] is None
        assert seen["cue"]["kind"] == "walker_lost"


def test_server_full_is_a_clear_503() -> None:
    srv = start_server(max_sessions=1)
    try:
        assert httpx.post(f"{srv.base}/api/sessions", json={}).status_code == 201
        r = httpx.post(f"{srv.base}/api/sessions", json={})
        assert r.status_code == 503 and "full" in r.json()["detail"]
    finally:
        srv.stop()


def test_frames_are_not_written_to_disk(
    server: LiveServer, walker_frames: list[bytes], tmp_path: Any
) -> None:
    """Privacy: video is not stored. Nothing the server writes may grow while frames stream."""
    import os

    def files() -> set[str]:
        out = set()
        for root in (server.settings.data_dir, os.getcwd()):
            for dirpath, _, names in os.walk(root):
                if ".venv" in dirpath or ".git" in dirpath or "__pycache__" in dirpath:
                    continue
                out |= {os.path.join(dirpath, n) for n in names}
        return out

    before = files()
    s = server.create_session()
    with connect(server.ws_url("camera", s)) as cam:
        stream(cam, walker_frames[:5], fps=20)
        recv_until(cam, lambda m: m["type"] == "status" and m["seq"] == 4)
    assert {f for f in files() - before if not f.endswith((".pyc", ".tmp"))} == set()
    assert np.frombuffer(walker_frames[0][:2], np.uint8).tolist() == [0xFF, 0xD8]


def test_phrases_are_listed_and_rendered(server: LiveServer) -> None:
    import io
    import shutil
    import wave

    manifest = httpx.get(f"{server.base}/api/phrases").json()
    assert {"walker_lost", "camera_lost", "connection_lost", "stop", "person_urgent_left"} <= set(
        manifest["phrases"]
    )
    assert httpx.get(f"{server.base}/api/phrases/nope.wav").status_code == 404
    if shutil.which("espeak-ng") is None:
        assert manifest["rendered"] is False
        pytest.skip("espeak-ng is not installed: the page falls back to the browser's speech")
    r = httpx.get(server.base + manifest["phrases"]["walker_lost"]["url"])
    assert r.headers["content-type"] == "audio/wav" and "immutable" in r.headers["cache-control"]
    with wave.open(io.BytesIO(r.content)) as w:
        assert w.getnchannels() == 1 and 0.5 < w.getnframes() / w.getframerate() < 4


def test_sensitivity_setting_and_role_swap(server: LiveServer) -> None:
    s = server.create_session()
    with connect(server.ws_url("camera", s)) as cam, connect(server.ws_url("walker", s)) as walker:
        walker.send(json.dumps({"type": "settings", "sensitivity": "early"}))
        assert recv_until(walker, is_type("settings"))["sensitivity"] == "early"
        walker.send(json.dumps({"type": "settings", "sensitivity": "loud"}))
        assert recv_until(walker, is_type("error"))["code"] == "bad_settings"
        walker.send(json.dumps({"type": "swap"}))
        assert recv_until(walker, is_type("error"))["code"] == "bad_message"  # only the camera swaps
        cam.send(json.dumps({"type": "swap"}))
        assert recv_until(walker, is_type("swap"))["role"] == "camera"
        assert recv_until(cam, is_type("swap"))["role"] == "walker"


def test_the_walkers_height_reaches_the_sessions_ground_model(
    server: LiveServer, walker_frames: list[bytes]
) -> None:
    """The walker page's height setting, through a real socket into the pipeline's ground tracker: told
    before the pipeline exists (it is built with the first frame) and changed while it runs; null goes
    back to the 1.70 m prior, a message without it changes nothing, and what is not a height is refused."""
    s = server.create_session()
    session = server.server.config.app.state.registry.get(s["session_id"])
    assert session is not None

    def ruler() -> float:
        assert session.pipeline is not None and session.pipeline._path is not None
        return float(session.pipeline._path.ground.config.walker_height_m)

    def settle(expected: float) -> None:
        deadline = time.monotonic() + 5
        while ruler() != expected and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ruler() == expected

    with connect(server.ws_url("camera", s)) as cam, connect(server.ws_url("walker", s)) as walker:
        walker.send(json.dumps({"type": "settings", "sensitivity": "normal", "height_m": 1.82}))
        assert recv_until(walker, is_type("settings"))["height_m"] == 1.82
        stream(cam, walker_frames[:2], fps=10)
        recv_until(cam, lambda m: m["type"] == "status" and m["seq"] == 1)
        settle(1.82)
        walker.send(json.dumps({"type": "settings", "sensitivity": "normal", "height_m": 1.64}))
        assert recv_until(walker, is_type("settings"))["height_m"] == 1.64
        settle(1.64)
        walker.send(json.dumps({"type": "settings", "sensitivity": "early"}))  # unchanged
        assert recv_until(walker, is_type("settings"))["height_m"] == 1.64
        for bad in ("3.0", '"tall"', "true", "NaN"):
            walker.send('{"type": "settings", "sensitivity": "normal", "height_m": ' + bad + "}")
            assert recv_until(walker, is_type("error"))["code"] == "bad_settings", bad
        assert session.walker_height_m == 1.64
        walker.send(json.dumps({"type": "settings", "sensitivity": "normal", "height_m": None}))
        assert recv_until(walker, is_type("settings"))["height_m"] is None
        settle(1.70)


def test_a_drilled_hazard_escalates_by_time_to_contact(walker_frames: list[bytes], tmp_path: Any) -> None:
    """Scripted hazards go through the same policy as detected ones: advisory, urgent, stop, then quiet."""
    drill = tmp_path / "drill.json"
    drill.write_text(
        json.dumps([{"kind": "dog", "side": "right", "start_s": 0.5, "distance_m": 3.5, "closing_mps": 1.0}])
    )
    srv = start_server(drill=str(drill))
    try:
        s = srv.create_session()
        with (
            connect(srv.ws_url("camera", s)) as cam,
            connect(srv.ws_url("walker", s)) as walker,
            streaming(cam, walker_frames * 2),
        ):
            # The drilled dog only: the real clip may hold hazards of its own (not under test here).
            cues = [
                recv_until(walker, lambda m: m["type"] == "cue" and m["key"] == "drill0", timeout=8)
                for _ in range(3)
            ]
            alerts = []
            while not alerts or alerts[-1]["active"]:
                alert = recv_until(walker, is_type("alert"), timeout=3)
                alerts.append({**alert, "active": [a for a in alert["active"] if a["key"] == "drill0"]})
    finally:
        srv.stop()
    assert [(c["tier"], c["kind"], c["side"], c["phrase"]) for c in cues] == [
        ("advisory", "dog", "right", "dog_right"),
        ("urgent", "dog", "right", "dog_urgent_right"),
        ("stop", "dog", "right", "stop"),
    ]
    # Each tier at its threshold, on whichever frame was analysed first past it (frames drop under load).
    ttc = [c["ttc_s"] for c in cues]
    assert 1.5 < ttc[0] <= 3.0 and 1.0 < ttc[1] <= 1.5 and ttc[2] <= 1.0
    assert all(abs((c["t"] - cues[0]["t"]) - (ttc[0] - c["ttc_s"])) < 0.02 for c in cues)  # 1 m/s closing
    ttcs = [a["active"][0]["ttc_s"] for a in alerts if a["active"]]
    assert ttcs == sorted(ttcs, reverse=True) and ttcs[-1] < 1.0


def test_a_bad_drill_file_stops_the_server_at_start_up(tmp_path: Any) -> None:
    drill = tmp_path / "drill.json"
    drill.write_text(
        json.dumps([{"kind": "dog", "side": "behind", "start_s": 0, "distance_m": 3, "closing_mps": 1}])
    )
    with pytest.raises(ValueError, match=r"drill\[0\]\.side"):
        start_server(drill=str(drill))


def test_solo_session_runs_the_treadmill_monitor_and_recalibrates(
    walker_frames: list[bytes], server: LiveServer
) -> None:
    s = server.create_session("solo")
    with connect(server.ws_url("solo", s)) as solo:
        stream(solo, walker_frames[:6], fps=10)
        status = recv_until(solo, lambda m: m["type"] == "status" and m["seq"] == 5)
        assert status["treadmill"]["calibrating"] is True and "steps" in status["treadmill"]["figures"]
        solo.send(json.dumps({"type": "recalibrate"}))
        assert recv_until(solo, is_type("recalibrating"))
        for _ in range(300):  # a burst of taps is one request, not 300 answers that overflow the outbox
            solo.send(json.dumps({"type": "recalibrate"}))
        solo.send(json.dumps({"type": "ping", "t": 7}))
        assert recv_until(solo, is_type("pong"))["t"] == 7
    s = server.create_session("partner")
    with connect(server.ws_url("camera", s)) as cam:
        stream(cam, walker_frames[:2], fps=10)
        assert recv_until(cam, lambda m: m["type"] == "status" and m["seq"] == 1)["treadmill"] is None
        cam.send(json.dumps({"type": "recalibrate"}))
        assert recv_until(cam, is_type("error"))["code"] == "bad_message"


# The partner's path view as the pipeline hands it over (vision/types.py PATH_KEYS), numpy scalars and all.
PATH = {
    "coverage": np.float32(0.4321),
    "coverage_by_m": [0.204, 0.456, np.float64(0.6)],
    "coverage_low": True,
    "coach": "Walk half a step to your left",
    "coach_id": "coach_left",
    "walker_speed_mps": 0.6189,
    "motion_known": True,
    "heading_deg": 3.2,
    "distance_m": 2.4,
    "camera_height_m": np.float64(1.3249),
    "camera_height_measured": True,
    "corridor_px": [[150.4, 500.6], [210.0, 500.0], [205.2, 300.0], [160.0, 300.0]],
    "obstacles": [
        {
            "id": 7,
            "kind": "bin",
            "distance_m": 2.123,
            "distance_sd_m": 0.31,
            "closing_mps": 0.6,
            "ttc_s": 3.538,
            "side": "left",
            "in_corridor": True,
            "box_px": [170.2, 280.0, 195.7, 330.0],
        }
    ],
}
PATH_SENT = {
    "coverage": 0.43,
    "coverage_by_m": [0.2, 0.46, 0.6],
    "coverage_low": True,
    "coach": "Walk half a step to your left",
    "coach_id": "coach_left",
    "walker_speed_mps": 0.62,
    "motion_known": True,
    "camera_height_m": 1.32,
    "camera_height_measured": True,
    "corridor_px": [[150, 501], [210, 500], [205, 300], [160, 300]],
    "obstacles": [
        {
            "id": 7,
            "kind": "bin",
            "distance_m": 2.12,
            "distance_sd_m": 0.31,
            "closing_mps": 0.6,
            "ttc_s": 3.54,
            "side": "left",
            "in_corridor": True,
            "box_px": [170, 280, 196, 330],
        }
    ],
}


def from_path(h: Hazard) -> bool:
    """A hazard the pipeline derived from its own view of the path (obstacles, path_hidden)."""
    return h.kind in NOTICE_KINDS or h.key.startswith("obs:")


HIDDEN = Hazard(kind="path_hidden", tier="advisory", text="I cannot see behind you", key="path_hidden")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ({}, None),
        (PATH, PATH_SENT),
        # Unknown parts are null, never an error: a status must not cost the session its vision loop.
        (
            {"coverage": None, "coverage_by_m": [float("nan"), 0.5, None], "corridor_px": [[1, 2], [3]]},
            {
                "coverage": None,
                "coverage_by_m": [None, 0.5, None],
                "coverage_low": False,
                "coach": None,
                "coach_id": None,
                "walker_speed_mps": None,
                "motion_known": None,
                "camera_height_m": None,
                "camera_height_measured": False,
                "corridor_px": None,
                "obstacles": [],
            },
        ),
    ],
)
def test_path_payload_rounds_and_tolerates_missing_parts(path: Msg, expected: Msg | None) -> None:
    assert path_payload(path) == expected


def test_path_payload_drops_malformed_obstacles_and_bounds_the_message() -> None:
    many = [{"kind": "pole", "box_px": [0, 0, 10, 10]}] * 20 + ["junk", {"box_px": "no"}]
    sent = path_payload({"coverage": 1, "obstacles": many, "corridor_px": [[i, i] for i in range(500)]})
    assert sent is not None and len(sent["obstacles"]) == 8 and len(sent["corridor_px"]) == 64
    assert path_payload({"obstacles": [{"box_px": "no"}]})["obstacles"][0]["box_px"] is None  # type: ignore[index]


@pytest.fixture
def path_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every partner frame's Analysis carries PATH and, while the walker is in view, the path_hidden notice.
    Injected so that the path view is known exactly: what is under test here is how the server carries it
    (status, state, cues), on real frames through real MediaPipe and real sockets."""
    real = Pipeline.process_jpeg

    def process_jpeg(
        self: Pipeline, data: bytes, timestamp_ms: int, pitch_deg: float | None = None
    ) -> Analysis:
        a = real(self, data, timestamp_ms, pitch_deg)
        own = tuple(h for h in a.hazards if not from_path(h))  # PATH replaces the real path view
        hazards = (*own, HIDDEN) if a.walker is not None else own
        return dataclasses.replace(a, path=PATH, hazards=hazards)

    monkeypatch.setattr(Pipeline, "process_jpeg", process_jpeg)


@pytest.mark.usefixtures("path_seen")
def test_status_carries_the_path_and_the_walker_hears_path_hidden_once(
    server: LiveServer, walker_frames: list[bytes]
) -> None:
    s = server.create_session()
    with (
        connect(server.ws_url("camera", s)) as cam,
        connect(server.ws_url("walker", s)) as walker,
        streaming(cam, walker_frames * 2),
    ):
        status = recv_until(cam, lambda m: m["type"] == "status" and m["walker"] is not None, timeout=8)
        assert status["path"] == PATH_SENT
        assert "path_hidden" in status["hazards"]
        msgs = collect(walker, 2.0)  # every walker message for 2 s of the walker in view, path hidden
    states = [m for m in msgs if m["type"] == "state"]
    assert states[-1] == {"type": "state", "v": 1, "watching": True, "reason": None, "path_hidden": True}
    cues = [m for m in msgs if m["type"] == "cue"]
    assert [(c["kind"], c["tier"], c["phrase"], c["text"]) for c in cues] == [
        ("path_hidden", "advisory", "path_hidden", "I cannot see behind you")
    ]
    # A notice never drives the beeper: it is never among the hazards sounding now.
    assert all(a["kind"] != "path_hidden" for m in msgs if m["type"] == "alert" for a in m["active"])
