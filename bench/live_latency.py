"""Live latency benchmark: a real Rearguard server, real clip frames, real WebSockets on loopback.

Run by hand from the repository root:

    .venv/bin/python bench/live_latency.py [--clip NAME] [--duration SECONDS] [--fps 15 30] [--json PATH]

What it does, in one run:

1. Starts the real service as a subprocess (`python -m server serve --host 127.0.0.1 --port <free>`),
   waits for GET /healthz to answer 200, and always terminates it at the end (try/finally).
2. Loads the frames of a real clip (default /work/shared/clips/squats_facing_camera.mp4), downscales
   them to 640 px on the long side as the camera page does, and JPEG-encodes them once (quality 80).
3. For each rate in --fps: creates a session (POST /api/sessions, mode "partner"), opens a walker
   socket and a camera socket, warms the pipeline up (frames not counted), then streams the frames in
   a loop, paced at that rate, for --duration seconds: `pack_frame(jpeg, seq=i, t=<client ms>)`.
   Every --gap-every seconds the last --gap-length seconds are plain grey frames (nobody in view; with a
   sensor's noise, no two alike), so the server raises "walker_lost" stop cues on the walker socket.
   Measured per processed frame (one status per processed frame, but statuses are latest-wins, so a
   few may be skipped):
     end-to-end   = status receipt time - send time of that seq          (client monotonic clock)
     server-added = end-to-end - timings_ms.pose                         (everything but the model)
     frame-to-cue = cue receipt time (walker socket) - send time of the cue's seq
     gap-to-cue   = cue receipt time - send time of the gap's first grey frame (includes the grace)
   Frames sent / received / processed / dropped (newest-frame-wins slot) come from the status
   counters, taken as deltas from the end of the warm-up. Latency of the first vs the last minute of
   the stream is compared (first vs last third when --duration < 120 s). The server's RSS
   (/proc/PID/status VmRSS) is sampled every --rss-interval seconds.
4. With the server idle afterwards, times in this process, on the same JPEG frames, (a) raw MediaPipe
   `PoseEstimator.detect(rgb, ts)` and (b) the whole `Pipeline.process_jpeg(jpeg, ts)` (decode, convert,
   pose, walker selection, hazards), alternating a/b frame by frame (ABBA order) to be fair on a noisy
   machine, and prints median / p95 and the pipeline/raw ratio.
5. Prints a plain-text report (markdown tables) with the goals next to the figures; --json PATH also
   writes the figures as JSON. It never asserts: it reports.

Goals printed beside the figures: server-added latency p95 <= 15 ms; no latency growth from the
first to the last minute; server memory flat.

Frames are sent without permessage-deflate by default (compressing JPEGs costs client CPU that would
be counted as server-added latency); --deflate negotiates it as browsers do.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import cv2  # noqa: E402
import httpx  # noqa: E402
import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.sync.client import ClientConnection, connect  # noqa: E402

from server.clips import ClipError, probe  # noqa: E402
from server.clips import frames as clip_frames  # noqa: E402
from server.config import Settings  # noqa: E402
from server.protocol import pack_frame  # noqa: E402

DEFAULT_CLIPS_DIR = Path("/work/shared/clips")
DEFAULT_CLIP = "squats_facing_camera.mp4"
JPEG_QUALITY = 80
GOAL_SERVER_ADDED_P95_MS = 15.0


def now_ms() -> float:
    """The client clock used for every send and receipt time."""
    return time.monotonic() * 1000.0


def pct(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def p50_p95(values: Sequence[float]) -> dict[str, float | None]:
    return {"p50": pct(values, 50), "p95": pct(values, 95), "n": len(values)}


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


# -- frames ----------------------------------------------------------------------------------------
@dataclass
class Frames:
    path: Path
    jpegs: list[bytes]
    gap_jpegs: list[bytes]  # nobody in view, as a camera films it: no two alike
    wh: tuple[int, int]
    source_fps: float


def encode_jpeg(img: npt.NDArray[Any], quality: int = JPEG_QUALITY) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return bytes(buf.tobytes())


def load_frames(path: Path, limit: int) -> Frames:
    """Frames of a real clip as replay reads them (upright, 640 px on the long side), JPEG-encoded once
    at quality 80."""
    try:
        info = probe(path)
    except ClipError as exc:
        raise SystemExit(f"live_latency: {exc}") from exc
    jpegs = [encode_jpeg(f) for f in itertools.islice(clip_frames(info), limit)]
    source_fps, wh = info.fps, info.analysis_wh
    if not jpegs:
        raise SystemExit(f"live_latency: could not read any frame from {path}")
    # Nobody in view: a grey scene with a sensor's noise, so that no two frames are alike (the server takes
    # a frame that repeats the one before byte for byte for a frozen picture: a lost camera).
    rng = np.random.default_rng(0)
    grey = np.full((wh[1], wh[0], 3), 128, np.uint8)
    gaps = [encode_jpeg(cv2.add(grey, rng.integers(0, 6, grey.shape, dtype=np.uint8))) for _ in range(16)]
    return Frames(path, jpegs, gaps, wh, source_fps)


# -- the server subprocess -------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def default_python() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


class ServerProcess:
    """`python -m server serve` on loopback; stdout/stderr (links, QR code, logs) go to a log file."""

    def __init__(self, python: str, port: int, log_path: Path) -> None:
        self.python = python
        self.port = port
        self.log_path = log_path
        self.base = f"http://127.0.0.1:{port}"
        self.ws_base = f"ws://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout_s: float = 90.0) -> None:
        env = dict(os.environ)
        env["REARGUARD_HTTPS"] = "false"  # plain HTTP on loopback whatever the environment says
        env["PYTHONUNBUFFERED"] = "1"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        cmd = [self.python, "-m", "server", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout_s
        with httpx.Client(trust_env=False, timeout=2.0) as client:
            while True:
                if not self.alive():
                    raise RuntimeError(f"server exited with code {self.proc.returncode}\n{self.log_tail()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server did not answer /healthz within {timeout_s:.0f} s")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.base}/healthz").status_code == 200:
                        return
                time.sleep(0.2)

    def stop(self) -> int | None:
        code = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
            code = self.proc.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def log_tail(self, n: int = 40) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def rss_kb(self) -> int | None:
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except (OSError, ValueError, AssertionError):
            return None
        return None


class RssSampler(threading.Thread):
    """VmRSS of the server every `interval_s` seconds, for the whole run (bounded by the run)."""

    def __init__(self, server: ServerProcess, interval_s: float) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.server = server
        self.interval_s = interval_s
        self.samples: list[tuple[float, int]] = []  # (client ms, kB)
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            kb = self.server.rss_kb()
            if kb is not None:
                self.samples.append((now_ms(), kb))
            self._halt.wait(self.interval_s)

    def sample_now(self) -> None:
        kb = self.server.rss_kb()
        if kb is not None:
            self.samples.append((now_ms(), kb))

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)

    def between(self, t0: float, t1: float) -> list[tuple[float, int]]:
        return [(t, kb) for t, kb in self.samples if t0 <= t <= t1]


def rss_summary(samples: list[tuple[float, int]]) -> dict[str, Any]:
    if not samples:
        return {"n": 0, "first_mb": None, "last_mb": None, "max_mb": None, "slope_mb_per_min": None}
    mb = [kb / 1024.0 for _, kb in samples]
    slope = None
    if len(samples) >= 3:
        t_min = np.array([(t - samples[0][0]) / 60_000.0 for t, _ in samples])
        if t_min[-1] > 0:
            slope = float(np.polyfit(t_min, np.array(mb), 1)[0])
    return {
        "n": len(samples),
        "first_mb": mb[0],
        "last_mb": mb[-1],
        "max_mb": max(mb),
        "growth_mb": mb[-1] - mb[0],
        "slope_mb_per_min": slope,
    }


# -- one streaming run -----------------------------------------------------------------------------
@dataclass
class Received:
    """What came back on the two sockets, with client receipt times."""

    statuses: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    cues: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    other: dict[str, int] = field(default_factory=dict)
    camera_close: str | None = None
    walker_close: str | None = None
    latest_status: dict[str, Any] | None = None
    cond: threading.Condition = field(default_factory=threading.Condition)


def close_text(exc: ConnectionClosed) -> str:
    if exc.rcvd is not None:
        return f"{exc.rcvd.code} {exc.rcvd.reason}".strip()
    return "closed without a close frame"


def read_loop(
    ws: ClientConnection, rec: Received, stop: threading.Event, role: str, keep: dict[str, str]
) -> None:
    """Read one socket until `stop` or close: messages whose type is in `keep` go to that list of `rec`
    (statuses also wake waiters); others are counted; the close reason goes to `rec.<role>_close`."""
    while not stop.is_set():
        try:
            raw = ws.recv(timeout=0.5)
        except TimeoutError:
            continue
        except ConnectionClosed as exc:
            setattr(rec, f"{role}_close", close_text(exc))
            break
        t = now_ms()
        msg = json.loads(raw)
        kind = msg.get("type")
        if kind == "status":
            with rec.cond:
                rec.statuses.append((t, msg))
                rec.latest_status = msg
                rec.cond.notify_all()
        elif kind in keep:
            getattr(rec, keep[kind]).append(msg if keep[kind] == "errors" else (t, msg))
        else:
            rec.other[f"{role}:{kind}"] = rec.other.get(f"{role}:{kind}", 0) + 1
    with rec.cond:
        rec.cond.notify_all()


def camera_reader(ws: ClientConnection, rec: Received, stop: threading.Event) -> None:
    read_loop(ws, rec, stop, "camera", {"error": "errors"})


def walker_reader(ws: ClientConnection, rec: Received, stop: threading.Event) -> None:
    read_loop(ws, rec, stop, "walker", {"cue": "cues"})


def wait_for_status(rec: Received, seq: int, timeout_s: float) -> dict[str, Any] | None:
    """The latest status once it covers `seq` (the last frame sent is always processed)."""
    deadline = time.monotonic() + timeout_s
    with rec.cond:
        while True:
            st = rec.latest_status
            if st is not None and isinstance(st.get("seq"), int) and st["seq"] >= seq:
                return st
            left = deadline - time.monotonic()
            if left <= 0 or rec.camera_close is not None:
                return None
            rec.cond.wait(min(left, 0.1))


@dataclass
class SentFrame:
    t_ms: float
    gap: int | None  # index of the grey gap this frame belongs to, None for clip frames


def counters(st: dict[str, Any] | None) -> dict[str, int]:
    keys = ("received", "processed", "dropped", "bad_frames")
    return {k: int(st.get(k) or 0) if st else 0 for k in keys}


def stream_run(
    server: ServerProcess, frames: Frames, fps: float, args: argparse.Namespace, rss: RssSampler
) -> dict[str, Any]:
    compression = "deflate" if args.deflate else None
    with httpx.Client(trust_env=False, timeout=10.0) as client:
        r = client.post(f"{server.base}/api/sessions", json={"mode": "partner"})
        r.raise_for_status()
        session = r.json()
    sid, token = session["session_id"], session["token"]
    rec = Received()
    stop = threading.Event()
    interval_ms = 1000.0 / fps
    sent: dict[int, SentFrame] = {}
    notes: list[str] = []
    threads: list[threading.Thread] = []

    def stop_readers() -> None:
        stop.set()
        for th in threads:
            th.join(timeout=5)

    # Unwinds in reverse: camera closed first, a pause so the walker hears the camera-lost cue, then the
    # walker closed, then the reader threads joined.
    with contextlib.ExitStack() as stack:
        stack.callback(stop_readers)
        walker_ws = stack.enter_context(
            connect(
                f"{server.ws_base}/ws/walker/{sid}?token={token}",
                compression=compression,
                proxy=None,
                open_timeout=10,
            )
        )
        threads.append(threading.Thread(target=walker_reader, args=(walker_ws, rec, stop), daemon=True))
        stack.callback(time.sleep, 0.3)
        camera_ws = stack.enter_context(
            connect(
                f"{server.ws_base}/ws/camera/{sid}?token={token}",
                compression=compression,
                proxy=None,
                open_timeout=10,
                max_size=2**20,
            )
        )
        threads.append(threading.Thread(target=camera_reader, args=(camera_ws, rec, stop), daemon=True))
        for th in threads:
            th.start()
        n_clip = len(frames.jpegs)
        seq = 0

        # Warm-up: the session's pipeline (model load) is built on the first frame. Not measured.
        warm_start = time.monotonic()
        next_t = time.monotonic()
        while True:
            el = time.monotonic() - warm_start
            first_seen = rec.latest_status is not None
            if (first_seen and el >= args.warmup) or el > 60 or rec.camera_close is not None:
                break
            camera_ws.send(pack_frame(frames.jpegs[seq % n_clip], seq=seq, t=round(now_ms(), 3)))
            seq += 1
            next_t += 1.0 / fps
            time.sleep(max(0.0, next_t - time.monotonic()))
        if rec.latest_status is None:
            raise RuntimeError(f"no status within the warm-up (camera socket: {rec.camera_close})")
        warm_last = seq - 1
        # A short pause (shorter than the camera timeout) lets the last warm-up frame through, so its
        # status carries exact counters to take deltas from.
        baseline = wait_for_status(rec, warm_last, timeout_s=0.35)
        if baseline is None:
            notes.append("baseline counters approximate (last warm-up status late)")
            baseline = rec.latest_status
        base_counts = counters(baseline)
        first_seq = seq

        # The measured stream.
        t_start = now_ms()
        duration_ms = args.duration * 1000.0
        gap_every_ms = args.gap_every * 1000.0
        gap_len_ms = min(args.gap_length * 1000.0, gap_every_ms) if gap_every_ms > 0 else 0.0
        k = 0  # index on the pacing schedule
        anchor = t_start
        late = 0
        clip_i = 0
        while True:
            target = anchor + k * interval_ms
            now = now_ms()
            if target - now > 0:
                time.sleep((target - now) / 1000.0)
            now = now_ms()
            if now - t_start >= duration_ms or rec.camera_close is not None:
                break
            if now - target > interval_ms:  # fell behind: re-anchor rather than burst
                late += 1
                anchor, k = now, 0
            el = now - t_start
            gap = None
            if gap_every_ms > 0 and el % gap_every_ms >= gap_every_ms - gap_len_ms:
                gap = int(el // gap_every_ms)
            if gap is None:
                jpeg = frames.jpegs[clip_i % n_clip]
                clip_i += 1
            else:
                jpeg = frames.gap_jpegs[seq % len(frames.gap_jpegs)]
            t = now_ms()
            camera_ws.send(pack_frame(jpeg, seq=seq, t=round(t, 3)))
            sent[seq] = SentFrame(t, gap)
            seq += 1
            k += 1
        t_end = now_ms()
        last_seq = seq - 1
        final = wait_for_status(rec, last_seq, timeout_s=10.0)
        if final is None:
            notes.append("final counters approximate (no status for the last frame within 10 s)")
            final = rec.latest_status
        final_counts = counters(final)
        t_drained = now_ms()
        # Closes seen before we close the sockets ourselves (the server closing on us).
        camera_closed_early, walker_closed_early = rec.camera_close, rec.walker_close

    # -- figures ---------------------------------------------------------------------------------------------
    delta = {k: final_counts[k] - base_counts[k] for k in final_counts}
    if len(sent) >= 2:
        span = sent[last_seq].t_ms - sent[first_seq].t_ms
        sent_rate = (len(sent) - 1) * 1000.0 / span if span > 0 else None
    else:
        sent_rate = None
    dur_ms = t_end - t_start
    if dur_ms >= 120_000:
        win_label = "first vs last minute"
        first_win, last_win = (0.0, 60_000.0), (dur_ms - 60_000.0, dur_ms)
    else:
        win_label = "first vs last third (duration < 120 s)"
        first_win, last_win = (0.0, dur_ms / 3), (2 * dur_ms / 3, dur_ms)

    rows: list[dict[str, Any]] = []
    seen: set[int] = set()
    for t_recv, st in rec.statuses:
        s = st.get("seq")
        if not isinstance(s, int) or s not in sent or s in seen:
            continue
        seen.add(s)
        tm = st.get("timings_ms") or {}
        e2e = t_recv - sent[s].t_ms
        pose = float(tm.get("pose") or 0.0)
        server_ms = float(tm.get("server") or 0.0)
        rows.append(
            {
                "seq": s,
                "offset_ms": sent[s].t_ms - t_start,
                "gap": sent[s].gap,
                "e2e": e2e,
                "server_added": e2e - pose,
                "pose": pose,
                "queued": float(tm.get("queued") or 0.0),
                "decode": float(tm.get("decode") or 0.0),
                "pipeline": float(tm.get("pipeline") or 0.0),
                "server": server_ms,
                "outside": e2e - server_ms,  # client send -> server receive + status write -> client
            }
        )

    def col(name: str, sel: Any = None) -> list[float]:
        return [r[name] for r in rows if sel is None or sel(r)]

    def in_win(win: tuple[float, float]) -> Any:
        return lambda r: win[0] <= r["offset_ms"] < win[1]

    windows = {
        "label": win_label,
        "first": {
            "e2e": p50_p95(col("e2e", in_win(first_win))),
            "server_added": p50_p95(col("server_added", in_win(first_win))),
        },
        "last": {
            "e2e": p50_p95(col("e2e", in_win(last_win))),
            "server_added": p50_p95(col("server_added", in_win(last_win))),
        },
    }

    cue_f2c: list[float] = []
    gap_to_cue: list[float] = []
    gap_first_send: dict[int, float] = {}
    for sf in sent.values():
        if sf.gap is not None and sf.gap not in gap_first_send:
            gap_first_send[sf.gap] = sf.t_ms
    gaps_with_cue: set[int] = set()
    cue_kinds: dict[str, int] = {}
    null_seq_cues = 0
    for t_recv, cue in rec.cues:
        kind = str(cue.get("kind"))
        cue_kinds[kind] = cue_kinds.get(kind, 0) + 1
        s = cue.get("seq")
        if not isinstance(s, int):
            null_seq_cues += 1
            continue
        if s not in sent:
            continue  # a warm-up frame
        cue_f2c.append(t_recv - sent[s].t_ms)
        g = sent[s].gap
        if g is not None and g not in gaps_with_cue and kind == "walker_lost":
            gaps_with_cue.add(g)
            gap_to_cue.append(t_recv - gap_first_send[g])
    # A gap can raise a cue only if it lasts past the grace (plus a frame or two) before the stream ends.
    cue_possible_ms = args.grace_ms + 3 * interval_ms
    complete_gaps = [
        g
        for g in gap_first_send
        if min(gap_len_ms, t_end - gap_first_send[g]) > cue_possible_ms or g in gaps_with_cue
    ]

    rss_run = rss.between(t_start, t_drained)
    return {
        "fps": fps,
        "session_id": sid,
        "duration_s": dur_ms / 1000.0,
        "warmup_frames": first_seq,
        "sent": len(sent),
        "sent_rate_fps": sent_rate,
        "late_resyncs": late,
        "received": delta["received"],
        "processed": delta["processed"],
        "dropped": delta["dropped"],
        "bad_frames": delta["bad_frames"],
        "statuses_measured": len(rows),
        "statuses_skipped": max(0, delta["processed"] - len(rows)),
        "e2e_ms": p50_p95(col("e2e")),
        "server_added_ms": p50_p95(col("server_added")),
        "server_added_clip_frames_ms": p50_p95(col("server_added", lambda r: r["gap"] is None)),
        "server_added_grey_frames_ms": p50_p95(col("server_added", lambda r: r["gap"] is not None)),
        "components_ms": {
            name: p50_p95(col(name)) for name in ("queued", "decode", "pose", "pipeline", "server", "outside")
        },
        "windows": windows,
        "frame_to_cue_ms": p50_p95(cue_f2c),
        "gap_to_cue_ms": p50_p95(gap_to_cue),
        "gaps": len(complete_gaps),
        "gaps_with_cue": len(gaps_with_cue),
        "cues_by_kind": cue_kinds,
        "cues_without_seq": null_seq_cues,
        "errors": rec.errors[:10],
        "error_count": len(rec.errors),
        "camera_closed_by_server": camera_closed_early,
        "walker_closed_by_server": walker_closed_early,
        "rss": rss_summary(rss_run),
        "notes": notes,
    }


# -- in-process: raw MediaPipe vs the whole pipeline -----------------------------------------------
def micro_bench(frames: Frames, n: int, warmup: int = 10) -> dict[str, Any]:
    from vision.pipeline import Pipeline, decode_jpeg
    from vision.pose import PoseEstimator

    cfg = Settings().pipeline_config()
    rgbs = [
        cast(npt.NDArray[np.uint8], cv2.cvtColor(decode_jpeg(j), cv2.COLOR_BGR2RGB)) for j in frames.jpegs
    ]
    estimator = PoseEstimator(cfg.model_path, num_poses=cfg.num_poses)
    pipeline = Pipeline(cfg)
    raw: list[float] = []
    full: list[float] = []
    full_pose: list[float] = []
    step_ms = 67  # ~15 fps stream time; each graph sees its own strictly increasing timestamps
    try:
        for i in range(warmup + n):
            k = i % len(frames.jpegs)
            ts = i * step_ms

            def run_raw(k: int = k, ts: int = ts) -> float:
                t0 = time.perf_counter()
                estimator.detect(rgbs[k], ts)
                return (time.perf_counter() - t0) * 1000.0

            def run_full(k: int = k, ts: int = ts) -> tuple[float, float]:
                t0 = time.perf_counter()
                analysis = pipeline.process_jpeg(frames.jpegs[k], ts)
                return (time.perf_counter() - t0) * 1000.0, float(analysis.timings_ms["pose"])

            if i % 4 in (0, 3):  # ABBA order so neither side always runs second
                r_ms = run_raw()
                f_ms, f_pose = run_full()
            else:
                f_ms, f_pose = run_full()
                r_ms = run_raw()
            if i >= warmup:
                raw.append(r_ms)
                full.append(f_ms)
                full_pose.append(f_pose)
    finally:
        estimator.close()
        pipeline.close()
    ratios = [f / r for f, r in zip(full, raw, strict=True) if r > 0]
    med_raw, med_full = pct(raw, 50), pct(full, 50)
    return {
        "frames": n,
        "warmup": warmup,
        "num_poses": cfg.num_poses,
        "raw_detect_ms": {"median": med_raw, "p95": pct(raw, 95)},
        "pipeline_ms": {"median": med_full, "p95": pct(full, 95)},
        "pipeline_non_pose_ms": {
            "median": pct([f - p for f, p in zip(full, full_pose, strict=True)], 50),
            "p95": pct([f - p for f, p in zip(full, full_pose, strict=True)], 95),
        },
        "ratio_of_medians": (med_full / med_raw) if med_raw and med_full else None,
        "ratio_p95": (pct(full, 95) or 0) / (pct(raw, 95) or 1),
        "per_frame_ratio_median": pct(ratios, 50),
    }


# -- report ----------------------------------------------------------------------------------------
def print_report(result: dict[str, Any]) -> None:
    out: list[str] = []
    add = out.append
    cfg = result["config"]
    add("")
    add("# Rearguard live latency benchmark")
    add("")
    add(
        f"clip: {cfg['clip']} ({cfg['clip_frames']} frames at {cfg['frame_wh'][0]}x{cfg['frame_wh'][1]}, "
        f"JPEG q{JPEG_QUALITY}, mean {cfg['jpeg_mean_kb']:.1f} kB, looped)"
    )
    gap = (
        f"{cfg['gap_length_s']:g} s of grey frames at the end of every {cfg['gap_every_s']:g} s"
        if cfg["gap_every_s"] > 0
        else "none"
    )
    add(f"gaps (walker out of view): {gap}")
    add(
        f"duration per rate: {cfg['duration_s']:g} s after {cfg['warmup_s']:g} s warm-up; "
        f"websocket compression: {'deflate' if cfg['deflate'] else 'none'}"
    )
    s = cfg["server_settings"]
    add(
        f"server: pid {result['server']['pid']}, {result['server']['cmd']}; camera_timeout_s="
        f"{s['camera_timeout_s']}, walker_lost_grace_ms={s['walker_lost_grace_ms']}, "
        f"num_poses={s['num_poses']}, vision_workers={s['vision_workers']}"
    )
    add(
        f"machine: {os.cpu_count()} cores; load average at start {result['loadavg_start']}, "
        f"at end {result['loadavg_end']}"
    )
    runs = result["runs"]
    if runs:
        heads = [f"{r['fps']:g} fps" for r in runs]
        add("")
        add("## Streaming through the real server (loopback)")
        add("")
        add("| | " + " | ".join(heads) + " |")
        add("|---|" + "---|" * len(runs))

        def row(label: str, cells: list[str]) -> None:
            add(f"| {label} | " + " | ".join(cells) + " |")

        row("frames sent (rate)", [f"{r['sent']} ({fmt(r['sent_rate_fps'])}/s)" for r in runs])
        row(
            "received / processed / dropped",
            [f"{r['received']} / {r['processed']} / {r['dropped']}" for r in runs],
        )
        row(
            "dropped %",
            [fmt(100.0 * r["dropped"] / r["received"]) if r["received"] else "-" for r in runs],
        )
        row("bad frames / errors", [f"{r['bad_frames']} / {r['error_count']}" for r in runs])
        row(
            "statuses measured (skipped, latest-wins)",
            [f"{r['statuses_measured']} ({r['statuses_skipped']})" for r in runs],
        )
        row("sender re-syncs (fell behind)", [str(r["late_resyncs"]) for r in runs])
        add("")
        add("Latency, ms (p50 / p95), per processed frame with a status:")
        add("")
        add("| metric | " + " | ".join(heads) + " | goal |")
        add("|---|" + "---|" * len(runs) + "---|")

        def lat(label: str, getter: Any, goal: str = "") -> None:
            cells = []
            for r in runs:
                v = getter(r)
                cells.append(f"{fmt(v['p50'])} / {fmt(v['p95'])}")
            add(f"| {label} | " + " | ".join(cells) + f" | {goal} |")

        lat("end-to-end (status receipt - send)", lambda r: r["e2e_ms"])
        lat(
            "**server-added** (end-to-end - pose)",
            lambda r: r["server_added_ms"],
            f"p95 <= {GOAL_SERVER_ADDED_P95_MS:g}",
        )
        lat("  server-added, clip frames", lambda r: r["server_added_clip_frames_ms"])
        lat("  server-added, grey gap frames", lambda r: r["server_added_grey_frames_ms"])
        for name, label in (
            ("pose", "pose (server timing)"),
            ("queued", "queued in slot"),
            ("decode", "decode"),
            ("pipeline", "pipeline incl. decode"),
            ("server", "server (receive -> status queued)"),
            ("outside", "outside server (network, writer, client)"),
        ):
            lat(f"  {label}", lambda r, n=name: r["components_ms"][n])
        label = runs[0]["windows"]["label"]
        lat("end-to-end, first window", lambda r: r["windows"]["first"]["e2e"])
        lat("end-to-end, last window", lambda r: r["windows"]["last"]["e2e"], "no growth")
        lat("server-added, first window", lambda r: r["windows"]["first"]["server_added"])
        lat("server-added, last window", lambda r: r["windows"]["last"]["server_added"], "no growth")

        def growth(r: dict[str, Any], metric: str, q: str) -> str:
            a, b = r["windows"]["first"][metric][q], r["windows"]["last"][metric][q]
            return "-" if a is None or b is None else f"{b - a:+.1f}"

        row_cells = [f"{growth(r, 'e2e', 'p50')} / {growth(r, 'e2e', 'p95')}" for r in runs]
        add("| growth last-first, end-to-end | " + " | ".join(row_cells) + " | ~0 |")
        row_cells = [f"{growth(r, 'server_added', 'p50')} / {growth(r, 'server_added', 'p95')}" for r in runs]
        add("| growth last-first, server-added | " + " | ".join(row_cells) + " | ~0 |")
        lat("frame-to-cue (cue receipt - send of its seq)", lambda r: r["frame_to_cue_ms"])
        lat("gap-to-cue (from first grey frame, incl. grace)", lambda r: r["gap_to_cue_ms"])
        add("")
        add(f"Windows: {label}.")
        add("")
        add("| cues and memory | " + " | ".join(heads) + " | goal |")
        add("|---|" + "---|" * len(runs) + "---|")
        add(
            "| gaps with a walker_lost cue | "
            + " | ".join(f"{r['gaps_with_cue']} of {r['gaps']}" for r in runs)
            + " | all |"
        )
        add(
            "| cues by kind (seq null) | "
            + " | ".join(
                (", ".join(f"{k} {v}" for k, v in sorted(r["cues_by_kind"].items())) or "none")
                + f" ({r['cues_without_seq']})"
                for r in runs
            )
            + " | |"
        )
        add(
            "| server RSS MB first / last / max | "
            + " | ".join(
                f"{fmt(r['rss']['first_mb'])} / {fmt(r['rss']['last_mb'])} / {fmt(r['rss']['max_mb'])}"
                for r in runs
            )
            + " | flat |"
        )
        add(
            "| server RSS growth MB (slope MB/min) | "
            + " | ".join(
                f"{fmt(r['rss'].get('growth_mb'), 2)} ({fmt(r['rss']['slope_mb_per_min'], 2)})" for r in runs
            )
            + " | ~0 |"
        )
        for r in runs:
            extra = []
            if r["camera_closed_by_server"]:
                extra.append(f"camera socket closed during the run: {r['camera_closed_by_server']}")
            if r["walker_closed_by_server"]:
                extra.append(f"walker socket closed during the run: {r['walker_closed_by_server']}")
            if r["errors"]:
                extra.append(f"server errors: {r['errors'][:3]}")
            extra.extend(r["notes"])
            if extra:
                add(f"- {r['fps']:g} fps: " + "; ".join(extra))
    rs = result["rss_overall"]
    add("")
    add(
        f"Server RSS over the whole run ({rs['n']} samples every {cfg['rss_interval_s']:g} s): first "
        f"{fmt(rs['first_mb'])} MB, last {fmt(rs['last_mb'])} MB, max {fmt(rs['max_mb'])} MB"
    )
    m = result.get("micro")
    if m:
        add("")
        add(
            f"## In-process, server idle: raw MediaPipe vs full pipeline ({m['frames']} frames each, "
            f"ABBA-alternated, {m['warmup']} warm-up frames dropped, num_poses={m['num_poses']})"
        )
        add("")
        add("| | median ms | p95 ms |")
        add("|---|---|---|")
        raw_ms, pipe_ms = m["raw_detect_ms"], m["pipeline_ms"]
        add(f"| (a) raw PoseEstimator.detect(rgb) | {fmt(raw_ms['median'], 2)} | {fmt(raw_ms['p95'], 2)} |")
        add(f"| (b) Pipeline.process_jpeg(jpeg) | {fmt(pipe_ms['median'], 2)} | {fmt(pipe_ms['p95'], 2)} |")
        add(
            f"| (b) minus its own pose timing | {fmt(m['pipeline_non_pose_ms']['median'], 2)} | "
            f"{fmt(m['pipeline_non_pose_ms']['p95'], 2)} |"
        )
        add(
            f"| ratio pipeline / raw | {fmt(m['ratio_of_medians'], 3)} (of medians; per-frame median "
            f"{fmt(m['per_frame_ratio_median'], 3)}) | {fmt(m['ratio_p95'], 3)} (of p95s) |"
        )
    add("")
    add(
        f"Goals: server-added latency p95 <= {GOAL_SERVER_ADDED_P95_MS:g} ms; no latency growth from the "
        "first to the last window; server memory flat. Figures only, nothing is asserted."
    )
    print("\n".join(out), flush=True)


# -- main ------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="live_latency.py",
        description="Latency of a real Rearguard server fed real clip frames over WebSockets on loopback, "
        "plus raw MediaPipe vs full pipeline timed in-process. Prints a report; never asserts.",
        epilog="Example: .venv/bin/python bench/live_latency.py --duration 40 --json /tmp/lat.json",
    )
    p.add_argument(
        "--clip", default=DEFAULT_CLIP, help=f"clip name in --clips-dir, or a path (default {DEFAULT_CLIP})"
    )
    p.add_argument(
        "--clips-dir", type=Path, default=DEFAULT_CLIPS_DIR, help="where clips live (default %(default)s)"
    )
    p.add_argument("--duration", type=float, default=300.0, help="seconds streamed per rate (default 300)")
    p.add_argument("--fps", type=float, nargs="+", default=[15.0, 30.0], help="send rates (default 15 30)")
    p.add_argument(
        "--gap-every",
        type=float,
        default=10.0,
        help="every N seconds, send grey frames (nobody in view) to trigger walker_lost cues; 0 = never "
        "(default 10)",
    )
    p.add_argument(
        "--gap-length",
        type=float,
        default=2.0,
        help="seconds of grey frames per gap; must exceed the walker-lost grace (0.5 s) to raise a cue "
        "(default 2)",
    )
    p.add_argument(
        "--warmup", type=float, default=3.0, help="unmeasured seconds before each stream (default 3)"
    )
    p.add_argument(
        "--micro-frames",
        type=int,
        default=200,
        help="frames for the in-process raw-vs-pipeline timing, each side; 0 skips it (default 200)",
    )
    p.add_argument(
        "--rss-interval", type=float, default=2.0, help="server RSS sampling period, s (default 2)"
    )
    p.add_argument("--max-clip-frames", type=int, default=600, help="frames loaded from the clip at most")
    p.add_argument("--deflate", action="store_true", help="negotiate permessage-deflate as browsers do")
    p.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    p.add_argument("--python", default=default_python(), help="interpreter for the server (default .venv)")
    p.add_argument("--json", type=Path, help="also write the figures as JSON to this path")
    p.add_argument("--keep-server-log", action="store_true", help="keep the server's log file")
    args = p.parse_args(argv)
    if args.duration <= 0 or any(f <= 0 or f > 120 for f in args.fps):
        p.error("--duration must be > 0 and each --fps in (0, 120]")
    if args.gap_every < 0 or args.gap_length < 0:
        p.error("--gap-every and --gap-length must be >= 0")
    if args.gap_every > 0 and args.gap_length >= args.gap_every:
        p.error("--gap-length must be shorter than --gap-every")
    return args


def resolve_clip(args: argparse.Namespace) -> Path:
    clip = Path(args.clip)
    path = clip if clip.is_absolute() or clip.parent != Path(".") else args.clips_dir / clip
    if not path.is_file():
        raise SystemExit(
            f"live_latency: clip {path} is absent. The real clips live in {args.clips_dir} "
            f"(read-only, beside the checkout); pass --clip NAME or --clips-dir DIR."
        )
    return path


@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    clip_path = resolve_clip(args)
    print(f"loading {clip_path} ...", flush=True)
    frames = load_frames(clip_path, args.max_clip_frames)
    settings = Settings()
    args.grace_ms = settings.walker_lost_grace_ms
    port = args.port or free_port()
    log_fd, log_name = tempfile.mkstemp(prefix="rearguard-bench-server-", suffix=".log")
    os.close(log_fd)
    log_path = Path(log_name)
    server = ServerProcess(args.python, port, log_path)
    result: dict[str, Any] = {
        "config": {
            "clip": str(clip_path),
            "clip_frames": len(frames.jpegs),
            "clip_source_fps": frames.source_fps,
            "frame_wh": list(frames.wh),
            "jpeg_quality": JPEG_QUALITY,
            "jpeg_mean_kb": float(np.mean([len(j) for j in frames.jpegs])) / 1024.0,
            "gap_every_s": args.gap_every,
            "gap_length_s": args.gap_length,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "fps": args.fps,
            "deflate": bool(args.deflate),
            "rss_interval_s": args.rss_interval,
            "server_settings": {
                "camera_timeout_s": settings.camera_timeout_s,
                "walker_lost_grace_ms": settings.walker_lost_grace_ms,
                "num_poses": settings.num_poses,
                "vision_workers": settings.vision_workers,
                "stop_repeat_s": settings.stop_repeat_s,
            },
        },
        "goals": {
            "server_added_p95_ms_max": GOAL_SERVER_ADDED_P95_MS,
            "latency_growth_first_to_last": "none",
            "server_memory": "flat",
        },
        "loadavg_start": loadavg(),
        "runs": [],
        "micro": None,
    }
    failed = False
    rss: RssSampler | None = None
    with sigterm_as_exit():
        try:
            print(f"starting server on 127.0.0.1:{port} (log {log_path}) ...", flush=True)
            server.start()
            result["server"] = {
                "pid": server.pid,
                "cmd": f"{Path(args.python).name} -m server serve --host 127.0.0.1 --port {port}",
            }
            rss = RssSampler(server, args.rss_interval)
            rss.start()
            for fps in args.fps:
                print(f"streaming at {fps:g} fps for {args.duration:g} s ...", flush=True)
                run = stream_run(server, frames, fps, args, rss)
                result["runs"].append(run)
                if not server.alive():
                    raise RuntimeError(f"server died during the {fps:g} fps run\n{server.log_tail()}")
            if args.micro_frames > 0:
                time.sleep(1.0)  # let the server go idle
                print(
                    f"timing raw MediaPipe vs pipeline in-process, {args.micro_frames} frames each ...",
                    flush=True,
                )
                result["micro"] = micro_bench(frames, args.micro_frames)
            rss.sample_now()
        except BaseException as exc:
            failed = True
            print(f"live_latency: run failed: {exc!r}", file=sys.stderr)
            if not isinstance(exc, KeyboardInterrupt | SystemExit):
                print(server.log_tail(), file=sys.stderr)
            if not isinstance(exc, Exception):
                raise
        finally:
            code = server.stop()  # first, whatever else fails
            if rss is not None:
                rss.stop()
            result.setdefault("server", {"pid": None, "cmd": "not started"})
            result["server"]["exit_code"] = code
            if failed or args.keep_server_log:
                print(f"server log kept at {log_path}", file=sys.stderr)
            else:
                with contextlib.suppress(OSError):
                    log_path.unlink()
    result["loadavg_end"] = loadavg()
    result["rss_overall"] = rss_summary(rss.samples if rss is not None else [])
    if rss is not None:
        result["rss_samples"] = [
            {"t_s": round((t - rss.samples[0][0]) / 1000.0, 2), "rss_mb": round(kb / 1024.0, 2)}
            for t, kb in rss.samples
        ]
    print_report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
        print(f"\nwrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
