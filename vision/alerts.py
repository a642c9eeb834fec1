"""Alert policy: turns the hazards seen in each frame into what the walker hears. Pure and shared by live
and replay, so a replay reproduces what a walker would have heard.

- Tiers by time to contact, with hysteresis: a tier is entered at its threshold and left only once the
  time to contact is clearly above it again, so a hazard hovering at a threshold does not flicker.
- One hazard is one cue: a cue on onset and on escalation above any tier already heard; de-escalation
  is silent; a hazard that drops out of detection for less than `hold_s` and returns is the same hazard.
- Priority: stop beats urgent beats advisory, the nearest in time wins; only the top new cue of an
  update is spoken, and nothing below a tier that is already sounding.
- Blindness (walker lost, camera lost) is a stop that repeats while it lasts: silence must never be
  taken for "clear" while the system cannot see.
- Notices (`path_hidden`: the walker is in view but the corridor behind them is not) say what the system
  cannot see, not what is there. A notice is spoken once at onset, always as an advisory, never repeated
  (whatever `repeat_s` says) and never a stop. It never masks a hazard: it is not in `active` (the list the
  walker page's beeper follows, so it neither beeps nor outranks a hazard there), it yields the spoken
  slot to any hazard cue, and it waits for a quiet moment (`notice_gap_s` after any cue, nothing urgent
  sounding) so it never cuts off a warning's words. If it ends before such a moment it is not said. A
  notice that lapses and returns within `notice_hold_s` is the same notice, not news. While it lasts,
  `AlertPolicy.notices` names it (the server tells the pages, so silence is not read as clear).
- Silence is the all-clear.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

from vision.phrases import phrase_for, phrase_id_of
from vision.types import Hazard, Side, Tier

TIER_RANK: dict[str, int] = {"advisory": 0, "urgent": 1, "stop": 2}
BLIND_KINDS = frozenset({"walker_lost", "camera_lost", "connection_lost"})
NOTICE_KINDS = frozenset({"path_hidden"})
Sensitivity = Literal["early", "normal", "fewer"]

# Time-to-contact thresholds (s) to enter advisory, urgent and stop. "normal" is the brief's: 3 / 1.5 / 1.
# "early" gives a third more time; "fewer" drops the spoken advisory but never makes urgent or stop later.
THRESHOLDS: dict[str, tuple[float | None, float, float]] = {
    "early": (4.0, 2.0, 1.33),
    "normal": (3.0, 1.5, 1.0),
    "fewer": (None, 1.5, 1.0),
}
EXIT_MARGIN_S = {"advisory": 0.5, "urgent": 0.3, "stop": 0.2}


@dataclass(frozen=True)
class AlertConfig:
    """`stop_repeat_s`: blindness repeats this often while it lasts. `repeat_s`: a hazard that stays at the
    same tier is spoken again this often (0: never; the page's beeps carry its presence). `hold_s`: a
    hazard missing from detection for less than this is still the same hazard. `notice_gap_s`: a notice
    waits this long after any other cue, so it never cuts off a warning's words. `notice_hold_s`: a notice
    that lapses for less than this is the same notice (coverage hovering at its threshold is said once)."""

    stop_repeat_s: float = 2.0
    repeat_s: float = 0.0
    hold_s: float = 0.6
    sensitivity: Sensitivity = "normal"
    notice_gap_s: float = 2.5
    notice_hold_s: float = 5.0


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
    phrase: str = ""
    key: str = ""


@dataclass(frozen=True)
class Active:
    """A hazard that is sounding now: what the page's beeper follows. Notices are never in it."""

    key: str
    tier: Tier
    kind: str
    side: Side
    ttc_s: float | None
    distance_m: float | None


@dataclass(frozen=True)
class PolicyOutput:
    cues: tuple[Cue, ...] = ()
    cleared: tuple[str, ...] = ()  # keys of hazards that ended at this update
    active: tuple[Active, ...] = ()  # by priority, the first is the one that matters most


@dataclass
class _Track:
    hazard: Hazard
    tier: Tier | None  # None: present but below every tier (too far to warn about yet)
    announced: Tier | None
    last_cue_s: float
    last_seen_s: float


def hazard_key(h: Hazard) -> str:
    return h.key or f"{h.kind}:{h.side}"


def _priority(tier: str, ttc_s: float | None) -> tuple[int, float]:
    return (-TIER_RANK[tier], ttc_s if ttc_s is not None else -1.0)


@dataclass
class AlertPolicy:
    """Stateful per stream. Call `update` with every frame's hazards, in time order."""

    config: AlertConfig = field(default_factory=AlertConfig)
    _tracks: dict[str, _Track] = field(default_factory=dict)
    _last_spoken_s: float = -1e9
    _last_t_s: float | None = None

    @property
    def blind(self) -> bool:
        """True while the system cannot see (walker or camera lost): silence is not clear then."""
        return any(t.hazard.kind in BLIND_KINDS for t in self._tracks.values())

    @property
    def notices(self) -> tuple[str, ...]:
        """Kinds of the notices reported at the latest update (e.g. `path_hidden`), sorted."""
        return tuple(
            sorted(
                {
                    t.hazard.kind
                    for t in self._tracks.values()
                    if t.hazard.kind in NOTICE_KINDS and t.last_seen_s == self._last_t_s
                }
            )
        )

    def set_sensitivity(self, sensitivity: Sensitivity) -> None:
        self.config = replace(self.config, sensitivity=sensitivity)

    def tier_for(self, h: Hazard, previous: Tier | None) -> Tier | None:
        """The tier of `h`: fixed for blindness and hazards without a time to contact, else by TTC with
        hysteresis around `previous`. A notice is always an advisory, whatever it says."""
        if h.kind in NOTICE_KINDS:
            return "advisory"
        if h.kind in BLIND_KINDS or h.ttc_s is None:
            return h.tier
        enter = THRESHOLDS[self.config.sensitivity]
        tiers: tuple[Tier, ...] = ("stop", "urgent", "advisory")
        for tier, threshold in zip(tiers, (enter[2], enter[1], enter[0]), strict=True):
            if threshold is None:
                continue
            held = previous is not None and TIER_RANK[previous] >= TIER_RANK[tier]
            limit = threshold + EXIT_MARGIN_S[tier] if held else threshold
            if h.ttc_s <= limit:
                return tier
        return None

    def update(self, t_s: float, hazards: Iterable[Hazard]) -> PolicyOutput:
        self._last_t_s = t_s
        seen: set[str] = set()
        candidates: list[tuple[_Track, bool]] = []  # (track, escalated or new)
        for h in hazards:
            key = hazard_key(h)
            if key in seen:
                continue  # one hazard, however many detectors reported it
            seen.add(key)
            track = self._tracks.get(key)
            tier = self.tier_for(h, track.tier if track else None)
            if track is None:
                track = _Track(h, tier, None, -1e9, t_s)
                self._tracks[key] = track
            track.hazard, track.tier, track.last_seen_s = h, tier, t_s
            if tier is None:
                track.announced = None  # gone below every tier: a later approach is news again
                continue
            rises = track.announced is None or TIER_RANK[tier] > TIER_RANK[track.announced]
            interval = self.config.stop_repeat_s if h.kind in BLIND_KINDS else self.config.repeat_s
            if h.kind in NOTICE_KINDS:
                interval = 0.0  # said once at onset
            again = not rises and interval > 0 and t_s - track.last_cue_s >= interval
            if rises or again:
                candidates.append((track, rises))
            # De-escalation is silent, and rising back to a tier already heard is not news: estimates
            # of time to contact jitter. Only a hazard that leaves every tier is news when it returns.
        # Hazards not seen: held for a moment (detections drop out), then cleared.
        cleared = []
        for key, track in list(self._tracks.items()):
            kind = track.hazard.kind
            hold = self.config.hold_s
            if kind in NOTICE_KINDS:
                hold = max(hold, self.config.notice_hold_s)
            if key not in seen and (t_s - track.last_seen_s >= hold or kind in BLIND_KINDS):
                cleared.append(key)
                del self._tracks[key]
        active = sorted(
            (
                Active(k, tr.tier, tr.hazard.kind, tr.hazard.side, tr.hazard.ttc_s, tr.hazard.distance_m)
                for k, tr in self._tracks.items()
                if tr.tier is not None and tr.hazard.kind not in NOTICE_KINDS
            ),
            key=lambda a: _priority(a.tier, a.ttc_s),
        )
        cues = self._choose(t_s, candidates, active)
        return PolicyOutput(tuple(cues), tuple(sorted(cleared)), tuple(active))

    def _choose(self, t_s: float, candidates: list[tuple[_Track, bool]], active: list[Active]) -> list[Cue]:
        """Speak the top candidate; others are marked as heard so they do not queue up behind it.
        Blindness is always spoken: it is about the system, not one hazard among many. A notice is spoken
        only in a quiet moment and otherwise stays pending (not marked as heard)."""
        if not candidates:
            return []
        notices = [c for c in candidates if c[0].hazard.kind in NOTICE_KINDS]
        candidates = [c for c in candidates if c[0].hazard.kind not in NOTICE_KINDS]
        candidates.sort(key=lambda c: _priority(c[0].tier or "advisory", c[0].hazard.ttc_s))
        top_rank = TIER_RANK[active[0].tier] if active else 0
        cues = []
        for i, (track, rises) in enumerate(candidates):
            tier = track.tier
            assert tier is not None
            blind = track.hazard.kind in BLIND_KINDS
            spoken = blind or (i == 0 and TIER_RANK[tier] >= top_rank)
            track.announced = tier
            if spoken:
                cues.append(self._cue(t_s, track, rises))
        quiet = (
            not cues
            and t_s - self._last_spoken_s >= self.config.notice_gap_s
            and top_rank <= TIER_RANK["advisory"]
        )
        if notices and quiet:
            track, rises = notices[0]
            track.announced = track.tier
            cues.append(self._cue(t_s, track, rises))
        if cues:
            self._last_spoken_s = t_s
        return cues

    def _cue(self, t_s: float, track: _Track, rises: bool) -> Cue:
        tier = track.tier
        assert tier is not None
        h = track.hazard
        track.last_cue_s = t_s
        phrase, text = phrase_for(h.kind, tier, h.side)
        if h.text and h.text != text:  # the hazard says it its own way: its words, if pre-rendered
            phrase, text = phrase_id_of(h.text), h.text
        return Cue(t_s, tier, h.kind, h.side, text, h.distance_m, h.ttc_s, not rises, phrase, hazard_key(h))
