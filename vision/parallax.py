"""Plane parallax: how far above or below the walker's ground level a region lies: a band across the path
and the ground beyond it (paint or kerb, `PathConfig.flat_veto`), or a thing's footprint (a bench's seat or a
car's bumper overhangs the ground, `PathConfig.raised_fix`).

A painted line and a kerb stone look alike from above: a light band across the path. What tells them
apart is height. Between an earlier frame and this one the camera has moved with the pair; a point on the
walker's ground plane moves in the image as the plane's motion says, a point a height h above it moves
more, along the same line, by h / (H - h) of that motion (H: the camera's height), and a point h below
less, by -h / (H + h). That share is this module's reading: 0 for paint and shade on the ground, about
+0.1 for the top of a 12 cm kerb, about -0.08 for the road 12 cm down beyond a kerb's edge.

Method, on frames at most 640 px long, the earlier one 0.35-1.2 s back (the walker's last 0.4 m):

1. **The camera's motion.** Plain ground between the walker and the band, placed in 3-D on this frame's
   ground plane, is tracked into the earlier frame (Lucas-Kanade on the finest pyramid levels, from where
   the walker's measured speed puts it: paving repeats every brick, and from no guess the pyramid matched
   the wrong brick, 39 px off on a generated scene). That ground alone leaves the camera's turn and its
   shift confused (a patch a metre deep behind the walker's legs fits many poses to 0.3 px that disagree by
   1-2 px further on), so distant points just above the horizon, which move with the turn alone, are
   tracked too, and the pose fits both (robust Gauss-Newton from `cv2.solvePnPRansac` on the ground); then
   the plane's pitch is freed as well, with the body's pitch as a prior 1.5 deg wide: the body's pitch is
   off by about 3 deg for every 0.1 m that the camera-height prior is off.
2. **The share.** For each region (the band, the ground beyond it), every sampled pixel is placed on the
   fitted ground plane and moved with the camera's translation scaled by 1 + s; the share s is the one
   under which the earlier frame matches this one best over the whole region (a search over s, then a
   parabola), which uses every pixel's texture rather than a few tracked corners. Pixels whose place in
   the earlier frame lies on or near the walker's body are left out: the walker moves with the camera, so
   ground just beside the legs now was behind them then, and read like a thing moving with the pair
   (-0.14 to -0.34 on plain ground, the partner straight in front).

The weak part is still the plane. On the generated suite, with the scene's own camera height as the
prior, the stop line and the road beyond it read -0.006 and the road beyond a kerb down -0.09; with the
prior 0.1 m low the kerb down reads -0.046, near paint's +0.03, and with it 0.1 m high a step up's top
reads lower, like a drop (figures: docs/obstacles.md). That is why PathConfig.flat_veto, which uses these
readings, is off; with the height measured from the phone's tilt the plane is right to within the tilt's own
bias, and 2 degrees of it move the readings by about 0.04, the kerb down's margin: off too. A reading costs
about 33 ms. A footprint's reading is used only within 3.5 m of the heels and when it is clearly raised
(+0.15 or more): there the plane's error is a few hundredths.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np
import numpy.typing as npt

from vision.ground import Ground

F64 = npt.NDArray[np.float64]
NO_DISTORTION = np.zeros(4)
PIXEL_NOISE = 0.5  # px: a tracked ground point's error, to weigh the pitch prior against the points


@dataclass(frozen=True)
class ParallaxConfig:
    store_every_s: float = 0.09  # frames are kept this often...
    keep_s: float = 1.2  # ...this long...
    long_side_px: int = 640  # ...and at most this long (a phone's 1280 px frame is halved)
    travel_m: float = 0.4  # the earlier frame: the walker's last this far (parallax grows with the baseline)
    min_baseline_s: float = 0.35
    min_eig: float = 3e-5  # a tracked point's least eigenvalue (cv2.cornerMinEigenVal, 7 px): it has texture
    lk_window_px: int = 15  # 21 and 31 px read the same scenes 2-5 times noisier (pose from the ground alone)
    min_ground_points: int = 15
    max_ground_points: int = 300
    min_far_points: int = 20
    horizon_strip: float = 0.15  # far points: this share of the frame's height above the horizon
    share_range: tuple[float, float] = (-0.3, 0.5)
    pitch_prior_deg: float = 1.5  # sd of the fitted pitch's prior, which is the body's pitch
    max_tilt_deg: float = 10.0  # the fitted plane's pitch this far from the body's: no reading
    min_region_px: int = 40  # textured pixels a region needs for a reading
    max_region_px: int = 1200
    body_margin_px: int = 4  # region pixels whose earlier place is this near the walker's body are left out


@dataclass(frozen=True)
class LevelFrame:
    """One kept frame: grey at `scale` of the original, its ground geometry, and which top-down cells were
    plain ground then (`plain`, the path stage's grid)."""

    t_s: float
    gray: npt.NDArray[np.uint8]
    scale: float
    ground: Ground
    plain: npt.NDArray[np.bool_]

    # Computed once per kept frame: a frame is the earlier end of every reading for a second.
    @cached_property
    def smooth(self) -> npt.NDArray[np.float32]:
        """The grey blurred (sigma 1 px), as the share's matching samples it."""
        return np.asarray(cv2.GaussianBlur(self.gray.astype(np.float32), (0, 0), 1.0), np.float32)

    @cached_property
    def texture(self) -> npt.NDArray[np.float32]:
        """Each pixel's least eigenvalue (cv2.cornerMinEigenVal, 7 px block): how well it can be tracked."""
        return np.asarray(cv2.cornerMinEigenVal(self.gray, 7, ksize=3), np.float32)


class LevelFrames:
    """The last second or so of frames, for the earlier end of a parallax measurement. Bounded: at most
    keep_s / store_every_s + 1 frames (14 at 640 x 480: 4.3 MB)."""

    def __init__(self, config: ParallaxConfig | None = None) -> None:
        self.config = config or ParallaxConfig()
        self._frames: deque[LevelFrame] = deque()

    def add(
        self, t_s: float, bgr: npt.NDArray[np.uint8], ground: Ground, plain: npt.NDArray[np.bool_]
    ) -> LevelFrame:
        """This frame, as a measurement's later end; kept as an earlier end if one is due."""
        c = self.config
        h, w = bgr.shape[:2]
        scale = min(1.0, c.long_side_px / max(h, w))
        small = (
            bgr
            if scale == 1.0
            else cv2.resize(bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        )
        gray = np.asarray(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
        frame = LevelFrame(t_s, gray, scale, ground, plain)
        if not self._frames or t_s - self._frames[-1].t_s >= c.store_every_s - 1e-6:
            self._frames.append(frame)
        while self._frames and t_s - self._frames[0].t_s > c.keep_s:
            self._frames.popleft()
        return frame

    def earlier(self, t_s: float, speed_mps: float) -> LevelFrame | None:
        """The kept frame nearest to `travel_m` of walking back, at least `min_baseline_s` old."""
        c = self.config
        if speed_mps <= 0:
            return None
        want = min(max(c.travel_m / speed_mps, c.min_baseline_s), c.keep_s)
        old = [f for f in self._frames if t_s - f.t_s >= c.min_baseline_s - 1e-6]
        return min(old, key=lambda f: abs(t_s - f.t_s - want)) if old else None

    def clear(self) -> None:
        self._frames.clear()


def _sample(img: npt.NDArray[np.float32], uv: F64) -> npt.NDArray[np.float32]:
    m = uv.astype(np.float32).reshape(-1, 1, 2)
    out = cv2.remap(img, m[:, :, 0], m[:, :, 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(out, np.float32).ravel()


class _Camera:
    """This frame's camera at `scale`: pixels, and 3-D points on its ground plane (x right, y down, z on)."""

    def __init__(self, ground: Ground, scale: float) -> None:
        self.f = ground.f * scale
        self.k = np.array(
            [
                [self.f, 0, (ground.cx + 0.5) * scale - 0.5],
                [0, self.f, (ground.cy + 0.5) * scale - 0.5],
                [0, 0, 1.0],
            ]
        )
        self.ground, self.scale = ground, scale

    def pixels(self, x: F64, d: F64) -> F64:
        u, v = self.ground.to_image(x, d)
        return (np.stack([u, v], axis=1) + 0.5) * self.scale - 0.5

    def on_ground(self, uv: F64, tilt: float = 0.0) -> F64:
        """(n, 3) points where the pixels' rays meet the ground plane, pitched `tilt` radians more than this
        frame's geometry says; NaN rows at or above the horizon."""
        rays = np.concatenate([(uv - self.k[:2, 2]) / self.f, np.ones((len(uv), 1))], axis=1)
        pitch = self.ground.pitch + tilt
        with np.errstate(divide="ignore", invalid="ignore"):
            down = math.cos(pitch) * rays[:, 1] + math.sin(pitch) * rays[:, 2]
            lam = np.where(down > 1e-3, self.ground.height_m / down, np.nan)
        return np.asarray(rays * lam[:, None], np.float64)


def _project(pts: F64, pose: F64, k: F64, t_scale: float = 1.0) -> F64:
    return np.asarray(
        cv2.projectPoints(pts, pose[:3], pose[3:] * t_scale, k, NO_DISTORTION)[0].reshape(-1, 2), np.float64
    )


def _track(
    now: npt.NDArray[np.uint8],
    then: npt.NDArray[np.uint8],
    pts: F64,
    guess: F64 | None,
    levels: int,
    window: int,
) -> tuple[F64, npt.NDArray[np.bool_]]:
    """Lucas-Kanade from `now` into `then`, kept where tracking back lands within 0.3 px."""
    p = pts.astype(np.float32).reshape(-1, 1, 2)
    crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01)
    flags = 0 if guess is None else cv2.OPTFLOW_USE_INITIAL_FLOW
    start = (p if guess is None else guess).astype(np.float32).reshape(-1, 1, 2)
    p1, s1, _ = cv2.calcOpticalFlowPyrLK(
        now,
        then,
        p,
        start,
        winSize=(window, window),
        maxLevel=levels,
        criteria=crit,
        flags=flags,
    )
    pb, s2, _ = cv2.calcOpticalFlowPyrLK(
        then,
        now,
        p1,
        p.copy(),
        winSize=(window, window),
        maxLevel=levels,
        criteria=crit,
        flags=cv2.OPTFLOW_USE_INITIAL_FLOW,
    )
    back = np.hypot(*(pb - p).reshape(-1, 2).T)
    ok = (s1.ravel() == 1) & (s2.ravel() == 1) & (back < 0.3)
    return np.asarray(p1.reshape(-1, 2), np.float64), ok


def _robust_gauss_newton(
    residuals: Callable[[F64], F64], q: F64, iterations: int = 12, priors: int = 0
) -> F64:
    """Least squares from `q` with a numerical Jacobian, residuals past twice their median's scale weighted
    down (the ground's points include some on the walker's shadow or a mistracked brick), except the last
    `priors` residuals, which are weighted fully."""
    for _ in range(iterations):
        r0 = residuals(q)
        jac = np.empty((len(r0), len(q)))
        for i in range(len(q)):
            step = np.zeros(len(q))
            step[i] = 1e-5
            jac[:, i] = (residuals(q + step) - r0) / 1e-5
        a = np.abs(r0)
        data = a[: len(a) - priors]
        weight = np.minimum(1.0, 2.0 * (1.4826 * float(np.median(data)) + 1e-3) / np.maximum(a, 1e-9))
        weight[len(a) - priors :] = 1.0
        jw = jac * weight[:, None]
        try:
            delta = -np.linalg.solve(jw.T @ jac + 1e-9 * np.eye(len(q)), jw.T @ r0)
        except np.linalg.LinAlgError:
            break
        q = q + delta
        if np.abs(delta).max() < 1e-9:
            break
    return q


def _fit_motion(
    cam: _Camera, ground_uv: F64, ground_obs: F64, rays: F64, far_obs: F64, pose: F64, pitch_prior_deg: float
) -> tuple[F64, float]:
    """The earlier camera's pose (Rodrigues rotation, translation) and the ground plane's pitch, from the
    ground points and the far points (rays at infinity: only the rotation moves them).

    First the pose with the plane as this frame's geometry has it, then the pitch freed as well. The pitch
    from the walker's body is off by about 3 deg for every 0.1 m that the camera-height prior is off
    (6.5 deg on the suite's step up, with the phone at 1.2 m), and a plane pitched wrong reads the ground
    beyond a band as a step; fitted here, it came within 0.2-1 deg of the truth."""
    zero = np.zeros(3)

    def far(q: F64) -> F64:
        seen = cv2.projectPoints(rays, q[:3], zero, cam.k, NO_DISTORTION)[0].reshape(-1, 2)
        return np.asarray(seen, np.float64).ravel() - far_obs.ravel()

    pts = cam.on_ground(ground_uv)
    pose = _robust_gauss_newton(
        lambda q: np.concatenate([(_project(pts, q, cam.k) - ground_obs).ravel(), far(q)]), pose
    )

    # The body's pitch as a prior, `pitch_prior_deg` wide: behind a walker seen straight on, the ground
    # left beside the legs pinned the pitch no better than +-4 deg (the car park).
    prior = PIXEL_NOISE * math.sqrt(len(ground_uv)) / math.radians(pitch_prior_deg)

    def with_pitch(q: F64) -> F64:
        moved = _project(cam.on_ground(ground_uv, float(q[6])), q[:6], cam.k) - ground_obs
        out = np.concatenate([moved.ravel(), far(q), [prior * q[6]]])
        return np.asarray(np.nan_to_num(out, nan=1e3), np.float64)

    q = _robust_gauss_newton(with_pitch, np.concatenate([pose, [0.0]]), 15, priors=1)
    return q[:6], float(q[6])


def level_shares(
    now: LevelFrame,
    then: LevelFrame,
    travel_m: float,
    before_xd: tuple[F64, F64],
    regions_xd: list[tuple[F64, F64]],
    body: npt.NDArray[np.float32] | None = None,
    config: ParallaxConfig | None = None,
) -> list[float] | None:
    """Each region's share (see the module's docstring), NaN where a region has too little texture; None
    when the camera's motion cannot be measured (too little textured ground or too few far points).

    `before_xd`: walker-frame (x, d) of plain ground on the walker's level (this frame's, and plain in the
    earlier one too). `regions_xd`: the points to read. `body`: the walker's mask at the original frame's
    size (its pixels are not far points)."""
    c = config or ParallaxConfig()
    cam = _Camera(now.ground, now.scale)
    k = cam.k
    gx, gd = before_xd
    if len(gx) < c.min_ground_points:
        return None
    eig = now.texture
    h, w = now.gray.shape

    def textured(uv: F64) -> npt.NDArray[np.bool_]:
        ok = np.isfinite(uv).all(axis=1)
        u = np.clip(np.nan_to_num(np.rint(uv[:, 0])), 0, w - 1).astype(int)
        v = np.clip(np.nan_to_num(np.rint(uv[:, 1])), 0, h - 1).astype(int)
        return np.asarray(ok & (eig[v, u] >= c.min_eig))

    # 1. The camera's motion from the ground between the walker and the band...
    uv = cam.pixels(gx, gd)
    # In the earlier frame's walker frame: its walking direction may differ (the line of sight until the
    # ground's flow is measured, 14-18 deg off with the partner half a metre aside), and the ground was
    # `travel_m` further back.
    a = then.ground.heading - now.ground.heading
    ca, sa = math.cos(a), math.sin(a)
    guess = _Camera(then.ground, then.scale).pixels(gx * ca - gd * sa, gx * sa + gd * ca + travel_m)
    use = textured(uv) & np.isfinite(guess).all(axis=1)
    if use.sum() < c.min_ground_points:
        return None
    pick = np.nonzero(use)[0]
    if len(pick) > c.max_ground_points:  # evenly over the region, which the points list row by row
        pick = pick[np.linspace(0, len(pick) - 1, c.max_ground_points).astype(int)]
    uv, guess = uv[pick], guess[pick]
    pts = cam.on_ground(uv)
    obs, ok = _track(now.gray, then.gray, uv, guess, 1, c.lk_window_px)
    ok &= np.isfinite(pts).all(axis=1)
    if ok.sum() < c.min_ground_points:
        return None
    pts, obs = pts[ok], obs[ok]
    found, rvec, tvec, inliers = cv2.solvePnPRansac(
        pts, obs, k, NO_DISTORTION, reprojectionError=1.0, iterationsCount=100
    )
    if not found or inliers is None or len(inliers) < 12:
        return None
    pts, obs = pts[inliers.ravel()], obs[inliers.ravel()]
    uv_in = uv[ok][inliers.ravel()]
    # ...and from distant points just above the horizon, off the walker's body.
    horizon = (now.ground.horizon_v() + 0.5) * now.scale - 0.5
    top, bottom = max(0, int(horizon - c.horizon_strip * h)), min(h, int(horizon + 0.01 * h))
    if bottom - top < 5:
        return None
    fv, fu = np.nonzero(eig[top:bottom] >= c.min_eig)
    fv += top
    if body is not None and len(fu):
        bu = np.clip(((fu + 0.5) / now.scale - 0.5).astype(int), 0, body.shape[1] - 1)
        bv = np.clip(((fv + 0.5) / now.scale - 0.5).astype(int), 0, body.shape[0] - 1)
        away = cv2.dilate((body > 0.35).astype(np.uint8), np.ones((15, 15), np.uint8))[bv, bu] == 0
        fu, fv = fu[away], fv[away]
    if len(fu) < c.min_far_points:
        return None
    pick = np.linspace(0, len(fu) - 1, min(300, len(fu))).astype(int)
    far = np.stack([fu[pick], fv[pick]], axis=1).astype(np.float64)
    far_obs, ok = _track(now.gray, then.gray, far, None, 3, c.lk_window_px)
    if ok.sum() < c.min_far_points:
        return None
    rays = np.concatenate([(far[ok] - k[:2, 2]) / cam.f, np.ones((int(ok.sum()), 1))], axis=1)
    pose, tilt = _fit_motion(
        cam, uv_in, obs, rays, far_obs[ok], np.concatenate([rvec.ravel(), tvec.ravel()]), c.pitch_prior_deg
    )
    if abs(tilt) > math.radians(c.max_tilt_deg):
        return None  # not a plane near the one the body gives: nothing to trust

    # 2. Each region's share, by matching the earlier frame over all its pixels.
    img_now, img_then = now.smooth, then.smooth
    # The walker moves with the camera, so their body covers about the same pixels in both frames; ground
    # seen now beside it was, in the earlier frame, partly behind it, and matched there it reads like a
    # thing moving with the pair. Ground whose earlier place falls on or near the body is left out.
    on_body = None
    if body is not None and c.body_margin_px > 0:
        small = cv2.resize((body > 0.35).astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
        size = 2 * c.body_margin_px + 1
        on_body = cv2.dilate(small, np.ones((size, size), np.uint8)).astype(bool)
    out = []
    for rx, rd in regions_xd:
        ruv = cam.pixels(rx, rd)
        keep = textured(ruv)
        if on_body is not None and keep.any():
            was = _project(cam.on_ground(ruv[keep], tilt), pose, k)
            wu = np.clip(np.nan_to_num(np.rint(was[:, 0])), 0, w - 1).astype(int)
            wv = np.clip(np.nan_to_num(np.rint(was[:, 1])), 0, h - 1).astype(int)
            keep[np.nonzero(keep)[0][on_body[wv, wu]]] = False
        if keep.sum() < c.min_region_px:
            out.append(math.nan)
            continue
        ruv = ruv[keep]
        if len(ruv) > c.max_region_px:
            ruv = ruv[np.linspace(0, len(ruv) - 1, c.max_region_px).astype(int)]
        rp = cam.on_ground(ruv, tilt)
        here = _sample(img_now, ruv)

        def cost(s: float, rp: F64 = rp, here: npt.NDArray[np.float32] = here) -> float:
            r = _sample(img_then, _project(rp, pose, k, 1.0 + s)) - here
            r -= np.median(r)  # the light may change a little between the frames
            return float(np.mean(np.minimum(r * r, 400.0)))

        out.append(_search(cost, *c.share_range))
    return out


def _search(cost: Callable[[float], float], lo: float, hi: float) -> float:
    """The minimum of `cost` over [lo, hi]: steps of 0.04, then 0.01 around the best, then a parabola."""
    coarse = np.arange(lo, hi + 1e-9, 0.04)
    best = float(coarse[int(np.argmin([cost(float(s)) for s in coarse]))])
    fine = np.arange(best - 0.04, best + 0.04 + 1e-9, 0.01)
    costs = [cost(float(s)) for s in fine]
    i = int(np.argmin(costs))
    s = float(fine[i])
    if 0 < i < len(fine) - 1:
        a, b, c = costs[i - 1], costs[i], costs[i + 1]
        if a - 2 * b + c > 0:
            s += 0.01 * 0.5 * (a - c) / (a - 2 * b + c)
    return s
