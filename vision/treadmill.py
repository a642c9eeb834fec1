"""Solo treadmill mode: learns the belt's safe zone from a short calibration, then turns the walker's pose
into zone warnings, stumble, step-off and blindness hazards, notices and workout figures. Pure computation
over `Pose` objects (numpy, OpenCV): no I/O, no clock, timestamps come from the caller.

Units. Lengths are in body heights (bh): the walker's stature in the image, measured at calibration from
segment lengths (shoulder-to-ankle = 0.78 of stature, Winter's anthropometric table), so thresholds hold
for any user size and camera distance; `TreadmillConfig.body_height_m` turns bh into metres.

Views. Calibration tells a side view (shoulders nearly on top of each other) from a front/back view.
- Side view: along the belt is the image's horizontal, measured directly (hip, plus the feet's reach past
  it). Sideways is depth, from two cues averaged: the body's size, d = D0 (S0/S - 1), with D0 the camera
  distance from an assumed phone focal length, and the feet's ground line (as in front/back view). The two
  agree closely with each other yet wander together by up to 0.06-0.08 bh (10-14 cm) on a real runner,
  as much as the room between the feet and the side of a 50 cm belt, so sideways in side view is warned
  only at or just past the side, and the walker is told so after calibrating (`NOTICE_SIDE_VIEW`).
- Front/back view: along the belt is depth, from two cues averaged: the hip width (bending, squatting or
  rolling the shoulders does not change it) and the feet's height in the image (the belt's ground line, for
  a level pinhole camera). Sideways is the image's horizontal, read from the feet themselves.

Which end is the back. "Back" is the end the belt surface runs to, where a walker who stalls is carried
(the rear end on a normally running belt); "front" is the other end, the console. It comes, in order of
trust, from `TreadmillConfig.console`; in side view from the belt itself (the foot in stance rides the belt,
so its image motion shows the belt's direction; learned during calibration or as soon as the walker steps);
failing both, from the assumption that a backward walker faces the back end. In front/back view "auto"
assumes the phone stands at the console end.

Backward walking. On a belt the body hardly moves over the ground, so walking is defined by steps (the feet
passing each other) and its direction by the belt: the walker walks backwards while their steps push the
belt towards the end they face, i.e. while they face the back end (nose ahead of the ears in side view;
shoulder order in front/back view). `walking_s` sums the intervals between consecutive steps less than
`walking_gap_s` apart; `backward_s` sums those taken facing the back end.

Zones. Each end and side has an edge, half the belt's length (width) from where the walker stood to
calibrate (moved out if the walker already reached further while calibrating: that spot is safe by
definition). A direction is warned when the walker's extent towards it is within a margin of the edge, or
will be within `lookahead_s` at the current velocity (least-squares fits: no lag on a steady drift); it is
left with hysteresis and after a minimum dwell. At the edge the tier rises; well past it for a moment the
walker has stepped off. Texts are as the walker feels them: the advice points away from the edge whichever
way they face.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal, TypeVar

import cv2
import numpy as np
import numpy.typing as npt

from vision.types import (
    L_ANKLE,
    L_EAR,
    L_HEEL,
    L_HIP,
    L_KNEE,
    L_SHOULDER,
    L_TOE,
    L_WRIST,
    NOSE,
    R_ANKLE,
    R_EAR,
    R_HEEL,
    R_HIP,
    R_KNEE,
    R_SHOULDER,
    R_TOE,
    R_WRIST,
    Hazard,
    Pose,
    Side,
    Tier,
)

View = Literal["side", "front_back"]
Console = Literal["auto", "image_left", "image_right", "near", "far"]
RearSource = Literal["config", "belt", "facing"]
Direction = Literal["back", "front", "left", "right"]
F64 = npt.NDArray[np.float64]

DIRECTIONS: tuple[Direction, ...] = ("back", "front", "left", "right")
ZONES = ("centre", "back", "front", "left", "right", "off", "unknown")
HAZARD_KINDS = (
    "edge_back",
    "edge_front",
    "edge_side",
    "stumble",
    "stepped_off",
    "walker_lost",
    "too_dark",
    "partial_view",
    "camera_moved",
)

NOTICE_CALIBRATE = "Stand still to calibrate"
NOTICE_LIMITS = "Walk slowly to the front and back ends of the belt"
NOTICE_DARK = "Too dark"
NOTICE_PARTIAL = "Move so your whole body is in view"
NOTICE_MOVED = "The phone moved: recalibrate"
NOTICE_LOST = "Walker not in view"
# Side view sees sideways only as depth, too coarse to warn before a foot reaches the side (see the docs).
NOTICE_SIDE_VIEW = (
    "Side view: drifting sideways is warned only at the belt's side. "
    "Put the phone in front or behind for earlier warnings"
)

FOOT_POINTS = (L_ANKLE, R_ANKLE, L_HEEL, R_HEEL, L_TOE, R_TOE)
# Shoulder to ankle is 0.818 - 0.039 = 0.78 of stature (Winter, Biomechanics of Human Movement, table 4.1).
SEGMENTS_SHARE_OF_STATURE = 0.78
# Front/back view: the torso's length varies by about 10% between frames (pose noise, hip-width scale).
FORESHORTENING_DEAD_ZONE = 0.10

T = TypeVar("T", int, float)


def _p(default: T, lo: T, hi: T, unit: str, doc: str) -> T:
    """A described, bounded config field."""
    out: T = field(default=default, metadata={"range": (lo, hi), "unit": unit, "doc": doc})
    return out


@dataclass(frozen=True)
class TreadmillConfig:
    """Every threshold of treadmill mode, with its unit and bounds (see `describe()`). bh: body heights."""

    # Calibration
    calibration_s: float = _p(
        3.0, 1.0, 15.0, "s", "good frames of the walker (standing or walking) to calibrate"
    )
    calibration_still_bh: float = _p(
        0.15, 0.05, 0.5, "bh", "calibration keeps the frames whose hips lie this near the newest's (across)"
    )
    limits_s: float = _p(0.0, 0.0, 30.0, "s", "optional phase after calibration: walk to the ends (0: off)")
    body_height_m: float = _p(1.75, 1.0, 2.2, "m", "the walker's height: the metric scale of body heights")
    belt_length_m: float = _p(1.40, 0.9, 2.2, "m", "belt length; the calibration spot is taken as its middle")
    belt_width_m: float = _p(0.50, 0.3, 1.0, "m", "belt width")
    console: Console = field(
        default="auto",
        metadata={
            "doc": "where the console (front end) is: image_left/right (side view), near/far (front/back)"
        },
    )
    focal_long_side: float = _p(
        0.75, 0.3, 3.0, "ratio", "focal length over the image's long side (26 mm eq.)"
    )
    view_side_ratio: float = _p(0.40, 0.15, 0.7, "ratio", "shoulder width / torso below this: side view")
    clearance_bh: float = _p(0.07, 0.0, 0.3, "bh", "ends: where the walker calibrated stays this far inside")
    side_clearance_bh: float = _p(
        0.02, 0.0, 0.3, "bh", "sides: where the walker calibrated stays this far in"
    )
    belt_evidence_bhps: float = _p(0.12, 0.02, 1.0, "bh/s", "median stance-foot speed that shows the belt")
    belt_evidence_share: float = _p(0.65, 0.5, 1.0, "share", "share of stance-foot motion that must agree")
    # Pose quality
    min_visibility: float = _p(0.5, 0.1, 0.95, "prob", "landmark visibility that counts as seen")
    border: float = _p(0.01, 0.0, 0.1, "share", "a landmark this close to the frame's edge is cut off")
    # Zones
    foot_reach_bh: float = _p(0.15, 0.0, 0.5, "bh", "feet ahead/behind the hip, where it cannot be measured")
    side_reach_bh: float = _p(0.07, 0.0, 0.3, "bh", "feet beside the hip, where it cannot be measured")
    reach_window_s: float = _p(3.0, 0.5, 20.0, "s", "window of the measured reach of the feet")
    reach_percentile: float = _p(90.0, 50.0, 100.0, "%", "percentile of the reach over that window")
    warn_margin_bh: float = _p(0.10, 0.0, 0.4, "bh", "warn this far inside the belt's ends")
    side_margin_bh: float = _p(0.05, 0.0, 0.3, "bh", "warn this far inside the belt's sides")
    side_view_sideways_margin_bh: float = _p(
        -0.03,
        -0.3,
        0.3,
        "bh",
        "side view, sideways (depth from size and feet): warn this far inside (<0: past)",
    )
    side_view_sideways_window_s: float = _p(2.0, 0.2, 4.0, "s", "side view, sideways: robust fit window")
    side_view_notice_s: float = _p(
        8.0, 0.0, 60.0, "s", "side view: after calibration, say this long that sideways is warned late"
    )
    hysteresis_bh: float = _p(0.04, 0.0, 0.2, "bh", "a warned direction clears only this far back inside")
    zone_min_s: float = _p(0.5, 0.0, 3.0, "s", "a warned direction stays warned at least this long")
    lookahead_s: float = _p(0.3, 0.0, 1.0, "s", "warn on the position predicted this far ahead")
    position_window_s: float = _p(
        0.2, 0.0, 1.0, "s", "least-squares window of the position (no lag on a ramp)"
    )
    velocity_window_s: float = _p(0.4, 0.1, 2.0, "s", "least-squares window of the velocity (a gait cycle)")
    velocity_deadband_bhps: float = _p(0.08, 0.0, 0.5, "bh/s", "slower than this is gait sway, not drift")
    scale_median_s: float = _p(0.15, 0.0, 1.0, "s", "median filter of the body's size (drops outliers)")
    depth_window_s: float = _p(0.6, 0.1, 2.0, "s", "front/back view, along the belt: robust fit window")
    foot_hold_s: float = _p(0.3, 0.0, 1.0, "s", "front/back view: the outermost foot is held this long")
    off_margin_bh: float = _p(0.10, 0.0, 0.5, "bh", "this far past an edge (or a later warning line): off")
    off_hold_s: float = _p(0.4, 0.0, 3.0, "s", "off the belt for this long: stepped off")
    # Blindness and bad input
    lost_grace_s: float = _p(0.5, 0.1, 2.0, "s", "walker out of view this long: stop cue")
    partial_hold_s: float = _p(0.5, 0.0, 5.0, "s", "body partly out of view this long: notice")
    dark_luma: float = _p(40.0, 0.0, 128.0, "0-255", "mean frame luma below this is too dark")
    dark_hysteresis: float = _p(10.0, 0.0, 60.0, "0-255", "too dark clears this much above the threshold")
    moved_ground_bh: float = _p(0.15, 0.03, 1.0, "bh", "the feet's ground line moved this much unexplained")
    moved_tilt_deg: float = _p(12.0, 2.0, 45.0, "deg", "front/back view: body axis rolled this much")
    moved_hold_s: float = _p(1.0, 0.2, 5.0, "s", "for this long: the phone moved")
    # A phone on a stand holds its tilt to a tenth of a degree; a knock turns it by degrees at once.
    moved_pitch_deg: float = _p(3.0, 0.5, 30.0, "deg", "the phone's tilt sensor: this far from calibration")
    moved_pitch_hold_s: float = _p(0.3, 0.0, 3.0, "s", "...for this long: the phone moved")
    # Stumble
    derivative_s: float = _p(0.2, 0.03, 0.5, "s", "span of the speeds below (at least one frame)")
    stumble_trunk_speed_dps: float = _p(
        80.0, 20.0, 1000.0, "deg/s", "trunk turning at least this fast (running: < 50)"
    )
    stumble_trunk_change_deg: float = _p(15.0, 3.0, 90.0, "deg", "...and this far from its recent median")
    stumble_hip_drop_bhps: float = _p(0.25, 0.05, 5.0, "bh/s", "hip dropping at least this fast (0.45 m/s)")
    stumble_wrist_speed_bhps: float = _p(1.2, 0.3, 20.0, "bh/s", "a wrist thrown out this fast...")
    stumble_wrist_reach: float = _p(1.1, 0.3, 3.0, "torso", "...ending this far from the hip")
    stumble_collapse_bhps: float = _p(0.6, 0.2, 5.0, "bh/s", "hip falling this fast with one knee: collapse")
    stumble_knee_speed_dps: float = _p(250.0, 50.0, 3000.0, "deg/s", "one knee collapsing this fast")
    stumble_window_s: float = _p(0.3, 0.05, 1.0, "s", "signs of a stumble must come within this window")
    stumble_hold_s: float = _p(1.0, 0.1, 5.0, "s", "a stumble is reported for this long")
    # Steps and figures
    step_threshold_bh: float = _p(0.05, 0.005, 0.3, "bh", "side view: feet this far apart along the belt")
    step_threshold_front_bh: float = _p(0.02, 0.005, 0.3, "bh", "front/back view: feet this far apart in y")
    step_confirm_s: float = _p(0.05, 0.0, 0.3, "s", "the feet's new order must hold this long")
    step_refractory_s: float = _p(0.2, 0.05, 1.0, "s", "no two steps closer than this (300 steps/min)")
    cadence_window_s: float = _p(6.0, 2.0, 60.0, "s", "cadence over the steps of this window")
    walking_gap_s: float = _p(1.2, 0.3, 5.0, "s", "steps further apart than this are not walking")

    def __post_init__(self) -> None:
        for f in fields(self):
            bounds = f.metadata.get("range")
            value = getattr(self, f.name)
            if bounds is not None and not bounds[0] <= value <= bounds[1]:
                raise ValueError(
                    f"{f.name}: expected {bounds[0]}..{bounds[1]} {f.metadata['unit']}, got {value}"
                )
        if self.console not in ("auto", "image_left", "image_right", "near", "far"):
            raise ValueError(f"console: expected auto/image_left/image_right/near/far, got {self.console!r}")

    @classmethod
    def describe(cls) -> dict[str, dict[str, Any]]:
        """Default, unit, bounds and meaning of every field: for settings pages, flags and docs."""
        out = {}
        for f in fields(cls):
            meta = dict(f.metadata)
            out[f.name] = {"default": f.default, **meta}
        return out


@dataclass(frozen=True)
class Calibration:
    """What calibration learned. Pixel values are in the analysed frame (`frame_wh`); unit vectors are in
    pixel space. `*_end_bh`: from the neutral position to the belt's end (or side) in that direction, in
    body heights; `*_warn_bh`: where warnings start, measured the same way."""

    frame_wh: tuple[int, int]
    view: View
    up_xy: tuple[float, float]  # the body's up in the image (unit vector)
    belt_xy: tuple[float, float]  # perpendicular to up, pointing to the image's right
    tilt_deg: float  # angle of up from the image's vertical, positive clockwise
    neutral_xy_px: tuple[float, float]  # side view: the hip centre; front/back: the feet's midpoint
    body_height_px: float
    scale_px: float  # the view's size measure: torso + leg (side view), hip width (front/back view)
    torso_px: float
    camera_distance_bh: float  # from the assumed focal length; turns size changes into depth
    # Where the belt meets the feet: the median lowest foot point, projected on the down direction.
    ground_px: float
    facing_sign: int  # side: +1 faces along +belt_xy; front/back: +1 faces the camera
    # Side view: +1 when the walker's left is towards the camera; front/back: +1 when it is along +belt_xy.
    left_sign: int
    rear_sign: int  # side: +1 when the back end is along +belt_xy; front/back: +1 when the back end is far
    rear_source: RearSource
    back_end_bh: float
    front_end_bh: float
    left_end_bh: float
    right_end_bh: float
    back_warn_bh: float  # warnings start when the walker's extent reaches this (<= the end, or past it)
    front_warn_bh: float
    left_warn_bh: float
    right_warn_bh: float
    brightness: float | None = None
    # The phone's camera elevation while calibrating (degrees up; None without one): the phone on its stand
    # does not move, so a change of its tilt sensor's reading is the phone knocked or moved. From the sensor,
    # or, for a phone that sends none, read from the room's vertical edges (`image`, vision/tilt.py: at an
    # assumed focal length, so never compared with a sensor's reading). A calibration saved before the
    # source was kept has none: its tilt came from the sensor.
    phone_pitch_deg: float | None = None
    phone_pitch_source: Literal["sensor", "image"] | None = None

    def __post_init__(self) -> None:
        if self.view not in ("side", "front_back"):
            raise ValueError(f"view: expected 'side' or 'front_back', got {self.view!r}")
        if self.rear_source not in ("config", "belt", "facing"):
            raise ValueError(f"rear_source: expected config/belt/facing, got {self.rear_source!r}")
        if not (self.body_height_px > 0 and self.scale_px > 0 and self.camera_distance_bh > 0):
            raise ValueError("body_height_px, scale_px and camera_distance_bh must be positive")
        if {self.facing_sign, self.left_sign, self.rear_sign} - {1, -1}:
            raise ValueError("facing_sign, left_sign and rear_sign must be +1 or -1")
        if self.phone_pitch_source not in (None, "sensor", "image"):
            raise ValueError(f"phone_pitch_source: expected sensor or image, got {self.phone_pitch_source!r}")

    def end(self, d: Direction) -> float:
        return float(getattr(self, f"{d}_end_bh"))

    def warn(self, d: Direction) -> float:
        return float(getattr(self, f"{d}_warn_bh"))

    @property
    def focal_px(self) -> float:
        """The assumed focal length in the analysed frame's pixels (`camera_distance_bh` is it over the
        body's height)."""
        return self.camera_distance_bh * self.body_height_px

    def below_horizon(self, down_px: float) -> float | None:
        """How far a point lies below the horizon (px, along the body's down axis; `down_px` is its position
        projected on that axis) in the frame of a level camera at the phone's place. Without the phone's tilt
        the phone is taken as level: the horizon is the image's centre. With it, the point's angle below the
        optical axis is turned by the phone's elevation: a phone looking up by e sees the belt e further down
        its frame than a level one would, and the ground line's rows stretch (the side clip's phone looks up
        by 12 deg: its feet 540 px below the centre lie 300 px below the horizon, and a step sideways moves
        them a third less than a level phone's). None for a point more than 80 deg from the horizontal."""
        down = -np.array(self.up_xy)
        offset = float(down_px) - float(np.dot(np.array(self.frame_wh, np.float64) / 2, down))
        if self.phone_pitch_deg is None:
            return offset
        angle = math.atan2(offset, self.focal_px) - math.radians(self.phone_pitch_deg)
        return self.focal_px * math.tan(angle) if abs(angle) <= math.radians(80.0) else None

    def faces_back(self) -> bool:
        """Does the walker, as calibrated, face the back end (walk backwards on a normal belt)?"""
        return self.faces_back_with(self.facing_sign)

    def faces_back_with(self, facing_sign: int) -> bool:
        if self.view == "side":
            return facing_sign == self.rear_sign
        return (facing_sign > 0) == (self.rear_sign < 0)  # faces the camera and the back end is near

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        """Inverse of `to_dict` (a saved calibration, e.g. for a replay); tuples come back from JSON lists."""
        kwargs = dict(data)
        for name in ("frame_wh", "up_xy", "belt_xy", "neutral_xy_px"):
            kwargs[name] = tuple(kwargs[name])
        return cls(**kwargs)


@dataclass(frozen=True)
class TreadmillState:
    """What the monitor made of one frame."""

    calibrating: bool
    calibration: Calibration | None
    zone: str  # one of ZONES
    hazards: tuple[Hazard, ...]
    figures: dict[str, float | int]
    notice: str | None


def mean_luma(bgr: npt.NDArray[np.uint8]) -> float:
    """Mean brightness (0-255) of a BGR frame, on a 64 px-wide thumbnail: about 0.1 ms a frame."""
    h, w = bgr.shape[:2]
    small = cv2.resize(bgr, (64, max(1, round(64 * h / max(w, 1)))), interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    return float(grey.mean())


# ---------------------------------------------------------------------------------------------- helpers


class _Series:
    """Timestamped scalars over a bounded window."""

    def __init__(self, keep_s: float) -> None:
        self.keep_s = keep_s
        self.t: deque[float] = deque()
        self.v: deque[float] = deque()

    def add(self, t: float, v: float) -> None:
        self.t.append(t)
        self.v.append(v)
        while self.t and self.t[0] < t - self.keep_s:
            self.t.popleft()
            self.v.popleft()

    def since(self, t0: float) -> F64:
        return np.array([v for t, v in zip(self.t, self.v, strict=True) if t >= t0 - 1e-9], np.float64)

    def fit(self, t_now: float, span_s: float) -> tuple[float, float] | None:
        """Least-squares line over the last `span_s`: (value at `t_now`, slope per second). Unbiased on a
        ramp, so smoothing costs no lag for a walker drifting at constant speed."""
        pts = [(t, v) for t, v in zip(self.t, self.v, strict=True) if t >= t_now - span_s - 1e-9]
        if not pts:
            return None
        arr = np.array(pts, np.float64)
        ts, vs = arr[:, 0] - t_now, arr[:, 1]
        if len(arr) < 3:
            return float(vs[-1]), 0.0
        tm, vm = ts.mean(), vs.mean()
        var = float(((ts - tm) ** 2).sum())
        slope = float(((ts - tm) * (vs - vm)).sum() / var) if var > 1e-12 else 0.0
        return float(vm - slope * tm), slope

    def robust_fit(self, t_now: float, span_s: float) -> tuple[float, float] | None:
        """Theil-Sen line over the last `span_s` (median of pairwise slopes): like `fit`, but a few frames of
        a bad size estimate do not move it."""
        pts = [(t, v) for t, v in zip(self.t, self.v, strict=True) if t >= t_now - span_s - 1e-9]
        if not pts:
            return None
        arr = np.array(pts, np.float64)
        ts, vs = arr[:, 0] - t_now, arr[:, 1]
        if len(arr) < 3:
            return float(np.median(vs)), 0.0
        i, j = np.triu_indices(len(ts), k=1)
        dt = ts[j] - ts[i]
        ok = dt > 1e-6
        slope = float(np.median((vs[j] - vs[i])[ok] / dt[ok])) if ok.any() else 0.0
        return float(np.median(vs - slope * ts)), slope


def _unit(v: F64) -> F64:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 else np.array([0.0, -1.0])


def _angle_deg(v: F64, up: F64) -> float:
    """Signed angle from `up` to `v`, degrees, positive clockwise in image coordinates (y down)."""
    cross = float(up[0] * v[1] - up[1] * v[0])
    return math.degrees(math.atan2(cross, float(np.dot(up, v))))


def _knee_angle(p: F64, hip: int, knee: int, ankle: int) -> float:
    a, b = p[hip] - p[knee], p[ankle] - p[knee]
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    if denom < 1e-9:
        return 180.0
    return math.degrees(math.acos(max(-1.0, min(1.0, float(np.dot(a, b)) / denom))))


@dataclass(frozen=True)
class _Frame:
    """One pose in pixels, with the measures everything else uses."""

    t: float
    p: F64  # (33, 2) px
    vis: F64  # (33,)
    hip: F64  # (2,) px
    shoulder: F64
    torso: float
    leg: float  # thigh + shank of the better seen side, px
    hip_width: float  # px
    full: bool  # every body part seen and inside the frame
    brightness: float | None
    pitch: float | None = None  # the phone's camera elevation with this frame, from its tilt sensor
    image_tilt: float | None = None  # ...or, without the sensor, as read from the image


def _measure(
    pose: Pose,
    t: float,
    frame_wh: tuple[int, int],
    cfg: TreadmillConfig,
    bright: float | None,
    pitch: float | None = None,
    image_tilt: float | None = None,
) -> _Frame:
    w, h = frame_wh
    p = pose.xy.astype(np.float64) * np.array([w, h], np.float64)
    vis = pose.visibility.astype(np.float64)
    hip = (p[L_HIP] + p[R_HIP]) / 2
    shoulder = (p[L_SHOULDER] + p[R_SHOULDER]) / 2
    torso = float(np.linalg.norm(shoulder - hip))
    side_l = vis[[L_HIP, L_KNEE, L_ANKLE]].sum() >= vis[[R_HIP, R_KNEE, R_ANKLE]].sum()
    a, b, c = (L_HIP, L_KNEE, L_ANKLE) if side_l else (R_HIP, R_KNEE, R_ANKLE)
    leg = float(np.linalg.norm(p[a] - p[b]) + np.linalg.norm(p[b] - p[c]))
    hip_width = float(np.linalg.norm(p[L_HIP] - p[R_HIP]))
    xy = pose.xy
    inside = (xy[:, 0] >= cfg.border) & (xy[:, 0] <= 1 - cfg.border) & (xy[:, 1] >= cfg.border)
    inside &= xy[:, 1] <= 1 - cfg.border
    seen = (pose.visibility >= cfg.min_visibility) & inside
    groups = ((NOSE, L_EAR, R_EAR), (L_SHOULDER, R_SHOULDER), (L_HIP, R_HIP), (L_KNEE, R_KNEE), FOOT_POINTS)
    full = all(bool(seen[list(g)].any()) for g in groups)
    return _Frame(t, p, vis, hip, shoulder, torso, leg, hip_width, full, bright, pitch, image_tilt)


def _held_since(since: float | None, holds: bool, t: float) -> float | None:
    """When a condition that holds at `t` began to hold (`since`, or `t` if it starts now); None while it
    does not hold."""
    return (t if since is None else since) if holds else None


def _usable(pose: Pose | None, cfg: TreadmillConfig) -> bool:
    """A pose worth measuring: trunk seen and at least 8 landmarks (as the walker selection asks)."""
    if pose is None:
        return False
    trunk = pose.visibility[[L_SHOULDER, R_SHOULDER, L_HIP, R_HIP]]
    return int(pose.visible(cfg.min_visibility).sum()) >= 8 and bool((trunk >= 0.3).all())


# ---------------------------------------------------------------------------------------------- calibration


def _facing_raw(f: _Frame, view: View, belt: F64) -> float:
    """Side: nose ahead of the ears along `belt` (px, + faces +belt). Front/back: the person's left shoulder
    on +belt means a frontal body (px, + faces the camera). MediaPipe labels back views correctly."""
    if view == "side":
        ears = [i for i in (L_EAR, R_EAR) if f.vis[i] >= 0.3] or [L_EAR, R_EAR]
        return float(np.dot(f.p[NOSE] - f.p[ears].mean(axis=0), belt))
    return float(np.dot(f.p[L_SHOULDER] - f.p[R_SHOULDER], belt))


def _lowest_foot(f: _Frame, down: F64) -> float:
    return float(max(np.dot(f.p[i], down) for i in FOOT_POINTS))


def _stance_velocity(prev: _Frame, cur: _Frame, down: F64, belt: F64, body_px: float) -> float | None:
    """Velocity along `belt` (bh/s) of the foot in stance: the lower of two clearly separated feet. On a belt
    it rides the belt, so its direction is the belt's (towards the back end)."""
    dt = cur.t - prev.t
    if dt <= 0 or dt > 0.25:
        return None
    heights = [float(np.dot(cur.p[i], down)) for i in (L_ANKLE, R_ANKLE)]
    if abs(heights[0] - heights[1]) < 0.02 * body_px:
        return None
    k = (L_ANKLE, R_ANKLE)[int(np.argmax(heights))]
    return float(np.dot(cur.p[k] - prev.p[k], belt)) / body_px / dt


def _belt_sign(velocities: Iterable[float], cfg: TreadmillConfig) -> int:
    v = np.array([x for x in velocities if abs(x) > 0.05], np.float64)
    if len(v) < 10:
        return 0
    med = float(np.median(v))
    share = float(np.mean(np.sign(v) == np.sign(med)))
    if abs(med) >= cfg.belt_evidence_bhps and share >= cfg.belt_evidence_share:
        return 1 if med > 0 else -1
    return 0


def _calibrate(
    frames: list[_Frame], stance_v: list[float], frame_wh: tuple[int, int], cfg: TreadmillConfig
) -> tuple[Calibration, dict[Direction, float]]:
    """The calibration, and how far the walker reached towards each direction while calibrating (bh)."""
    p = np.stack([f.p for f in frames])
    ankles = (p[:, L_ANKLE] + p[:, R_ANKLE]) / 2
    shoulders = (p[:, L_SHOULDER] + p[:, R_SHOULDER]) / 2
    torso = np.array([f.torso for f in frames])
    ratio = float(
        np.median(np.array([np.linalg.norm(f.p[L_SHOULDER] - f.p[R_SHOULDER]) for f in frames]) / torso)
    )
    view: View = "side" if ratio < cfg.view_side_ratio else "front_back"
    # Front/back view: the body's axis is up (a walker leans towards the camera, unseen). Side view: the
    # walker leans along the belt, in the image plane, so the phone is taken as upright.
    up = _unit(np.median(shoulders - ankles, axis=0)) if view == "front_back" else np.array([0.0, -1.0])
    belt = np.array([-up[1], up[0]])  # up turned a quarter clockwise: the image's right when upright
    if belt[0] < 0:
        belt = -belt
    down = -up

    def seg(a: int, b: int) -> F64:
        out: F64 = np.linalg.norm(p[:, a] - p[:, b], axis=1)
        return out

    # Segments shorten when they swing out of the image plane, so a high percentile is the length.
    thigh = np.maximum(seg(L_HIP, L_KNEE), seg(R_HIP, R_KNEE))
    shank = np.maximum(seg(L_KNEE, L_ANKLE), seg(R_KNEE, R_ANKLE))
    segments = float(np.percentile(torso, 90) + np.percentile(thigh, 90) + np.percentile(shank, 90))
    body_px = segments / SEGMENTS_SHARE_OF_STATURE
    scale = float(np.median([_size(f, view) for f in frames]))
    focal_px = cfg.focal_long_side * max(frame_wh)
    # The neutral position: the hip in side view; in front/back view the line the feet straddle, since the
    # hips move over planted feet when the walker sways, bends or squats.
    if view == "side":
        hip0 = np.median(np.stack([f.hip for f in frames]), axis=0)
    else:
        hip0 = np.median(np.stack([f.p[list(FOOT_POINTS)].mean(axis=0) for f in frames]), axis=0)

    facing_raw = np.median([_facing_raw(f, view, belt) for f in frames])
    facing = 1 if facing_raw >= 0 else -1
    # Side view: facing the image's left, a walker shows the camera their left side. Front/back view: the
    # person's left shoulder on the image's right is a frontal body, so facing and left share a sign.
    left_sign = -facing if view == "side" else facing

    source: RearSource
    if cfg.console != "auto" and (cfg.console in ("image_left", "image_right")) == (view == "side"):
        source = "config"
        rear = {"image_left": 1, "image_right": -1, "near": 1, "far": -1}[cfg.console]
    elif view == "side" and (belt_sign := _belt_sign(stance_v, cfg)) != 0:
        source, rear = "belt", belt_sign
    elif view == "side":
        source, rear = "facing", facing  # a backward walker faces the back end
    else:
        source, rear = "config", 1  # "auto" in front/back view: the phone stands at the console end

    brightness = [f.brightness for f in frames if f.brightness is not None]
    # The phone's tilt: its sensor's readings, else the image's (a phone that sends none)
    tilts = [f.pitch for f in frames if f.pitch is not None]
    source_of_tilt: Literal["sensor", "image"] = "sensor"
    if not tilts:
        tilts, source_of_tilt = [f.image_tilt for f in frames if f.image_tilt is not None], "image"
    cal = Calibration(
        frame_wh=frame_wh,
        view=view,
        up_xy=(float(up[0]), float(up[1])),
        belt_xy=(float(belt[0]), float(belt[1])),
        tilt_deg=_angle_deg(up, np.array([0.0, -1.0])),
        neutral_xy_px=(float(hip0[0]), float(hip0[1])),
        body_height_px=body_px,
        scale_px=scale,
        torso_px=float(np.percentile(torso, 90)),
        camera_distance_bh=focal_px / body_px,
        ground_px=float(np.median([_lowest_foot(f, down) for f in frames])),
        facing_sign=facing,
        left_sign=left_sign,
        rear_sign=rear,
        rear_source=source,
        back_end_bh=cfg.belt_length_m / 2 / cfg.body_height_m,
        front_end_bh=cfg.belt_length_m / 2 / cfg.body_height_m,
        left_end_bh=cfg.belt_width_m / 2 / cfg.body_height_m,
        right_end_bh=cfg.belt_width_m / 2 / cfg.body_height_m,
        back_warn_bh=0.0,
        front_warn_bh=0.0,
        left_warn_bh=0.0,
        right_warn_bh=0.0,
        brightness=float(np.median(brightness)) if brightness else None,
        phone_pitch_deg=float(np.median(tilts)) if tilts else None,
        phone_pitch_source=source_of_tilt if tilts else None,
    )
    tracker = _Extents(cfg)
    extents: dict[Direction, list[float]] = {d: [] for d in DIRECTIONS}
    for f in frames:
        tracker.add(f, cal, scale)
        for d, ext in tracker.current(f.t, cal)[0].items():
            extents[d].append(ext)
    seen = {d: max(extents[d]) for d in DIRECTIONS}  # the furthest the walker went while calibrating
    return _with_edges(cal, {d: cal.end(d) for d in DIRECTIONS}, seen, cfg), seen


def _with_edges(
    cal: Calibration, ends: dict[Direction, float], seen: dict[Direction, float], cfg: TreadmillConfig
) -> Calibration:
    """Edges and warning lines. Where the walker stood (and moved) to calibrate is safe by definition: an
    end is moved out to hold it with `clearance_bh` to spare, and the warning line, `margin` inside the end,
    gives way to it (but never past the end): a walker with a wide stance is warned later, not all along."""
    margins = _margins(cfg, cal.view)
    end: dict[Direction, float] = {}
    warn: dict[Direction, float] = {}
    for d in DIRECTIONS:
        safe = seen[d] + (cfg.clearance_bh if d in ("back", "front") else cfg.side_clearance_bh)
        end[d] = max(ends[d], safe)
        warn[d] = max(end[d] - margins[d], min(safe, end[d]))
    return replace(
        cal,
        back_end_bh=end["back"],
        front_end_bh=end["front"],
        left_end_bh=end["left"],
        right_end_bh=end["right"],
        back_warn_bh=warn["back"],
        front_warn_bh=warn["front"],
        left_warn_bh=warn["left"],
        right_warn_bh=warn["right"],
    )


def _margins(cfg: TreadmillConfig, view: View) -> dict[Direction, float]:
    along, across = cfg.warn_margin_bh, cfg.side_margin_bh
    if view == "side":
        across = cfg.side_view_sideways_margin_bh  # depth from size at metres: too noisy for an inner margin
    return {"back": along, "front": along, "left": across, "right": across}


def _ground_depth(f: _Frame, cal: Calibration) -> float | None:
    """Depth (bh, + away) of the walker's feet from where the belt meets them in the image. For a level
    pinhole camera above the belt, the ground's distance below the horizon is inversely proportional to the
    distance: D = D0 g0 / g. The horizon is the image's centre unless the phone's tilt is known
    (`Calibration.below_horizon`; without it, a phone looking down overstates the change and one looking up
    understates it); feet at or above the horizon carry no depth."""
    g0, g = cal.below_horizon(cal.ground_px), cal.below_horizon(_lowest_foot(f, -np.array(cal.up_xy)))
    floor = 0.05 * max(cal.frame_wh)
    if g0 is None or g is None or g0 < floor or g < floor:
        return None
    return cal.camera_distance_bh * (g0 / g - 1.0)


def _size(f: _Frame, view: View) -> float:
    """The body's size in the image, px: torso + leg in side view (segments in the image plane), hip width in
    front/back view (a width does not change when the walker bends, squats or rolls the shoulders)."""
    return f.torso + f.leg if view == "side" else f.hip_width


def body_size_px(
    pose: Pose, frame_wh: tuple[int, int], view: View, config: TreadmillConfig | None = None
) -> float:
    """The body's size in the image as the monitor measures it in `view` (px; `_size`), for tools that
    compare it with other measures."""
    return _size(_measure(pose, 0.0, frame_wh, config or TreadmillConfig(), None), view)


class _Extents:
    """How far the walker reaches towards each end and side (bh from the neutral hip; at the belt's end when
    it equals `*_end_bh`), and how fast that changes (bh/s towards it).

    Side view: along the belt, the hip (least-squares, no lag on a ramp) plus the reach of the feet past it
    (a high percentile over a few seconds: the stride); sideways, depth (the body's size and the feet's ground
    line averaged; a robust line over a couple of seconds, its slope the look-ahead) plus a fixed reach.
    Front/back view: along the belt, depth from the hip width plus a fixed reach; sideways, the outermost
    foot itself, held briefly over a swing, so a walker swaying or squatting over planted feet
    does not move."""

    def __init__(self, cfg: TreadmillConfig) -> None:
        self.cfg = cfg
        keep = max(
            cfg.velocity_window_s, cfg.depth_window_s, cfg.side_view_sideways_window_s, cfg.foot_hold_s
        )
        keep += 0.5
        self.s, self.lat = _Series(keep), _Series(keep)
        self.reach: dict[Direction, _Series] = {d: _Series(cfg.reach_window_s) for d in ("back", "front")}
        self.feet: dict[Direction, _Series] = {d: _Series(keep) for d in ("left", "right")}

    def add(self, f: _Frame, cal: Calibration, size: float) -> None:
        belt = np.array(cal.belt_xy)
        hip0 = np.array(cal.neutral_xy_px)
        ratio = cal.scale_px / max(size, 1e-6)
        depth = cal.camera_distance_bh * (ratio - 1.0)  # + away from the camera
        feet = [i for i in FOOT_POINTS if f.vis[i] >= 0.2] or list(FOOT_POINTS)
        body = cal.body_height_px
        if cal.view == "side":
            self.s.add(f.t, float((f.hip - hip0) @ belt) * cal.rear_sign / body)
            ground = _ground_depth(f, cal)
            if ground is not None:  # the feet's ground line: a second depth cue, as in front/back view
                depth = 0.5 * (depth + ground)
            self.lat.add(f.t, -depth * cal.left_sign)
            along = (f.p[feet] - f.hip) @ belt * cal.rear_sign / body
            self.reach["back"].add(f.t, float(along.max()))
            self.reach["front"].add(f.t, float(-along.min()))
        else:
            ground = _ground_depth(f, cal)
            if ground is not None:  # two independent cues: their mean halves the noise of either
                depth = 0.5 * (depth + ground)
            self.s.add(f.t, depth * cal.rear_sign)
            across = (f.p[feet] - hip0) @ belt * cal.left_sign * ratio / body
            self.lat.add(f.t, float(across.mean()))
            self.feet["left"].add(f.t, float(across.max()))
            self.feet["right"].add(f.t, float(-across.min()))

    def current(self, t: float, cal: Calibration) -> tuple[dict[Direction, float], dict[Direction, float]]:
        """(extent, velocity) towards each direction at time `t`."""
        cfg = self.cfg

        def fit(series: _Series, pos_s: float, vel_s: float) -> tuple[float, float]:
            p, v = series.fit(t, pos_s), series.fit(t, vel_s)
            return (p[0] if p else 0.0), (v[1] if v else 0.0)

        def depth_fit(series: _Series, span_s: float) -> tuple[float, float]:
            out = series.robust_fit(t, span_s)
            return out if out else (0.0, 0.0)

        ext: dict[Direction, float] = {}
        if cal.view == "side":
            s, vs = fit(self.s, cfg.position_window_s, cfg.velocity_window_s)
            lat, vlat = depth_fit(self.lat, cfg.side_view_sideways_window_s)
            ends: tuple[Direction, ...] = ("back", "front")
            for d in ends:
                vals = self.reach[d].since(-math.inf)
                reach = (
                    float(np.percentile(vals, cfg.reach_percentile)) if len(vals) >= 3 else cfg.foot_reach_bh
                )
                ext[d] = (s if d == "back" else -s) + max(reach, 0.0)
            ext["left"], ext["right"] = lat + cfg.side_reach_bh, -lat + cfg.side_reach_bh
        else:
            s, vs = depth_fit(self.s, cfg.depth_window_s)
            ext["back"], ext["front"] = s + cfg.foot_reach_bh, -s + cfg.foot_reach_bh
            sides: tuple[Direction, ...] = ("left", "right")
            for d in sides:
                held = self.feet[d].since(t - cfg.foot_hold_s)
                ext[d] = float(held.max()) if len(held) else 0.0
            _, vlat = fit(self.lat, cfg.position_window_s, cfg.velocity_window_s)
        vel: dict[Direction, float] = {"back": vs, "front": -vs, "left": vlat, "right": -vlat}
        return ext, vel


# ---------------------------------------------------------------------------------------------- body state


class _Stumble:
    """A stumble: the trunk turns fast away from its recent orientation, together with (within a short
    window) the hip dropping fast, an arm thrown out, or one knee collapsing. A deliberate bend or squat turns
    the trunk slowly and bends both knees together, so it does not qualify; a straight collapse (the hip
    falling faster than running ever bounces it, with one knee buckling) does even without the trunk."""

    def __init__(self, cfg: TreadmillConfig) -> None:
        self.cfg = cfg
        self.hist: deque[tuple[float, F64, float, F64, F64]] = deque()  # t, trunk, hip height, wrists, knees
        self.last: dict[str, float] = {}
        self.change_prev = False
        self.until = -math.inf

    def update(self, f: _Frame, cal: Calibration, scale_ratio: float) -> bool:
        cfg = self.cfg
        up = np.array(cal.up_xy)
        body = cal.body_height_px
        roll = _angle_deg(f.shoulder - f.hip, up)
        if cal.view == "side":
            trunk = np.array([roll, 0.0])
        else:  # leaning towards or away from the camera shortens the torso
            # arccos is steep near 1: a few percent of pose noise would read as 15 degrees. Only a torso
            # shortened beyond that noise (by more than FORESHORTENING_DEAD_ZONE) counts as pitched.
            expected = cal.torso_px * scale_ratio * (1.0 - FORESHORTENING_DEAD_ZONE)
            trunk = np.array([roll, math.degrees(math.acos(min(1.0, f.torso / max(expected, 1e-6))))])
        height = float(np.dot(f.hip, up)) / body
        wrists = np.stack([f.p[L_WRIST] - f.hip, f.p[R_WRIST] - f.hip]) / body
        wrist_seen = f.vis[[L_WRIST, R_WRIST]] >= cfg.min_visibility
        knees = np.array([_knee_angle(f.p, L_HIP, L_KNEE, L_ANKLE), _knee_angle(f.p, R_HIP, R_KNEE, R_ANKLE)])
        knee_seen = (f.vis[[L_KNEE, R_KNEE]] >= cfg.min_visibility) & (f.vis[[L_ANKLE, R_ANKLE]] >= 0.3)

        past = None
        for item in reversed(self.hist):
            if item[0] <= f.t - cfg.derivative_s + 1e-6:
                past = item
                break
        if past is None and self.hist and f.t - self.hist[0][0] > 0:
            past = self.hist[0] if f.t - self.hist[0][0] >= 0.5 * cfg.derivative_s else None
        baseline = [h[1] for h in self.hist if f.t - 1.5 <= h[0] <= f.t - 0.4]
        self.hist.append((f.t, trunk, height, wrists, knees))
        while self.hist and self.hist[0][0] < f.t - 2.0:
            self.hist.popleft()
        if past is None or f.t - past[0] > 0.45:
            self.change_prev = False
            return f.t < self.until
        dt = f.t - past[0]
        trunk_speed = float(np.linalg.norm(trunk - past[1])) / dt
        ref = np.median(np.stack(baseline), axis=0) if baseline else past[1]
        change = float(np.linalg.norm(trunk - ref)) >= cfg.stumble_trunk_change_deg
        drop = (past[2] - height) / dt  # bh/s, + downwards
        wrist_speed = np.linalg.norm(wrists - past[3], axis=1) / dt
        torso_bh = cal.torso_px * scale_ratio / body
        wrist_far = np.linalg.norm(wrists, axis=1) >= cfg.stumble_wrist_reach * torso_bh
        flex = (past[4] - knees) / dt  # deg/s, + bending

        now = f.t
        if trunk_speed >= cfg.stumble_trunk_speed_dps:
            self.last["turn"] = now
        # Two frames of changed trunk orientation: a single-frame pose glitch is not a stumble.
        if change and self.change_prev:
            self.last["tilt"] = now
        self.change_prev = change
        if drop >= cfg.stumble_hip_drop_bhps:
            self.last["drop"] = now
        if bool((wrist_seen & wrist_far & (wrist_speed >= cfg.stumble_wrist_speed_bhps)).any()):
            self.last["arms"] = now
        if knee_seen.all():
            fast, slow = float(flex.max()), float(flex.min())
            one_knee = fast >= cfg.stumble_knee_speed_dps and slow < 0.5 * cfg.stumble_knee_speed_dps
            if one_knee and drop >= 0.5 * cfg.stumble_hip_drop_bhps:
                self.last["knee"] = now

        def recent(sign: str) -> bool:
            return now - self.last.get(sign, -math.inf) <= cfg.stumble_window_s

        trunk_signs = recent("turn") and recent("tilt")
        stumble = trunk_signs and (recent("drop") or recent("arms") or recent("knee"))
        # Running bounces the hip at up to 0.7 bh/s with knees flexing in turn; a collapse drops it faster.
        stumble |= drop >= cfg.stumble_collapse_bhps and recent("knee")
        if stumble:
            self.until = now + cfg.stumble_hold_s
        return now < self.until


class _Steps:
    """Steps from the feet passing each other: the sign of their separation along the belt (side view) or
    in height (front/back view: the foot further away is higher in the image), around its running median,
    with hysteresis, a confirmation time and a refractory period."""

    def __init__(self, cfg: TreadmillConfig) -> None:
        self.cfg = cfg
        self.centre = _Series(2.0)
        self.state = 0
        self.pending = 0
        self.pending_since = 0.0
        self.times: deque[float] = deque()
        self.count = 0
        self.walking_s = 0.0
        self.backward_s = 0.0

    def update(self, f: _Frame, cal: Calibration, backward: bool) -> None:
        cfg = self.cfg
        if min(f.vis[L_ANKLE], f.vis[R_ANKLE]) < 0.2:
            return
        if cal.view == "side":
            axis, thr = np.array(cal.belt_xy), cfg.step_threshold_bh
        else:
            axis, thr = np.array(cal.up_xy), cfg.step_threshold_front_bh
        diff = float(np.dot(f.p[L_ANKLE] - f.p[R_ANKLE], axis)) / cal.body_height_px
        self.centre.add(f.t, diff)
        x = diff - float(np.median(self.centre.since(-math.inf)))
        sign = 1 if x > thr else -1 if x < -thr else 0
        if sign == 0 or sign == self.state:
            self.pending = 0
            return
        if self.state == 0:
            self.state = sign
            return
        if self.pending != sign:
            self.pending, self.pending_since = sign, f.t
        if f.t - self.pending_since + 1e-9 < cfg.step_confirm_s:
            return
        self.state, self.pending = sign, 0
        t_step = self.pending_since
        if self.times and t_step - self.times[-1] < cfg.step_refractory_s:
            return
        if self.times and t_step - self.times[-1] <= cfg.walking_gap_s:
            interval = t_step - self.times[-1]
            self.walking_s += interval
            if backward:
                self.backward_s += interval
        self.count += 1
        self.times.append(t_step)
        while self.times and self.times[0] < t_step - cfg.cadence_window_s:
            self.times.popleft()

    def cadence_spm(self, now: float) -> float:
        if len(self.times) < 3 or now - self.times[-1] > self.cfg.walking_gap_s:
            return 0.0
        span = self.times[-1] - self.times[0]
        return 60.0 * (len(self.times) - 1) / span if span > 0 else 0.0


# ---------------------------------------------------------------------------------------------- monitor


_EDGE_TEXT_AWAY = {"forward": "Step forward", "back": "Step back", None: "Move to the middle of the belt"}


class TreadmillMonitor:
    """Stateful per stream: call `update` with every frame's walker pose, in time order."""

    def __init__(self, config: TreadmillConfig | None = None, calibration: Calibration | None = None) -> None:
        self.config = config or TreadmillConfig()
        self._configured = self.config  # what `set_setup` falls back to for what is not told
        self._t0: float | None = None
        self._last_t = -math.inf
        self._last_seen: float | None = None
        self._dark = False
        self._partial_since: float | None = None
        self._moved_since: float | None = None
        self._moved = False
        self._prev_frame: _Frame | None = None
        self._stance_v: deque[float] = deque(maxlen=600)
        self._facing = _Series(1.0)
        self._zone_s: dict[str, float] = dict.fromkeys(ZONES, 0.0)
        self._events: dict[str, int] = dict.fromkeys(HAZARD_KINDS, 0)
        self._hazard_seen: dict[str, float] = {}
        self._steps = _Steps(self.config)
        self._frame_wh = (0, 0)
        self._cal_wh = (0, 0)
        self._cal_seen: dict[Direction, float] = dict.fromkeys(DIRECTIONS, 0.0)
        self._cal_since: float | None = None  # when the calibration in use started
        self._reset_calibration(calibration)

    # -- public

    @property
    def calibration(self) -> Calibration | None:
        """The calibration in use (None while calibrating): save it with `Calibration.to_dict`."""
        return self._cal

    def recalibrate(self) -> None:
        """Forget the calibration (also one given to the constructor) and learn it again from the next frames.
        Workout figures carry on."""
        self._reset_calibration(None)

    def set_setup(
        self, body_height_m: float | None, belt_length_m: float | None, belt_width_m: float | None
    ) -> None:
        """The walker's height and the belt's size, as the solo page tells them (None: as configured). They
        place the belt's ends at calibration (the ends are belt lengths, the body is measured in heights), so
        a change that is a change calibrates again; workout figures carry on."""
        c = self._configured
        height = c.body_height_m if body_height_m is None else body_height_m
        length = c.belt_length_m if belt_length_m is None else belt_length_m
        width = c.belt_width_m if belt_width_m is None else belt_width_m
        if (height, length, width) == tuple(self.setup.values()):
            return
        # replace() checks each against its field's bounds
        self.config = replace(self.config, body_height_m=height, belt_length_m=length, belt_width_m=width)
        self.recalibrate()

    @property
    def setup(self) -> dict[str, float]:
        c = self.config
        return {
            "body_height_m": c.body_height_m,
            "belt_length_m": c.belt_length_m,
            "belt_width_m": c.belt_width_m,
        }

    def update(
        self,
        pose: Pose | None,
        timestamp_ms: int,
        frame_wh: tuple[int, int],
        brightness: float | None = None,
        pitch_deg: float | None = None,
        image_tilt_deg: float | None = None,
    ) -> TreadmillState:
        """One frame: the walker's pose (None: not found), the frame's mean luma, and the phone's camera
        elevation from its tilt sensor when the phone sends it (degrees up). `image_tilt_deg`: for a phone
        that sends none, a reading of its elevation from the image (vision/tilt.py), on the frames it was
        read on: calibration takes the median of the readings on its own frames."""
        cfg = self.config
        t = max(timestamp_ms / 1000.0, self._last_t + 1e-3)
        dt = min(max(t - self._last_t, 0.0), 0.5) if math.isfinite(self._last_t) else 0.0
        self._last_t = t
        self._frame_wh = (int(frame_wh[0]), int(frame_wh[1]))
        if self._t0 is None:
            self._t0 = t
        hazards: list[Hazard] = []

        # Bad input first: what the walker must be told whatever else happens.
        if brightness is not None:
            limit = cfg.dark_luma + (cfg.dark_hysteresis if self._dark else 0.0)
            self._dark = brightness < limit
        if self._dark:
            hazards.append(Hazard("too_dark", "advisory", text="Too dark. Turn on a light"))

        frame = (
            _measure(pose, t, frame_wh, cfg, brightness, pitch_deg, image_tilt_deg)
            if pose is not None and _usable(pose, cfg)
            else None
        )
        if frame is None:
            lost = t - (self._last_seen if self._last_seen is not None else self._t0) > cfg.lost_grace_s
            if lost:
                hazards.append(Hazard("walker_lost", "stop", text="Stop. Walker not in view"))
            self._partial_since = None
            notice = NOTICE_DARK if self._dark else NOTICE_LOST if lost else None  # darkness may be why
            return self._finish(t, dt, hazards, "unknown", notice)
        if self._last_seen is not None and t - self._last_seen > 1.0:
            self._reset_tracking()  # back after a while, perhaps somewhere else: no velocities across the gap
        self._last_seen = t

        partial = not frame.full
        self._partial_since = _held_since(self._partial_since, partial, t)
        show_partial = self._partial_since is not None and t - self._partial_since >= cfg.partial_hold_s
        if show_partial:
            hazards.append(Hazard("partial_view", "advisory", text="Move so your whole body is in view"))

        if self._cal is None:
            return self._calibrating(frame, t, dt, hazards, partial)

        cal = self._cal
        notice = None
        if self._cal_since is None:
            self._cal_since = t  # a calibration given to the constructor starts now
        if self._limits_until is not None:
            notice = NOTICE_LIMITS
        zone = self._track(frame, cal)
        stumble = self._stumble.update(frame, cal, self._scale_ratio)
        self._learn_belt(frame, cal)
        self._count_step(frame)
        if frame.full or tuple(frame_wh) != tuple(cal.frame_wh):  # the feet must be seen to place the ground
            self._check_moved(frame, cal, frame_wh)
        self._check_tilt(t, cal, pitch_deg)
        if self._limits_until is not None:
            zone = "unknown"
            if t >= self._limits_until:
                self._finish_limits()
        elif self._moved:
            zone = "unknown"
            # A stop, sounding while it lasts: no edge is watched until the walker recalibrates, and an
            # advisory said once left them on a running belt in silence
            hazards.append(Hazard("camera_moved", "stop", text="The phone moved. Recalibrate"))
        else:
            hazards.extend(self._zone_hazards(t))
        if stumble:
            hazards.append(Hazard("stumble", "stop", text="Stop. Hold the rails"))
        if self._moved:
            notice = NOTICE_MOVED
        if show_partial and notice is None:
            notice = NOTICE_PARTIAL
        if self._dark:
            notice = NOTICE_DARK
        if notice is None and self._side_view_notice(t):
            notice = NOTICE_SIDE_VIEW
        return self._finish(t, dt, hazards, zone, notice)

    def _side_view_notice(self, t: float) -> bool:
        """Tell a side-view walker, for a while after calibrating, that sideways drift is warned late."""
        cal, since = self._cal, self._cal_since
        return (
            cal is not None
            and cal.view == "side"
            and since is not None
            and t - since < self.config.side_view_notice_s
        )

    # -- calibration

    def _reset_calibration(self, calibration: Calibration | None) -> None:
        self._cal = calibration
        self._cal_frames: list[_Frame] = []
        self._limits_until: float | None = None
        self._cal_since = None
        self._limits_ext: dict[Direction, list[float]] = {d: [] for d in DIRECTIONS}
        self._moved = False
        self._moved_since = None
        self._tilted_since: float | None = None
        self._reset_tracking()

    def _reset_tracking(self) -> None:
        cfg = self.config
        keep = cfg.scale_median_s + 0.5
        self._scale = _Series(keep)
        self._extents = _Extents(cfg)
        self._stumble = _Stumble(cfg)
        self._ground = _Series(1.0)
        self._size_ratio = _Series(1.0)
        self._tilt = _Series(1.0)
        self._scale_ratio = 1.0
        self._warned: dict[Direction, bool] = dict.fromkeys(DIRECTIONS, False)
        self._warn_last: dict[Direction, float] = dict.fromkeys(DIRECTIONS, -math.inf)
        self._at_edge: dict[Direction, bool] = dict.fromkeys(DIRECTIONS, False)
        self._off_since: dict[Direction, float | None] = dict.fromkeys(DIRECTIONS, None)
        self._gap: dict[Direction, float] = dict.fromkeys(DIRECTIONS, math.inf)
        self._pred_gap: dict[Direction, float] = dict.fromkeys(DIRECTIONS, math.inf)
        self._prev_frame = None

    def _calibrating(
        self, frame: _Frame, t: float, dt: float, hazards: list[Hazard], partial: bool
    ) -> TreadmillState:
        cfg = self.config
        notice: str | None = NOTICE_CALIBRATE
        if self._dark:
            notice = NOTICE_DARK
        elif partial:
            notice = NOTICE_PARTIAL
        else:
            # A gap, or a phone turned between portrait and landscape: start again.
            if self._cal_frames and (t - self._cal_frames[-1].t > 1.0 or self._frame_wh != self._cal_wh):
                self._cal_frames.clear()
                self._stance_v.clear()
            self._cal_wh = self._frame_wh
            # The spot is where the walker stays, not where they came from: calibration takes everything
            # its frames saw as safe, and a walker stepping on from 0.5 bh behind the belt moved its back end
            # out by as much, so a stall was warned after the real end. Frames whose hips lie across the image
            # from where they are now are dropped (on a belt the hips stay put while the legs walk).
            body = max((frame.torso + frame.leg) / SEGMENTS_SHARE_OF_STATURE, 1.0)
            away = [abs(f.hip[0] - frame.hip[0]) > cfg.calibration_still_bh * body for f in self._cal_frames]
            if any(away):
                keep = len(away) - next(i for i, a in enumerate(reversed(away)) if a)
                del self._cal_frames[:keep]
                self._stance_v.clear()
            if self._cal_frames and self._prev_frame is not None:
                self._collect_stance(self._prev_frame, frame, self._provisional_axes(frame))
            self._cal_frames.append(frame)
            self._prev_frame = frame
            if t - self._cal_frames[0].t >= cfg.calibration_s and len(self._cal_frames) >= 5:
                self._cal, self._cal_seen = _calibrate(
                    self._cal_frames, list(self._stance_v), self._frame_wh, cfg
                )
                self._replay_calibration_frames()
                self._cal_since = t
                # Said, not only shown: the walker stands on the belt, too far from the phone to read it
                hazards.append(Hazard("calibrated", "advisory", text="Calibrated"))
                if cfg.limits_s > 0:
                    self._limits_until = t + cfg.limits_s
                    notice = NOTICE_LIMITS
                else:
                    notice = NOTICE_SIDE_VIEW if self._side_view_notice(t) else None
        return self._finish(t, dt, hazards, "unknown", notice)

    def _provisional_axes(self, frame: _Frame) -> tuple[F64, F64, float]:
        """(down, belt, body px) before calibration, from the image's axes and this frame's segments."""
        body = (frame.torso + frame.leg) / SEGMENTS_SHARE_OF_STATURE
        return np.array([0.0, 1.0]), np.array([1.0, 0.0]), max(body, 1.0)

    def _collect_stance(self, prev: _Frame, cur: _Frame, axes: tuple[F64, F64, float]) -> None:
        v = _stance_velocity(prev, cur, *axes)
        if v is not None:
            self._stance_v.append(v)

    def _replay_calibration_frames(self) -> None:
        """Count the steps taken while calibrating, and start the trackers, from the calibration frames."""
        cal = self._cal
        assert cal is not None
        for f in self._cal_frames:
            self._track(f, cal)
            self._count_step(f)
        self._cal_frames = []
        # Calibration frames never warn: the walker was where they chose to be.
        for d in DIRECTIONS:
            self._warned[d] = self._at_edge[d] = False
            self._off_since[d] = None

    def _finish_limits(self) -> None:
        """The walked limits become the edges, where they are wider than the walker's calibration spot."""
        cal = self._cal
        assert cal is not None
        ends = {}
        for d in DIRECTIONS:
            vals = self._limits_ext[d]
            ends[d] = max(cal.end(d), float(np.percentile(vals, 95))) if len(vals) >= 5 else cal.end(d)
        # The walked limits are the ends; only the neutral spot must stay clear of the warnings.
        self._cal = _with_edges(cal, ends, self._cal_seen, self.config)
        self._limits_until = None
        for d in DIRECTIONS:
            self._warned[d] = self._at_edge[d] = False

    # -- tracking

    def _track(self, f: _Frame, cal: Calibration) -> str:
        """Update the extents and the zone state machine; return the zone."""
        cfg = self.config
        self._scale.add(f.t, _size(f, cal.view))
        size = float(np.median(self._scale.since(f.t - cfg.scale_median_s)))
        self._scale_ratio = size / cal.scale_px
        self._extents.add(f, cal, size)
        extents, velocities = self._extents.current(f.t, cal)
        for d in DIRECTIONS:
            v = velocities[d]
            lead = v if v > cfg.velocity_deadband_bhps else 0.0
            gap = cal.end(d) - extents[d]
            pred = gap - lead * cfg.lookahead_s
            self._gap[d], self._pred_gap[d] = gap, pred
            if self._limits_until is not None:
                self._limits_ext[d].append(extents[d])
            margin = cal.end(d) - cal.warn(d)
            if pred <= margin:
                self._warned[d] = True
                self._warn_last[d] = f.t
            elif (
                self._warned[d]
                and pred > margin + cfg.hysteresis_bh
                and f.t - self._warn_last[d] >= cfg.zone_min_s
            ):
                self._warned[d] = False
            if gap <= 0:
                self._at_edge[d] = True
            elif gap > cfg.hysteresis_bh:
                self._at_edge[d] = False
            # Off the belt: past the edge (or past a warning line that lies beyond it) by the off margin.
            past = extents[d] - max(cal.end(d), cal.warn(d))
            if past >= cfg.off_margin_bh:
                self._off_since[d] = self._off_since[d] if self._off_since[d] is not None else f.t
            elif past < cfg.off_margin_bh - cfg.hysteresis_bh:
                self._off_since[d] = None
        if self._moved or self._limits_until is not None:
            return "unknown"
        off = [d for d in DIRECTIONS if self._is_off(d, f.t)]
        if off:
            return "off"
        warned = [d for d in DIRECTIONS if self._warned[d]]
        if warned:
            return min(warned, key=lambda d: self._pred_gap[d])
        return "centre"

    def _is_off(self, d: Direction, t: float) -> bool:
        since = self._off_since[d]
        return since is not None and t - since >= self.config.off_hold_s

    def _zone_hazards(self, t: float) -> list[Hazard]:
        cal = self._cal
        assert cal is not None
        off = [d for d in DIRECTIONS if self._is_off(d, t)]
        if off:
            d = min(off, key=lambda x: self._gap[x])
            side: Side = "left" if d == "left" else "right" if d == "right" else "centre"
            # A stop, as the edge's was: an advisory arriving while the edge's stop was still held was marked
            # heard unsaid, and then nothing sounded while the walker stood off a running belt
            return [Hazard("stepped_off", "stop", side=side, text="You stepped off the belt")]
        out = []
        for d in DIRECTIONS:
            if not self._warned[d]:
                continue
            edge = self._at_edge[d]
            if d == "left" or d == "right":
                tier: Tier = "urgent" if edge else "advisory"
                out.append(Hazard("edge_side", tier, side=d, text="Move to the centre"))
                continue
            tier = "stop" if edge else "urgent"
            out.append(Hazard(f"edge_{d}", tier, text=self._away_text(d)))
        return out

    def _away_text(self, d: Direction) -> str:
        """Advice as the walker feels it: away from the `d` end, whichever way they face now."""
        cal = self._cal
        assert cal is not None
        facing = self._current_facing()
        if facing == 0:
            return _EDGE_TEXT_AWAY[None]
        faces_back = cal.faces_back_with(facing)
        towards_edge_is_forward = faces_back == (d == "back")
        return _EDGE_TEXT_AWAY["back" if towards_edge_is_forward else "forward"]

    def _current_facing(self) -> int:
        vals = self._facing.since(-math.inf)
        if len(vals) == 0:
            return self._cal.facing_sign if self._cal else 0
        m = float(np.mean(vals))
        return 1 if m > 0.2 else -1 if m < -0.2 else 0

    def _learn_belt(self, f: _Frame, cal: Calibration) -> None:
        """Track facing; while the back end is only assumed, watch the belt and adopt its direction."""
        belt = np.array(cal.belt_xy)
        raw = _facing_raw(f, cal.view, belt)
        if abs(raw) > 0.01 * cal.body_height_px:
            self._facing.add(f.t, 1.0 if raw > 0 else -1.0)
        if cal.view == "side" and self._prev_frame is not None:
            axes = (-np.array(cal.up_xy), belt, cal.body_height_px)
            self._collect_stance(self._prev_frame, f, axes)
            if cal.rear_source == "facing":
                sign = _belt_sign(self._stance_v, self.config)
                if sign != 0:
                    self._cal = cal = replace(cal, rear_sign=sign, rear_source="belt")
                    self._reset_tracking()
        self._prev_frame = f

    def _count_step(self, f: _Frame) -> None:
        cal = self._cal
        assert cal is not None
        facing = self._current_facing() or cal.facing_sign
        self._steps.update(f, cal, cal.faces_back_with(facing))

    def _check_tilt(self, t: float, cal: Calibration, pitch_deg: float | None) -> None:
        """The phone's tilt sensor, against its tilt while calibrating: a phone on a stand holds it to a tenth
        of a degree, a knock turns it by degrees at once (the image's ground line needs a second to say so,
        and the feet in view). A phone that stops reporting changes nothing."""
        cfg = self.config
        if cal.phone_pitch_deg is None or cal.phone_pitch_source == "image" or pitch_deg is None:
            return  # a tilt read from the image is not the sensor's (an assumed focal length)
        away = abs(pitch_deg - cal.phone_pitch_deg) > cfg.moved_pitch_deg
        self._tilted_since = _held_since(self._tilted_since, away, t)
        if self._tilted_since is not None and t - self._tilted_since >= cfg.moved_pitch_hold_s:
            self._moved = True

    def _check_moved(self, f: _Frame, cal: Calibration, frame_wh: tuple[int, int]) -> None:
        """The phone moved: the frame's size changed or, held for a while, the feet's ground line moved in a
        way the walker's own motion does not explain (it only moves towards the horizon as the walker
        goes away from the camera, in proportion to their size, and a walker cannot leave the belt's
        height), or the body's axis rolled (front/back view: bending does not roll it)."""
        cfg = self.config
        if tuple(frame_wh) != tuple(cal.frame_wh):
            self._moved = True
            return
        up = np.array(cal.up_xy)
        self._ground.add(f.t, _lowest_foot(f, -up))
        self._size_ratio.add(f.t, self._scale_ratio)
        ground = cal.below_horizon(float(np.median(self._ground.since(-math.inf))))
        k = float(np.median(self._size_ratio.since(-math.inf)))
        ground0 = cal.below_horizon(cal.ground_px)
        off = False
        if ground is not None and ground0 is not None:  # pinhole: depth scales about the horizon
            off = abs(ground - k * ground0) / cal.body_height_px > cfg.moved_ground_bh
        if cal.view == "front_back":
            ankles = (f.p[L_ANKLE] + f.p[R_ANKLE]) / 2
            self._tilt.add(f.t, _angle_deg(f.shoulder - ankles, up))
            off |= abs(float(np.median(self._tilt.since(-math.inf)))) > cfg.moved_tilt_deg
        self._moved_since = _held_since(self._moved_since, off, f.t)
        if self._moved_since is not None and f.t - self._moved_since >= cfg.moved_hold_s:
            self._moved = True

    # -- output

    def _finish(
        self, t: float, dt: float, hazards: list[Hazard], zone: str, notice: str | None
    ) -> TreadmillState:
        if self._cal is not None and self._limits_until is None:
            self._zone_s[zone] += dt
        for h in hazards:
            if h.kind not in self._events:
                continue  # not an event of the workout ("calibrated")
            key = f"{h.kind}:{h.side}"
            if t - self._hazard_seen.get(key, -math.inf) > 0.6:
                self._events[h.kind] += 1
            self._hazard_seen[key] = t
        figures: dict[str, float | int] = {
            "steps": self._steps.count,
            "cadence_spm": round(self._steps.cadence_spm(t), 1),
            "walking_s": round(self._steps.walking_s, 2),
            "backward_s": round(self._steps.backward_s, 2),
        }
        for z in ZONES:
            figures[f"zone_{z}_s"] = round(self._zone_s[z], 2)
        figures["events"] = sum(self._events.values())
        for kind in HAZARD_KINDS:
            figures[f"events_{kind}"] = self._events[kind]
        return TreadmillState(
            calibrating=self._cal is None or self._limits_until is not None,
            calibration=self._cal,
            zone=zone,
            hazards=tuple(hazards),
            figures=figures,
            notice=notice,
        )
