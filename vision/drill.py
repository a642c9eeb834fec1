"""Drills: scripted hazards at set times, so a walker can practise the cues (and tests can script a hazard
sequence) without a real obstacle. They pass through the same alert policy as detected hazards."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vision.types import Hazard, Side

SIDES = ("left", "centre", "right")


@dataclass(frozen=True)
class DrillHazard:
    """A hazard `distance_m` behind the walker at `start_s` (seconds after the first frame), closing at
    `closing_mps`, present until contact or `end_s`."""

    kind: str
    side: Side
    start_s: float
    distance_m: float
    closing_mps: float
    end_s: float | None = None

    def at(self, t_s: float, key: str) -> Hazard | None:
        if t_s < self.start_s or (self.end_s is not None and t_s > self.end_s):
            return None
        distance = self.distance_m - self.closing_mps * (t_s - self.start_s)
        if distance <= 0:
            return None
        ttc = distance / self.closing_mps if self.closing_mps > 0 else None
        return Hazard(
            kind=self.kind, tier="advisory", side=self.side, distance_m=distance, ttc_s=ttc, key=key
        )


def _number(item: dict[str, Any], name: str, lo: float, hi: float, where: str) -> float:
    value = item.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise ValueError(f"{where}.{name}: expected a number in [{lo}, {hi}], got {value!r}")
    return float(value)


def parse_drill(data: Any) -> tuple[DrillHazard, ...]:
    """A drill is a JSON list of {"kind", "side", "start_s", "distance_m", "closing_mps", "end_s"?}."""
    if not isinstance(data, list) or len(data) > 100:
        raise ValueError("a drill is a JSON list of at most 100 hazards")
    out = []
    for i, item in enumerate(data):
        where = f"drill[{i}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected an object")
        kind, side = item.get("kind"), item.get("side", "centre")
        if not isinstance(kind, str) or not kind.isidentifier() or len(kind) > 32:
            raise ValueError(f"{where}.kind: expected a short name like 'person', got {kind!r}")
        if side not in SIDES:
            raise ValueError(f"{where}.side: expected one of {', '.join(SIDES)}, got {side!r}")
        end = item.get("end_s")
        out.append(
            DrillHazard(
                kind=kind,
                side=side,
                start_s=_number(item, "start_s", 0, 86400, where),
                distance_m=_number(item, "distance_m", 0.1, 100, where),
                closing_mps=_number(item, "closing_mps", 0, 10, where),
                end_s=None if end is None else _number(item, "end_s", 0, 86400, where),
            )
        )
    return tuple(out)


def load_drill(path: Path) -> tuple[DrillHazard, ...]:
    try:
        return parse_drill(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from exc


def drill_hazards(drill: tuple[DrillHazard, ...], t_s: float) -> list[Hazard]:
    return [h for i, d in enumerate(drill) if (h := d.at(t_s, f"drill{i}")) is not None]
