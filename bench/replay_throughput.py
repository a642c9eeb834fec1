"""Replay throughput beside bare pose inference on the same frames, and how several clips scale on the cores.

    .venv/bin/python bench/replay_throughput.py [--clip NAME] [--repeats 3] [--json PATH]

(a) bare pose: loading the model and `PoseEstimator.detect` alone on frames already decoded, upright and at
the analysis size;
(b) replay: `replay_clip` end to end (decode, JPEG round trip, pipeline, policy, annotated H.264 video
with audio, timeline, report) on the same clip; (c) the same replay without the video.
Runs alternate a, b, c `--repeats` times; medians are printed. Then N copies of the clip are replayed
with one job and with one job per core, for the scaling figure. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from server.clips import frames, probe  # noqa: E402
from server.replay import ReplayOptions, replay_clip  # noqa: E402
from vision.pose import PoseEstimator  # noqa: E402


def bare_pose_fps(clip: Path) -> tuple[float, int]:
    info = probe(clip)
    rgb = [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in frames(info)]
    start = time.perf_counter()  # the model load counts on both sides: replay loads it too
    est = PoseEstimator()
    for i, f in enumerate(rgb):
        est.detect(f, round(i * 1000 / info.fps))
    wall = time.perf_counter() - start
    est.close()
    return len(rgb) / wall, len(rgb)


def replay_fps(clip: Path, video: bool, n: int) -> float:
    out = Path(tempfile.mkdtemp()) / "out"
    start = time.perf_counter()
    replay_clip(clip, out, ReplayOptions(video=video, report=video))
    wall = time.perf_counter() - start
    shutil.rmtree(out.parent)
    return n / wall


def scaling(clip: Path, copies: int) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp())
    (tmp / "clips").mkdir()
    for i in range(copies):
        shutil.copy(clip, tmp / "clips" / f"c{i}{clip.suffix}")
    walls = {}
    for jobs in (1, os.cpu_count() or 1):
        start = time.perf_counter()
        cmd = [sys.executable, "-m", "server", "replay", str(tmp / "clips"), "--out", str(tmp / f"o{jobs}"),
               "--no-video", "--no-report", "--jobs", str(jobs)]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
        walls[f"jobs={jobs}"] = time.perf_counter() - start
    shutil.rmtree(tmp)
    return walls


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", default=str(ROOT.parent / "shared" / "clips" / "treadmill_phone_side.mp4"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--copies", type=int, default=4, help="clips replayed at once for the scaling figure")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    clip = Path(args.clip)
    if not clip.is_file():
        print(f"clip {clip} is absent (../shared/clips beside the checkout)", file=sys.stderr)
        return 1
    bare, video, novideo = [], [], []
    n = 0
    for _ in range(args.repeats):
        fps, n = bare_pose_fps(clip)
        bare.append(fps)
        video.append(replay_fps(clip, True, n))
        novideo.append(replay_fps(clip, False, n))
    b, v, nv = statistics.median(bare), statistics.median(video), statistics.median(novideo)
    walls = scaling(clip, args.copies)
    cores = os.cpu_count() or 1
    print(f"# Replay throughput: {clip.name}, {n} frames, medians of {args.repeats} alternated runs\n")
    print("| run | frames/s | x bare pose |\n|---|---|---|")
    print(f"| (a) bare pose inference | {b:.1f} | 1.00 |")
    print(f"| (b) replay with annotated video and report | {v:.1f} | {v / b:.2f} |")
    print(f"| (c) replay, timeline only | {nv:.1f} | {nv / b:.2f} |")
    print(f"\ngoal: (b) >= 0.8x (a)\n\n{args.copies} clips, timeline only:")
    one, many = walls["jobs=1"], walls[f"jobs={cores}"]
    print(f"| jobs | wall s |\n|---|---|\n| 1 | {one:.1f} |\n| {cores} | {many:.1f} |")
    print(f"\nspeed-up with {cores} jobs: {one / many:.2f}x")
    if args.json:
        figures = {"bare_fps": bare, "replay_fps": video, "replay_novideo_fps": novideo, "frames": n}
        Path(args.json).write_text(json.dumps(figures | {"scaling_wall_s": walls}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
