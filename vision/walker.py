"""Which of the people in view is the walker: the one the partner is filming."""

from __future__ import annotations

import math
from collections.abc import Sequence

from vision.types import L_SHOULDER, NOSE, R_SHOULDER, Pose

# A person must show this many landmarks to count as the walker; fewer is a partial body at the edge.
MIN_VISIBLE_LANDMARKS = 8
# ...and stand at least this tall in the frame. The partner films from 1.5-4 m: a 1.6 m walker then
# spans over a quarter of a portrait frame and over 40% of a landscape one. Smaller "people" are far
# passers-by or false detections (replay found one on a table's foot in people_step_up_one_by_one).
MIN_HEIGHT = 0.15


def walker_score(pose: Pose, previous: Pose | None = None) -> float:
    """Higher for a person who is large, central, facing the camera, and where the walker was last frame.

    Size is the square root of the box area (a length, so a person twice as tall scores twice as
    high); centrality falls off linearly to half at the frame edge; a frontal body (left shoulder on
    the image's right, face visible) doubles the score over a back view.
    """
    if int(pose.visible().sum()) < MIN_VISIBLE_LANDMARKS:
        return 0.0
    x0, y0, x1, y1 = pose.bbox_xyxy()
    if y1 - y0 < MIN_HEIGHT:
        return 0.0
    size = math.sqrt(max(x1 - x0, 1e-6) * max(y1 - y0, 1e-6))
    centrality = 1.0 - abs((x0 + x1) / 2 - 0.5)
    shoulder_dx = float(pose.xy[L_SHOULDER, 0] - pose.xy[R_SHOULDER, 0])
    frontal = 1.0 + 0.5 * (shoulder_dx > 0) + 0.5 * float(pose.visibility[NOSE] > 0.5)
    score = size * centrality * frontal
    if previous is not None:
        px, py = previous.hip_centre_xy()
        cx, cy = pose.hip_centre_xy()
        # Continuity: the walker does not jump across the frame between two frames.
        score *= 1.0 + max(0.0, 1.0 - 4.0 * math.hypot(cx - px, cy - py))
    return score


def same_person(pose: Pose, previous: Pose) -> bool:
    """Could `pose` be `previous` a moment later? The walker and the partner move together, so the walker
    hardly moves across the image; a hip centre that jumped by more than 3/4 of the walker's own box width
    is somebody else (people side by side stand at least a body width apart)."""
    x0, _, x1, _ = previous.bbox_xyxy()
    px, py = previous.hip_centre_xy()
    cx, cy = pose.hip_centre_xy()
    return math.hypot(cx - px, cy - py) <= 0.75 * max(x1 - x0, 0.02)


def select_walker(people: Sequence[Pose], previous: Pose | None = None) -> int | None:
    """Index of the walker in `people`, or None when nobody qualifies.

    With `previous` (the walker as last seen, recently), only someone who could be the same person
    qualifies: MediaPipe often returns one person per frame, and not always the same one, so the
    largest person in view is not necessarily the walker. Better "walker not seen this frame" than a
    passer-by taken for the walker."""
    best, best_score = None, 0.0
    for i, pose in enumerate(people):
        if previous is not None and not same_person(pose, previous):
            continue
        s = walker_score(pose, previous)
        if s > best_score:
            best, best_score = i, s
    return best
