"""The pipeline on real frames: the walker is found, a lost walker becomes a stop hazard after the grace."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from tests.conftest import empty_scene, jpeg, read_frames
from vision.pipeline import FrameDecodeError, Pipeline, PipelineConfig, decode_jpeg


@pytest.fixture(scope="module")
def squats() -> list[np.ndarray]:
    return read_frames("squats_facing_camera.mp4", limit=20)


def test_walker_found_on_real_frames_with_ankles(squats: list[np.ndarray]) -> None:
    pipeline = Pipeline()
    found = 0
    for i, frame in enumerate(squats):
        a = pipeline.process_jpeg(jpeg(frame), i * 200)
        if a.walker is not None and min(a.walker.visibility[[27, 28]]) > 0.5:
            found += 1
        assert a.hazards == ()
        assert a.timings_ms["pose"] > 0 and a.timings_ms["decode"] > 0
    assert found >= 0.9 * len(squats)


def test_walker_lost_after_the_grace_period_and_not_before(squats: list[np.ndarray]) -> None:
    pipeline = Pipeline(PipelineConfig(walker_lost_grace_ms=500))
    for i, frame in enumerate(squats[:5]):
        assert pipeline.process(frame, i * 100).walker is not None
    empty = cv2.resize(empty_scene(), (squats[0].shape[1], squats[0].shape[0]))
    kinds = {t: [h.kind for h in pipeline.process(empty, t).hazards] for t in range(500, 1300, 100)}
    # Last seen at t=400: still in grace up to 900 ms, lost after.
    assert all(kinds[t] == [] for t in (500, 700, 900))
    assert all(kinds[t] == ["walker_lost"] for t in (1000, 1200))
    again = pipeline.process(squats[6], 1300)
    assert again.walker is not None and again.hazards == ()


def test_nobody_from_the_start_is_walker_lost() -> None:
    pipeline = Pipeline(PipelineConfig(walker_lost_grace_ms=300))
    out = [pipeline.process(empty_scene(), t).hazards for t in range(0, 700, 100)]
    assert out[0] == () and out[-1][0].tier == "stop"


def test_timestamps_that_do_not_increase_are_tolerated(squats: list[np.ndarray]) -> None:
    pipeline = Pipeline()
    pipeline.process(squats[0], 1000)
    assert pipeline.process(squats[1], 1000).walker is not None
    assert pipeline.process(squats[2], 500).walker is not None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GIF89a....", "not a JPEG"),
        (b"", "not a JPEG"),
        (jpeg(empty_scene())[:3000], "truncated"),
        (b"\xff\xd8" + b"\x00" * 2000 + b"\xff\xd9", "corrupt"),
    ],
)
def test_bad_jpeg_is_refused_clearly(data: bytes, message: str) -> None:
    with pytest.raises(FrameDecodeError, match=message):
        decode_jpeg(data)


def test_huge_frame_is_refused_before_decoding() -> None:
    big = jpeg(np.zeros((2000, 2000, 3), np.uint8))
    with pytest.raises(FrameDecodeError, match="over"):
        decode_jpeg(big, max_pixels=1000 * 1000)


def test_the_walker_stays_the_same_person_when_two_are_in_view() -> None:
    """Two people walk side by side toward the camera: the walker must not swap between them."""
    frames = read_frames("corridor_two_walk_toward.mp4")
    pipeline = Pipeline()
    xs = []
    for i, frame in enumerate(frames):
        a = pipeline.process(frame, int(i * 80))
        assert a.hazards == ()  # somebody who could be the walker is in view all along
        if a.walker is not None:
            xs.append(a.walker.hip_centre_xy()[0])
            if len(a.people) >= 2:
                centres = sorted(p.hip_centre_xy()[0] for p in a.people)
                assert centres[-1] - centres[0] > 0.1  # two distinct people really were found
    assert len(xs) >= 0.5 * len(frames)
    jumps = [abs(b - a) for a, b in itertools.pairwise(xs)]
    assert max(jumps) < 0.15
