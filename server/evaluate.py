"""`rearguard evaluate`: the pipeline's warnings and coverage against the exact truth of generated scenes.

Per hazard kind and overall: the share of hazards warned at least 2 s before contact, the lead time of the
first warning (p10, median, max), side accuracy and median distance error of that warning; false alarms
per minute on clear paths; how far the estimated coverage is from the truth, by the partner's offset; and
a goals table with PASS or FAIL. Per scene it also prints what the walker heard that is not a warning.

How events are read (the functions below are pure, and tested on hand-made truth and timelines):

- Only onsets count (a repeat of a cue already heard is not news). **Warnings** are onsets of any kind
  but blindness (`walker_lost`, `camera_lost`, `connection_lost`: the system cannot see) and notices
  (`path_hidden`: "I cannot see behind you"). Those two are counted and printed per scene, never as false
  alarms and never as a warning about a hazard.
- **Which warning is about which obstacle.** A warning that carries a distance is attributed to the
  truth obstacle (any in the scene, passed ones excepted) whose distance at that moment is closest to
  it, if it is within 50% of the truth or 1 m, whichever is larger; otherwise to none (a stray warning).
  An obstacle's first warning is the earliest attributed to it before contact: later ones are usually the
  same hazard escalating, and taking them would shorten the lead. Only when no warning is attributed to it
  does the old rule apply: the earliest warning before contact that carries no distance. Side accuracy and
  distance error are measured on that first warning, and so is what it calls the hazard (the brief asks
  for kerbs and steps to be named as such: "Kerb", not "Obstacle").
- **Told blind.** A hazard not warned 2 s ahead still counts as not warned. It is also counted as "told
  blind" when a `path_hidden` notice came before its deadline (contact - 2 s) and, at some frame between
  that notice and the deadline, the obstacle stood in the corridor with less than half of it visible.
- **Coverage accuracy.** |estimated - truth| per frame where both are known (the replay's frames.json
  `coverage` column against truth `per_frame[k].coverage`, paired by frame time), per scene and pooled by
  the partner's offset (`camera.partner_offset_m` of the scene's spec: 0, +-0.5, +-1 m). The goal is a
  median error within 15 percentage points in every group; p90 is shown beside it.
"""

from __future__ import annotations

import argparse
import bisect
import concurrent.futures
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from server.clips import ClipError
from server.replay import ReplayOptions, replay_clip
from vision.alerts import BLIND_KINDS, NOTICE_KINDS

BLIND = set(BLIND_KINDS)
NOTICES = set(NOTICE_KINDS)
LEAD_S = 2.0  # the brief: warned at least 2 s before contact
MATCH_REL, MATCH_ABS_M = 0.5, 1.0  # a warning's distance within this of an obstacle's can be about it
HIDDEN_VISIBLE = 0.5  # an obstacle with less than this share of it in view is hidden
COVERAGE_PP = 0.15  # coverage goal: median |estimate - truth| within 15 percentage points
GOALS = {
    "warned_2s": 0.95,
    "false_alarms_per_min": 0.5,
    "side_accuracy": 0.90,
    "distance_error": 0.25,
    "coverage_error": COVERAGE_PP,
}

Event = dict[str, Any]


# --- truth lookups ----------------------------------------------------------------------------------------


def _frame_at(truth: dict[str, Any], t: float) -> dict[str, Any]:
    """The truth frame nearest to `t` (s)."""
    frames = truth["per_frame"]
    k = min(range(len(frames)), key=lambda i: abs(frames[i]["t"] - t))
    return dict(frames[k])


def truth_obstacle(truth: dict[str, Any], obstacle_id: str, t: float) -> dict[str, Any] | None:
    return next((o for o in _frame_at(truth, t)["obstacles"] if o["id"] == obstacle_id), None)


def truth_distance(truth: dict[str, Any], obstacle_id: str, t: float) -> float | None:
    o = truth_obstacle(truth, obstacle_id, t)
    return float(o["distance_m"]) if o is not None and o.get("distance_m") is not None else None


def truth_side(truth: dict[str, Any], obstacle_id: str, t: float) -> str | None:
    o = truth_obstacle(truth, obstacle_id, t)
    return str(o["side"]) if o is not None else None


def partner_offset(truth: dict[str, Any]) -> float | None:
    offset = truth.get("spec", {}).get("camera", {}).get("partner_offset_m")
    return float(offset) if isinstance(offset, int | float) else None


def offset_group(offset: float | None) -> str:
    """The offset groups of the suite: "0 m", "±0.5 m", "±1 m" (others to the nearest half metre)."""
    if offset is None:
        return "unknown"
    half = round(abs(offset) * 2) / 2
    return "0 m" if half == 0 else f"±{half:g} m"


# --- scoring ----------------------------------------------------------------------------------------------


def split_events(events: list[Event]) -> tuple[list[Event], list[Event], list[Event]]:
    """Onsets as (warnings, blindness cues, path notices)."""
    onsets = [e for e in events if not e.get("repeat")]
    blind = [e for e in onsets if e["kind"] in BLIND]
    notices = [e for e in onsets if e["kind"] in NOTICES]
    warnings = [e for e in onsets if e["kind"] not in BLIND and e["kind"] not in NOTICES]
    return warnings, blind, notices


def attribute(truth: dict[str, Any], warning: Event) -> str | None:
    """The id of the obstacle a warning with a distance is about (see the module's docstring), or None."""
    d = warning.get("distance_m")
    if d is None:
        return None
    best: tuple[float, str] | None = None
    for o in _frame_at(truth, float(warning["t"]))["obstacles"]:
        d_true = o.get("distance_m")
        if d_true is None or d_true < 0:  # passed already
            continue
        err = abs(float(d) - float(d_true))
        if err <= max(MATCH_REL * float(d_true), MATCH_ABS_M) and (best is None or err < best[0]):
            best = (err, str(o["id"]))
    return best[1] if best else None


def _states_by_deadline(
    truth: dict[str, Any], obstacle: dict[str, Any]
) -> Iterator[tuple[float, dict[str, Any]]]:
    """(frame time, truth state) of `obstacle` at every frame up to its deadline (2 s before contact)."""
    deadline = float(obstacle["contact_t_s"]) - LEAD_S
    for f in truth["per_frame"]:
        if f["t"] <= deadline + 1e-6:
            yield from ((float(f["t"]), o) for o in f["obstacles"] if o["id"] == obstacle["id"])


def _told_blind(truth: dict[str, Any], obstacle: dict[str, Any], notices: list[Event]) -> bool:
    """A path notice before the deadline while this obstacle stood hidden in the corridor."""
    deadline = float(obstacle["contact_t_s"]) - LEAD_S
    first = min((float(n["t"]) for n in notices if float(n["t"]) <= deadline), default=None)
    return first is not None and any(
        t >= first - 1e-6 and o.get("in_corridor") and float(o.get("visible_fraction", 1.0)) < HIDDEN_VISIBLE
        for t, o in _states_by_deadline(truth, obstacle)
    )


def _seen_in_time(truth: dict[str, Any], obstacle: dict[str, Any]) -> bool:
    """Half or more of the obstacle was in view at some frame up to its deadline (2 s before contact): a
    camera could have warned in time. Hidden until then (behind the walker), it could not."""
    return any(
        float(o.get("visible_fraction", 1.0)) >= HIDDEN_VISIBLE
        for _, o in _states_by_deadline(truth, obstacle)
    )


def coverage_errors(truth: dict[str, Any], frames: dict[str, Any] | None) -> list[float]:
    """|estimated - truth| coverage per frame where both are known, frames paired by time (within half a
    frame). `frames` is a replay's frames.json (columns `t` and `coverage`); None or no column: none."""
    if not frames or not isinstance(frames.get("coverage"), list) or not isinstance(frames.get("t"), list):
        return []
    est_t = [float(t) for t in frames["t"]]
    half = 0.5 / float(truth.get("fps") or 15.0)
    errors = []
    for f in truth["per_frame"]:
        if f.get("coverage") is None:
            continue
        i = bisect.bisect_left(est_t, f["t"] - half)
        if i < len(est_t) and abs(est_t[i] - f["t"]) <= half and frames["coverage"][i] is not None:
            errors.append(round(abs(float(frames["coverage"][i]) - float(f["coverage"])), 4))
    return errors


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def score_scene(
    truth: dict[str, Any], timeline: dict[str, Any], frames: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What one scene contributes: per hazard (warned in time, lead, side right, distance error, told blind),
    for a clear-path control its false alarms, the blindness cues and path notices heard, stray warnings
    (a distance that fits no obstacle), and coverage accuracy when `frames` (frames.json) is given."""
    warnings, blind, notices = split_events(timeline["events"])
    about = [attribute(truth, w) for w in warnings]
    hazards = []
    for o in truth["obstacles"]:
        if not o.get("ever_in_corridor") or o.get("advisory_t_s") is None or not o.get("contact_in_clip"):
            continue
        before = [(w, a) for w, a in zip(warnings, about, strict=True) if w["t"] <= o["contact_t_s"]]
        mine = [w for w, a in before if a == o["id"]]
        unplaced = [w for w, _ in before if w.get("distance_m") is None]
        first, rule = (mine[0], "distance") if mine else (None, None)
        if first is None and unplaced:
            first, rule = unplaced[0], "earliest"
        entry: dict[str, Any] = {
            "scene": truth["name"],
            "id": o["id"],
            "kind": o["hazard_kind"],
            "warned_2s": False,
        }
        if first is not None:
            entry["lead_s"] = round(o["contact_t_s"] - first["t"], 3)
            entry["warned_2s"] = first["t"] <= o["contact_t_s"] - LEAD_S
            entry["matched_by"] = rule
            entry["named"] = str(first["kind"])  # what the walker heard it called: "Kerb", "Obstacle", ...
            entry["side_right"] = first["side"] == truth_side(truth, o["id"], first["t"])
            d_true = truth_distance(truth, o["id"], first["t"])
            if first.get("distance_m") is not None and d_true:
                entry["distance_error"] = abs(first["distance_m"] - d_true) / d_true
        entry["told_blind"] = not entry["warned_2s"] and _told_blind(truth, o, notices)
        entry["seen_in_time"] = _seen_in_time(truth, o)
        hazards.append(entry)
    minutes = float(truth["duration_s"]) / 60.0
    control = {"minutes": minutes, "false_alarms": len(warnings)} if truth.get("control") else None
    errors = coverage_errors(truth, frames)
    offset = partner_offset(truth)
    return {
        "name": truth["name"],
        "hazards": hazards,
        "control": control,
        "warnings": len(warnings),
        "minutes": minutes,
        "stray_warnings": sum(
            1 for w, a in zip(warnings, about, strict=True) if a is None and w.get("distance_m") is not None
        ),
        "blind_cues": len(blind),
        "blind_kinds": sorted({e["kind"] for e in blind}),
        "path_notices": len(notices),
        "told_blind": sum(h["told_blind"] for h in hazards),
        "partner_offset_m": offset,
        "coverage": {
            "group": offset_group(offset),
            "frames": len(errors),
            "median": round(statistics.median(errors), 4) if errors else None,
            "p90": round(_pct(errors, 90) or 0.0, 4) if errors else None,
            "errors": errors,
        },
    }


def summarise(scores: list[dict[str, Any]]) -> dict[str, Any]:
    """Per kind and overall, clear paths, coverage by offset group, and the goals with PASS / FAIL."""
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in scores:
        for h in s["hazards"]:
            by_kind[h["kind"]].append(h)
    everything = [h for hs in by_kind.values() for h in hs]

    def stats(hs: list[dict[str, Any]]) -> dict[str, Any]:
        warned = [h for h in hs if "lead_s" in h]
        sides = [h["side_right"] for h in warned]
        errors = [h["distance_error"] for h in warned if "distance_error" in h]
        leads = sorted(h["lead_s"] for h in warned)
        seen = [h for h in hs if h.get("seen_in_time", True)]
        names = Counter(str(h["named"]) for h in warned if "named" in h)
        return {
            "hazards": len(hs),
            "warned_2s": sum(h["warned_2s"] for h in hs) / len(hs) if hs else None,
            "seen_in_time": len(seen),
            "warned_2s_of_seen": sum(h["warned_2s"] for h in seen) / len(seen) if seen else None,
            "warned_any": len(warned),
            "told_blind": sum(bool(h.get("told_blind")) for h in hs),
            "side_accuracy": sum(sides) / len(sides) if sides else None,
            "distance_error": statistics.median(errors) if errors else None,
            "named": dict(sorted(names.items(), key=lambda kv: (-kv[1], kv[0]))),  # first warnings' kinds
            "lead_s": {
                "p10": round(_pct(leads, 10) or 0.0, 3) if leads else None,
                "median": statistics.median(leads) if leads else None,
                "max": leads[-1] if leads else None,
            },
        }

    controls = [s["control"] for s in scores if s["control"]]
    minutes = sum(c["minutes"] for c in controls)
    groups: dict[str, list[float]] = defaultdict(list)
    group_scenes: dict[str, int] = defaultdict(int)
    for s in scores:
        cov = s.get("coverage") or {}
        if cov.get("errors"):
            groups[cov["group"]] += cov["errors"]
            group_scenes[cov["group"]] += 1
    coverage = {
        g: {
            "scenes": group_scenes[g],
            "frames": len(errs),
            "median": round(statistics.median(errs), 4),
            "p90": round(_pct(errs, 90) or 0.0, 4),
            "pass": statistics.median(errs) <= COVERAGE_PP,
        }
        for g, errs in sorted(groups.items(), key=lambda kv: _group_order(kv[0]))
    }
    overall = stats(everything)
    fa = sum(c["false_alarms"] for c in controls) / minutes if minutes else None
    # Warnings in scenes with hazards whose distance fits no obstacle: false alarms the clear-path goal
    # does not count (a shadow band, the ground model's first frames), beside it.
    hazard_scenes = [s for s in scores if not s["control"]]
    hazard_minutes = sum(float(s.get("minutes", 0.0)) for s in hazard_scenes)
    strays = sum(s["stray_warnings"] for s in hazard_scenes)
    return {
        "by_kind": {k: stats(v) for k, v in sorted(by_kind.items())},
        "kerb_naming": kerb_naming(everything),
        "overall": overall,
        "clear_path_minutes": round(minutes, 2),
        "false_alarms_per_min": fa,
        "stray_warnings_in_hazard_scenes": {
            "warnings": strays,
            "minutes": round(hazard_minutes, 2),
            "per_min": strays / hazard_minutes if hazard_minutes else None,
        },
        "coverage_by_offset": coverage,
        "scenes": len(scores),
        "goals": goal_rows(overall, fa, coverage),
    }


def kerb_naming(hazards: list[dict[str, Any]]) -> dict[str, int]:
    """The brief asks for kerbs and steps to be named as such. Of the warned kerbs and steps, how many
    were first called "kerb"; of the other warned hazards, how many were called "kerb" (the worse mistake:
    a walker told "kerb" may try to step over a bin or a wall)."""
    warned = [h for h in hazards if "named" in h]
    kerbs = [h for h in warned if h["kind"] == "kerb"]
    others = [h for h in warned if h["kind"] != "kerb"]
    return {
        "kerbs_warned": len(kerbs),
        "kerbs_named_kerb": sum(h["named"] == "kerb" for h in kerbs),
        "others_warned": len(others),
        "others_named_kerb": sum(h["named"] == "kerb" for h in others),
    }


def _group_order(group: str) -> float:
    try:
        return float(group.strip("±m "))
    except ValueError:
        return float("inf")


def goal_rows(
    overall: dict[str, Any], false_alarms_per_min: float | None, coverage: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """One row per goal of the brief: the target, the measured figure, and whether it passes (None: not
    measured, neither pass nor fail)."""

    def row(goal: str, target: str, measured: float | None, ok: bool | None, shown: str) -> dict[str, Any]:
        return {"goal": goal, "target": target, "measured": measured, "shown": shown, "pass": ok}

    def at_least(x: float | None, limit: float) -> bool | None:
        return None if x is None else x >= limit

    def at_most(x: float | None, limit: float) -> bool | None:
        return None if x is None else x <= limit

    w, side, dist = overall["warned_2s"], overall["side_accuracy"], overall["distance_error"]
    fa = false_alarms_per_min
    rows = [
        row("hazards warned >= 2 s before contact", ">= 95%", w, at_least(w, GOALS["warned_2s"]),
            fmt(w, True)),
        row("false alarms on clear paths", "<= 0.5 / min", fa, at_most(fa, GOALS["false_alarms_per_min"]),
            "-" if fa is None else f"{fa:.2f} / min"),
        row("side right", ">= 90%", side, at_least(side, GOALS["side_accuracy"]), fmt(side, True)),
        row("median distance error", "<= 25%", dist, at_most(dist, GOALS["distance_error"]), fmt(dist, True)),
    ]  # fmt: skip
    for group in ("0 m", "±0.5 m", "±1 m", *[g for g in coverage if g not in ("0 m", "±0.5 m", "±1 m")]):
        g = coverage.get(group)
        median = g["median"] if g else None
        shown = "-" if g is None else f"median {100 * g['median']:.0f} pp, p90 {100 * g['p90']:.0f} pp"
        rows.append(
            row(f"coverage error, partner offset {group}", "median <= 15 pp", median,
                at_most(median, GOALS["coverage_error"]), shown)
        )  # fmt: skip
    return rows


# --- running ----------------------------------------------------------------------------------------------


def scene_dirs(specs: list[str]) -> list[Path]:
    out: list[Path] = []
    for spec in specs:
        p = Path(spec)
        if (p / "truth.json").is_file():
            out.append(p)
        elif p.is_dir():
            out += sorted(d for d in p.iterdir() if (d / "truth.json").is_file())
    return out


Replayed = tuple[str, dict[str, Any] | None, dict[str, Any] | None, str | None]


def _replay(job: tuple[Path, Path | None, bool]) -> Replayed:
    """(scene, timeline, frames, error); with a keep folder, the replay's JSON files are copied into it.
    With `use_sensors`, the scene's tilt log (clip.sensors.json, when it has one) goes with the frames."""
    scene, keep, use_sensors = job
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        try:
            opts = ReplayOptions(video=False, report=False, use_sensors=use_sensors)
            replay_clip(scene / "clip.mp4", out, opts)
        except ClipError as exc:
            return scene.name, None, None, str(exc)
        if keep is not None:
            (keep / scene.name).mkdir(parents=True, exist_ok=True)
            for name in ("timeline.json", "frames.json"):
                shutil.copy(out / name, keep / scene.name / name)
        frames = json.loads((out / "frames.json").read_text())
        return scene.name, json.loads((out / "timeline.json").read_text()), frames, None


def fmt(x: float | None, pct: bool = False) -> str:
    if x is None:
        return "-"
    return f"{100 * x:.0f}%" if pct else f"{x:.2f}"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else "PASS" if ok else "FAIL"


def table(header: list[str], rows: list[list[Any]]) -> None:
    """A Markdown table on stdout."""
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")


def print_result(result: dict[str, Any], scores: list[dict[str, Any]]) -> None:
    table(
        ["goal", "target", "measured", "result"],
        [[g["goal"], g["target"], g["shown"], verdict(g["pass"])] for g in result["goals"]],
    )
    o, stray = result["overall"], result["stray_warnings_in_hazard_scenes"]
    if o["hazards"]:
        hidden = o["hazards"] - o["seen_in_time"]
        print(
            f"\nBeside the goals: of the {o['seen_in_time']} hazards at least half in view before their 2 s "
            f"deadline, {fmt(o['warned_2s_of_seen'], True)} were warned in time; the other {hidden} stayed "
            f"more than half hidden (behind the walker) until then. Told blind instead: {o['told_blind']}."
        )
    names = result["kerb_naming"]
    if names["kerbs_warned"] or names["others_warned"]:
        print(
            'Kerbs and steps named as such (their first warning says "Kerb"): '
            f"{names['kerbs_named_kerb']} of the {names['kerbs_warned']} warned; other hazards called "
            f'"Kerb": {names["others_named_kerb"]} of the {names["others_warned"]} warned.'
        )
    if stray["per_min"] is not None:
        print(
            f"Stray warnings in the scenes with hazards (a distance that fits no obstacle; the clear-path "
            f"goal does not count them): {stray['warnings']} in {stray['minutes']:.1f} min, "
            f"{stray['per_min']:.2f} a minute."
        )
    print()
    rows = []
    for kind, st in [*result["by_kind"].items(), ("overall", result["overall"])]:
        lead = st["lead_s"]
        rows.append(
            [kind, st["hazards"], fmt(st["warned_2s"], True), st["told_blind"],
             f"{fmt(lead['p10'])} / {fmt(lead['median'])} / {fmt(lead['max'])}",
             fmt(st["side_accuracy"], True), fmt(st["distance_error"], True),
             ", ".join(f"{k} {n}" for k, n in st["named"].items()) or "-"]
        )  # fmt: skip
    table(
        ["kind", "hazards", "warned >= 2 s", "told blind", "lead p10 / median / max s", "side right",
         "distance error", "first warning says"],
        rows,
    )  # fmt: skip
    print()
    cov = result["coverage_by_offset"]
    table(
        ["partner offset", "scenes", "frames", "median error", "p90 error", "within 15 pp"],
        [[group, g["scenes"], g["frames"], f"{100 * g['median']:.1f} pp", f"{100 * g['p90']:.1f} pp",
          verdict(g["pass"])] for group, g in cov.items()]
        or [["(no frame has both an estimated and a true coverage)", "", "", "", "", ""]],
    )  # fmt: skip
    print(
        "\nPer scene. Warnings are onsets other than blindness cues (walker, camera or connection lost) and "
        'path notices ("I cannot see behind you"); those two are not false alarms. Stray: a warning whose '
        "distance fits no obstacle."
    )
    rows = []
    for s in scores:
        hs, c = s["hazards"], s["coverage"]
        blind = f"{s['blind_cues']}" + (f" ({', '.join(s['blind_kinds'])})" if s["blind_kinds"] else "")
        rows.append(
            [s["name"], "yes" if s["control"] else "", fmt(s["partner_offset_m"]),
             f"{sum(h['warned_2s'] for h in hs)}/{len(hs)}" if hs else "-", s["warnings"],
             s["control"]["false_alarms"] if s["control"] else "-", s["stray_warnings"], blind,
             s["path_notices"], s["told_blind"],
             f"{100 * c['median']:.0f} / {100 * c['p90']:.0f} pp" if c["median"] is not None else "-"]
        )  # fmt: skip
    table(
        ["scene", "control", "offset m", "warned >= 2 s", "warnings", "false alarms", "stray",
         "blindness cues", "path notices", "told blind", "coverage error median / p90"],
        rows,
    )  # fmt: skip
    print(
        f"\nfalse alarms on clear paths: {fmt(result['false_alarms_per_min'])} a minute over "
        f"{result['clear_path_minutes']} min; {result['scenes']} scenes"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="rearguard evaluate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("scenes", nargs="+", help="rendered scenes (folders with truth.json and clip.mp4)")
    ap.add_argument(
        "--timelines",
        help="read DIR/SCENE/timeline.json (and frames.json, for coverage) instead of running the pipeline",
    )
    ap.add_argument("--out", help="keep each replay's timeline.json and frames.json in DIR/SCENE/")
    ap.add_argument(
        "--no-sensors",
        action="store_true",
        help="ignore the scenes' tilt logs (clip.sensors.json): the image alone, as a replayed clip",
    )
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)
    # Every argument must give scenes: one that matched nothing was skipped without a word, and the goals
    # were then judged on part of the suite
    empty = [a for a in args.scenes if not scene_dirs([a])]
    if empty and len(empty) < len(args.scenes):
        print(f"rearguard evaluate: no rendered scene in {', '.join(empty)}", file=sys.stderr)
        return 2
    if args.json and not Path(args.json).resolve().parent.is_dir():
        print(f"rearguard evaluate: cannot write --json {args.json}: no such folder", file=sys.stderr)
        return 2
    scenes = scene_dirs(args.scenes)
    if not scenes:
        print(
            "rearguard evaluate: no rendered scene found (render them with `rearguard scenario`)",
            file=sys.stderr,
        )
        return 2
    timelines: dict[str, dict[str, Any]] = {}
    frames: dict[str, dict[str, Any] | None] = {}
    if args.timelines:
        for s in scenes:
            path = Path(args.timelines) / s.name / "timeline.json"
            if not path.is_file():
                print(f"rearguard evaluate: {path} is missing", file=sys.stderr)
                return 2
            timelines[s.name] = json.loads(path.read_text())
            fpath = path.with_name("frames.json")
            frames[s.name] = json.loads(fpath.read_text()) if fpath.is_file() else None
    else:
        keep = Path(args.out) if args.out else None
        # Spawned, not forked: a fork of a process that already runs MediaPipe's threads (a test that has
        # just rendered scenes, say) can die in the child.
        spawn = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(max(1, args.jobs), mp_context=spawn) as pool:
            jobs = [(s, keep, not args.no_sensors) for s in scenes]
            for name, timeline, cols, err in pool.map(_replay, jobs):
                if err is not None or timeline is None:
                    print(f"rearguard evaluate: {name}: {err}", file=sys.stderr)
                    return 2
                timelines[name], frames[name] = timeline, cols
    scores = [
        score_scene(json.loads((s / "truth.json").read_text()), timelines[s.name], frames[s.name])
        for s in scenes
    ]
    result = summarise(scores)
    # the phone's tilt measures the camera's height; without it, it is a prior (docs/obstacles.md)
    result["with_tilt_log"] = sum(1 for t in timelines.values() if t.get("sensors"))
    print(f"Scenes replayed with the phone's tilt log: {result['with_tilt_log']} of {len(scenes)}")
    print_result(result, scores)
    if args.json:
        try:
            Path(args.json).write_text(json.dumps(result | {"scores": scores}, indent=1))
        except OSError as exc:
            why = exc.strerror or exc
            print(f"rearguard evaluate: cannot write --json {args.json}: {why}", file=sys.stderr)
            return 2
    return 0
