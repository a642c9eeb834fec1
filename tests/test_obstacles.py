"""What lies behind the walker (vision/obstacles.py), through the real pipeline (MediaPipe pose and body
mask) on generated scenes with exact truth: coverage, walking direction and speed, obstacles tracked and
warned with a time to contact, silence for a clear path and for a walker who stands still or faces away,
and the "I cannot see behind you" notice."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from server.clips import phone_jpeg
from tests.conftest import clip_path, read_frames
from vision.ground import Ground, GroundConfig, GroundTracker
from vision.obstacles import PathConfig, PathWatcher, Track, _Blob, _median
from vision.parallax import ParallaxConfig
from vision.pipeline import Pipeline, PipelineConfig
from vision.pose import PoseEstimator
from vision.scenario import Renderer, ScenarioSpec, Scene, Truth, build_truth, parse_spec
from vision.sensors import TiltModel, simulated_pitch
from vision.types import Analysis, Hazard

WALKER_CLIP = "squats_facing_camera.mp4"
NOT_OBSTACLES = frozenset({"path_hidden", "walker_lost"})  # a notice and a blindness cue
SUITE = Path(__file__).resolve().parents[1] / "scenarios"


def clips_dir() -> Path:
    return clip_path(WALKER_CLIP).parent  # skips the test when ../shared/clips is absent


def obstacle_hazards(a: Analysis) -> list[Hazard]:
    return [h for h in a.hazards if h.kind not in NOT_OBSTACLES]


@dataclass
class Rendered:
    """A generated scene rendered frame by frame, with what truth.json would say about each frame."""

    spec: ScenarioSpec
    truth: Truth
    bgr: list[npt.NDArray[np.uint8]]
    coverage: list[float]
    position_m: list[npt.NDArray[np.float64]]  # the camera's, per frame
    heel_z: list[float]
    pitch_deg: list[float]  # the camera's true elevation, per frame (a phone's tilt sensor reads it)

    def t(self, k: int) -> float:
        return k / self.spec.fps

    def heading_deg(self, k: int, mirrored: bool = False) -> float:
        """The walking direction (world +Z) seen from the camera, relative to its line of sight to the heels,
        positive towards the camera's right; a mirrored frame turns it the other way."""
        pos = self.position_m[k]
        h = math.degrees(math.atan2(0.0 - pos[0], self.heel_z[k] - pos[2]))
        return h if mirrored else -h


def suite_spec(name: str) -> dict[str, Any]:
    """A spec of the suite in `scenarios/`, as its JSON."""
    data: dict[str, Any] = json.loads((SUITE / f"{name}.json").read_text())
    return data


def render_scene(fields: dict[str, Any]) -> Rendered:
    spec = parse_spec(fields)
    renderer = Renderer(spec, clips_dir())
    scene = Scene(spec)
    frames = [renderer.frame(k) for k in range(spec.frame_count)]
    return Rendered(
        spec,
        build_truth(spec),
        [f.bgr for f in frames],
        [f.coverage for f in frames],
        [f.pose.position_m for f in frames],
        [scene.heel_z(k / spec.fps) for k in range(spec.frame_count)],
        [f.pose.pitch_deg for f in frames],
    )


def analyse(
    scene: Rendered, config: PipelineConfig | None = None, mirror: bool = False, as_sent: bool = False
) -> list[Analysis]:
    """The pipeline on the scene's frames; `as_sent`: JPEG-compressed as the camera page sends them."""
    pipeline = Pipeline(config)
    try:
        out = []
        for k, bgr in enumerate(scene.bgr):
            frame, ts = cv2.flip(bgr, 1) if mirror else bgr, round(1000 * scene.t(k))
            if as_sent:
                out.append(pipeline.process_jpeg(phone_jpeg(frame), ts))
            else:
                out.append(pipeline.process(frame, ts))
        return out
    finally:
        pipeline.close()


def with_path(runs: list[Analysis]) -> list[tuple[int, dict[str, Any]]]:
    out = [(k, a.path) for k, a in enumerate(runs) if a.path]
    assert len(out) >= 0.9 * len(runs), f"the ground was known in only {len(out)} of {len(runs)} frames"
    return out


# Walker 2 m from a phone 1.4 m up, walking backwards at 0.6 m/s (clear_asphalt_front, shortened).
FRONT_WALK = {
    "name": "front_walk",
    "duration_s": 4.0,
    "seed": 38,
    "walker": {"speed_mps": 0.6},
    "camera": {"distance_m": 2.0, "height_m": 1.4, "shake_deg": 0.5, "shake_m": 0.005},
}
# The same with the partner 1 m to the walker's left, on paving.
OFFSET_WALK = {
    **FRONT_WALK,
    "name": "offset_walk",
    "seed": 7,
    "camera": {**FRONT_WALK["camera"], "partner_offset_m": 1.0},
    "ground": {"texture": "paving"},
}
# The walker stands still, partner straight in front.
FRONT_STAND = {**FRONT_WALK, "name": "front_stand", "seed": 3, "walker": {"speed_mps": 0.0}}
# pole_left_off05, shortened: a pole on the walker's left half of the path, walker at 1 m/s, partner 0.5 m
# to the walker's left; the heels reach the pole at 4.0 s, just after the clip.
POLE = {"id": "pole", "kind": "pole", "distance_m": 4.0, "lateral_m": 0.25, "variant": 1}
POLE_WALK = {
    "name": "pole_walk",
    "duration_s": 3.6,
    "seed": 12,
    "walker": {"speed_mps": 1.0},
    "camera": {
        "distance_m": 2.5,
        "height_m": 1.3,
        "partner_offset_m": 0.5,
        "shake_deg": 0.8,
        "shake_m": 0.01,
    },
    "ground": {"texture": "concrete"},
    "obstacles": [POLE],
}
# The walker stands still, partner 0.5 m to the side, the usual hand shake; a pole stands 1.6 m behind.
STAND_SHAKY = {
    **POLE_WALK,
    "name": "stand_shaky",
    "duration_s": 2.5,
    "walker": {"speed_mps": 0.0},
    "obstacles": [{**POLE, "distance_m": 1.6}],
}
# The walker stands still; a pedestrian walks towards them along the corridor at 0.8 m/s, from 4.5 m to
# 1.7 m behind the heels (the phone held steadier).
PERSON_STAND = {
    "name": "person_stand",
    "duration_s": 3.6,
    "seed": 21,
    "walker": {"speed_mps": 0.0},
    "camera": {
        "distance_m": 2.5,
        "height_m": 1.4,
        "partner_offset_m": 0.5,
        "shake_deg": 0.5,
        "shake_m": 0.005,
    },
    "ground": {"texture": "asphalt"},
    "obstacles": [{"id": "ped", "kind": "person", "distance_m": 4.5, "lateral_m": 0.2, "speed_mps": 0.8}],
}
# kerb_down_front_landscape up to the deadline: a kerb down across the path, partner straight in front, so
# the walker's body hides the middle of its edge; the heels reach it at 6.0 s, after the clip.
KERB_FRONT = {
    "name": "kerb_front",
    "duration_s": 4.2,
    "resolution_wh": [640, 360],
    "seed": 24,
    "walker": {"speed_mps": 1.0},
    "camera": {"distance_m": 3.0, "height_m": 1.5, "shake_deg": 0.8, "shake_m": 0.01},
    "ground": {"texture": "concrete"},
    "lighting": {"sun_strength": 0.15},
    "obstacles": [{"id": "kerb", "kind": "kerb_down", "distance_m": 6.0, "height_m": 0.15}],
}
# The end of a wall juts into the right of the path (wall_right_fast_landscape, slower and shorter); partner
# straight in front, so the walker's body hides the wall's inner end; the heels reach it at 5.0 s.
WALL_RIGHT = {
    "name": "wall_right",
    "duration_s": 3.2,
    "seed": 18,
    "walker": {"speed_mps": 1.0},
    "camera": {"distance_m": 2.5, "height_m": 1.4, "shake_deg": 0.8, "shake_m": 0.01},
    "ground": {"texture": "paving"},
    "obstacles": [
        {"id": "wall", "kind": "wall", "distance_m": 5.0, "lateral_m": -0.75, "width_m": 1.2, "variant": 1}
    ],
}


# A bench straight behind the walker (bench_centre_off10, nearer and shorter): its seat overhangs, and its
# legs are hidden behind the walker or outside the frame; the heels reach it at 7.5 s, after the clip.
BENCH_BEHIND = {**suite_spec("bench_centre_off10"), "name": "bench_behind", "duration_s": 5.4}
BENCH_BEHIND["obstacles"] = [{"id": "bench", "kind": "bench", "distance_m": 3.0}]


@pytest.fixture(scope="module")
def front_walk() -> Rendered:
    return render_scene(FRONT_WALK)


@pytest.fixture(scope="module")
def offset_walk() -> Rendered:
    return render_scene(OFFSET_WALK)


@pytest.fixture(scope="module")
def front_stand() -> Rendered:
    return render_scene(FRONT_STAND)


@pytest.fixture(scope="module")
def pole_walk() -> Rendered:
    return render_scene(POLE_WALK)


@pytest.fixture(scope="module")
def stand_shaky() -> Rendered:
    return render_scene(STAND_SHAKY)


@pytest.fixture(scope="module")
def person_stand() -> Rendered:
    return render_scene(PERSON_STAND)


@pytest.fixture(scope="module")
def kerb_front() -> Rendered:
    return render_scene(KERB_FRONT)


@pytest.fixture(scope="module")
def wall_right() -> Rendered:
    return render_scene(WALL_RIGHT)


@pytest.fixture(scope="module")
def bench_behind() -> Rendered:
    return render_scene(BENCH_BEHIND)


@pytest.fixture(scope="module")
def runs() -> dict[str, list[Analysis]]:
    """Pipeline runs, computed once on first use: {name: analyses}."""
    return {}


def run_of(name: str, request: pytest.FixtureRequest) -> list[Analysis]:
    cache: dict[str, list[Analysis]] = request.getfixturevalue("runs")
    if name not in cache:
        scene_name, _, variant = name.partition(":")
        scene: Rendered = request.getfixturevalue(scene_name)
        if variant == "mirrored":
            cache[name] = analyse(scene, mirror=True)
        elif variant == "as_sent":
            cache[name] = analyse(scene, as_sent=True)
        elif variant == "priors":
            # the app told the phone's height and the walker's stature: the geometry is right, what is
            # left is the obstacle code's own error
            spec = scene.spec
            ground = GroundConfig(camera_height_m=spec.camera.height_m, walker_height_m=spec.walker.height_m)
            cache[name] = analyse(scene, PipelineConfig(ground=ground))
        else:
            cache[name] = analyse(scene)
    return cache[name]


# ------------------------------------------------------------------------------------------ coverage


FLOW_OUTLIERS = (
    "vision/obstacles.py PathWatcher._ego_motion accepts a flow measurement however few tracked points agree "
    "with its mode: in the 1 m-offset walk mirrored (the partner on the walker's right), four successive "
    "measurements at 1.2-1.6 s have 0-5 of about 60 points within flow_mode_radius_m of the mode and point 45"
    " deg sideways at 0.7-1.5 m/s. They pass the 3 m/s and 45 deg plausibility checks and enter the median in"
    " GroundTracker.update_heading, which then reads -9 to -18 deg instead of -25.5 from 1.5 s to the end "
    "(and the walker's speed 0.7-0.86 m/s for 0.6). The corridor is turned about 12 deg, 0.6 m off 3 m back,"
    " and coverage reads 0.58-0.81 instead of 0.92 (median error 0.28). The unmirrored walk is within 4 deg"
)
MIRRORED_OFFSET = "offset_walk:mirrored"  # once failed: FLOW_OUTLIERS says how


@pytest.mark.parametrize("name", ["front_walk", "offset_walk", MIRRORED_OFFSET])
def test_coverage_matches_the_truth(name: str, request: pytest.FixtureRequest) -> None:
    """The share of the next 3 m of corridor the camera sees, against the renderer's label image: about a
    quarter with the partner straight in front (the walker's body hides the rest), nearly all with 1 m of
    offset (either side: a mirrored frame is the scene with the partner on the other side)."""
    scene: Rendered = request.getfixturevalue(name.partition(":")[0])
    errors = [abs(path["coverage"] - scene.coverage[k]) for k, path in with_path(run_of(name, request))]
    assert float(np.median(errors)) <= 0.15, (float(np.median(errors)), float(np.median(scene.coverage)))


# -------------------------------------------------------------------------- walking speed and heading


@pytest.mark.parametrize(
    "name",
    [
        "front_walk",
        "offset_walk",
        "pole_walk:priors",  # at 1.0 m/s; with the default camera-height prior (1.4 m for a 1.3 m phone)
        # the ground's scale is off and the speed reads 15-25% low
        "front_stand",
        "stand_shaky",  # standing, with the suite's usual hand shake (0.8 deg, 1 cm)
        "person_stand",  # standing, while a pedestrian walks towards them
    ],
)
def test_walker_speed_from_the_ground_flow(name: str, request: pytest.FixtureRequest) -> None:
    scene: Rendered = request.getfixturevalue(name.partition(":")[0])
    late = [p["walker_speed_mps"] for k, p in with_path(run_of(name, request)) if scene.t(k) >= 1.0]
    assert late and None not in late
    truth = scene.spec.walker.speed_mps
    if truth == 0:
        assert max(late) < PathConfig().moving_mps, late
    else:
        assert float(np.median(late)) == pytest.approx(truth, rel=0.3), late


@pytest.mark.parametrize("name", ["front_walk", "offset_walk", MIRRORED_OFFSET])
def test_walking_direction_follows_the_partners_offset(name: str, request: pytest.FixtureRequest) -> None:
    """With the partner 1 m to the side, the path is atan(1 / 2.1) = 25 deg off the line of sight to the
    heels, to the camera's right when the partner is on the walker's left; the ground's flow finds it. With
    the partner straight in front it is the line of sight."""
    scene: Rendered = request.getfixturevalue(name.partition(":")[0])
    mirrored = name.endswith("mirrored")
    got = [(k, p["heading_deg"]) for k, p in with_path(run_of(name, request)) if scene.t(k) >= 1.5]
    assert got
    for k, heading in got:
        truth = scene.heading_deg(k, mirrored)
        assert abs(truth) > 20 if scene.spec.camera.partner_offset_m else abs(truth) < 1
        assert heading == pytest.approx(truth, abs=6.0), f"t={scene.t(k):.2f} s"


def test_walking_direction_holds_while_the_partner_drifts_nearer_and_further() -> None:
    """The suite's long control with the partner 0.5 m to the side, drifting 0.2 m nearer and further every
    4 s (its first 10 s): the path is 12-15 deg off the line of sight as the distance changes, and after
    the first 2 s the estimate follows it within 1.5 deg at the median, 3.5 deg at the 90th percentile
    (the landmark noise of each frame's line of sight is in it). The walker frame's direction
    follows the feet's column, a few pixels of landmark noise; with the flow's ends placed by it, each
    0.1 s of flow had a sideways error of 0.2-0.4 m/s and the direction swung between 6 and 19 deg, and
    coverage read 20 points low."""
    data = suite_spec("clear_paving_long_off05")
    assert data["camera"]["breathing_m"] == 0.2 and data["control"] is True
    scene = render_scene({**data, "name": "drifting_partner", "duration_s": 10.0})
    got = [(k, p["heading_deg"]) for k, p in with_path(analyse(scene)) if scene.t(k) >= 2.0]
    assert len(got) >= 0.9 * 8.0 * scene.spec.fps
    errors = np.array([abs(heading - scene.heading_deg(k)) for k, heading in got])
    # measured: median 0.7 deg, p90 2.8 (with the feet's column: 4.9 and 8.4)
    assert np.median(errors) <= 1.5 and np.percentile(errors, 90) <= 3.5, np.round(errors, 1)


# ------------------------------------------------------------------------------------------ obstacles


@pytest.mark.parametrize("name", ["front_walk", "offset_walk", "front_stand"])
def test_a_clear_path_gives_no_obstacle_hazard(name: str, request: pytest.FixtureRequest) -> None:
    runs = run_of(name, request)
    assert not any(h.kind == "walker_lost" for a in runs for h in a.hazards)
    noisy = [(k, obstacle_hazards(a)) for k, a in enumerate(runs) if obstacle_hazards(a)]
    assert noisy == []


@pytest.fixture(scope="module")
def grass_control() -> Rendered:
    """The suite's clear-path control on grass (partner 1 m to the side, walker at 1 m/s), first 2.4 s."""
    data = suite_spec("clear_grass_off10_cloud")
    assert data["control"] is True and data["obstacles"] == []
    return render_scene({**data, "name": "clear_grass_off10_cloud", "duration_s": 2.4})


def test_a_clear_grass_path_gives_no_obstacle_hazard(request: pytest.FixtureRequest) -> None:
    """Grass comes in patches of another shade (yellow-green against dark green, metres across) that the strip
    in front of the walker, the ground model, may not hold yet. They differ in hue more than in lightness, so
    colour alone must differ twice as much as lightness (`chroma_z`) before a cell is not ground: with one
    threshold for both, this control raised stop cues about 1 m behind the heels."""
    runs = run_of("grass_control", request)
    assert len(with_path(runs)) >= 0.9 * len(runs)
    noisy = [(k, obstacle_hazards(a)) for k, a in enumerate(runs) if obstacle_hazards(a)]
    assert noisy == []


def test_a_pole_in_the_corridor_is_tracked_and_warned_in_time(request: pytest.FixtureRequest) -> None:
    """The app's default priors (a 1.4 m phone; this one is at 1.3 m): the pole is reported in the corridor,
    on the walker's left, at its distance, and warned about with a time to contact at least 2 s before the
    heels reach it."""
    scene: Rendered = request.getfixturevalue("pole_walk")
    runs = run_of("pole_walk", request)
    (summary,) = scene.truth.summaries
    assert summary.contact_t_s == pytest.approx(4.0) and summary.deadline_t_s is not None
    located = []
    for k, a in enumerate(runs):
        truth = scene.truth.obstacles[k][0]
        assert truth.in_corridor and truth.side == "left"
        for ob in a.path.get("obstacles", []):
            if (
                ob["in_corridor"]
                and ob["side"] == "left"
                and abs(ob["distance_m"] / truth.distance_m - 1) <= 0.25
            ):
                located.append(k)
    assert located, "the pole was never reported in the corridor, on the walker's left, at its distance"
    warned = [(scene.t(k), h) for k, a in enumerate(runs) for h in obstacle_hazards(a)]
    assert warned, "no obstacle hazard before contact"
    first_t, first = warned[0]
    assert first.ttc_s is not None and first.ttc_s > 0 and first.distance_m is not None
    # the project's goal: warned at least 2 s before contact
    assert first_t <= summary.deadline_t_s, (
        f"first warning at {first_t:.2f} s, due by {summary.deadline_t_s:.2f}"
    )


def test_a_kerb_behind_the_walker_is_one_kerb_across_the_path(request: pytest.FixtureRequest) -> None:
    """With the partner straight in front the walker's body hides the middle of a kerb's edge: the two ends
    seen on either side of the body, at one distance, are one thing across the path, warned in the centre at
    least 2 s before the heels reach it (as two pieces beside the corridor it was warned 1.1 s before
    contact). Its name is not checked: the road surface beyond a kerb down looks like the face of a wall."""
    scene: Rendered = request.getfixturevalue("kerb_front")
    runs = run_of("kerb_front", request)
    (summary,) = scene.truth.summaries
    assert summary.contact_t_s == pytest.approx(6.0) and summary.deadline_t_s is not None
    # what the walker hears: a hazard is cued once its time to contact reaches the advisory tier, 3 s
    warned = [(scene.t(k), h) for k, a in enumerate(runs) for h in obstacle_hazards(a) if (h.ttc_s or 9) <= 3]
    assert warned, "the kerb was never warned about"
    first_t, first = warned[0]
    assert first.side == "centre", first
    assert first_t <= summary.deadline_t_s, (
        f"first warning at {first_t:.2f} s, due by {summary.deadline_t_s:.2f}"
    )
    assert first.distance_m is not None
    truth_d = scene.truth.obstacles[round(first_t * scene.spec.fps)][0].distance_m
    assert abs(first.distance_m / truth_d - 1) <= 0.25, (first.distance_m, truth_d)


def test_the_ground_stays_ground_when_a_cloud_dims_the_whole_frame() -> None:
    """A cloud (or the phone's exposure) darkens the whole frame at once. The ground's lightness is taken
    from this frame's strip in front of the walker, so the path stays ground in the first dimmed frame and a
    dark pole stays not-ground. (With the lightness averaged over the last frames, as before, the whole path
    turned not-ground for a third of a second, and a thin pole in a cloud's shade was warned 1 s late on the
    suite.)"""
    pw = PathWatcher()
    rng = np.random.default_rng(5)
    shape = pw._gd.shape
    seen = np.ones(shape, bool)
    pole = (np.abs(pw._gx - 0.2) < 0.06) & (pw._gd > 3.0)

    def frame(gain: float) -> npt.NDArray[np.float32]:
        lab = np.empty((*shape, 3), np.float32)
        lab[..., 0] = np.where(pole, 60.0, 150.0 + rng.normal(0, 5, shape)) * gain
        lab[..., 1:] = 128 + rng.normal(0, 2, (*shape, 2))
        return lab

    for _ in range(10):
        pw._update_reference(frame(1.0), seen)
    assert pw._not_ground(frame(1.0), seen)[pole].mean() > 0.95
    dim = frame(0.7)
    pw._update_reference(dim, seen)
    notground = pw._not_ground(dim, seen)
    plain = ~pole & (pw._gd > 0.2)
    assert notground[plain].mean() < 0.01, f"{notground[plain].mean():.0%} of the dimmed path is not ground"
    assert notground[pole].mean() > 0.95


def test_a_wall_beside_the_hidden_wedge_is_warned_on_its_side(request: pytest.FixtureRequest) -> None:
    """A wall on the walker's right whose inner end the walker's body hides: it may go on unseen a little
    into the corridor (so it is warned), but not across it. The side first told is the wall's own: "right",
    so the walker knows to step left (when the side counted all of the hidden wedge it was "centre"). Its end
    is 15 cm from the centreline, so as the wedge narrows towards the heels "centre" is honest too."""
    scene: Rendered = request.getfixturevalue("wall_right")
    runs = run_of("wall_right", request)
    (summary,) = scene.truth.summaries
    assert summary.contact_t_s == pytest.approx(5.0) and summary.deadline_t_s is not None
    assert {f[0].side for f in scene.truth.obstacles} == {"right"}
    warned = [(scene.t(k), h) for k, a in enumerate(runs) for h in obstacle_hazards(a) if (h.ttc_s or 9) <= 3]
    assert warned, "the wall was never warned about"
    first_t, first = warned[0]
    assert first_t <= summary.deadline_t_s, f"first warning at {first_t:.2f} s, due by {summary.deadline_t_s}"
    sides = [h.side for _, h in warned]
    assert first.side == "right" and "left" not in sides, [(t, h.side) for t, h in warned]


@pytest.fixture(scope="module")
def poles_beside() -> Rendered:
    """The suite's bollards either side of the path (0.6 m off the centreline, 0.15 m thick) with a fast
    walker and the partner straight in front, up to just after the walker passes the near pair."""
    data = suite_spec("clear_poles_beside_fast_landscape")
    assert data["control"] is True
    return render_scene({**data, "duration_s": 4.8})


def test_a_wall_seen_on_both_sides_of_the_walker_is_one_wall_across_the_path() -> None:
    """A wall across the path, the partner half a metre aside: the walker's occlusion shadow hides its middle
    and the two ends are seen either side of it, at one distance (wall_centre_off05_landscape). They are one
    thing through the hidden middle, in the centre. A piece's width is a 5-95% quantile of its columns, so
    its outermost column lies outside it; the piece carries on into the shadow over that column too. (It
    did not: the right end's reach stopped at its own cell, the ends stayed two pieces, and the suite's wall
    was warned "left", and the wall on the right at 1.5 m/s 0.07 s too late.)"""
    pw = PathWatcher()
    rows = (pw._gd >= 1.7) & (pw._gd <= 2.2)
    hidden = rows & (pw._gx > -0.6) & (pw._gx < 0.05)  # the shadow runs on behind the wall's face
    notground = rows & ~hidden
    seen = ~hidden
    blobs, _ = pw._blobs(notground, hidden, seen)
    assert len(blobs) == 1, [(b.x0, b.x1) for b in blobs]
    (wall,) = blobs
    assert wall.base_d == pytest.approx(1.7, abs=pw.config.cell_m)
    assert wall.x0 < -1.0 and wall.x1 > 1.0
    assert pw._side(wall.x0, wall.x1) == "centre"
    # the left end's column next to the shadow holds one cell of its base band: the 95% quantile leaves it
    # out, and the walk to the right must cross it too
    edge = np.nonzero(notground[:, :].any(axis=0) & (pw._xs < -0.5))[0].max()
    thin = notground.copy()
    thin[:, edge] = False
    thin[np.nonzero(rows.any(axis=1))[0][0], edge] = True
    blobs, _ = pw._blobs(thin, hidden, seen)
    assert len(blobs) == 1, [(b.x0, b.x1) for b in blobs]
    assert blobs[0].x0 < -1.0 and blobs[0].x1 > 1.0
    # a piece with ground seen between it and the shadow ends there: it is not carried on
    gap = rows & (pw._gx > 0.05) & (pw._gx < 0.2)
    blobs, _ = pw._blobs(notground & ~gap, hidden, seen)
    assert len(blobs) == 2
    right = max(blobs, key=lambda b: b.x0)
    assert right.reach0 == right.x0


def test_bollards_beside_the_hidden_wedge_are_not_in_the_path(request: pytest.FixtureRequest) -> None:
    """A bollard whose inner side touches the walker's occlusion shadow may go on unseen into it, but a
    thing seen 15 cm thick is not taken to go on 30 cm: it may reach into the hidden wedge by no more than
    it is seen wide. With the full 30 cm the far bollard was warned 3.8 m back ("left") and again as a stop
    cue at the heels, on a path the walker passes through clear (frames as the camera page sends them)."""
    runs = run_of("poles_beside:as_sent", request)
    assert len(with_path(runs)) >= 0.9 * len(runs)
    noisy = [(k, obstacle_hazards(a)) for k, a in enumerate(runs) if obstacle_hazards(a)]
    assert noisy == []


def level_ground(heel_x_m: float, heading: float) -> Ground:
    """A 640x480 camera 1.4 m up, pitched 17 deg down, the walker's heels 2 m ahead."""
    return Ground(
        f=500.0,
        cx=320.0,
        cy=240.0,
        pitch=0.3,
        height_m=1.4,
        heel_cam=(heel_x_m, 2.0),
        heading=heading,
        frame_wh=(640, 480),
    )


def test_turning_the_walker_frame_keeps_footprints_on_their_ground() -> None:
    """When the walking direction's estimate moves (the line of sight until the ground's flow is measured,
    then 14-18 deg away with the partner half a metre aside), the tracks' past footprints are re-expressed in
    the turned frame: each lands where the ground geometry itself puts the same ground point."""
    before = level_ground(heel_x_m=0.4, heading=0.1)
    turn = math.radians(-16.0)
    after = replace(before, heading=before.heading + turn)
    pw = PathWatcher()
    pw._turn_tracks(0.0)
    track = Track(1, "obstacle")
    footprints = [(0.5, 2.0, 0.45, 0.9), (0.6, 1.85, 0.5, 0.95)]  # (t, base d, x0, x1)
    track.history.extend(footprints)
    pw._tracks.append(track)
    pw._turn_tracks(turn)
    for (_, d, x0, x1), (_, d2, x0b, x1b) in zip(footprints, track.history, strict=True):
        for x, got in ((x0, x0b), (x1, x1b)):
            u, v = before.to_image([x], [d])
            xa, _ = after.to_walker(u, v)
            assert got == pytest.approx(float(xa[0]), abs=1e-6)
        u, v = before.to_image([(x0 + x1) / 2], [d])
        _, da = after.to_walker(u, v)
        assert d2 == pytest.approx(float(da[0]), abs=1e-6)
    assert track.history[0][2] > 0.9  # the bin 1 m to the left is no longer placed half in the corridor


def test_nothing_is_warned_before_the_walking_direction_is_measured() -> None:
    """Until the ground's flow has given the walking direction, the walker frame's forward axis is the line
    of sight, 14-18 deg off with the partner half a metre aside: a track in its corridor may be beside the
    path. The speed may be measured a frame before the direction (five speeds, not yet five directions):
    under a simulated gait, that frame warned about lit paving beyond a shadow band on clear paths. A track
    closing straight behind is warned only once its footprints were placed with the measured direction."""
    ground = level_ground(heel_x_m=0.0, heading=0.0)
    pw = PathWatcher()
    pw.speed_mps, pw._flow_frames = 1.0, 10
    pw._facing.extend([True] * 15)
    track = Track(1, "obstacle")
    for k in range(12):
        track.add(k / 15, _Blob(3.0 - k / 15, -0.2, 0.2, 3.5, "obstacle", False, np.arange(40), -0.2, 0.2))
    pw._tracks.append(track)
    now = 11 / 15
    assert pw._hazards(now, ground)[0] == []
    for _ in range(5):
        pw.ground.update_heading(0.0, 1.0)
    pw._turn_tracks(pw.ground.heading)
    (hazard,) = pw._hazards(now, replace(ground, heading_measured=pw.ground.heading_measured))[0]
    assert hazard.side == "centre" and hazard.ttc_s == pytest.approx(2.27, abs=0.05)


def test_the_pole_is_placed_at_its_distance_when_the_ground_is_right(request: pytest.FixtureRequest) -> None:
    """With the phone's height and the walker's stature told (the geometry is right), the pole's distance
    behind the heels comes out within 10% from 3 m in to 1.5 m. (The last metre: see the next test.)"""
    scene: Rendered = request.getfixturevalue("pole_walk")
    runs = run_of("pole_walk:priors", request)
    frames, errors = 0, []
    for k, a in enumerate(runs):
        truth = scene.truth.obstacles[k][0].distance_m
        if not 1.5 <= truth <= 3.0:
            continue
        frames += 1
        found = [o["distance_m"] for o in a.path.get("obstacles", []) if o["in_corridor"]]
        if found:
            errors.append(min(abs(d / truth - 1) for d in found))
    assert len(errors) >= 0.8 * frames, f"tracked in {len(errors)} of {frames} frames"
    assert max(errors) <= 0.10, [round(e, 2) for e in errors]


def test_a_bench_seat_is_placed_where_it_is_not_on_the_ground_beyond(request: pytest.FixtureRequest) -> None:
    """The top-down warp puts everything on the ground, so a bench's seat 0.45 m up, with its legs unseen,
    was placed about 1.5 times as far from the camera as it is (the suite's bench was warned 1.1 s before
    contact). Plane parallax reads its footprint as raised and brings it, with its closing speed, to where it
    is: from 2.5 s on (once the readings are in) its distance is within 20% and its time to contact within
    25% of the truth (median), in the centre, where without the readings it reads 60% far and 40% late."""
    scene: Rendered = request.getfixturevalue("bench_behind")
    plain = analyse(scene, PipelineConfig(path=PathConfig(raised_fix=False)))

    def errors(runs: list[Analysis]) -> tuple[list[float], list[float]]:
        distance, ttc = [], []
        for k, a in enumerate(runs):
            truth = scene.truth.obstacles[k][0]
            if scene.t(k) < 2.5 or not truth.in_corridor:
                continue
            found = [o for o in a.path.get("obstacles", []) if o["in_corridor"]]
            if not found:
                continue
            ob = min(found, key=lambda o: abs(o["distance_m"] - truth.distance_m))
            assert ob["side"] == "centre", (scene.t(k), ob)
            distance.append(ob["distance_m"] / truth.distance_m - 1)
            if ob["ttc_s"] is not None and truth.ttc_s:
                ttc.append(ob["ttc_s"] / truth.ttc_s)
        return distance, ttc

    (distance, ttc), (before, ttc_before) = errors(run_of("bench_behind", request)), errors(plain)
    assert len(distance) >= 25 and len(before) >= 25 and len(ttc) >= 20, (len(distance), len(ttc))
    assert float(np.median(before)) > 0.6 and float(np.median(ttc_before)) > 1.4, (before, ttc_before)
    assert abs(float(np.median(distance))) <= 0.2, [round(e, 2) for e in distance]
    assert 0.8 <= float(np.median(ttc)) <= 1.25, [round(r, 2) for r in ttc]


def test_time_to_contact_follows_the_truth_into_the_last_second(request: pytest.FixtureRequest) -> None:
    """Same pole, with the ground's priors right (so the geometry is not to blame): once the truth's time
    to contact is in the urgent and stop tiers (0.5-1.5 s), the reported one stays within 30% of it."""
    scene: Rendered = request.getfixturevalue("pole_walk")
    runs = run_of("pole_walk:priors", request)
    ratios = []
    for k, a in enumerate(runs):
        truth = scene.truth.obstacles[k][0].ttc_s
        if truth is None or not 0.5 <= truth <= 1.5:
            continue
        ttcs = [h.ttc_s for h in obstacle_hazards(a) if h.ttc_s is not None]
        ratios.append(min(ttcs) / truth if ttcs else math.inf)  # no warning then is as bad as a late one
    assert len(ratios) >= 10
    assert all(0.7 <= r <= 1.3 for r in ratios), [round(r, 2) for r in ratios]


def test_on_a_smooth_floor_the_motion_is_unknown_and_the_pole_still_warned_in_time() -> None:
    """pole_smooth_floor_off05 from the suite: a sealed floor gives Lucas-Kanade too little texture. Points
    stuck where they were read the 0.8 m/s walker at 0.3-0.6 m/s, "standing" at times, and the pole was not
    warned 2 s ahead. Now the walker's motion is reported unknown, with no speed rather than a wrong one,
    and the pole's own closing speed warns of it at least 2 s before the heels reach it."""
    spec = suite_spec("pole_smooth_floor_off05")
    scene = render_scene({**spec, "name": "pole_smooth_floor_off05"})
    runs = analyse(scene)
    paths = with_path(runs)
    wrong = [p["walker_speed_mps"] for _, p in paths if p["walker_speed_mps"] is not None]
    wrong = [v for v in wrong if abs(v / 0.8 - 1) > 0.25]
    assert wrong == [], f"speeds given for a 0.8 m/s walker the ground's flow cannot measure: {wrong}"
    later = [p for k, p in paths if scene.t(k) >= PathConfig().flow_window_s + 0.2]
    assert later and all(p["motion_known"] is False for p in later)
    (summary,) = scene.truth.summaries
    assert summary.deadline_t_s is not None
    warned = [(scene.t(k), obstacle_hazards(a)[0]) for k, a in enumerate(runs) if obstacle_hazards(a)]
    assert warned and warned[0][0] <= summary.deadline_t_s, (
        f"first warning at {warned[0][0] if warned else None} s, due by {summary.deadline_t_s:.2f}"
    )
    # Without the flow the walking direction is the line of sight, 11 deg off the truth here: the pole,
    # 0.1 m left of the true centreline, was first warned of as "left". Unsure of the direction, the first
    # warning says no side (so does the evaluation's truth: it is centre).
    assert warned[0][1].side == "centre"


def test_a_walker_standing_still_hears_nothing_about_a_pole(request: pytest.FixtureRequest) -> None:
    """A pole stands 1.6 m behind a walker who does not move: it is tracked in the corridor, and nothing is
    said (nothing closes on anything)."""
    runs = run_of("stand_shaky", request)
    # The pole stands 5-15 cm inside the corridor's edge, so its in-corridor flag flickers with the hand's
    # shake; tracked in the corridor in a quarter of the frames is enough to show it is seen.
    seen = [k for k, a in enumerate(runs) if any(o["in_corridor"] for o in a.path.get("obstacles", []))]
    assert len(seen) >= 0.25 * len(runs), (
        "the pole should be tracked in the corridor (else this proves nothing)"
    )
    assert [(k, obstacle_hazards(a)) for k, a in enumerate(runs) if obstacle_hazards(a)] == []


def test_a_walker_standing_still_hears_nothing_about_someone_walking_up(
    request: pytest.FixtureRequest,
) -> None:
    """A pedestrian walks up to a walker who stands still. They are tracked in the corridor, closing at
    their own speed, in time to warn; what keeps the walker's ears free is only the policy in
    PathWatcher._hazards: time to contact is about the walker walking into something, so a walker who is
    not walking hears nothing. (The scenario truth does not model that policy: it expects an advisory at
    2.67 s, when the pedestrian's TTC falls to 3 s.)"""
    scene: Rendered = request.getfixturevalue("person_stand")
    runs = run_of("person_stand", request)
    closing = []
    for k, a in enumerate(runs):
        truth = scene.truth.obstacles[k][0]
        for o in a.path.get("obstacles", []):
            if o["in_corridor"] and truth.in_corridor and abs(o["distance_m"] - truth.distance_m) < 0.5:
                closing.append(o["closing_mps"])
    assert len(closing) >= 0.25 * len(runs), "the pedestrian should be tracked in the corridor"
    assert float(np.median(closing)) == pytest.approx(0.8, rel=0.35)  # closing at their walking speed
    speeds = [p["walker_speed_mps"] for _, p in with_path(runs) if p["walker_speed_mps"] is not None]
    assert max(speeds) < PathConfig().moving_mps, speeds
    assert [(k, obstacle_hazards(a)) for k, a in enumerate(runs) if obstacle_hazards(a)] == []


@pytest.mark.parametrize("every_ms", [100, 400, 600])
def test_a_walker_squatting_before_a_still_camera_is_not_walking(every_ms: int) -> None:
    """The real squat clip (5 fps) as the browser test's fake camera sends it, each frame twice at 10 fps,
    and as a busy server gets through it, every other frame at 2.5 fps: the camera and the floor stand still
    while the hips drop and rise. The body's pitch follows the hips by degrees, and with each frame's ends
    placed by it the still floor read as moving at up to 0.4 m/s and raised obstacle warnings twice in 39 s.
    The pitch under which the floor's points moved alike says it did not move. At 2.5 fps the deepest
    squats leave the flow without a common motion for 3 s; that is not "unknown motion" (the floor has
    texture), so the walker is not taken for walking and told their path is hidden. Frames 0.6 s apart are
    too far apart to try the flow at all: no speed, and nothing said either."""
    person = [cv2.resize(f, (360, 640)) for f in read_frames(WALKER_CLIP, limit=65)]
    pipeline = Pipeline(PipelineConfig(mode="partner"))
    try:
        runs = [
            pipeline.process(person[(k * every_ms // 200) % len(person)], k * every_ms)
            for k in range(39_000 // every_ms)
        ]
    finally:
        pipeline.close()
    speeds = [p["walker_speed_mps"] for _, p in with_path(runs) if p["walker_speed_mps"] is not None]
    if every_ms < 500:
        assert len(speeds) >= 0.9 * len(runs)
        assert max(speeds) < 0.5 * PathConfig().moving_mps, max(speeds)
    assert [(k, [h.kind for h in a.hazards]) for k, a in enumerate(runs) if a.hazards] == []


def test_the_ground_flow_sees_the_same_floor_in_frames_of_any_size() -> None:
    """The same squat clip at its own 720 x 1280 and 5 fps, as a client sending full frames would (the camera
    page and replay send 640 px, the server takes up to 1920 x 1920 pixels). The flow works on a frame at most
    320 px long, as on a 640 px one: at half of 1280 Lucas-Kanade's window held a quarter of the floor, and
    the texture test took the floor for plain in 62 of 64 frames (the walker's motion "unknown")."""
    frames = read_frames(WALKER_CLIP, limit=65, full_size=True)
    assert len(frames) == 65 and frames[0].shape[:2] == (1280, 720)
    pipeline = Pipeline(PipelineConfig(mode="partner"))
    try:
        runs = [pipeline.process(f, k * 200) for k, f in enumerate(frames)]
    finally:
        pipeline.close()
    later = [p for k, p in with_path(runs) if k * 0.2 >= 1.5]
    assert all(p["motion_known"] for p in later), [p["motion_known"] for p in later]
    speeds = [p["walker_speed_mps"] for p in later]
    assert None not in speeds and max(speeds) < 0.5 * PathConfig().moving_mps, speeds


def test_a_walker_facing_away_hears_nothing_about_an_obstacle(request: pytest.FixtureRequest) -> None:
    """A walker with their back to the camera walks forwards and sees the path: the same frames that give
    a facing walker a warning give no obstacle cue when the watcher is told they face away."""
    scene: Rendered = request.getfixturevalue("pole_walk")
    assert any(obstacle_hazards(a) for a in run_of("pole_walk", request))  # facing: warned
    estimator = PoseEstimator(num_poses=1, segmentation=True)
    watcher = PathWatcher(ground=GroundTracker())
    views = []
    try:
        for k, bgr in enumerate(scene.bgr):
            rgb = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), np.uint8)
            people, masks = estimator.detect_with_masks(rgb, round(1000 * scene.t(k)))
            if not people:
                continue
            ground = watcher.ground.update(people[0], (bgr.shape[1], bgr.shape[0]))
            if ground is None:
                continue
            result = watcher.update(bgr, ground, masks[0], scene.t(k), facing_camera=False)
            assert [h for h in result.hazards if h.kind not in NOT_OBSTACLES] == [], f"t={scene.t(k):.2f} s"
            assert result.view["facing_camera"] is False
            views.append(result.view)
    finally:
        estimator.close()
    assert len(views) >= 0.9 * len(scene.bgr)
    assert any(o["in_corridor"] for v in views for o in v["obstacles"])  # the pole was there to warn about


# ------------------------------------------------------------------------------------- path_hidden


def hidden_times(scene: Rendered, runs: list[Analysis]) -> list[float]:
    return [scene.t(k) for k, a in enumerate(runs) if any(h.kind == "path_hidden" for h in a.hazards)]


def test_path_hidden_when_walking_backwards_unseen(request: pytest.FixtureRequest) -> None:
    """Partner straight in front, walker backing away: the corridor stays mostly hidden by the walker's
    body, so after a few seconds the walker is told that the path is not seen: a notice, under one key
    (the alert policy says it once)."""
    scene: Rendered = request.getfixturevalue("front_walk")
    runs = run_of("front_walk", request)
    c = PathConfig()
    assert float(np.median([p["coverage"] for _, p in with_path(runs)])) < c.coverage_low
    times = hidden_times(scene, runs)
    assert times, "no path_hidden notice while walking backwards with the path hidden"
    assert c.blind_notice_s <= times[0] <= c.blind_notice_s + 1.0
    notices = [h for a in runs for h in a.hazards if h.kind == "path_hidden"]
    assert {(h.tier, h.key, h.distance_m, h.ttc_s) for h in notices} == {
        ("advisory", "path_hidden", None, None)
    }
    assert all(h.text for h in notices)


@pytest.mark.parametrize("name", ["offset_walk", "front_stand"])
def test_no_path_hidden_when_the_path_is_seen_or_the_walker_stands(
    name: str, request: pytest.FixtureRequest
) -> None:
    scene: Rendered = request.getfixturevalue(name)
    runs = run_of(name, request)
    if name == "front_stand":  # as hidden as above: only the standing makes the difference
        assert float(np.median([p["coverage"] for _, p in with_path(runs)])) < PathConfig().coverage_low
    assert scene.spec.duration_s >= PathConfig().blind_notice_s + 1.0
    assert hidden_times(scene, runs) == []


# ------------------------------------------------------------------------------------------- facing


def test_a_mirrored_walker_still_faces_the_camera(request: pytest.FixtureRequest) -> None:
    """Mirroring the frame (as a selfie camera does) does not turn a walker round: a mirrored front view is
    a front view, and MediaPipe names the body's sides from the body, so the left shoulder stays on the
    image's right. (A mirror cannot stand in for a view from behind; the real one is tested below.)"""
    paths = with_path(run_of("offset_walk:mirrored", request))
    assert all(p["facing_camera"] for _, p in paths)


def test_people_seen_from_behind_do_not_face_the_camera() -> None:
    """Real footage: people walk up to a static camera's table with their backs to it."""
    frames = read_frames("people_step_up_one_by_one.mp4", limit=192)[80:192:2]
    pipeline = Pipeline()
    try:
        paths = [a.path for i, f in enumerate(frames) if (a := pipeline.process(f, i * 200)).path]
    finally:
        pipeline.close()
    assert len(paths) >= 0.8 * len(frames)
    assert not any(p["facing_camera"] for p in paths)


# ---------------------------------------------------------------------------- plane parallax (flat bands)

# clear_markings_road_off05 up to the stop line: a white line 0.3 m deep across the path, 3.5 m behind the
# heels at the start, on asphalt; walker at 0.8 m/s, so the heels reach it at 4.4 s.
STOP_LINE = {
    **suite_spec("clear_markings_road_off05"),
    "name": "stop_line",
    "duration_s": 3.4,
    "ground": {"texture": "asphalt", "markings": [{"distance_m": 3.5, "width_m": 6.0, "depth_m": 0.3}]},
}
# kerb_down_off10 brought nearer: a kerb down from paving to the road 2.6 m behind the heels, walker at
# 0.5 m/s (contact at 5.2 s), partner 1 m to the walker's left.
KERB_DOWN_NEAR = {
    **suite_spec("kerb_down_off10"),
    "name": "kerb_down_near",
    "duration_s": 4.4,
    "obstacles": [{"id": "kerb", "kind": "kerb_down", "distance_m": 2.6}],
    "lighting": {},
}

# clear_markings_parking_landscape: white bay lines across the path every 2.5 m, the partner straight in
# front (landscape), walker at 1 m/s.
CAR_PARK = {**suite_spec("clear_markings_parking_landscape"), "name": "car_park"}


@pytest.fixture(scope="module")
def stop_line() -> Rendered:
    return render_scene(STOP_LINE)


@pytest.fixture(scope="module")
def kerb_down_near() -> Rendered:
    return render_scene(KERB_DOWN_NEAR)


@pytest.fixture(scope="module")
def car_park() -> Rendered:
    return render_scene(CAR_PARK)


def bands_read(
    scene: Rendered,
    flat_veto: bool,
    parallax: ParallaxConfig | None = None,
    tilt: bool = False,
    with_tilt: bool = False,
    bias_deg: float | None = None,
) -> tuple[list[Analysis], dict[int, list[tuple[float, float]]]]:
    """The pipeline on the scene's frames as the camera page sends them, and each "kerb" track's parallax
    readings (the ground beyond it, the band). `tilt`: each frame comes with the phone's tilt, as a
    simulated sensor reads the scene's camera (the camera's height is then measured); `bias_deg`: a sensor
    exact but for that bias."""
    path = PathConfig(
        flat_veto=flat_veto, flat_veto_with_tilt=with_tilt, parallax=parallax or ParallaxConfig()
    )
    pipeline = Pipeline(PipelineConfig(path=path))
    readings = simulated_pitch(scene.pitch_deg, scene.spec.fps, 7, TiltModel()) if tilt else None
    if bias_deg is not None:  # a sensor off by this much throughout, and otherwise exact
        readings = [p + bias_deg for p in scene.pitch_deg]
    try:
        out = [
            pipeline.process_jpeg(
                phone_jpeg(bgr), round(1000 * scene.t(k)), readings[k] if readings is not None else None
            )
            for k, bgr in enumerate(scene.bgr)
        ]
        assert pipeline._path is not None
        levels = {tr.id: [(b, n) for _, b, n in tr.levels] for tr in pipeline._path._tracks}
        return out, levels
    finally:
        pipeline.close()


def kerb_cues(runs: list[Analysis]) -> list[Hazard]:
    """What the walker would hear about a band: a kerb hazard within the advisory tier's 3 s."""
    return [h for a in runs for h in a.hazards if h.kind == "kerb" and (h.ttc_s or 9) <= 3]


def test_a_painted_stop_line_reads_flat_and_with_the_flat_veto_is_not_warned(
    request: pytest.FixtureRequest,
) -> None:
    """Road paint is a light band across the path, like a kerb stone, and the appearance test warns it as a
    kerb. Plane parallax reads it and the road beyond it at the walker's level; with PathConfig.flat_veto
    on, the band is not warned. (The veto is off in the product: with the pitch from the walker's body the
    readings move with the camera-height prior; here the prior is the scene's own 1.4 m.)"""
    scene: Rendered = request.getfixturevalue("stop_line")
    plain, _ = bands_read(scene, flat_veto=False)
    assert kerb_cues(plain), "the stop line was not warned as a kerb without the veto: the test shows nothing"
    vetoed, levels = bands_read(scene, flat_veto=True)
    assert not kerb_cues(vetoed), kerb_cues(vetoed)
    readings = [r for rs in levels.values() for r in rs if math.isfinite(r[0]) and math.isfinite(r[1])]
    assert len(readings) >= 4, levels
    assert abs(float(np.median([b for b, _ in readings]))) <= 0.035, readings
    assert abs(float(np.median([n for _, n in readings]))) <= 0.035, readings


def test_the_ground_beyond_a_line_read_past_the_walkers_legs_reads_flat(
    request: pytest.FixtureRequest,
) -> None:
    """With the partner straight in front, ground seen beside the walker's legs was, in the earlier frame of
    a reading, behind them: matched there, it reads like a thing moving with the pair, and the road beyond
    the car park's bay lines read lower, like the road beyond a kerb down. Those pixels are left out
    (ParallaxConfig.body_margin_px): the road beyond reads flat, as it is, and the veto silences more of the
    lines (it is off in the product: docs/obstacles.md)."""
    scene: Rendered = request.getfixturevalue("car_park")
    read = {}
    for margin in (ParallaxConfig().body_margin_px, 0):
        runs, levels = bands_read(scene, flat_veto=True, parallax=ParallaxConfig(body_margin_px=margin))
        beyond = [b for rs in levels.values() for b, _ in rs if math.isfinite(b)]
        assert len(beyond) >= 8, levels
        read[margin] = (float(np.median(beyond)), len(kerb_cues(runs)))
    (kept, kept_cues), (beside, beside_cues) = read.values()
    assert abs(kept) <= 0.035, read
    assert beside < -0.035, read  # with the legs' pixels: the road beyond reads lower, like a kerb down
    assert kept_cues < beside_cues, read


def test_with_the_phones_tilt_the_veto_can_silence_the_stop_line(request: pytest.FixtureRequest) -> None:
    """PathConfig.flat_veto_with_tilt (off in the product, docs/obstacles.md) turns the veto on while the
    camera's height is measured from the phone's tilt, and not for a phone that does not send it."""
    scene: Rendered = request.getfixturevalue("stop_line")
    with_tilt, _ = bands_read(scene, flat_veto=False, tilt=True, with_tilt=True)
    assert not kerb_cues(with_tilt), kerb_cues(with_tilt)
    assert any(a.path.get("camera_height_measured") for a in with_tilt)
    default, _ = bands_read(scene, flat_veto=False, tilt=True)
    assert kerb_cues(default), "the product's default (the veto off) warns the stop line"
    without_tilt, _ = bands_read(scene, flat_veto=False, with_tilt=True)
    assert kerb_cues(without_tilt), "a phone without the tilt: the veto is off"


def test_a_kerb_down_reads_lower_and_is_warned_with_the_flat_veto(request: pytest.FixtureRequest) -> None:
    """The road 12 cm below a kerb's edge reads lower by parallax, as theory says (-h / (H + h), -0.08 for a
    phone 1.4 m up), so the veto leaves the kerb down warned: its kerb stone, at the walker's level, reads
    flat like paint, and only the ground beyond tells them apart."""
    scene: Rendered = request.getfixturevalue("kerb_down_near")
    runs, levels = bands_read(scene, flat_veto=True)
    beyond = [b for rs in levels.values() for b, _ in rs if math.isfinite(b)]
    assert len(beyond) >= 4, levels
    assert float(np.median(beyond)) < -0.05, beyond
    (summary,) = scene.truth.summaries
    warned = [
        k for k, a in enumerate(runs) if any(h.kind == "kerb" and (h.ttc_s or 9) <= 3 for h in a.hazards)
    ]
    assert warned, "the kerb down was not warned"
    assert summary.deadline_t_s is not None and scene.t(warned[0]) <= summary.deadline_t_s, (
        warned[0],
        summary,
    )
    # and it stays warned: its stone reads flat like paint, so the veto must not silence it once read
    since = len(runs) - warned[0]
    assert len(warned) >= 0.9 * since, f"warned in {len(warned)} of the {since} frames since the first"
    # With the veto on while the phone sends its tilt (PathConfig.flat_veto_with_tilt) and the suite's
    # sensor (within 1 degree), or one 2 degrees low. One 2 degrees high silenced it 0.3 s after its first
    # warning: that is why the veto is off.
    for bias in (None, -2.0):
        tilted, tilt_levels = bands_read(scene, flat_veto=False, tilt=True, with_tilt=True, bias_deg=bias)
        assert [b for rs in tilt_levels.values() for b, _ in rs if math.isfinite(b)], "no band was read"
        warned = [
            k
            for k, a in enumerate(tilted)
            if any(h.kind == "kerb" and (h.ttc_s or 9) <= 3 for h in a.hazards)
        ]
        assert warned and scene.t(warned[0]) <= summary.deadline_t_s, (bias, warned[:1], summary)
        assert len(warned) >= 0.9 * (len(tilted) - warned[0]), bias


def test_the_lean_median_is_numpys_to_the_bit() -> None:
    """`_median` stands in for np.median on the path stage's small arrays (rows of a search, the reference
    strip's cells): the same value to the last bit, odd and even counts, either axis."""
    rng = np.random.default_rng(2)
    for shape in [(17, 64), (17, 63), (2, 1), (1, 2), (120, 3), (9, 9)]:
        a = rng.normal(size=shape) * 10.0 ** float(rng.integers(-3, 3))
        for axis in (0, 1):
            assert np.array_equal(_median(a, axis), np.median(a, axis=axis)), (shape, axis)
