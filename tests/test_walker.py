"""Walker selection: the large, central, frontal person wins; a partial body at the edge does not."""

from __future__ import annotations

import numpy as np

from vision.types import L_SHOULDER, NOSE, R_SHOULDER, Pose
from vision.walker import select_walker


def person(cx: float, height: float, frontal: bool = True, visible: int = 33) -> Pose:
    """A stick person centred at `cx`, `height` tall (normalised), standing on y = 0.9."""
    rng = np.random.default_rng(int(cx * 100 + height * 10))
    xy = np.column_stack(
        [cx + rng.uniform(-0.15, 0.15, 33) * height, 0.9 - rng.uniform(0, 1, 33) * height]
    ).astype(np.float32)
    xy[L_SHOULDER, 0], xy[R_SHOULDER, 0] = (cx + 0.1 * height, cx - 0.1 * height)
    if not frontal:
        xy[[L_SHOULDER, R_SHOULDER], 0] = xy[[R_SHOULDER, L_SHOULDER], 0]
    vis = np.zeros(33, np.float32)
    vis[:visible] = 0.9
    if not frontal:
        vis[NOSE] = 0.1
    return Pose(xy=xy, visibility=vis)


def test_large_central_person_is_the_walker() -> None:
    people = [person(0.85, 0.3), person(0.5, 0.7), person(0.2, 0.4)]
    assert select_walker(people) == 1


def test_frontal_beats_a_back_view_of_the_same_size() -> None:
    assert select_walker([person(0.45, 0.6, frontal=False), person(0.55, 0.6)]) == 1


def test_partial_body_is_nobody() -> None:
    assert select_walker([person(0.5, 0.8, visible=5)]) is None


def test_continuity_keeps_the_walker_when_a_passer_by_is_slightly_bigger() -> None:
    walker, passer = person(0.45, 0.6), person(0.55, 0.65)
    assert select_walker([passer, walker]) == 0  # alone, the bigger one wins
    assert select_walker([passer, walker], previous=walker) == 1


def test_shape_is_validated() -> None:
    try:
        Pose(xy=np.zeros((17, 2), np.float32), visibility=np.zeros(33, np.float32))
    except ValueError as exc:
        assert "expected (33, 2), got (17, 2)" in str(exc)
    else:
        raise AssertionError("a (17, 2) pose was accepted")


def test_someone_far_from_the_last_walker_position_is_not_the_walker() -> None:
    walker, other = person(0.3, 0.6), person(0.7, 0.6)
    assert select_walker([other], previous=walker) is None
    assert select_walker([other]) == 0  # with no recent walker, anyone qualifies


def test_a_tiny_person_is_not_the_walker() -> None:
    assert select_walker([person(0.5, 0.12)]) is None
    assert select_walker([person(0.5, 0.12), person(0.3, 0.5)]) == 1
