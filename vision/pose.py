"""MediaPipe Tasks PoseLandmarker in video mode, loaded from the verified local bundle."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import numpy.typing as npt

from models import verify_bundle
from vision.types import N_LANDMARKS, Pose

logger = logging.getLogger(__name__)


class PoseEstimator:
    """Finds up to `num_poses` people in RGB frames. One instance per stream: timestamps must increase."""

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        num_poses: int = 1,
        segmentation: bool = False,
        min_detection_confidence: float = 0.5,
        min_presence_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
    ) -> None:
        from mediapipe.tasks.python import BaseOptions, vision

        path = verify_bundle(model_path) if model_path else verify_bundle()
        options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(path)),
            running_mode=vision.RunningMode.VIDEO,
            num_poses=num_poses,
            min_pose_detection_confidence=min_detection_confidence,
            min_pose_presence_confidence=min_presence_confidence,
            min_tracking_confidence=min_tracking_confidence,
            output_segmentation_masks=segmentation,
        )
        self._landmarker = vision.PoseLandmarker.create_from_options(options)
        self._last_timestamp_ms = -1

    def detect(self, rgb: npt.NDArray[np.uint8], timestamp_ms: int) -> list[Pose]:
        """Poses in an (H, W, 3) uint8 RGB frame. A timestamp not after the last one is nudged forward,
        because the video-mode graph rejects repeated or backward timestamps."""
        return self.detect_with_masks(rgb, timestamp_ms)[0]

    def detect_with_masks(
        self, rgb: npt.NDArray[np.uint8], timestamp_ms: int
    ) -> tuple[list[Pose], list[npt.NDArray[np.float32] | None]]:
        """Poses and, when the estimator was made with `segmentation=True`, each person's (H, W) float32
        body mask (1 on the body): the real silhouette that hides the ground behind the walker."""
        import mediapipe as mp

        ts = max(int(timestamp_ms), self._last_timestamp_ms + 1)
        self._last_timestamp_ms = ts
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        result = self._landmarker.detect_for_video(image, ts)
        poses: list[Pose] = []
        masks: list[npt.NDArray[np.float32] | None] = []
        seg = result.segmentation_masks or []
        for i, landmarks in enumerate(result.pose_landmarks):
            if len(landmarks) != N_LANDMARKS:
                continue
            arr = np.array([(lm.x, lm.y, lm.visibility or 0.0) for lm in landmarks], dtype=np.float32)
            poses.append(Pose(xy=arr[:, :2].copy(), visibility=arr[:, 2].copy()))
            masks.append(np.asarray(seg[i].numpy_view(), dtype=np.float32) if i < len(seg) else None)
        return poses, masks

    def close(self) -> None:
        self._landmarker.close()
