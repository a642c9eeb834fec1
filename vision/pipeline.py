"""The frame pipeline: decode, pose, walker selection, hazards. One object per stream, live or replay."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import numpy.typing as npt

from vision.drill import DrillHazard, drill_hazards
from vision.ground import GroundConfig, GroundTracker
from vision.obstacles import PathConfig, PathResult, PathWatcher
from vision.pose import PoseEstimator
from vision.tilt import elevation_in_frame
from vision.treadmill import Calibration, TreadmillConfig, TreadmillMonitor, mean_luma
from vision.types import L_SHOULDER, R_SHOULDER, Analysis, Hazard, Pose
from vision.walker import select_walker

JPEG_SOI = b"\xff\xd8"
JPEG_EOI = b"\xff\xd9"


class FrameDecodeError(ValueError):
    """The bytes are not a whole JPEG frame we can analyse."""


@dataclass(frozen=True)
class PipelineConfig:
    """`walker_lost_grace_ms`: how long the walker may be out of view before a stop cue. Short enough
    that cue plus delivery stays inside the one-second fail-safe budget, long enough that a single
    missed detection (motion blur, a swinging arm across the body) does not raise it."""

    walker_lost_grace_ms: int = 500
    num_poses: int = 1  # see Settings.num_poses for the measurement behind it
    # Refused above this by the JPEG's header, before decoding: the camera page sends 640 px, a phone's full
    # 1920 x 1080 fits, and a 4096 x 4096 frame (only 333 kB as a JPEG) cost 10 times a 640 px one on the
    # vision threads every session shares.
    max_frame_pixels: int = 1920 * 1920
    model_path: Path | None = None  # None: the bundle in models/
    drill: tuple[DrillHazard, ...] = ()  # scripted hazards, timed from the first frame
    mode: Literal["partner", "treadmill"] = "partner"
    treadmill: TreadmillConfig | None = None  # None: its defaults
    calibration: Calibration | None = None  # treadmill: a known calibration instead of learning one
    ground: GroundConfig | None = None  # partner mode: camera and walker priors; None: defaults
    path: PathConfig | None = None  # partner mode: obstacle and coverage settings; None: defaults
    watch_path: bool = True  # partner mode: look for obstacles and measure coverage
    # At most this often (ms): at 30 fps the path stage would take the pipeline to 30 ms a frame, a
    # whole frame interval, and frames queued (live benchmark: server-added p95 31 ms at 30 fps); at
    # 15 Hz it keeps up, and hazards a frame old are 33 ms old.
    path_interval_ms: int = 60
    # Treadmill mode, a phone that sends no tilt: its tilt is read from the room's vertical edges on one frame
    # in this many while the monitor calibrates (vision.tilt; 10-20 ms a reading at 640 px)
    image_tilt_every: int = 5


_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_size_wh(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the JPEG's start-of-frame segment, read without decoding: a huge frame is
    refused before it costs memory."""
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        seg_len = int.from_bytes(data[i + 2 : i + 4], "big")
        if marker in _SOF_MARKERS:
            h = int.from_bytes(data[i + 5 : i + 7], "big")
            w = int.from_bytes(data[i + 7 : i + 9], "big")
            return (w, h) if w and h else None
        if marker == 0xDA or seg_len < 2:  # start of scan before any frame header
            return None
        i += 2 + seg_len
    return None


def decode_jpeg(data: bytes, max_pixels: int = PipelineConfig.max_frame_pixels) -> npt.NDArray[np.uint8]:
    """Decode JPEG bytes to an (H, W, 3) BGR array, refusing anything that is not one whole JPEG."""
    if not data.startswith(JPEG_SOI):
        raise FrameDecodeError("not a JPEG (no start-of-image marker)")
    if JPEG_EOI not in data[-64:]:
        raise FrameDecodeError("truncated JPEG (no end-of-image marker)")
    size = jpeg_size_wh(data)
    if size is None:
        raise FrameDecodeError("corrupt JPEG (no frame header)")
    if size[0] * size[1] > max_pixels:
        raise FrameDecodeError(f"frame of {size[0]}x{size[1]} is over {max_pixels} pixels")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise FrameDecodeError("corrupt JPEG (decoder failed)")
    return img.astype(np.uint8, copy=False)


class Pipeline:
    """Turns frames with timestamps into Analyses for one stream. Calls are serialised by a lock, so a
    `close` from another thread waits for the frame in progress instead of freeing the model under it."""

    def __init__(self, config: PipelineConfig | None = None, estimator: PoseEstimator | None = None) -> None:
        self.config = config or PipelineConfig()
        partner = self.config.mode == "partner" and self.config.watch_path
        self._estimator = estimator or PoseEstimator(
            self.config.model_path, num_poses=self.config.num_poses, segmentation=partner
        )
        # Partner mode: the ground behind the walker (the walker's body is segmented: it hides the path).
        self._path = PathWatcher(self.config.path, GroundTracker(self.config.ground)) if partner else None
        self._last_path: tuple[int, PathResult] | None = None
        self._walker: Pose | None = None
        self._walker_seen_ms: int | None = None
        self._first_ms: int | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._treadmill = (
            TreadmillMonitor(self.config.treadmill, self.config.calibration)
            if self.config.mode == "treadmill"
            else None
        )
        self._image_tilt_frames = 0  # treadmill: calibrating frames seen (one in `image_tilt_every` is read)

    def process_jpeg(self, data: bytes, timestamp_ms: int, pitch_deg: float | None = None) -> Analysis:
        t0 = time.perf_counter()
        bgr = decode_jpeg(data, self.config.max_frame_pixels)
        decode_ms = (time.perf_counter() - t0) * 1000
        analysis = self.process(bgr, timestamp_ms, pitch_deg)
        analysis.timings_ms["decode"] = decode_ms
        return analysis

    def process(
        self, bgr: npt.NDArray[np.uint8], timestamp_ms: int, pitch_deg: float | None = None
    ) -> Analysis:
        """One frame. `pitch_deg`: the elevation of the phone's camera when the frame was taken, from its
        gravity sensor (degrees, up positive; None when the phone does not say): partner mode then
        measures the camera's height instead of assuming it, and treadmill mode knows at once when the
        phone on its stand is knocked."""
        with self._lock:
            if self._closed:
                raise RuntimeError("pipeline is closed")
            return self._process(bgr, timestamp_ms, pitch_deg)

    def _process(self, bgr: npt.NDArray[np.uint8], timestamp_ms: int, pitch_deg: float | None) -> Analysis:
        t0 = time.perf_counter()
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.uint8, copy=False)
        t1 = time.perf_counter()
        people, masks = self._estimator.detect_with_masks(rgb, timestamp_ms)
        t2 = time.perf_counter()
        recent = self._walker_seen_ms is not None and (
            timestamp_ms - self._walker_seen_ms <= self.config.walker_lost_grace_ms
        )
        idx = select_walker(people, self._walker if recent else None)
        walker = people[idx] if idx is not None else None
        mode_state: dict[str, Any] = {}
        path: dict[str, Any] = {}
        timings: dict[str, float] = {}
        if self._treadmill is not None:
            # Treadmill mode: zones and body state instead of obstacles. The monitor has its own
            # walker-lost grace, so the partner-mode hazards are computed (to keep the walker state)
            # but not added twice.
            wh = (bgr.shape[1], bgr.shape[0])
            image_tilt = self._tilt_from_image(bgr, walker) if pitch_deg is None else None
            state = self._treadmill.update(walker, timestamp_ms, wh, mean_luma(bgr), pitch_deg, image_tilt)
            self._hazards(walker, timestamp_ms)
            hazards = [*state.hazards, *drill_hazards(self.config.drill, self._drill_t(timestamp_ms))]
            mode_state = {
                "zone": state.zone,
                "calibrating": state.calibrating,
                "notice": state.notice,
                "figures": dict(state.figures),
                "calibration": state.calibration.to_dict() if state.calibration else None,
                "setup": self._treadmill.setup,
            }
        else:
            hazards = self._hazards(walker, timestamp_ms)
            if self._path is not None:
                tp = time.perf_counter()
                mask = masks[idx] if idx is not None else None
                found = self._watch_path(bgr, walker, mask, timestamp_ms, pitch_deg)
                if found is not None:
                    hazards += found.hazards
                    path = found.view
                timings["path"] = (time.perf_counter() - tp) * 1000
        t3 = time.perf_counter()
        return Analysis(
            timestamp_ms=timestamp_ms,
            frame_wh=(bgr.shape[1], bgr.shape[0]),
            walker=walker,
            people=tuple(people),
            hazards=tuple(hazards),
            mode_state=mode_state,
            path=path,
            timings_ms={
                **timings,
                "convert": (t1 - t0) * 1000,
                "pose": (t2 - t1) * 1000,
                "hazards": (t3 - t2) * 1000,
                "pipeline": (t3 - t0) * 1000,
            },
        )

    def _hazards(self, walker: Pose | None, timestamp_ms: int) -> list[Hazard]:
        if self._first_ms is None:
            self._first_ms = timestamp_ms
        hazards = drill_hazards(self.config.drill, self._drill_t(timestamp_ms))
        if walker is not None:
            self._walker, self._walker_seen_ms = walker, timestamp_ms
            return hazards
        last = self._walker_seen_ms if self._walker_seen_ms is not None else self._first_ms
        if timestamp_ms - last > self.config.walker_lost_grace_ms:
            self._walker = None
            hazards.append(Hazard(kind="walker_lost", tier="stop", text="Stop. Walker not in view"))
        return hazards

    def _watch_path(
        self,
        bgr: npt.NDArray[np.uint8],
        walker: Pose | None,
        mask: npt.NDArray[np.float32] | None,
        timestamp_ms: int,
        pitch_deg: float | None,
    ) -> PathResult | None:
        """Coverage and obstacles, when the walker (and with them the ground) is known this frame."""
        assert self._path is not None
        if walker is None:
            if self._walker is None:  # lost for longer than the grace: start afresh when they return
                self._path.reset()
            self._last_path = None
            return None
        last = self._last_path
        if last is not None and timestamp_ms - last[0] < self.config.path_interval_ms:
            return last[1]  # a faster stream: the path is looked at 15 times a second, pose every frame
        ground = self._path.ground.update(walker, (bgr.shape[1], bgr.shape[0]), pitch_deg)
        if ground is None:  # feet or eyes out of view: no ground this frame
            self._last_path = None
            return None
        # Facing the camera: the left shoulder shows on the image's right (MediaPipe names the body's sides).
        facing = bool(walker.xy[L_SHOULDER, 0] > walker.xy[R_SHOULDER, 0])
        found = self._path.update(bgr, ground, mask, timestamp_ms / 1000.0, facing)
        self._last_path = (timestamp_ms, found)
        return found

    def _tilt_from_image(self, bgr: npt.NDArray[np.uint8], walker: Pose | None) -> float | None:
        """Treadmill mode, a phone that does not send its tilt, while the monitor calibrates (the phone on
        its stand stands still): on one frame in `image_tilt_every`, the tilt read from the room's vertical
        edges (`vision.tilt`: at most 640 px on the long side, the walker's limbs left out); else None. The
        monitor keeps the readings with its calibration frames and calibrates with their median."""
        assert self._treadmill is not None
        if self._treadmill.calibration is not None:
            return None
        frame, self._image_tilt_frames = self._image_tilt_frames, self._image_tilt_frames + 1
        if frame % max(1, self.config.image_tilt_every):
            return None
        return elevation_in_frame(bgr, walker, self._treadmill.config.focal_long_side)

    def _drill_t(self, timestamp_ms: int) -> float:
        return (timestamp_ms - (self._first_ms if self._first_ms is not None else timestamp_ms)) / 1000.0

    def set_walker_height(self, height_m: float | None) -> None:
        """Partner mode: the walker's stature in metres (the ground model's ruler), or None: the prior."""
        with self._lock:
            if self._path is not None:
                self._path.ground.set_walker_height(height_m)

    def set_treadmill_setup(
        self, body_height_m: float | None, belt_length_m: float | None, belt_width_m: float | None
    ) -> None:
        """Treadmill mode: the walker's height and the belt's size (None: as configured; a change calibrates
        again); a no-op otherwise."""
        with self._lock:
            if self._treadmill is not None:
                self._treadmill.set_setup(body_height_m, belt_length_m, belt_width_m)

    def recalibrate(self) -> None:
        """Treadmill mode: learn the belt's safe zone again from the next frames (a no-op otherwise)."""
        with self._lock:
            if self._treadmill is not None:
                self._treadmill.recalibrate()

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._estimator.close()
