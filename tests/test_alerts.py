"""Alert policy tables: onset, repeat of a persisting stop, escalation, clearing, de-duplication."""

from __future__ import annotations

from vision.alerts import AlertConfig, AlertPolicy
from vision.types import Hazard

LOST = Hazard(kind="walker_lost", tier="stop", text="Stop. Walker not in view")
ADV = Hazard(kind="obstacle", tier="advisory", side="left", text="Obstacle behind you, left")
URG = Hazard(kind="obstacle", tier="urgent", side="left", text="Obstacle close, left")


def run(
    frames: list[tuple[float, list[Hazard]]], config: AlertConfig | None = None
) -> list[tuple[float, str]]:
    policy = AlertPolicy(config or AlertConfig(stop_repeat_s=2.0, repeat_s=4.0))
    heard = []
    for t, hazards in frames:
        heard += [(t, f"{c.tier}:{c.kind}") for c in policy.update(t, hazards).cues]
    return heard


def test_stop_is_cued_at_onset_and_repeated_while_it_lasts() -> None:
    frames = [(t / 10, [LOST]) for t in range(0, 50)]
    assert run(frames) == [(0.0, "stop:walker_lost"), (2.0, "stop:walker_lost"), (4.0, "stop:walker_lost")]


def test_one_cue_per_hazard_per_frame_even_if_reported_twice() -> None:
    assert run([(0.0, [LOST, LOST])]) == [(0.0, "stop:walker_lost")]


def test_escalation_is_cued_at_once_and_de_escalation_is_not() -> None:
    frames = [(0.0, [ADV]), (0.5, [ADV]), (1.0, [URG]), (1.5, [ADV]), (2.0, [ADV])]
    assert run(frames) == [(0.0, "advisory:obstacle"), (1.0, "urgent:obstacle")]


def test_hazard_that_goes_away_and_comes_back_is_cued_again_and_clear_is_silent() -> None:
    policy = AlertPolicy()
    assert len(policy.update(0.0, [LOST]).cues) == 1 and policy.blind
    out = policy.update(0.1, [])
    assert out.cues == () and out.cleared == ("walker_lost",) and not policy.blind
    assert len(policy.update(0.2, [LOST]).cues) == 1


def test_stop_comes_before_lower_tiers_in_one_update() -> None:
    policy = AlertPolicy()
    cues = policy.update(0.0, [ADV, LOST])
    assert [c.tier for c in cues.cues] == ["stop", "advisory"]
