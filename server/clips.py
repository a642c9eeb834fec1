"""Recorded clips for replay: checked up front, upright, downscaled as the phone page would send them."""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
import numpy.typing as npt

T = TypeVar("T")

# The camera page sends at most 640 px on the long side; replay analyses the same size so that it
# reproduces what a walker would have heard (web_client/camera.js MAX_SIDE).
ANALYSIS_MAX_SIDE = 640
# ...and JPEG-compresses it at this quality (camera.js: canvas.toBlob(..., 0.7)). Replay does the same so
# that offline, realtime and live runs see the same pixels; it costs about 2 ms a frame.
PHONE_JPEG_QUALITY = 70
MAX_SOURCE_PIXELS = 7680 * 4320  # 8K; larger is refused rather than decoded
MAX_FPS = 240.0
MIN_FPS = 0.1  # below, a clip of a few frames spans hours: per-second figures ran away (--fps 1e-6 hung)


class ClipError(ValueError):
    """The clip cannot be replayed; the message says why."""


@dataclass(frozen=True)
class ClipInfo:
    path: Path
    fps: float
    frame_count: int  # as the container claims; the real count is known after reading
    source_wh: tuple[int, int]  # upright, after any rotation metadata
    analysis_wh: tuple[int, int]


def _even(x: float) -> int:
    return max(2, round(x / 2) * 2)  # H.264 with yuv420p wants even sizes


def open_upright(path: Path) -> cv2.VideoCapture:
    """A capture that applies the rotation tag phones write into portrait clips. OpenCV 4.11 reads the
    tag but leaves auto-rotation off; the frames then match what ffmpeg and browsers display."""
    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return cap


def probe(path: Path, fps_override: float | None = None) -> ClipInfo:
    if not path.exists():
        raise ClipError(f"{path}: no such file")
    if not path.is_file():
        raise ClipError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise ClipError(f"{path}: empty file (0 bytes)")
    cap = open_upright(path)
    try:
        if not cap.isOpened():
            raise ClipError(f"{path}: not a video this machine can decode")
        ok, frame = cap.read()
        if not ok or frame is None:
            raise ClipError(f"{path}: no frame could be decoded (zero-length or corrupt clip)")
        h, w = frame.shape[:2]
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        cap.release()
    if w * h > MAX_SOURCE_PIXELS:
        raise ClipError(f"{path}: {w}x{h} is larger than 8K; downscale it first")
    if fps_override is not None:
        if not MIN_FPS <= fps_override <= MAX_FPS:
            raise ClipError(f"--fps must be in [{MIN_FPS}, {MAX_FPS}], got {fps_override}")
        fps = fps_override
    elif not math.isfinite(fps) or not MIN_FPS <= fps <= MAX_FPS:
        raise ClipError(f"{path}: the container gives no usable frame rate ({fps}); pass --fps")
    scale = min(1.0, ANALYSIS_MAX_SIDE / max(w, h))
    return ClipInfo(path, fps, count, (w, h), (_even(w * scale), _even(h * scale)))


def phone_jpeg(bgr: npt.NDArray[np.uint8]) -> bytes:
    """The frame as the phone page would send it."""
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, PHONE_JPEG_QUALITY])
    if not ok:
        raise ClipError("JPEG encoding failed")
    return bytes(buf.tobytes())


def frames(info: ClipInfo) -> Iterator[npt.NDArray[np.uint8]]:
    """Every frame, upright, at `info.analysis_wh`, BGR."""
    cap = open_upright(info.path)
    try:
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                return
            if (frame.shape[1], frame.shape[0]) != info.analysis_wh:
                frame = cv2.resize(frame, info.analysis_wh, interpolation=cv2.INTER_AREA)
            yield frame.astype(np.uint8, copy=False)
    finally:
        cap.release()


_DONE = object()


def prefetched(items: Iterable[T], depth: int = 8) -> Iterator[T]:
    """`items` produced by a background thread, at most `depth` ahead. Video decoding and JPEG coding
    release the GIL, so they run on the other core while the caller runs the pose model."""
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            q.put(exc)

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join(timeout=5)


def frames_as_sent(info: ClipInfo) -> Iterator[tuple[npt.NDArray[np.uint8], bytes]]:
    """(upright frame at the analysis size, the JPEG the phone page would have sent of it), prefetched."""
    return prefetched((f, phone_jpeg(f)) for f in frames(info))
