"""Treadmill mode against ground truth built from real frames: detection rate, warning latency, margin
before the edge and false alarms per minute, per event kind.

    .venv/bin/python bench/treadmill_eval.py [--fps 15] [--jobs 2] [--json PATH] [--only TEXT]
                                             [--dump DIR | --replay DIR] [--config JSON]

How real footage becomes events with known timing
- Sources (real camera footage from ../shared/clips, never copied): treadmill_phone_side.mp4 (a man running
  on a treadmill, side view, portrait, 30 fps) and squats_facing_camera.mp4 (a woman squatting, front view,
  5 fps). Frames are downscaled to 640 px on the long side and JPEG-compressed at quality 70, as the camera
  page sends them, and analysed at `--fps` (15, the page's rate; the squats' 5 fps frames are repeated, and
  one control runs them at their own 5 fps). Sequences longer than a clip play it forwards then backwards.
- Framing: a sequence may first mirror, scale, shift or dim every frame (a different phone placement, a
  smaller or larger walker, a dimmer room): these are the controls' variations.
- Event: each frame is then warped with a known map over time (affine, or a homography for a depth move;
  border pixels replicated): a shift along the image's x (along the belt in side view, sideways in front
  view); a depth move (away from or towards the camera: a scale k = D0 / (D0 + d) about the centre of a
  level pinhole camera at the phone's place, seen through the phone's own tilt, `SOURCE_ELEVATION_DEG`:
  exact for a body at one distance); or a rotation and drop about the feet (a stumble). The first 3 s are
  never warped: the monitor calibrates on them.
- The phones' tilt: the side clip's phone looks up by about 12 deg (the room's vertical edges meet 3,850 px
  above its 1280 px frame, at the assumed focal length), the squats' phone is level to within 1.5 deg. The
  tilt sensor reports that elevation with every frame (0.2 deg of noise), as a phone on a stand would.
  `--no-tilt`: no tilt at all, the phone taken as level. `--image-tilt`: no sensor; the tilt read from the
  rendered frames' vertical edges while the monitor calibrates (vision/tilt.py, one frame in five; the
  calibration keeps their median), as the product does for a phone that sends none.
- Metric scale: the walker is 1.75 m tall; their height in pixels is measured on the untouched frames with
  the anthropometric rule the monitor uses (shoulder-to-ankle segments are 0.78 of stature). D0 comes from
  the same pinhole assumption (focal length 0.75 of the long side), which also measured the clips' tilt.
  Truth and monitor share these assumptions; the evaluation tests everything else.
- The belt is 1.40 m x 0.50 m (0.56 m wide in front view, see `scenarios`), centred where the walker was in
  the first 3 s (side view: the median hip; front view: the median midpoint of the feet).

Truth per event kind
- Drift (0.5-1.5 m/s along the belt, belt speeds; 0.1-0.3 m/s sideways): the walker's image moves at constant
  speed from the onset. The edge crossing is the first frame in which a foot reaches the belt's end or
  side. Where the image shows that axis (side view along the belt, front view sideways), the outermost foot
  landmark of the source pose (ankle, heel or toe), moved by the applied warp, passes the end. On a depth
  axis it is the applied displacement passing the end minus 0.13 m (along the belt: the squatting walker's
  planted feet reach half a foot past her hips) or the side minus 0.12 m (half the stance plus half a foot).
  Detected if the walker hears the matching edge cue between the onset and the crossing; the margin is
  crossing minus warning and must be positive. A warning after the crossing is reported as LATE with its
  margin. Every event kind is detected by a cue heard (vision.alerts.AlertPolicy over the monitor's hazards,
  as live): until 2026-12-01 by the monitor's hazards, and a step-off was "detected" while the policy, the
  edge's stop still held, marked it heard without saying it.
- Step-off: fast (0.5 m in 0.4 s) and staying; detected if `stepped_off` is heard within 2 s of the crossing.
- Stumble: the image turns by 25-30 degrees about the feet and drops 8% of body height over 0.25 s, holds
  0.3 s, recovers over 0.6 s. Truth time: the onset; detected if `stumble` starts within 1 s.
- Walker leaves: shifted out of the frame at 1.5 m/s; truth: the hip centre leaves the frame; detected if
  `walker_lost` starts within 2 s.
- Too dark: from the onset, pixel values x0.12. Phone knocked: from the onset, the frame rises 12% of its
  height and turns 4 degrees; the phone's tilt sensor says it tipped down as far. Detected if `too_dark` /
  `camera_moved` starts within 3 s.

False alarms are cues the walker would hear (vision.alerts.AlertPolicy over the monitor's hazards) after
calibration, outside the event's window or of a kind the event does not explain. Windows run from the
onset to the end of the sequence (the walker does not come back), except stumbles (onset + 2.2 s). Edge
cues during a stumble are explained (the body pitches over the feet towards an end) and listed as "also
heard". Controls have no window: every cue after calibration is a false alarm.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vision.alerts import AlertPolicy  # noqa: E402
from vision.pipeline import PipelineConfig  # noqa: E402
from vision.pose import PoseEstimator  # noqa: E402
from vision.tilt import elevation_in_frame  # noqa: E402
from vision.treadmill import TreadmillConfig, TreadmillMonitor, mean_luma  # noqa: E402
from vision.types import Pose  # noqa: E402
from vision.walker import select_walker  # noqa: E402

CLIPS = ROOT.parent / "shared" / "clips"
SOURCES = {"side": "treadmill_phone_side.mp4", "front": "squats_facing_camera.mp4"}
BODY_M = 1.75
BELT_L_M, BELT_W_M = 1.40, 0.50
FOCAL_LONG_SIDE = 0.75
# Each clip's camera elevation (deg, up +): where its room's vertical edges meet (cv2 line segments, the
# vanishing point's row at FOCAL_LONG_SIDE): the side clip's verticals meet 3,850 px above the frame's centre
# (12.05 deg over three frames), the squats' tens of thousands of px away (0.3-1.5 deg).
SOURCE_ELEVATION_DEG = {"side": 12.0, "front": 1.0}
CALIBRATION_S = 3.0
FOOT_POINTS = [27, 28, 29, 30, 31, 32]
EDGE_KINDS = ("edge_back", "edge_front", "edge_side")
IMAGE_TILT_S = 6.0  # frames read for the tilt (`--image-tilt`): calibration takes 3 s, longer if interrupted
Matrix = np.ndarray  # (3, 3) in homogeneous form: affine, or a homography


# ---------------------------------------------------------------------------------------------- sources


def load_frames(name: str, max_side: int = 640) -> tuple[list[np.ndarray], float]:
    cap = cv2.VideoCapture(str(CLIPS / SOURCES[name]))
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 30.0)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        scale = min(1.0, max_side / max(frame.shape[:2]))
        frames.append(cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
    cap.release()
    return frames, fps


@dataclass(frozen=True)
class SourceInfo:
    """What the truth needs from a source: the walker's landmarks (px) in every source frame."""

    name: str
    fps: float
    n: int
    wh: tuple[int, int]
    points: list[list[list[float]] | None]  # per source frame, (33, 2) px, or None


def source_info(name: str) -> SourceInfo:
    frames, fps = load_frames(name)
    est = PoseEstimator()
    points: list[list[list[float]] | None] = []
    h, w = frames[0].shape[:2]
    for i, f in enumerate(frames):
        poses = est.detect(cv2.cvtColor(f, cv2.COLOR_BGR2RGB), round(i * 1000 / fps))
        points.append((poses[0].xy * np.array([w, h])).tolist() if poses else None)
    est.close()
    return SourceInfo(name, fps, len(frames), (w, h), points)


def body_px(points: list[np.ndarray]) -> float:
    """Stature in px from shoulder-to-ankle segments (0.78 of stature), 90th percentile of each segment."""
    p = np.stack(points)

    def seg(a: int, b: int) -> np.ndarray:
        return np.linalg.norm(p[:, a] - p[:, b], axis=1)

    torso = np.linalg.norm((p[:, 11] + p[:, 12]) / 2 - (p[:, 23] + p[:, 24]) / 2, axis=1)
    thigh = np.maximum(seg(23, 25), seg(24, 26))
    shank = np.maximum(seg(25, 27), seg(26, 28))
    return float(sum(np.percentile(x, 90) for x in (torso, thigh, shank)) / 0.78)


def pingpong(i: int, n: int) -> int:
    period = 2 * (n - 1)
    k = i % period
    return k if k < n else period - k


def smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3 - 2 * x)


def affine(m: np.ndarray) -> Matrix:
    out = np.eye(3)
    out[:2] = m
    return out


# ---------------------------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: (
        str  # control, drift_back, drift_front, drift_side, step_off, stumble, leave, too_dark, camera_moved
    )
    source: str  # side | front
    duration_s: float
    onset_s: float | None = None
    motion: str = "none"  # none | shift | depth | stumble | dark | moved
    params: dict[str, float] = field(default_factory=dict)
    framing: dict[str, float] = field(default_factory=dict)  # flip, k (about ax, ay), dx, dy, gain
    config: dict[str, float] = field(default_factory=dict)  # TreadmillConfig flags, as a user would set them
    native_rate: bool = False  # analyse at the source's own frame rate instead of --fps

    # -- geometry

    def framing_matrix(self, src: SourceInfo) -> Matrix:
        w, h = src.wh
        f = self.framing
        m = np.eye(3)
        if f.get("flip"):
            m = np.array([[-1.0, 0.0, w], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        k = f.get("k", 1.0)
        if k != 1.0:
            m = affine(cv2.getRotationMatrix2D((f.get("ax", 0.5) * w, f.get("ay", 0.5) * h), 0.0, k)) @ m
        shift = np.eye(3)
        shift[0, 2], shift[1, 2] = f.get("dx", 0.0) * w, f.get("dy", 0.0) * h
        return shift @ m

    def amount_m(self, t: float) -> float:
        """Displacement (m) at time t: constant speed from the onset, up to `max_m`."""
        if self.onset_s is None or t <= self.onset_s:
            return 0.0
        return min(self.params["v_mps"] * (t - self.onset_s), self.params.get("max_m", 1e9))

    def event_matrix(self, t: float, src: SourceInfo, geo: Geometry) -> Matrix:
        w, h = src.wh
        p = self.params
        if self.motion == "shift":
            m = np.eye(3)
            m[0, 2] = p["sign"] * self.amount_m(t) * geo.body_px / BODY_M
            return m
        if self.motion == "depth":  # + away from the camera
            d0 = FOCAL_LONG_SIDE * max(w, h) * BODY_M / geo.body_px
            k = d0 / (d0 + p["sign"] * self.amount_m(t))
            # A level camera sees the move as a scale about its centre; this phone sees that level view
            # through its own tilt
            level = level_view(src, SOURCE_ELEVATION_DEG[self.source])
            return level @ affine(cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, k)) @ np.linalg.inv(level)
        if self.motion == "stumble" and self.onset_s is not None:
            x = t - self.onset_s
            rise, hold, back = p["rise_s"], p["hold_s"], p["back_s"]
            a = smoothstep(x / rise) if x < rise + hold else 1.0 - smoothstep((x - rise - hold) / back)
            m = affine(cv2.getRotationMatrix2D(geo.feet_xy, p["angle_deg"] * a, 1.0))
            m[1, 2] += p["drop_bh"] * geo.body_px * a
            return m
        if self.motion == "moved" and self.onset_s is not None and t >= self.onset_s:
            m = affine(cv2.getRotationMatrix2D((w / 2, h / 2), 4.0, 1.0))
            m[1, 2] -= 0.12 * h  # the phone tips down: the scene rises in the image
            return m
        return np.eye(3)

    def matrix(self, t: float, src: SourceInfo, geo: Geometry) -> Matrix:
        """(3, 3): affine, but a homography for a depth move."""
        return self.event_matrix(t, src, geo) @ self.framing_matrix(src)

    # -- timing

    def frame_times(self, src: SourceInfo, fps: float) -> list[float]:
        rate = src.fps if self.native_rate else fps
        return [i / rate for i in range(int(self.duration_s * rate))]

    def source_index(self, t: float, src: SourceInfo) -> int:
        return pingpong(round(t * src.fps), src.n)

    # -- scoring

    @property
    def belt_width_m(self) -> float:
        return self.config.get("belt_width_m", BELT_W_M)

    def edge_kind(self) -> str:
        return EDGE_KINDS[int(self.params.get("direction_code", 0.0))]

    def window(self) -> tuple[float, float]:
        if self.onset_s is None:
            return (1e9, 1e9)
        if self.kind == "stumble":
            return (self.onset_s, self.onset_s + 2.2)
        return (self.onset_s, 1e9)

    def allowed(self) -> set[str]:
        """Hazard kinds that the event explains inside its window."""
        if self.kind.startswith("drift") or self.kind in ("step_off", "leave"):
            return {self.edge_kind(), "partial_view", "walker_lost", "stepped_off"}
        return {
            "stumble": {"stumble", *EDGE_KINDS},
            "too_dark": {"too_dark", "walker_lost", "partial_view"},
            "camera_moved": {"camera_moved", "partial_view", "stepped_off", *EDGE_KINDS},
            "control": set(),
        }[self.kind]

    def expected(self) -> str:
        """The hazard kind that detects the event."""
        if self.kind.startswith("drift"):
            return self.edge_kind()
        return {"step_off": "stepped_off", "leave": "walker_lost"}.get(self.kind, self.kind)


@dataclass(frozen=True)
class Geometry:
    """The walker as framed in the first 3 s: scale, neutral position, feet at the onset."""

    body_px: float
    neutral_x: float
    feet_xy: tuple[float, float]


def level_view(src: SourceInfo, elevation_deg: float) -> Matrix:
    """The homography from a level camera's image to that of the same camera tipped up by `elevation_deg`
    (K R K^-1, the principal point at the centre, the focal length FOCAL_LONG_SIDE of the long side)."""
    w, h = src.wh
    f = FOCAL_LONG_SIDE * max(w, h)
    k = np.array([[f, 0.0, w / 2], [0.0, f, h / 2], [0.0, 0.0, 1.0]])
    e = math.radians(elevation_deg)
    # x right, y down, z ahead: tipped up, what lies straight ahead (level) shows below the centre
    r = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(e), math.sin(e)], [0.0, -math.sin(e), math.cos(e)]])
    return k @ r @ np.linalg.inv(k)


def framed_points(s: Scenario, t: float, src: SourceInfo) -> np.ndarray | None:
    pts = src.points[s.source_index(t, src)]
    if pts is None:
        return None
    m = s.framing_matrix(src)
    return np.array(pts) @ m[:2, :2].T + m[:2, 2]


def geometry(s: Scenario, src: SourceInfo, fps: float) -> Geometry:
    cal = [
        p for t in s.frame_times(src, fps) if t < CALIBRATION_S if (p := framed_points(s, t, src)) is not None
    ]
    if s.source == "side":
        neutral = float(np.median([(p[23, 0] + p[24, 0]) / 2 for p in cal]))
    else:
        neutral = float(np.median([p[FOOT_POINTS, 0].mean() for p in cal]))
    feet = (0.0, 0.0)
    if s.onset_s is not None and (p := framed_points(s, s.onset_s, src)) is not None:
        feet = (float(p[FOOT_POINTS, 0].mean()), float(p[FOOT_POINTS, 1].max()))
    return Geometry(body_px(cal), neutral, feet)


def truth_time(s: Scenario, src: SourceInfo, geo: Geometry, fps: float) -> float | None:
    """When the event happens, by the definitions in the module docstring."""
    if s.onset_s is None:
        return None
    if s.kind in ("stumble", "too_dark", "camera_moved"):
        return s.onset_s
    w, _ = src.wh
    for t in (t for t in s.frame_times(src, fps) if t >= s.onset_s):
        pts = src.points[s.source_index(t, src)]
        if pts is None:
            continue
        m = s.matrix(t, src, geo)
        q = np.array(pts) @ m[:, :2].T + m[:, 2]
        p = q[:, :2] / q[:, 2:]  # a homography's points
        if s.kind == "leave":
            if not 0 <= (p[23, 0] + p[24, 0]) / 2 <= w:
                return t
            continue
        if s.motion == "depth":
            side = s.params["direction_code"] == 2.0
            if s.amount_m(t) >= (s.belt_width_m / 2 - 0.12 if side else BELT_L_M / 2 - 0.13):
                return t
            continue
        half = (BELT_L_M if s.source == "side" else s.belt_width_m) / 2 * geo.body_px / BODY_M
        feet_x = p[FOOT_POINTS, 0]
        if s.params["sign"] > 0 and feet_x.max() >= geo.neutral_x + half:
            return t
        if s.params["sign"] < 0 and feet_x.min() <= geo.neutral_x - half:
            return t
    return None


def scenarios() -> list[Scenario]:
    # The squatting woman stands with her feet 35 cm apart (outer edges): on a 50 cm belt she would stand 7 cm
    # from each side, nearer than any warning margin, so front-view sequences use a 56 cm belt (the widest in
    # the range), given to the monitor as the flag a user would set.
    wide = {"belt_width_m": 0.56}
    flip = {"flip": 1.0}
    out = [
        Scenario("control side, 24 s", "control", "side", 24.0),
        Scenario("control side mirrored, 24 s", "control", "side", 24.0, framing=flip),
        Scenario("control side, walker 0.75x, 24 s", "control", "side", 24.0, framing={"k": 0.75}),
        Scenario("control side, walker 1.1x, 24 s", "control", "side", 24.0, framing={"k": 1.1, "ay": 0.95}),
        Scenario("control side, framed left, 24 s", "control", "side", 24.0,
                 framing={"dx": -0.15, "dy": -0.05}),
        Scenario("control side, dim room (x0.5), 24 s", "control", "side", 24.0, framing={"gain": 0.5}),
        Scenario("control side at the clip's 30 fps", "control", "side", 12.0, native_rate=True),
        Scenario("control squats (bending on purpose)", "control", "front", 26.0, config=wide),
        Scenario("control squats mirrored, 0.85x", "control", "front", 26.0, framing={"flip": 1.0, "k": 0.85},
                 config=wide),
        Scenario("control squats at the clip's 5 fps", "control", "front", 13.0, config=wide,
                 native_rate=True),
    ]  # fmt: skip
    # Side view: the back end is +x (the runner faces the console, on the image's left); mirrored, -x.
    for v in (0.5, 1.0, 1.5):
        out.append(
            Scenario(
                f"side: drift to back end {v} m/s",
                "drift_back",
                "side",
                9.0,
                5.0,
                "shift",
                {"v_mps": v, "sign": 1.0, "max_m": 1.0, "direction_code": 0.0},
            )
        )
    for v in (0.5, 1.0):
        out.append(
            Scenario(
                f"side: drift to front end {v} m/s",
                "drift_front",
                "side",
                9.0,
                5.0,
                "shift",
                {"v_mps": v, "sign": -1.0, "max_m": 1.0, "direction_code": 1.0},
            )
        )
    out += [
        Scenario("side mirrored: drift to back end 1.0 m/s", "drift_back", "side", 9.0, 5.5, "shift",
                 {"v_mps": 1.0, "sign": -1.0, "max_m": 1.0, "direction_code": 0.0}, flip),
        Scenario("side 0.75x: drift to back end 1.0 m/s", "drift_back", "side", 9.0, 6.0, "shift",
                 {"v_mps": 1.0, "sign": 1.0, "max_m": 1.0, "direction_code": 0.0}, {"k": 0.75}),
        Scenario("side: drift sideways (away) 0.2 m/s", "drift_side", "side", 10.0, 5.0, "depth",
                 {"v_mps": 0.2, "sign": 1.0, "max_m": 0.6, "direction_code": 2.0}),
        Scenario("side: drift sideways (away) 0.1 m/s", "drift_side", "side", 11.0, 5.0, "depth",
                 {"v_mps": 0.1, "sign": 1.0, "max_m": 0.6, "direction_code": 2.0}),
        Scenario("side: drift sideways (away) 0.3 m/s", "drift_side", "side", 9.0, 5.0, "depth",
                 {"v_mps": 0.3, "sign": 1.0, "max_m": 0.6, "direction_code": 2.0}),
        Scenario("side: drift sideways (towards) 0.2 m/s", "drift_side", "side", 10.0, 5.0, "depth",
                 {"v_mps": 0.2, "sign": -1.0, "max_m": 0.4, "direction_code": 2.0}),
        Scenario("side: drift sideways (towards) 0.1 m/s", "drift_side", "side", 11.0, 5.0, "depth",
                 {"v_mps": 0.1, "sign": -1.0, "max_m": 0.4, "direction_code": 2.0}),
        Scenario("side mirrored: drift sideways (away) 0.3 m/s", "drift_side", "side", 9.0, 5.5, "depth",
                 {"v_mps": 0.3, "sign": 1.0, "max_m": 0.6, "direction_code": 2.0}, flip),
        Scenario("side mirrored: drift sideways (towards) 0.2 m/s", "drift_side", "side", 10.0, 6.0,
                 "depth", {"v_mps": 0.2, "sign": -1.0, "max_m": 0.4, "direction_code": 2.0}, flip),
        Scenario("side 0.75x: drift sideways (away) 0.2 m/s", "drift_side", "side", 10.0, 5.0, "depth",
                 {"v_mps": 0.2, "sign": 1.0, "max_m": 0.6, "direction_code": 2.0}, {"k": 0.75}),
        Scenario("side 0.75x: drift sideways (towards) 0.3 m/s", "drift_side", "side", 9.0, 6.5, "depth",
                 {"v_mps": 0.3, "sign": -1.0, "max_m": 0.4, "direction_code": 2.0}, {"k": 0.75}),
        Scenario("side: step off sideways (away)", "step_off", "side", 10.0, 5.0, "depth",
                 {"v_mps": 1.25, "sign": 1.0, "max_m": 0.5, "direction_code": 2.0}),
        Scenario("side: step off the back end", "step_off", "side", 10.0, 5.0, "shift",
                 {"v_mps": 1.6, "sign": 1.0, "max_m": 1.0, "direction_code": 0.0}),
        Scenario("side: stumble backwards", "stumble", "side", 9.0, 5.0, "stumble",
                 {"angle_deg": -30.0, "drop_bh": 0.08, "rise_s": 0.25, "hold_s": 0.3, "back_s": 0.6}),
        Scenario("side: stumble forwards", "stumble", "side", 9.0, 6.0, "stumble",
                 {"angle_deg": 25.0, "drop_bh": 0.08, "rise_s": 0.25, "hold_s": 0.3, "back_s": 0.6}),
        Scenario("side mirrored: stumble backwards", "stumble", "side", 9.0, 7.0, "stumble",
                 {"angle_deg": 28.0, "drop_bh": 0.08, "rise_s": 0.25, "hold_s": 0.3, "back_s": 0.6}, flip),
        Scenario("side: walker leaves the view", "leave", "side", 10.0, 5.0, "shift",
                 {"v_mps": 1.5, "sign": 1.0, "max_m": 4.0, "direction_code": 0.0}),
        Scenario("side: lights go down", "too_dark", "side", 9.0, 5.0, "dark", {"factor": 0.12}),
        Scenario("side: phone knocked", "camera_moved", "side", 10.0, 5.0, "moved"),
        # Front view (squats): "auto" puts the console at the camera, so the back end is away from it.
        Scenario("front: drift to back end 0.5 m/s", "drift_back", "front", 13.0, 5.0, "depth",
                 {"v_mps": 0.5, "sign": 1.0, "max_m": 1.0, "direction_code": 0.0}, config=wide),
        Scenario("front: drift to back end 1.0 m/s", "drift_back", "front", 13.0, 5.0, "depth",
                 {"v_mps": 1.0, "sign": 1.0, "max_m": 1.0, "direction_code": 0.0}, config=wide),
        Scenario("front: drift to front end 0.5 m/s", "drift_front", "front", 13.0, 5.0, "depth",
                 {"v_mps": 0.5, "sign": -1.0, "max_m": 0.65, "direction_code": 1.0}, config=wide),
        Scenario("front: drift to her left 0.2 m/s", "drift_side", "front", 13.0, 5.0, "shift",
                 {"v_mps": 0.2, "sign": 1.0, "max_m": 0.6, "direction_code": 2.0}, config=wide),
        Scenario("front: drift to her right 0.2 m/s", "drift_side", "front", 13.0, 5.0, "shift",
                 {"v_mps": 0.2, "sign": -1.0, "max_m": 0.6, "direction_code": 2.0}, config=wide),
        Scenario("front: step off sideways", "step_off", "front", 13.0, 6.0, "shift",
                 {"v_mps": 1.25, "sign": 1.0, "max_m": 0.5, "direction_code": 2.0}, config=wide),
        Scenario("front: stumble sideways", "stumble", "front", 13.0, 6.4, "stumble",
                 {"angle_deg": 28.0, "drop_bh": 0.08, "rise_s": 0.25, "hold_s": 0.3, "back_s": 0.6},
                 config=wide),
    ]  # fmt: skip
    return out


# ---------------------------------------------------------------------------------------------- running


_FRAMES: dict[str, list[np.ndarray]] = {}


def render(s: Scenario, t: float, src: SourceInfo, geo: Geometry) -> np.ndarray:
    if s.source not in _FRAMES:
        _FRAMES[s.source] = load_frames(s.source)[0]
    frame = _FRAMES[s.source][s.source_index(t, src)]
    w, h = src.wh
    m = s.matrix(t, src, geo)
    if np.allclose(m[2], (0.0, 0.0, 1.0), rtol=0.0, atol=1e-12):
        out = cv2.warpAffine(frame, m[:2], (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    else:
        out = cv2.warpPerspective(frame, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    gain = s.framing.get("gain", 1.0)
    if s.motion == "dark" and s.onset_s is not None and t >= s.onset_s:
        gain *= s.params["factor"]
    if gain != 1.0:
        out = cv2.convertScaleAbs(out, alpha=gain)
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, 70])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def extract(job: tuple[Scenario, SourceInfo, Geometry, float]) -> dict[str, np.ndarray]:
    """Render a sequence and find the walker in every frame, as the pipeline does (one pose, walker gate)."""
    s, src, geo, fps = job
    est = PoseEstimator()
    log: dict[str, list[Any]] = {
        "t_ms": [], "xy": [], "vis": [], "ok": [], "luma": [], "wh": [], "image_tilt": []
    }  # fmt: skip
    for k, t in enumerate(s.frame_times(src, fps)):
        bgr = render(s, t, src, geo)
        ms = round(t * 1000)
        people = est.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), ms)
        idx = select_walker(people)
        pose = people[idx] if idx is not None else None
        log["t_ms"].append(ms)
        log["ok"].append(pose is not None)
        log["xy"].append(pose.xy if pose is not None else np.zeros((33, 2), np.float32))
        log["vis"].append(pose.visibility if pose is not None else np.zeros(33, np.float32))
        log["luma"].append(mean_luma(bgr))
        log["wh"].append((bgr.shape[1], bgr.shape[0]))
        # What the pipeline reads from the frame while calibrating when the phone sends no tilt
        read = t < IMAGE_TILT_S and k % PipelineConfig.image_tilt_every == 0
        tilt = elevation_in_frame(bgr, pose, FOCAL_LONG_SIDE) if read else None
        log["image_tilt"].append(math.nan if tilt is None else tilt)
    est.close()
    return {k: np.array(v) for k, v in log.items()}


def tilt_at(s: Scenario, t: float, src: SourceInfo, rng: np.random.Generator) -> float:
    """What the phone's tilt sensor reports at `t` (its camera's elevation, degrees up): the clip's own
    (SOURCE_ELEVATION_DEG), read with 0.2 deg of noise (the belt's vibration); knocked, it tips down as far as
    the frame rises in the image (12% of its height at the assumed focal length: about 9 deg)."""
    elevation = SOURCE_ELEVATION_DEG[s.source]
    if s.motion == "moved" and s.onset_s is not None and t >= s.onset_s:
        w, h = src.wh
        elevation -= math.degrees(math.atan(0.12 * h / (FOCAL_LONG_SIDE * max(w, h))))
    return elevation + float(rng.normal(0.0, 0.2))


def monitor_run(
    log: dict[str, np.ndarray],
    cfg_kwargs: dict[str, Any],
    tilt: Callable[[float], float] | None = None,
    image_tilt: bool = False,
) -> dict[str, Any]:
    """The monitor and the shared alert policy over one sequence's poses; `tilt(t)`: the phone's tilt
    reading with each frame (None: a phone without the sensor). `image_tilt`: without the sensor, the tilt
    read from the frames (`extract`), handed to the monitor as vision.pipeline does."""
    monitor = TreadmillMonitor(TreadmillConfig(**cfg_kwargs))
    policy = AlertPolicy()
    cues: list[tuple[float, str, str]] = []
    cost_ms: list[float] = []
    calibrated_at = None
    state = None
    for k, ms in enumerate(log["t_ms"].tolist()):
        t = ms / 1000
        pose = (
            Pose(log["xy"][k].astype(np.float32), log["vis"][k].astype(np.float32)) if log["ok"][k] else None
        )
        wh = (int(log["wh"][k][0]), int(log["wh"][k][1]))
        reading = float(log["image_tilt"][k]) if image_tilt else math.nan
        from_image = reading if math.isfinite(reading) and monitor.calibration is None else None
        t0 = time.perf_counter()
        pitch = tilt(t) if tilt is not None else None
        state = monitor.update(pose, ms, wh, float(log["luma"][k]), pitch, from_image)
        cost_ms.append((time.perf_counter() - t0) * 1000)
        if calibrated_at is None and not state.calibrating:
            calibrated_at = t
        cues.extend((t, c.kind, c.tier) for c in policy.update(t, state.hazards).cues)
    assert state is not None
    return {
        "cues": cues,
        "calibrated_at": calibrated_at,
        "figures": state.figures,
        "monitor_ms": cost_ms,
        "duration_s": float(log["t_ms"][-1]) / 1000,
    }


def first_onset(cues: list[tuple[float, str, str]], kind: str, t0: float, t1: float) -> float | None:
    times = [t for t, k, _ in cues if k == kind and t0 <= t <= t1]
    return min(times) if times else None


def score(s: Scenario, truth: float | None, res: dict[str, Any]) -> dict[str, Any]:
    cal = res["calibrated_at"] if res["calibrated_at"] is not None else res["duration_s"]
    w0, w1 = s.window()
    allowed = s.allowed()
    false = [
        c
        for c in res["cues"]
        if c[0] >= cal and c[1] != "calibrated" and not (w0 <= c[0] <= w1 and c[1] in allowed)
    ]
    also = sorted(
        {c[1] for c in res["cues"] if w0 <= c[0] <= w1 and c[1] in allowed and c[1] != s.expected()}
    )
    outside_s = max(0.0, min(w0, res["duration_s"]) - cal)
    out: dict[str, Any] = {
        "name": s.name,
        "kind": s.kind,
        "source": s.source,
        "truth_s": truth,
        "calibrated_at": cal,
        "false_alarms": [(round(t, 2), k, tier) for t, k, tier in false],
        "also_heard": also,
        "outside_s": outside_s,
        "figures": res["figures"],
    }
    if s.kind == "control" or s.onset_s is None:
        return out
    expected, onset = s.expected(), s.onset_s
    if s.kind.startswith("drift"):
        # Detected: warned between the onset and the crossing; a later warning shows how late it was.
        end = truth if truth is not None else res["duration_s"]
        warned = first_onset(res["cues"], expected, onset, 1e9)
        out["detected"] = warned is not None and warned <= end
        out["latency_s"] = None if warned is None else warned - onset
        out["margin_s"] = None if warned is None or truth is None else truth - warned
    else:
        ref = truth if truth is not None else onset
        limit = {"step_off": 2.0, "stumble": 1.0, "leave": 2.0}.get(s.kind, 3.0)
        seen = first_onset(res["cues"], expected, onset, ref + limit)
        out["detected"] = seen is not None
        out["latency_s"] = None if seen is None else seen - ref
    return out


# ---------------------------------------------------------------------------------------------- report


def summarise(rows: list[dict[str, Any]], cost_ms: list[float]) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["kind"] != "control":
            groups.setdefault(f"{r['kind']} ({r['source']})", []).append(r)
    summary: dict[str, Any] = {"kinds": {}}
    for name, rs in groups.items():
        lat = [r["latency_s"] for r in rs if r.get("latency_s") is not None and r.get("detected")]
        margins = [r["margin_s"] for r in rs if r.get("margin_s") is not None]
        summary["kinds"][name] = {
            "events": len(rs),
            "detected": sum(bool(r.get("detected")) for r in rs),
            "latency_median_s": round(statistics.median(lat), 3) if lat else None,
            "latency_max_s": round(max(lat), 3) if lat else None,
            "margin_min_s": round(min(margins), 3) if margins else None,
            "false_alarms": sum(len(r["false_alarms"]) for r in rs),
        }
    controls = [r for r in rows if r["kind"] == "control"]
    events = [r for r in rows if r["kind"] != "control"]
    c_fa, c_min = sum(len(r["false_alarms"]) for r in controls), sum(r["outside_s"] for r in controls) / 60
    e_fa, e_min = sum(len(r["false_alarms"]) for r in events), sum(r["outside_s"] for r in events) / 60
    summary["controls"] = {"false_alarms": c_fa, "minutes": round(c_min, 2),
                           "per_minute": round(c_fa / c_min, 3) if c_min else None}  # fmt: skip
    summary["event_sequences"] = {"false_alarms": e_fa, "minutes_outside_windows": round(e_min, 2),
                                  "per_minute": round(e_fa / e_min, 3) if e_min else None}  # fmt: skip
    summary["overall_per_minute"] = round((c_fa + e_fa) / (c_min + e_min), 3) if c_min + e_min else None
    drifts = [r for r in events if r["kind"].startswith("drift")]
    summary["drifts_warned_before_edge"] = f"{sum(bool(r.get('detected')) for r in drifts)}/{len(drifts)}"
    summary["monitor_ms_per_frame"] = {"median": round(statistics.median(cost_ms), 3),
                                       "p99": round(float(np.percentile(cost_ms, 99)), 3)}  # fmt: skip
    return summary


def print_report(rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    print(
        f"{'sequence':44} {'truth':>6} {'warned':>7} {'latency':>8} {'margin':>7}  false alarms; also heard"
    )
    for r in rows:
        truth = f"{r['truth_s']:.2f}" if r["truth_s"] is not None else "-"
        late = r.get("margin_s") is not None and r["margin_s"] <= 0
        det = "-" if r["kind"] == "control" else ("yes" if r.get("detected") else "LATE" if late else "NO")
        lat = f"{r['latency_s']:.2f}" if r.get("latency_s") is not None else "-"
        mar = f"{r['margin_s']:.2f}" if r.get("margin_s") is not None else "-"
        fa = ", ".join(f"{k}@{t}" for t, k, _ in r["false_alarms"]) or "0"
        also = f"; {', '.join(r['also_heard'])}" if r["also_heard"] else ""
        print(f"{r['name']:44} {truth:>6} {det:>7} {lat:>8} {mar:>7}  {fa}{also}")
    print()
    print(
        f"{'event kind':24} {'detected':>9} {'rate':>6} {'latency med':>11} {'max':>6} {'margin min':>10} FA"
    )
    for name, k in summary["kinds"].items():
        rate = k["detected"] / k["events"]
        med = "-" if k["latency_median_s"] is None else f"{k['latency_median_s']:.2f}"
        mx = "-" if k["latency_max_s"] is None else f"{k['latency_max_s']:.2f}"
        mm = "-" if k["margin_min_s"] is None else f"{k['margin_min_s']:.2f}"
        det = f"{k['detected']}/{k['events']}"
        print(f"{name:24} {det:>9} {rate:>6.0%} {med:>11} {mx:>6} {mm:>10} {k['false_alarms']:>3}")
    c, e = summary["controls"], summary["event_sequences"]
    print()
    print(f"false alarms, controls: {c['false_alarms']} in {c['minutes']} min = {c['per_minute']}/min")
    outside = f"{e['false_alarms']} in {e['minutes_outside_windows']} min = {e['per_minute']}/min"
    print(f"false alarms, event sequences outside their windows: {outside}")
    print(f"false alarms overall: {summary['overall_per_minute']}/min")
    print(f"drifts warned before the edge: {summary['drifts_warned_before_edge']}")
    m = summary["monitor_ms_per_frame"]
    print(f"monitor cost per frame: median {m['median']} ms, p99 {m['p99']} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fps", type=float, default=15.0, help="analysis rate (the camera page sends 15)")
    ap.add_argument(
        "--jobs", type=int, default=2, help="worker processes (at most 2: the machine has 2 cores)"
    )
    ap.add_argument("--only", default="", help="run the sequences whose name contains this")
    ap.add_argument("--json", help="also write rows and summary here")
    ap.add_argument("--dump", default="", help="save each sequence's poses here (npz) to replay the monitor")
    ap.add_argument("--replay", default="", help="rerun only the monitor on poses saved by --dump")
    tilt = ap.add_mutually_exclusive_group()
    tilt.add_argument(
        "--no-tilt",
        action="store_true",
        help="no tilt at all (neither the phone's sensor nor the image's reading): a level phone",
    )
    tilt.add_argument(
        "--image-tilt",
        action="store_true",
        help="no tilt sensor: the tilt read from the frames while calibrating, as the product does",
    )
    ap.add_argument(
        "--config", default="{}", help="TreadmillConfig fields as JSON, e.g. '{\"lookahead_s\": 0.2}'"
    )
    args = ap.parse_args()
    missing = [n for n in SOURCES.values() if not (CLIPS / n).is_file()]
    if missing and not args.replay:
        print(f"real footage missing from {CLIPS}: {', '.join(missing)}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    cfg: dict[str, Any] = json.loads(args.config)
    todo = [s for s in scenarios() if args.only in s.name]
    if args.replay:  # poses saved by --dump: only the monitor runs again
        saved = json.loads((Path(args.replay) / "sources.json").read_text())
        srcs = {n: SourceInfo(**{**saved[n], "wh": tuple(saved[n]["wh"])}) for n in SOURCES}
        logs = [dict(np.load(Path(args.replay) / file_name(s))) for s in todo]
        if args.image_tilt and any("image_tilt" not in log for log in logs):
            print(f"{args.replay}: saved before the image's tilt readings; --dump again", file=sys.stderr)
            return 2
    else:
        with mp.get_context("spawn").Pool(max(1, min(args.jobs, 2))) as pool:
            srcs = dict(zip(SOURCES, pool.map(source_info, list(SOURCES)), strict=True))
            geos = [geometry(s, srcs[s.source], args.fps) for s in todo]
            jobs = [(s, srcs[s.source], g, args.fps) for s, g in zip(todo, geos, strict=True)]
            logs = pool.map(extract, jobs, chunksize=1)
        if args.dump:
            out = Path(args.dump)
            out.mkdir(parents=True, exist_ok=True)
            (out / "sources.json").write_text(json.dumps({n: asdict(src) for n, src in srcs.items()}))
            for s, log in zip(todo, logs, strict=True):
                np.savez(out / file_name(s), **log)
    rows, cost = [], []
    for s, log in zip(todo, logs, strict=True):
        src = srcs[s.source]
        rng = np.random.default_rng(len(rows))
        sensor = not (args.no_tilt or args.image_tilt)
        tilt = (lambda t, s=s, src=src, rng=rng: tilt_at(s, t, src, rng)) if sensor else None
        res = monitor_run(log, {**cfg, **s.config}, tilt, args.image_tilt)
        cost += res.pop("monitor_ms")
        rows.append(score(s, truth_time(s, src, geometry(s, src, args.fps), args.fps), res))
    summary = summarise(rows, cost)
    summary["wall_s"] = round(time.perf_counter() - start, 1)
    summary["fps"] = args.fps
    print_report(rows, summary)
    print(f"{len(rows)} sequences in {summary['wall_s']} s")
    if args.json:
        scen = [asdict(s) for s in todo]
        Path(args.json).write_text(
            json.dumps({"summary": summary, "rows": rows, "scenarios": scen}, indent=1)
        )
    return 0


def file_name(s: Scenario) -> str:
    return "".join(c if c.isalnum() else "_" for c in s.name) + ".npz"


if __name__ == "__main__":
    raise SystemExit(main())
