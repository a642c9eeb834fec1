"""Frozen value types that flow through the frame path, with shapes and units in their names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Tier = Literal["advisory", "urgent", "stop"]
Side = Literal["left", "centre", "right"]
FloatArray = npt.NDArray[np.float32]

N_LANDMARKS = 33
# BlazePose landmark indices, for every module.
NOSE, L_EYE, R_EYE, L_EAR, R_EAR = 0, 2, 5, 7, 8
L_SHOULDER, R_SHOULDER, L_WRIST, R_WRIST, L_HIP, R_HIP = 11, 12, 15, 16, 23, 24
L_KNEE, R_KNEE, L_ANKLE, R_ANKLE, L_HEEL, R_HEEL = 25, 26, 27, 28, 29, 30
L_TOE, R_TOE = 31, 32  # BlazePose's foot index points: the toes


@dataclass(frozen=True)
class Pose:
    """One person's landmarks: `xy` (33, 2) in normalised image coordinates, `visibility` (33,) in [0, 1]."""

    xy: FloatArray
    visibility: FloatArray

    def __post_init__(self) -> None:
        if self.xy.shape != (N_LANDMARKS, 2):
            raise ValueError(f"xy: expected ({N_LANDMARKS}, 2), got {self.xy.shape}")
        if self.visibility.shape != (N_LANDMARKS,):
            raise ValueError(f"visibility: expected ({N_LANDMARKS},), got {self.visibility.shape}")

    def visible(self, min_visibility: float = 0.5) -> npt.NDArray[np.bool_]:
        return self.visibility >= min_visibility

    def bbox_xyxy(self, min_visibility: float = 0.5) -> tuple[float, float, float, float]:
        """Box around the visible landmarks (all if none is visible), normalised, clipped to [0, 1]."""
        mask = self.visible(min_visibility)
        pts = self.xy[mask] if mask.any() else self.xy
        x0, y0 = np.clip(pts.min(axis=0), 0.0, 1.0)
        x1, y1 = np.clip(pts.max(axis=0), 0.0, 1.0)
        return float(x0), float(y0), float(x1), float(y1)

    def hip_centre_xy(self) -> tuple[float, float]:
        x, y = self.xy[[L_HIP, R_HIP]].mean(axis=0)
        return float(x), float(y)


@dataclass(frozen=True)
class Hazard:
    """Something the walker must hear about, as the pipeline sees it in one frame."""

    kind: str
    tier: Tier
    side: Side = "centre"
    distance_m: float | None = None
    ttc_s: float | None = None
    text: str = ""
    key: str = ""  # identity across frames (a track id); empty: kind and side identify it


@dataclass(frozen=True)
class Analysis:
    """What the pipeline made of one frame. `timings_ms` holds the cost of each stage."""

    timestamp_ms: int
    frame_wh: tuple[int, int]
    walker: Pose | None
    people: tuple[Pose, ...]
    hazards: tuple[Hazard, ...]
    timings_ms: dict[str, float] = field(default_factory=dict)
    mode_state: dict[str, Any] = field(default_factory=dict)  # treadmill: zone, figures, notice, calibration
    path: dict[str, Any] = field(default_factory=dict)  # partner mode: see PATH_KEYS


# Partner mode: what `Analysis.path` holds (JSON-ready; empty when the walker or the ground is unknown).
PATH_KEYS = {
    "coverage": "share (0-1) of the walker's next 3 m of corridor the camera sees this frame",
    "coverage_by_m": "[0-1 m, 1-2 m, 2-3 m] shares of the same",
    "coverage_low": "bool: coverage has been low for a while (partner is coached)",
    "coach": "text for the partner, or None: e.g. 'Walk half a step to your left'",
    "coach_id": "phrase id of `coach` (pre-rendered audio), or None",
    "walker_speed_mps": "the walker's speed over the ground, from the ground's flow, or None",
    "motion_known": "bool: False when the ground's flow cannot be measured (the walker's motion is unknown)",
    "heading_deg": "walking direction relative to the camera's line of sight to the walker",
    "distance_m": "camera to the walker's heels, on the ground",
    "camera_height_m": "the camera above the ground: measured from the phone's tilt, or the prior",
    "camera_height_measured": "bool: camera_height_m comes from the phone's tilt sensor",
    "facing_camera": "bool: the walker faces the camera (walks backwards); obstacle cues only then",
    "corridor_px": "[[u, v], ...] image polygon of the corridor, heels to 3 m behind",
    "obstacles": "[{id, kind, distance_m, distance_sd_m, closing_mps, ttc_s, side, in_corridor, box_px}]",
}
