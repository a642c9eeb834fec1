"""The ground behind the walker (vision/ground.py): the walker frame against the generated scenes' own camera
(truth.json conventions), the pitch-and-distance solver on synthesised rows, and the ground tracker on
rendered frames and real footage, with the real MediaPipe pose model."""

from __future__ import annotations

import dataclasses
import itertools
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from tests.conftest import clip_path, read_frames
from vision.ground import (
    EYE_HEIGHT_RATIO,
    HEEL_BEHIND_TOE_M,
    HIP_HEIGHT_RATIO,
    MAX_HEADING,
    Ground,
    GroundConfig,
    GroundTracker,
    body_rows,
    focal_px,
    solve_pitch_distance,
)
from vision.obstacles import PathConfig, PathWatcher, _most_alike
from vision.pipeline import Pipeline
from vision.pose import PoseEstimator
from vision.scenario import Intrinsics, Renderer, Scene, parse_spec, stepping_pose
from vision.sensors import TiltModel, simulated_pitch
from vision.types import (
    L_EYE,
    L_HIP,
    L_KNEE,
    L_SHOULDER,
    L_TOE,
    N_LANDMARKS,
    R_EYE,
    R_HIP,
    R_KNEE,
    R_SHOULDER,
    R_TOE,
    Pose,
)

WALKER_CLIP = "squats_facing_camera.mp4"


def clips_dir() -> Path:
    return clip_path(WALKER_CLIP).parent  # skips the test when ../shared/clips is absent


# ------------------------------------------------------------------------------ truth camera -> Ground


def truth_camera(spec_fields: dict[str, Any], t: float) -> tuple[dict[str, Any], list[list[float]], float]:
    """(per-frame camera, K, walker_heel_z_m) exactly as truth.json writes them for the frame at t."""
    spec = parse_spec(spec_fields)
    scene = Scene(spec)
    k = Intrinsics.for_frame(spec.resolution_wh, spec.camera.fov_long_side_deg).matrix().tolist()
    return scene.camera_pose(t).to_json(), k, round(scene.heel_z(t), 4)


def ground_from_truth(
    cam: dict[str, Any], k: list[list[float]], heel_z: float, frame_wh: tuple[int, int]
) -> Ground:
    """The Ground a perfect tracker would report: pitch positive down (truth: negative down), the heels in
    the camera-level frame (the camera's right and forward axes with their vertical part removed) and the
    walking direction (world +Z) as an angle from the level forward axis towards the right."""
    rot = np.array(cam["rotation"], float)
    pos = np.array(cam["position_m"], float)
    right, fwd = rot[0].copy(), rot[2].copy()
    right[1] = fwd[1] = 0.0
    right /= np.linalg.norm(right)
    fwd /= np.linalg.norm(fwd)
    rel = np.array([0.0, 0.0, heel_z]) - pos
    return Ground(
        f=k[0][0],
        cx=k[0][2],
        cy=k[1][2],
        pitch=-math.radians(cam["pitch_deg"]),
        height_m=float(pos[1]),
        heel_cam=(float(right @ rel), float(fwd @ rel)),
        heading=math.atan2(right[2], fwd[2]),
        frame_wh=frame_wh,
    )


def truth_pixels(cam: dict[str, Any], k: list[list[float]], points_m: np.ndarray) -> tuple[np.ndarray, ...]:
    """truth.json's convention: p_cam = rotation @ (P - position_m), u = fx x / z + cx, v = fy y / z + cy."""
    rot = np.array(cam["rotation"], float)
    p = (points_m - np.array(cam["position_m"], float)) @ rot.T
    return k[0][0] * p[:, 0] / p[:, 2] + k[0][2], k[1][1] * p[:, 1] / p[:, 2] + k[1][2], p[:, 2]


TRUTH_CAMERAS = [
    # (spec fields, frame time): partner straight in front, offset either way, a fixed steep pitch, landscape
    ({"camera": {"distance_m": 2.0, "height_m": 1.4}}, 0.0),
    ({"camera": {"distance_m": 1.5, "height_m": 1.2, "partner_offset_m": 0.5}}, 2.0),
    ({"camera": {"distance_m": 2.5, "height_m": 1.5, "partner_offset_m": -1.0, "pitch_deg": -15.0}}, 1.0),
    ({"resolution_wh": [640, 360],
      "camera": {"distance_m": 3.0, "height_m": 1.3, "partner_offset_m": 1.0}}, 3.0),
    ({"resolution_wh": [640, 360], "camera": {"distance_m": 4.0, "height_m": 2.0, "partner_offset_m": 2.0,
                                              "pitch_deg": -30.0}}, 0.5),
]  # fmt: skip


@pytest.mark.parametrize(("fields", "t"), TRUTH_CAMERAS)
def test_ground_from_the_truth_camera_projects_like_the_truth(fields: dict[str, Any], t: float) -> None:
    spec = {"duration_s": 4.0, "walker": {"speed_mps": 0.8}, **fields}
    wh = tuple(spec.get("resolution_wh", (360, 640)))
    cam, k, heel_z = truth_camera(spec, t)
    ground = ground_from_truth(cam, k, heel_z, (wh[0], wh[1]))
    if fields["camera"].get("partner_offset_m", 0.0) == 0.0:
        assert ground.heading == pytest.approx(0.0, abs=1e-6)  # the path is the line of sight
    x, d = (
        a.ravel() for a in np.meshgrid(np.linspace(-2.0, 2.0, 9), [-0.8, 0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0])
    )
    pts = np.column_stack([x, np.zeros_like(x), heel_z + d])  # walker x is world X, d runs along +Z
    u_true, v_true, z = truth_pixels(cam, k, pts)
    keep = (z > 0.2) & (np.abs(u_true - k[0][2]) < 3 * wh[0]) & (np.abs(v_true - k[1][2]) < 3 * wh[1])
    assert keep.sum() >= 40
    u, v = ground.to_image(x[keep], d[keep])
    err = np.hypot(u - u_true[keep], v - v_true[keep])
    assert float(err.max()) < 0.5, (
        f"worst {err.max():.3f} px at x={x[keep][err.argmax()]}, d={d[keep][err.argmax()]}"
    )
    # ...and the ground seen at the truth's pixels is the point that was projected
    gx, gd = ground.to_walker(u_true[keep], v_true[keep])
    assert np.abs(gx - x[keep]).max() < 0.005 and np.abs(gd - d[keep]).max() < 0.005
    assert ground.distance_m == pytest.approx(math.hypot(cam["position_m"][0], heel_z - cam["position_m"][2]))


def test_the_walkers_left_is_the_images_right() -> None:
    """+x in the walker frame is the walker's left: the camera's right, the right half of the image."""
    cam, k, heel_z = truth_camera({"camera": {"distance_m": 2.0, "height_m": 1.4}}, 0.0)
    ground = ground_from_truth(cam, k, heel_z, (360, 640))
    (u_left, u_right), _ = ground.to_image([0.5, -0.5], [1.0, 1.0])
    assert u_left > ground.cx > u_right


GROUNDS = [
    # pitch (deg, down), heading (deg), height (m), heel in the level frame (m)
    (0.0, 0.0, 1.4, (0.0, 2.0)),
    (8.0, 0.0, 1.4, (0.0, 2.1)),
    (12.0, 25.0, 1.3, (0.1, 2.3)),
    (30.0, -30.0, 2.0, (-0.3, 1.5)),
    (-5.0, 10.0, 0.9, (0.2, 3.5)),
    (45.0, 40.0, 2.2, (0.0, 1.0)),
]


def make_ground(pitch_deg: float, heading_deg: float, height: float, heel: tuple[float, float]) -> Ground:
    f = focal_px((360, 640), 65.0)
    return Ground(
        f, 179.5, 319.5, math.radians(pitch_deg), height, heel, math.radians(heading_deg), (360, 640)
    )


@pytest.mark.parametrize(("pitch", "heading", "height", "heel"), GROUNDS)
def test_to_walker_inverts_to_image_on_the_ground(
    pitch: float, heading: float, height: float, heel: tuple[float, float]
) -> None:
    g = make_ground(pitch, heading, height, heel)
    x, d = (a.ravel() for a in np.meshgrid(np.linspace(-3, 3, 13), np.linspace(-1.0, 10.0, 23)))
    u, v = g.to_image(x, d)
    front = np.isfinite(u) & np.isfinite(v)
    assert front.sum() > 100
    bx, bd = g.to_walker(u[front], v[front])
    np.testing.assert_allclose(bx, x[front], atol=1e-6)
    np.testing.assert_allclose(bd, d[front], atol=1e-6)
    # the other way: pixels below the horizon are ground that projects back to them
    us, vs = np.meshgrid(np.linspace(0, 359, 10), np.linspace(g.horizon_v() + 5, 639, 10))
    gx, gd = g.to_walker(us.ravel(), vs.ravel())
    below = vs.ravel() > g.horizon_v() + 1
    bu, bv = g.to_image(gx[below], gd[below])
    np.testing.assert_allclose(bu, us.ravel()[below], atol=1e-6)
    np.testing.assert_allclose(bv, vs.ravel()[below], atol=1e-6)


def test_to_walker_with_several_pitches_is_each_pitch_in_turn() -> None:
    g = make_ground(15.0, 10.0, 1.4, (0.2, 2.0))
    u, v = g.to_image([-0.5, 0.0, 0.7], [1.0, 3.0, 6.0])
    pitches = np.radians([13.0, 15.0, 17.5])
    xs, ds = g.to_walker(u, v, pitches)
    assert xs.shape == ds.shape == (3, 3)
    for k, p in enumerate(pitches):
        x, d = dataclasses.replace(g, pitch=float(p)).to_walker(u, v)
        np.testing.assert_allclose(xs[k], x)
        np.testing.assert_allclose(ds[k], d)
    np.testing.assert_allclose(g.to_walker(u, v, math.radians(15.0))[1][0], [1.0, 3.0, 6.0], atol=1e-9)


@pytest.mark.parametrize("pitch_error_deg", [-2.3, 0.4, 3.1])
def test_the_flow_finds_the_pitch_and_the_turn_under_which_the_ground_moved_alike(
    pitch_error_deg: float,
) -> None:
    """Ground points that moved 6 cm along the path and 1 cm across, seen in the second frame with a pitch
    off by `pitch_error_deg` and a walker frame turned by 1.2 deg: the search finds both, and says None
    when the error lies beyond its span."""
    truth = make_ground(18.0, 5.0, 1.4, (0.1, 2.2))
    rng = np.random.default_rng(3)
    x0, d0 = rng.uniform(-1.0, 1.0, 60), rng.uniform(0.3, 3.0, 60)
    turn = math.radians(1.2)
    # where the points are now, in the second frame's (turned) walker frame
    x1, d1 = x0 - 0.01, d0 - 0.06
    xt, dt = x1 * math.cos(turn) + d1 * math.sin(turn), -x1 * math.sin(turn) + d1 * math.cos(turn)
    u, v = truth.to_image(xt, dt)
    body = dataclasses.replace(truth, pitch=truth.pitch + math.radians(pitch_error_deg))

    def pitched(p: np.ndarray) -> tuple[np.ndarray, ...]:
        return body.to_walker(u, v, p)

    found = _most_alike(pitched, x0, d0, body.pitch, math.radians(4.0))
    assert found is not None and math.degrees(found - truth.pitch) == pytest.approx(0.0, abs=0.05)
    assert _most_alike(pitched, x0, d0, body.pitch, math.radians(abs(pitch_error_deg) / 2)) is None
    xp, dp = (a[0] for a in truth.to_walker(u, v, [found]))

    def turned(a: np.ndarray) -> tuple[np.ndarray, ...]:
        cs, sn = np.cos(a)[:, None], np.sin(a)[:, None]
        return xp * cs - dp * sn, xp * sn + dp * cs

    back = _most_alike(turned, x0, d0, 0.0, math.radians(3.0))
    assert back is not None and math.degrees(back) == pytest.approx(1.2, abs=0.05)


@pytest.mark.parametrize(("pitch", "heading", "height", "heel"), GROUNDS)
def test_the_horizon_is_where_far_ground_goes_and_the_sky_is_not_ground(
    pitch: float, heading: float, height: float, heel: tuple[float, float]
) -> None:
    g = make_ground(pitch, heading, height, heel)
    far = 1e5  # along the camera's line of sight (heading rotated back), so it is in front of the camera
    h = math.radians(heading)
    _, v = g.to_image([-far * math.sin(h)], [far * math.cos(h)])
    assert float(v[0]) == pytest.approx(g.horizon_v(), abs=0.05)
    x, d = g.to_walker([0.0, 179.5, 359.0], [g.horizon_v() - 3] * 3)
    assert np.isnan(x).all() and np.isnan(d).all()
    # a point far behind the camera has no pixel
    u, v = g.to_image([0.0], [-(math.hypot(*heel) + 10.0) / max(math.cos(h), 0.5)])
    assert np.isnan(u).all() and np.isnan(v).all()


@pytest.mark.parametrize(("pitch", "heading", "height", "heel"), GROUNDS[:4])
def test_homography_agrees_with_to_image(
    pitch: float, heading: float, height: float, heel: tuple[float, float]
) -> None:
    g = make_ground(pitch, heading, height, heel)
    hmat = g.homography((-1.0, 1.0), (1.0, 4.0))
    x, d = (a.ravel() for a in np.meshgrid(np.linspace(-2, 2, 9), np.linspace(0.0, 6.0, 13)))
    u, v = g.to_image(x, d)
    p = hmat @ np.vstack([x, d, np.ones_like(x)])
    ok = np.isfinite(u) & (p[2] > 0)
    assert ok.sum() > 50
    # the rectangle's corners are fitted in float32: thousandths of a pixel inside it, a little more outside
    err = np.hypot(p[0][ok] / p[2][ok] - u[ok], p[1][ok] / p[2][ok] - v[ok])
    inside = (np.abs(x[ok]) <= 1.0) & (d[ok] >= 1.0) & (d[ok] <= 4.0)
    assert float(err[inside].max()) < 0.01
    assert float(err.max()) < 0.05


def test_homography_refuses_ground_behind_the_camera() -> None:
    g = make_ground(8.0, 0.0, 1.4, (0.0, 2.0))
    with pytest.raises(ValueError, match="behind the camera"):
        g.homography((-1.0, 1.0), (-5.0, 4.0))


# ------------------------------------------------------------------------------------- the solver

F = focal_px((360, 640), 65.0)
CY = 319.5
EYE_H = EYE_HEIGHT_RATIO * 1.70


def rows_seen(camera_h: float, distance: float, pitch: float, eye_h: float = EYE_H) -> tuple[float, float]:
    """(contact row, eye row) of a vertical body `distance` m away on the ground, camera pitched down by
    `pitch` rad: a point h m up is at atan((camera_h - h) / distance) below the horizontal."""
    contact = CY + F * math.tan(math.atan(camera_h / distance) - pitch)
    eyes = CY + F * math.tan(math.atan((camera_h - eye_h) / distance) - pitch)
    return contact, eyes


@pytest.mark.parametrize("camera_h", [0.9, 1.2, 1.4, 1.6, 1.8])
@pytest.mark.parametrize("distance", [1.5, 2.5, 4.0, 6.0])
def test_solve_pitch_distance_recovers_the_camera(camera_h: float, distance: float) -> None:
    for pitch_deg in (-5.0, 0.0, 8.0, 15.0, 30.0):
        contact, eyes = rows_seen(camera_h, distance, math.radians(pitch_deg))
        theta, dist = solve_pitch_distance(F, CY, contact, eyes, EYE_H, camera_h)
        assert math.degrees(theta) == pytest.approx(pitch_deg, abs=0.01), pitch_deg
        assert dist == pytest.approx(distance, rel=1e-3), pitch_deg


def test_solve_pitch_distance_is_monotone() -> None:
    """A walker further away gives a longer distance; for the same rows, a higher camera must be pitched
    further down and stands nearer (the body's two rows fix the angles between them)."""
    pitch = math.radians(8.0)
    dists = [
        solve_pitch_distance(F, CY, *rows_seen(1.4, d, pitch), EYE_H, 1.4)[1]
        for d in np.arange(1.5, 6.01, 0.25)
    ]
    assert all(b > a for a, b in itertools.pairwise(dists))
    contact, eyes = rows_seen(1.4, 2.5, pitch)
    solved = [solve_pitch_distance(F, CY, contact, eyes, EYE_H, h) for h in np.arange(0.8, 2.01, 0.05)]
    pitches = [s[0] for s in solved]
    assert all(b > a for a, b in itertools.pairwise(pitches))
    assert all(math.isfinite(s[1]) and 1.0 < s[1] < 4.0 for s in solved)


HIGH_AND_CLOSE = [(2.2, 1.5, 30.0), (2.0, 1.0, 40.0), (2.2, 1.25, 35.0)]  # camera m, distance m, pitch deg


@pytest.mark.parametrize(("camera_h", "distance", "pitch_deg"), HIGH_AND_CLOSE)
def test_a_phone_held_high_and_close_sees_the_walker_head_to_toe(
    camera_h: float, distance: float, pitch_deg: float
) -> None:
    contact, eyes = rows_seen(camera_h, distance, math.radians(pitch_deg))
    assert 0 <= eyes < contact <= 639  # a real framing: the case below is one a partner can produce


@pytest.mark.parametrize(("camera_h", "distance", "pitch_deg"), HIGH_AND_CLOSE)
def test_solve_pitch_distance_with_a_phone_held_high_and_close(
    camera_h: float, distance: float, pitch_deg: float
) -> None:
    contact, eyes = rows_seen(camera_h, distance, math.radians(pitch_deg))
    theta, dist = solve_pitch_distance(F, CY, contact, eyes, EYE_H, camera_h)
    assert dist > 0
    assert math.degrees(theta) == pytest.approx(pitch_deg, abs=0.1)
    assert dist == pytest.approx(distance, rel=0.01)


# ------------------------------------------------------------------------------------ body rows


def pose_with(points: dict[int, tuple[float, float, float]]) -> Pose:
    xy = np.full((N_LANDMARKS, 2), 0.5, np.float32)
    vis = np.zeros(N_LANDMARKS, np.float32)
    for i, (x, y, s) in points.items():
        xy[i] = (x, y)
        vis[i] = s
    return Pose(xy, vis)


STANDING = {
    L_EYE: (0.52, 0.10, 0.99),
    R_EYE: (0.48, 0.10, 0.99),
    L_TOE: (0.54, 0.90, 0.9),
    R_TOE: (0.46, 0.92, 0.9),
}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, (0.92 * 640, 0.10 * 640, 0.50 * 360)),  # the stance (lower) toe is the contact; feet centred
        ({R_TOE: (0.46, 0.92, 0.1)}, (0.90 * 640, 0.10 * 640, 0.54 * 360)),  # one toe hidden: the other
        ({L_TOE: (0.54, 0.9, 0.1), R_TOE: (0.46, 0.92, 0.1)}, None),  # feet not seen
        ({L_EYE: (0.52, 0.1, 0.1), R_EYE: (0.48, 0.1, 0.2)}, None),  # eyes not seen
        ({L_TOE: (0.54, 0.14, 0.9), R_TOE: (0.46, 0.14, 0.9)}, None),  # toes and eyes nearly on one row
        ({L_TOE: (0.54, 1.2, 0.9), R_TOE: (0.46, 1.2, 0.9)}, None),  # feet well below the frame
    ],
)
def test_body_rows(change: dict[int, tuple[float, float, float]], expected: tuple[float, ...] | None) -> None:
    rows = body_rows(pose_with({**STANDING, **change}), (360, 640))
    if expected is None:
        assert rows is None
    else:
        assert rows == pytest.approx(expected, abs=1e-3)


def seen_from(x_m: float, z_m: float, camera_h: float, pitch: float, stature: float = 1.70) -> Pose:
    """A walker standing upright x_m to the right of the camera's level forward axis and z_m along it, seen
    by a portrait camera camera_h up and pitched down by `pitch` rad: each point projected by the pinhole."""
    f, cx, cy, w, h = F, 179.5, CY, 360, 640
    sp, cp = math.sin(pitch), math.cos(pitch)

    def px(dx: float, up: float, dz: float) -> tuple[float, float, float]:
        rel_y, z = up - camera_h, z_m + dz
        zc = cp * z - sp * rel_y
        yc = -cp * rel_y - sp * z
        return (cx + f * (x_m + dx) / zc) / w, (cy + f * yc / zc) / h, 0.99

    eye, hip, shoulder = EYE_HEIGHT_RATIO * stature, HIP_HEIGHT_RATIO * stature, 0.82 * stature
    return pose_with(
        {
            L_EYE: px(0.03, eye, 0.0),
            R_EYE: px(-0.03, eye, 0.0),
            L_SHOULDER: px(0.2, shoulder, 0.0),
            R_SHOULDER: px(-0.2, shoulder, 0.0),
            L_HIP: px(0.1, hip, 0.0),
            R_HIP: px(-0.1, hip, 0.0),
            L_TOE: px(0.1, 0.0, -0.05),
            R_TOE: px(-0.1, 0.0, -0.05),
        }
    )


@pytest.mark.parametrize("x_m", [0.0, 1.0, -1.5])
def test_a_walker_off_the_frames_centre_is_placed_where_they_stand(x_m: float) -> None:
    """An image row fixes a ground point's depth along the camera's forward axis, not its range: a walker
    1-1.5 m to the side of the frame's centre was once put 5-10% too near (every obstacle behind them then
    too far, its time to contact too long)."""
    z_m, pitch = 3.0, math.radians(12.0)
    tracker = GroundTracker(GroundConfig(camera_height_m=1.4, walker_height_m=1.70))
    g = None
    for _ in range(5):
        g = tracker.update(seen_from(x_m, z_m, 1.4, pitch), (360, 640))
    assert g is not None
    toe = np.array([x_m, z_m - 0.05])
    heel = toe * (1 + HEEL_BEHIND_TOE_M / float(np.hypot(*toe)))
    assert g.heel_cam == pytest.approx(tuple(heel), abs=0.03)
    assert math.degrees(g.pitch) == pytest.approx(12.0, abs=0.3)


def test_a_walker_lost_and_found_starts_the_geometry_afresh() -> None:
    """Whoever comes back after the walker was lost may stand elsewhere and walk another way: no median of
    the old distances, no old walking direction, no old idea of how tall they look."""
    tracker = GroundTracker()
    for _ in range(10):
        tracker.update(seen_from(0.0, 3.0, 1.4, math.radians(12.0)), (360, 640))
        tracker.update_heading(0.4, 0.6)
    assert tracker.heading == pytest.approx(0.4)
    PathWatcher(ground=tracker).reset()
    assert tracker.heading == 0.0
    g = tracker.update(seen_from(0.0, 2.0, 1.4, math.radians(18.0)), (360, 640))
    assert g is not None and g.heel_cam[1] == pytest.approx(2.0 - 0.05 + HEEL_BEHIND_TOE_M, abs=0.05)


def test_bent_thighs_hold_the_distance_until_reset() -> None:
    """A squat: hip-to-knee shrinks against eye-to-hip (the thighs point at the camera). The tracker then
    takes no distance from the body (its ruler is short), and forgets the longest thigh it saw on reset."""
    tracker = GroundTracker()
    standing = {
        **STANDING,
        L_HIP: (0.53, 0.50, 0.9),
        R_HIP: (0.47, 0.50, 0.9),
        L_KNEE: (0.53, 0.72, 0.9),
        R_KNEE: (0.47, 0.72, 0.9),
    }
    squat = {**standing, L_KNEE: (0.53, 0.58, 0.9), R_KNEE: (0.47, 0.58, 0.9)}

    def bent(points: dict[int, tuple[float, float, float]]) -> bool:
        return tracker._thighs_bent(pose_with(points), (360, 640), 0.10 * 640, 0.50 * 640)  # eye, hip rows

    assert not bent(standing)
    assert bent(squat)
    assert not bent({**standing, L_KNEE: (0.53, 0.5, 0.1)})  # a knee unseen
    tracker.reset()
    assert not bent(squat)  # the first seen is the longest yet


def test_walking_direction_is_the_direction_of_the_summed_ground_velocities() -> None:
    tracker = GroundTracker()
    for m in (0.40, 0.42, 0.44, 0.46):
        tracker.update_heading(m, 0.6)
    assert tracker.heading == 0.0  # four measurements are not enough to turn the corridor
    tracker.update_heading(0.41, 0.6)
    assert tracker.heading == pytest.approx(0.426, abs=1e-3)
    # A scatter symmetric about 0.46 rad (26 deg) reads 0.46, also where its high tail passes 45 deg: a
    # median of angles cut at 45 deg read low there.
    tracker = GroundTracker()
    for m in (0.46 - 0.35, 0.46 + 0.35, 0.46, 0.46 - 0.2, 0.46 + 0.2):
        tracker.update_heading(m, 0.6)
    assert tracker.heading == pytest.approx(0.46, abs=0.02)
    # A faster measurement weighs more; one walking sideways (beyond 70 deg) is bad flow and dropped.
    tracker.update_heading(0.2, 6.0)
    assert tracker.heading < 0.3
    before = tracker.heading
    for _ in range(10):
        tracker.update_heading(math.radians(80), 0.6)
    assert tracker.heading == pytest.approx(before)
    # However far the measurements, the corridor turns at most 45 deg.
    tracker = GroundTracker()
    for _ in range(10):
        tracker.update_heading(math.radians(60), 0.6)
    assert tracker.heading == pytest.approx(MAX_HEADING)


# ------------------------------------------------------------------- the tracker on rendered frames


@dataclass
class RenderedPoses:
    spec: dict[str, Any]
    poses: list[Pose | None]
    cameras: list[dict[str, Any]]
    heel_z: list[float]
    k: list[list[float]]

    @property
    def wh(self) -> tuple[int, int]:
        w, h = self.spec["resolution_wh"]
        return int(w), int(h)

    def distance(self, i: int) -> float:
        pos = self.cameras[i]["position_m"]
        return math.hypot(pos[0], self.heel_z[i] - pos[2])


def render_poses(fields: dict[str, Any]) -> RenderedPoses:
    spec = parse_spec(fields)
    renderer = Renderer(spec, clips_dir())
    scene = Scene(spec)
    estimator = PoseEstimator(num_poses=1)
    poses: list[Pose | None] = []
    cameras = []
    heels = []
    try:
        for k in range(spec.frame_count):
            fr = renderer.frame(k)
            rgb = np.asarray(cv2.cvtColor(fr.bgr, cv2.COLOR_BGR2RGB), np.uint8)
            people = estimator.detect(rgb, round(k * 1000 / spec.fps))
            poses.append(people[0] if people else None)
            cameras.append(fr.pose.to_json())
            heels.append(scene.heel_z(k / spec.fps))
    finally:
        estimator.close()
    k_mat = Intrinsics.for_frame(spec.resolution_wh, spec.camera.fov_long_side_deg).matrix().tolist()
    return RenderedPoses(spec.to_json(), poses, cameras, heels, k_mat)


PORTRAIT = {
    "name": "portrait",
    "duration_s": 1.0,
    "fps": 15,
    "seed": 4,
    "walker": {"speed_mps": 0.6, "height_m": 1.70},
    "camera": {"distance_m": 2.0, "height_m": 1.4, "shake_deg": 0.5, "shake_m": 0.005},
}
LANDSCAPE = {
    "name": "landscape",
    "resolution_wh": [640, 360],
    "duration_s": 1.0,
    "fps": 15,
    "seed": 9,
    "walker": {"speed_mps": 0.8, "height_m": 1.75},
    "camera": {"distance_m": 3.0, "height_m": 1.3, "partner_offset_m": 0.5},
    "ground": {"texture": "paving"},
}


@pytest.fixture(scope="module")
def portrait() -> RenderedPoses:
    return render_poses(PORTRAIT)


@pytest.fixture(scope="module")
def landscape() -> RenderedPoses:
    return render_poses(LANDSCAPE)


def track(
    scene: RenderedPoses, config: GroundConfig, phone_pitch: bool | list[float] = False
) -> list[tuple[int, Ground]]:
    """The tracked ground per frame; `phone_pitch` True gives the tracker the camera's true elevation, a
    list gives it these readings."""
    tracker = GroundTracker(config)
    out = []
    for i, pose in enumerate(scene.poses):
        if pose is None:
            continue
        pitch = (
            phone_pitch[i]
            if isinstance(phone_pitch, list)
            else scene.cameras[i]["pitch_deg"]
            if phone_pitch
            else None
        )
        g = tracker.update(pose, scene.wh, pitch)
        if g is not None:
            out.append((i, g))
    assert len(out) >= 0.9 * len(scene.poses), f"ground found in {len(out)} of {len(scene.poses)} frames"
    return out


def priors_of(scene: RenderedPoses) -> GroundConfig:
    """The user told the app the walker's height and roughly where they hold the phone."""
    return GroundConfig(
        camera_height_m=scene.spec["camera"]["height_m"], walker_height_m=scene.spec["walker"]["height_m"]
    )


@pytest.mark.parametrize("name", ["portrait", "landscape"])
def test_tracker_finds_distance_and_pitch_on_rendered_frames(
    name: str, request: pytest.FixtureRequest
) -> None:
    scene: RenderedPoses = request.getfixturevalue(name)
    for i, g in track(scene, priors_of(scene)):
        truth_d = scene.distance(i)
        truth_pitch = -scene.cameras[i]["pitch_deg"]
        assert g.distance_m == pytest.approx(truth_d, rel=0.10), (
            f"frame {i}: {g.distance_m:.2f} m, truth {truth_d:.2f}"
        )
        assert math.degrees(g.pitch) == pytest.approx(truth_pitch, abs=2.0), f"frame {i}"
        assert g.height_m == pytest.approx(scene.spec["camera"]["height_m"])  # the prior, unchanged


def stepping(scene: RenderedPoses, step_m: float) -> RenderedPoses:
    """The same frames as if the walker stepped (vision.scenario.stepping_pose), rows from the renderer's
    own camera."""
    speed, fps = float(scene.spec["walker"]["speed_mps"]), float(scene.spec["fps"])
    fy, cy = float(scene.k[1][1]), float(scene.k[1][2])
    out = [
        None
        if pose is None
        else stepping_pose(
            pose, scene.cameras[i], fy, cy, scene.wh[1], scene.heel_z[i], speed * i / fps, step_m
        )
        for i, pose in enumerate(scene.poses)
    ]
    return RenderedPoses(scene.spec, out, scene.cameras, scene.heel_z, scene.k)


@pytest.mark.parametrize("step_m", [0.25, 0.4])
def test_a_stepping_walker_does_not_tilt_the_ground(portrait: RenderedPoses, step_m: float) -> None:
    """The planted foot's toe row jumps by a step's length once a step; the pitch follows the hips and the
    distance is a median over a second, so the ground stays put (with the pitch from the toes' row it was off
    by 1.9-2.9 deg here, which moves ground 5 m behind the walker by over a metre; now 0.7 deg at most)."""
    scene = stepping(portrait, step_m)
    for i, g in track(scene, priors_of(scene)):
        truth_pitch = -scene.cameras[i]["pitch_deg"]
        assert math.degrees(g.pitch) == pytest.approx(truth_pitch, abs=1.5), f"frame {i}"
        assert g.distance_m == pytest.approx(scene.distance(i), abs=step_m / 2 + 0.15), f"frame {i}"


def test_phone_pitch_makes_up_for_a_wrong_camera_height(landscape: RenderedPoses) -> None:
    """The phone held at 1.3 m while the app assumes 1.4 m (and a 1.70 m walker for a 1.75 m one): the
    gravity sensor's pitch pins the geometry and the camera's height comes out of it."""
    wrong = GroundConfig(camera_height_m=1.4, walker_height_m=1.70)
    for i, g in track(landscape, wrong, phone_pitch=True):
        truth_d = landscape.distance(i)
        assert g.distance_m == pytest.approx(truth_d, rel=0.10), f"frame {i}"
        assert math.degrees(g.pitch) == pytest.approx(-landscape.cameras[i]["pitch_deg"], abs=2.0)
        assert g.height_m == pytest.approx(1.3, abs=0.1), f"frame {i}"
    # without the sensor the wrong prior stays: the height above really came from the pitch
    assert all(g.height_m == 1.4 for _, g in track(landscape, wrong))


def test_a_phones_tilt_with_its_errors_still_measures_the_cameras_height(landscape: RenderedPoses) -> None:
    """As above, with what a phone's tilt sensor really reports: a degree off for the whole walk (either
    way), a wobble at the partner's steps, noise, and 50 ms late. The height is a median over frames, so the
    wobble and the noise go; the bias stays and moves it the way it should (a degree at 3 m is 5.5 cm),
    around the 1.275 m that the 1.70 m stature prior gives this 1.75 m walker with an exact sensor; the
    1.4 m prior (what the image alone uses) would be out of bounds. Distances hold to 10%."""
    wrong = GroundConfig(camera_height_m=1.4, walker_height_m=1.70)
    true_pitch = [float(c["pitch_deg"]) for c in landscape.cameras]
    readings = simulated_pitch(true_pitch, 15.0, seed=3, model=TiltModel(bias_deg=0.0))
    medians = {}
    for bias_deg in (-1.0, 1.0):
        tracked = track(landscape, wrong, phone_pitch=[r + bias_deg for r in readings])
        for i, g in tracked:
            assert g.distance_m == pytest.approx(landscape.distance(i), rel=0.10), f"frame {i}"
            assert g.height_m == pytest.approx(1.275, abs=0.1), f"frame {i}, bias {bias_deg}"
        medians[bias_deg] = statistics.median(g.height_m for _, g in tracked)
    # the camera taken to look higher than it does puts it lower: the readings, not the prior, set it
    assert medians[-1.0] - medians[1.0] == pytest.approx(0.11, abs=0.04), medians


def test_the_walkers_own_height_sets_the_scale(landscape: RenderedPoses) -> None:
    """The body is the ruler: every distance scales with the stature taken for the walker, and with the
    phone's tilt so does the camera's height. A 1.75 m walker taken for 1.70 m puts the phone 3 cm low;
    told their height mid-walk, the tracker starts again from it: the phone's height is right and the
    distances grow by 1.75 / 1.70."""
    true_pitch = [float(c["pitch_deg"]) for c in landscape.cameras]
    tracker = GroundTracker(GroundConfig(walker_height_m=1.70))
    seen: list[tuple[int, float, float]] = []
    for i, pose in enumerate(landscape.poses):
        if pose is None:
            continue
        if i == 6:
            tracker.set_walker_height(1.75)
        g = tracker.update(pose, landscape.wh, true_pitch[i])
        if g is not None:
            seen.append((i, g.distance_m / landscape.distance(i), g.height_m))
    before = [x for x in seen if x[0] < 6]
    after = [x for x in seen if x[0] >= 6]
    assert before and after
    assert all(h < 1.285 for *_, h in before), before
    assert all(h == pytest.approx(1.3, abs=0.015) for *_, h in after), after
    scale = statistics.median(r for _, r, _ in after) / statistics.median(r for _, r, _ in before)
    assert scale == pytest.approx(1.75 / 1.70, abs=0.01)


def test_tracked_ground_lands_the_corridor_where_the_truth_does(portrait: RenderedPoses) -> None:
    """The whole ground model at once: the corridor's corners, heels to 3 m back, projected by the tracked
    Ground and by the truth camera, agree to a few percent of the frame (partner straight in front)."""
    x = np.array([-0.375, 0.375, -0.375, 0.375, 0.0])
    d = np.array([0.0, 0.0, 3.0, 3.0, 1.5])
    worst = 0.0
    for i, g in track(portrait, priors_of(portrait)):
        cam = portrait.cameras[i]
        pts = np.column_stack([x, np.zeros_like(x), portrait.heel_z[i] + d])
        u_true, v_true, _ = truth_pixels(cam, portrait.k, pts)
        u, v = g.to_image(x, d)
        worst = max(worst, float(np.hypot(u - u_true, v - v_true).max()))
    assert worst < 0.03 * portrait.wh[1], f"worst corner {worst:.1f} px off"


# ---------------------------------------------------------------------- a crouch on real footage


def test_a_squat_does_not_move_the_walker() -> None:
    """Real footage: a woman squats facing a static camera. Her eye-to-toe height shrinks by a third in
    each squat, which read as a ruler would put her 50% further away; the tracker holds the distance while
    she is not upright, and the ground does not flow, so she is not walking."""
    frames = read_frames(WALKER_CLIP)
    pipeline = Pipeline()
    distances, speeds, spans = [], [], []
    try:
        for i, frame in enumerate(frames):
            a = pipeline.process(frame, i * 200)  # the clip runs at 5 fps
            assert not [h for h in a.hazards if h.kind != "path_hidden"], f"frame {i}: {a.hazards}"
            if a.path:
                distances.append(a.path["distance_m"])
                if a.path["walker_speed_mps"] is not None:
                    speeds.append(a.path["walker_speed_mps"])
            if a.walker is not None:
                rows = body_rows(a.walker, a.frame_wh)
                if rows is not None:
                    spans.append(rows[0] - rows[1])
    finally:
        pipeline.close()
    assert len(distances) >= 0.9 * len(frames)
    assert min(spans) < 0.8 * max(spans), "the clip should show squats"  # else this test proves nothing
    first = distances[0]
    assert all(abs(d - first) <= 0.15 * first for d in distances), (first, min(distances), max(distances))
    assert max(speeds) < PathConfig().moving_mps


def test_the_tilt_is_current_only_while_the_phone_sends_it(landscape: RenderedPoses) -> None:
    """GroundTracker.tilt_current: heights measured from the tilt, and still being measured. A phone that
    stops sending its tilt leaves its old height in use (height_measured), but not as current once 15
    frames have passed without a reading; it is current again after 15 new readings. (The scene's frames
    are played over and over.)"""
    tracker = GroundTracker(GroundConfig(camera_height_m=1.4, walker_height_m=1.70))
    poses = [(i, p) for i, p in enumerate(landscape.poses) if p is not None]
    current = []
    for n in range(60):
        i, pose = poses[n % len(poses)]
        sends = n < 20 or n >= 40  # the tilt for 20 frames, none for 20, then again
        tracker.update(pose, landscape.wh, landscape.cameras[i]["pitch_deg"] if sends else None)
        current.append(tracker.tilt_current)
        if n == 39:
            assert tracker.height_measured
    assert current[:10] == [False] * 10  # fewer than 15 readings yet
    assert current[19]
    assert not any(current[36:40])  # more than 15 frames since the last reading
    assert current[-1]
