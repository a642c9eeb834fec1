"""One replayed clip as a self-contained HTML page: what the walker would have heard, when, and why."""

from __future__ import annotations

import contextlib
import html
import itertools
import logging
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

logger = logging.getLogger(__name__)

TIERS: tuple[str, ...] = ("advisory", "urgent", "stop")
TIER_COLOURS: dict[str, str] = {
    "advisory": "#f2b705",
    "urgent": "#ef6c00",
    "stop": "#c62828",
    "other": "#777",
}
# Time-to-contact below which each tier fires, in seconds (drawn as reference lines on the TTC plot).
TTC_THRESHOLDS_S: tuple[tuple[str, float], ...] = (("advisory", 3.0), ("urgent", 1.5), ("stop", 1.0))
KIND_COLOURS: tuple[str, ...] = ("#3b6fb6", "#8e5bb5", "#2a9d8f", "#8c6d31", "#c2577a", "#5f6b7a")
PIPELINE_COLOUR = "#1f3f73"
POSE_COLOUR = "#2a9d8f"
SEEN_COLOUR = "#3a9a5b"
LOST_COLOUR = "#d9534f"
COVERAGE_COLOUR = "#3b6fb6"
BAND_COLOURS: tuple[str, ...] = ("#2a9d8f", "#8e5bb5", "#c2577a")  # 0-1 m, 1-2 m, 2-3 m behind the heels
LOW_FILL = "#fbe4e4"
OBSTACLE_ROWS = 100  # the obstacle table lists the first this many; the timeline has them all

# SVG geometry in user units. Every time plot shares this horizontal layout so the plots line up.
SVG_W = 1000.0
PLOT_L = 130.0
PLOT_R = 985.0
AXIS_H = 44.0  # room under a plot for the time ticks and the axis title
PLOT_BUCKETS = int(PLOT_R - PLOT_L)  # series longer than twice this are reduced to min/max per column

V = TypeVar("V")


# --- small helpers ---------------------------------------------------------------------------------------


def _e(value: Any) -> str:
    """Any input value as HTML-escaped text (quotes too, so it is safe inside attributes)."""
    return html.escape(str(value), quote=True)


def _num(value: Any) -> float | None:
    """`value` as a finite float, or None for None, bools, strings, NaN and infinities."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def _fmt_num(value: float | None, unit: str = "", digits: int = 2) -> str:
    """A number with `digits` decimals and an optional unit; an em dash when absent."""
    if value is None:
        return "—"
    return f"{value:.{digits}f}" + (f" {unit}" if unit else "")


def _fmt_value(value: Any) -> str:
    """A free-form summary value as escaped text: integers plain, floats to a sensible precision."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    n = _num(value)
    if n is None:
        text = str(value)
        return _e(text if len(text) <= 300 else text[:297] + "...")
    if n == int(n) and abs(n) < 1e15:
        return str(int(n))
    return f"{n:.2f}" if abs(n) >= 1 else f"{n:.3g}"


def _fmt_summary_value(key: str, value: Any) -> str:
    """A `timeline["summary"]` value, with the unit its key names (`..._ms_p95`, `..._s`, `..._share`)."""
    text = _fmt_value(value)
    n = _num(value)
    if n is None:
        return text
    words = key.lower().split("_")
    if words[-1] in ("share", "fraction", "ratio") and 0.0 <= n <= 1.0:
        return f"{text} ({n * 100:.1f} %)"
    for unit in ("ms", "s", "m", "fps"):
        if unit in words[1:]:
            return f"{text} {unit}"
    return text


def _clock(t: float) -> str:
    """Seconds as m:ss, as a video player shows them."""
    whole = int(t)
    return f"{whole // 60}:{whole % 60:02d}"


def _tier_key(tier: str) -> str:
    """A tier as a safe CSS class / colour key: one of TIERS, else "other"."""
    return tier if tier in TIERS else "other"


def _nice_ceil(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k that is at least `value` (> 0)."""
    if value <= 0:
        return 1.0
    mag = 10.0 ** math.floor(math.log10(value))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= m * mag * (1 + 1e-9):
            return m * mag
    return 10.0 * mag


def _ticks(lo: float, hi: float, target: int = 8) -> list[float]:
    """Round tick positions covering [lo, hi], about `target` of them."""
    if hi <= lo:
        return [lo]
    step = _nice_ceil((hi - lo) / target)
    k = math.ceil(lo / step - 1e-9)
    out: list[float] = []
    while k * step <= hi + step * 1e-9:
        out.append(round(k * step, 9))
        k += 1
    return out


def _tick_label(value: float, unit: str) -> str:
    return f"{round(value, 6):g} {unit}"


@dataclass(frozen=True)
class _Scale:
    """Linear map from data values in [lo, hi] to SVG user units in [a, b] (b < a for an upward y axis)."""

    lo: float
    hi: float
    a: float
    b: float

    def __call__(self, value: float) -> float:
        span = self.hi - self.lo
        if span <= 0:
            return self.a
        return self.a + (value - self.lo) / span * (self.b - self.a)

    def clamped(self, value: float) -> float:
        return self(min(max(value, self.lo), self.hi))


# --- inputs ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Cue:
    """One cue the walker hears: `t` in seconds from the clip's start, distance in m, TTC in s."""

    t: float | None
    tier: str
    kind: str
    side: str
    distance_m: float | None
    ttc_s: float | None
    text: str
    repeat: bool

    @classmethod
    def parse(cls, event: Any) -> _Cue:
        d: dict[str, Any] = event if isinstance(event, dict) else {}
        return cls(
            t=_num(d.get("t")),
            tier=str(d.get("tier", "")),
            kind=str(d.get("kind", "")),
            side=str(d.get("side", "")),
            distance_m=_num(d.get("distance_m")),
            ttc_s=_num(d.get("ttc_s")),
            text=str(d.get("text", "")),
            repeat=bool(d.get("repeat", False)),
        )

    def title(self) -> str:
        """Plain (unescaped) one-line description, for tooltips."""
        t = _fmt_num(self.t, "s")
        rep = " (repeat)" if self.repeat else ""
        return f"{t} · {self.tier} · {self.kind} · {self.side}{rep} — {self.text}"


def _cues(events: Any) -> list[_Cue]:
    if not isinstance(events, list):
        return []
    return [_Cue.parse(ev) for ev in events]


@dataclass(frozen=True)
class _Frames:
    """Per-frame columns; a column the input lacks is None. Times in s, costs in ms."""

    t: list[float | None]
    pipeline_ms: list[float | None] | None
    pose_ms: list[float | None] | None
    walker: list[bool | None] | None
    hazards: list[list[str]] | None
    ttc_s: list[float | None] | None
    coverage: list[float | None] | None = None

    @classmethod
    def parse(cls, frames: dict[str, Any]) -> _Frames:
        raw_t = frames.get("t")
        t = [_num(v) for v in raw_t] if isinstance(raw_t, list) else []
        n = len(t)

        def column(name: str) -> list[Any] | None:
            col = frames.get(name)
            if not isinstance(col, list):
                return None
            if len(col) != n:
                logger.warning(
                    "frames[%r] has %d entries for %d frames; padding/truncating", name, len(col), n
                )
                col = (col + [None] * n)[:n]
            return col

        def floats(name: str) -> list[float | None] | None:
            col = column(name)
            return None if col is None else [_num(v) for v in col]

        walker_col = column("walker")
        walker = None
        if walker_col is not None:
            walker = [None if _num(v) is None and not isinstance(v, bool) else bool(v) for v in walker_col]
        hazards_col = column("hazards")
        hazards = None
        if hazards_col is not None:
            hazards = [
                [str(h.get("kind", "")) if isinstance(h, dict) else str(h) for h in entry]
                if isinstance(entry, list)
                else []
                for entry in hazards_col
            ]
        return cls(
            t, floats("pipeline_ms"), floats("pose_ms"), walker, hazards, floats("ttc_s"), floats("coverage")
        )

    def frame_step_s(self, fps: float | None) -> float:
        """Typical time between frames in s: median positive difference, else 1/fps, else 1/30."""
        ts = [v for v in self.t if v is not None]
        diffs = [b - a for a, b in itertools.pairwise(ts) if b > a]
        if diffs:
            return float(np.median(np.asarray(diffs)))
        return 1.0 / fps if fps else 1.0 / 30.0


def _runs(
    ts: Sequence[float | None], values: Sequence[V | None], step_s: float
) -> list[tuple[float, float, V]]:
    """Maximal runs of equal, non-None values as (start s, end s, value); a gap over 3 frames ends one."""
    out: list[tuple[float, float, V]] = []
    start = last = 0.0
    cur: V | None = None
    for t, v in zip(ts, values, strict=False):
        if t is None:
            continue
        if cur is not None:
            gap = t - last
            if v != cur or gap > 3 * step_s:
                out.append((start, t if gap <= 3 * step_s else last + step_s, cur))
                cur = None
            else:
                last = t
        if cur is None and v is not None:
            start = last = t
            cur = v
    if cur is not None:
        out.append((start, last + step_s, cur))
    return out


def _segments(ts: Sequence[float | None], values: Sequence[float | None]) -> list[list[tuple[float, float]]]:
    """Runs of consecutive frames where both time and value are known, as lists of (t, value)."""
    segs: list[list[tuple[float, float]]] = []
    cur: list[tuple[float, float]] = []
    for t, v in zip(ts, values, strict=False):
        if t is None or v is None:
            if cur:
                segs.append(cur)
                cur = []
            continue
        cur.append((t, v))
    if cur:
        segs.append(cur)
    return segs


def _decimate(seg: list[tuple[float, float]], xs: _Scale) -> list[tuple[float, float]]:
    """A long series reduced to the min and max per pixel column, so spikes survive."""
    if len(seg) <= 2 * PLOT_BUCKETS:
        return seg
    buckets: dict[int, list[tuple[float, float]]] = {}
    for p in seg:
        buckets.setdefault(int(xs(p[0])), []).append(p)
    out: list[tuple[float, float]] = []
    for _, pts in sorted(buckets.items()):
        lo = min(pts, key=lambda p: p[1])
        hi = max(pts, key=lambda p: p[1])
        out.extend(sorted({lo, hi}))
    return out


def _stats(values: Iterable[float | None]) -> tuple[float, float] | None:
    """(median, 95th percentile) of the known values, or None when there are none."""
    known = [v for v in values if v is not None]
    if not known:
        return None
    arr = np.asarray(known, dtype=np.float64)
    return float(np.median(arr)), float(np.percentile(arr, 95))


# --- SVG building blocks ---------------------------------------------------------------------------------


def _svg(height: float, body: Iterable[str], *, label: str, cls: str) -> str:
    return (
        f'<svg class="plot {cls}" viewBox="0 0 {SVG_W:g} {height:g}" role="img" aria-label="{_e(label)}">'
        + "".join(body)
        + "</svg>"
    )


def _no_data(label: str, cls: str, note: str = "no data") -> str:
    body = [
        f'<rect x="{PLOT_L:g}" y="4" width="{PLOT_R - PLOT_L:g}" height="40" fill="#f4f4f4" stroke="#ccc"/>',
        f'<text class="no-data" x="{(PLOT_L + PLOT_R) / 2:g}" y="29" text-anchor="middle">{_e(note)}</text>',
    ]
    return _svg(48, body, label=f"{label}: {note}", cls=f"{cls} empty")


def _time_axis(xs: _Scale, y_base: float, grid_top: float) -> list[str]:
    """Vertical grid lines from `grid_top` to `y_base`, a baseline, tick labels in s and an axis title."""
    parts = [f'<line x1="{PLOT_L:g}" y1="{y_base:g}" x2="{PLOT_R:g}" y2="{y_base:g}" stroke="#333"/>']
    for v in _ticks(xs.lo, xs.hi):
        x = xs(v)
        parts.append(
            f'<line x1="{x:.1f}" y1="{grid_top:g}" x2="{x:.1f}" y2="{y_base:g}" stroke="#e3e3e3"/>'
            f'<line x1="{x:.1f}" y1="{y_base:g}" x2="{x:.1f}" y2="{y_base + 4:g}" stroke="#333"/>'
            f'<text class="tick" x="{x:.1f}" y="{y_base + 17:g}" text-anchor="middle">'
            f"{_tick_label(v, 's')}</text>"
        )
    parts.append(
        f'<text class="axis-title" x="{(PLOT_L + PLOT_R) / 2:g}" y="{y_base + 36:g}" '
        'text-anchor="middle">time since clip start (s)</text>'
    )
    return parts


def _value_axis(ys: _Scale, ticks: Sequence[float], unit: str, title: str) -> list[str]:
    """Horizontal grid lines at `ticks`, labels with `unit` left of the plot, and a rotated title."""
    parts = [f'<line x1="{PLOT_L:g}" y1="{ys.b:g}" x2="{PLOT_L:g}" y2="{ys.a:g}" stroke="#333"/>']
    for v in ticks:
        y = ys(v)
        parts.append(
            f'<line x1="{PLOT_L:g}" y1="{y:.1f}" x2="{PLOT_R:g}" y2="{y:.1f}" stroke="#e3e3e3"/>'
            f'<text class="tick" x="{PLOT_L - 6:g}" y="{y + 4:.1f}" text-anchor="end">'
            f"{_tick_label(v, unit)}</text>"
        )
    mid = (ys.a + ys.b) / 2
    parts.append(
        f'<text class="axis-title" x="18" y="{mid:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 18 {mid:.1f})">{_e(title)}</text>'
    )
    return parts


def _series(
    segs: list[list[tuple[float, float]]], xs: _Scale, ys: _Scale, colour: str, cls: str
) -> list[str]:
    """Each segment as a polyline (a dot if it is one point); values beyond the y range sit on its edge."""
    parts: list[str] = []
    for seg in segs:
        pts = [(xs(t), ys.clamped(v)) for t, v in _decimate(seg, xs)]
        if len(pts) == 1:
            x, y = pts[0]
            parts.append(f'<circle class="{cls}" cx="{x:.1f}" cy="{y:.1f}" r="1.8" fill="{colour}"/>')
        else:
            coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            parts.append(
                f'<polyline class="{cls}" points="{coords}" fill="none" stroke="{colour}" '
                'stroke-width="1.3" stroke-linejoin="round"/>'
            )
    return parts


# --- plots -----------------------------------------------------------------------------------------------


def _cue_plot(cues: list[_Cue], xs: _Scale, *, cls: str, label: str, misses: list[_Cue] | None = None) -> str:
    """One marker per cue in a lane per tier (stop on top); repeats lighter; missed expected cues as ×."""
    placed = [c for c in cues if c.t is not None]
    missed = [c for c in (misses or []) if c.t is not None]
    if not placed and not missed:
        return _no_data(label, cls, "no data: no cues")
    lanes = ["stop", "urgent", "advisory"]
    if any(_tier_key(c.tier) == "other" for c in placed + missed):
        lanes.append("other")
    lane_h, top = 28.0, 6.0
    y_base = top + lane_h * len(lanes)
    lane_y = {name: top + lane_h * (i + 0.5) for i, name in enumerate(lanes)}
    body = _time_axis(xs, y_base, top)
    for i, name in enumerate(lanes):
        y = lane_y[name]
        if i % 2 == 0:
            band = (
                f'<rect x="{PLOT_L:g}" y="{y - lane_h / 2:g}" width="{PLOT_R - PLOT_L:g}" height="{lane_h:g}"'
            )
            body.insert(0, band + ' fill="#f6f6f6"/>')
        body.append(f'<text class="tick" x="{PLOT_L - 6:g}" y="{y + 4:g}" text-anchor="end">{name}</text>')
    for c in sorted(placed, key=lambda c: c.repeat, reverse=True):  # new cues drawn over repeats
        assert c.t is not None
        key = _tier_key(c.tier)
        x, y = xs(c.t), lane_y[key]
        opacity = "0.3" if c.repeat else "1"
        rep = " repeat" if c.repeat else ""
        body.append(
            f'<circle class="{cls} tier-{key}{rep}" data-t="{c.t:.2f}" cx="{x:.1f}" cy="{y:g}" r="6.5" '
            f'fill="{TIER_COLOURS[key]}" fill-opacity="{opacity}" stroke="#222" stroke-opacity="{opacity}" '
            f'stroke-width="0.8"><title>{_e(c.title())}</title></circle>'
        )
    for c in missed:
        assert c.t is not None
        x, y = xs(c.t), lane_y[_tier_key(c.tier)]
        body.append(
            f'<path class="expected-miss" d="M{x - 5:.1f} {y - 5:g}L{x + 5:.1f} {y + 5:g}'
            f'M{x - 5:.1f} {y + 5:g}L{x + 5:.1f} {y - 5:g}" stroke="#000" stroke-width="2">'
            "<title>expected but not heard: "
            f"{_e(c.title())}</title></path>"
        )
    return _svg(y_base + AXIS_H, body, label=label, cls=cls)


def _ttc_plot(fr: _Frames, xs: _Scale, step_s: float, cues: list[_Cue]) -> tuple[str, str]:
    """TTC per frame against the tier thresholds, dotted lines at cue times, a shaded lane per hazard kind."""
    has_ttc = fr.ttc_s is not None and any(v is not None for v in fr.ttc_s)
    kinds = sorted({k for entry in fr.hazards or [] for k in entry})
    if not fr.t or (not has_ttc and fr.hazards is None):
        return _no_data("Hazards and time to contact", "ttc-plot"), ""
    top, area_h = 6.0, 180.0
    known_ttc = [v for v in fr.ttc_s or [] if v is not None]
    y_max = float(min(10, max(4, math.ceil(max(known_ttc, default=0.0)))))
    ys = _Scale(0.0, y_max, top + area_h, top)
    lanes_top = top + area_h + 12
    lane_h = 18.0
    n_lanes = max(1, len(kinds))
    y_base = lanes_top + lane_h * n_lanes + 4
    body = _time_axis(xs, y_base, top)
    body += _value_axis(ys, _ticks(0.0, y_max, 5), "s", "time to contact (s)")
    notes: list[str] = []
    for i, (tier, limit) in enumerate(TTC_THRESHOLDS_S):
        y = ys(limit)
        label_y = y + 13 if i == len(TTC_THRESHOLDS_S) - 1 else y - 4
        body.append(
            f'<line class="threshold" x1="{PLOT_L:g}" y1="{y:.1f}" x2="{PLOT_R:g}" y2="{y:.1f}" '
            f'stroke="{TIER_COLOURS[tier]}" stroke-width="1.5" stroke-dasharray="6 4"/>'
            f'<text class="tick" x="{PLOT_R - 4:g}" y="{label_y:.1f}" text-anchor="end" '
            f'fill="{TIER_COLOURS[tier]}">{tier} &lt; {limit:g} s</text>'
        )
    for c in cues:
        if c.t is not None and not c.repeat:
            x = xs(c.t)
            body.append(
                f'<line class="cue-guide" x1="{x:.1f}" y1="{top:g}" x2="{x:.1f}" y2="{top + area_h:g}" '
                f'stroke="{TIER_COLOURS[_tier_key(c.tier)]}" stroke-width="1.5" stroke-dasharray="2 3">'
                f"<title>{_e(c.title())}</title></line>"
            )
    if has_ttc and fr.ttc_s is not None:
        body += _series(_segments(fr.t, fr.ttc_s), xs, ys, "#222", "series-ttc")
        above = sum(1 for v in known_ttc if v > y_max)
        if above:
            notes.append(f"{above} frame(s) with TTC above {y_max:g} s are drawn at the top edge.")
    else:
        body.append(
            f'<text class="no-data" x="{(PLOT_L + PLOT_R) / 2:g}" y="{top + area_h / 2:g}" '
            'text-anchor="middle">no data: no time to contact recorded</text>'
        )
    if fr.hazards is None or not kinds:
        note = "no data: hazards not recorded" if fr.hazards is None else "no hazards detected"
        body.append(
            f'<text class="no-data" x="{(PLOT_L + PLOT_R) / 2:g}" y="{lanes_top + 13:g}" '
            f'text-anchor="middle">{note}</text>'
        )
    else:
        for i, kind in enumerate(kinds):
            y = lanes_top + lane_h * i
            colour = KIND_COLOURS[i % len(KIND_COLOURS)]
            short = kind if len(kind) <= 16 else kind[:15] + "…"
            body.append(
                f'<text class="tick" x="{PLOT_L - 6:g}" y="{y + 13:g}" text-anchor="end">{_e(short)}'
                f"<title>{_e(kind)}</title></text>"
            )
            present = [True if kind in entry else None for entry in fr.hazards]
            for start, end, _ in _runs(fr.t, present, step_s):
                x0, x1 = xs(start), xs(end)
                body.append(
                    f'<rect class="hazard-span kind-{i}" x="{x0:.1f}" y="{y + 2:g}" '
                    f'width="{max(x1 - x0, 1.0):.1f}" height="{lane_h - 4:g}" fill="{colour}" '
                    f'fill-opacity="0.75" data-t="{start:.2f}"><title>{_e(kind)}: {start:.2f}–{end:.2f} s'
                    "</title></rect>"
                )
    svg = _svg(y_base + AXIS_H, body, label="Hazards and time to contact", cls="ttc-plot")
    return svg, " ".join(notes)


def _cost_plot(fr: _Frames, xs: _Scale, fps: float | None) -> tuple[str, str]:
    """pipeline_ms and pose_ms per frame, the frame budget at `fps`, and a legend with median and p95."""
    series = [
        (name, col, colour)
        for name, col, colour in (
            ("pipeline", fr.pipeline_ms, PIPELINE_COLOUR),
            ("pose", fr.pose_ms, POSE_COLOUR),
        )
        if col is not None and any(v is not None for v in col)
    ]
    if not fr.t or not series:
        return _no_data("Per-frame cost", "cost-plot"), ""
    known = np.asarray([v for _, col, _ in series for v in col if v is not None], dtype=np.float64)
    peak, p99 = float(known.max()), float(np.percentile(known, 99))
    clipped = peak > 3 * p99 and p99 > 0
    top_ms = p99 * 1.5 if clipped else peak * 1.05
    budget_ms = 1000.0 / fps if fps else None
    if budget_ms is not None:
        top_ms = max(top_ms, budget_ms * 1.1)
    top_ms = _nice_ceil(top_ms)
    top, area_h = 6.0, 180.0
    ys = _Scale(0.0, top_ms, top + area_h, top)
    body = _time_axis(xs, top + area_h, top)
    body += _value_axis(ys, _ticks(0.0, top_ms, 5), "ms", "cost per frame (ms)")
    if budget_ms is not None:
        y = ys(budget_ms)
        body.append(
            f'<line class="budget" x1="{PLOT_L:g}" y1="{y:.1f}" x2="{PLOT_R:g}" y2="{y:.1f}" stroke="#888" '
            f'stroke-dasharray="6 4"/><text class="tick" x="{PLOT_R - 4:g}" y="{y - 4:.1f}" text-anchor="end"'
            f' fill="#555">frame budget {budget_ms:.1f} ms at {fps:g} fps</text>'
        )
    legend: list[str] = []
    for name, col, colour in series:
        body += _series(_segments(fr.t, col), xs, ys, colour, f"series-{name}")
        st = _stats(col)
        assert st is not None
        legend.append(
            f'<span class="swatch" style="background:{colour}"></span>{name}: '
            f"median <b>{st[0]:.1f} ms</b>, p95 <b>{st[1]:.1f} ms</b>"
        )
    if clipped:
        over = int((known > top_ms).sum())
        legend.append(f"{over} value(s) above {top_ms:g} ms drawn at the top edge (max {peak:.1f} ms)")
    svg = _svg(top + area_h + AXIS_H, body, label="Per-frame cost", cls="cost-plot")
    return svg, " · ".join(legend)


def _walker_plot(fr: _Frames, xs: _Scale, step_s: float) -> tuple[str, str]:
    """A strip, green where the walker was in view and red where not; blank where unknown."""
    if not fr.t or fr.walker is None or all(v is None for v in fr.walker):
        return _no_data("Walker in view", "walker-plot"), ""
    top, strip_h = 6.0, 26.0
    body = _time_axis(xs, top + strip_h, top)
    body.append(f'<text class="tick" x="{PLOT_L - 6:g}" y="{top + 17:g}" text-anchor="end">walker</text>')
    for start, end, seen in _runs(fr.t, fr.walker, step_s):
        x0, x1 = xs(start), xs(end)
        cls, colour, word = ("seen", SEEN_COLOUR, "in view") if seen else ("lost", LOST_COLOUR, "not in view")
        body.append(
            f'<rect class="walker-run {cls}" x="{x0:.1f}" y="{top:g}" width="{max(x1 - x0, 1.0):.1f}" '
            f'height="{strip_h:g}" fill="{colour}" data-t="{start:.2f}"><title>{word}: '
            f"{start:.2f}–{end:.2f} s</title></rect>"
        )
    known = [v for v in fr.walker if v is not None]
    seen_n = sum(known)
    caption = (
        f"Walker in view in {seen_n / len(known) * 100:.1f} % of frames with a verdict "
        f"({seen_n} of {len(known)}; {len(fr.walker) - len(known)} frame(s) without one)."
    )
    return _svg(top + strip_h + AXIS_H, body, label="Walker in view", cls="walker-plot"), caption


def _coverage_plot(samples: list[Any], fr: _Frames, xs: _Scale) -> tuple[str, str]:
    """Coverage in %: per frame (thin), the per-second mean (bold, dots), the three metre bands of each
    second (dashed), and the seconds where coverage was low shaded. Returns (svg, legend)."""
    per_s = [s for s in samples if isinstance(s, dict) and _num(s.get("t")) is not None]
    mean = [(float(_num(s["t"]) or 0.0), _num(s.get("coverage"))) for s in per_s]
    frame_vals = [None if v is None else v * 100.0 for v in fr.coverage or []]
    if not any(v is not None for _, v in mean) and not any(v is not None for v in frame_vals):
        return _no_data("Coverage", "coverage-plot", "no data: coverage unknown in every frame"), ""
    top, area_h = 6.0, 130.0
    ys = _Scale(0.0, 100.0, top + area_h, top)
    body: list[str] = []
    for s in per_s:
        if s.get("low") is True:
            t = float(_num(s["t"]) or 0.0)
            x0, x1 = xs(t), xs(min(t + 1.0, xs.hi))
            body.append(
                f'<rect class="coverage-low" x="{x0:.1f}" y="{top:g}" width="{max(x1 - x0, 1.0):.1f}" '
                f'height="{area_h:g}" fill="{LOW_FILL}" data-t="{t:.2f}"><title>coverage low: '
                f"{t:g}–{t + 1:g} s</title></rect>"
            )
    body += _time_axis(xs, top + area_h, top)
    body += _value_axis(ys, (0.0, 25.0, 50.0, 75.0, 100.0), "%", "path seen (%)")
    legend: list[str] = []
    if any(v is not None for v in frame_vals):
        body += _series(_segments(fr.t, frame_vals), xs, ys, "#9db7dd", "series-coverage-frame")
        legend.append('<span class="swatch" style="background:#9db7dd"></span>per frame')
    for band, colour in enumerate(BAND_COLOURS):
        pts = [
            (t + 0.5, b * 100.0)
            for (t, _), s in zip(mean, per_s, strict=True)
            if isinstance(s.get("by_m"), list)
            and len(s["by_m"]) == 3
            and (b := _num(s["by_m"][band])) is not None
        ]
        if pts:
            for part in _series([pts], xs, ys, colour, f"series-band-{band}"):
                body.append(part.replace('stroke-width="1.3"', 'stroke-width="1" stroke-dasharray="5 3"'))
            swatch = f'<span class="swatch" style="background:{colour}"></span>'
            legend.append(f"{swatch}{band}–{band + 1} m behind")
    known = [(t + 0.5, v * 100.0) for t, v in mean if v is not None]
    segs = _segments([t + 0.5 for t, _ in mean], [None if v is None else v * 100.0 for _, v in mean])
    body += _series(segs, xs, ys, COVERAGE_COLOUR, "series-coverage")
    if len(known) <= 400:
        body += [
            f'<circle class="coverage-second" cx="{xs(t):.1f}" cy="{ys.clamped(c):.1f}" r="2.5" '
            f'fill="{COVERAGE_COLOUR}"><title>{t - 0.5:g}–{t + 0.5:g} s: {c:.0f} %</title></circle>'
            for t, c in known
        ]
    if known:
        legend.insert(0, f'<span class="swatch" style="background:{COVERAGE_COLOUR}"></span>mean per second')
    if any(s.get("low") is True for s in per_s):
        legend.append(
            f'<span class="swatch" style="background:{LOW_FILL}"></span>coverage low (the partner is coached)'
        )
    svg = _svg(top + area_h + AXIS_H, body, label="Coverage of the walker's path", cls="coverage-plot")
    return svg, " ".join(legend)


def _obstacle_table(obstacles: list[Any], *, linked: bool, long_clip: bool) -> str:
    """The obstacles the pipeline tracked (timeline "obstacles"), one row each, by first sighting."""
    rows = [o for o in obstacles if isinstance(o, dict)]
    if not rows:
        return '<p class="empty">No obstacle was tracked.</p>'
    head = (
        "<tr><th>id</th><th>kind</th><th>first seen (s)</th><th>last seen (s)</th><th>frames</th>"
        "<th>in corridor (frames)</th><th>side</th><th>nearest (m)</th><th>least TTC (s)</th>"
        "<th>fastest closing (m/s)</th></tr>"
    )
    body = [
        "<tr>"
        f"<td>{_e(o.get('id', '—'))}</td><td>{_e(o.get('kind') or '—')}</td>"
        f'<td class="num">{_time_cell(_num(o.get("first_t")), linked=linked, long_clip=long_clip)}</td>'
        f'<td class="num">{_fmt_num(_num(o.get("last_t")))}</td>'
        f'<td class="num">{_fmt_value(o.get("frames"))}</td>'
        f'<td class="num">{_fmt_value(o.get("in_corridor_frames"))}</td><td>{_e(o.get("side") or "—")}</td>'
        f'<td class="num">{_fmt_num(_num(o.get("min_distance_m")))}</td>'
        f'<td class="num">{_fmt_num(_num(o.get("min_ttc_s")))}</td>'
        f'<td class="num">{_fmt_num(_num(o.get("max_closing_mps")))}</td></tr>'
        for o in rows[:OBSTACLE_ROWS]
    ]
    more = (
        f'<p class="note">{len(rows) - OBSTACLE_ROWS} more in timeline.json.</p>'
        if len(rows) > OBSTACLE_ROWS
        else ""
    )
    return f'<table class="obstacles"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table>{more}'


# --- tables ----------------------------------------------------------------------------------------------


def _kv_table(rows: Iterable[tuple[str, str]], cls: str = "kv") -> str:
    """Two-column table; both cells must already be escaped."""
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="{cls}"><tbody>{body}</tbody></table>'


def _time_cell(t: float | None, *, linked: bool, long_clip: bool) -> str:
    if t is None:
        return "—"
    text = f"{t:.2f}" + (f" ({_clock(t)})" if long_clip else "")
    return f'<a href="#video" data-t="{t:.2f}">{text}</a>' if linked else text


def _tier_cell(tier: str) -> str:
    key = _tier_key(tier)
    return f'<span class="swatch" style="background:{TIER_COLOURS[key]}"></span>{_e(tier)}'


def _cue_table(cues: list[_Cue], *, linked: bool, long_clip: bool, cls: str = "cues") -> str:
    """Every cue, one row each: t, tier, kind, side, distance, TTC, text, repeat."""
    if not cues:
        return '<p class="empty">No cues.</p>'
    head = (
        "<tr><th>t (s)</th><th>tier</th><th>kind</th><th>side</th><th>distance (m)</th>"
        "<th>TTC (s)</th><th>text (what was said)</th><th>repeat</th></tr>"
    )
    rows = [
        f'<tr class="tier-{_tier_key(c.tier)}{" repeat" if c.repeat else ""}">'
        f'<td class="num">{_time_cell(c.t, linked=linked, long_clip=long_clip)}</td>'
        f"<td>{_tier_cell(c.tier)}</td><td>{_e(c.kind)}</td><td>{_e(c.side)}</td>"
        f'<td class="num">{_fmt_num(c.distance_m)}</td><td class="num">{_fmt_num(c.ttc_s)}</td>'
        f"<td>{_e(c.text)}</td><td>{'yes' if c.repeat else ''}</td></tr>"
        for c in cues
    ]
    return f'<table class="{cls}"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _event_brief(event: Any) -> str:
    """An event of any shape as one escaped line: t, tier, kind, side, quoted text, then other keys."""
    if not isinstance(event, dict):
        return _e(event)
    parts: list[str] = []
    t = _num(event.get("t"))
    if t is not None:
        parts.append(f"{t:.2f} s")
    parts += [_e(event[k]) for k in ("tier", "kind", "side") if event.get(k) not in (None, "")]
    if event.get("text"):
        parts.append(f"“{_e(event['text'])}”")
    known = {"t", "tier", "kind", "side", "text"}
    parts += [f"{_e(k)}={_fmt_value(v)}" for k, v in event.items() if k not in known]
    return " · ".join(parts) if parts else "—"


def _count_by_tier(cues: list[_Cue]) -> str:
    return ", ".join(
        f"{sum(1 for c in cues if c.tier == tier)} {tier}" for tier in ("stop", "urgent", "advisory")
    )


# --- sections --------------------------------------------------------------------------------------------


def _live_section(live: dict[str, Any], xs: _Scale, *, linked: bool, long_clip: bool) -> str:
    cues = _cues(live.get("events"))
    sent, dropped = _num(live.get("frames_sent")), _num(live.get("frames_dropped"))
    drop_text = _fmt_value(live.get("frames_dropped"))
    if dropped is not None and sent:
        drop_text += f" ({dropped / sent * 100:.1f} % of sent)"

    def pct(name: str) -> str:
        d = live.get(name)
        d = d if isinstance(d, dict) else {}
        return f"p50 {_fmt_num(_num(d.get('p50')), 'ms', 1)}, p95 {_fmt_num(_num(d.get('p95')), 'ms', 1)}"

    rows = [
        ("server", _e(live.get("server", "—"))),
        ("frames sent", _fmt_value(live.get("frames_sent"))),
        ("frames processed", _fmt_value(live.get("frames_processed"))),
        ("frames dropped", drop_text),
        ("latency", pct("latency_ms")),
        ("added by the server", pct("server_added_ms")),
        ("cues heard live", f"{len(cues)} ({_count_by_tier(cues)})"),
    ]
    plot = _cue_plot(cues, xs, cls="live-cue", label="Live cues over time")
    table = _cue_table(cues, linked=linked, long_clip=long_clip, cls="cues live-cues")
    return (
        '<section id="live"><h2>Live replay</h2>'
        "<p>The same clip streamed in real time through a running server.</p>"
        f"{_kv_table(rows)}<h3>Live cues over time</h3>{plot}"
        f"<details><summary>Live cue list ({len(cues)})</summary>{table}</details></section>"
    )


def _comparison_section(comparison: dict[str, Any], *, linked: bool, long_clip: bool) -> str:
    matched_raw = comparison.get("matched") if isinstance(comparison.get("matched"), list) else None
    matched = [p for p in matched_raw or [] if isinstance(p, list | tuple) and len(p) == 2]
    only_offline = _cues(comparison.get("only_offline"))
    only_live = _cues(comparison.get("only_live"))
    tol = _num(comparison.get("tolerance_s"))
    tol_text = f" within ±{tol:g} s" if tol is not None else ""
    rows: list[str] = []
    for off_raw, live_raw in matched:
        off, liv = _Cue.parse(off_raw), _Cue.parse(live_raw)
        dt = liv.t - off.t if liv.t is not None and off.t is not None else None
        tier = _e(off.tier) if off.tier == liv.tier else f"{_e(off.tier)} → {_e(liv.tier)}"
        text = _e(off.text) if off.text == liv.text else f"{_e(off.text)} → {_e(liv.text)}"
        rows.append(
            f'<tr class="tier-{_tier_key(off.tier)}">'
            f'<td class="num">{_time_cell(off.t, linked=linked, long_clip=long_clip)}</td>'
            f'<td class="num">{_fmt_num(liv.t)}</td><td class="num">{_fmt_num(dt, digits=2)}</td>'
            f"<td>{tier}</td><td>{_e(off.kind)}</td><td>{text}</td></tr>"
        )
    matched_table = (
        '<table class="matched"><thead><tr><th>offline t (s)</th><th>live t (s)</th>'
        "<th>live − offline (s)</th><th>tier</th><th>kind</th><th>text</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        if rows
        else '<p class="empty">None matched.</p>'
    )
    return (
        '<section id="comparison"><h2>Offline vs live</h2>'
        f"<p><b>{len(matched)}</b> cue(s) matched{tol_text}; <b>{len(only_offline)}</b> only offline; "
        f"<b>{len(only_live)}</b> only live.</p>"
        f"<h3>Matched ({len(matched)})</h3>{matched_table}"
        f"<h3>Only offline ({len(only_offline)})</h3>"
        f"{_cue_table(only_offline, linked=linked, long_clip=long_clip, cls='cues only-offline')}"
        f"<h3>Only live ({len(only_live)})</h3>"
        f"{_cue_table(only_live, linked=linked, long_clip=long_clip, cls='cues only-live')}</section>"
    )


def _labels_section(labels: dict[str, Any]) -> str:
    def items(name: str) -> list[Any]:
        v = labels.get(name)
        return v if isinstance(v, list) else []

    matches, misses, false_alarms = items("matches"), items("misses"), items("false_alarms")
    notices = items("notices")
    passed = labels.get("passed")
    if passed is True:
        verdict = '<p class="verdict pass">PASS</p>'
    elif passed is False:
        verdict = '<p class="verdict fail">FAIL</p>'
    else:
        verdict = '<p class="verdict none">no verdict</p>'
    match_rows = "".join(
        f"<tr><td>{_event_brief(p[0])}</td><td>{_event_brief(p[1])}</td></tr>"
        if isinstance(p, list | tuple) and len(p) == 2
        else f'<tr><td colspan="2">{_event_brief(p)}</td></tr>'
        for p in matches
    )

    def listing(evs: list[Any], cls: str) -> str:
        if not evs:
            return '<p class="empty">None.</p>'
        return f'<ul class="{cls}">' + "".join(f"<li>{_event_brief(ev)}</li>" for ev in evs) + "</ul>"

    matches_html = (
        '<table class="label-matches"><thead><tr><th>expected</th><th>heard</th></tr></thead>'
        f"<tbody>{match_rows}</tbody></table>"
        if matches
        else '<p class="empty">None.</p>'
    )
    return (
        '<section id="labels"><h2>Expected cues (tester labels)</h2>'
        f"{verdict}<p><b>{len(matches)}</b> matched, <b>{len(misses)}</b> missed, "
        f"<b>{len(false_alarms)}</b> false alarm(s).</p>"
        f"<h3>Matched ({len(matches)})</h3>{matches_html}"
        f"<h3>Missed: expected but not heard ({len(misses)})</h3>{listing(misses, 'misses')}"
        f"<h3>False alarms: heard but not expected ({len(false_alarms)})</h3>"
        f"{listing(false_alarms, 'false-alarms')}"
        + (
            f"<h3>Notices heard but not expected ({len(notices)}): not false alarms</h3>"
            f"{listing(notices, 'notices')}"
            if notices
            else ""
        )
        + "</section>"
    )


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a1a1a;max-width:1100px;
margin:0 auto;padding:16px 20px 40px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 6px;border-bottom:1px solid #ccc;
padding-bottom:3px}h3{font-size:15px;margin:16px 0 4px}
.meta{color:#555;margin:0 0 8px}.lead{font-size:15px;margin:8px 0 12px}
nav a{margin-right:12px;color:#1f3f73}
table{border-collapse:collapse;margin:6px 0;font-size:13px}
th,td{border:1px solid #d5d5d5;padding:3px 8px;text-align:left;vertical-align:top}
thead th{background:#f0f0f0}table.kv th{background:#f7f7f7;font-weight:600;white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.cues,table.matched{width:100%}
tr.tier-advisory td:first-child{border-left:4px solid #f2b705}
tr.tier-urgent td:first-child{border-left:4px solid #ef6c00}
tr.tier-stop td:first-child{border-left:4px solid #c62828}
tr.repeat td{color:#666}
.swatch{display:inline-block;width:10px;height:10px;margin-right:5px;border:1px solid #444;
vertical-align:baseline}
.legend{margin:2px 0;color:#333}.note{margin:2px 0;color:#555;font-size:13px}
svg.plot{display:block;width:100%;height:auto;margin:4px 0}
svg.plot text{font:12px system-ui,sans-serif;fill:#333}svg.plot text.axis-title{fill:#555}
svg.plot text.no-data{font-size:14px;fill:#777;font-style:italic}
svg [data-t],a[data-t]{cursor:pointer}
video{display:block;max-width:100%;max-height:480px;background:#000;margin:6px 0}
.verdict{display:inline-block;font-size:20px;font-weight:700;padding:2px 14px;border-radius:4px;margin:6px 0}
.verdict.pass{background:#e3f4e8;color:#1b6e35;border:2px solid #1b6e35}
.verdict.fail{background:#fbe4e4;color:#a11;border:2px solid #a11}
.verdict.none{background:#eee;color:#555;border:2px solid #999}
.empty{color:#666;font-style:italic}
details summary{cursor:pointer;margin:8px 0}
@media print{body{max-width:none;padding:0}nav,#video-section{display:none}
section,svg.plot,tr{break-inside:avoid}h2{break-after:avoid}}
"""

# Click a cue time, marker or span to seek the embedded video to 1 s before it (only emitted with a video).
SEEK_JS = (
    "document.addEventListener('click',function(e){var a=e.target.closest('[data-t]');"
    "var v=document.getElementById('video');if(!a||!v)return;e.preventDefault();"
    "v.currentTime=Math.max(0,parseFloat(a.getAttribute('data-t'))-1);"
    "v.scrollIntoView({block:'nearest'});});"
)


def render_report(
    out_dir: Path,
    timeline: dict[str, Any],
    frames: dict[str, Any],
    *,
    live: dict[str, Any] | None = None,
    comparison: dict[str, Any] | None = None,
    video_name: str | None = "annotated.mp4",
    labels: dict[str, Any] | None = None,
) -> Path:
    """Write `out_dir/report.html` for one replayed clip and return its path.

    `timeline` holds the clip's metadata (fps in frames/s, duration_s in s), its cue `events` (t in s from
    the clip's start, distance_m in m, ttc_s in s) and a free-form `summary`; `frames` holds per-frame
    columns (t in s, pipeline_ms / pose_ms in ms, walker 0/1, hazards as kind lists, ttc_s in s or null).
    `live`, `comparison` and `labels` add their sections when given; `video_name` is embedded as a
    `<video>` that must sit next to the report. The page has no external references; every input string
    is HTML-escaped. It is written to a temporary file in `out_dir` and renamed into place.
    """
    clip = str(timeline.get("clip", "unnamed clip"))
    mode = str(timeline.get("mode", "unknown"))
    fps = _num(timeline.get("fps"))
    fps = fps if fps is not None and fps > 0 else None
    cues = _cues(timeline.get("events"))
    fr = _Frames.parse(frames)
    step_s = fr.frame_step_s(fps)
    summary = timeline.get("summary")
    summary = summary if isinstance(summary, dict) else {}
    coverage = timeline.get("coverage")
    coverage_summary = timeline.get("coverage_summary")
    coverage_summary = coverage_summary if isinstance(coverage_summary, dict) else {}
    obstacles = timeline.get("obstacles")
    obstacles = [o for o in obstacles if isinstance(o, dict)] if isinstance(obstacles, list) else []
    live_cues = _cues(live.get("events")) if live else []
    misses = [_Cue.parse(m) for m in labels.get("misses", []) or []] if labels else []

    duration = _num(timeline.get("duration_s"))
    duration = duration if duration is not None and duration > 0 else None
    times = [t for t in fr.t if t is not None] + [c.t for c in cues + live_cues + misses if c.t is not None]
    t_end = max([duration or 0.0, *times, (max(times) + step_s) if times else 0.0])
    n_frames = _num(timeline.get("frames"))
    if duration is None and fps and n_frames:
        t_end = max(t_end, n_frames / fps)
    if t_end <= 0:
        t_end = 1.0
    xs = _Scale(0.0, t_end, PLOT_L, PLOT_R)
    long_clip = t_end >= 60
    linked = video_name is not None

    span_min = (duration if duration is not None else t_end) / 60.0
    per_min = len(cues) / span_min if span_min > 0 else None
    n_repeats = sum(c.repeat for c in cues)
    summary_rows: list[tuple[str, str]] = [
        ("clip", _e(clip)),
        ("mode", _e(mode)),
        ("source", _e(timeline.get("source", "—"))),
        ("fps", _fmt_value(timeline.get("fps"))),
        ("frames", _fmt_value(timeline.get("frames"))),
        ("duration", _fmt_num(duration, "s", 1)),
        ("cues", f"{len(cues)} ({n_repeats} of them repeats)"),
    ]
    for tier in ("stop", "urgent", "advisory"):
        of_tier = [c for c in cues if c.tier == tier]
        summary_rows.append((f"cues: {tier}", f"{len(of_tier)} ({sum(c.repeat for c in of_tier)} repeats)"))
    others = [c for c in cues if _tier_key(c.tier) == "other"]
    if others:
        summary_rows.append(("cues: other tiers", str(len(others))))
    summary_rows.append(("cues per minute (incl. repeats)", _fmt_num(per_min, digits=1)))
    summary_rows += [(f"summary: {_e(k)}", _fmt_summary_value(str(k), v)) for k, v in summary.items()]
    if coverage_summary:
        median = _num(coverage_summary.get("median"))
        share_low = _num(coverage_summary.get("share_low"))
        summary_rows += [
            ("path seen (median of frames)", _fmt_num(None if median is None else median * 100, "%", 0)),
            (
                "coverage low (share of frames)",
                _fmt_num(None if share_low is None else share_low * 100, "%", 1),
            ),
        ]
    if isinstance(timeline.get("obstacles"), list):
        summary_rows.append(("obstacles tracked", str(len(obstacles))))
    known_keys = {
        "clip", "mode", "fps", "frames", "duration_s", "source", "events", "summary", "coverage",
        "coverage_summary", "obstacles",
    }  # fmt: skip
    summary_rows += [
        (_e(k), _fmt_value(v))
        for k, v in timeline.items()
        if k not in known_keys and (v is None or isinstance(v, str | int | float | bool))
    ]

    cue_svg = _cue_plot(cues, xs, cls="cue", label="Cues over time", misses=misses)
    ttc_svg, ttc_note = _ttc_plot(fr, xs, step_s, cues)
    cost_svg, cost_legend = _cost_plot(fr, xs, fps)
    walker_svg, walker_caption = _walker_plot(fr, xs, step_s)

    tiers_legend = (
        " ".join(f'<span class="swatch" style="background:{TIER_COLOURS[t]}"></span>{t}' for t in TIERS)
        + ' <span class="swatch" style="background:#f2b705;opacity:.3"></span>repeat (drawn lighter)'
    )
    if misses:
        tiers_legend += " · × expected but not heard"
    lead = (
        f"The walker would have heard <b>{len(cues)}</b> cue(s) ({_count_by_tier(cues)}) "
        f"over {t_end:.1f} s of {_e(mode)}-mode footage."
        if cues
        else f"The walker would have heard <b>nothing</b> over {t_end:.1f} s of {_e(mode)}-mode footage."
    )
    nav = ["summary", "cues", "hazards", "cost", "walker"]
    parts: list[str] = [
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Rearguard report: {_e(clip)} ({_e(mode)})</title><style>{CSS}</style></head><body>",
        f"<h1>Rearguard replay: {_e(clip)} <small>({_e(mode)} mode)</small></h1>",
        f'<p class="meta">Source: {_e(timeline.get("source", "—"))} · generated '
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC</p>",
        f'<p class="lead">{lead}</p>',
    ]
    nav_links = [*nav]
    if isinstance(coverage, list):
        nav_links.append("coverage")
    if obstacles:
        nav_links.append("obstacles")
    nav_links.append("cue-list")
    nav_links += [
        name for name, given in (("live", live), ("comparison", comparison), ("labels", labels)) if given
    ]
    parts.append("<nav>" + "".join(f'<a href="#{n}">{n.replace("-", " ")}</a>' for n in nav_links) + "</nav>")
    parts.append(f'<section id="summary"><h2>Summary</h2>{_kv_table(summary_rows)}</section>')
    if video_name is not None:
        parts.append(
            '<section id="video-section"><h2>Annotated video</h2>'
            f'<video id="video" controls preload="metadata" src="{_e(video_name)}"></video>'
            f'<p class="note">{_e(video_name)} must sit next to this file. Click a cue time, marker or '
            "shaded span below to jump the video to 1 s before it.</p></section>"
        )
    parts.append(
        f'<section id="cues"><h2>Cues over time</h2><p class="legend">{tiers_legend}</p>{cue_svg}</section>'
    )
    parts.append(
        '<section id="hazards"><h2>Hazards and time to contact</h2>'
        '<p class="note">Time to contact of the nearest hazard per frame (black line) against the tier '
        "thresholds (dashed); dotted verticals mark new cues in their tier colour; below, one lane per "
        "hazard kind, shaded while it was detected.</p>"
        f"{ttc_svg}" + (f'<p class="note">{ttc_note}</p>' if ttc_note else "") + "</section>"
    )
    parts.append(
        '<section id="cost"><h2>Per-frame cost</h2>'
        + (f'<p class="legend">{cost_legend}</p>' if cost_legend else "")
        + f"{cost_svg}</section>"
    )
    parts.append(
        '<section id="walker"><h2>Walker in view</h2>'
        f'<p class="legend"><span class="swatch" style="background:{SEEN_COLOUR}"></span>in view '
        f'<span class="swatch" style="background:{LOST_COLOUR}"></span>not in view · blank: no verdict</p>'
        f"{walker_svg}" + (f'<p class="note">{walker_caption}</p>' if walker_caption else "") + "</section>"
    )
    if isinstance(coverage, list):
        cov_svg, cov_legend = _coverage_plot(coverage, fr, xs)
        parts.append(
            '<section id="coverage"><h2>Coverage: how much of the walker\'s path the camera sees</h2>'
            '<p class="note">The share of the corridor from the walker\'s heels to 3 m behind that is in '
            "view and not hidden by the walker's own body. Straight in front of the walker the partner sees "
            "little of it; half a step to the side fixes most of it.</p>"
            + (f'<p class="legend">{cov_legend}</p>' if cov_legend else "")
            + f"{cov_svg}</section>"
        )
    if obstacles:
        parts.append(
            f'<section id="obstacles"><h2>Obstacles tracked ({len(obstacles)})</h2>'
            f"{_obstacle_table(obstacles, linked=linked, long_clip=long_clip)}</section>"
        )
    parts.append(
        f'<section id="cue-list"><h2>Every cue ({len(cues)})</h2>'
        f"{_cue_table(cues, linked=linked, long_clip=long_clip)}</section>"
    )
    if live:
        parts.append(_live_section(live, xs, linked=linked, long_clip=long_clip))
    if comparison:
        parts.append(_comparison_section(comparison, linked=linked, long_clip=long_clip))
    if labels:
        parts.append(_labels_section(labels))
    if video_name is not None:
        parts.append(f"<script>{SEEK_JS}</script>")
    parts.append("</body></html>\n")
    page = "\n".join(parts)

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "report.html"
    fd, tmp_name = tempfile.mkstemp(prefix=".report-", suffix=".html.tmp", dir=out_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(page)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    if video_name is not None and not (out_dir / video_name).exists():
        logger.info("report %s embeds %s, which is not (yet) next to it", target, video_name)
    logger.info("wrote %s: %d cue(s), %d frame(s)", target, len(cues), len(fr.t))
    return target
