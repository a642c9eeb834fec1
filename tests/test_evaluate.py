"""The evaluation's arithmetic on hand-made truth and timelines: what counts as warned in time, side,
distance error, lead, and false alarms on clear paths."""

from __future__ import annotations

from typing import Any

import pytest

from server.evaluate import score_scene, summarise


def truth(control: bool = False) -> dict[str, Any]:
    """A pole 4 m behind a walker closing at 1 m/s from t=0: contact at 4 s, deadline 2 s."""
    per_frame = [
        {"t": t / 10, "obstacles": [{"id": "pole", "distance_m": 4.0 - t / 10, "side": "left"}]}
        for t in range(40)
    ]
    obstacles = [] if control else [
        {"id": "pole", "hazard_kind": "obstacle", "ever_in_corridor": True, "advisory_t_s": 1.0,
         "contact_t_s": 4.0, "contact_in_clip": True},
    ]  # fmt: skip
    return {
        "name": "s",
        "duration_s": 6.0,
        "control": control,
        "obstacles": obstacles,
        "per_frame": per_frame,
    }


def event(
    t: float, side: str = "left", distance: float | None = None, kind: str = "obstacle", repeat: bool = False
) -> dict[str, Any]:
    return {
        "t": t,
        "tier": "advisory",
        "kind": kind,
        "side": side,
        "distance_m": distance,
        "ttc_s": None,
        "repeat": repeat,
    }


@pytest.mark.parametrize(
    ("events", "warned", "lead", "side_right"),
    [
        ([event(1.0)], True, 3.0, True),
        ([event(2.0)], True, 2.0, True),  # exactly 2 s before contact counts
        ([event(2.5)], False, 1.5, True),  # warned, but too late
        ([event(1.0, side="right")], True, 3.0, False),
        ([event(1.0, kind="walker_lost")], False, None, None),  # blindness is not a warning about it
        ([], False, None, None),
    ],
)
def test_warned_in_time(
    events: list[dict[str, Any]], warned: bool, lead: float | None, side_right: bool | None
) -> None:
    h = score_scene(truth(), {"events": events})["hazards"][0]
    assert h["warned_2s"] is warned and h.get("lead_s") == lead and h.get("side_right") == side_right


def test_distance_error_is_relative_to_the_truth_at_that_moment() -> None:
    h = score_scene(truth(), {"events": [event(1.0, distance=3.3)]})["hazards"][0]
    assert h["distance_error"] == pytest.approx(0.1)  # truth 3.0 m at t=1


def test_false_alarms_on_clear_paths_count_onsets_per_minute() -> None:
    clear = score_scene(
        truth(control=True), {"events": [event(1.0), event(3.0, repeat=True), event(4.0, kind="walker_lost")]}
    )
    assert clear["hazards"] == [] and clear["control"]["false_alarms"] == 2
    result = summarise([clear, score_scene(truth(), {"events": [event(1.0, distance=3.0)]})])
    assert result["false_alarms_per_min"] == pytest.approx(2 / 0.1)
    assert result["overall"]["warned_2s"] == 1.0 and result["by_kind"]["obstacle"]["side_accuracy"] == 1.0
