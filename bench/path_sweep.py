"""The partner-mode evaluation, fast and swept: MediaPipe once per scene, the rest of it many times.

    .venv/bin/python bench/path_sweep.py SCENES [--cache DIR] [--heights 1.3 1.4 truth] [--gaits 0 0.35]
        [--sensor] [--told-height] [--flat-veto]

`rearguard evaluate` runs the whole pipeline on every rendered scene, pose included. Changes to the ground,
obstacle or alert code do not change what MediaPipe sees, so this script runs MediaPipe once per scene
(`--cache DIR` keeps its poses and segmentation masks, float32 as the model gives them), then replays the
rest of the pipeline, the alert policy and the scoring of `server.evaluate` for each setting:

- `--heights`: the camera-height prior (GroundConfig.camera_height_m). The suite's phones are at 1.2-1.5 m;
  how much the figures move with the prior says how much a single figure can be trusted. `truth` gives
  each scene its own phone's height (from truth.json): what a perfect height estimate would score.
- `--gaits`: a stepping gait simulated on the poses (step length in m, 0 for none). The rendered walker
  glides; a real one stands on a planted foot that stays put while the body moves on, then hands over to the
  other foot a step away. The lower toe's landmark is moved to that planted foot's row, computed with the
  scene's own camera from truth.json, and the other toe is lifted; nothing else changes (pixels, masks).
- `--sensor`: with the phone's tilt readings (the scene's own truth through vision/sensors.py's model of a
  phone's errors, as in the scene's clip.sensors.json): the camera's height is measured, not the prior.
- `--told-height`: the walker's own height from truth.json, as the walker page tells it (else 1.70 m).
- `--flat-veto`: with PathConfig.flat_veto on (bands across the path that read flat by plane parallax are
  not warned; off in the product, see docs/obstacles.md).

With the default prior and no gait the figures are those of `rearguard evaluate` on the same scenes, to the
digit (checked when this script was written). Prints one row per setting: hazards warned at least 2 s
ahead, false alarms a minute on clear paths, side right, median distance error, coverage error medians by
the partner's offset, and the walker's measured ground speed against the truth (median ratio). Figures
only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import multiprocessing
import os
import pickle
import statistics
import sys
import zlib
from pathlib import Path
from typing import Any

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from server.clips import FrameClock, frames_as_sent, probe  # noqa: E402
from server.config import Settings  # noqa: E402
from server.evaluate import scene_dirs, score_scene, summarise  # noqa: E402
from server.replay import run_frames  # noqa: E402
from vision.alerts import AlertPolicy  # noqa: E402
from vision.ground import GroundConfig  # noqa: E402
from vision.obstacles import PathConfig  # noqa: E402
from vision.pipeline import Pipeline, decode_jpeg  # noqa: E402
from vision.scenario import stepping_pose  # noqa: E402
from vision.sensors import load_pitch, scene_sensor_log, sensors_path_for  # noqa: E402
from vision.types import Analysis, Pose  # noqa: E402

Masks = list[tuple[bytes, tuple[int, ...]] | None]
Cached = dict[int, tuple[list[Pose], Masks]]


class CachedEstimator:
    """Stands in for PoseEstimator with what MediaPipe said about each frame of one scene."""

    def __init__(self, items: Cached) -> None:
        self.items = items

    def detect_with_masks(self, rgb: Any, timestamp_ms: int) -> tuple[list[Pose], list[Any]]:
        poses, masks = self.items[timestamp_ms]
        return poses, [
            None if m is None else np.frombuffer(zlib.decompress(m[0]), np.float32).reshape(m[1]).copy()
            for m in masks
        ]

    def close(self) -> None:
        pass


def build_cache(job: tuple[Path, Path]) -> str:
    """Pose and masks of every frame of one scene, as the pipeline would see them, into CACHE/SCENE.pkl."""
    scene, cache = job
    out = cache / f"{scene.name}.pkl"
    if out.exists():
        return f"{scene.name}: cached"
    from vision.pose import PoseEstimator

    info = probe(scene / "clip.mp4", None)
    estimator = PoseEstimator(segmentation=True)
    items: Cached = {}
    jpegs: list[bytes] = []
    try:
        # Timed by index and rate, as `run_scene` replays them (rendered scenes are evenly spaced: their
        # containers' timestamps, which a replay uses, are these times)
        clock = FrameClock(info.fps, timestamps=False)
        for _, jpeg, _t in frames_as_sent(info):
            ts = round(clock(None))
            rgb = cv2.cvtColor(decode_jpeg(jpeg), cv2.COLOR_BGR2RGB)
            poses, masks = estimator.detect_with_masks(rgb, ts)
            items[ts] = (
                poses,
                [
                    None if m is None else (zlib.compress(m.astype(np.float32).tobytes(), 1), m.shape)
                    for m in masks
                ],
            )
            jpegs.append(jpeg)
    finally:
        estimator.close()
    tmp = out.with_suffix(".partial")
    tmp.write_bytes(pickle.dumps((info.fps, items, jpegs)))
    tmp.replace(out)
    return f"{scene.name}: {len(jpegs)} frames"


def stepping(items: Cached, truth: dict[str, Any], fps: float, step_m: float) -> Cached:
    """The poses as if the walker stepped (vision.scenario.stepping_pose, with the scene's camera)."""
    k = truth["camera"]["intrinsics"]
    speed = float(truth["spec"]["walker"]["speed_mps"])
    out: Cached = {}
    for i, (ts, (poses, masks)) in enumerate(sorted(items.items())):
        if not poses or i >= len(truth["per_frame"]) or speed <= 0:
            out[ts] = (poses, masks)
            continue
        frame = truth["per_frame"][i]
        stepped = stepping_pose(
            poses[0],
            frame["camera"],
            k["fy"],
            k["cy"],
            truth["resolution_wh"][1],
            frame["walker_heel_z_m"],
            speed * i / fps,
            step_m,
        )
        out[ts] = ([stepped, *poses[1:]], masks)
    return out


def run_scene(
    job: tuple[Path, Path, float, float, bool, bool, bool],
) -> tuple[str, dict[str, Any], dict[str, Any], float | None]:
    """(scene, timeline, frame columns, measured / true walker speed) for one scene and setting."""
    scene, cache, camera_height_m, step_m, flat_veto, sensor, told = job
    fps, items, jpegs = pickle.loads((cache / f"{scene.name}.pkl").read_bytes())
    truth = json.loads((scene / "truth.json").read_text())
    if step_m > 0:
        items = stepping(items, truth, fps, step_m)
    settings = Settings()
    config = dataclasses.replace(
        settings.pipeline_config("partner"),
        ground=GroundConfig(
            camera_height_m=camera_height_m,
            **({"walker_height_m": float(truth["walker"]["height_m"])} if told else {}),
        ),
        path=PathConfig(flat_veto=flat_veto),
    )
    pipeline = Pipeline(config, estimator=CachedEstimator(items))  # type: ignore[arg-type]
    speeds: list[float] = []

    def walker_speed(a: Analysis) -> None:
        if a.path.get("walker_speed_mps") is not None:
            speeds.append(float(a.path["walker_speed_mps"]))

    # The replay's own loop; the cache holds the JPEGs as sent, not decoded frames (no video drawn here).
    log = sensors_path_for(scene / "clip.mp4")  # scenes rendered before logs get one made alike
    pitch = (load_pitch(log) if log.is_file() else scene_sensor_log(truth)["pitch_deg"]) if sensor else None
    clock = FrameClock(fps, timestamps=False)  # the times the cache was made with
    events, cols, _ = run_frames(
        pipeline,
        AlertPolicy(settings.alert_config()),
        ((None, j, clock(None)) for j in jpegs),
        on_frame=walker_speed,
        pitch_deg=pitch,
    )
    true_speed = float(truth["spec"]["walker"]["speed_mps"])
    ratio = statistics.median(speeds) / true_speed if speeds and true_speed > 0 else None
    return scene.name, {"events": events}, cols.as_dict(), ratio


def own_height(truth: dict[str, Any]) -> float:
    """The scene's own phone's height, m."""
    return float(truth["spec"]["camera"]["height_m"])


def height_arg(text: str) -> float | None:
    """A camera-height prior in metres, or `truth` (None): each scene's own."""
    if text == "truth":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected metres or 'truth', got {text!r}") from None
    if not 0.5 <= value <= 2.5:
        raise argparse.ArgumentTypeError(f"expected 0.5-2.5 m, got {value:g}")
    return value


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenes", help="rendered scenes (`rearguard scenario scenarios --out DIR`)")
    ap.add_argument("--cache", default="/tmp/rearguard-path-sweep", help="where MediaPipe's output is kept")
    ap.add_argument(
        "--heights", type=height_arg, nargs="+", default=[1.4], help="camera-height priors, m, or 'truth'"
    )
    ap.add_argument(
        "--gaits", type=float, nargs="+", default=[0.0], help="simulated step lengths, m (0: none)"
    )
    ap.add_argument(
        "--flat-veto", action="store_true", help="bands that read flat by parallax are not warned"
    )
    ap.add_argument(
        "--sensor", action="store_true", help="with the phone's tilt readings (simulated from the truth)"
    )
    ap.add_argument(
        "--told-height", action="store_true", help="the walker's own height, as the walker page tells it"
    )
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args(argv)
    scenes = scene_dirs([args.scenes])
    if not scenes:
        print(f"path_sweep: no rendered scene in {args.scenes}", file=sys.stderr)
        return 2
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    spawn = multiprocessing.get_context("spawn")  # MediaPipe's threads and fork do not mix
    truths = {s.name: json.loads((s / "truth.json").read_text()) for s in scenes}
    rows = []
    with concurrent.futures.ProcessPoolExecutor(max(1, args.jobs), mp_context=spawn) as pool:
        for line in pool.map(build_cache, [(s, cache) for s in scenes]):
            print(line, file=sys.stderr)
        print(
            "| camera-height prior m | gait step m | warned >= 2 s | false alarms / min | side right "
            "| distance error | coverage error 0 / ±0.5 / ±1 m | walker speed / truth |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for height in args.heights:
            for gait in args.gaits:
                jobs = [
                    (
                        s,
                        cache,
                        own_height(truths[s.name]) if height is None else height,
                        gait,
                        args.flat_veto,
                        args.sensor,
                        args.told_height,
                    )
                    for s in scenes
                ]
                done = list(pool.map(run_scene, jobs))
                scores = [score_scene(truths[name], tl, cols) for name, tl, cols, _ in done]
                result = summarise(scores)
                overall = result["overall"]
                cov = {g: c["median"] for g, c in result["coverage_by_offset"].items()}
                speed = [r for *_, r in done if r is not None]
                row = {
                    "camera_height_m": "truth" if height is None else height,
                    "gait_step_m": gait,
                    "sensor": args.sensor,
                    "flat_veto": args.flat_veto,
                    "told_height": args.told_height,
                    "warned_2s": overall["warned_2s"],
                    "false_alarms_per_min": result["false_alarms_per_min"],
                    "side_right": overall["side_accuracy"],
                    "distance_error": overall["distance_error"],
                    "coverage_median": cov,
                    "speed_ratio_median": statistics.median(speed) if speed else None,
                    "scenes": [  # what decided the figures, to compare two settings scene by scene
                        {
                            k: sc[k]
                            for k in ("name", "hazards", "warnings", "control", "stray_warnings", "coverage")
                        }
                        for sc in scores
                    ],
                }
                rows.append(row)
                fa = result["false_alarms_per_min"]
                print(
                    f"| {row['camera_height_m']} | {gait:g} | {pct(overall['warned_2s'])} | "
                    f"{'-' if fa is None else f'{fa:.2f}'} | {pct(overall['side_accuracy'])} | "
                    f"{pct(overall['distance_error'])} | "
                    + " / ".join(
                        "-" if cov.get(g) is None else f"{100 * cov[g]:.0f} pp"
                        for g in ("0 m", "±0.5 m", "±1 m")
                    )
                    + f" | {'-' if not speed else f'{statistics.median(speed):.2f}'} |",
                    flush=True,
                )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
