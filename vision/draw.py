"""Draws what the pipeline saw and what the walker heard onto a frame, for annotated replay videos."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from vision.types import Analysis, Pose

BONES = (
    (11, 12), (11, 13), (13, 15), (12, 14), (14, 16), (11, 23), (12, 24), (23, 24),
    (23, 25), (25, 27), (24, 26), (26, 28), (27, 29), (28, 30), (29, 31), (30, 32),
)  # fmt: skip
TIER_BGR = {"advisory": (0, 191, 255), "urgent": (0, 128, 255), "stop": (0, 0, 230)}


def draw_pose(img: npt.NDArray[np.uint8], pose: Pose, colour: tuple[int, int, int]) -> None:
    h, w = img.shape[:2]
    pts = [(int(x * w), int(y * h)) for x, y in pose.xy]
    vis = pose.visibility
    for a, b in BONES:
        if vis[a] >= 0.5 and vis[b] >= 0.5:
            cv2.line(img, pts[a], pts[b], colour, 2, cv2.LINE_AA)
    for i in (27, 28):
        if vis[i] >= 0.5:
            cv2.circle(img, pts[i], 4, colour, -1, cv2.LINE_AA)


def _label(img: npt.NDArray[np.uint8], text: str, org: tuple[int, int], bg: tuple[int, int, int]) -> None:
    scale = max(0.4, img.shape[1] / 1000)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x, y = org
    cv2.rectangle(img, (x - 3, y - th - 4), (x + tw + 3, y + base + 2), bg, -1)
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def annotate(
    bgr: npt.NDArray[np.uint8],
    analysis: Analysis,
    *,
    cue: tuple[str, str] | None,
    watching: bool,
    fps: float,
    cost_ms: float,
) -> npt.NDArray[np.uint8]:
    """A copy of `bgr` with other people (grey), the walker (green), the hazards with distance and time to
    contact, the cue being played as (tier, text), whether the system is watching, and the frame rate
    and per-frame cost."""
    img = bgr.copy()
    for person in analysis.people:
        if person is not analysis.walker:
            draw_pose(img, person, (160, 160, 160))
    if analysis.walker is not None:
        draw_pose(img, analysis.walker, (60, 220, 60))
        x0, y0, x1, y1 = analysis.walker.bbox_xyxy()
        h, w = img.shape[:2]
        cv2.rectangle(img, (int(x0 * w), int(y0 * h)), (int(x1 * w), int(y1 * h)), (60, 220, 60), 1)
    line = max(14, img.shape[0] // 30)
    state = ("WATCHING", (40, 140, 40)) if watching else ("NOT WATCHING", (0, 0, 200))
    _label(img, state[0], (6, line), state[1])
    _label(
        img,
        f"t {analysis.timestamp_ms / 1000:6.2f} s  {fps:4.1f} fps  {cost_ms:5.1f} ms/frame",
        (6, 2 * line + 4),
        (40, 40, 40),
    )
    # Hazards with their distance and time to contact (obstacles located in the image will get boxes).
    y = img.shape[0] - 2 * line - 4
    for hz in sorted(analysis.hazards, key=lambda z: z.ttc_s if z.ttc_s is not None else -1.0)[:3]:
        dist = f"{hz.distance_m:.1f} m" if hz.distance_m is not None else "? m"
        ttc = f"TTC {hz.ttc_s:.1f} s" if hz.ttc_s is not None else ""
        _label(img, f"{hz.kind} {hz.side}  {dist}  {ttc}", (6, y), (90, 60, 20))
        y -= line + 4
    if cue is not None:
        tier, text = cue
        _label(
            img, f"{tier.upper()}: {text}", (6, img.shape[0] - line // 2), TIER_BGR.get(tier, (80, 80, 80))
        )
    return img
