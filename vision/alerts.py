"""Alert policy: turns the hazards seen in each frame into the cues a walker hears. Pure and shared by live
and replay, so a replay reproduces what a walker would have heard."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from vision.types import Hazard, Side, Tier

TIER_RANK: dict[str, int] = {"advisory": 0, "urgent": 1, "stop": 2}


@dataclass(frozen=True)
class AlertConfig:
    """`stop_repeat_s`: a stop condition that persists is repeated this often, so a walker who missed the
    first cue (or turned round) still hears that the system is blind. `repeat_s`: the same for lower
    tiers; a hazard whose tier stays the same is not repeated sooner than this."""

    stop_repeat_s: float = 2.0
    repeat_s: float = 4.0


@dataclass(frozen=True)
class Cue:
    """One thing to play. `t_s` is the stream time of the frame that caused it."""

    t_s: float
    tier: Tier
    kind: str
    side: Side
    text: str
    distance_m: float | None = None
    ttc_s: float | None = None
    repeat: bool = False


@dataclass(frozen=True)
class PolicyOutput:
    cues: tuple[Cue, ...] = ()
    cleared: tuple[str, ...] = ()  # hazard kinds that ended at this update


@dataclass
class _Active:
    tier: Tier
    last_cue_s: float


@dataclass
class AlertPolicy:
    """Stateful per stream. Call `update` with every frame's hazards, in time order."""

    config: AlertConfig = field(default_factory=AlertConfig)
    _active: dict[tuple[str, str], _Active] = field(default_factory=dict)

    @property
    def blind(self) -> bool:
        """True while a stop-tier condition is active: the walker must not take silence as clear."""
        return any(a.tier == "stop" for a in self._active.values())

    def update(self, t_s: float, hazards: Iterable[Hazard]) -> PolicyOutput:
        cues: list[Cue] = []
        seen: set[tuple[str, str]] = set()
        for h in hazards:
            key = (h.kind, h.side)
            if key in seen:
                continue  # one cue per hazard per frame, however many detectors reported it
            seen.add(key)
            prev = self._active.get(key)
            interval = self.config.stop_repeat_s if h.tier == "stop" else self.config.repeat_s
            if prev is None or TIER_RANK[h.tier] > TIER_RANK[prev.tier]:
                emit, repeat = True, False
            else:
                emit, repeat = t_s - prev.last_cue_s >= interval, True
            if emit:
                cues.append(Cue(t_s, h.tier, h.kind, h.side, h.text, h.distance_m, h.ttc_s, repeat))
                self._active[key] = _Active(h.tier, t_s)
            elif prev is not None:
                prev.tier = h.tier
        cleared = tuple(sorted({k for k, _ in self._active if (k, _) not in seen}))
        self._active = {k: v for k, v in self._active.items() if k in seen}
        cues.sort(key=lambda c: (-TIER_RANK[c.tier], c.ttc_s if c.ttc_s is not None else 0.0))
        return PolicyOutput(tuple(cues), cleared)
