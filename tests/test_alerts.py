"""Alert policy tables: tiers by time to contact, flicker, escalation, priority, dropouts, sensitivity."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from vision.alerts import AlertConfig, AlertPolicy
from vision.phrases import COACH_PHRASES, all_phrases, phrase_for, phrase_id_of
from vision.types import Hazard

LOST = Hazard(kind="walker_lost", tier="stop", text="Stop. Walker not in view")


def obstacle(ttc: float, side: str = "left", kind: str = "obstacle", key: str = "a") -> Hazard:
    return Hazard(kind=kind, tier="advisory", side=side, ttc_s=ttc, distance_m=ttc * 1.0, key=key)  # type: ignore[arg-type]


def heard(frames: list[tuple[float, list[Hazard]]], **config: object) -> list[tuple[float, str]]:
    policy = AlertPolicy(AlertConfig(**config))  # type: ignore[arg-type]
    out = []
    for t, hazards in frames:
        out += [(round(t, 2), f"{c.tier}:{c.kind}:{c.side}") for c in policy.update(t, hazards).cues]
    return out


def approach(
    start_ttc: float, speed_scale: float = 1.0, dt: float = 0.1, **kw: object
) -> list[tuple[float, list[Hazard]]]:
    """An obstacle closing so its time to contact falls 1 s per second, sampled every `dt`."""
    frames = []
    t = 0.0
    while start_ttc - t * speed_scale > 0:
        frames.append((t, [obstacle(start_ttc - t * speed_scale, **kw)]))  # type: ignore[arg-type]
        t = round(t + dt, 3)
    return frames


def test_blindness_is_cued_at_onset_and_repeated_while_it_lasts() -> None:
    frames = [(t / 10, [LOST]) for t in range(0, 50)]
    assert heard(frames) == [
        (0.0, "stop:walker_lost:centre"),
        (2.0, "stop:walker_lost:centre"),
        (4.0, "stop:walker_lost:centre"),
    ]


def test_tiers_by_time_to_contact_one_cue_each() -> None:
    assert heard(approach(5.0)) == [
        (2.0, "advisory:obstacle:left"),
        (3.5, "urgent:obstacle:left"),
        (4.0, "stop:obstacle:left"),
    ]


@pytest.mark.parametrize(
    ("ttcs", "expected"),
    [
        ([2.9, 3.1, 2.95, 3.2, 2.9, 3.3], ["advisory"]),  # hovering at the advisory threshold
        ([1.45, 1.6, 1.5, 1.7, 1.4], ["urgent"]),  # hovering at the urgent threshold
        ([0.95, 1.1, 0.98, 1.15], ["stop"]),
        ([2.5, 3.6, 2.9], ["advisory", "advisory"]),  # clearly gone above 3.5 s, then back: news again
        ([1.2, 2.0, 1.2], ["urgent"]),  # de-escalation is silent, and the same tier again is not news
        ([2.0, 1.2, 2.5, 1.2], ["advisory", "urgent"]),  # back down and up again: TTC estimates jitter
    ],
)
def test_no_flicker_at_thresholds(ttcs: list[float], expected: list[str]) -> None:
    frames = [(i * 0.1, [obstacle(ttc)]) for i, ttc in enumerate(ttcs)]
    assert [c.split(":")[0] for _, c in heard(frames)] == expected


def test_hazard_that_drops_out_briefly_is_the_same_hazard() -> None:
    gap = [(0.0, [obstacle(2.0)]), (0.1, []), (0.3, []), (0.4, [obstacle(1.9)])]
    assert len(heard(gap)) == 1
    gone = [(0.0, [obstacle(2.0)]), (0.1, []), (1.0, []), (1.1, [obstacle(1.9)])]
    assert len(heard(gone)) == 2


def test_blindness_clears_at_once_and_is_cued_again_when_it_returns() -> None:
    policy = AlertPolicy()
    assert len(policy.update(0.0, [LOST]).cues) == 1 and policy.blind
    out = policy.update(0.1, [])
    assert out.cues == () and out.cleared == ("walker_lost:centre",) and not policy.blind
    assert len(policy.update(0.2, [LOST]).cues) == 1


def test_two_hazards_at_once_the_more_urgent_speaks() -> None:
    policy = AlertPolicy()
    out = policy.update(0.0, [obstacle(2.5, "right", key="r"), obstacle(1.2, "left", key="l")])
    assert [(c.tier, c.side) for c in out.cues] == [("urgent", "left")]
    assert [a.key for a in out.active] == ["l", "r"]  # the beeper follows the urgent one
    # The advisory on the right is not queued behind it; it is spoken once it matters as much.
    assert policy.update(0.1, [obstacle(2.4, "right", key="r"), obstacle(1.1, "left", key="l")]).cues == ()
    out = policy.update(0.2, [obstacle(1.4, "right", key="r"), obstacle(1.05, "left", key="l")])
    assert [(c.tier, c.side) for c in out.cues] == [("urgent", "right")]


def test_the_nearest_in_time_wins_among_equals() -> None:
    out = AlertPolicy().update(0.0, [obstacle(2.8, "left", key="a"), obstacle(2.1, "right", key="b")])
    assert [c.side for c in out.cues] == ["right"]


def test_blindness_beats_an_obstacle() -> None:
    out = AlertPolicy().update(0.0, [obstacle(1.2), LOST])
    assert [c.kind for c in out.cues] == ["walker_lost"]


@pytest.mark.parametrize(
    ("sensitivity", "expected"),
    [
        ("early", [(1.0, "advisory"), (3.0, "urgent"), (3.7, "stop")]),
        ("normal", [(2.0, "advisory"), (3.5, "urgent"), (4.0, "stop")]),
        ("fewer", [(3.5, "urgent"), (4.0, "stop")]),
    ],
)
def test_sensitivity_moves_warnings_earlier_or_drops_advisories(
    sensitivity: str, expected: list[tuple[float, str]]
) -> None:
    got = [(t, c.split(":")[0]) for t, c in heard(approach(5.0), sensitivity=sensitivity)]
    assert got == expected


def test_spoken_repeats_of_a_persisting_obstacle_are_optional() -> None:
    frames = [(i * 0.5, [obstacle(2.5)]) for i in range(13)]  # an obstacle hovering 2.5 s away for 6 s
    assert len(heard(frames)) == 1
    assert len(heard(frames, repeat_s=2.0)) == 4


def test_phrases_step_away_from_the_hazard_and_all_are_known() -> None:
    assert phrase_for("person", "urgent", "left") == ("person_urgent_left", "Person close, step right")
    assert phrase_for("kerb", "advisory", "centre") == ("kerb_centre", "Kerb behind you")
    assert phrase_for("obstacle", "stop", "right") == ("stop", "Stop")
    cue = AlertPolicy().update(0.0, [obstacle(2.0, "right", kind="dog")]).cues[0]
    assert (cue.phrase, cue.text) == ("dog_right", "Dog behind you, right")
    assert cue.phrase in all_phrases()


# Path hidden: the walker is seen, the corridor behind them is not. A notice, not a hazard.
HIDDEN = Hazard(kind="path_hidden", tier="advisory", text="I cannot see behind you", key="path_hidden")


def timeline(
    seconds: float, *spans: tuple[float, float, Hazard | Callable[[float], Hazard]]
) -> list[tuple[float, list[Hazard]]]:
    """Frames every 0.1 s; each span (start, end, hazard or t -> hazard) is present for start <= t < end."""
    frames = []
    for i in range(round(seconds * 10)):
        t = round(i * 0.1, 2)
        frames.append((t, [h(t) if callable(h) else h for a, b, h in spans if a <= t < b]))
    return frames


def closing(start_s: float, start_ttc: float, side: str = "left") -> Callable[[float], Hazard]:
    return lambda t: obstacle(start_ttc - (t - start_s), side)


PATH = "advisory:path_hidden:centre"


@pytest.mark.parametrize(
    ("spans", "config", "expected"),
    [
        # Said once at onset, not repeated like blindness, even when persisting obstacles repeat.
        ([(0, 10, HIDDEN)], {}, [(0.0, PATH)]),
        ([(0, 10, HIDDEN)], {"repeat_s": 2.0}, [(0.0, PATH)]),
        # "Fewer" drops spoken advisories about obstacles, not this: silence would read as clear.
        ([(0, 10, HIDDEN)], {"sensitivity": "fewer"}, [(0.0, PATH)]),
        # An obstacle arriving while the path is hidden is still spoken, every tier of it.
        (
            [(0, 10, HIDDEN), (3, 6.5, closing(3, 2.5))],
            {},
            [
                (0.0, PATH),
                (3.0, "advisory:obstacle:left"),
                (4.0, "urgent:obstacle:left"),
                (4.5, "stop:obstacle:left"),
            ],
        ),
        # Both at once: the obstacle takes the spoken slot; the notice waits 2.5 s so it cuts nothing off.
        ([(0, 10, HIDDEN), (0, 5, obstacle(2.5))], {}, [(0.0, "advisory:obstacle:left"), (2.5, PATH)]),
        # Nothing is said over an urgent beeper; the notice comes once the hazard has gone (held 0.6 s).
        ([(0, 10, HIDDEN), (0, 4, obstacle(1.2))], {}, [(0.0, "urgent:obstacle:left"), (4.5, PATH)]),
        # ... and if the path shows again first, it is never said.
        ([(0, 1, HIDDEN), (0, 4, obstacle(1.2))], {}, [(0.0, "urgent:obstacle:left")]),
        # Coverage hovering at its threshold: a lapse under 5 s is the same notice; a longer one is news.
        ([(0, 2, HIDDEN), (4, 6, HIDDEN)], {}, [(0.0, PATH)]),
        ([(0, 2, HIDDEN), (8, 10, HIDDEN)], {}, [(0.0, PATH), (8.0, PATH)]),
        # Blindness beats it (the stop siren repeats; the notice would only add noise).
        (
            [(0, 3, HIDDEN), (0, 3, LOST)],
            {},
            [(0.0, "stop:walker_lost:centre"), (2.0, "stop:walker_lost:centre")],
        ),
    ],
)
def test_path_hidden_is_said_once_and_never_masks_a_hazard(
    spans: list[tuple[float, float, Any]], config: dict[str, Any], expected: list[tuple[float, str]]
) -> None:
    assert heard(timeline(10, *spans), **config) == expected


def test_path_hidden_is_a_notice_not_a_sounding_hazard() -> None:
    policy = AlertPolicy()
    out = policy.update(0.0, [HIDDEN])
    assert [(c.tier, c.kind, c.side, c.phrase, c.text, c.ttc_s) for c in out.cues] == [
        ("advisory", "path_hidden", "centre", "path_hidden", "I cannot see behind you", None)
    ]
    # Not in `active` (the beeper follows it), not blindness (the walker is seen), never a stop.
    assert out.active == () and not policy.blind and policy.notices == ("path_hidden",)
    out = policy.update(0.1, [HIDDEN, obstacle(1.2)])
    assert [a.kind for a in out.active] == ["obstacle"] and [c.tier for c in out.cues] == ["urgent"]
    assert policy.tier_for(Hazard(kind="path_hidden", tier="stop"), None) == "advisory"
    # Gone from the frame: no longer reported, though held as the same notice for a while.
    assert policy.update(0.2, [obstacle(1.1)]).cues == () and policy.notices == ()


def test_coaching_and_notice_phrases_are_stable_and_pre_rendered() -> None:
    phrases = all_phrases()
    assert COACH_PHRASES == {
        "coach_left": "Walk half a step to your left",
        "coach_right": "Walk half a step to your right",
        "coach_back": "Step back so the path shows",
        "coach_aim_lower": "Aim the phone lower",
        "coach_aim_higher": "Aim the phone higher",
    }
    assert COACH_PHRASES.items() <= phrases.items()
    assert phrases["path_hidden"] == "I cannot see behind you"
    assert phrase_for("path_hidden", "advisory", "centre") == ("path_hidden", "I cannot see behind you")
    assert phrase_id_of("Walk half a step to your left") == "coach_left"
    assert len(set(phrases.values())) == len(phrases)  # one id per text: a text finds its audio
