"""The phone's tilt from the image, for a phone on a stand that does not send its own.

A room's vertical edges (door frames, cupboards, shelves, the corners of walls) meet at one vanishing point:
straight above the image's centre for a phone looking up, below it for one looking down, at infinity for a
level one. Its row gives the camera's elevation at an assumed focal length: for a camera tipped up by e (no
roll) the world's up direction projects to the row cy - f / tan(e).

Used by treadmill mode only (`vision.pipeline`), while it calibrates: the phone stands still there, so a few
frames give its tilt once, and the walker's own limbs (nearly vertical, not the world's verticals) are left
out. Measured on the real clips: the side treadmill clip's phone looks up 12.0 deg (three frames, 12.05 from
the full-size frames), the squats clip's is level to within 1.5 deg.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

from vision.types import Pose

# a segment this near the image's vertical may be a world vertical (a phone rolled further gives no reading)
NEAR_VERTICAL_DEG = 12.0
MIN_LENGTH_SHARE = 0.06  # of the frame's long side: shorter segments are texture
MIN_SEGMENTS = 6  # agreeing segments for an answer
AGREE_DEG = 1.0  # a segment agrees when it points at the vanishing point within this
MAX_TILT_DEG = 35.0  # a phone tipped further than this is not on a stand filming a body
MAX_LONG_SIDE_PX = 640  # frames are read at most this large (the segment detector's cost grows with area)


def elevation_in_frame(
    bgr: npt.NDArray[np.uint8], walker: Pose | None, focal_long_side: float
) -> float | None:
    """`elevation_from_verticals` on a colour frame, at most `MAX_LONG_SIDE_PX` on its long side, with the
    walker's box (a tenth wider, a twentieth taller) left out; `focal_long_side`: the focal length over the
    frame's long side."""
    h, w = bgr.shape[:2]
    scale = min(1.0, MAX_LONG_SIDE_PX / max(w, h))
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    if scale < 1.0:
        gray = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    gh, gw = gray.shape[:2]
    box = None
    if walker is not None:
        x0, y0, x1, y1 = walker.bbox_xyxy(0.0)
        mx, my = 0.1 * (x1 - x0), 0.05 * (y1 - y0)
        box = ((x0 - mx) * gw, (y0 - my) * gh, (x1 + mx) * gw, (y1 + my) * gh)
    return elevation_from_verticals(np.asarray(gray, dtype=np.uint8), focal_long_side * max(gw, gh), box)


def elevation_from_verticals(
    gray: npt.NDArray[np.uint8],
    focal_px: float,
    exclude_xyxy: tuple[float, float, float, float] | None = None,
) -> float | None:
    """The camera's elevation (degrees, up positive) from the vertical edges in an 8-bit grey frame, or None
    when the frame shows too few of them, or they do not agree. A small roll of the phone is ignored: it moves
    the vanishing point's row by the cosine of the roll (1.5% at 10 deg). `exclude_xyxy`: a box in pixels
    (the walker) whose segments are left out."""
    h, w = gray.shape[:2]
    found = cv2.createLineSegmentDetector().detect(gray)[0]
    if found is None:
        return None
    seg = found.reshape(-1, 4).astype(np.float64)
    dx, dy = seg[:, 2] - seg[:, 0], seg[:, 3] - seg[:, 1]
    keep = (np.abs(dx) <= math.tan(math.radians(NEAR_VERTICAL_DEG)) * np.abs(dy)) & (
        np.hypot(dx, dy) >= MIN_LENGTH_SHARE * max(w, h)
    )
    if exclude_xyxy is not None:
        x0, y0, x1, y1 = exclude_xyxy
        mx, my = (seg[:, 0] + seg[:, 2]) / 2, (seg[:, 1] + seg[:, 3]) / 2
        keep &= ~((mx >= x0) & (mx <= x1) & (my >= y0) & (my <= y1))
    seg = seg[keep]
    if len(seg) < MIN_SEGMENTS:
        return None
    ends_a = np.column_stack([seg[:, 0], seg[:, 1], np.ones(len(seg))])
    ends_b = np.column_stack([seg[:, 2], seg[:, 3], np.ones(len(seg))])
    lines = np.cross(ends_a, ends_b)
    lines /= np.linalg.norm(lines[:, :2], axis=1, keepdims=True)
    mid = (ends_a + ends_b) / 2
    along = seg[:, 2:] - seg[:, :2]
    along /= np.linalg.norm(along, axis=1, keepdims=True)
    use = np.ones(len(seg), bool)
    for _ in range(6):  # least squares, then again without the segments that point elsewhere
        vp = np.linalg.svd(lines[use])[2][-1]
        off = _angle_off(vp, mid, along)  # each segment's, from the vanishing point found last
        worst = np.percentile(off[use], 80)
        nxt = off <= max(worst, math.radians(AGREE_DEG))
        if np.array_equal(nxt, use) or nxt.sum() < MIN_SEGMENTS:
            break
        use = nxt
    agree = off <= math.radians(AGREE_DEG)
    if agree.sum() < MIN_SEGMENTS or agree.sum() < 0.5 * len(seg):
        return None
    _, py, pz = vp
    below = h / 2 * pz - py  # the vanishing point's height above the centre, times its homogeneous scale
    if below == 0.0:
        return None
    elevation = math.degrees(math.atan(focal_px * pz / below))
    return elevation if abs(elevation) <= MAX_TILT_DEG else None


def _angle_off(
    vp: npt.NDArray[np.float64], mid: npt.NDArray[np.float64], along: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """How far each segment's direction turns from the line through its midpoint and the vanishing point
    (radians, 0 to pi/2); a point at infinity is a direction."""
    to_vp = vp[:2][None, :] - mid[:, :2] * vp[2]
    norm = np.linalg.norm(to_vp, axis=1)
    cos = np.abs((to_vp * along).sum(axis=1)) / np.maximum(norm, 1e-12)
    return np.asarray(np.arccos(np.clip(cos, 0.0, 1.0)), dtype=np.float64)
