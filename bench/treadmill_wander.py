"""Does the real runner wander sideways, or does the pose? Two independent measures of his distance from the
phone, side by side, on ../shared/clips/treadmill_phone_side.mp4 (side view: sideways on the belt is depth).

    .venv/bin/python bench/treadmill_wander.py [--clip PATH]

- Landmarks: the body's size in the image, torso + leg of the better seen side (what the treadmill monitor
  uses in side view).
- Silhouette: the height of MediaPipe's segmentation mask, from the soles to the crown, in pixel rows. It is
  a different output of the model (a per-pixel mask, not regressed points) and its lowest row is the sole's
  own edge on the belt.
- Ground line: the lowest foot landmark's distance below the horizon, D / D0 = g0 / g, through the phone's
  tilt as the monitor uses it (`Calibration.below_horizon`, calibrated by `TreadmillMonitor` on the clip's
  first 3 s): the tilt read from the room's vertical edges (vision/tilt.py), and none (a level phone).

Each gives the distance from the phone relative to its median over the first 3 s (the calibration), as a
pinhole camera sees it: D / D0 = size0 / size. Printed per cue: the frame-to-frame scatter (about a 1 s
running mean), the 1 s running mean's spread and range, in body heights (bh) at the assumed focal length (0.75
of the long side), and each running mean's correlation with the size's. If the pose alone wandered, the
silhouette would not follow it. And the ground line's 1 s spread over the size's (its scale: 1 when the
pinhole model and the tilt are right) says how well the tilt serves the ground line. Figures only; nothing
is asserted.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vision.pose import PoseEstimator  # noqa: E402
from vision.tilt import elevation_in_frame  # noqa: E402
from vision.treadmill import FOOT_POINTS, TreadmillConfig, TreadmillMonitor, body_size_px  # noqa: E402
from vision.types import Pose  # noqa: E402

CLIP = ROOT.parent / "shared" / "clips" / "treadmill_phone_side.mp4"
CONFIG = TreadmillConfig()  # the monitor's defaults: its focal length and calibration time
FOCAL_LONG_SIDE, CALIBRATION_S = CONFIG.focal_long_side, CONFIG.calibration_s


def measure(
    clip: Path,
) -> tuple[np.ndarray, np.ndarray, list[Pose | None], list[float], float, tuple[int, int]]:
    """Per frame: landmark size px, silhouette height px, the pose, the tilt read from the frame (NaN: no
    reading); the clip's fps and frame size."""
    cap = cv2.VideoCapture(str(clip))
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 30.0)
    est = PoseEstimator(segmentation=True)
    sizes, heights, poses, tilts, wh, i = [], [], [], [], (0, 0), 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        h, w = bgr.shape[:2]
        wh = (w, h)
        people, masks = est.detect_with_masks(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), round(i * 1000 / fps))
        poses.append(people[0] if people else None)
        reading = elevation_in_frame(bgr, poses[-1], FOCAL_LONG_SIDE) if i < CALIBRATION_S * fps else None
        tilts.append(math.nan if reading is None else reading)
        i += 1
        if not people or masks[0] is None:
            sizes.append(np.nan)
            heights.append(np.nan)
            continue
        sizes.append(body_size_px(people[0], wh, "side", CONFIG))
        rows = np.nonzero((masks[0] > 0.5).sum(axis=1) >= 3)[0]
        heights.append(float(rows[-1] - rows[0]) if len(rows) else np.nan)
    cap.release()
    est.close()
    return np.array(sizes), np.array(heights), poses, tilts, fps, wh


def ground_line(
    poses: list[Pose | None], fps: float, wh: tuple[int, int], tilt: float | None
) -> tuple[np.ndarray, float]:
    """Per frame, the feet's ground-line depth (bh, + away; NaN without feet), with the phone's tilt `tilt`
    (degrees up; None: level), calibrated by the monitor as a live session would be; and the calibration's
    distance from the phone (bh)."""
    monitor = TreadmillMonitor(CONFIG)
    for i, pose in enumerate(poses):
        monitor.update(pose, round(i * 1000 / fps), wh, None, tilt)
    cal = monitor.calibration
    if cal is None:
        raise SystemExit("the monitor did not calibrate on this clip")
    down = -np.array(cal.up_xy)
    g0 = cal.below_horizon(cal.ground_px)
    out = []
    for pose in poses:
        g = None
        if pose is not None and g0:
            g = cal.below_horizon(float((pose.xy[list(FOOT_POINTS)] * wh @ down).max()))
        out.append(cal.camera_distance_bh * (g0 / g - 1.0) if g0 and g and g > 0 else math.nan)
    return np.array(out), cal.camera_distance_bh


def running_mean(x: np.ndarray, n: int) -> np.ndarray:
    return np.convolve(x, np.ones(n) / n, mode="valid")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, default=CLIP)
    args = ap.parse_args()
    if not args.clip.is_file():
        print(f"real footage {args.clip} absent: nothing to measure", file=sys.stderr)
        return 2
    sizes, heights, poses, tilts, fps, wh = measure(args.clip)
    read = [t for t in tilts if math.isfinite(t)]
    tilt = float(np.median(read)) if read else None
    level, _ = ground_line(poses, fps, wh, None)
    tilted, distance_bh = ground_line(poses, fps, wh, tilt)  # the phone's distance: the monitor's, for all
    good = np.isfinite(sizes) & np.isfinite(heights) & np.isfinite(level) & np.isfinite(tilted)
    cal = slice(0, int(CALIBRATION_S * fps))
    n = max(3, round(fps))  # a 1 s running mean
    cues = {
        "landmarks: torso + leg": distance_bh * (float(np.nanmedian(sizes[cal])) / sizes - 1.0),
        "silhouette: sole to crown": distance_bh * (float(np.nanmedian(heights[cal])) / heights - 1.0),
        "ground line, level phone": level,
        f"ground line, tilt {tilt or 0:.1f} deg from the image": tilted,
    }
    print(
        f"{int(good.sum())} frames at {fps:.0f} fps; "
        f"the phone {distance_bh:.2f} bh away (at the assumed focal length)"
    )
    print(
        "| cue | frame-to-frame sd bh | 1 s mean: sd bh | 1 s mean: range bh | against the size: r, scale |"
    )
    print("|---|---|---|---|---|")
    means = {}
    for name, depth in cues.items():  # + away from the phone
        mean = running_mean(depth[good], n)
        scatter = depth[good][n // 2 : n // 2 + len(mean)] - mean
        means[name] = mean
        size = means["landmarks: torso + leg"]
        against = f"{np.corrcoef(size, mean)[0, 1]:.2f}, {mean.std() / size.std():.2f}"
        print(
            f"| {name} | {scatter.std():.3f} | {mean.std():.3f} | {mean.min():+.3f} to {mean.max():+.3f} "
            f"| {against} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
