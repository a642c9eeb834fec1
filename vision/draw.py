"""Draws what the pipeline saw and what the walker heard onto a frame, for annotated replay videos."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from vision.types import Analysis, Hazard, Pose

BONES = (
    (11, 12), (11, 13), (13, 15), (12, 14), (14, 16), (11, 23), (12, 24), (23, 24),
    (23, 25), (25, 27), (24, 26), (26, 28), (27, 29), (28, 30), (29, 31), (30, 32),
)  # fmt: skip
BGR = tuple[int, int, int]
TIER_BGR: dict[str, BGR] = {"advisory": (0, 191, 255), "urgent": (0, 128, 255), "stop": (0, 0, 230)}
NO_TIER_BGR: BGR = (200, 200, 200)  # an obstacle the walker is not (yet) warned about
SEEN_BGR: BGR = (80, 200, 80)  # corridor while the camera sees enough of it
LOW_BGR: BGR = (60, 60, 220)  # corridor while coverage is low (the partner is being coached)
COACH_BGR: BGR = (120, 90, 0)
CORRIDOR_ALPHA = 0.3
# Time-to-contact thresholds (s) of DESIGN.md, for obstacles no hazard speaks for (tightest first).
TTC_TIERS: tuple[tuple[str, float], ...] = (("stop", 1.0), ("urgent", 1.5), ("advisory", 3.0))
TIER_RANK = {"advisory": 0, "urgent": 1, "stop": 2}


def draw_pose(img: npt.NDArray[np.uint8], pose: Pose, colour: BGR) -> None:
    h, w = img.shape[:2]
    pts = [(int(x * w), int(y * h)) for x, y in pose.xy]
    vis = pose.visibility
    for a, b in BONES:
        if vis[a] >= 0.5 and vis[b] >= 0.5:
            cv2.line(img, pts[a], pts[b], colour, 2, cv2.LINE_AA)
    for i in (27, 28):
        if vis[i] >= 0.5:
            cv2.circle(img, pts[i], 4, colour, -1, cv2.LINE_AA)


def _fit(text: str, scale: float, width: int) -> tuple[float, int, int, int]:
    """(scale, text width, height, baseline) of `text`, shrunk (not below 0.3) to fit `width` pixels."""
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    if tw > width > 0:  # long phrases on a portrait frame: smaller rather than cut off
        scale = max(0.3, scale * width / tw)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    return scale, tw, th, base


def _label(
    img: npt.NDArray[np.uint8], text: str, org: tuple[int, int], bg: BGR, scale: float | None = None
) -> tuple[int, int, int, int]:
    """White text on a filled box with its baseline at `org`, moved left or shrunk to stay inside the frame.
    Returns the box as (x0, y0, x1, y1)."""
    w = img.shape[1]
    scale, tw, th, base = _fit(text, scale or max(0.4, w / 1000), w - 12)
    x, y = min(org[0], w - tw - 6), org[1]
    box = (x - 3, y - th - 4, x + tw + 3, y + base + 2)
    cv2.rectangle(img, box[:2], box[2:], bg, -1)
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return box


def _num(value: Any) -> float | None:
    """`value` as a finite float; None for None, bools, text, NaN and infinities."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def _points(value: Any, sx: float, sy: float) -> npt.NDArray[np.int32] | None:
    """An [[u, v], ...] polygon in analysed-frame pixels as (n, 1, 2) int32 in this image's pixels."""
    if not isinstance(value, Sequence) or len(value) < 3:
        return None
    pts: list[tuple[int, int]] = []
    for p in value:
        u, v = (_num(p[0]), _num(p[1])) if isinstance(p, Sequence) and len(p) == 2 else (None, None)
        if u is None or v is None or abs(u) > 1e5 or abs(v) > 1e5:
            return None
        pts.append((round(u * sx), round(v * sy)))
    return np.asarray(pts, np.int32).reshape(-1, 1, 2)


def _box(value: Any, sx: float, sy: float) -> tuple[int, int, int, int] | None:
    """A [u0, v0, u1, v1] box in analysed-frame pixels, in this image's pixels; None when malformed."""
    if not isinstance(value, Sequence) or len(value) != 4:
        return None
    nums = [_num(v) for v in value]
    if any(n is None or abs(n) > 1e5 for n in nums):
        return None
    u0, v0, u1, v1 = (float(n) for n in nums if n is not None)
    return round(u0 * sx), round(v0 * sy), round(u1 * sx), round(v1 * sy)


def _corridor(img: npt.NDArray[np.uint8], pts: npt.NDArray[np.int32], colour: BGR) -> None:
    """The corridor filled translucently. Blending only the polygon's bounding box keeps it cheap."""
    h, w = img.shape[:2]
    x, y, bw, bh = cv2.boundingRect(pts)
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + bw, w), min(y + bh, h)
    if x1 > x0 and y1 > y0:
        roi = img[y0:y1, x0:x1]
        overlay = roi.copy()
        cv2.fillPoly(overlay, [pts - np.array([x0, y0], np.int32)], colour)
        cv2.addWeighted(overlay, CORRIDOR_ALPHA, roi, 1.0 - CORRIDOR_ALPHA, 0.0, dst=roi)
    cv2.polylines(img, [pts], True, colour, 1, cv2.LINE_AA)


def _tier(obstacle: Mapping[str, Any], hazards: Mapping[str, Hazard]) -> str | None:
    """The obstacle's tier: that of its hazard (key "obs:<id>") when the pipeline raised one, else by its
    time to contact while in the corridor."""
    hz = hazards.get(f"obs:{obstacle.get('id')}")
    if hz is not None:
        return hz.tier
    ttc = _num(obstacle.get("ttc_s"))
    if ttc is None or obstacle.get("in_corridor") is False:
        return None
    return next((tier for tier, limit in TTC_TIERS if ttc <= limit), None)


def _distance_or_far(obstacle: Mapping[str, Any]) -> float:
    d = _num(obstacle.get("distance_m"))
    return float("inf") if d is None else d


def _obstacle(
    img: npt.NDArray[np.uint8],
    ob: Mapping[str, Any],
    box: tuple[int, int, int, int],
    tier: str | None,
    taken: list[tuple[int, int, int, int]],
) -> None:
    """Box coloured by tier (thin when outside the corridor), then kind, distance +- sd, closing speed and
    TTC above it, unless that text would cover another obstacle's (`taken`, updated): the box still shows."""
    colour = TIER_BGR.get(tier or "", NO_TIER_BGR)
    u0, v0, u1, v1 = box
    cv2.rectangle(img, (u0, v0), (u1, v1), colour, 2 if ob.get("in_corridor") else 1)
    dist, sd = _num(ob.get("distance_m")), _num(ob.get("distance_sd_m"))
    closing, ttc = _num(ob.get("closing_mps")), _num(ob.get("ttc_s"))
    first = f"{ob.get('kind') or 'obstacle'} " + (
        "? m" if dist is None else f"{dist:.1f}" + (f"+-{sd:.1f}" if sd is not None else "") + " m"
    )
    second = ("" if closing is None else f"closing {round(closing, 1) + 0.0:.1f} m/s ") + (
        f"TTC {ttc:.1f} s" if ttc is not None else "no TTC"
    )
    scale = max(0.35, img.shape[1] / 1400)
    w = img.shape[1]
    # Both lines' extent before drawing anything: a label that would cover an earlier one is left out.
    _, tw, th, base = _fit(max(first, second, key=len), scale, w - 12)
    x, y = min(max(u0, 3), w - tw - 6), max(v0 - 4, 2 * (th + base + 6))
    extent = (x - 3, y - 2 * (th + base + 6) + 2, x + tw + 3, y + base + 2)
    if any(extent[0] < b[2] and b[0] < extent[2] and extent[1] < b[3] and b[1] < extent[3] for b in taken):
        return
    taken.append(extent)
    bg = colour if tier else (70, 70, 70)
    top = _label(img, second, (x, y), bg, scale)
    _label(img, first, (x, top[1] - base - 2), bg, scale)


def annotate(
    bgr: npt.NDArray[np.uint8],
    analysis: Analysis,
    *,
    cue: tuple[str, str] | None,
    watching: bool,
    fps: float,
    cost_ms: float,
) -> npt.NDArray[np.uint8]:
    """A copy of `bgr` with the walker's corridor (translucent, green, red while coverage is low) and how
    much of it the camera sees, the obstacles as boxes coloured by tier with distance +- sd, closing speed
    and time to contact, other people (grey), the walker (green), the partner's coaching text, the hazards,
    the cue being played as (tier, text), whether the system is watching, and the frame rate and per-frame
    cost. `analysis.path` may be empty or lack any key (PATH_KEYS in vision/types.py)."""
    img = bgr.copy()
    h, w = img.shape[:2]
    fw, fh = analysis.frame_wh
    sx, sy = (w / fw if fw else 1.0), (h / fh if fh else 1.0)
    path = analysis.path if isinstance(analysis.path, Mapping) else {}
    low = bool(path.get("coverage_low"))
    corridor = _points(path.get("corridor_px"), sx, sy)
    if corridor is not None:
        _corridor(img, corridor, LOW_BGR if low else SEEN_BGR)
    for person in analysis.people:
        if person is not analysis.walker:
            draw_pose(img, person, (160, 160, 160))
    if analysis.walker is not None:
        draw_pose(img, analysis.walker, (60, 220, 60))
        x0, y0, x1, y1 = analysis.walker.bbox_xyxy()
        cv2.rectangle(img, (int(x0 * w), int(y0 * h)), (int(x1 * w), int(y1 * h)), (60, 220, 60), 1)
    obstacles = path.get("obstacles")
    if isinstance(obstacles, Sequence) and obstacles:
        by_key = {hz.key: hz for hz in analysis.hazards if hz.key}
        boxed = [
            (ob, box, _tier(ob, by_key))
            for ob in obstacles
            if isinstance(ob, Mapping) and (box := _box(ob.get("box_px"), sx, sy)) is not None
        ]
        # The most urgent first, then the nearest: their labels win where labels would overlap.
        boxed.sort(key=lambda o: (-TIER_RANK.get(o[2] or "", -1), _distance_or_far(o[0])))
        taken: list[tuple[int, int, int, int]] = []
        for ob, box, tier in boxed:
            _obstacle(img, ob, box, tier, taken)
    line = max(14, h // 30)
    state = ("WATCHING", (40, 140, 40)) if watching else ("NOT WATCHING", (0, 0, 200))
    _label(img, state[0], (6, line), state[1])
    _label(
        img,
        f"t {analysis.timestamp_ms / 1000:6.2f} s  {fps:4.1f} fps  {cost_ms:5.1f} ms/frame",
        (6, 2 * line + 4),
        (40, 40, 40),
    )
    y = 3 * line + 8
    coverage = _num(path.get("coverage"))
    if coverage is not None:
        by_m = path.get("coverage_by_m")
        bands = [_num(b) for b in by_m] if isinstance(by_m, Sequence) and len(by_m) == 3 else []
        detail = "/".join("?" if b is None else f"{100 * b:.0f}" for b in bands)
        text = f"path seen {100 * coverage:.0f}%" + (f" (by metre {detail})" if detail else "")
        _label(img, text + ("  LOW" if low else ""), (6, y), LOW_BGR if low else (40, 110, 40))
        y += line + 4
    coach = path.get("coach")
    if isinstance(coach, str) and coach:
        _label(img, f"PARTNER: {coach}", (6, y), COACH_BGR)
    # Hazards with their distance and time to contact, nearest in time first.
    y = h - 2 * line - 4
    for hz in sorted(analysis.hazards, key=lambda z: z.ttc_s if z.ttc_s is not None else -1.0)[:3]:
        dist = f"{hz.distance_m:.1f} m" if hz.distance_m is not None else "? m"
        ttc = f"TTC {hz.ttc_s:.1f} s" if hz.ttc_s is not None else ""
        _label(img, f"{hz.kind} {hz.side}  {dist}  {ttc}", (6, y), (90, 60, 20))
        y -= line + 4
    if cue is not None:
        tier, text = cue
        _label(img, f"{tier.upper()}: {text}", (6, h - line // 2), TIER_BGR.get(tier, (80, 80, 80)))
    return img
