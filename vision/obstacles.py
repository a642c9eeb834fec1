"""What lies in the walker's path: coverage, obstacles, tracks and hazards, from one camera frame at a time.

Method (pure computation, one `PathWatcher` per stream):

1. **Top-down view.** With the ground known from the walker's pose (`vision.ground`), the frame is warped
   onto a grid of 5 cm ground cells in the walker frame: 4 m across, from 1 m in front of the heels to 8 m
   behind them. A cell is *seen* when its ground point is in the frame, not too near the horizon and not
   behind the walker's body (MediaPipe's segmentation of the walker, warped the same way).
2. **Ground appearance.** The strip just in front of the walker is ground the walker has just walked
   over: clear by construction, and lit like the path. Its colour (CIE Lab, robust median and spread,
   smoothed over time; its lightness taken from the frame itself, as a cloud dims everything at once) is
   the model of "ground". Cells behind the walker that differ from it by many
   spreads are *not ground*: a solid thing standing on the path (which the warp smears away from the
   camera from its base), a kerb stone, a step's nosing, a hole, a person's legs.
3. **Blobs and their base.** Connected groups of not-ground cells; a blob's nearest cells are where it
   meets the ground, so its base gives the distance behind the heels and its extent across the path there
   gives its side. Wide, shallow blobs that cross the whole path are kerbs or steps.
4. **Tracks.** Blobs are tracked by their base; the closing speed is the slope of the base's distance over
   the last second (a least-squares fit, with its standard error), so a pedestrian coming towards the
   walker closes faster than a post, and one walking away does not close at all. Time to contact is
   distance / closing speed, only for tracks in the corridor, seen for long enough, and clearly closing.
5. **Ego-motion.** The ground slides under the pair at the walker's speed, opposite to the walking
   direction. Ground points tracked from frame to frame (Lucas-Kanade) give both, placed with the pitch
   and turned by the turn under which they all moved alike; the direction corrects the corridor when the
   partner walks offset to one side (then the line of sight is not the path).
6. **Coverage.** The corridor (shoulders plus margins, heels to 3 m back) is sampled every 10 cm; the share
   of points seen is the coverage. Low coverage for a while coaches the partner ("half a step to your
   left") and, if the walker keeps moving, tells the walker once that the path behind is not seen. Hidden
   corridor is unknown, never clear.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from vision.ground import Ground, GroundTracker
from vision.parallax import LevelFrames, ParallaxConfig, level_shares
from vision.phrases import COACH_PHRASES, NOTICE_PHRASES
from vision.types import Hazard, Side

PATH_HIDDEN_TEXT = NOTICE_PHRASES["path_hidden"]


@dataclass(frozen=True)
class PathConfig:
    cell_m: float = 0.05
    half_width_m: float = 1.25  # corridor plus what may step into it within a second
    near_m: float = -1.0
    far_m: float = 8.0
    corridor_half_m: float = 0.375  # shoulders 0.45 m plus 0.15 m each side
    corridor_length_m: float = 3.0
    centre_band_m: float = 0.10  # a footprint this near the centreline is "centre"
    anomaly_z: float = 4.5  # spreads from the ground model in lightness to count a cell as not ground
    chroma_z: float = 9.0  # ...in colour (a, b): natural ground varies more in hue than in lightness (grass
    # in two shades metres across raised stop cues on a clear path at 4.5; on the generated suite false
    # alarms on clear paths fell from 10.6 to 4.9 a minute, the same hazards warned in time)
    min_blob_cells: int = 10
    bridge_depth_m: float = 0.25  # pieces whose bases are this close in distance may be one thing...
    bridge_min_width_m: float = 0.3  # ...when each is at least this wide and only hidden cells lie between
    bridge_min_distance_m: float = 0.3  # ...and not at the heels (the walker's feet and shadow are there)
    base_band_m: float = 0.2  # a blob's footprint: its cells this near its base (above it, the warp smears)
    hidden_reach_m: float = 0.3
    corridor_overlap_m: float = 0.05  # a footprint must reach this far into the corridor to be in it
    track_window_s: float = 1.2
    track_min_span_s: float = 0.45
    track_max_gap_s: float = 0.7
    min_closing_mps: float = 0.15
    min_flow_frames: int = 5  # frames of measured ground flow before any obstacle may warn
    min_hits: int = 8  # detections in the fit window before a track may warn
    max_fit_sd_m: float = 0.15  # a track whose base jumps around more than this is not one thing
    min_birth_m: float = 0.9  # nearer than this a new blob is mostly the walker's own feet, shadow or
    # the segmentation's edge; a real obstacle is tracked in from further away
    min_first_warning_m: float = 0.6  # a track first warns from at least this far: nearer, the walker's
    # own shadow and the body mask's edge raised stop cues on clear paths (generated suite), and anything
    # first seen there is at contact already
    own_speed_prior_mps: float = 0.3  # sd of an obstacle's own speed towards the walker, before seeing it
    static_share: float = 0.6  # a track closing slower than this share of the walker's speed is not in
    # the way: static things close at the walker's speed, oncoming ones faster
    coverage_low: float = 0.5
    coverage_ok: float = 0.6
    coverage_low_s: float = 1.5  # low this long: coach the partner
    blind_notice_s: float = 3.0  # low this long while the walker moves: tell the walker once
    flow_mode_radius_m: float = 0.03  # ground points within this of the densest motion are averaged
    flow_min_eig: float = 3e-5  # a ground point has texture when its 13 px window's least eigenvalue
    flow_textured_share: float = 0.3  # (cv2.cornerMinEigenVal) is this high, and the ground's flow is
    # measured only when this share of its points has: on a smooth floor points stuck where they were and
    # read a 0.8 m/s walker as 0.3-0.6 m/s, "standing" at times. The suite's textures give 0.55-1.0 of
    # the points, the smooth floor 0-0.27, the real squat clip's floor 0.33-0.45 (5th-75th percentile;
    # at 0.4 its deepest squats passed for plain and the walker, "unknown", heard the path was hidden)
    flow_window_s: float = 3.0  # tries at measuring the ground's flow are judged over this long, once there
    flow_min_tries: int = 6  # are this many (0.8 s at 15 fps): more than `flow_plain_share` of them seeing
    flow_plain_share: float = 0.75  # too little textured ground (texture test, too few points seen or
    flow_known_share: float = 0.5  # tracked) and the walker's motion is unknown, until under this share.
    # Tries that see texture but no common motion (a squat moves the body's pitch by degrees between frames
    # at 2.5 fps) leave the last speed standing, and so do frames too far apart to try (0.5 s or more). A
    # share, not "any": with no texture test a lone wrong 0.35 m/s let through on a smooth floor silenced a
    # pole's warning for 2 s. The suite's scenes never find the ground plain, the smooth floor's always
    flow_interval_s: float = 0.1  # the ground's flow is measured between frames at least this far apart
    flow_long_side_px: int = 320  # ...on the frame at half size, and at most this long
    pitch_search_deg: float = 4.0  # ...with this frame's pitch looked for this far either side of the body's
    turn_search_deg: float = 3.0  # ...and its walker frame's turn this far either way
    moving_mps: float = 0.3  # walking: older adults walk backwards at 0.45-0.6 m/s
    unknown_heading_deg: float = 15.0  # how far off the walking direction may be while the motion is unknown
    # With `flat_veto`, a band across the path (a "kerb" track) is not warned while it and the ground beyond
    # it read flat by plane parallax (vision.parallax): road paint, a shadow's edge. Flat: over its readings
    # of the last `flat_window_s`, at least `flat_readings`, both medians within `flat_share` of 0 and the
    # ground beyond spread by no more than `flat_spread` (median deviation). Off: the readings are only as
    # good as the ground plane's tilt, which starts from the pitch from the walker's body; turned on for
    # every frame, over twenty camera-height and gait settings false alarms fell only 3.69 -> 3.38 a minute
    # and at one prior a kerb down was warned 0.27 s later, read flat for a while (docs/obstacles.md, "Tried
    # and dropped"). `flat_veto_with_tilt` turns it on only while the camera's height is measured from the
    # phone's tilt (GroundTracker.tilt_current): on the suite, whose simulated sensors are within 1 degree,
    # false alarms fell 3.72 -> 2.48 a minute with no hazard warned later, but a sensor 2 degrees off
    # silenced a kerb down 0.3 s after its first warning. Off until the tilt's bias can be bounded.
    flat_veto: bool = False
    flat_veto_with_tilt: bool = False
    flat_share: float = 0.035
    flat_spread: float = 0.03
    flat_readings: int = 4
    flat_window_s: float = 1.5
    flat_hysteresis: float = 1.5  # a flat verdict stands until the readings pass these limits x this
    level_every_s: float = 0.12  # a band is read at most this often
    beyond_gap_m: float = 0.25  # the ground beyond a band: from this far past its far edge...
    beyond_depth_m: float = 1.5  # ...to this far
    beyond_gap_px: float = 6.0
    # Overhangs: a bench's seat or a car's bumper, 0.2-0.45 m up with nothing seen under it, is placed on
    # the ground 1.2-1.5 times as far from the camera as it is (the warp puts everything on the ground): the
    # suite's bench straight behind was warned 1.1 s before contact, a car's distance read 20-30% long. With
    # `raised_fix`, the footprint of a thing standing still (its cells within `base_band_m` of its base) is
    # read by plane parallax at most every `raised_every_s`; where its last `raised_window_s` of readings, at
    # least `raised_readings`, say it is raised (median share at least `raised_share`, median deviation at
    # most `raised_spread`), its footprint is brought towards the camera by 1 / (1 + share): where a point
    # that high really is. Things standing on the ground read -0.02 to +0.05 at their base (a track's median;
    # a bin beside the path +0.11, single readings scatter by 0.2); a car's bumper 22 cm up +0.18 (theory
    # +0.19), the bench's seat +0.35 to +0.49 (theory +0.42 to +0.52).
    raised_fix: bool = True
    raised_share: float = 0.15
    raised_spread: float = 0.08
    raised_readings: int = 3
    raised_window_s: float = 1.0
    raised_every_s: float = 0.2
    raised_per_frame: int = 1
    raised_beside_m: float = 0.6  # read what stands this near the corridor or in it...
    raised_within_m: float = 3.5  # ...and this near the heels: further back the plane's own error grows (a
    # pitch a degree off reads a kerb down's edge 5 m back as +0.14), and there is time to read it nearer
    raised_closing: tuple[float, float] = (0.7, 1.7)  # ...and closes at this share of the walker's speed: a
    # thing standing still closes at 1 + share of it (the walker's speed, as its footprint is placed further),
    # and a moving thing's own motion would read as height. Readings end at +0.5 (ParallaxConfig.share_range):
    # anything higher than a third of the camera's height (a table top) is brought only part of the way.
    parallax: ParallaxConfig = field(default_factory=ParallaxConfig)


@dataclass
class _Blob:
    base_d: float
    x0: float
    x1: float
    far_d: float
    kind: str
    base_hidden: bool
    cells: npt.NDArray[np.intp]  # its grid cells, as flat indices
    reach0: float  # the footprint carried on through the walker's hidden shadow next to it: where the
    reach1: float  # obstacle may continue unseen


@dataclass
class Track:
    id: int
    kind: str
    history: deque[tuple[float, float, float, float]] = field(default_factory=lambda: deque(maxlen=40))
    reach: tuple[float, float] = (0.0, 0.0)
    hits: int = 0
    last_t: float = 0.0
    closing: float = 0.0  # last fitted closing speed, for the next frame's prediction
    warning: bool = False  # it has been reported as a hazard (and stays one until it is lost)
    cells: npt.NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, np.intp))  # last blob's, flat
    levels: deque[tuple[float, float, float]] = field(
        default_factory=lambda: deque(maxlen=16)
    )  # (t, beyond, band)
    level_t: float = -math.inf  # when it was last read
    flat: bool = False  # its last verdict: read flat (PathConfig.flat_veto)
    lifts: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=12))  # (t, base's share)

    def add(self, t: float, b: _Blob) -> None:
        self.history.append((t, b.base_d, b.x0, b.x1))
        self.reach = (b.reach0, b.reach1)
        self.cells = b.cells
        self.hits += 1
        self.last_t = t
        if b.kind == "kerb":
            self.kind = "kerb"

    def window(self, now: float, span: float) -> list[tuple[float, float, float, float]]:
        return [h for h in self.history if now - h[0] <= span]

    def fit(self, now: float, span: float) -> tuple[float, float, float, float] | None:
        """(distance now, its sd, closing speed, its sd) from a line through the last `span` seconds."""
        pts = self.window(now, span)
        if len(pts) < 4:
            return None
        t = np.array([p[0] for p in pts]) - now
        d = np.array([p[1] for p in pts])
        n, tm, dm = len(t), float(t.mean()), float(d.mean())
        sxx = float(((t - tm) ** 2).sum())
        if sxx <= 1e-9:
            return None
        slope = float(((t - tm) * (d - dm)).sum()) / sxx
        at_now = dm - slope * tm  # the line's value at t = 0, i.e. now
        resid = d - (at_now + slope * t)
        s2 = float(resid @ resid) / max(n - 2, 1) + 0.03**2  # plus the grid's own resolution
        return at_now, math.sqrt(s2 * (1.0 / n + tm * tm / sxx)), -slope, math.sqrt(s2 / sxx)

    def lateral(self, now: float) -> tuple[float, float]:
        pts = self.window(now, 0.5) or list(self.history)[-1:]
        ends = np.array([(p[2], p[3]) for p in pts], np.float64)
        x0, x1 = _median(ends, 0)
        return float(x0), float(x1)


def _towards(v: float, at: float, k: float) -> float:
    """A coordinate brought `k` of the way from `at`: a raised point's footprint, towards the camera's."""
    return at + (v - at) * k


def _median(a: npt.NDArray[np.float64], axis: int) -> npt.NDArray[np.float64]:
    """np.median of finite values along `axis`, to the bit (the middle order statistic, or the mean of the
    two), without np.median's general machinery: that cost more than the partition itself on the small
    arrays here (35 of 44 us a call, 13 calls a frame)."""
    n = a.shape[axis]
    h = n // 2
    if n % 2:
        mid: npt.NDArray[np.float64] = np.take(np.partition(a, h, axis=axis), h, axis=axis)
        return mid
    p = np.partition(a, (h - 1, h), axis=axis)
    mean: npt.NDArray[np.float64] = (np.take(p, h - 1, axis=axis) + np.take(p, h, axis=axis)) / 2
    return mean


def _median_spread(values: list[float]) -> tuple[float, float]:
    """The median of some readings and their median deviation from it."""
    a = np.asarray(values, float)
    mid = float(_median(a, 0))
    return mid, float(_median(np.abs(a - mid), 0))


def _shape_kind(width_m: float, depth_m: float, seen_width_m: float = math.inf) -> str:
    """A blob across (nearly) all the ground seen there and shallow in depth is a kerb or a step's edge."""
    wide = width_m >= min(1.2, 0.8 * seen_width_m)
    return "kerb" if wide and depth_m < 0.8 else "obstacle"


def _quantile(values: npt.NDArray[np.intp], q: float) -> int:
    """The q-quantile of integer indices, by partial sort (cheaper than np.percentile on small arrays)."""
    k = min(int(q * len(values)), len(values) - 1)
    return int(np.partition(values, k)[k])


def _mode_2d(
    dx: npt.NDArray[np.float64], dy: npt.NDArray[np.float64], radius: float, steps: int = 4
) -> tuple[float, float, int]:
    """The densest point of a 2-D cloud (mean shift with a flat kernel from the median) and how many
    points lie within `radius` of it. Ground points all move alike; points stuck to the walker (the edge
    of their body, their shadow) do not move at all and dragged a plain median towards zero."""
    mx, my = float(np.median(dx)), float(np.median(dy))
    for _ in range(steps):
        near = np.hypot(dx - mx, dy - my) <= radius
        if near.sum() < 3:
            break
        mx, my = float(dx[near].mean()), float(dy[near].mean())
    return mx, my, int((np.hypot(dx - mx, dy - my) <= radius).sum())


Placer = Callable[[npt.NDArray[np.float64]], tuple[npt.NDArray[np.float64], ...]]


def _most_alike(
    place: Placer, x0: npt.NDArray[np.float64], d0: npt.NDArray[np.float64], centre: float, span: float
) -> float | None:
    """The parameter within `span` of `centre` under which the points that `place` puts on the ground,
    given k values, as (k, n) arrays of (x, d), moved most alike from (x0, d0): the least median distance
    from the median motion. Coarse (steps of span / 8) to fine (span / 64). None when the best lies at the
    edge of the span (the starting guess is far off, or the points are not the ground)."""
    steps = np.linspace(-span, span, 17)
    for fine in (False, True):
        values = centre + steps
        x1, d1 = place(values)
        placed = np.isfinite(x1).all(axis=0) & np.isfinite(d1).all(axis=0)
        if placed.sum() < 10:
            return None
        dx, dd = x1[:, placed] - x0[placed], d1[:, placed] - d0[placed]
        mx, md = _median(dx, 1)[:, None], _median(dd, 1)[:, None]
        best = int(np.argmin(_median(np.hypot(dx - mx, dd - md), 1)))
        if not fine and best in (0, len(steps) - 1):
            return None
        centre, steps = float(values[best]), steps / 8.0
    return centre


@dataclass(frozen=True)
class PathResult:
    hazards: tuple[Hazard, ...]
    view: dict[str, Any]


class PathWatcher:
    def __init__(self, config: PathConfig | None = None, ground: GroundTracker | None = None) -> None:
        self.config = config or PathConfig()
        self.ground = ground or GroundTracker()
        c = self.config
        self._nx = round(2 * c.half_width_m / c.cell_m)
        self._nd = round((c.far_m - c.near_m) / c.cell_m)
        self._xs = -c.half_width_m + (np.arange(self._nx) + 0.5) * c.cell_m
        self._ds = c.near_m + (np.arange(self._nd) + 0.5) * c.cell_m
        self._gx, self._gd = np.meshgrid(self._xs, self._ds)
        self._front_strip = (self._gd > -0.9) & (self._gd < -0.2) & (np.abs(self._gx) < 1.2)
        self._beside_heels = (
            (self._gd > -0.9) & (self._gd < 0.8) & (np.abs(self._gx) > 0.45) & (np.abs(self._gx) < 1.5)
        )
        self._behind = self._gd > 0.15
        self._flow_region = (self._gd > -0.9) & (self._gd < 3.0) & (np.abs(self._gx) < 1.6)
        self._flow_region[:, 1::2] = False
        self._flow_region[1::2, :] = False
        cx = np.arange(-c.corridor_half_m + 0.05, c.corridor_half_m, 0.1)
        cd = np.arange(0.05, c.corridor_length_m, 0.1)
        self._cov_x, self._cov_d = (a.ravel() for a in np.meshgrid(cx, cd))
        self._ref: npt.NDArray[np.float64] | None = None  # median L, a, b
        self._spread: npt.NDArray[np.float64] | None = None
        self._tracks: list[Track] = []
        self._tracks_heading = 0.0  # the walking direction the tracks' footprints are placed with
        self._next_id = 1
        self._prev: tuple[float, npt.NDArray[np.uint8], Ground, npt.NDArray[np.bool_]] | None = None
        self.speed_mps: float | None = None
        self._flow_frames = 0
        self._flow_tries: deque[tuple[float, bool]] = deque()  # (when, too plain) over the last window
        self.motion_unknown = False
        self._facing: deque[bool] = deque(maxlen=15)
        self._frame_ones: npt.NDArray[np.uint8] | None = None
        self._level_frames = LevelFrames(self.config.parallax)
        self._low_since: float | None = None
        self._ok_since: float | None = None
        self._moving_since: float | None = None
        self._blind = False

    # -- per frame ---------------------------------------------------------------------------------
    def update(
        self,
        bgr: npt.NDArray[np.uint8],
        ground: Ground,
        body: npt.NDArray[np.float32] | None,
        t_s: float,
        facing_camera: bool = True,
    ) -> PathResult:
        """`facing_camera`: the walker shows the camera their front, so they walk backwards and cannot see
        their path. A walker with their back to the camera walks forwards and sees it: no obstacle cues."""
        c = self.config
        self._facing.append(facing_camera)
        h, w = bgr.shape[:2]
        to_ipm = self._ipm_matrix(ground, 1.0)
        size = (self._nx, self._nd)
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        # Sampled from the full frame (a 10 cm pole 6 m away is only 4-5 pixels wide), then turned into
        # Lab on the small top-down grid: the same colours at a fiftieth of the cost.
        top = cv2.warpPerspective(bgr, to_ipm, size, flags=flags)
        ipm = cv2.cvtColor(top, cv2.COLOR_BGR2LAB).astype(np.float32)
        if self._frame_ones is None or self._frame_ones.shape != (h, w):
            self._frame_ones = np.ones((h, w), np.uint8)
        inside = cv2.warpPerspective(
            self._frame_ones, to_ipm, size, flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
        )
        valid = inside.astype(bool)  # the whole grid lies well below the horizon (8 m behind at most)
        hidden = np.zeros_like(valid)
        if body is not None:
            b = cv2.warpPerspective(body, to_ipm, size, flags=flags)
            hidden = cv2.dilate((b > 0.35).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        seen = valid & ~hidden

        self._update_reference(ipm, seen)
        notground = self._not_ground(ipm, seen)
        blobs, labels = self._blobs(notground, hidden, seen)
        self._turn_tracks(self.ground.heading)  # the direction this frame's blobs were placed with
        self._ego_motion(bgr, ground, seen, t_s)
        self._check_motion(t_s)
        self._track(blobs, t_s)
        self._read_levels(bgr, ground, body, seen & ~notground, t_s)
        coverage, by_m, unseen_reason = self._coverage(ground, body, labels, w, h)
        hazards, obstacles = self._hazards(t_s, ground)
        coach_id = self._coach(coverage, unseen_reason, t_s)
        if self._blind:
            hazards.append(Hazard("path_hidden", "advisory", text=PATH_HIDDEN_TEXT, key="path_hidden"))
        corridor = self._corridor_px(ground, w, h)
        view: dict[str, Any] = {
            "coverage": round(coverage, 3),
            "coverage_by_m": [round(x, 3) for x in by_m],
            "coverage_low": self._low_since is not None and t_s - self._low_since >= c.coverage_low_s,
            "coach": COACH_PHRASES.get(coach_id) if coach_id else None,
            "coach_id": coach_id,
            "walker_speed_mps": None if self.speed_mps is None else round(self.speed_mps, 2),
            "motion_known": not self.motion_unknown,
            "heading_deg": round(math.degrees(self.ground.heading), 1),
            "distance_m": round(ground.distance_m, 2),
            "camera_height_m": round(ground.height_m, 2),
            "camera_height_measured": self.ground.height_measured,
            "facing_camera": self._facing_camera(),
            "corridor_px": corridor,
            "obstacles": obstacles,
        }
        return PathResult(tuple(hazards), view)

    def reset(self) -> None:
        """The walker was lost: tracks, the ground flow and the geometry restart when they return."""
        self.ground.reset()
        self._tracks.clear()
        self._tracks_heading = 0.0
        self._level_frames.clear()
        self._prev = None
        self._flow_frames = 0
        self.speed_mps = None
        self._flow_tries.clear()
        self.motion_unknown = False
        self._low_since = self._ok_since = self._moving_since = None
        self._blind = False

    # -- steps -------------------------------------------------------------------------------------
    def _ipm_matrix(self, ground: Ground, scale: float) -> npt.NDArray[np.float64]:
        c = self.config
        hmat = ground.homography((-1.0, 1.0), (1.0, 4.0))
        a = np.array([[c.cell_m, 0, self._xs[0]], [0, c.cell_m, self._ds[0]], [0, 0, 1.0]])
        s = np.array([[scale, 0, 0.5 * scale - 0.5], [0, scale, 0.5 * scale - 0.5], [0, 0, 1.0]])
        return np.asarray(s @ hmat @ a, dtype=np.float64)

    def _update_reference(self, ipm: npt.NDArray[np.float32], seen: npt.NDArray[np.bool_]) -> None:
        ref = seen & self._front_strip
        if ref.sum() < 40:  # too little ground in front of the walker: add the ground beside the heels
            ref |= seen & self._beside_heels
        if ref.sum() < 20:
            return  # the last frame's model stands
        px = ipm[ref].astype(np.float64)
        med = _median(px, 0)
        mad = _median(np.abs(px - med), 0) * 1.4826
        if self._ref is None or self._spread is None:
            self._ref, self._spread = med, mad
        else:
            self._ref += 0.2 * (med - self._ref)
            self._spread += 0.2 * (mad - self._spread)
        # Colour and spread are averaged over frames, lightness is this frame's own: a cloud or the phone's
        # exposure changes the light on the whole frame at once, and the average lagged a cloud by a third
        # of a second and lost a thin pole in its shade.
        self._ref[0] = med[0]

    def _not_ground(self, ipm: npt.NDArray[np.float32], seen: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
        if self._ref is None or self._spread is None:
            return np.zeros(seen.shape, bool)
        c = self.config
        limit = (
            np.array([c.anomaly_z, c.chroma_z, c.chroma_z]) * np.maximum(self._spread, (4.0, 1.5, 1.5))
        ).astype(np.float32)
        # No smoothing: a pole's trace is one or two cells wide.
        out = (np.abs(ipm - self._ref.astype(np.float32)) > limit).any(axis=2) & seen & self._behind
        return np.asarray(out)

    def _blobs(
        self, notground: npt.NDArray[np.bool_], hidden: npt.NDArray[np.bool_], seen: npt.NDArray[np.bool_]
    ) -> tuple[list[_Blob], npt.NDArray[np.int32]]:
        c = self.config
        m = cv2.morphologyEx(notground.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
        n, labels_any, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
        labels = np.asarray(labels_any, dtype=np.int32)
        blobs = []
        for i in range(1, n):
            if stats[i, cv2.CC_STAT_AREA] < c.min_blob_cells:
                continue
            left, top, width, height = stats[i, :4]
            box = (slice(top, top + height), slice(left, left + width))
            rows, cols = np.nonzero(labels[box] == i)
            rows, cols = rows + top, cols + left
            ds = self._ds[rows]
            # The base is the nearest row the blob holds with two cells or more: a single cell is noise,
            # and a percentile of all cells sat 0.2-0.3 m beyond a thin pole's base (its trace is long).
            per_row = np.bincount(rows - int(rows.min()))
            solid = np.nonzero(per_row >= 2)[0]
            base = float(self._ds[int(rows.min()) + (int(solid[0]) if len(solid) else 0)])
            band = ds <= base + c.base_band_m
            c0, c1 = _quantile(cols[band], 0.05), _quantile(cols[band], 0.95)
            # A part hidden behind the walker's body may continue the obstacle: across the base rows, the
            # blob reaches on through hidden cells next to it (a bench behind the walker is one bench).
            base_rows = slice(int(rows[band].min()), int(rows[band].max()) + 1)
            x0, x1 = float(self._xs[c0]), float(self._xs[c1])
            hid = hidden[base_rows].any(axis=0)
            own = (labels[base_rows] == i).any(axis=0)
            reach0 = float(self._xs[self._reach(c0, -1, own, hid)])
            reach1 = float(self._xs[self._reach(c1, 1, own, hid)])
            far = float(ds.max())
            r0 = max(int(rows.min()) - 2, 0)
            base_hidden = bool(hidden[r0 : int(rows.min()), cols.min() : cols.max() + 1].any())
            kind = _shape_kind(x1 - x0, far - base, self._seen_width(seen, int(rows.min())))
            half = c.cell_m / 2
            reach0, reach1 = reach0 - half, reach1 + half
            cells = rows * self._nx + cols
            blobs.append(_Blob(base, x0 - half, x1 + half, far, kind, base_hidden, cells, reach0, reach1))
        return self._bridge(blobs), labels

    def _reach(self, col: int, step: int, own: npt.NDArray[np.bool_], hidden: npt.NDArray[np.bool_]) -> int:
        """The column to which a blob's edge at `col` carries on, going `step`: over the blob's own outermost
        cells (its width is a 5-95% quantile, so a cell or two of it lie outside) and then over the hidden
        cells next to them. Without hidden cells there, `col` itself: the blob ends where ground is seen."""
        k = col
        while 0 <= k + step < self._nx and own[k + step]:
            k += step
        if not (0 <= k + step < self._nx and hidden[k + step]):
            return col
        while 0 <= k + step < self._nx and hidden[k + step]:
            k += step
        return k

    def _bridge(self, blobs: list[_Blob]) -> list[_Blob]:
        """Two wide pieces at one distance with only the walker's occlusion shadow between them are one thing
        seen on both sides of the walker (a kerb, a step, a wall or a bench right behind them), and it runs
        through the hidden middle: with the partner straight in front a kerb 4 m back was two pieces outside
        the corridor and was warned 1.1 s before contact instead of 3 s. Narrow pieces are not joined: two
        posts either side of the path are a gate to walk through, not a wall."""
        out: list[_Blob] = []
        for b in sorted(blobs, key=lambda b: b.x0):
            k = next((k for k, a in enumerate(out) if self._one_thing(a, b)), None)
            if k is None:
                out.append(b)
                continue
            a = out[k]
            x1, far, base = max(a.x1, b.x1), max(a.far_d, b.far_d), min(a.base_d, b.base_d)
            joined = "kerb" if "kerb" in (a.kind, b.kind) else _shape_kind(x1 - a.x0, far - base)
            out[k] = replace(
                a,
                base_d=base,
                x1=x1,
                far_d=far,
                kind=joined,
                base_hidden=True,
                cells=np.concatenate([a.cells, b.cells]),
                reach0=min(a.reach0, b.reach0),
                reach1=max(a.reach1, b.reach1),
            )
        return out

    def _one_thing(self, a: _Blob, b: _Blob) -> bool:
        """`a` (left) and `b` (right) are pieces of one thing across the walker's occlusion shadow. Not right
        at the heels: there the walker's own feet, shadow and the body mask's edge lie on both sides."""
        c = self.config
        return (
            abs(a.base_d - b.base_d) <= c.bridge_depth_m
            and min(a.base_d, b.base_d) >= c.bridge_min_distance_m
            and min(a.x1 - a.x0, b.x1 - b.x0) >= c.bridge_min_width_m
            and a.x1 < b.x0  # side by side, with the hidden stretch between them
            and a.reach1 >= b.x0 - c.cell_m
            and b.reach0 <= a.x1 + c.cell_m
        )

    def _seen_width(self, seen: npt.NDArray[np.bool_], row: int) -> float:
        return float(seen[row].sum()) * self.config.cell_m

    def _ego_motion(
        self, bgr: npt.NDArray[np.uint8], ground: Ground, seen: npt.NDArray[np.bool_], t_s: float
    ) -> None:
        """The walker's velocity over the ground, from the ground's flow.

        Ground points seen in the last frame are tracked into this one (pyramidal Lucas-Kanade on the
        half-size image, 320 px long at most), if enough of them have texture. Placed on the ground, each
        end with its own frame's geometry, they must all have moved alike, by minus the walker's velocity
        in the walker frame, since the pair move together. Each
        frame's pitch comes from the walker's body, which follows the hand's shake but only to within a few
        tenths of a degree, and half a degree between frames reads as 0.7 m/s; a crouch moves the hips, and
        with them the body's pitch, by degrees while the camera stands still. A wrong pitch for this frame
        moves far points more than near ones, so this frame's ends are placed with the pitch, near the
        body's, under which the points move most alike. Likewise the walker frame's direction, which follows
        the feet's column: two pixels of toe landmark are 0.2 deg, and 0.2 deg turns ground 7 m from the
        camera by 2.4 cm, a sideways 0.24 m/s in 0.1 s; a turn moves points the further from the heels the
        more, so this frame's ends are turned by the turn under which they move most alike."""
        c = self.config
        if self._prev is not None and t_s - self._prev[0] < c.flow_interval_s - 1e-6:  # 0.7 - 0.6 < 0.1
            return  # the ground's flow is averaged over many frames anyway: half the frames do
        h, w = bgr.shape[:2]
        # Half the camera page's 640 px, and no more than 320 px whatever comes in: Lucas-Kanade's window and
        # the texture test below then see the same stretch of ground in a client's 1280 px frame (at half of
        # 1280, the real squat clip's floor passed for plain in 62 of 64 frames).
        scale = min(0.5, c.flow_long_side_px / max(h, w))
        small = cv2.resize(bgr, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
        gray = np.asarray(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
        # Pixel centres map as (u + 0.5) * s - 0.5; in float32, as Lucas-Kanade's points are.
        sxy = np.array([gray.shape[1] / w, gray.shape[0] / h], np.float32)
        prev, self._prev = self._prev, (t_s, gray, ground, seen)
        if prev is None:
            return
        t0, gray0, ground0, seen0 = prev
        dt = t_s - t0
        if not 0.02 < dt < 0.5 or gray0.shape != gray.shape:
            return
        self._flow_tries.append((t_s, True))  # too plain, until the points pass the texture test
        rows, cols = np.nonzero(seen0 & self._flow_region)
        if len(rows) < 12:
            return
        u0, v0 = ground0.to_image(self._xs[cols], self._ds[rows])
        p0 = (np.stack([u0, v0], axis=1) * sxy + (0.5 * sxy - 0.5)).astype(np.float32)
        if not np.isfinite(p0).all():
            return
        if len(p0) > 64:
            keep = np.linspace(0, len(p0) - 1, 64).astype(int)
            rows, cols, p0 = rows[keep], cols[keep], p0[keep]
        eig = cv2.cornerMinEigenVal(gray0, 13, ksize=3)
        pu = np.clip(np.rint(p0[:, 0]).astype(int), 0, eig.shape[1] - 1)
        pv = np.clip(np.rint(p0[:, 1]).astype(int), 0, eig.shape[0] - 1)
        if np.count_nonzero(eig[pv, pu] >= c.flow_min_eig) < c.flow_textured_share * len(p0):
            return  # too plain a ground: Lucas-Kanade's points would stay where they are
        p1, status, _ = cv2.calcOpticalFlowPyrLK(
            gray0,
            gray,
            p0.reshape(-1, 1, 2),
            None,  # type: ignore[call-overload]
            winSize=(13, 13),
            maxLevel=2,
            criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03),
        )
        ok = status.ravel() == 1
        if ok.sum() < 10:
            return
        self._flow_tries[-1] = (t_s, False)  # the ground is seen to move, alike or not
        p1 = (p1.reshape(-1, 2)[ok] + (0.5 - 0.5 * sxy)) / sxy
        x0, d0 = self._xs[cols][ok], self._ds[rows][ok]
        span = math.radians(c.pitch_search_deg)

        def pitched(pitch: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], ...]:
            return ground.to_walker(p1[:, 0], p1[:, 1], pitch)

        pitch = _most_alike(pitched, x0, d0, ground.pitch, span)
        if pitch is None:
            return
        x1, d1 = (a[0] for a in pitched(np.array([pitch])))
        good = np.isfinite(x1) & np.isfinite(d1)
        if good.sum() < 10:
            return
        x0, d0, xp, dp = x0[good], d0[good], x1[good], d1[good]

        def turned(turn: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], ...]:
            cs, sn = np.cos(turn)[:, None], np.sin(turn)[:, None]
            return xp * cs - dp * sn, xp * sn + dp * cs

        turn = _most_alike(turned, x0, d0, 0.0, math.radians(c.turn_search_deg))
        if turn is None:
            return
        x1, d1 = (a[0] for a in turned(np.array([turn])))
        mx, md, support = _mode_2d(x1 - x0, d1 - d0, c.flow_mode_radius_m)
        if support < max(8, 0.3 * len(x0)):
            return  # no clear common motion: not the ground's (a body, a shadow, a moving thing)
        vx, vd = -mx / dt, -md / dt
        speed = math.hypot(vx, vd)
        if speed > 3.0:
            return
        self.speed_mps = speed if self.speed_mps is None else self.speed_mps + 0.15 * (speed - self.speed_mps)
        self._flow_frames += 1
        if speed > c.moving_mps and vd > 0:
            # A sideways part of the ground's motion means the corridor is turned from the line of sight.
            self.ground.update_heading(self.ground.heading + math.atan2(vx, vd), speed)

    def _veto(self) -> bool:
        """Whether bands that read flat are not warned this frame (PathConfig.flat_veto)."""
        c = self.config
        return c.flat_veto or (c.flat_veto_with_tilt and self.ground.tilt_current)

    def _read_levels(
        self,
        bgr: npt.NDArray[np.uint8],
        ground: Ground,
        body: npt.NDArray[np.float32] | None,
        plain: npt.NDArray[np.bool_],
        t_s: float,
    ) -> None:
        """Plane parallax against the frame of the walker's last 0.4 m: each band across the path (a "kerb"
        track seen this frame) and the ground beyond it, at most every `level_every_s` (`flat_veto`), and
        the footprint of each thing standing still in or near the corridor, at most every `raised_every_s`
        (`raised_fix`)."""
        c = self.config
        veto = self._veto()
        if not (veto or c.raised_fix):
            return
        now = self._level_frames.add(t_s, bgr, ground, plain)
        if not self.speed_mps or self.motion_unknown:
            return
        speed = self.speed_mps
        seen_now = [tr for tr in self._tracks if tr.last_t == t_s and len(tr.cells)]
        bands = [
            tr for tr in seen_now if veto and tr.kind == "kerb" and t_s - tr.level_t >= c.level_every_s - 1e-6
        ]
        near = c.corridor_half_m + c.raised_beside_m

        def liftable(tr: Track) -> bool:
            """Closing like a thing standing still, and near enough for the plane's error to be small."""
            return (
                c.raised_closing[0] <= tr.closing / speed <= c.raised_closing[1]
                and tr.history[-1][1] <= c.raised_within_m
            )

        lifts = [
            tr
            # a walker standing still gives no baseline to read height from
            for tr in (seen_now if c.raised_fix and speed >= c.moving_mps else [])
            if not (veto and tr.kind == "kerb")  # those are read as bands
            and t_s - tr.level_t >= c.raised_every_s - 1e-6
            and liftable(tr)
            and (x := tr.lateral(t_s))[1] > -near
            and x[0] < near
        ]
        # One footprint a frame, the longest unread first: a reading costs about 30 ms, and each fits the
        # camera's motion afresh
        lifts = sorted(lifts, key=lambda tr: tr.level_t)[: c.raised_per_frame]
        then = self._level_frames.earlier(t_s, speed) if bands or lifts else None
        if then is None or then.gray.shape != now.gray.shape:
            return
        travel = speed * (t_s - then.t_s)
        # Plain ground then as well as now: where the walker's legs and shadow were not, in either frame.
        shift = round(travel / c.cell_m)
        was_plain = np.zeros_like(plain)
        if 0 <= shift < plain.shape[0]:
            was_plain[: plain.shape[0] - shift] = then.plain[shift:]

        def before(base: float) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
            """Plain ground between the walker and a thing, which fixes the camera's motion."""
            br, bc = np.nonzero(
                plain & was_plain & (self._gd >= max(0.3, base - 2.0)) & (self._gd <= base - 0.1)
            )
            return self._cell_points(br, bc)

        for tr in bands:
            tr.level_t = t_s
            rows, cols = np.divmod(tr.cells, self._nx)
            base, far = float(self._ds[rows].min()), float(self._ds[rows].max())
            x0, x1 = float(self._xs[cols].min()), float(self._xs[cols].max())
            beyond = (
                plain
                & (self._gd > far + c.beyond_gap_m)
                & (self._gd <= far + c.beyond_depth_m)
                & (self._gx >= x0)
                & (self._gx <= x1)
            )
            # ...and the ground beyond, kept `beyond_gap_px` clear of the band in the image: 5-8 m back a
            # quarter metre is 2-3 px, and the blurred edge of a white line pulled the reading
            yr, yc = np.nonzero(beyond)
            if len(yr):
                _, v_far = ground.to_image([0.5 * (x0 + x1)], [far])
                _, v = ground.to_image(self._xs[yc], self._ds[yr])
                clear = v_far[0] - v >= c.beyond_gap_px
                yr, yc = yr[clear], yc[clear]
            shares = level_shares(
                now,
                then,
                travel,
                before(base),
                [self._cell_points(yr, yc), self._cell_points(rows, cols)],
                body,
                c.parallax,
            )
            if shares is not None:
                tr.levels.append((t_s, shares[0], shares[1]))
                # The band's own reading is how raised it is: a "kerb" track read as a band is not read
                # as a footprint below, and a bench's seat seen as a band across the path must still be
                # placed where it is (without this the veto warned it 1.0 s ahead instead of 2.9)
                if math.isfinite(shares[1]) and liftable(tr):
                    tr.lifts.append((t_s, shares[1]))
        for tr in lifts:
            tr.level_t = t_s
            rows, cols = np.divmod(tr.cells, self._nx)
            base = tr.history[-1][1]  # the blob's: its nearest row of two cells or more
            foot = self._ds[rows] <= base + c.base_band_m
            shares = level_shares(
                now, then, travel, before(base), [self._cell_points(rows[foot], cols[foot])], body, c.parallax
            )
            if shares is not None and math.isfinite(shares[0]):
                tr.lifts.append((t_s, shares[0]))

    def _lift(self, tr: Track, t_s: float) -> float:
        """How far a track's footprint is raised, as a share (h / (H - h), 0 on the ground): the median of its
        readings of the last `raised_window_s` if they say raised, else 0."""
        c = self.config
        got = [v for t, v in tr.lifts if t_s - t <= c.raised_window_s]
        if not c.raised_fix or len(got) < c.raised_readings:
            return 0.0
        mid, spread = _median_spread(got)
        return mid if mid >= c.raised_share and spread <= c.raised_spread else 0.0

    def _cell_points(
        self, rows: npt.NDArray[np.intp], cols: npt.NDArray[np.intp]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Walker-frame (x, d) of four points in each cell: cells 2-6 m back span 3-10 pixels."""
        sub = np.array([-0.25, 0.25]) * self.config.cell_m
        x = (self._xs[cols][:, None, None] + sub[None, :, None]).repeat(2, axis=2).ravel()
        d = (self._ds[rows][:, None, None] + sub[None, None, :]).repeat(2, axis=1).ravel()
        return x, d

    def _levels(self, tr: Track, t_s: float) -> tuple[float, float, float, int] | None:
        """The medians of a track's parallax readings over the last `flat_window_s` (the ground beyond it,
        the band itself), the median deviation of the first, and how many readings; None without any."""
        got = [
            (b, n)
            for t, b, n in tr.levels
            if t_s - t <= self.config.flat_window_s and math.isfinite(b) and math.isfinite(n)
        ]
        if not got:
            return None
        mid, spread = _median_spread([b for b, _ in got])
        return mid, float(np.median([n for _, n in got])), spread, len(got)

    def _flat(self, tr: Track, t_s: float) -> bool:
        """The band and the ground beyond it read at the walker's level: paint or shade, not a kerb.

        The verdict holds until enough newer readings say clearly otherwise: near the walker the ground
        before the band runs out and readings stop, and a verdict that lapsed then raised the band's first cue
        1.5 s from contact; one that flickered at its threshold started a new warning each time."""
        c = self.config
        if not (self._veto() and tr.kind == "kerb"):
            tr.flat = False  # a verdict from while the veto was on does not outlive it
            return False
        levels = self._levels(tr, t_s)
        if levels is None or levels[3] < c.flat_readings:
            return tr.flat
        beyond, band, spread, _ = levels
        # with hysteresis: a verdict is overturned only by readings clearly the other way
        slack = c.flat_hysteresis if tr.flat else 1.0
        tr.flat = (
            abs(beyond) <= c.flat_share * slack
            and abs(band) <= c.flat_share * slack
            and spread <= c.flat_spread * slack
        )
        return tr.flat

    def _check_motion(self, t_s: float) -> None:
        """The walker's motion is unknown when the ground's flow cannot be measured (a smooth floor, blur,
        the dark, the ground out of sight). Their last speed is then no longer theirs, and "not walking" would
        silence every obstacle warning: instead each track's own closing speed decides (`_hazards`), and a
        walker whose path is hidden is told so (`_coach`)."""
        c = self.config
        while self._flow_tries and self._flow_tries[0][0] < t_s - c.flow_window_s:
            self._flow_tries.popleft()
        tries = len(self._flow_tries)
        if tries >= c.flow_min_tries:
            plain = sum(p for _, p in self._flow_tries) / tries
            if not self.motion_unknown and plain > c.flow_plain_share:
                self.motion_unknown = True
                self._flow_frames = 0  # back to known, the speed is measured afresh before it counts
            elif self.motion_unknown and plain < c.flow_known_share:
                self.motion_unknown = False
        if self.motion_unknown:
            self.speed_mps = None

    def _walking_backwards(self) -> bool:
        """Moving over the ground at `moving_mps` or more, facing the camera. Unknown motion counts as
        walking: silence must not mean "clear" while the system cannot tell."""
        moving = self.speed_mps is not None and self.speed_mps >= self.config.moving_mps
        return (moving or self.motion_unknown) and self._facing_camera()

    def _facing_camera(self) -> bool:
        return sum(self._facing) * 2 > len(self._facing)  # most of the last frames

    def _turn_tracks(self, heading: float) -> None:
        """The walker frame turned to `heading`: the tracks' past footprints are re-expressed in it.

        The walker frame's forward axis is the walking direction, and its estimate moves: the line of sight
        until the ground's flow has been measured five times, then the flow's. With the partner half a metre
        to the side that first measurement turns the frame by 14-18 deg, and a bin 2 m back and 1 m to the
        left, placed 0.4 m further in before it, stayed in the corridor for half a second on its old
        footprints and raised stop cues on a clear path. A footprint is a place on the ground: turning the
        frame by a about the heels moves (x, d) to (x cos a - d sin a, x sin a + d cos a)."""
        a = heading - self._tracks_heading
        self._tracks_heading = heading
        if abs(a) < 1e-9 or not self._tracks:
            return
        ca, sa = math.cos(a), math.sin(a)
        for tr in self._tracks:
            d_last = tr.history[-1][1]
            tr.history = deque(
                (
                    (t, (x0 + x1) / 2 * sa + d * ca, x0 * ca - d * sa, x1 * ca - d * sa)
                    for t, d, x0, x1 in tr.history
                ),
                maxlen=tr.history.maxlen,
            )
            tr.reach = (tr.reach[0] * ca - d_last * sa, tr.reach[1] * ca - d_last * sa)

    def _track(self, blobs: list[_Blob], t_s: float) -> None:
        c = self.config
        used: set[int] = set()
        for tr in sorted(self._tracks, key=lambda tr: -tr.hits):
            last = tr.history[-1]
            pred = last[1] - tr.closing * (t_s - last[0])
            best, best_cost = None, 0.7
            for i, b in enumerate(blobs):
                if i in used:
                    continue
                overlap = min(b.x1, last[3]) - max(b.x0, last[2])
                if overlap < -0.3:
                    continue
                cost = abs(b.base_d - pred) + 0.3 * max(0.0, -overlap)
                if cost < best_cost:
                    best, best_cost = i, cost
            if best is not None:
                used.add(best)
                tr.add(t_s, blobs[best])
        for i, b in enumerate(blobs):
            if i not in used and b.base_d >= c.min_birth_m:
                tr = Track(self._next_id, b.kind)
                self._next_id += 1
                tr.add(t_s, b)
                self._tracks.append(tr)
        self._tracks = [tr for tr in self._tracks if t_s - tr.last_t <= c.track_max_gap_s]

    def _closing(self, measured: float, sd: float) -> tuple[float, float]:
        """Closing speed and its sd: the track's own fit, pulled towards "it stands still" (closing at the
        walker's speed) by a prior on the obstacle's own speed. Most things on a path stand still; a short
        or noisy track then closes at the walker's measured speed, and distance and speed share the same
        ground scale, so their ratio, the time to contact, does not depend on it."""
        v = self.speed_mps
        if v is None:
            return measured, sd
        prior = self.config.own_speed_prior_mps**2
        own = (measured - v) * prior / (prior + sd * sd)
        return v + own, math.sqrt(prior * sd * sd / (prior + sd * sd))

    def _side(self, x0: float, x1: float, unsure_m: float = 0.0) -> Side:
        band = self.config.centre_band_m + unsure_m
        if x0 < band and x1 > -band:
            return "centre"
        return "left" if x0 >= band else "right"  # +x is the walker's left: they face the camera

    def _hazards(self, t_s: float, ground: Ground) -> tuple[list[Hazard], list[dict[str, Any]]]:
        c = self.config
        hazards: list[Hazard] = []
        views: list[dict[str, Any]] = []
        # Only a walking walker is warned about obstacles: time to contact is about walking into something.
        # A walker standing still (or a static camera on a clip) hears nothing from here.
        walking = self._walking_backwards()
        # Without the ground's flow the walking direction is a guess (the line of sight, or the last one
        # measured), and a partner half a metre to the side turns it by 12-15 deg: a thing this far off the
        # guessed centreline, per metre behind, may be in the path and straight behind. The corridor widens
        # by as much, and no side is said rather than a wrong one.
        unsure_per_m = math.tan(math.radians(c.unknown_heading_deg)) if self.motion_unknown else 0.0
        for tr in self._tracks:
            if tr.last_t != t_s and t_s - tr.last_t > 0.3:
                continue
            raw = tr.fit(t_s, c.track_window_s)
            fit = None if raw is None else (raw[0], raw[1], *self._closing(raw[2], raw[3]))
            tr.closing = fit[2] if fit else 0.0  # as placed: the next frame's prediction uses it
            x0, x1 = tr.lateral(t_s)
            reach, last_d = tr.reach, tr.history[-1][1]
            if (lift := self._lift(tr, t_s)) > 0:
                # A raised footprint lies on the ray from the ground under the camera, 1 / (1 + lift) of the
                # way, and so does its motion. Before the prior on its own speed: placed on the ground, a
                # thing standing still closes at (1 + lift) times the walker's speed, not at it.
                fx, fd = ground.camera_foot()
                k = 1.0 / (1.0 + lift)
                x0, x1 = _towards(x0, fx, k), _towards(x1, fx, k)
                reach, last_d = (
                    (_towards(reach[0], fx, k), _towards(reach[1], fx, k)),
                    _towards(last_d, fd, k),
                )
                if raw is not None:
                    fit = (_towards(raw[0], fd, k), raw[1] * k, *self._closing(raw[2] * k, raw[3] * k))
            distance, d_sd, closing, c_sd = fit if fit else (last_d, 0.3, 0.0, 1.0)
            unsure = max(distance, 0.0) * unsure_per_m
            inner = c.corridor_half_m - c.corridor_overlap_m + unsure
            # What continues into the walker's occlusion shadow may stand in the corridor unseen: hidden
            # corridor is unknown, not clear. A footprint counts as reaching on into it by up to
            # `hidden_reach_m` (further, and everything beside the path would touch the hidden wedge), and by
            # no more than it is seen wide: a bollard seen 15 cm thick beside the wedge is not taken to go on
            # 30 cm into the path (with the full reach the suite's bollards either side of a clear path raised
            # two cues; walls, benches and cars are seen wider than 30 cm, so nothing else changed).
            reach_m = min(c.hidden_reach_m, x1 - x0)
            r0 = max(min(x0, reach[0]), x0 - reach_m)
            r1 = min(max(x1, reach[1]), x1 + reach_m)
            in_corridor = r1 > -inner and r0 < inner
            # The side as far as it reaches for the corridor test: with the whole hidden wedge, a wall on the
            # right beside it was "centre" (side right on the suite 63% -> 68%; 68% with the seen part
            # alone; over camera-height priors 1.3-1.5 m: 59-65% -> 59-71%, seen part alone 53-68%).
            side = self._side(r0, r1, unsure)
            pts = tr.window(t_s, c.track_window_s)
            span = t_s - pts[0][0]
            confirmed = fit is not None and span >= c.track_min_span_s and len(pts) >= c.min_hits
            # The walker's speed is known, or is known to be unknown, and the footprints were placed with the
            # measured walking direction: the speed can be measured a frame before the direction (five
            # speeds, not yet five directions), and under a simulated gait that frame, in the line of sight's
            # frame, warned about lit paving beyond a shadow band and cars and bins beside clear paths (over
            # twenty priors and gaits false alarms 1.64 -> 1.29 a minute, nothing warned later).
            measured = self._flow_frames >= c.min_flow_frames and ground.heading_measured
            confirmed = confirmed and (measured or self.motion_unknown)
            confirmed = confirmed and d_sd * math.sqrt(len(pts)) <= c.max_fit_sd_m * 2
            need = max(c.min_closing_mps, c.static_share * (self.speed_mps or 0.0))
            ttc = None
            may_start = tr.warning or distance >= c.min_first_warning_m
            closing_clearly = closing > need and closing > 2 * c_sd
            flat = self._flat(tr, t_s)
            if (
                walking
                and confirmed
                and in_corridor
                and may_start
                and closing_clearly
                and distance > -0.2
                and not flat
            ):
                ttc = max(distance, 0.0) / closing
                tr.warning = True
            views.append(
                {
                    "id": tr.id,
                    "kind": tr.kind,
                    "distance_m": round(distance, 2),
                    "distance_sd_m": round(d_sd, 2),
                    "closing_mps": round(closing, 2),
                    "ttc_s": None if ttc is None else round(ttc, 2),
                    "side": side,
                    "in_corridor": bool(in_corridor),
                    "flat": flat,  # read flat by parallax: not warned (PathConfig.flat_veto)
                    "raised": round(lift, 2),  # its footprint's height share by parallax, placed with it
                    "box_px": self._box_px(ground, x0, x1, distance) if in_corridor else [],
                }
            )
            if ttc is not None:
                hazards.append(
                    Hazard(
                        kind=tr.kind,
                        tier="advisory",
                        side=side,
                        distance_m=round(max(distance, 0.0), 2),
                        ttc_s=round(ttc, 2),
                        key=f"obs:{tr.id}",
                    )
                )
        return hazards, views

    def _box_px(self, ground: Ground, x0: float, x1: float, d: float) -> list[int]:
        u, v = ground.to_image([x0, x1, x0, x1], [d, d, d + 0.3, d + 0.3])
        if not (np.isfinite(u).all() and np.isfinite(v).all()):
            return []
        top = float(v.min()) - (float(u.max()) - float(u.min()))  # a rough upright extent
        return [int(u.min()), int(top), int(u.max()), int(v.max())]

    def _coverage(
        self,
        ground: Ground,
        body: npt.NDArray[np.float32] | None,
        labels: npt.NDArray[np.int32],
        w: int,
        h: int,
    ) -> tuple[float, list[float], str]:
        u, v = ground.to_image(self._cov_x, self._cov_d)
        inside = np.isfinite(u) & (u >= 0) & (u <= w - 1) & (v >= 0) & (v <= h - 1)
        seen = inside.copy()
        ui = np.clip(np.nan_to_num(u), 0, w - 1).astype(int)
        vi = np.clip(np.nan_to_num(v), 0, h - 1).astype(int)
        on_body = np.zeros_like(seen)
        if body is not None:
            on_body = inside & (body[vi, ui] >= 0.5)
            seen &= ~on_body
        c = self.config
        col = np.clip(((self._cov_x - self._xs[0]) / c.cell_m).round().astype(int), 0, self._nx - 1)
        row = np.clip(((self._cov_d - self._ds[0]) / c.cell_m).round().astype(int), 0, self._nd - 1)
        seen &= labels[row, col] == 0  # an obstacle hides the ground it stands on and behind it
        by_m = []
        for k in range(math.ceil(c.corridor_length_m)):
            band = (self._cov_d >= k) & (self._cov_d < k + 1)
            by_m.append(float(seen[band].mean()) if band.any() else 0.0)
        unseen = ~seen
        reason = "body"
        if unseen.any():
            outside = (~inside & unseen).sum()
            reason = "frame" if outside > on_body.sum() else "body"
        return float(seen.mean()), by_m, reason

    def _coach(self, coverage: float, reason: str, t_s: float) -> str | None:
        c = self.config
        if coverage < c.coverage_low:
            self._low_since = t_s if self._low_since is None else self._low_since
            self._ok_since = None
        elif coverage >= c.coverage_ok:
            self._ok_since = t_s if self._ok_since is None else self._ok_since
            if t_s - self._ok_since >= 1.0:
                self._low_since = None
        moving = self._walking_backwards()
        self._moving_since = (self._moving_since or t_s) if moving else None
        low_for = 0.0 if self._low_since is None else t_s - self._low_since
        if self._low_since is None:
            self._blind = False
        elif low_for >= c.blind_notice_s and self._moving_since is not None:
            self._blind = self._blind or t_s - self._moving_since >= 1.0
        if low_for < c.coverage_low_s:
            return None
        if reason == "frame":
            return "coach_back"
        # Already offset to one side: more of the same. The walking direction is turned towards +x (the
        # partner's right) when the partner stands to their right of the walker's path.
        return "coach_right" if self.ground.heading > math.radians(4) else "coach_left"

    def _corridor_px(self, ground: Ground, w: int, h: int) -> list[list[int]]:
        c = self.config
        xs = [-c.corridor_half_m, c.corridor_half_m, c.corridor_half_m, -c.corridor_half_m]
        ds = [0.0, 0.0, c.corridor_length_m, c.corridor_length_m]
        u, v = ground.to_image(xs, ds)
        if not (np.isfinite(u).all() and np.isfinite(v).all()):
            return []
        lim = 4 * max(w, h)
        return [[int(np.clip(a, -lim, lim)), int(np.clip(b, -lim, lim))] for a, b in zip(u, v, strict=True)]
