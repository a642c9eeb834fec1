"""Sessions: a camera, its walkers, a newest-frame-wins slot, and the loops for vision and the watchdog."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import secrets
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import WebSocket

from server.config import Settings
from server.protocol import (
    CLOSE_GOING_AWAY,
    CLOSE_TOO_SLOW,
    FrameEnvelope,
    alert_message,
    cue_message,
    encode,
    message,
    path_payload,
    pose_payload,
)
from vision.alerts import Active, AlertPolicy
from vision.pipeline import FrameDecodeError, Pipeline
from vision.types import Hazard

logger = logging.getLogger(__name__)
Mode = Literal["partner", "solo"]


def now_ms() -> float:
    return time.monotonic() * 1000.0


@dataclass(frozen=True)
class PendingFrame:
    envelope: FrameEnvelope
    received_ms: float  # server monotonic clock
    sender: Peer | None = None  # the camera socket it came from: its analysis is dropped if that has gone


class FrameSlot:
    """Newest frame wins: one slot, a new frame overwrites an unprocessed one and the drop is counted.

    Frames are never queued, so latency cannot grow when the camera outruns the pipeline."""

    def __init__(self) -> None:
        self._item: PendingFrame | None = None
        self._ready = asyncio.Event()
        self.dropped = 0

    def put(self, item: PendingFrame) -> None:
        if self._item is not None:
            self.dropped += 1
        self._item = item
        self._ready.set()

    def waiting_since(self) -> float | None:
        """When the frame waiting in the slot arrived (None: the slot is empty)."""
        return None if self._item is None else self._item.received_ms

    async def take(self) -> PendingFrame:
        while self._item is None:
            self._ready.clear()
            await self._ready.wait()
        item, self._item = self._item, None
        self._ready.clear()
        return item


class Peer:
    """One connected socket with a bounded outbox and its own writer task.

    A slow reader never blocks the vision loop: the latest status replaces an unsent one, and a peer
    that lets `max_queued` messages pile up is closed (4008) rather than buffered without bound."""

    def __init__(self, ws: WebSocket, role: str, session_id: str, max_queued: int = 64) -> None:
        self.ws = ws
        self.role = role
        self.session_id = session_id
        self.max_queued = max_queued
        self.last_heard_ms = now_ms()
        self.error_times: collections.deque[float] = collections.deque(maxlen=256)
        self._queue: collections.deque[str] = collections.deque()
        self._status: str | None = None
        self._wake = asyncio.Event()
        self._closed = False
        self._closer: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writer = asyncio.create_task(self._write_loop(), name=f"peer-{role}-{session_id}")

    def alive(self, t_ms: float) -> bool:
        """Heard from within three seconds: pages ping every 2 s, so a socket silent longer is a phone that
        dropped off the network while TCP has not noticed."""
        return t_ms - self.last_heard_ms < 3000

    def keep(self, task: asyncio.Task[None]) -> None:
        """Hold a reference to a task started for this peer until it ends."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def send(self, msg: dict[str, Any]) -> None:
        if self._closed:
            return
        if len(self._queue) >= self.max_queued:
            logger.warning("session %s: %s peer too slow, closing", self.session_id, self.role)
            self._closed = True
            self._wake.set()
            self._closer = asyncio.create_task(
                self._close(CLOSE_TOO_SLOW, "client does not read its messages")
            )
            return
        self._queue.append(encode(msg))
        self._wake.set()

    def send_status(self, msg: dict[str, Any]) -> None:
        """Statuses are latest-wins: an unsent one is replaced, never queued behind."""
        if not self._closed:
            self._status = encode(msg)
            self._wake.set()

    async def _write_loop(self) -> None:
        try:
            while not self._closed:
                await self._wake.wait()
                self._wake.clear()
                while self._queue and not self._closed:
                    await self.ws.send_text(self._queue.popleft())
                if self._status is not None and not self._closed:
                    text, self._status = self._status, None
                    await self.ws.send_text(text)
        except Exception as exc:  # a dead socket: its receive loop ends the peer
            logger.debug("session %s: %s writer stopped: %r", self.session_id, self.role, exc)

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close(code=code, reason=reason)

    async def close(self, code: int, reason: str) -> None:
        self._closed = True
        self._wake.set()
        await self._close(code, reason)

    def stop(self) -> None:
        self._closed = True
        self._wake.set()
        self._writer.cancel()


class CaptureClock:
    """When each frame was taken, on the session's clock (ms). The vision measures motion between frames (the
    ground's flow, tracks' closing speeds, steps), so frames must be as far apart as they were taken, not as
    they arrived: Wi-Fi delivers frames late by a few to a hundred milliseconds, unevenly and in bursts, and
    two frames taken 133 ms apart but received 70 ms apart read the walker's speed nearly twice too fast. The
    phone stamps each frame with its own clock (header `t`: the camera's capture time of the frame). A
    camera's first frame is timed by its arrival, and each later one that far after the one before as their
    stamps are apart, whatever the network did meanwhile (a stall and the burst after it keep their
    spacing). A stamp that does not go forward, or goes further forward than the frames' arrivals allow
    (`jump_ms` more: a clock that restarted or jumped), is not believed: that frame is as far after the one
    before as it arrived. A frame without a stamp is timed by its arrival; times only increase (the pose
    model's video mode needs it)."""

    def __init__(self, jump_ms: float = 2000.0) -> None:
        self.jump_ms = jump_ms
        self.sender: object | None = None
        self.last: tuple[float, float | None, float] | None = None  # (time, stamp, arrival) of the last frame

    def __call__(self, capture_ms: float | None, received_ms: float, sender: object | None = None) -> float:
        if sender is not self.sender or self.last is None:
            self.sender = sender
            t = received_ms if self.last is None else max(received_ms, self.last[0] + 1.0)
        else:
            last_t, last_stamp, last_arrival = self.last
            step = arrived = received_ms - last_arrival
            if capture_ms is not None and last_stamp is not None:
                taken = capture_ms - last_stamp
                if 0.0 < taken <= max(arrived, 0.0) + self.jump_ms:  # else not believed: by arrival
                    step = taken
            t = last_t + max(1.0, step)
        self.last = (t, capture_ms, received_ms)
        return t


@dataclass
class SessionStats:
    received: int = 0
    processed: int = 0
    bad_frames: int = 0
    repeated: int = 0  # frames byte for byte the same as the one before: a frozen picture, not counted
    fps: float = 0.0
    _recent: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=30))

    def tick(self, t_ms: float) -> None:
        self._recent.append(t_ms)
        if len(self._recent) >= 2:
            span = self._recent[-1] - self._recent[0]
            self.fps = (len(self._recent) - 1) * 1000.0 / span if span > 0 else 0.0


class Session:
    """A pair (or a solo user) and everything the server keeps for it. Lives on the event loop."""

    def __init__(self, settings: Settings, executor: Executor, mode: Mode = "partner") -> None:
        self.id = secrets.token_urlsafe(6)
        self.token = secrets.token_urlsafe(18)
        self.mode: Mode = mode
        self.settings = settings
        self.executor = executor
        self.created_ms = now_ms()
        self.last_activity_ms = self.created_ms
        self.camera: Peer | None = None
        self.walkers: set[Peer] = set()
        self.slot = FrameSlot()
        self.stats = SessionStats()
        self.policy = AlertPolicy(settings.alert_config())
        self.pipeline: Pipeline | None = None
        self.walker_height_m: float | None = None  # told by the walker page; None: the ground's 1.70 m prior
        self.belt: dict[str, float | None] = {}  # solo: the belt's size as told (None: the default)
        self.recalibrated_ms = -1e18  # when the solo phone last asked to recalibrate (ms; never)
        self.last_frame_ms: float | None = None  # the last new frame's arrival
        self.camera_left_ms: float | None = None  # when the camera's socket last closed
        self.analysed_ms: float | None = None  # the last frame analysed
        self.capture_clock = CaptureClock()  # frames are analysed at the time they were taken
        self.unanalysed_since_ms: float | None = None  # the oldest frame come in since then
        self._last_digest = b""
        self._build_retry_ms = 0.0  # the pose model failed to load: not tried again before this
        self.camera_ever_streamed = False
        self.ever_joined = False  # a socket has joined it once (an unjoined session ends sooner)
        self.pinned = False  # the ready-made sessions `serve` prints: their links work as long as it runs
        self.watching = False  # the last state told to walkers
        self.path_hidden = False  # ditto: the walker is in view but the path behind them is not
        self._cue_id = 0
        self._alert_sig: tuple[tuple[str, str], ...] = ()
        self._alert_sent_ms = 0.0
        self._tasks = [
            asyncio.create_task(self._vision_loop(), name=f"vision-{self.id}"),
            asyncio.create_task(self._watchdog_loop(), name=f"watchdog-{self.id}"),
        ]
        for task in self._tasks:
            task.add_done_callback(self._task_ended)

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        """A session's loop ends only when the session closes. One that dies of a bug is logged with its
        traceback: the vision loop once died of one without a word, and the walker heard only "vision lost"
        (the watchdog's stop, the safe side) with nothing in the log to say why."""
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("session %s: %s stopped", self.id, task.get_name(), exc_info=exc)

    # -- sockets ---------------------------------------------------------------------------------
    def check_token(self, token: str | None) -> bool:
        return token is not None and secrets.compare_digest(token.encode(), self.token.encode())

    def listeners(self) -> list[Peer]:
        """Peers that hear cues: walkers, and the camera itself in solo mode."""
        peers = list(self.walkers)
        if self.mode == "solo" and self.camera is not None and self.camera not in self.walkers:
            peers.append(self.camera)
        return peers

    def live_listeners(self) -> int:
        """Devices that will play a cue: connected and heard from within three seconds (they ping)."""
        t = now_ms()
        return sum(1 for p in self.listeners() if p.alive(t))

    def touch(self) -> None:
        self.last_activity_ms = now_ms()

    def idle(self) -> bool:
        if self.pinned:
            return False
        has_peer = self.camera is not None or bool(self.walkers)
        ttl = self.settings.session_idle_ttl_s if self.ever_joined else self.settings.session_unjoined_ttl_s
        return not has_peer and now_ms() - self.last_activity_ms > ttl * 1000

    def camera_stale(self) -> bool:
        if self.camera is None:
            return True
        return now_ms() - self.camera.last_heard_ms > self.settings.camera_timeout_s * 1000

    def offer_frame(self, envelope: FrameEnvelope, received_ms: float, sender: Peer | None = None) -> None:
        """A frame from the camera. One byte for byte the same as the one before is a frozen picture (a
        camera that stopped delivering while the page goes on encoding its last image; a real sensor's noise
        makes every frame differ): it does not count as a frame, so the camera-lost stop comes as for
        silence."""
        self.stats.received += 1
        self.camera_ever_streamed = True
        digest = hashlib.blake2b(envelope.jpeg, digest_size=16).digest()
        if digest == self._last_digest:
            self.stats.repeated += 1
            return
        self._last_digest = digest
        self.last_frame_ms = received_ms
        if self.unanalysed_since_ms is None:
            self.unanalysed_since_ms = received_ms
        self.slot.put(PendingFrame(envelope, received_ms, sender))

    def frames_stopped(self, t_ms: float) -> bool:
        """No new frame for `camera_timeout_s` (or none yet)."""
        return self.last_frame_ms is None or t_ms - self.last_frame_ms > self.settings.camera_timeout_s * 1000

    def vision_blind(self, t_ms: float) -> bool:
        """Frames come in, but none has been analysed for `camera_timeout_s` since the last one that was
        (for `vision_start_s` since the first frame, before any, while the pose model loads): a failing or
        hung pipeline is as blind as a lost camera."""
        if self.unanalysed_since_ms is None:
            return False
        if self.analysed_ms is None:
            return t_ms - self.unanalysed_since_ms > self.settings.vision_start_s * 1000
        return t_ms - self.analysed_ms > self.settings.camera_timeout_s * 1000

    # -- cues --------------------------------------------------------------------------------------
    def _apply_hazards(
        self, t_ms: float, hazards: list[Hazard], seq: int | None, capture_ms: float | None
    ) -> float | None:
        out = self.policy.update(t_ms / 1000.0, hazards)
        sent_ms = None
        for cue in out.cues:
            self._cue_id += 1
            msg = cue_message(cue, self._cue_id, seq, capture_ms)
            listeners = self.listeners()
            for peer in listeners:
                peer.send(msg)
            if self.camera is not None and self.camera not in listeners:
                self.camera.send(msg | {"display_only": True})  # the partner sees what the walker hears
            sent_ms = now_ms()
            logger.info("session %s: cue %s %s (%s)", self.id, cue.tier, cue.kind, cue.text)
        self._tell_alert(out.active, t_ms)
        self._tell_state()
        return sent_ms

    def _tell_alert(self, active: tuple[Active, ...], t_ms: float) -> None:
        """The walker page beeps faster as the top hazard's time to contact falls: it needs fresh figures
        (every `alert_interval_s` while something sounds) and one message when all is clear again."""
        sig = tuple((a.key, a.tier) for a in active)
        fresh = t_ms - self._alert_sent_ms < self.settings.alert_interval_s * 1000
        if sig == self._alert_sig and (not active or fresh):
            return
        self._alert_sig, self._alert_sent_ms = sig, t_ms
        msg = alert_message(active)
        for peer in self.listeners():
            peer.send(msg)
        if self.camera is not None and self.camera not in self.listeners():
            self.camera.send(msg)  # the partner's screen shows what the walker hears

    def _tell_state(self) -> None:
        """Tell everyone when the system starts or stops watching, or stops seeing the path behind the
        walker; silence is only clear while watching and the path is seen."""
        watching = (
            self.camera is not None
            and not self.camera_stale()
            and self.analysed_ms is not None  # not before a frame has been analysed
            and not self.vision_blind(now_ms())
            and not self.policy.blind
        )
        path_hidden = watching and "path_hidden" in self.policy.notices
        if (watching, path_hidden) != (self.watching, self.path_hidden):
            self.watching, self.path_hidden = watching, path_hidden
            msg = self.state_message()
            for peer in {*self.listeners(), *([self.camera] if self.camera else [])}:
                peer.send(msg)

    def state_message(self) -> dict[str, Any]:
        return message(
            "state",
            watching=self.watching,
            reason=None if self.watching else self._blind_reason(),
            path_hidden=self.path_hidden,
        )

    def _blind_reason(self) -> str:
        t = now_ms()
        if self.camera is None or self.camera_stale() or self.frames_stopped(t):
            return "camera_lost" if self.camera_ever_streamed else "camera_not_connected"
        if self.analysed_ms is None or self.vision_blind(t):
            return "vision_lost"  # frames come in, but none is analysed (the model loading, or failing)
        return "walker_lost"

    def welcome(self, peer: Peer) -> None:
        self.ever_joined = True
        peer.send(message("welcome", session_id=self.id, role=peer.role, mode=self.mode))
        peer.send(self.state_message())

    # -- loops ----------------------------------------------------------------------------------------
    async def _vision_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            item = await self.slot.take()
            started_ms = now_ms()
            env = item.envelope
            if self.pipeline is None:
                if started_ms < self._build_retry_ms:
                    continue  # the model failed to load a moment ago; the watchdog tells the walker
                try:
                    self.pipeline = await loop.run_in_executor(self.executor, self._new_pipeline)
                except Exception as exc:
                    # Not swallowed: logged, the camera told, and tried again in a while (a load takes
                    # most of a second on the shared vision threads); the walker hears the stop cue from
                    # the watchdog, since no frame is analysed.
                    logger.exception("session %s: the pose model could not be loaded", self.id)
                    self._build_retry_ms = now_ms() + self.settings.vision_retry_s * 1000
                    if self.camera is not None:
                        self.camera.send(
                            message("error", code="vision_unavailable", detail=f"pose model failed: {exc}")
                        )
                    continue
                await self.apply_told()  # told while the pipeline was being built
            try:
                taken_ms = self.capture_clock(env.capture_ms, item.received_ms, item.sender)
                ts = int(taken_ms - self.created_ms)
                analysis = await loop.run_in_executor(
                    self.executor, self.pipeline.process_jpeg, env.jpeg, ts, env.pitch_deg
                )
            except FrameDecodeError as exc:
                self.stats.bad_frames += 1
                if self.camera is not None:
                    self.camera.send(message("error", code="bad_frame", detail=str(exc), seq=env.seq))
                continue
            except Exception:
                if self.pipeline is None:
                    continue  # released while this frame was analysed
                logger.exception("session %s: vision failed on a frame", self.id)
                self.stats.bad_frames += 1
                continue
            if item.sender is not None and item.sender is not self.camera:
                continue  # its camera closed while it was analysed: the camera-lost stop stands
            analysed_ms = now_ms()
            self.analysed_ms = analysed_ms
            self.unanalysed_since_ms = self.slot.waiting_since()
            self.stats.processed += 1
            self.stats.tick(analysed_ms)
            cue_ms = self._apply_hazards(item.received_ms, list(analysis.hazards), env.seq, env.capture_ms)
            if self.camera is not None:
                t = analysis.timings_ms
                self.camera.send_status(
                    message(
                        "status",
                        seq=env.seq,
                        capture_ms=env.capture_ms,
                        t_ms=ts,  # the frame's time as analysed: when it was taken, on the session's clock
                        timings_ms={
                            "queued": round(started_ms - item.received_ms, 2),
                            "decode": round(t.get("decode", 0.0), 2),
                            "pose": round(t["pose"], 2),
                            "pipeline": round(t["pipeline"] + t.get("decode", 0.0), 2),
                            "analysed": round(analysed_ms - item.received_ms, 2),
                            "cue_sent": None if cue_ms is None else round(cue_ms - item.received_ms, 2),
                            "server": round(now_ms() - item.received_ms, 2),
                        },
                        frame_wh=list(analysis.frame_wh),
                        walker=pose_payload(analysis),
                        people=len(analysis.people),
                        hazards=[h.kind for h in analysis.hazards],
                        fps=round(self.stats.fps, 1),
                        treadmill={k: v for k, v in analysis.mode_state.items() if k != "calibration"}
                        or None,
                        path=path_payload(analysis.path),
                        listeners=self.live_listeners(),
                        received=self.stats.received,
                        processed=self.stats.processed,
                        dropped=self.slot.dropped,
                        bad_frames=self.stats.bad_frames,
                        repeated=self.stats.repeated,
                    )
                )

    async def _watchdog_loop(self) -> None:
        """Heartbeats to every peer, and the camera-lost stop cue when frames stop coming."""
        interval = self.settings.heartbeat_interval_s
        while True:
            await asyncio.sleep(interval)
            t = now_ms()
            hb = message(
                "heartbeat",
                t=round(t),
                watching=self.watching,
                reason=None if self.watching else self._blind_reason(),
                path_hidden=self.path_hidden,
            )
            peers = [*self.walkers, *([self.camera] if self.camera else [])]
            for peer in peers:
                peer.send(hb)
            no_frames = self.frames_stopped(t)
            if self.camera_ever_streamed and (no_frames or self.vision_blind(t)) and self.listeners():
                # Blind because nothing new is coming in, or nothing that comes in is analysed: the vision
                # loop gives the policy nothing, so the watchdog feeds it. Frame-time and watchdog-time
                # share the server's monotonic clock.
                self._apply_hazards(
                    t, [Hazard(kind="camera_lost", tier="stop", text="Stop. Camera lost")], None, None
                )
            elif not no_frames:
                self._tell_state()
            if self.camera is None and self.pipeline is not None and no_frames:
                # From the camera's last sign of life: a phone that drops off the network for a second gets
                # its pipeline back as it was (a treadmill's calibration and workout figures live in it; from
                # the session's creation, any session older than the limit lost them at once)
                idle_s = (t - max(self.last_frame_ms or self.created_ms, self.camera_left_ms or 0.0)) / 1000
                if idle_s > self.settings.pipeline_release_s:
                    await self._release_pipeline()

    def _new_pipeline(self) -> Pipeline:
        # A solo phone watches a treadmill walker: zones and body state, not obstacles.
        return Pipeline(self.settings.pipeline_config("treadmill" if self.mode == "solo" else "partner"))

    async def apply_told(self) -> None:
        """Hands what the pages told (the walker's height, None: not told; a solo belt's size) to this
        session's pipeline; one built later gets it when it is built. The newest values when the executor gets
        to them: quick changes end on the last one."""
        pipeline = self.pipeline
        if pipeline is None:
            return
        if self.mode == "solo":
            height, length, width = (
                self.walker_height_m,
                self.belt.get("belt_length_m"),
                self.belt.get("belt_width_m"),
            )
            await asyncio.get_running_loop().run_in_executor(
                self.executor, lambda: pipeline.set_treadmill_setup(height, length, width)
            )
            return
        await asyncio.get_running_loop().run_in_executor(
            self.executor, lambda: pipeline.set_walker_height(self.walker_height_m)
        )

    async def recalibrate(self) -> None:
        if self.pipeline is not None:
            await asyncio.get_running_loop().run_in_executor(self.executor, self.pipeline.recalibrate)

    def camera_gone(self) -> None:
        """The camera socket closed: walkers hear the stop cue now, not after the timeout."""
        self.camera = None
        self.camera_left_ms = now_ms()
        self.unanalysed_since_ms = None
        self._last_digest = b""
        if self.camera_ever_streamed:
            self.last_frame_ms = None
            self._apply_hazards(
                now_ms(), [Hazard(kind="camera_lost", tier="stop", text="Stop. Camera lost")], None, None
            )

    async def _release_pipeline(self) -> None:
        """Free the model (~100 MB) of a session whose camera is gone; a returning camera reloads it."""
        if self.pipeline is not None:
            pipeline, self.pipeline = self.pipeline, None
            await asyncio.get_running_loop().run_in_executor(self.executor, pipeline.close)
            logger.info("session %s: camera away, pose model released", self.id)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for peer in [*self.walkers, *([self.camera] if self.camera else [])]:
            await peer.close(CLOSE_GOING_AWAY, "session closed")
            peer.stop()
        await self._release_pipeline()


class SessionRegistry:
    def __init__(self, settings: Settings, executor: Executor) -> None:
        self.settings = settings
        self.executor = executor
        self.sessions: dict[str, Session] = {}

    def create(self, mode: Mode, pinned: bool = False) -> Session | None:
        """A new session, or None when the server is full. `pinned`: never closed for being idle (the
        links `serve` prints; an unjoined session otherwise ends after a couple of minutes)."""
        if len(self.sessions) >= self.settings.max_sessions:
            return None
        session = Session(self.settings, self.executor, mode)
        session.pinned = pinned
        self.sessions[session.id] = session
        logger.info("session %s: created (%s)", session.id, mode)
        return session

    def get(self, session_id: str) -> Session | None:
        return self.sessions.get(session_id)

    async def reap(self) -> None:
        for sid in [s.id for s in self.sessions.values() if s.idle()]:
            session = self.sessions.pop(sid)
            logger.info("session %s: idle, closed", sid)
            await session.close()

    async def end(self, session_id: str) -> None:
        session = self.sessions.pop(session_id, None)
        if session is not None:
            logger.info("session %s: ended on request", session_id)
            await session.close()

    async def close_all(self) -> None:
        for session in list(self.sessions.values()):
            await session.close()
        self.sessions.clear()
