"""Replay for testers: a recorded clip through the same pipeline and alert policy as a live session.

Writes `timeline.json` (the contract in DESIGN.md), `frames.json` (per-frame columns), `annotated.mp4`
(H.264 + AAC with the cues mixed in) and `report.html`, into a hidden temporary folder that is moved
into place only when everything is written: a failed replay leaves nothing that looks complete.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from server.clips import ClipError, ClipInfo, FrameClock, frames_as_sent, probe
from server.config import Settings
from server.soundtrack import mix_cues, to_wav_bytes
from vision.alerts import NOTICE_KINDS, AlertPolicy, Cue
from vision.draw import annotate
from vision.pipeline import Pipeline
from vision.sensors import SensorLogError, load_pitch, reading_at, sensors_path_for
from vision.treadmill import Calibration
from vision.types import Analysis

logger = logging.getLogger(__name__)
CUE_DISPLAY_S = 1.5  # how long the annotated video shows a cue's text after it sounds
MODES = ("partner", "treadmill")


@dataclass(frozen=True)
class ReplayOptions:
    mode: str = "partner"
    video: bool = True
    report: bool = True
    fps: float | None = None
    labels: Path | None = None
    calibration: Path | None = None  # treadmill: a calibration.json from an earlier replay
    sensors: Path | None = None  # the phone's tilt log (default: CLIP.sensors.json beside the clip, if any)
    use_sensors: bool = True  # False: image only, as a phone without the sensor
    progress: bool = False
    settings: Settings = field(default_factory=Settings)


def event_of(cue: Cue) -> dict[str, Any]:
    return {
        "t": round(cue.t_s, 3),
        "tier": cue.tier,
        "kind": cue.kind,
        "side": cue.side,
        "distance_m": cue.distance_m,
        "ttc_s": cue.ttc_s,
        "text": cue.text,
        "repeat": cue.repeat,
        "key": cue.key,  # the hazard's identity: escalations of one obstacle ("obs:<id>") share it
    }


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


class Progress:
    """A one-line progress bar with ETA on a terminal; nothing at all otherwise (CI, pipes)."""

    def __init__(self, total: int, label: str, enabled: bool, stream: IO[str] = sys.stderr) -> None:
        self.total, self.label, self.enabled, self.stream = max(total, 1), label, enabled, stream
        self.start = time.monotonic()
        self._last = 0.0

    def update(self, done: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.2 and done < self.total):
            return
        self._last = now
        frac = min(1.0, done / self.total)
        rate = done / max(now - self.start, 1e-6)
        eta = (self.total - done) / rate if rate > 0 else 0.0
        bar = "#" * int(frac * 30)
        self.stream.write(
            f"\r{self.label[:30]:30} [{bar:30}] {frac:4.0%} {done}/{self.total} "
            f"{rate:5.1f} fps ETA {eta:4.0f}s"
        )
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


class VideoSink:
    """Annotated frames into ffmpeg (H.264, yuv420p, plays in every browser); audio is muxed in afterwards."""

    def __init__(self, path: Path, wh: tuple[int, int], fps: float) -> None:
        exe = shutil.which("ffmpeg")
        if exe is None:
            raise ClipError(
                "the annotated video needs ffmpeg (scripts/install.sh installs it), or pass --no-video"
            )
        self.path = path
        self.exe = exe
        self.fps = fps
        self.written = 0  # frames handed to ffmpeg: the video runs at `fps`, frames placed by their time
        self._last: bytes | None = None
        cmd = [
            exe, "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24",
            "-s", f"{wh[0]}x{wh[1]}", "-r", f"{fps:.6f}", "-i", "-",
            # One encoder thread on the fastest preset: x264's default threads took cycles from the pose
            # model and held replay at 0.73x bare pose throughput; this measured 0.83x.
            "-c:v", "libx264", "-preset", "ultrafast", "-crf", "28", "-threads", "1", "-pix_fmt", "yuv420p",
            str(path),
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        # Frames go to ffmpeg from a writer thread, so the pose model never waits on the encoder.
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self._error: BaseException | None = None
        self._writer = threading.Thread(target=self._write_loop, name="ffmpeg-writer", daemon=True)
        self._writer.start()

    def _write_loop(self) -> None:
        assert self.proc.stdin is not None
        while (data := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self.proc.stdin.write(data)
                except OSError as exc:  # ffmpeg died; close() reports its own message
                    self._error = exc

    def write(self, t_ms: float, bgr: npt.NDArray[np.uint8]) -> None:
        """The frame shown from `t_ms` on. The video has a constant rate, so that the cue audio, placed by
        time, stays in step with it: after a gap (a clip of variable frame rate) the frame before is held
        until this one's time, and a frame due in a slot already written is left out."""
        if self._error is not None:
            raise RuntimeError(f"ffmpeg stopped taking frames: {self._error}")
        slot = math.floor(t_ms / 1000.0 * self.fps + 0.5)
        if slot < self.written:
            return
        if self._last is not None:
            for _ in range(slot - self.written):
                self._queue.put(self._last)
        self._last = bgr.tobytes()
        self._queue.put(self._last)
        self.written = slot + 1

    def close(self) -> None:
        assert self.proc.stdin is not None
        self._queue.put(None)
        self._writer.join()
        self.proc.stdin.close()
        err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
        if self.proc.wait() != 0:
            raise RuntimeError(f"ffmpeg failed writing the annotated video: {err.strip()}")

    def abort(self) -> None:
        self._error = RuntimeError("aborted")
        self.proc.kill()  # first: a writer blocked on the pipe then fails and drains the queue
        self._queue.put(None)
        self.proc.wait()

    def mux_audio(self, wav: Path, out: Path) -> None:
        cmd = [
            self.exe, "-loglevel", "error", "-y", "-i", str(self.path), "-i", str(wav),
            "-c:v", "copy", "-c:a", "aac", "-b:a", "96k", "-movflags", "+faststart", str(out),
        ]  # fmt: skip
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError(f"ffmpeg failed adding the audio track: {r.stderr.strip()}")


@dataclass
class Frames:
    """Per-frame columns, as frames.json holds them."""

    t: list[float] = field(default_factory=list)
    pipeline_ms: list[float] = field(default_factory=list)
    pose_ms: list[float] = field(default_factory=list)
    walker: list[int] = field(default_factory=list)
    people: list[int] = field(default_factory=list)
    hazards: list[list[str]] = field(default_factory=list)
    ttc_s: list[float | None] = field(default_factory=list)
    zone: list[str] = field(default_factory=list)  # treadmill mode only
    coverage: list[float | None] = field(default_factory=list)  # partner mode only
    obstacles: list[int | None] = field(default_factory=list)  # partner mode only: obstacles in view
    camera_height_m: list[float | None] = field(default_factory=list)  # partner mode only: measured or prior

    def as_dict(self) -> dict[str, list[Any]]:
        """The columns; those of the other mode (empty) are left out."""
        mode_only = ("zone", "coverage", "obstacles", "camera_height_m")
        return {k: v for k, v in self.__dict__.items() if v or k not in mode_only}


def _num(value: Any) -> float | None:
    """`value` as a finite float; None for None, bools, text, NaN and infinities."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return None
    f = float(value)
    return f if np.isfinite(f) else None


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known) / len(known), 3) if known else None


@dataclass
class PathLog:
    """Partner mode: what the pipeline said about the walker's path, frame by frame (`Analysis.path`, see
    PATH_KEYS in vision/types.py), reduced for timeline.json. Any key may be missing: the path is empty
    while the walker or the ground is unknown."""

    t: list[float] = field(default_factory=list)
    coverage: list[float | None] = field(default_factory=list)
    by_m: list[list[float | None]] = field(default_factory=list)
    low: list[bool | None] = field(default_factory=list)
    tracks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, t_s: float, path: dict[str, Any]) -> None:
        self.t.append(t_s)
        self.coverage.append(_num(path.get("coverage")))
        bands = path.get("coverage_by_m")
        if isinstance(bands, list | tuple) and len(bands) == 3:
            self.by_m.append([_num(b) for b in bands])
        else:
            self.by_m.append([None, None, None])
        low = path.get("coverage_low")
        self.low.append(low if isinstance(low, bool) else None)
        obstacles = path.get("obstacles")
        for ob in obstacles if isinstance(obstacles, list) else []:
            if isinstance(ob, dict) and ob.get("id") is not None:
                self._track(t_s, ob)

    def _track(self, t_s: float, ob: dict[str, Any]) -> None:
        key = str(ob["id"])
        tr = self.tracks.setdefault(
            key,
            {"id": key, "kind": None, "first_t": t_s, "last_t": t_s, "frames": 0, "in_corridor_frames": 0,
             "min_distance_m": None, "min_ttc_s": None, "max_closing_mps": None, "sides": {}},
        )  # fmt: skip
        tr["last_t"] = t_s
        tr["frames"] += 1
        tr["in_corridor_frames"] += ob.get("in_corridor") is True
        if isinstance(ob.get("kind"), str):
            tr["kind"] = ob["kind"]
        if isinstance(ob.get("side"), str):
            tr["sides"][ob["side"]] = tr["sides"].get(ob["side"], 0) + 1
        for name, value, pick in (
            ("min_distance_m", _num(ob.get("distance_m")), min),
            ("min_ttc_s", _num(ob.get("ttc_s")), min),
            ("max_closing_mps", _num(ob.get("closing_mps")), max),
        ):
            if value is not None:
                tr[name] = round(value if tr[name] is None else pick(tr[name], value), 3)

    def samples(self, duration_s: float) -> list[dict[str, Any]]:
        """One sample per second of clip, `t` at the second's start: the mean coverage (and per metre band)
        over that second's frames where it is known, null when it is unknown in the whole second; `low`
        when coverage was low in at least half the frames that say."""
        n = max(1, int(np.ceil(duration_s - 1e-9)))
        seconds: list[list[int]] = [[] for _ in range(n)]
        for i, t in enumerate(self.t):
            seconds[min(int(t + 1e-9), n - 1)].append(i)
        out = []
        for s, idx in enumerate(seconds):
            lows = [low for i in idx if (low := self.low[i]) is not None]
            out.append(
                {
                    "t": float(s),
                    "coverage": _mean([self.coverage[i] for i in idx]),
                    "by_m": [_mean([self.by_m[i][b] for i in idx]) for b in range(3)],
                    "low": (2 * sum(lows) >= len(lows)) if lows else None,
                }
            )
        return out

    def summary(self) -> dict[str, Any]:
        """Median per-frame coverage, and the share of frames (of those with a verdict) with coverage low."""
        known = [c for c in self.coverage if c is not None]
        lows = [v for v in self.low if v is not None]
        return {
            "median": round(statistics.median(known), 3) if known else None,
            "share_low": round(sum(lows) / len(lows), 3) if lows else None,
            "frames_known": len(known),
        }

    def obstacle_list(self) -> list[dict[str, Any]]:
        """Every obstacle tracked: when, how often, how near, its usual side; in order of first sighting."""
        out = []
        for tr in sorted(self.tracks.values(), key=lambda tr: (tr["first_t"], tr["id"])):
            sides = tr["sides"]
            side = max(sides, key=lambda s: sides[s]) if sides else None
            out.append({k: v for k, v in tr.items() if k != "sides"} | {"side": side})
        return out


def load_calibration(path: Path) -> Calibration:
    try:
        return Calibration.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ClipError(
            f"{path}: not a treadmill calibration (a calibration.json from a replay): {exc}"
        ) from exc


def run_frames(
    pipeline: Pipeline,
    policy: AlertPolicy,
    frames: Iterable[tuple[npt.NDArray[np.uint8] | None, bytes, float]],
    sink: VideoSink | None = None,
    path_log: PathLog | None = None,
    progress: Progress | None = None,
    on_frame: Callable[[Analysis], None] | None = None,
    pitch_deg: Sequence[float | None] | None = None,
) -> tuple[list[dict[str, Any]], Frames, dict[str, Any]]:
    """The loop of `analyse`: each (frame, JPEG as sent, time in ms: clips.FrameClock's) through `pipeline`
    and `policy`. Returns (events, frame columns, the last frame's mode state); the partner columns are kept
    when the pipeline is in partner mode.

    Apart from `analyse` so bench/path_sweep.py replays with its own pipeline (cached poses, another
    ground prior) and its cached JPEGs, and so scores the very loop a replay runs. The decoded frame is
    drawn on only for `sink`: without one it may be None. `on_frame` sees each frame's Analysis. `pitch_deg`:
    the phone's tilt reading with each frame (a sensor log, vision/sensors.py), or None: none."""
    partner = pipeline.config.mode == "partner"
    mode_state: dict[str, Any] = {}
    events: list[dict[str, Any]] = []
    cols = Frames()
    start = time.perf_counter()
    for i, (frame, jpeg, t_ms) in enumerate(frames):
        ts_ms = round(t_ms)
        a = pipeline.process_jpeg(jpeg, ts_ms, reading_at(pitch_deg, i))
        out = policy.update(ts_ms / 1000.0, a.hazards)
        events += [event_of(c) for c in out.cues]
        ttcs = [h.ttc_s for h in a.hazards if h.ttc_s is not None]
        cols.t.append(round(ts_ms / 1000.0, 3))
        cols.pipeline_ms.append(round(a.timings_ms["pipeline"] + a.timings_ms["decode"], 2))
        cols.pose_ms.append(round(a.timings_ms["pose"], 2))
        cols.walker.append(int(a.walker is not None))
        cols.people.append(len(a.people))
        cols.hazards.append(sorted({h.kind for h in a.hazards}))
        cols.ttc_s.append(min(ttcs) if ttcs else None)
        if a.mode_state:
            mode_state = a.mode_state
            cols.zone.append(str(a.mode_state.get("zone")))
        if partner:
            path = a.path if isinstance(a.path, dict) else {}
            obstacles = path.get("obstacles")
            cols.coverage.append(None if (c := _num(path.get("coverage"))) is None else round(c, 3))
            cols.obstacles.append(len(obstacles) if isinstance(obstacles, list) else None)
            cols.camera_height_m.append(_num(path.get("camera_height_m")))
            if path_log is not None:
                path_log.add(cols.t[-1], path)
        if on_frame is not None:
            on_frame(a)
        if sink is not None:
            if frame is None:
                raise ValueError("the annotated video needs the decoded frames, not only their JPEGs")
            shown = next((e for e in reversed(events) if ts_ms / 1000.0 - e["t"] < CUE_DISPLAY_S), None)
            elapsed = time.perf_counter() - start
            sink.write(
                ts_ms,
                annotate(
                    frame,
                    a,
                    cue=(shown["tier"], shown["text"]) if shown else None,
                    watching=not policy.blind,
                    fps=(i + 1) / elapsed if elapsed > 0 else 0.0,
                    cost_ms=a.timings_ms["pipeline"],
                ),
            )
        if progress is not None:
            progress.update(i + 1)
    return events, cols, mode_state


def analyse(
    info: ClipInfo,
    opts: ReplayOptions,
    sink: VideoSink | None,
    calibration: Calibration | None = None,
    path_log: PathLog | None = None,
    pitch_deg: list[float | None] | None = None,
    clock: FrameClock | None = None,
) -> tuple[list[dict[str, Any]], Frames, float, dict[str, Any]]:
    """Every frame through the pipeline and the alert policy: (events, frame columns, wall seconds, the
    last frame's mode state). In partner mode, `path_log` collects what each frame said about the path;
    `pitch_deg` is the phone's tilt reading per frame, as a live session gets it; `clock` times the frames
    (clips.FrameClock)."""
    pipeline = Pipeline(
        opts.settings.pipeline_config("treadmill" if opts.mode == "treadmill" else "partner", calibration)
    )
    policy = AlertPolicy(opts.settings.alert_config())
    progress = Progress(info.frame_count, info.path.name, opts.progress)
    start = time.perf_counter()
    try:
        events, cols, mode_state = run_frames(
            pipeline,
            policy,
            frames_as_sent(info, clock),
            sink,
            path_log,
            progress,
            pitch_deg=pitch_deg,
        )
    finally:
        progress.close()
        pipeline.close()
    if not cols.t:
        raise ClipError(f"{info.path}: no frame could be decoded")
    return events, cols, time.perf_counter() - start, mode_state


def frame_times(t: list[float], clock: FrameClock) -> dict[str, Any]:
    """How the frames were timed: "container" (its timestamps: a phone's variable frame rate is kept) or
    "rate" (index / fps: --fps was given, or the clip has no usable timestamps), with the intervals between
    frames, so that a reader sees an uneven clip at once."""
    gaps = [round((b - a) * 1000.0, 1) for a, b in itertools.pairwise(t)]
    return {
        "from": "container" if clock.stamped else "rate",
        "uneven": clock.from_container > 0,
        "interval_ms": {
            "min": min(gaps) if gaps else None,
            "median": statistics.median(gaps) if gaps else None,
            "max": max(gaps) if gaps else None,
        },
    }


def summarise(events: list[dict[str, Any]], cols: Frames, duration_s: float, wall_s: float) -> dict[str, Any]:
    onsets = [e for e in events if not e["repeat"]]
    return {
        "walker_seen_share": round(sum(cols.walker) / len(cols.walker), 3),
        "cues": len(events),
        "cue_onsets": len(onsets),
        "cues_per_minute": round(len(events) / max(duration_s, 1e-6) * 60, 2),
        "stop_cues": sum(1 for e in events if e["tier"] == "stop"),
        "pipeline_ms_median": round(statistics.median(cols.pipeline_ms), 2),
        "pipeline_ms_p95": round(percentile(cols.pipeline_ms, 95) or 0.0, 2),
        "pose_ms_median": round(statistics.median(cols.pose_ms), 2),
        "replay_fps": round(len(cols.t) / wall_s, 2),
        "wall_s": round(wall_s, 2),
    }


def sensor_readings(
    clip: Path, info: ClipInfo, opts: ReplayOptions
) -> tuple[Path | None, list[float | None] | None]:
    """(the sensor log used, its per-frame tilt readings): `--sensors FILE`, else CLIP.sensors.json beside
    the clip if there is one; (None, None) without a log or with `use_sensors` off. A log that is not one,
    or whose length does not match the clip's frames, is refused: it belongs to another clip. Both modes
    use it: partner mode for the camera's height, treadmill mode to know a knocked phone at once."""
    path = _given_or_beside(opts.sensors, sensors_path_for(clip)) if opts.use_sensors else None
    if path is None:
        return None, None
    try:
        readings = load_pitch(path)
    except SensorLogError as exc:
        raise ClipError(str(exc)) from exc
    if info.frame_count > 0 and abs(len(readings) - info.frame_count) > max(2, info.frame_count // 50):
        raise ClipError(f"{path}: {len(readings)} readings for a clip of {info.frame_count} frames")
    return path, readings


def _given_or_beside(given: Path | None, beside: Path) -> Path | None:
    """A side file: the one given on the command line, else the one beside the clip if it is there."""
    return given or (beside if beside.is_file() else None)


def labels_path_for(clip: Path) -> Path:
    return clip.with_name(clip.stem + ".labels.json")


def _seconds(value: Any) -> bool:
    """A finite number of seconds, 0 or more (not a bool, which Python counts as a number)."""
    number = not isinstance(value, bool) and isinstance(value, int | float)
    return number and math.isfinite(value) and value >= 0


def load_labels(path: Path) -> dict[str, Any]:
    """Read and check a labels file before any work: a wrong type found after the replay lost it, and some
    were taken as valid and reported as a FAIL of the clip instead of a bad file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ClipError(f"{path}: cannot read the labels file: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("expect", []), list):
        raise ClipError(f'{path}: a labels file is an object with a list "expect" (see docs/replay.md)')
    if "tolerance_s" in data and not _seconds(data["tolerance_s"]):
        raise ClipError(f'{path}: "tolerance_s" must be a number of seconds, 0 or more')
    ignore = data.get("ignore_kinds", [])
    if not isinstance(ignore, list) or not all(isinstance(k, str) for k in ignore):
        raise ClipError(f'{path}: "ignore_kinds" must be a list of cue kinds (strings)')
    for item in data.get("expect", []):
        if not (isinstance(item, dict) and isinstance(item.get("kind"), str) and _seconds(item.get("t"))):
            raise ClipError(f'{path}: every expected event needs "t" (seconds) and "kind" (a text): {item!r}')
        if "tier" in item and item["tier"] not in ("advisory", "urgent", "stop"):
            raise ClipError(f'{path}: "tier" is one of advisory, urgent, stop: {item!r}')
        if "tolerance_s" in item and not _seconds(item["tolerance_s"]):
            raise ClipError(f'{path}: "tolerance_s" must be a number of seconds, 0 or more: {item!r}')
    return data


Event = dict[str, Any]


def match_events(
    wanted: list[Event],
    found: list[Event],
    also: Callable[[Event, Event], bool],
    tolerance_s: Callable[[Event], float],
) -> tuple[list[list[Event]], list[Event], list[Event]]:
    """Pair each wanted event, in order, with the earliest unpaired found event of the same kind within
    its tolerance (and `also`). Returns (pairs, wanted not found, found not wanted)."""
    used: set[int] = set()
    pairs, missing = [], []
    for w in wanted:
        hit = next(
            (
                i
                for i, f in enumerate(found)
                if i not in used
                and f["kind"] == w["kind"]
                and also(w, f)
                and abs(float(f["t"]) - float(w["t"])) <= tolerance_s(w)
            ),
            None,
        )
        if hit is None:
            missing.append(w)
        else:
            used.add(hit)
            pairs.append([w, found[hit]])
    return pairs, missing, [f for i, f in enumerate(found) if i not in used]


def check_labels(labels: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    """Match expected events to the cues' onsets (repeats of a cue already heard are not new events).

    An expected event matches the earliest unmatched onset of the same kind (and tier, when given)
    within its tolerance. Onsets nothing expected are false alarms, unless their kind is listed in
    "ignore_kinds" or is a notice ("path_hidden": what the system cannot see, not a warning), which are
    listed apart as "notices" so a tester still sees them."""
    default_tol = float(labels.get("tolerance_s", 1.0))
    ignore = set(labels.get("ignore_kinds", []))
    expected = sorted(labels.get("expect", []), key=lambda e: float(e["t"]))
    matches, misses, extra = match_events(
        expected,
        [e for e in events if not e.get("repeat")],
        lambda exp, e: exp.get("tier", e["tier"]) == e["tier"],
        lambda exp: float(exp.get("tolerance_s", default_tol)),
    )
    false_alarms = [e for e in extra if e["kind"] not in ignore and e["kind"] not in NOTICE_KINDS]
    return {
        "matches": matches,
        "misses": misses,
        "false_alarms": false_alarms,
        "notices": [e for e in extra if e["kind"] in NOTICE_KINDS and e["kind"] not in ignore],
        "passed": not misses and not false_alarms,
    }


REPLAY_FILES = frozenset(
    {"timeline.json", "frames.json", "annotated.mp4", "report.html", "live.json", "calibration.json"}
)


def check_out_dir(out_dir: Path, clip: Path | None = None) -> None:
    """A replay writes a whole folder: one that does not exist yet, is empty, or holds an earlier replay
    (a timeline.json and nothing but a replay's files); never a file, nor a folder of other things (the
    user's own report.html, or the clip itself, were replaced one by one). Raises ClipError."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ClipError(f"--out {out_dir} is a file, not a folder")
    if clip is not None and out_dir.resolve() in clip.resolve().parents:
        raise ClipError(f"--out {out_dir} holds the clip itself: give another folder")
    if out_dir.is_dir():
        names = {p.name for p in out_dir.iterdir()}
        if names and (not names <= REPLAY_FILES or "timeline.json" not in names):
            raise ClipError(
                f"--out {out_dir} holds other files than an earlier replay's: give a new or empty folder"
            )


def replay_clip(
    clip: Path,
    out_dir: Path,
    opts: ReplayOptions,
    live: dict[str, Any] | None = None,
    sensors: tuple[Path | None, list[float | None] | None] | None = None,
) -> dict[str, Any]:
    """Replay one clip offline into `out_dir`. Returns the summary row; raises ClipError on bad input.

    With `live` (what a running server answered when the same clip was streamed to it), also writes
    `live.json` and sets the two timelines side by side in the report. `sensors`: the clip's tilt log as
    `sensor_readings` already read it (the stream sent the same readings), else it is read here."""
    if opts.mode not in MODES:
        raise ClipError(f"--mode must be one of {', '.join(MODES)}, got {opts.mode!r}")
    check_out_dir(out_dir, clip)
    calibration = load_calibration(opts.calibration) if opts.calibration else None
    info = probe(clip, opts.fps)
    labels_file = _given_or_beside(opts.labels, labels_path_for(clip))
    labels = load_labels(labels_file) if labels_file else None
    sensors_file, pitch_deg = sensors if sensors is not None else sensor_readings(clip, info, opts)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    except OSError as exc:
        raise ClipError(f"cannot write the replay into {out_dir}: {exc.strerror or exc}") from exc
    sink: VideoSink | None = None
    try:
        sink = VideoSink(tmp / "video-only.mp4", info.analysis_wh, info.fps) if opts.video else None
        path_log = PathLog() if opts.mode == "partner" else None
        clock = FrameClock(info.fps, info.timestamps)
        events, cols, wall_s, mode_state = analyse(info, opts, sink, calibration, path_log, pitch_deg, clock)
        assert clock.last_ms is not None  # analyse raised if no frame was decoded
        duration_s = clock.last_ms / 1000.0 + 1.0 / info.fps  # the last frame is shown for a frame's time
        timeline: dict[str, Any] = {
            "clip": clip.name,
            "mode": opts.mode,
            "fps": round(info.fps, 3),
            "frames": len(cols.t),
            "duration_s": round(duration_s, 3),
            "frame_times": frame_times(cols.t, clock),
            "source": "offline",
            "events": events,
            "summary": summarise(events, cols, duration_s, wall_s),
            "analysis_wh": list(info.analysis_wh),
            "source_wh": list(info.source_wh),
            "sensors": sensors_file.name if sensors_file else None,
        }
        # Cut short: it lasts less than the container lists. By duration, not frame count: some containers
        # (Matroska, WebM) list a clip of variable rate as duration x nominal rate frames; for an evenly
        # spaced clip the two tests are one.
        if info.frame_count > 0 and duration_s < (0.98 * info.frame_count - 1) / info.fps:
            # A clip cut short (a copy that stopped, a download cut off) decodes up to the cut: say so, in the
            # timeline and on the terminal, rather than pass off part of it as the whole
            timeline["truncated"] = {"decoded": len(cols.t), "container_frames": info.frame_count}
            print(
                f"rearguard: warning: {clip.name}: {len(cols.t)} of the {info.frame_count} frames its "
                "container lists could be decoded; the replay covers those only",
                file=sys.stderr,
            )
        if path_log is not None:
            # What the camera saw of the walker's path (DESIGN.md: the walker's body hides it), and what
            # stood in it; docs/replay.md describes the fields.
            timeline["coverage"] = path_log.samples(duration_s)
            timeline["coverage_summary"] = path_log.summary()
            timeline["obstacles"] = path_log.obstacle_list()
        if opts.mode == "treadmill":
            # The workout as the solo page sums it up, and the calibration learned from the first
            # seconds, reusable with --calibration for another clip from the same phone position.
            timeline["workout"] = mode_state.get("figures", {})
            timeline["calibrated"] = mode_state.get("calibration") is not None
            if mode_state.get("calibration"):
                (tmp / "calibration.json").write_text(json.dumps(mode_state["calibration"], indent=1))
        checked = check_labels(labels, events) if labels is not None else None
        if checked is not None:
            timeline["labels"] = {k: v for k, v in checked.items() if k != "matches"} | {
                "matched": len(checked["matches"])
            }
        (tmp / "timeline.json").write_text(json.dumps(timeline, indent=1))
        (tmp / "frames.json").write_text(json.dumps(cols.as_dict(), separators=(",", ":")))
        comparison = None
        if live is not None:
            from server.live_replay import compare

            comparison = compare(events, live["events"])
            (tmp / "live.json").write_text(json.dumps(live | {"comparison": comparison}, indent=1))
        if sink is not None:
            sink.close()
            wav = tmp / "cues.wav"
            wav.write_bytes(to_wav_bytes(mix_cues(events, duration_s)))
            sink.mux_audio(wav, tmp / "annotated.mp4")
            (tmp / "video-only.mp4").unlink()
            wav.unlink()
            sink = None
        if opts.report:
            from server.report import render_report

            render_report(
                tmp,
                timeline,
                cols.as_dict(),
                live=live,
                comparison=comparison,
                labels=checked,
                video_name="annotated.mp4" if opts.video else None,
            )
        # The whole folder at once: an earlier replay's files that this one does not write (its video, its
        # live.json) are not left beside the new ones, and a failure leaves the earlier replay as it was
        old = out_dir.parent / f".{out_dir.name}.old-{tmp.name.rsplit('-', 1)[-1]}"
        if out_dir.exists():
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        if sink is not None:
            sink.abort()
        shutil.rmtree(tmp, ignore_errors=True)
    row: dict[str, Any] = {"clip": clip.name, "frames": len(cols.t), "duration_s": round(duration_s, 2)}
    row |= timeline["summary"]
    if comparison is not None:
        row["comparison"] = comparison
    if checked is not None:
        row["labels"] = (
            "pass"
            if checked["passed"]
            else f"FAIL ({len(checked['misses'])} missed, {len(checked['false_alarms'])} false)"
        )
    return row
