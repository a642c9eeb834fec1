"""`rearguard evaluate`: the pipeline's warnings against the exact truth of generated scenes.

Per hazard kind and overall: the share of hazards warned at least 2 s before contact, the lead time of
the first warning, side accuracy, median distance error, and false alarms per minute on clear paths.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from server.clips import ClipError
from server.replay import ReplayOptions, replay_clip

BLIND = {"walker_lost", "camera_lost", "connection_lost"}
LEAD_S = 2.0  # the brief: warned at least 2 s before contact
GOALS = {"warned_2s": 0.95, "false_alarms_per_min": 0.5, "side_accuracy": 0.90, "distance_error": 0.25}


def truth_distance(truth: dict[str, Any], obstacle_id: str, t: float) -> float | None:
    frames = truth["per_frame"]
    k = min(range(len(frames)), key=lambda i: abs(frames[i]["t"] - t))
    for o in frames[k]["obstacles"]:
        if o["id"] == obstacle_id:
            return float(o["distance_m"])
    return None


def truth_side(truth: dict[str, Any], obstacle_id: str, t: float) -> str | None:
    frames = truth["per_frame"]
    k = min(range(len(frames)), key=lambda i: abs(frames[i]["t"] - t))
    return next((str(o["side"]) for o in frames[k]["obstacles"] if o["id"] == obstacle_id), None)


def score_scene(truth: dict[str, Any], timeline: dict[str, Any]) -> dict[str, Any]:
    """What one scene contributes: per hazard (warned in time, lead, side right, distance error) and,
    for a clear-path control, its false alarms."""
    onsets = [e for e in timeline["events"] if not e.get("repeat")]
    warnings = [e for e in onsets if e["kind"] not in BLIND]
    hazards = []
    for o in truth["obstacles"]:
        if not o.get("ever_in_corridor") or o.get("advisory_t_s") is None or not o.get("contact_in_clip"):
            continue
        # The first warning that could be about it: an obstacle warning before contact. Until detection
        # reports which obstacle a warning is about, the earliest one in the window counts.
        first = next((e for e in warnings if e["t"] <= o["contact_t_s"]), None)
        entry: dict[str, Any] = {
            "scene": truth["name"],
            "id": o["id"],
            "kind": o["hazard_kind"],
            "warned_2s": False,
        }
        if first is not None:
            entry["lead_s"] = round(o["contact_t_s"] - first["t"], 3)
            entry["warned_2s"] = first["t"] <= o["contact_t_s"] - LEAD_S
            entry["side_right"] = first["side"] == truth_side(truth, o["id"], first["t"])
            d_true = truth_distance(truth, o["id"], first["t"])
            if first.get("distance_m") is not None and d_true:
                entry["distance_error"] = abs(first["distance_m"] - d_true) / d_true
        hazards.append(entry)
    minutes = float(truth["duration_s"]) / 60.0
    control = {"minutes": minutes, "false_alarms": len(onsets)} if truth.get("control") else None
    return {"name": truth["name"], "hazards": hazards, "control": control}


def summarise(scores: list[dict[str, Any]]) -> dict[str, Any]:
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
        return {
            "hazards": len(hs),
            "warned_2s": sum(h["warned_2s"] for h in hs) / len(hs) if hs else None,
            "side_accuracy": sum(sides) / len(sides) if sides else None,
            "distance_error": statistics.median(errors) if errors else None,
            "lead_s": {
                "p10": leads[len(leads) // 10] if leads else None,
                "median": statistics.median(leads) if leads else None,
                "max": leads[-1] if leads else None,
            },
        }

    controls = [s["control"] for s in scores if s["control"]]
    minutes = sum(c["minutes"] for c in controls)
    return {
        "by_kind": {k: stats(v) for k, v in sorted(by_kind.items())},
        "overall": stats(everything),
        "clear_path_minutes": round(minutes, 2),
        "false_alarms_per_min": sum(c["false_alarms"] for c in controls) / minutes if minutes else None,
        "scenes": len(scores),
        "goals": GOALS,
    }


def scene_dirs(specs: list[str]) -> list[Path]:
    out: list[Path] = []
    for spec in specs:
        p = Path(spec)
        if (p / "truth.json").is_file():
            out.append(p)
        elif p.is_dir():
            out += sorted(d for d in p.iterdir() if (d / "truth.json").is_file())
    return out


def _replay(scene: Path) -> tuple[str, dict[str, Any] | None, str | None]:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            replay_clip(scene / "clip.mp4", Path(tmp) / "out", ReplayOptions(video=False, report=False))
        except ClipError as exc:
            return scene.name, None, str(exc)
        return scene.name, json.loads((Path(tmp) / "out" / "timeline.json").read_text()), None


def fmt(x: float | None, pct: bool = False) -> str:
    if x is None:
        return "-"
    return f"{100 * x:.0f}%" if pct else f"{x:.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="rearguard evaluate", description=__doc__)
    ap.add_argument("scenes", nargs="+", help="rendered scenes (folders with truth.json and clip.mp4)")
    ap.add_argument("--timelines", help="read DIR/SCENE/timeline.json instead of running the pipeline")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)
    scenes = scene_dirs(args.scenes)
    if not scenes:
        print(
            "rearguard evaluate: no rendered scene found (render them with `rearguard scenario`)",
            file=sys.stderr,
        )
        return 2
    timelines: dict[str, dict[str, Any]] = {}
    if args.timelines:
        for s in scenes:
            path = Path(args.timelines) / s.name / "timeline.json"
            if not path.is_file():
                print(f"rearguard evaluate: {path} is missing", file=sys.stderr)
                return 2
            timelines[s.name] = json.loads(path.read_text())
    else:
        with concurrent.futures.ProcessPoolExecutor(max(1, args.jobs)) as pool:
            for name, timeline, err in pool.map(_replay, scenes):
                if err is not None or timeline is None:
                    print(f"rearguard evaluate: {name}: {err}", file=sys.stderr)
                    return 2
                timelines[name] = timeline
    scores = [score_scene(json.loads((s / "truth.json").read_text()), timelines[s.name]) for s in scenes]
    result = summarise(scores)
    print("| kind | hazards | warned >= 2 s | lead p10 / median s | side right | distance error |")
    print("|---|---|---|---|---|---|")
    for kind, st in [*result["by_kind"].items(), ("overall", result["overall"])]:
        lead = st["lead_s"]
        print(
            f"| {kind} | {st['hazards']} | {fmt(st['warned_2s'], True)} "
            f"| {fmt(lead['p10'])} / {fmt(lead['median'])} "
            f"| {fmt(st['side_accuracy'], True)} | {fmt(st['distance_error'], True)} |"
        )
    print(
        f"\nfalse alarms on clear paths: {fmt(result['false_alarms_per_min'])} a minute over "
        f"{result['clear_path_minutes']} min\ngoals: warned >= 2 s in >= 95%, <= 0.5 false alarms a minute, "
        "side right >= 90%, median distance error <= 25%"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result | {"scores": scores}, indent=1))
    return 0
