"""Cost of the whole partner pipeline beside pose inference alone, timed side by side in one process.

    .venv/bin/python bench/partner_cost.py [CLIPS...] [--frames 300] [--rounds 3] [--json PATH]

The goal it checks: the full partner pipeline costs at most 1.35x pose inference alone, median per frame.

- Clips: the real clip ../shared/clips/squats_facing_camera.mp4 (beside the checkout; `--real-clip`,
  `--no-real-clip`) plus every clip on the command line (e.g. a rendered scene, /tmp/scenes/NAME/clip.mp4).
  Each is decoded once, upright at 640 px on the long side, and JPEG-compressed at the phone page's quality
  (server.clips.phone_jpeg), so both sides see the live frame path's pixels; frames stay in memory. A clip
  shorter than the run plays forwards then backwards (no cut for the trackers to see); timestamps rise at
  the clip's own fps.
- (a) pose alone: a fresh `vision.pose.PoseEstimator` per round, built with the options the pipeline gives
  its own estimator (read from the Pipeline as it is built) but with segmentation masks off, whatever the
  keyword is called: a mask the pipeline asks for is part of its added cost. Timed: `detect(rgb, ts)` on
  the RGB of the decoded JPEG.
- (b) the full pipeline: a fresh `Pipeline(PipelineConfig())` per round; timed: `process_jpeg(jpeg, ts,
  pitch)` (the phone's tilt from CLIP.sensors.json beside the clip, as a live page sends it; none without)
  end to end (decode, convert, pose, and whatever stages the pipeline has today: ground, obstacles,
  coverage, hazards). Its own `timings_ms` give the stage breakdown.
- Side by side: every frame runs through (a) and (b), in ABBA order from frame to frame (`--interleave
  frame`, the default) or in whole-clip blocks whose order alternates from round to round (`--interleave
  block`). The first `--warmup` frames of each round are run but not counted.

Prints, per clip and over all clips: median and p95 ms per frame of each side, the ratio of the medians
(the goal, PASS/FAIL) and of the p95s, the ratio per round, the median of each pipeline stage, and the
load average at start and end (2 shared cores: a busy neighbour shows there). `--json PATH` writes the same
figures. Figures only: the exit code does not depend on the goal.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import itertools
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from unittest import mock

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402

import vision.pipeline as pipeline_module  # noqa: E402
from server.clips import PHONE_JPEG_QUALITY, ClipError, frames, phone_jpeg, probe  # noqa: E402
from server.replay import ReplayOptions, sensor_readings  # noqa: E402
from vision.pipeline import Pipeline, PipelineConfig, decode_jpeg  # noqa: E402
from vision.pose import PoseEstimator  # noqa: E402
from vision.sensors import reading_at  # noqa: E402

DEFAULT_REAL_CLIP = ROOT.parent / "shared" / "clips" / "squats_facing_camera.mp4"
GOAL_RATIO_OF_MEDIANS = 1.35
# The names PoseEstimator has used or may use for "also return segmentation masks".
MASK_KEYWORDS = ("segmentation", "output_masks", "output_segmentation_masks")

Interleave = Literal["frame", "block"]
Rgb = npt.NDArray[np.uint8]


def pct(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else None


def ratio(num: float | None, den: float | None) -> float | None:
    return num / den if num is not None and den else None


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


# -- frames ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClipFrames:
    """One clip's frames as the phone page sends them (`jpegs`) and as pose alone gets them (`rgbs`: the
    same JPEGs decoded, (H, W, 3) uint8 RGB). `order` indexes them for every frame of a round."""

    label: str
    path: Path
    fps: float
    resolution_wh: tuple[int, int]
    jpegs: tuple[bytes, ...]
    rgbs: tuple[Rgb, ...]
    order: tuple[int, ...]
    pitch_deg: tuple[float | None, ...] = ()  # the phone's tilt per frame, from CLIP.sensors.json if any

    def pitch(self, i: int) -> float | None:
        return reading_at(self.pitch_deg, self.order[i])

    def timestamp_ms(self, i: int) -> int:
        return round(i * 1000.0 / self.fps)

    def describe(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "path": str(self.path),
            "fps": self.fps,
            "resolution_wh": list(self.resolution_wh),
            "unique_frames": len(self.jpegs),
            "tilt_log": bool(self.pitch_deg),
        }


def clip_label(path: Path) -> str:
    # Rendered scenes are all called clip.mp4; their folder names them.
    return path.parent.name if path.stem == "clip" else path.name


def forwards_then_backwards(n_unique: int, n: int) -> tuple[int, ...]:
    """`n` indices into `n_unique` frames: 0, 1, ..., last, last-1, ..., 1, 0, 1, ... (no jump cut)."""
    if n_unique == 1:
        return (0,) * n
    cycle = [*range(n_unique), *range(n_unique - 2, 0, -1)]
    return tuple(itertools.islice(itertools.cycle(cycle), n))


def load_clip(path: Path, n: int) -> ClipFrames:
    """At most `n` frames of the clip, JPEG-compressed once as the phone page would, then decoded once."""
    try:
        info = probe(path)
    except ClipError as exc:
        raise SystemExit(f"partner_cost: {exc}") from exc
    jpegs = tuple(phone_jpeg(f) for f in itertools.islice(frames(info), n))
    if not jpegs:
        raise SystemExit(f"partner_cost: no frame could be read from {path}")
    rgbs = tuple(cv2.cvtColor(decode_jpeg(j), cv2.COLOR_BGR2RGB).astype(np.uint8, copy=False) for j in jpegs)
    order = forwards_then_backwards(len(jpegs), n)
    try:  # CLIP.sensors.json beside the clip, checked as a replay checks it: a live phone sends its tilt
        _, readings = sensor_readings(path, info, ReplayOptions())
    except ClipError as exc:
        raise SystemExit(f"partner_cost: {exc}") from exc
    pitch = tuple(readings or ())
    return ClipFrames(clip_label(path), path, info.fps, info.analysis_wh, jpegs, rgbs, order, pitch)


# -- the two estimators' options ---------------------------------------------------------------------------
@dataclass(frozen=True)
class EstimatorOptions:
    """Keyword arguments for PoseEstimator: the pipeline's own (`pipeline`), and the baseline's (the same
    with every mask keyword False). `source` says how the pipeline's were found."""

    pipeline: dict[str, Any]
    baseline: dict[str, Any]
    source: str
    pipeline_asks_masks: bool | None  # None: not known (derived from the config, no mask field there)


def as_kwargs(sig: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    bound = sig.bind(*args, **kwargs)
    bound.apply_defaults()
    out: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = sig.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            out.update(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            if value:
                raise SystemExit("partner_cost: PoseEstimator takes *args now; update this bench")
        else:
            out[name] = value
    return out


def estimator_options(config: PipelineConfig) -> EstimatorOptions:
    """The options `Pipeline(config)` builds its PoseEstimator with. Pipeline does not expose them, so one
    throwaway Pipeline is built while a recording subclass stands in for PoseEstimator in vision.pipeline.
    If the pipeline builds its estimator elsewhere, they are derived from the config's fields that share a
    name with PoseEstimator's parameters."""
    sig = inspect.signature(PoseEstimator)
    calls: list[dict[str, Any]] = []

    class RecordingEstimator(PoseEstimator):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            calls.append(as_kwargs(sig, args, kwargs))
            super().__init__(*args, **kwargs)

    if vars(pipeline_module).get("PoseEstimator") is PoseEstimator:
        with mock.patch.object(pipeline_module, "PoseEstimator", RecordingEstimator):
            Pipeline(config).close()
    mask_keys = [k for k in MASK_KEYWORDS if k in sig.parameters]
    if calls:
        pipeline_kwargs = calls[0]
        source = "as the Pipeline built it" + (f" (first of {len(calls)})" if len(calls) > 1 else "")
        asks: bool | None = any(bool(pipeline_kwargs.get(k)) for k in mask_keys)
    else:
        pipeline_kwargs = as_kwargs(
            sig, (), {name: getattr(config, name) for name in sig.parameters if hasattr(config, name)}
        )
        source = "derived from PipelineConfig (the Pipeline did not build one through vision.pipeline)"
        config_masks = [getattr(config, k) for k in MASK_KEYWORDS if hasattr(config, k)]
        asks = any(bool(v) for v in config_masks) if config_masks else None
    baseline = {**pipeline_kwargs, **dict.fromkeys(mask_keys, False)}
    return EstimatorOptions(pipeline_kwargs, baseline, source, asks)


# -- one round on one clip ---------------------------------------------------------------------------------
@dataclass
class RoundTimes:
    """Per measured frame, ms: pose alone, the full pipeline end to end, and the pipeline's own stages."""

    pose_ms: list[float] = field(default_factory=list)
    full_ms: list[float] = field(default_factory=list)
    stages_ms: list[dict[str, float]] = field(default_factory=list)
    pose_found: int = 0  # measured frames in which pose alone found someone
    pipeline_found: int = 0  # ... and in which the pipeline found a walker


def run_round(
    clip: ClipFrames, baseline_kwargs: dict[str, Any], warmup: int, interleave: Interleave, pose_first: bool
) -> RoundTimes:
    """One pass over the clip's frames through a fresh estimator and a fresh pipeline (model loads not
    timed). `pose_first`: which side opens (per frame in ABBA order, or for the whole block)."""
    estimator = PoseEstimator(**baseline_kwargs)
    pipeline = Pipeline(PipelineConfig())
    out = RoundTimes()
    pose_results: list[tuple[float, bool]] = []
    full_results: list[tuple[float, dict[str, float], bool]] = []

    def pose_alone(i: int) -> None:
        rgb, ts = clip.rgbs[clip.order[i]], clip.timestamp_ms(i)
        t0 = time.perf_counter()
        people = estimator.detect(rgb, ts)
        pose_results.append(((time.perf_counter() - t0) * 1000.0, bool(people)))

    def full(i: int) -> None:
        jpeg, ts = clip.jpegs[clip.order[i]], clip.timestamp_ms(i)
        t0 = time.perf_counter()
        analysis = pipeline.process_jpeg(jpeg, ts, clip.pitch(i))
        elapsed = (time.perf_counter() - t0) * 1000.0
        full_results.append((elapsed, dict(analysis.timings_ms), analysis.walker is not None))

    gc.collect()
    try:
        if interleave == "frame":
            for i in range(len(clip.order)):
                # ABBA: the round's opener goes first on frames 0 and 3 of every four.
                first, second = (pose_alone, full) if (i % 4 in (0, 3)) == pose_first else (full, pose_alone)
                first(i)
                second(i)
        else:
            for side in (pose_alone, full) if pose_first else (full, pose_alone):
                for i in range(len(clip.order)):
                    side(i)
    finally:
        estimator.close()
        pipeline.close()
    for (p_ms, p_found), (f_ms, stages, f_found) in itertools.islice(
        zip(pose_results, full_results, strict=True), warmup, None
    ):
        out.pose_ms.append(p_ms)
        out.full_ms.append(f_ms)
        out.stages_ms.append(stages)
        out.pose_found += p_found
        out.pipeline_found += f_found
    return out


# -- figures -----------------------------------------------------------------------------------------------
def summary(rounds: Sequence[RoundTimes]) -> dict[str, Any]:
    pose = [x for r in rounds for x in r.pose_ms]
    full = [x for r in rounds for x in r.full_ms]
    stages = [s for r in rounds for s in r.stages_ms]
    keys = list(dict.fromkeys(k for s in stages for k in s))  # in the order the pipeline reports them
    stage_medians = {
        k: {"median_ms": pct([s[k] for s in stages if k in s], 50), "frames": sum(k in s for s in stages)}
        for k in keys
    }
    non_pose = [f - s["pose"] for f, s in zip(full, stages, strict=True) if "pose" in s]
    n = len(pose)
    pose_med, full_med = pct(pose, 50), pct(full, 50)
    ratio_med = ratio(full_med, pose_med)
    return {
        "frames": n,
        "pose_alone_ms": {"median": pose_med, "p95": pct(pose, 95)},
        "full_pipeline_ms": {"median": full_med, "p95": pct(full, 95)},
        "ratio_of_medians": ratio_med,
        "ratio_of_p95s": ratio(pct(full, 95), pct(pose, 95)),
        "per_frame_ratio_median": pct([f / p for f, p in zip(full, pose, strict=True) if p > 0], 50),
        "ratio_of_medians_by_round": [ratio(pct(r.full_ms, 50), pct(r.pose_ms, 50)) for r in rounds],
        "goal_pass": None if ratio_med is None else ratio_med <= GOAL_RATIO_OF_MEDIANS,
        "full_minus_its_pose_ms": {"median": pct(non_pose, 50), "p95": pct(non_pose, 95)},
        "stages_median_ms": stage_medians,
        "found_share": {
            "pose_alone": sum(r.pose_found for r in rounds) / n if n else None,
            "pipeline_walker": sum(r.pipeline_found for r in rounds) / n if n else None,
        },
    }


def verdict(s: dict[str, Any]) -> str:
    return {True: "PASS", False: "FAIL", None: "-"}[s["goal_pass"]]


def print_report(result: dict[str, Any]) -> None:
    cfg = result["config"]
    opts = result["estimator"]
    rows = [*result["clips"], {"label": "all clips", **result["overall"]}]
    out = [
        "",
        "# Partner pipeline cost beside pose inference alone",
        "",
        f"{cfg['frames']} measured frames per clip per round (+{cfg['warmup']} warm-up), {cfg['rounds']} "
        f"rounds, interleave: {cfg['interleave']}; JPEG q{cfg['jpeg_quality']} as the phone page sends",
        f"pose alone: PoseEstimator({', '.join(f'{k}={v!r}' for k, v in opts['baseline'].items())})",
        f"pipeline's estimator: {', '.join(f'{k}={v!r}' for k, v in opts['pipeline'].items())} "
        f"({opts['source']}; asks for masks: {opts['pipeline_asks_masks']})",
        f"load average (1, 5, 15 min): start {result['loadavg_start']}, end {result['loadavg_end']}",
        "",
        "| clip | frames | pose alone median / p95 ms | full pipeline median / p95 ms | ratio of medians "
        "| ratio of p95s | ratio by round | goal <= 1.35x |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p, f = r["pose_alone_ms"], r["full_pipeline_ms"]
        by_round = ", ".join(fmt(x, 2) for x in r["ratio_of_medians_by_round"])
        out.append(
            f"| {r['label']} | {r['frames']} | {fmt(p['median'], 2)} / {fmt(p['p95'], 2)} | "
            f"{fmt(f['median'], 2)} / {fmt(f['p95'], 2)} | **{fmt(r['ratio_of_medians'], 3)}x** | "
            f"{fmt(r['ratio_of_p95s'], 3)}x | {by_round or '-'} | {verdict(r)} |"
        )
    keys = list(dict.fromkeys(k for r in rows for k in r["stages_median_ms"]))
    out += [
        "",
        "Pipeline stages (its own timings_ms), median ms; (n) where a stage ran on fewer frames than all:",
        "",
        "| stage | " + " | ".join(r["label"] for r in rows) + " |",
        "|---|" + "---|" * len(rows),
    ]
    for k in keys:
        cells = []
        for r in rows:
            st = r["stages_median_ms"].get(k)
            if st is None:
                cells.append("-")
            else:
                partial = f" ({st['frames']})" if st["frames"] < r["frames"] else ""
                cells.append(fmt(st["median_ms"], 2) + partial)
        out.append(f"| {k} | " + " | ".join(cells) + " |")
    out.append(
        "| end to end minus its pose stage | "
        + " | ".join(fmt(r["full_minus_its_pose_ms"]["median"], 2) for r in rows)
        + " |"
    )
    out += [
        "",
        "Frames with someone found: "
        + "; ".join(
            f"{r['label']}: pose alone {fmt(100 * r['found_share']['pose_alone'], 0)}%, pipeline walker "
            f"{fmt(100 * r['found_share']['pipeline_walker'], 0)}%"
            for r in rows
            if r["frames"]
        ),
        "",
        f"Goal: full pipeline <= {GOAL_RATIO_OF_MEDIANS}x pose alone, median per frame: "
        f"{verdict(result['overall'])} ({fmt(result['overall']['ratio_of_medians'], 3)}x over all clips).",
    ]
    print("\n".join(out), flush=True)


# -- main --------------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="partner_cost.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("clips", nargs="*", type=Path, help="more clips, e.g. /tmp/scenes/NAME/clip.mp4")
    p.add_argument("--real-clip", type=Path, default=DEFAULT_REAL_CLIP, help="default %(default)s")
    p.add_argument("--no-real-clip", action="store_true", help="measure only the clips given")
    p.add_argument("--frames", type=int, default=300, help="measured frames per clip per round (default 300)")
    p.add_argument("--rounds", type=int, default=3, help="rounds, fresh models each (default 3)")
    p.add_argument("--warmup", type=int, default=10, help="uncounted frames opening a round (default 10)")
    p.add_argument(
        "--interleave",
        choices=("frame", "block"),
        default="frame",
        help="frame: ABBA frame by frame; block: whole clip per side, order alternating by round "
        "(default frame)",
    )
    p.add_argument("--json", type=Path, help="also write the figures as JSON to this path")
    args = p.parse_args(argv)
    if args.frames < 1 or args.rounds < 1 or args.warmup < 0:
        p.error("--frames and --rounds must be >= 1, --warmup >= 0")
    if args.no_real_clip and not args.clips:
        p.error("--no-real-clip needs at least one clip")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    paths = [*([] if args.no_real_clip else [args.real_clip]), *args.clips]
    for path in paths:
        if not path.is_file():
            raise SystemExit(f"partner_cost: clip {path} is absent (the real clips live in ../shared/clips)")
    start_load = loadavg()
    n = args.warmup + args.frames
    clips = []
    for path in paths:
        print(f"loading {path} ...", flush=True)
        clips.append(load_clip(path, n))
    opts = estimator_options(PipelineConfig())
    per_clip: list[list[RoundTimes]] = [[] for _ in clips]
    for rnd in range(args.rounds):
        for c, rounds in zip(clips, per_clip, strict=True):
            print(f"round {rnd + 1}/{args.rounds}: {c.label} ({n} frames, each side) ...", flush=True)
            # The opener alternates by round, so neither side always runs first.
            rounds.append(run_round(c, opts.baseline, args.warmup, args.interleave, rnd % 2 == 0))
    all_rounds = [r for rounds in per_clip for r in rounds]
    result: dict[str, Any] = {
        "config": {
            "clips": [c.describe() for c in clips],
            "frames": args.frames,
            "warmup": args.warmup,
            "rounds": args.rounds,
            "interleave": args.interleave,
            "jpeg_quality": PHONE_JPEG_QUALITY,
            "pipeline_config": repr(PipelineConfig()),
        },
        "estimator": {
            "pipeline": {k: str(v) if isinstance(v, Path) else v for k, v in opts.pipeline.items()},
            "baseline": {k: str(v) if isinstance(v, Path) else v for k, v in opts.baseline.items()},
            "source": opts.source,
            "pipeline_asks_masks": opts.pipeline_asks_masks,
        },
        "goal": {"ratio_of_medians_max": GOAL_RATIO_OF_MEDIANS},
        "loadavg_start": start_load,
        "clips": [{"label": c.label, **summary(rounds)} for c, rounds in zip(clips, per_clip, strict=True)],
        "overall": summary(all_rounds),
        "loadavg_end": loadavg(),
    }
    # The overall row's per-round ratios: one per round, over all clips of that round.
    result["overall"]["ratio_of_medians_by_round"] = [
        summary([rounds[rnd] for rounds in per_clip])["ratio_of_medians"] for rnd in range(args.rounds)
    ]
    print_report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
