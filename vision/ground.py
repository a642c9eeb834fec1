"""The ground behind the walker, in metres, from the walker's pose.

The partner's camera looks at a walker who stands on the ground and faces it. Two rows of the walker's
body pin the camera's geometry: the toes touch the ground and the eyes are at a known share of a
person's stature (anthropometry: eye height is 0.936 of stature). With the camera's focal length (a
phone's field of view) and one more number, either the camera's height (a prior: a phone held at chest
to face height, 1.2-1.5 m) or the phone's own pitch (from its gravity sensor, when the page sends it),
the camera's pitch, its distance to the walker and its height follow. A walker steps, though: the lower
toe belongs to the planted foot, which stays put while the body moves on and then hands over to the other
foot a step away, so the toe row jumps once a step. The distance is therefore a median over a second of
frames, and each frame's pitch (which follows the hand's shake) comes from the hips, which move with the
body. The ground plane is then known, and every ground point has an image position.

Walker frame (metres): origin on the ground at the walker's heels; `d` runs backwards along the walking
direction (the way the walker goes, away from the camera), `x` across it, positive to the camera's right,
which is the walker's LEFT (the walker faces the camera).

The walking direction is not the camera's line of sight when the partner walks offset to one side; it is
the direction in which the ground flows past the pair. `GroundTracker` measures it from the ground's
optical flow (the walker and the partner move together, so the ground moves by minus their velocity).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from vision.types import (
    L_EYE,
    L_HIP,
    L_KNEE,
    L_SHOULDER,
    L_TOE,
    R_EYE,
    R_HIP,
    R_KNEE,
    R_SHOULDER,
    R_TOE,
    Pose,
)

MAX_HEADING = math.radians(45.0)  # a partner 1.5 m to the side of a walker 1.5 m away
MAX_MEASURED_HEADING = math.radians(70.0)  # one flow measurement further off is the walker turning, or noise
UPRIGHT_SHARE = 0.95  # eye-to-toe over shoulder width below this share of the tallest lately: not upright
# Hip-to-knee over eye-to-hip (image rows) below this share of the longest lately: the thighs are bent
# towards the camera, a crouch or a squat, even when eye-to-toe passes the test above. On the real squat clip
# the ratio falls from 0.55 to 0.12 in a squat, and half the frames count as bent. Walking frames count too
# at times: 11-17% in the real corridor clips, 6% of the real treadmill runner's, none of the rendered
# suite's (a stride swings a thigh towards the camera); their distance is not taken, and the median of the
# others holds it.
THIGH_SHARE = 0.8

EYE_HEIGHT_RATIO = 0.936  # eye height / stature (adult anthropometric tables)
# MediaPipe's hip points mark the hip joints: the tables put the greater trochanter at 0.53 of stature and
# the joint a little below; on the one person we can measure (the suite's walker) the points sit at 0.48.
# With 0.50 the generated suite warned the same share in time, and one hazard fewer under a simulated gait
# (measured before the walker's place was taken as a depth; not measured since).
HIP_HEIGHT_RATIO = 0.52
# The toes touch the ground, and MediaPipe places its toe points well in a frontal view; the heels and
# ankles are hidden behind the feet and land several centimetres off (on the generated scenes, with the
# heels or ankles as contact, the pitch came out 1 deg steep and distances 13% short).
TOE_HEIGHT_M = 0.0
HEEL_BEHIND_TOE_M = 0.15  # a foot is about 0.25 m; MediaPipe's toe point sits back from the tip


@dataclass(frozen=True)
class GroundConfig:
    fov_long_side_deg: float = 65.0  # a phone's main camera: 63-70 deg across the long side
    camera_height_m: float = 1.4  # prior when the phone's pitch is not known
    walker_height_m: float = 1.70  # prior: adult stature
    distance_window: int = 15  # frames (a second at the path stage's rate) whose median is the distance:
    # the toe row jumps a step's length each step, the pair's distance changes slowly
    # GroundTracker.tilt_current: this many heights from the tilt, the last this many frames ago at most
    # (about 1 s at 15 frames a second)
    tilt_current_readings: int = 15
    tilt_current_frames: int = 15
    height_window: int = 45  # frames whose median is the camera's height when the phone's pitch is known:
    # each frame's solution carries the toe row's jump and the sensor's noise, the hand's height drifts slowly


@dataclass(frozen=True)
class Ground:
    """One frame's camera geometry relative to the walker. Angles in radians.

    `pitch`: camera pitched down by this much (positive down). `height_m`: camera above the ground.
    `heel_cam`: the heel point on the ground in the camera-level frame (X right, Z forward, metres).
    `heading`: walking direction as an angle from the camera's forward axis, towards +X.
    `heading_measured`: that direction comes from the ground's flow, not the line of sight to the walker.
    """

    f: float
    cx: float
    cy: float
    pitch: float
    height_m: float
    heel_cam: tuple[float, float]
    heading: float
    frame_wh: tuple[int, int]
    heading_measured: bool = False

    @property
    def distance_m(self) -> float:
        return math.hypot(*self.heel_cam)

    def _axes(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        s, c = math.sin(self.heading), math.cos(self.heading)
        return np.array([c, -s]), np.array([s, c])  # x axis, d axis in (X, Z)

    def camera_foot(self) -> tuple[float, float]:
        """Walker-frame (x, d) of the ground point under the camera."""
        x, d = self.level_to_walker(np.zeros(1), np.zeros(1))
        return float(x[0]), float(d[0])

    def level_to_walker(self, X: npt.ArrayLike, Z: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], ...]:
        """Walker-frame (x, d) of camera-level points (X right, Z forward): `walker_to_level` undone."""
        ax, ad = self._axes()
        dx, dz = np.asarray(X, float) - self.heel_cam[0], np.asarray(Z, float) - self.heel_cam[1]
        return dx * ax[0] + dz * ax[1], dx * ad[0] + dz * ad[1]

    def walker_to_level(self, x: npt.ArrayLike, d: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], ...]:
        ax, ad = self._axes()
        x, d = np.asarray(x, float), np.asarray(d, float)
        return self.heel_cam[0] + x * ax[0] + d * ad[0], self.heel_cam[1] + x * ax[1] + d * ad[1]

    def to_image(self, x: npt.ArrayLike, d: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], ...]:
        """Pixel (u, v) of ground points; v is NaN where the point is behind or level with the camera."""
        X, Z = self.walker_to_level(x, d)
        sp, cp = math.sin(self.pitch), math.cos(self.pitch)
        Y = -self.height_m  # camera-level frame, Y up
        zc = Z * cp - Y * sp  # forward axis (0, -sin, cos) dotted with (X, Y, Z)
        yc = -Y * cp - Z * sp  # down axis (0, -cos, -sin)
        with np.errstate(divide="ignore", invalid="ignore"):
            ok = zc > 0.05
            u = np.where(ok, self.f * X / zc + self.cx, np.nan)
            v = np.where(ok, self.f * yc / zc + self.cy, np.nan)
        return u, v

    def to_walker(
        self, u: npt.ArrayLike, v: npt.ArrayLike, pitch: npt.ArrayLike | None = None
    ) -> tuple[npt.NDArray[np.float64], ...]:
        """Walker-frame (x, d) of the ground seen at pixels (u, v); NaN above the horizon. `pitch`: place
        them as seen with each of these pitches instead (k of them give arrays of shape (k, len(u)))."""
        u, v = np.asarray(u, float), np.asarray(v, float)
        rx, ry = (u - self.cx) / self.f, (v - self.cy) / self.f
        p = self.pitch if pitch is None else np.atleast_1d(np.asarray(pitch, float))[:, None]
        sp, cp = np.sin(p), np.cos(p)
        # ray in the level frame: right rx, up (-ry*cp - sp), forward (cp - ry*sp)
        up = -ry * cp - sp
        fwd = cp - ry * sp
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.where(up < -1e-3, self.height_m / -up, np.nan)
        return self.level_to_walker(rx * s, fwd * s)

    def homography(self, xs: tuple[float, float], ds: tuple[float, float]) -> npt.NDArray[np.float64]:
        """3x3 matrix taking walker-frame ground points (x, d, 1) to image pixels, exact for the plane."""
        import cv2

        gx = [xs[0], xs[1], xs[1], xs[0]]
        gd = [ds[0], ds[0], ds[1], ds[1]]
        u, v = self.to_image(gx, gd)
        if not (np.isfinite(u).all() and np.isfinite(v).all()):
            raise ValueError("ground rectangle reaches behind the camera")
        src = np.stack([gx, gd], axis=1).astype(np.float32)
        dst = np.stack([u, v], axis=1).astype(np.float32)
        return np.asarray(cv2.getPerspectiveTransform(src, dst), dtype=np.float64)

    def horizon_v(self) -> float:
        return self.cy - self.f * math.tan(self.pitch)


def focal_px(frame_wh: tuple[int, int], fov_long_side_deg: float) -> float:
    return max(frame_wh) / 2.0 / math.tan(math.radians(fov_long_side_deg) / 2.0)


def body_rows(pose: Pose, frame_wh: tuple[int, int]) -> tuple[float, float, float] | None:
    """(toe row, eye row, feet column) in pixels, or None when the feet or eyes are not seen."""
    w, h = frame_wh
    vis = pose.visibility
    heels = [i for i in (L_TOE, R_TOE) if vis[i] >= 0.3]
    eyes = [i for i in (L_EYE, R_EYE) if vis[i] >= 0.3]
    if not heels or not eyes:
        return None
    heel_v = float(max(pose.xy[i, 1] for i in heels)) * h  # the stance foot is the lower one
    heel_u = float(np.mean([pose.xy[i, 0] for i in heels])) * w
    eye_v = float(np.mean([pose.xy[i, 1] for i in eyes])) * h
    if heel_v - eye_v < 0.1 * h or heel_v > h * 1.02:
        return None
    return heel_v, eye_v, heel_u


def solve_pitch_distance(
    f: float, cy: float, contact_v: float, eye_v: float, eye_h: float, camera_h: float
) -> tuple[float, float]:
    """Pitch (down, rad) and horizontal distance to the contact point from two rows of a vertical body
    whose eyes are `eye_h` above the contact point, for a camera `camera_h` above it.

    With A and B the depression angles of the contact and eye rays (A - B = a - b = d, fixed by the
    rows), tan A = h / D and tan B = (h - eye_h) / D give h = eye_h sin A cos B / sin d
    = eye_h / 2 (1 + sin(A + B) / sin d), so A + B = asin((2 h / eye_h - 1) sin d). The implied height
    rises with the pitch only while A + B < 90 deg (an earlier bisection assumed it always did and
    failed for a phone held high and close); of the two solutions the one with the mean ray less than
    45 deg down is taken (the other puts the camera nearly above the walker). A height the rows cannot
    give is clamped to the largest they can."""
    a = math.atan((contact_v - cy) / f)
    b = math.atan((eye_v - cy) / f)
    d = a - b
    s = (2.0 * camera_h / eye_h - 1.0) * math.sin(d)
    theta = (math.asin(max(-1.0, min(1.0, s))) - a - b) / 2.0
    depression = max(theta + a, 1e-3)
    return theta, camera_h / math.tan(depression)


class GroundTracker:
    """Keeps the walker-relative ground from frame to frame: distance smoothed, pitch per frame (the hand
    shakes), walking direction from the ground's flow (set by the caller through `update_heading`)."""

    def __init__(self, config: GroundConfig | None = None) -> None:
        self.config = config or GroundConfig()
        self.heading = 0.0  # walking direction relative to the line of sight to the walker, rad
        self._headings: deque[tuple[float, float]] = deque(maxlen=30)  # ground velocities, m/s
        self._tall_aspect = 0.0
        self._long_thigh = 0.0
        self._distances: deque[float] = deque(maxlen=self.config.distance_window)
        self._heights: deque[float] = deque(maxlen=self.config.height_window)
        self._since_height: int | None = None  # frames since the last height from the phone's tilt
        self._stature_prior = self.config.walker_height_m

    def update(
        self, pose: Pose, frame_wh: tuple[int, int], phone_pitch_deg: float | None = None
    ) -> Ground | None:
        rows = body_rows(pose, frame_wh)
        if rows is None:
            return None
        contact_v, eye_v, heel_u = rows
        c = self.config
        f = focal_px(frame_wh, c.fov_long_side_deg)
        cx, cy = (frame_wh[0] - 1) / 2.0, (frame_wh[1] - 1) / 2.0
        toe_h = TOE_HEIGHT_M
        eye_h = EYE_HEIGHT_RATIO * c.walker_height_m - toe_h
        a = math.atan((contact_v - cy) / f)
        b = math.atan((eye_v - cy) / f)
        # The body is a ruler only while it stands tall: a crouch, a squat or a bow shortens it. Its
        # height against its shoulder width (which a crouch keeps) and its thighs' length say whether it
        # does; while it does not, the distance is held (the pair moves together, so it changes slowly
        # anyway). On the real squat clip, half-way down the first test passed and the distance read 5% far.
        hips_seen = pose.visibility[L_HIP] >= 0.3 and pose.visibility[R_HIP] >= 0.3
        hip_v = float(pose.xy[L_HIP, 1] + pose.xy[R_HIP, 1]) / 2.0 * frame_wh[1]
        bent = hips_seen and self._thighs_bent(pose, frame_wh, eye_v, hip_v)
        upright = self._upright(pose, frame_wh, contact_v - eye_v) and not bent
        added = (
            upright and phone_pitch_deg is not None and self._add_height(phone_pitch_deg, a, b, eye_h, toe_h)
        )
        if added:
            self._since_height = 0
        elif self._since_height is not None:
            self._since_height += 1
        height = float(np.median(self._heights)) if self._heights else c.camera_height_m
        _, dist = solve_pitch_distance(f, cy, contact_v, eye_v, eye_h, height - toe_h)
        if upright or not self._distances:
            self._distances.append(dist)
        distance = float(np.median(self._distances))
        # This frame's pitch follows the hand's shake: from the hips, which move with the body (the toes'
        # row jumps with each step: on the generated suite with a simulated gait of 0.25-0.45 m steps, a
        # pitch from the toes warned 0-8% of hazards in time, from the hips 46-62%).
        theta = math.atan2(height - toe_h, distance) - a
        if hips_seen:
            hip_h = HIP_HEIGHT_RATIO * c.walker_height_m
            theta = math.atan2(height - hip_h, distance) - math.atan((hip_v - cy) / f)
        # the walker's place on the ground: the distance above is its depth along the camera's level forward
        # axis (an image row fixes depth, not range), sideways as the feet's column says (the walker need
        # not be centred); the heels are a little further back
        rx = (heel_u - cx) / f
        sp, cp = math.sin(theta), math.cos(theta)
        z = distance
        x = z * rx / max(cp - ((contact_v - cy) / f) * sp, 1e-3)
        back = HEEL_BEHIND_TOE_M / max(math.hypot(x, z), 1e-3)
        heel = (x * (1 + back), z * (1 + back))
        los = math.atan2(heel[0], heel[1])
        return Ground(
            f=f,
            cx=cx,
            cy=cy,
            pitch=theta,
            height_m=height,
            heel_cam=heel,
            heading=los + self.heading,
            frame_wh=frame_wh,
            heading_measured=self.heading_measured,
        )

    def _add_height(self, phone_pitch_deg: float, a: float, b: float, eye_h: float, toe_h: float) -> bool:
        """The camera's height this frame from the phone's pitch (its camera's elevation, degrees, up
        positive) and the angles below the optical axis of the toes (`a`) and eyes (`b`), rad: the eyes
        are `eye_h` above the toes, so the pitch fixes the distance and with it the height. Kept for the
        median; a reading the body cannot agree with (the phone held flat, a pose gone wrong) is not."""
        if not -60 < phone_pitch_deg < 30:
            return False
        theta = -math.radians(phone_pitch_deg)
        denom = math.tan(theta + a) - math.tan(theta + b)
        if denom <= 1e-3:
            return False
        height = toe_h + eye_h / denom * math.tan(theta + a)
        if not 0.5 < height < 2.5:
            return False
        self._heights.append(height)
        return True

    def _upright(self, pose: Pose, frame_wh: tuple[int, int], eye_to_toe_px: float) -> bool:
        sw = abs(float(pose.xy[L_SHOULDER, 0] - pose.xy[R_SHOULDER, 0])) * frame_wh[0]
        if sw < 4:
            return True  # side-on: no width to compare with; assume standing
        aspect = eye_to_toe_px / sw
        self._tall_aspect = max(aspect, self._tall_aspect * 0.998)  # the tallest lately, slowly forgotten
        return aspect >= UPRIGHT_SHARE * self._tall_aspect

    def _thighs_bent(self, pose: Pose, frame_wh: tuple[int, int], eye: float, hip: float) -> bool:
        """The thighs are bent towards the camera (THIGH_SHARE), from the eye and hip rows (px) the caller
        has. False when an eye or a knee is not seen (the caller checks the hips)."""
        vis = pose.visibility
        if min(vis[L_EYE], vis[R_EYE], vis[L_KNEE], vis[R_KNEE]) < 0.3:
            return False
        knee = float(pose.xy[L_KNEE, 1] + pose.xy[R_KNEE, 1]) / 2.0 * frame_wh[1]
        if hip - eye < 4:
            return True
        thigh = (knee - hip) / (hip - eye)
        self._long_thigh = max(thigh, self._long_thigh * 0.998)  # the longest lately, slowly forgotten
        return thigh < THIGH_SHARE * self._long_thigh

    def update_heading(self, measured: float, speed_mps: float = 1.0) -> None:
        """Take in one measurement of the walking direction (relative to the line of sight, rad) and the
        ground speed it came with. The estimate is the direction of the sum of the last 30 measured ground
        velocities (about four seconds): one measurement spans 0.13 s, so its sideways part is a centimetre
        or two and its direction scatters by 10-15 deg. A median of the angles, each cut at 45 deg, lost
        the high tail of that scatter and read 19-22 deg for a partner 27 deg off (generated suite); summed
        vectors average the scatter out, and faster (surer) measurements weigh more. The 45 deg limit holds
        for the estimate; a single measurement beyond 70 deg is dropped as bad flow."""
        if abs(measured) > MAX_MEASURED_HEADING or not speed_mps > 0:
            return
        self._headings.append((speed_mps * math.sin(measured), speed_mps * math.cos(measured)))
        if len(self._headings) >= 5:
            sx = sum(v[0] for v in self._headings)
            sz = sum(v[1] for v in self._headings)
            self.heading = max(-MAX_HEADING, min(MAX_HEADING, math.atan2(sx, sz)))

    @property
    def heading_measured(self) -> bool:
        """The walking direction comes from the ground's flow, not the line of sight to the walker."""
        return len(self._headings) >= 5

    def set_walker_height(self, height_m: float | None) -> None:
        """The walker's own stature, told by the walker (None: not told, the configured prior): the body is
        the ruler, so every distance (and with the phone's tilt, the camera's height) scales with it. What
        was solved with the old one restarts; the same height again (the walker page sends it on every
        connect) changes nothing."""
        height_m = self._stature_prior if height_m is None else height_m
        if height_m == self.config.walker_height_m:
            return
        self.config = replace(self.config, walker_height_m=height_m)
        self._distances.clear()
        self._heights.clear()

    @property
    def height_measured(self) -> bool:
        """The camera's height comes from the phone's tilt, not the prior."""
        return bool(self._heights)

    @property
    def tilt_current(self) -> bool:
        """The camera's height is being measured from the phone's tilt now: from `tilt_current_readings`
        readings at least, the last within `tilt_current_frames` frames (a phone that stops sending its
        tilt leaves an old height behind, which `height_measured` still reports)."""
        c = self.config
        return (
            len(self._heights) >= c.tilt_current_readings
            and self._since_height is not None
            and self._since_height <= c.tilt_current_frames
        )

    def reset(self) -> None:
        """The walker was lost: whoever comes back may stand elsewhere, be someone else, walk another way."""
        self._distances.clear()  # the camera's heights are kept: the partner's hand is where it was
        self._tall_aspect = self._long_thigh = 0.0
        self._headings.clear()
        self.heading = 0.0
