"""Treadmill mode: calibration, zones with hysteresis and look-ahead, stumble versus deliberate bending,
step-off, blindness, bad-input notices and workout figures on synthetic bodies; then real footage."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import cv2
import numpy as np
import pytest

from tests.conftest import clip_path
from vision.alerts import AlertPolicy
from vision.treadmill import (
    HAZARD_KINDS,
    NOTICE_CALIBRATE,
    NOTICE_DARK,
    NOTICE_LOST,
    NOTICE_MOVED,
    NOTICE_PARTIAL,
    NOTICE_SIDE_VIEW,
    Calibration,
    TreadmillConfig,
    TreadmillMonitor,
    TreadmillState,
    body_size_px,
    mean_luma,
)
from vision.types import Pose

FPS = 15.0
# Heights above the ground as shares of stature (Winter's anthropometric table): what MediaPipe reports.
Z = {"ankle": 0.039, "knee": 0.285, "hip": 0.53, "shoulder": 0.818, "elbow": 0.63, "wrist": 0.485}


# ---------------------------------------------------------------------------------------------- a body


@dataclass(frozen=True)
class Body:
    """A walker seen by a fixed phone. Positions in body heights (bh) from where they calibrated.

    `view`: "side" (facing +x or -x in the image) or "front" (+1 facing the camera, -1 the back to it).
    `along_bh`: along the belt, + towards image +x (side view) or away from the camera (front view).
    `across_bh`: sideways, image +x (front view) or away from the camera (side view)."""

    view: str = "side"
    facing: int = -1
    frame_wh: tuple[int, int] = (360, 640)
    height_px: float = 300.0
    ground_y: float = 600.0  # px, at calibration
    x_px: float = 180.0
    along_bh: float = 0.0
    across_bh: float = 0.0
    trunk_deg: float = 0.0  # side: pitch towards the facing side; front: roll towards image +x
    squat: float = 0.0  # 0 standing .. 1 deep squat, symmetric
    arms_out: float = 0.0  # 0 hanging .. 1 thrown out to shoulder height
    buckle_deg: float = 0.0  # the left knee collapsing, degrees of extra flexion
    gait_phase: float | None = None  # cycles; None: standing still
    stride_bh: float = 0.12  # each foot's excursion from the hip along the belt
    drop_bh: float = 0.0
    visibility: float = 0.95
    camera_distance_bh: float = 1.6  # for depth: scale = D0 / (D0 + depth)

    def pose(self) -> Pose:
        h, f, q = self.height_px, self.facing, self.squat
        front = self.view == "front"
        pts: dict[int, tuple[float, float]] = {}  # index: (u, z) in bh; u along the image's x, z up
        hip_z = Z["hip"] - 0.2 * q - self.drop_bh
        hip_u = 0.0 if front else -0.1 * q * f  # squatting, the hips go back
        feet = {"L": (0.0, 0.0), "R": (0.0, 0.0)}  # (offset along the belt, lift)
        if self.gait_phase is not None:
            for side, shift in (("L", 0.0), ("R", 0.5)):
                ph = (self.gait_phase + shift) % 1.0
                a = self.stride_bh
                if ph < 0.6:  # stance: the foot rides the belt towards its back end (image +x in side view)
                    feet[side] = (-a + 2 * a * ph / 0.6, 0.0)
                else:  # swing: back to the front, lifted
                    feet[side] = (a - 2 * a * (ph - 0.6) / 0.4, 0.05 * math.sin(math.pi * (ph - 0.6) / 0.4))
        for side, sign, (i_hip, i_knee, i_ankle, i_heel, i_toe) in (
            ("L", 1.0, (23, 25, 27, 29, 31)),
            ("R", -1.0, (24, 26, 28, 30, 32)),
        ):
            fu, lift = feet[side]
            if front:  # a foot further away is higher in the image
                lat, up = 0.055 * sign, lift + 0.1 * fu * f
                pts[i_ankle], pts[i_heel], pts[i_toe] = (
                    (lat, Z["ankle"] + up),
                    (lat, 0.01 + up),
                    (1.1 * lat, up - 0.01),
                )
                knee_u = lat + 0.03 * q * sign
                pts[i_hip] = (lat, hip_z)
            else:
                u = fu + 0.005 * sign
                pts[i_ankle], pts[i_heel], pts[i_toe] = (
                    (u, Z["ankle"] + lift),
                    (u - 0.03 * f, 0.01 + lift),
                    (u + 0.1 * f, 0.005 + lift),
                )
                knee_u = (hip_u + fu) / 2 + (0.04 + 0.15 * q) * f
                pts[i_hip] = (hip_u, hip_z)
            knee_z = Z["knee"] - 0.05 * q
            if side == "L" and self.buckle_deg:  # the knee drops forward
                knee_u += 0.12 * math.sin(math.radians(self.buckle_deg)) * (1 if front else f)
                knee_z -= 0.1 * (1 - math.cos(math.radians(self.buckle_deg)))
            pts[i_knee] = (knee_u, knee_z)
        # Upper body, turned about the hip by the trunk angle (and leaning in a squat).
        lean = math.radians(self.trunk_deg + 35 * q)
        turn = 1 if front else f

        def upper(u: float, z: float) -> tuple[float, float]:
            dz = z - Z["hip"]
            return (hip_u + u * math.cos(lean) + dz * math.sin(lean) * turn,
                    hip_z - u * math.sin(lean) * turn + dz * math.cos(lean))  # fmt: skip

        def across(x: float) -> float:  # a body-width offset: in full from the front, a sliver from the side
            return x if front else 0.004 * math.copysign(1.0, x)

        fw = 0.0 if front else float(f)
        for idx, lat, z, fwd in (
            # index, sideways, height, forwards (bh): face, ears and shoulders
            (0, 0.0, 0.92, 0.05), (1, 0.01, 0.935, 0.04), (2, 0.02, 0.935, 0.035),
            (3, 0.03, 0.935, 0.03), (4, -0.01, 0.935, 0.04), (5, -0.02, 0.935, 0.035),
            (6, -0.03, 0.935, 0.03), (7, 0.045, 0.93, -0.01), (8, -0.045, 0.93, -0.01),
            (9, 0.015, 0.905, 0.045), (10, -0.015, 0.905, 0.045),
            (11, 0.11, Z["shoulder"], 0.0), (12, -0.11, Z["shoulder"], 0.0),
        ):  # fmt: skip
            pts[idx] = upper(across(lat) + fwd * fw, z)
        arm = self.arms_out
        for sign, (i_elbow, i_wrist, hand) in ((1.0, (13, 15, (17, 19, 21))), (-1.0, (14, 16, (18, 20, 22)))):
            out = 0.33 * arm * sign if front else 0.3 * arm * fw  # thrown out: sideways, or forwards
            pts[i_wrist] = upper(across(0.13 * sign) + out, Z["wrist"] + arm * (Z["shoulder"] - Z["wrist"]))
            pts[i_elbow] = upper(
                across(0.13 * sign) + out / 2, Z["elbow"] + arm * (Z["shoulder"] - Z["elbow"]) / 2
            )
            for k in hand:
                pts[k] = (pts[i_wrist][0], pts[i_wrist][1] - 0.03)
        w, hgt = self.frame_wh
        xy = np.array([(self.x_px + u * h, self.ground_y - z * h) for u, z in (pts[i] for i in range(33))])
        if front and f < 0:  # seen from behind: the person's left is on the image's left
            xy[:, 0] = 2 * self.x_px - xy[:, 0]
        # Where the walker is on the belt, as the phone sees it: depth scales about the image centre.
        depth = self.along_bh if front else self.across_bh
        k = self.camera_distance_bh / (self.camera_distance_bh + depth)
        centre = np.array([w / 2, hgt / 2])
        xy = centre + k * (xy - centre)
        xy[:, 0] += (self.across_bh if front else self.along_bh) * h * k
        vis = np.full(33, self.visibility, np.float32)
        if not front:  # the far side is partly hidden
            near_left = f < 0
            vis[[i for i in range(11, 33) if (i % 2 == 0) == near_left]] = 0.6
        return Pose((xy / np.array([w, hgt])).astype(np.float32), vis)


def feed(
    monitor: TreadmillMonitor,
    body_at: Callable[[float], Body | None],
    t0: float,
    t1: float,
    fps: float = FPS,
    brightness: float | None = 120.0,
    frame_wh: tuple[int, int] | None = None,
) -> Iterator[tuple[float, TreadmillState]]:
    """Run the monitor from t0 to t1 (s) on the body the function gives for each time."""
    n = round((t1 - t0) * fps)
    for i in range(n):
        t = t0 + i / fps
        body = body_at(t)
        wh = frame_wh or (body.frame_wh if body else (360, 640))
        yield t, monitor.update(body.pose() if body else None, round(t * 1000), wh, brightness)


def run(
    monitor: TreadmillMonitor,
    body_at: Callable[[float], Body | None],
    t0: float,
    t1: float,
    brightness: float | None = 120.0,
) -> list[tuple[float, TreadmillState]]:
    return list(feed(monitor, body_at, t0, t1, brightness=brightness))


def calibrated(body: Body, config: TreadmillConfig | None = None, walking: bool = True) -> TreadmillMonitor:
    """A monitor calibrated on `body`, walking (backwards, facing the back end) or standing."""
    monitor = TreadmillMonitor(config)
    cal_s = monitor.config.calibration_s
    states = run(monitor, lambda t: replace(body, gait_phase=t / 1.1 if walking else None), 0.0, cal_s + 0.2)
    assert not states[-1][1].calibrating
    return monitor


def kinds(state: TreadmillState) -> set[str]:
    return {h.kind for h in state.hazards}


def backward_walker(**kw: object) -> Body:
    """Side view, back end at image +x, facing it: a backward walker on a normally running belt."""
    return replace(Body(view="side", facing=1), **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- calibration


@pytest.mark.parametrize(
    ("body", "walking", "view", "facing", "rear_source", "rear_sign"),
    [
        (Body(view="side", facing=1), True, "side", 1, "belt", 1),
        (Body(view="side", facing=-1), True, "side", -1, "belt", 1),  # forward walker, belt still runs to +x
        (Body(view="side", facing=1), False, "side", 1, "facing", 1),  # standing: assumed to face the back
        (Body(view="side", facing=-1), False, "side", -1, "facing", -1),
        (Body(view="front", facing=1), False, "front_back", 1, "config", 1),  # phone at the console
        (Body(view="front", facing=-1), False, "front_back", -1, "config", 1),
        (Body(view="side", facing=1, frame_wh=(640, 360), ground_y=340, x_px=320, height_px=250), True,
         "side", 1, "belt", 1),  # landscape phone
        (Body(view="front", facing=1, frame_wh=(640, 360), ground_y=340, x_px=320, height_px=250), False,
         "front_back", 1, "config", 1),
    ],
)  # fmt: skip
def test_calibration_learns_view_facing_and_the_back_end(
    body: Body, walking: bool, view: str, facing: int, rear_source: str, rear_sign: int
) -> None:
    cal = calibrated(body, walking=walking).calibration
    assert cal is not None
    assert (cal.view, cal.facing_sign, cal.rear_source, cal.rear_sign) == (
        view,
        facing,
        rear_source,
        rear_sign,
    )
    assert cal.frame_wh == body.frame_wh
    # Stature from segments: within a few percent of the body drawn (the squat-free standing pose).
    assert cal.body_height_px == pytest.approx(body.height_px, rel=0.06)


@pytest.mark.parametrize("height_px", [160.0, 300.0, 520.0])
def test_zones_survive_user_size_and_camera_distance(height_px: float) -> None:
    """The same walk in body heights gives the same zone whatever the size in pixels."""
    body = backward_walker(height_px=height_px, ground_y=320 + height_px / 2)
    monitor = calibrated(body)
    assert monitor.calibration is not None and monitor.calibration.body_height_px == pytest.approx(
        height_px, rel=0.06
    )
    states = run(monitor, lambda t: replace(body, gait_phase=t / 1.1, along_bh=0.15), 3.2, 5.0)
    assert states[-1][1].zone == "back"


def test_calibration_notice_then_calibrated_and_recalibrate() -> None:
    body = backward_walker()
    monitor = TreadmillMonitor(TreadmillConfig(calibration_s=2.0))
    states = run(monitor, lambda t: replace(body, gait_phase=t / 1.1), 0.0, 2.5)
    assert (
        states[0][1].calibrating
        and states[0][1].notice == NOTICE_CALIBRATE
        and states[0][1].zone == "unknown"
    )
    # Side view: the walker is told that sideways drift is warned late, then the notice goes.
    assert not states[-1][1].calibrating and states[-1][1].notice == NOTICE_SIDE_VIEW
    assert states[-1][1].zone == "centre"
    t1 = 2.5 + monitor.config.side_view_notice_s
    later = run(monitor, lambda t: replace(body, gait_phase=t / 1.1), 2.5, t1)
    assert later[-1][1].notice is None
    monitor.recalibrate()
    # Recalibrated somewhere else on the belt: that spot becomes the centre.
    moved = replace(body, along_bh=0.15)
    states = run(monitor, lambda t: replace(moved, gait_phase=t / 1.1), t1, t1 + 2.5)
    assert states[0][1].calibrating and states[0][1].notice == NOTICE_CALIBRATE
    assert not states[-1][1].calibrating and states[-1][1].zone == "centre"


def test_a_saved_calibration_round_trips_through_json_and_skips_calibrating() -> None:
    cal = calibrated(backward_walker()).calibration
    assert cal is not None
    again = Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert again == cal
    monitor = TreadmillMonitor(calibration=again)
    state = monitor.update(backward_walker(gait_phase=0.0).pose(), 0, (360, 640), 120.0)
    assert not state.calibrating and state.zone == "centre"


def test_walked_limits_widen_the_belt() -> None:
    """The optional second phase: the ends are where the walker walked to, if further than the default."""
    body = backward_walker()
    monitor = TreadmillMonitor(TreadmillConfig(calibration_s=2.0, limits_s=4.0))
    run(monitor, lambda t: replace(body, gait_phase=t / 1.1), 0.0, 2.2)
    assert monitor.calibration is not None
    before = monitor.calibration.back_end_bh
    states = run(
        monitor, lambda t: replace(body, gait_phase=t / 1.1, along_bh=0.45 * math.sin(t - 2.2)), 2.2, 6.4
    )
    assert states[1][1].calibrating and all(
        s.zone == "unknown" and not s.hazards for _, s in states if s.calibrating
    )
    assert not states[-1][1].calibrating
    assert monitor.calibration.back_end_bh > before + 0.1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("calibration_s", 0.1, "calibration_s: expected 1.0..15.0 s"), ("lookahead_s", 5.0, "lookahead_s"),
     ("console", "left", "console")],
)  # fmt: skip
def test_config_is_bounded_and_described(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TreadmillConfig(**{field: value})  # type: ignore[arg-type]
    described = TreadmillConfig.describe()
    assert described["lookahead_s"]["unit"] == "s" and described["lookahead_s"]["default"] == 0.3
    assert all("doc" in d for d in described.values())


# ---------------------------------------------------------------------------------------------- zones


@pytest.mark.parametrize(
    ("body", "offset", "zone", "kind", "text"),
    [
        # Side view, walking backwards facing the back end (+x): to back away from it is to step back. The
        # offsets put the walker's feet between the warning line and the edge (see the calibration).
        (backward_walker(), {"along_bh": 0.15}, "back", "edge_back", "Step back"),
        (backward_walker(), {"along_bh": -0.22}, "front", "edge_front", "Step forward"),
        # Sideways in side view is depth: going away from the camera, this walker's left is away from it.
        (backward_walker(), {"across_bh": 0.165}, "left", "edge_side", "Move to the centre"),
        # Facing the console (forward walking): the same back end is behind them.
        (Body(view="side", facing=-1), {"along_bh": 0.22}, "back", "edge_back", "Step forward"),
        # Front view, back to the phone on the console: the back end is in front of them, far from the phone.
        (Body(view="front", facing=-1), {"along_bh": 0.2}, "back", "edge_back", "Step back"),
        (Body(view="front", facing=-1), {"along_bh": -0.2}, "front", "edge_front", "Step forward"),
        (Body(view="front", facing=-1), {"across_bh": 0.06}, "right", "edge_side", "Move to the centre"),
        (Body(view="front", facing=-1), {"across_bh": -0.06}, "left", "edge_side", "Move to the centre"),
        (Body(view="front", facing=1), {"across_bh": 0.06}, "left", "edge_side", "Move to the centre"),
    ],
)  # fmt: skip
def test_each_zone_is_warned_with_advice_away_from_the_edge(
    body: Body, offset: dict[str, float], zone: str, kind: str, text: str
) -> None:
    front = body.view == "front"
    monitor = calibrated(body, walking=not front)

    # Ease over to the spot in 1.5 s, then stay.
    def at(t: float) -> Body:
        k = min(1.0, (t - 3.2) / 1.5)
        moved = {key: k * v for key, v in offset.items()}
        return replace(body, gait_phase=None if front else t / 1.1, **moved)  # type: ignore[arg-type]

    states = run(monitor, at, 3.2, 6.0)
    last = states[-1][1]
    assert last.zone == zone
    hazard = next(h for h in last.hazards if h.kind == kind)
    assert hazard.text == text
    if kind == "edge_side":
        assert hazard.side == zone  # the side as the walker feels it
    assert not any(s.zone not in ("centre", zone) for _, s in states)


@pytest.mark.parametrize(("view", "facing"), [("side", 1), ("front", -1)])
def test_no_flicker_at_a_zone_boundary(view: str, facing: int) -> None:
    """A walker hovering at the warning line with pose jitter gets one warning, not a stutter."""
    body = Body(view=view, facing=facing)
    monitor = calibrated(body, walking=view == "side")
    cal = monitor.calibration
    assert cal is not None
    rng = np.random.default_rng(3)
    # The offset that puts the walker's extent towards the back end right on the warning line.
    line = cal.back_warn_bh - monitor._extents.current(3.2, cal)[0]["back"]

    def at(t: float) -> Body:
        jitter = 0.008 * rng.standard_normal() + 0.015 * math.sin(2 * math.pi * t / 2.0)
        return replace(body, along_bh=line + jitter, gait_phase=t / 1.1 if view == "side" else None)

    zones = [s.zone for _, s in run(monitor, at, 3.2, 15.0)]
    changes = sum(a != b for a, b in itertools.pairwise(zones))
    assert "back" in zones
    assert changes <= 2


@pytest.mark.parametrize("speed_mps", [0.5, 1.0, 1.5])
def test_a_stalled_walker_drifting_at_belt_speed_is_warned_before_the_edge(speed_mps: float) -> None:
    """Warn on position and on the position predicted `lookahead_s` ahead: the cue leads the edge, by more
    than a position-only rule would, and comes within the 300 ms budget of entering the warning zone."""
    body = backward_walker()
    start = 4.0
    leads = {}
    for lookahead in (0.0, 0.3):
        monitor = calibrated(body, TreadmillConfig(lookahead_s=lookahead))
        cal = monitor.calibration
        assert cal is not None
        v_bh = speed_mps / 1.75
        # The stalled walker stops stepping: feet planted on the belt, both carried to the back at belt speed.
        states = run(monitor, lambda t, v=v_bh: replace(body, along_bh=max(0.0, t - start) * v), 3.2, 6.0)
        warned = next(t for t, s in states if "edge_back" in kinds(s))
        # Standing feet reach the back end when the hip has moved (end - heel reach) from the neutral spot.
        reach = 0.03 if body.facing < 0 else 0.1
        crossing = start + (cal.back_end_bh - reach) / v_bh
        assert start < warned < crossing
        # The budget: a cue within 300 ms of the feet entering the warning zone, even without look-ahead.
        assert warned <= start + (cal.back_warn_bh - reach) / v_bh + 0.3
        leads[lookahead] = crossing - warned
        hazard = next(
            h for _, s in states if (h := next((x for x in s.hazards if x.kind == "edge_back"), None))
        )
        assert hazard.tier == "urgent" and hazard.ttc_s is None
        at_edge = [s for t, s in states if t > crossing + 0.15]
        assert at_edge and all(
            any(h.kind == "edge_back" and h.tier == "stop" for h in s.hazards) or s.zone == "off"
            for s in at_edge
        )
    assert leads[0.3] > leads[0.0] + 0.05


@pytest.mark.parametrize(("speed_mps", "away"), [(0.1, True), (0.2, True), (0.3, False), (0.2, False)])
def test_sideways_drift_in_side_view_is_warned_at_the_side(speed_mps: float, away: bool) -> None:
    """Side view: sideways is depth, read from the body's size and the feet's ground line together, with the
    drift's speed as look-ahead. The warning line sits just past the side (a real runner's estimate wanders
    as far as the side: docs/treadmill.md), so even on clean poses the cue comes a little after a foot
    reaches the side, not before: within 0.7 s of it (the size alone, 1 s fits and no look-ahead: 0.6-0.8 s
    after it here, 0.3-1.5 s on real footage)."""
    body = backward_walker()
    monitor = calibrated(body)
    cal = monitor.calibration
    assert cal is not None
    start, v_bh = 4.0, speed_mps / 1.75 * (1 if away else -1)
    states = run(
        monitor, lambda t: replace(body, gait_phase=t / 1.1, across_bh=max(0.0, t - start) * v_bh), 3.2, 8.0
    )
    # Facing the back end (+x), this walker's left is away from the phone.
    side = "left" if away else "right"
    crossing = start + (cal.end(side) - monitor.config.side_reach_bh) / abs(v_bh)
    warned = next(t for t, s in states if any(h.kind == "edge_side" and h.side == side for h in s.hazards))
    assert start < warned < crossing + 0.7


def test_only_side_view_is_told_that_sideways_drift_is_warned_late() -> None:
    front = calibrated(Body(view="front", facing=-1), walking=False)
    state = front.update(Body(view="front", facing=-1).pose(), 3300, (360, 640), 120.0)
    assert not state.calibrating and state.notice is None
    side = calibrated(backward_walker())
    state = side.update(backward_walker(gait_phase=0.0).pose(), 3300, (360, 640), 120.0)
    assert state.notice == NOTICE_SIDE_VIEW


def test_a_walker_swaying_sideways_in_side_view_is_not_warned() -> None:
    """The control: a walker wandering 5 cm either way with pose jitter, in side view, hears nothing."""
    body = backward_walker()
    monitor = calibrated(body)
    rng = np.random.default_rng(5)

    def at(t: float) -> Body:
        sway = 0.03 * math.sin(2 * math.pi * t / 4.0) + 0.004 * rng.standard_normal()
        return replace(body, gait_phase=t / 1.1, across_bh=sway)

    states = run(monitor, at, 3.2, 30.0)
    assert all(s.zone == "centre" and not s.hazards for _, s in states)


def test_warning_onset_is_heard_once_through_the_alert_policy() -> None:
    body = backward_walker()
    monitor = calibrated(body)
    policy = AlertPolicy()
    cues = []

    def drifting(t: float) -> Body:
        return replace(body, gait_phase=t / 1.1, along_bh=min(0.15, (t - 3.2) * 0.3))

    for t, state in feed(monitor, drifting, 3.2, 9.0):
        cues += policy.update(t, state.hazards).cues
    assert (
        [c.kind for c in cues] == ["edge_back"] and cues[0].tier == "urgent" and cues[0].text == "Step back"
    )


# ---------------------------------------------------------------------------------------------- body state


def _ease(t: float, peak: float, rise: float) -> float:
    """0 until 4 s, up to `peak` over `rise` s (smoothstep), held 0.3 s, back down over 0.6 s."""
    x = min(max((t - 4.0) / rise, 0.0), 1.0)
    down = min(max((t - 4.0 - rise - 0.3) / 0.6, 0.0), 1.0)
    return peak * (x * x * (3 - 2 * x) - down * down * (3 - 2 * down))


def ramp(rise: float = 0.25, **peaks: float) -> Callable[[float], dict[str, float]]:
    """Body changes (Body field: peak value) eased in together from 4 s."""
    return lambda t: {name: _ease(t, peak, rise) for name, peak in peaks.items()}


@pytest.mark.parametrize(
    ("name", "view", "motion", "stumble"),
    [
        # Stumbles: the trunk turns fast (100-200 deg/s) with the hip dropping, an arm thrown or a knee going.
        ("trips forward", "side", ramp(trunk_deg=30, drop_bh=0.08), True),
        ("falls back", "side", ramp(trunk_deg=-28, drop_bh=0.06), True),
        ("lurches, arms out", "side", ramp(trunk_deg=22, arms_out=1.0), True),
        ("knee buckles", "front", ramp(0.18, trunk_deg=20, buckle_deg=50, drop_bh=0.06), True),
        ("sways sideways", "front", ramp(trunk_deg=25, drop_bh=0.07), True),
        ("both knees give way", "front", ramp(0.2, squat=0.6, drop_bh=0.05), True),
        ("one knee collapses, hip falls", "front", ramp(0.2, buckle_deg=60, drop_bh=0.15), True),
        # On purpose: slow, or symmetric, or one sign alone.
        ("bends to pick something up", "side", ramp(1.5, trunk_deg=70, drop_bh=0.05), False),
        ("squats slowly", "front", ramp(1.2, squat=1.0), False),
        ("squats slowly, side on", "side", ramp(1.2, squat=1.0), False),
        ("squats briskly", "front", ramp(0.6, squat=0.7), False),
        ("leans on purpose", "side", ramp(0.8, trunk_deg=25), False),
        ("swings the arms", "side", ramp(0.3, arms_out=0.6), False),
        ("drops fast, trunk upright", "side", ramp(drop_bh=0.06), False),
    ],
)
def test_stumble_is_told_apart_from_bending_on_purpose(
    name: str, view: str, motion: Callable[[float], dict[str, float]], stumble: bool
) -> None:
    body = Body(view=view, facing=1 if view == "side" else -1)
    monitor = calibrated(body, walking=False)
    states = run(monitor, lambda t: replace(body, **motion(t)), 3.2, 7.0)
    found = [t for t, s in states if "stumble" in kinds(s)]
    assert bool(found) == stumble, name
    if stumble:
        assert 4.0 < found[0] <= 4.4  # within the 300 ms budget of the trunk's turn
        first = next(s for t, s in states if t == found[0])
        h = next(h for h in first.hazards if h.kind == "stumble")
        assert (h.tier, h.text) == ("stop", "Stop. Hold the rails")


@pytest.mark.parametrize(("view", "offset"), [("front", {"across_bh": 0.4}), ("side", {"along_bh": 0.5})])
def test_stepping_off_the_belt_is_a_stop_the_walker_hears_and_that_sounds_while_off(
    view: str, offset: dict[str, float]
) -> None:
    """Off the belt, the edge's stop gives way to "You stepped off the belt". As an advisory it came while
    the edge's stop was still held, was marked heard without being said, and then nothing sounded while
    the walker stood off a running belt."""
    body = Body(view=view, facing=-1 if view == "front" else 1, x_px=180.0 if view == "front" else 120.0)
    monitor = calibrated(body, walking=view == "side")

    def at(t: float) -> Body:
        k = min(1.0, max(0.0, (t - 4.0) / 0.4))
        return replace(body, **{key: k * v for key, v in offset.items()})  # type: ignore[arg-type]

    states = run(monitor, at, 3.2, 6.5)
    off = [t for t, s in states if "stepped_off" in kinds(s)]
    assert off and 4.4 <= off[0] <= 5.4
    last = states[-1][1]
    assert last.zone == "off" and [(h.kind, h.tier) for h in last.hazards] == [("stepped_off", "stop")]
    assert last.hazards[0].text == "You stepped off the belt"
    policy = AlertPolicy()
    heard, sounding = [], []
    for t, state in states:
        out = policy.update(t, state.hazards)
        heard += [(c.kind, c.text) for c in out.cues]
        if t >= off[0] + 1.0:
            sounding.append([a.kind for a in out.active])
    assert ("stepped_off", "You stepped off the belt") in heard
    assert sounding and all(kinds == ["stepped_off"] for kinds in sounding)  # the page's beeper follows it


def test_walker_lost_only_after_the_grace_then_cleared() -> None:
    body = backward_walker()
    monitor = calibrated(body)
    states = run(monitor, lambda t: None if 4.0 <= t < 6.0 else replace(body, gait_phase=t / 1.1), 3.2, 7.0)
    lost = [t for t, s in states if "walker_lost" in kinds(s)]
    last_seen = 4.0 - 1 / FPS
    assert last_seen + 0.5 < lost[0] <= last_seen + 0.5 + 1 / FPS
    assert max(lost) < 6.0
    during = next(s for t, s in states if t >= 5.0)
    assert during.zone == "unknown" and during.notice == NOTICE_LOST
    assert next(h for h in during.hazards if h.kind == "walker_lost").tier == "stop"
    assert states[-1][1].hazards == () and states[-1][1].zone == "centre"


def test_nobody_from_the_start_is_walker_lost_and_calibration_waits() -> None:
    monitor = TreadmillMonitor()
    states = run(monitor, lambda t: None, 0.0, 2.0)
    assert states[0][1].hazards == ()
    assert kinds(states[-1][1]) == {"walker_lost"} and states[-1][1].calibrating


# ---------------------------------------------------------------------------------------------- bad input


def test_too_dark_is_told_with_hysteresis() -> None:
    body = backward_walker()
    monitor = calibrated(body)
    out = []
    for i, luma in enumerate([120.0, 30.0, 45.0, 55.0]):  # 45 is still dark once dark, 55 is not
        state = monitor.update(body.pose(), 3300 + 100 * i, (360, 640), luma)
        out.append(("too_dark" in kinds(state), state.notice == NOTICE_DARK))
    assert out == [(False, False), (True, True), (True, True), (False, False)]


def test_too_dark_blocks_calibration_with_a_notice() -> None:
    monitor = TreadmillMonitor(TreadmillConfig(calibration_s=1.0))
    states = run(monitor, lambda t: backward_walker(gait_phase=t / 1.1), 0.0, 2.0, brightness=12.0)
    assert all(s.calibrating and s.notice == NOTICE_DARK for _, s in states)


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("feet below the frame", {"ground_y": 700.0}),
        ("head above the frame", {"ground_y": 250.0}),
        ("half out at the side", {"x_px": 2.0}),
    ],
)
def test_a_partial_view_is_told_after_a_moment(name: str, change: dict[str, float]) -> None:
    body = backward_walker()
    monitor = calibrated(body)

    def at(t: float) -> Body:
        return replace(body, gait_phase=t / 1.1, **(change if t >= 4.0 else {}))  # type: ignore[arg-type]

    states = run(monitor, at, 3.2, 5.2)
    partial = [t for t, s in states if "partial_view" in kinds(s)]
    assert partial, name
    assert 4.4 <= partial[0] <= 4.7
    assert states[-1][1].notice == NOTICE_PARTIAL
    assert next(h for h in states[-1][1].hazards if h.kind == "partial_view").tier == "advisory"


def test_calibration_takes_the_spot_the_walker_stays_on_not_where_they_came_from() -> None:
    """Everything calibration sees is safe by definition. A walker stepping on from 0.5 bh behind the belt
    during its first 1.2 s moved the back end out from 0.40 to 0.70 bh, and a stall afterwards was warned
    after the hips had passed the real end (found by the solo review). Calibration now starts again while the
    hips move across the image, and ends 3 s after they settle."""
    body = backward_walker()
    monitor = TreadmillMonitor()

    def stepping_on(t: float) -> Body:
        return replace(body, gait_phase=t / 1.1, along_bh=max(0.0, 0.5 * (1 - t / 1.2)))

    states = run(monitor, stepping_on, 0.0, 4.6)
    done = next(t for t, s in states if not s.calibrating)
    cal = monitor.calibration
    assert cal is not None and 3.6 <= done <= 4.6
    assert cal.back_end_bh == pytest.approx(0.40, abs=0.01) and cal.back_warn_bh < 0.37

    def stall(t: float) -> Body:  # carried to the back at 0.3 bh/s from t = 5 s
        return replace(body, gait_phase=t / 1.1, along_bh=max(0.0, (t - 5.0) * 0.3))

    policy = AlertPolicy()
    edge = next(
        t
        for t, s in run(monitor, stall, 4.6, 8.0)
        for c in policy.update(t, s.hazards).cues
        if c.kind == "edge_back"
    )
    assert edge < 5.0 + 0.40 / 0.3 - 0.5  # well before the hips reach the real end


def test_the_belts_size_and_the_walkers_height_place_the_ends_and_a_change_calibrates_again() -> None:
    body = backward_walker()
    monitor = calibrated(body)
    cal = monitor.calibration
    assert cal is not None and cal.back_end_bh == pytest.approx(0.70 / 1.75)
    monitor.set_setup(1.75, 1.40, 0.50)  # as it was: no new calibration
    assert monitor.calibration is cal
    monitor.set_setup(1.60, 1.27, 0.46)
    assert monitor.calibration is None and monitor.setup == {
        "body_height_m": 1.60,
        "belt_length_m": 1.27,
        "belt_width_m": 0.46,
    }
    run(monitor, lambda t: replace(body, gait_phase=t / 1.1), 4.0, 7.3)
    cal = monitor.calibration
    assert cal is not None
    assert cal.back_end_bh == pytest.approx(0.635 / 1.60) and cal.left_end_bh == pytest.approx(0.23 / 1.60)
    with pytest.raises(ValueError, match="belt_length_m"):
        monitor.set_setup(1.60, 3.0, 0.46)


def test_the_end_of_calibration_is_said() -> None:
    """The walker stands on the belt, too far from the phone to read "Stand still to calibrate" go away."""
    monitor = TreadmillMonitor(TreadmillConfig(calibration_s=1.0))
    states = run(monitor, lambda t: backward_walker(), 0.0, 2.0)
    done = next(i for i, (_, s) in enumerate(states) if not s.calibrating)
    assert [h.kind for h in states[done][1].hazards] == ["calibrated"]
    assert not any("calibrated" in kinds(s) for _, s in states[:done] + states[done + 1 :])
    policy = AlertPolicy()
    heard = [(c.text, c.phrase) for t, s in states for c in policy.update(t, s.hazards).cues]
    assert heard == [("Calibrated", "calibrated")]  # said once, from a pre-rendered phrase


def test_a_partial_view_blocks_calibration() -> None:
    monitor = TreadmillMonitor(TreadmillConfig(calibration_s=1.0))
    states = run(monitor, lambda t: backward_walker(ground_y=700.0), 0.0, 2.0)
    assert all(s.calibrating for _, s in states) and states[-1][1].notice == NOTICE_PARTIAL


def _assert_moved(states: list[tuple[float, TreadmillState]], by_s: float) -> None:
    moved = [t for t, s in states if "camera_moved" in kinds(s)]
    assert moved and moved[0] <= by_s
    last = states[-1][1]
    assert last.notice == NOTICE_MOVED and last.zone == "unknown"
    assert {h.kind for h in last.hazards} == {"camera_moved"}
    assert last.hazards[0].tier == "stop"  # the page's tone sounds until the walker recalibrates


def test_a_phone_turned_to_landscape_is_told_at_once() -> None:
    body = backward_walker()
    monitor = calibrated(body)
    states = [(t, monitor.update(body.pose(), round(t * 1000), (640, 360), 120.0)) for t in (4.0, 4.07)]
    _assert_moved(states, 4.0)


def test_a_phone_tipped_down_is_told_in_side_view() -> None:
    """The belt rises in the image while the walker's size stays: no walking explains that."""
    body = backward_walker()
    monitor = calibrated(body)
    states = run(monitor, lambda t: replace(body, gait_phase=t / 1.1, ground_y=600.0 if t < 4.0 else 520.0),
                 3.2, 6.5)  # fmt: skip
    _assert_moved(states, 4.0 + 2.5)


def test_a_phone_rolled_is_told_in_front_view() -> None:
    body = Body(view="front", facing=-1)
    monitor = calibrated(body, walking=False)
    w, h = body.frame_wh
    c, s = math.cos(math.radians(15)), math.sin(math.radians(15))
    p = body.pose().xy.astype(np.float64) * [w, h] - [w / 2, h / 2]
    rolled = Pose(((p @ np.array([[c, s], [-s, c]]) + [w / 2, h / 2]) / [w, h]).astype(np.float32),
                  body.pose().visibility)  # fmt: skip
    states = [(t, monitor.update(body.pose() if t < 4.0 else rolled, round(t * 1000), (w, h), 120.0))
              for t in np.arange(3.2, 7.0, 1 / FPS)]  # fmt: skip
    _assert_moved(states, 4.0 + 2.5)


def test_walking_away_from_the_camera_is_not_a_moved_phone() -> None:
    """Side view: going sideways away from the phone raises the feet in the image, in proportion to size."""
    body = backward_walker()
    monitor = calibrated(body)
    states = run(monitor, lambda t: replace(body, gait_phase=t / 1.1, across_bh=min(0.4, max(0.0, t - 4.0))),
                 3.2, 7.0)  # fmt: skip
    assert not any("camera_moved" in kinds(s) for _, s in states)


def test_mean_luma_of_a_frame() -> None:
    frame = np.full((480, 640, 3), 200, np.uint8)
    frame[:, :320] = 0
    assert mean_luma(frame) == pytest.approx(100.0, abs=1.0)


# ---------------------------------------------------------------------------------------------- figures


@pytest.mark.parametrize(
    ("view", "facing", "cycle_s", "backward"),
    [("side", 1, 1.1, True), ("side", -1, 0.8, False), ("front", -1, 1.1, True), ("front", 1, 1.2, False)],
)
def test_steps_cadence_and_backward_time_on_a_synthetic_gait(
    view: str, facing: int, cycle_s: float, backward: bool
) -> None:
    body = Body(view=view, facing=facing)
    monitor = TreadmillMonitor()
    states = run(monitor, lambda t: replace(body, gait_phase=t / cycle_s), 0.0, 12.0)
    fig = states[-1][1].figures
    expected_steps = 2 * 12.0 / cycle_s
    assert abs(fig["steps"] - expected_steps) <= 2
    assert fig["cadence_spm"] == pytest.approx(120.0 / cycle_s, rel=0.05)
    assert fig["walking_s"] == pytest.approx(12.0 - cycle_s, abs=1.0)  # from the first step to the last
    assert fig["backward_s"] == pytest.approx(fig["walking_s"] if backward else 0.0, abs=0.01)
    assert fig["zone_centre_s"] == pytest.approx(12.0 - 3.0, abs=0.3)
    assert set(fig) >= {"steps", "cadence_spm", "walking_s", "backward_s", "events"}
    assert all(f"events_{k}" in fig for k in HAZARD_KINDS)


def test_standing_still_is_not_walking() -> None:
    states = run(TreadmillMonitor(), lambda t: backward_walker(), 0.0, 8.0)
    fig = states[-1][1].figures
    assert (fig["steps"], fig["cadence_spm"], fig["walking_s"]) == (0, 0.0, 0.0)


def test_events_count_onsets_not_frames() -> None:
    body = backward_walker()
    monitor = calibrated(body)
    away = ((4.0, 5.5), (6.5, 8.0))

    def at(t: float) -> Body | None:
        return None if any(a <= t < b for a, b in away) else replace(body, gait_phase=t / 1.1)

    states = run(monitor, at, 3.2, 9.0)
    assert states[-1][1].figures["events_walker_lost"] == 2


# ---------------------------------------------------------------------------------------------- real footage


def _real_poses(name: str, every: int = 1) -> tuple[list[Pose | None], float, tuple[int, int]]:
    from vision.pose import PoseEstimator

    cap = cv2.VideoCapture(str(clip_path(name)))
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    est = PoseEstimator()
    poses: list[Pose | None] = []
    i = 0
    wh = (0, 0)
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if i % every == 0:
            scale = 640 / max(frame.shape[:2])
            frame = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            wh = (frame.shape[1], frame.shape[0])
            found = est.detect(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), round(i * 1000 / fps))
            poses.append(found[0] if found else None)
        i += 1
    est.close()
    return poses, fps / every, wh


@pytest.fixture(scope="module")
def treadmill_side() -> tuple[list[Pose | None], float, tuple[int, int]]:
    return _real_poses("treadmill_phone_side.mp4")


@pytest.mark.slow
@pytest.mark.parametrize("every", [1, 2])  # the clip's 30 fps, and the 15 fps the camera page sends
def test_real_treadmill_runner_steps_cadence_and_no_alarms(
    treadmill_side: tuple[list[Pose | None], float, tuple[int, int]], every: int
) -> None:
    """treadmill_phone_side.mp4: a man running forwards on a treadmill for 12 s, filmed from the side. Counted
    by hand on a contact sheet of every third frame (docs/treadmill.md): 33 foot strikes, one every 11 frames,
    about 165 steps/min."""
    poses, fps, wh = treadmill_side
    poses = poses[::every]
    fps /= every
    monitor = TreadmillMonitor()
    heard = set()
    for i, pose in enumerate(poses):
        state = monitor.update(pose, round(i * 1000 / fps), wh, 120.0)
        heard |= kinds(state)
    cal = state.calibration
    assert cal is not None and cal.view == "side" and cal.rear_source == "belt"
    assert not cal.faces_back()  # he runs forwards, facing the console
    fig = state.figures
    assert 31 <= fig["steps"] <= 35
    assert 155 <= fig["cadence_spm"] <= 180
    assert fig["walking_s"] >= 10.5 and fig["backward_s"] == 0.0
    assert heard == {"calibrated"}, heard  # no edge, stumble, step-off or notice; the calibration said
    assert fig["zone_centre_s"] >= 8.5


@pytest.mark.slow
def test_real_squats_are_not_stumbles() -> None:
    """squats_facing_camera.mp4: a woman squatting on purpose, facing the camera, at the clip's 5 fps."""
    poses, fps, wh = _real_poses("squats_facing_camera.mp4")
    monitor = TreadmillMonitor(TreadmillConfig(belt_width_m=0.56))
    heard: set[str] = set()
    for i, pose in enumerate(poses):
        state = monitor.update(pose, round(i * 1000 / fps), wh, 120.0)
        heard |= kinds(state)
    assert state.calibration is not None and state.calibration.view == "front_back"
    assert "stumble" not in heard
    assert heard == {"calibrated"}, heard
    assert state.figures["steps"] <= 1


def test_a_knocked_phone_is_told_by_its_tilt_sensor_at_once() -> None:
    """The phone on its stand holds its tilt to a tenth of a degree; a knock turns it by degrees at once.
    With the tilt sensor the walker is told within the hold (0.3 s) even while the image has not changed
    yet (the ground line needs a second, and the feet in view); a steady phone's jitter is never a move, a
    phone that stops reporting changes nothing, and a saved calibration keeps the tilt it was made with."""
    body = backward_walker()
    rng = np.random.default_rng(4)

    def walk(
        monitor: TreadmillMonitor, t0: float, t1: float, pitch: Callable[[float], float | None]
    ) -> list[tuple[float, TreadmillState]]:
        out = []
        for t in np.arange(t0, t1, 1 / FPS):
            pose = replace(body, gait_phase=t / 1.1).pose()
            out.append((t, monitor.update(pose, round(t * 1000), body.frame_wh, 120.0, pitch(t))))
        return out

    steady = lambda t: -5.0 + float(rng.normal(0.0, 0.15))  # noqa: E731
    monitor = TreadmillMonitor()
    cal_states = walk(monitor, 0.0, monitor.config.calibration_s + 0.2, steady)
    cal = cal_states[-1][1].calibration
    assert cal is not None and cal.phone_pitch_deg == pytest.approx(-5.0, abs=0.1)
    assert Calibration.from_dict(cal.to_dict()) == cal
    older = {k: v for k, v in cal.to_dict().items() if k != "phone_pitch_deg"}  # saved before the sensor
    assert Calibration.from_dict(older).phone_pitch_deg is None

    quiet = walk(monitor, 3.2, 6.0, steady)
    assert not any("camera_moved" in kinds(s) for _, s in quiet)
    knocked = walk(monitor, 6.0, 7.0, lambda t: -11.0)
    _assert_moved(knocked, 6.0 + 0.3 + 1.5 / FPS)

    silent = TreadmillMonitor()  # the same knock, the phone no longer reporting: not told from the tilt
    walk(silent, 0.0, silent.config.calibration_s + 0.2, steady)
    after = walk(silent, 3.2, 7.0, lambda t: None if t >= 6.0 else steady(t))
    assert not any("camera_moved" in kinds(s) for _, s in after)


@pytest.mark.parametrize("elevation_deg", [12.0, -10.0])
def test_the_ground_line_reads_depth_through_the_phones_tilt(elevation_deg: float) -> None:
    """The feet's ground line measures depth as a level pinhole camera sees it (D = D0 g0 / g, g the feet's
    distance below the horizon). A phone on its stand looking up (the real side clip's, by about 12 deg) or
    down puts the horizon elsewhere than the image's centre: exact pinhole geometry, a walker 2 m from a
    phone 0.6 m up stepping 15 cm away, reads that step to the millimetre with the phone's tilt known; taken
    as level, the same rows read it a third short (looking up 12 deg) or 2.7 times long (looking down 10 deg:
    the feet near the image's centre)."""
    from vision.treadmill import FOOT_POINTS, _Frame, _ground_depth

    w, h, focal, stature = 720, 1280, 960.0, 1.75
    camera_h, d0, step = 0.6, 2.0, 0.15
    e = math.radians(elevation_deg)

    def row(distance: float) -> float:  # the image row of the belt at this distance, the phone tipped by e
        return h / 2 + focal * math.tan(math.atan2(camera_h, distance) + e)

    def frame(distance: float) -> _Frame:
        p = np.tile(np.array([w / 2, h / 2]), (33, 1))
        p[list(FOOT_POINTS), 1] = row(distance)
        return _Frame(0.0, p, np.ones(33), p[0], p[0], 100.0, 200.0, 50.0, True, 120.0, elevation_deg)

    cal = Calibration(
        frame_wh=(w, h), view="side", up_xy=(0.0, -1.0), belt_xy=(1.0, 0.0), tilt_deg=0.0,
        # the ruler: the camera's distance in body heights, as the body's size says it at calibration
        neutral_xy_px=(w / 2, h / 2), body_height_px=focal * stature / d0, scale_px=300.0, torso_px=100.0,
        camera_distance_bh=d0 / stature, ground_px=row(d0), facing_sign=1, left_sign=1, rear_sign=1,
        rear_source="config", back_end_bh=0.4, front_end_bh=0.4, left_end_bh=0.14, right_end_bh=0.14,
        back_warn_bh=0.3, front_warn_bh=0.3, left_warn_bh=0.1, right_warn_bh=0.1,
        phone_pitch_deg=elevation_deg,
    )  # fmt: skip
    truth = step / stature
    measured = _ground_depth(frame(d0 + step), cal)
    assert measured == pytest.approx(truth, abs=0.001 / stature)
    assert _ground_depth(frame(d0), cal) == pytest.approx(0.0, abs=1e-9)

    level = _ground_depth(frame(d0 + step), replace(cal, phone_pitch_deg=None))
    assert level is not None
    if elevation_deg > 0:
        assert level < 0.75 * truth  # looking up: a step reads short
    else:
        assert level > 2 * truth  # looking down: a step reads long

    # The moved-phone check reads the same rows: a walker standing a step further back for 2 s, their body
    # smaller by as much, is not a moved phone; the whole scene 0.2 bh lower in the frame is
    monitor = TreadmillMonitor(calibration=cal)
    for i in range(30):
        monitor._scale_ratio = d0 / (d0 + step)
        monitor._check_moved(replace(frame(d0 + step), t=i / FPS), cal, (w, h))
    assert not monitor._moved
    shifted = frame(d0)
    shifted.p[:, 1] += 0.2 * cal.body_height_px
    for i in range(30, 60):
        monitor._scale_ratio = 1.0
        monitor._check_moved(replace(shifted, t=i / FPS), cal, (w, h))
    assert monitor._moved


def _verticals_seen_from(elevation_deg: float, roll_deg: float = 0.0, seed: int = 0) -> np.ndarray:
    """A room's vertical edges (door frames, cupboards: 16 poles 2 m tall, 2-6 m away) and slanted clutter
    through a pinhole camera 1 m up, tipped up by `elevation_deg` and rolled by `roll_deg`: a 360x640 frame,
    focal length 480 px."""
    rng = np.random.default_rng(seed)
    w, h, f = 360, 640, 480.0
    img = np.full((h, w), 90, np.uint8)
    e, r = math.radians(elevation_deg), math.radians(roll_deg)
    tip = np.array([[1, 0, 0], [0, math.cos(e), math.sin(e)], [0, -math.sin(e), math.cos(e)]])
    roll = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])

    def px(p: np.ndarray) -> tuple[int, int]:
        c = roll @ tip @ p
        return round(f * c[0] / c[2] + w / 2), round(f * c[1] / c[2] + h / 2)

    for _ in range(16):  # x right, y down (the ground 1 m below the camera), z ahead
        x, z = rng.uniform(-2.0, 2.0), rng.uniform(2.0, 6.0)
        cv2.line(img, px(np.array([x, 1.0, z])), px(np.array([x, -1.0, z])), 230, 2, cv2.LINE_AA)
    for _ in range(8):
        a, b = rng.uniform(0, w, 2), rng.uniform(0, h, 2)
        cv2.line(img, (int(a[0]), int(b[0])), (int(a[1]), int(b[1])), 170, 2, cv2.LINE_AA)
    return img


@pytest.mark.parametrize("elevation_deg", [12.0, 0.0, -8.0])
def test_a_phone_tilt_is_read_from_the_rooms_vertical_edges(elevation_deg: float) -> None:
    """A phone that does not send its tilt: the room's vertical edges meet straight above the image for a
    phone looking up, below it for one looking down (vision.tilt). Over ten rooms of exact pinhole pictures
    each reading is within 1.5 deg (a few tenths typically; segment ends fall on whole pixels) and their
    median within 0.3; a frame without verticals, a phone rolled 20 deg (its verticals far from the image's),
    or verticals all on the walker give no reading."""
    from vision.tilt import elevation_from_verticals

    got = [elevation_from_verticals(_verticals_seen_from(elevation_deg, seed=k), 480.0) for k in range(10)]
    read = [g for g in got if g is not None]
    assert len(read) >= 8
    assert all(abs(g - elevation_deg) <= 1.5 for g in read)
    assert float(np.median(read)) == pytest.approx(elevation_deg, abs=0.3)
    assert elevation_from_verticals(np.full((640, 360), 90, np.uint8), 480.0) is None
    assert elevation_from_verticals(_verticals_seen_from(elevation_deg, roll_deg=20.0), 480.0) is None
    everything = (0.0, 0.0, 360.0, 640.0)
    assert elevation_from_verticals(_verticals_seen_from(elevation_deg), 480.0, everything) is None


class _OnePose:
    """Stands in for the pose model: the same walker in every frame (the pipeline's image path is tested)."""

    def __init__(self, pose: Pose) -> None:
        self.pose = pose

    def detect_with_masks(self, rgb: np.ndarray, timestamp_ms: int) -> tuple[list[Pose], list[None]]:
        return [self.pose], [None]

    def close(self) -> None:
        pass


def test_the_pipeline_reads_the_tilt_from_the_image_only_while_calibrating_without_a_sensor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Treadmill mode through the pipeline: a phone that sends no tilt has it read from the room's vertical
    edges while calibrating, and the calibration keeps it as the image's (never compared with a sensor's);
    once calibrated nothing more is read; recalibrating reads it afresh; a phone that sends its tilt is
    taken at its word, and the image is not read."""
    import vision.pipeline
    from vision.pipeline import Pipeline, PipelineConfig

    reads: list[float | None] = []
    real = vision.pipeline.elevation_in_frame

    def counted(*args: object) -> float | None:
        reads.append(real(*args))  # type: ignore[arg-type]
        return reads[-1]

    monkeypatch.setattr(vision.pipeline, "elevation_in_frame", counted)
    body = backward_walker()
    room = cv2.cvtColor(_verticals_seen_from(12.0), cv2.COLOR_GRAY2BGR)
    assert room.shape[1::-1] == body.frame_wh

    def calibrate(
        pipe: Pipeline, pitch: float | None, t0: float = 0.0, seen: np.ndarray = room
    ) -> Calibration:
        t = t0
        while pipe._treadmill is not None and pipe._treadmill.calibration is None and t < t0 + 6.0:
            pipe._estimator = _OnePose(replace(body, gait_phase=t / 1.1).pose())  # type: ignore[assignment]
            pipe.process(seen, round(t * 1000), pitch)
            t += 1 / FPS
        assert pipe._treadmill is not None and pipe._treadmill.calibration is not None
        return pipe._treadmill.calibration

    pipe = Pipeline(PipelineConfig(mode="treadmill"), estimator=_OnePose(body.pose()))  # type: ignore[arg-type]
    cal = calibrate(pipe, None)
    assert cal.phone_pitch_source == "image"
    assert cal.phone_pitch_deg == pytest.approx(12.0, abs=1.0)
    readings = len(reads)
    assert readings >= 5
    for k in range(10):
        pipe.process(room, 10_000 + k * 67)
    assert len(reads) == readings  # calibrated: nothing more is read
    # a sensor that starts reporting later is not compared with the image's tilt (an assumed focal length)
    image_cal = cal
    for i in range(10):
        pipe.process(room, 11_000 + i * 67, image_cal.phone_pitch_deg + 10.0)
    assert pipe._treadmill is not None and not pipe._treadmill._moved
    pipe.recalibrate()  # the phone put elsewhere, looking down: only the new readings count
    down = cv2.cvtColor(_verticals_seen_from(-8.0), cv2.COLOR_GRAY2BGR)
    again = calibrate(pipe, None, t0=12.0, seen=down)
    assert again.phone_pitch_source == "image"
    assert again.phone_pitch_deg == pytest.approx(-8.0, abs=1.0)

    told = Pipeline(PipelineConfig(mode="treadmill"), estimator=_OnePose(body.pose()))  # type: ignore[arg-type]
    before = len(reads)
    cal = calibrate(told, -4.0)
    assert (cal.phone_pitch_source, cal.phone_pitch_deg) == ("sensor", -4.0)
    assert len(reads) == before  # the image is not read
    for i in range(10):  # the sensor's own tilt, 10 deg off: a moved phone
        told.process(room, 11_000 + i * 67, 6.0)
    assert told._treadmill is not None and told._treadmill._moved


@pytest.mark.parametrize(("view", "facing"), [("side", -1), ("front", 1)])
def test_body_size_px_is_the_size_the_monitor_calibrates_with(view: str, facing: int) -> None:
    body = Body(view=view, facing=facing)
    cal = calibrated(body, walking=False).calibration
    assert cal is not None
    size = body_size_px(body.pose(), body.frame_wh, cal.view)
    assert size == pytest.approx(cal.scale_px, rel=1e-6)
    assert body_size_px(body.pose(), body.frame_wh, "front_back" if cal.view == "side" else "side") != size
