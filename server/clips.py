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
    # Frames are timed by the container's timestamps; with --fps (`probe`'s override) by index and rate.
    timestamps: bool = True


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
    wh = (_even(w * scale), _even(h * scale))
    return ClipInfo(path, fps, count, (w, h), wh, timestamps=fps_override is None)


class FrameClock:
    """Each decoded frame's time, ms from the first frame's. Phones record variable frame rates (fewer
    frames in low light, dropped frames under load), so the container's timestamp is the frame's time; by
    index and rate, a clip that dropped every other frame for a while ran at twice the speed there, and
    times to contact, cadence and cue times came out wrong. An evenly spaced clip keeps its index times
    exactly (timestamps within a millisecond of them: the time base's rounding), so two runs and older
    timelines agree. Without usable timestamps (none, not finite, not increasing) a frame is one
    interval after the one before; with `timestamps` off (--fps given) every frame is timed by index."""

    def __init__(self, fps: float, timestamps: bool = True) -> None:
        self.step_ms = 1000.0 / fps
        self.timestamps = timestamps
        self.index = 0
        self.first_ms: float | None = None
        self.last_ms: float | None = None
        self.stamped = 0  # frames after the first timed by a usable timestamp (near the index time or not)
        self.from_container = 0  # ...of which those whose timestamp differs from the index time

    def __call__(self, pos_ms: float | None) -> float:
        t = index_t = self.index * self.step_ms
        stamp = None
        if self.timestamps and pos_ms is not None and math.isfinite(pos_ms):
            if self.first_ms is None:
                self.first_ms = pos_ms
            stamp = pos_ms - self.first_ms
            if abs(stamp - index_t) > 1.0:
                t = stamp
        if self.last_ms is not None and t <= self.last_ms:
            t, stamp = self.last_ms + self.step_ms, None  # not a usable stamp
        if stamp is not None and self.index > 0:  # the first frame's is 0 by definition: it says nothing
            self.stamped += 1
            self.from_container += t != index_t
        self.index += 1
        self.last_ms = t
        return t


def phone_jpeg(bgr: npt.NDArray[np.uint8]) -> bytes:
    """The frame as the phone page would send it."""
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, PHONE_JPEG_QUALITY])
    if not ok:
        raise ClipError("JPEG encoding failed")
    return bytes(buf.tobytes())


def timed_frames(
    info: ClipInfo, clock: FrameClock | None = None
) -> Iterator[tuple[npt.NDArray[np.uint8], float]]:
    """Every frame, upright, at `info.analysis_wh`, BGR, with its time in ms from the first (`FrameClock`;
    pass one to learn afterwards how the frames were timed)."""
    clock = clock or FrameClock(info.fps, info.timestamps)
    cap = open_upright(info.path)
    try:
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                return
            t_ms = clock(float(cap.get(cv2.CAP_PROP_POS_MSEC)))
            if (frame.shape[1], frame.shape[0]) != info.analysis_wh:
                frame = cv2.resize(frame, info.analysis_wh, interpolation=cv2.INTER_AREA)
            yield frame.astype(np.uint8, copy=False), t_ms
    finally:
        cap.release()


def frames(info: ClipInfo) -> Iterator[npt.NDArray[np.uint8]]:
    """Every frame, upright, at `info.analysis_wh`, BGR (`timed_frames` without the times)."""
    return (frame for frame, _ in timed_frames(info))


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


def frames_as_sent(
    info: ClipInfo, clock: FrameClock | None = None
) -> Iterator[tuple[npt.NDArray[np.uint8], bytes, float]]:
    """(upright frame at the analysis size, the JPEG the phone page would have sent of it, its time in ms),
    prefetched."""
    return prefetched((f, phone_jpeg(f), t) for f, t in timed_frames(info, clock))
