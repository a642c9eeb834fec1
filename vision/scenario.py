"""Generated partner-walk test scenes with exact ground truth: spec, renderer and truth builder.

A scenario spec (JSON, described in docs/scenarios.md) sets a backward walker filmed by a partner who
walks forwards with a phone, obstacles at known positions and speeds, a ground texture, lighting changes
and camera shake. `render` writes `clip.mp4` (H.264, yuv420p) and `truth.json`: per frame, each
obstacle's distance behind the walker, time to contact and visible share, the share of the walker's
corridor the camera really sees, the camera pose, and the warnings a perfect system would give.

World frame, metres: X to the camera's right (the walker's LEFT, since the walker faces the camera),
Y up, Z away from the camera along the path; the ground is Y = 0. Camera frame: OpenCV's (x right,
y down, z forward), pixel centres at integer coordinates.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing
import shutil
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, fields, is_dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import IO, Any, Union, get_args, get_origin, get_type_hints

import cv2
import numpy as np
import numpy.typing as npt

from vision.sensors import scene_sensor_log, sensors_path_for
from vision.types import L_TOE, R_TOE, Pose, Side, Tier

SENSORS_NAME = sensors_path_for(Path("clip.mp4")).name  # the tilt log written beside each clip

logger = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]
I16 = npt.NDArray[np.int16]

TRUTH_FORMAT = "rearguard-scenario-truth/1"
DEFAULT_CLIPS_DIR = Path(__file__).resolve().parents[2] / "shared" / "clips"
WALKER_CLIP = "squats_facing_camera.mp4"
# Standing frames of WALKER_CLIP (5 fps): consecutive ones, so alternating them looks like a body at rest
# rather than a jump cut. The passer-by ("person") uses other standing frames, mirrored and recoloured.
WALKER_FRAMES = (44, 45, 46, 47)
PERSON_FRAMES = (20, 21, 22, 23, 24)
SPRITE_MAX_HEIGHT_PX = 560  # cut-outs are stored at this height; a walker at 1.5 m in 360x640 is ~550 px

HEEL_BACK_M = 0.10  # the heels are this far behind the plane the walker's cut-out is pasted at
CENTRE_BAND_M = 0.10  # an obstacle whose extent reaches within this of the centreline is "centre"
TIER_TTC_S: tuple[tuple[Tier, float], ...] = (("stop", 1.0), ("urgent", 1.5), ("advisory", 3.0))
TIER_RANK: dict[str, int] = {"advisory": 0, "urgent": 1, "stop": 2}
WARNING_LEAD_S = 2.0  # a warning is "in time" if it comes at least this long before contact
CELL_M = 0.10  # corridor coverage grid

KINDS = (
    "pole",
    "bin",
    "bench",
    "wall",
    "car",
    "kerb_up",
    "kerb_down",
    "step",
    "hole",
    "person",
    "cyclist",
    "dog",
)
GROUND_KINDS = frozenset({"kerb_up", "kerb_down", "step", "hole"})
# Kinds that may move, with the highest speed the spec accepts (m/s).
MAX_SPEED_MPS = {"person": 3.0, "dog": 8.0, "cyclist": 10.0}
HAZARD_KIND = {
    "person": "person",
    "cyclist": "cyclist",
    "dog": "dog",
    "car": "vehicle",
    "kerb_up": "kerb",
    "kerb_down": "kerb",
    "step": "kerb",
    "hole": "hole",
}
# Default size per kind: width (across its heading, X for heading 0), depth (along it), height (m).
# For kerbs and steps, depth is how far the raised or lowered level runs on; height is the step in level
# (signed for a step: negative is a step down); for a hole, height is how deep it is.
KIND_SIZE: dict[str, tuple[float, float, float]] = {
    "pole": (0.10, 0.10, 2.8),
    "bin": (0.58, 0.74, 1.07),
    "bench": (1.6, 0.5, 0.85),
    "wall": (3.0, 0.25, 1.4),
    "car": (1.8, 4.3, 1.45),
    "kerb_up": (6.0, 40.0, 0.12),
    "kerb_down": (6.0, 40.0, 0.12),
    "step": (4.0, 40.0, 0.17),
    "hole": (0.6, 0.6, 0.3),
    "person": (0.5, 0.3, 1.7),
    "cyclist": (0.6, 1.75, 1.7),
    "dog": (0.3, 0.8, 0.6),
}
HEIGHT_BOUNDS: dict[str, tuple[float, float]] = {
    "kerb_up": (0.03, 0.3),
    "kerb_down": (0.03, 0.3),
    "step": (-0.3, 0.3),
    "hole": (0.05, 1.5),
    "person": (0.9, 2.1),
    "dog": (0.2, 1.0),
}
TEXTURES = ("asphalt", "concrete", "grass", "paving", "gravel", "smooth")
TOP_TEXTURE = {"kerb_up": "concrete", "kerb_down": "asphalt", "hole": "gravel"}
TEXEL_M = 0.01
TEXTURE_SIZE = 2048  # texels: a 20.48 m tile at 1 cm

LABEL_SKY, LABEL_GROUND, LABEL_WALKER, LABEL_OBSTACLE0 = 0, 1, 2, 10
SOIL = np.array([0.17, 0.21, 0.26], np.float32)  # tint of a hole's floor and sides (BGR): brown earth


class SpecError(ValueError):
    """A scenario spec is invalid, naming the field: "obstacles[2].speed_mps: expected 0..3, got 7"."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}" if where else problem)
        self.where, self.problem = where, problem

    def within(self, prefix: str) -> SpecError:
        return SpecError(f"{prefix}.{self.where}" if self.where else prefix, self.problem)


class ScenarioError(RuntimeError):
    """A valid spec could not be rendered (missing walker footage, no ffmpeg, ffmpeg failed)."""


def _num(x: float) -> str:
    return f"{x:g}"


def _check(name: str, value: float, lo: float, hi: float) -> None:
    if not (math.isfinite(value) and lo <= value <= hi):
        raise SpecError(name, f"expected {_num(lo)}..{_num(hi)}, got {_num(value)}")


# --------------------------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class WalkerSpec:
    """The backward walker: walks along +Z at `speed_mps`, facing the camera."""

    speed_mps: float = 0.6
    height_m: float = 1.75

    def __post_init__(self) -> None:
        _check("speed_mps", self.speed_mps, 0.0, 2.0)
        _check("height_m", self.height_m, 1.4, 2.0)


@dataclass(frozen=True)
class CameraSpec:
    """The partner's phone. `distance_m` is along Z from the camera to the walker's body plane;
    `partner_offset_m` is the camera's X (+ is the walker's left); `pitch_deg` None frames the walker
    head to toe; shake and breathing amplitudes are peak values."""

    distance_m: float = 2.0
    height_m: float = 1.4
    partner_offset_m: float = 0.0
    fov_long_side_deg: float = 65.0
    pitch_deg: float | None = None
    shake_deg: float = 0.0
    shake_m: float = 0.0
    breathing_m: float = 0.0
    breathing_period_s: float = 4.0

    def __post_init__(self) -> None:
        _check("distance_m", self.distance_m, 1.0, 6.0)
        _check("height_m", self.height_m, 0.8, 2.2)
        _check("partner_offset_m", self.partner_offset_m, -2.5, 2.5)
        _check("fov_long_side_deg", self.fov_long_side_deg, 40.0, 100.0)
        if self.pitch_deg is not None:
            _check("pitch_deg", self.pitch_deg, -60.0, 20.0)
        _check("shake_deg", self.shake_deg, 0.0, 5.0)
        _check("shake_m", self.shake_m, 0.0, 0.1)
        _check("breathing_m", self.breathing_m, 0.0, 0.5)
        _check("breathing_period_s", self.breathing_period_s, 1.0, 20.0)


# Paint on the ground (BGR): road markings (yellow is also a step's nosing), and a dark patch (a drain
# cover, a wet or oily stain).
MARKING_PAINT = {"white": (212, 218, 222), "yellow": (40, 190, 225), "dark": (58, 60, 64)}


def _paint(
    colour: npt.NDArray[np.float32], idx: npt.NDArray[np.intp], bgr: tuple[int, int, int], grain_share: float
) -> None:
    """Paint the surface points `idx` of `colour` in `bgr`, keeping `grain_share` of the surface's grain (its
    brightness over 128): kerb stones, nosings and road markings. Light and shadow come after, as on the
    ground."""
    if len(idx):
        grain = colour[idx].mean(axis=1, keepdims=True) / 128.0
        colour[idx] = np.array(bgr, np.float32) * ((1 - grain_share) + grain_share * grain)


@dataclass(frozen=True)
class MarkingSpec:
    """Flat paint on the ground, fixed in the world: a rectangle from `distance_m` behind the walker's heels
    at t = 0, `depth_m` along Z, `width_m` across, centred on `lateral_m`. Not a hazard: nothing stands up."""

    distance_m: float
    lateral_m: float = 0.0
    width_m: float = 3.0
    depth_m: float = 0.1
    paint: str = "white"

    def __post_init__(self) -> None:
        _check("distance_m", self.distance_m, -20.0, 100.0)
        _check("lateral_m", self.lateral_m, -10.0, 10.0)
        _check("width_m", self.width_m, 0.05, 20.0)
        _check("depth_m", self.depth_m, 0.05, 50.0)
        if self.paint not in MARKING_PAINT:
            raise SpecError("paint", f"expected one of {', '.join(MARKING_PAINT)}, got {self.paint!r}")


@dataclass(frozen=True)
class GroundSpec:
    texture: str = "asphalt"
    texture_scale: float = 1.0  # > 1 makes the pattern coarser
    markings: tuple[MarkingSpec, ...] = ()

    def __post_init__(self) -> None:
        if self.texture not in TEXTURES:
            raise SpecError("texture", f"expected one of {', '.join(TEXTURES)}, got {self.texture!r}")
        _check("texture_scale", self.texture_scale, 0.25, 4.0)


@dataclass(frozen=True)
class CloudSpec:
    """A cloud passing the sun: sunlight falls by `dim` (share) at the middle of the interval, smoothly."""

    start_s: float
    duration_s: float = 3.0
    dim: float = 0.8

    def __post_init__(self) -> None:
        _check("start_s", self.start_s, 0.0, 600.0)
        _check("duration_s", self.duration_s, 0.2, 60.0)
        _check("dim", self.dim, 0.0, 1.0)


@dataclass(frozen=True)
class ShadowBandSpec:
    """A shadow across the whole path (a building or a tree out of view), fixed in the world: it starts
    `distance_m` behind the walker's heels at t = 0 and runs `length_m` along Z."""

    distance_m: float
    length_m: float = 2.0
    darkness: float = 0.5

    def __post_init__(self) -> None:
        _check("distance_m", self.distance_m, -20.0, 100.0)
        _check("length_m", self.length_m, 0.1, 50.0)
        _check("darkness", self.darkness, 0.0, 0.9)


@dataclass(frozen=True)
class LightingSpec:
    """`sun_azimuth_deg`: 0 puts the sun ahead of the walker (+Z, the camera looks into it), 90 on the
    walker's left (+X), 180 behind the camera. `sun_strength`: the sun's share of the light (0 overcast)."""

    brightness: float = 1.0
    sun_azimuth_deg: float = 135.0
    sun_elevation_deg: float = 45.0
    sun_strength: float = 0.6
    clouds: tuple[CloudSpec, ...] = ()
    shadow_bands: tuple[ShadowBandSpec, ...] = ()

    def __post_init__(self) -> None:
        _check("brightness", self.brightness, 0.3, 1.6)
        _check("sun_azimuth_deg", self.sun_azimuth_deg, -180.0, 360.0)
        _check("sun_elevation_deg", self.sun_elevation_deg, 5.0, 90.0)
        _check("sun_strength", self.sun_strength, 0.0, 1.0)


@dataclass(frozen=True)
class CorridorSpec:
    """The walker's path: from the heels back `length_m`, `shoulder_width_m + 2 * margin_m` wide."""

    length_m: float = 3.0
    shoulder_width_m: float = 0.45
    margin_m: float = 0.15

    def __post_init__(self) -> None:
        _check("length_m", self.length_m, 0.5, 10.0)
        _check("shoulder_width_m", self.shoulder_width_m, 0.3, 0.7)
        _check("margin_m", self.margin_m, 0.0, 0.5)

    @property
    def width_m(self) -> float:
        return self.shoulder_width_m + 2 * self.margin_m


@dataclass(frozen=True)
class ObstacleSpec:
    """One obstacle. `distance_m`: from the walker's heels to its nearest face along Z at t = 0;
    `lateral_m`: X of its centre (+ is the walker's left). Sizes left out (NaN) take the kind's default.
    Moving kinds go at `speed_mps` along `heading_deg` (0 towards the walker, i.e. -Z; 90 towards the
    walker's left, +X; 180 away) between `move_from_s` and `move_until_s`."""

    id: str
    kind: str
    distance_m: float
    lateral_m: float = 0.0
    width_m: float = math.nan
    depth_m: float = math.nan
    height_m: float = math.nan
    speed_mps: float = 0.0
    heading_deg: float = 0.0
    move_from_s: float = 0.0
    move_until_s: float | None = None
    top_texture: str = ""
    variant: int = 0

    def __post_init__(self) -> None:
        if not self.id or not self.id.replace("_", "").replace("-", "").isalnum():
            raise SpecError("id", f"expected letters, digits, '-' or '_', got {self.id!r}")
        if self.kind not in KINDS:
            raise SpecError("kind", f"expected one of {', '.join(KINDS)}, got {self.kind!r}")
        w, d, h = KIND_SIZE[self.kind]
        for name, default in (("width_m", w), ("depth_m", d), ("height_m", h)):
            if math.isnan(getattr(self, name)):
                object.__setattr__(self, name, default)  # resolve the kind's default once, here
        if not self.top_texture and self.kind in GROUND_KINDS:
            object.__setattr__(self, "top_texture", TOP_TEXTURE.get(self.kind, ""))
        _check("distance_m", self.distance_m, -10.0, 80.0)
        _check("lateral_m", self.lateral_m, -10.0, 10.0)
        _check("width_m", self.width_m, 0.04, 20.0)
        _check("depth_m", self.depth_m, 0.04, 60.0)
        _check("height_m", self.height_m, *HEIGHT_BOUNDS.get(self.kind, (0.1, 4.0)))
        if self.kind == "step" and abs(self.height_m) < 0.03:
            raise SpecError(
                "height_m", f"a step changes level by 0.03..0.3 m up or down, got {_num(self.height_m)}"
            )
        max_speed = MAX_SPEED_MPS.get(self.kind)
        if max_speed is None and self.speed_mps != 0:
            raise SpecError("speed_mps", f"a {self.kind} cannot move; expected 0, got {_num(self.speed_mps)}")
        _check("speed_mps", self.speed_mps, 0.0, max_speed or 0.0)
        _check("heading_deg", self.heading_deg, -360.0, 360.0)
        if self.kind in GROUND_KINDS and self.heading_deg != 0:
            raise SpecError(
                "heading_deg", f"a {self.kind} runs across the path; expected 0, got {_num(self.heading_deg)}"
            )
        _check("move_from_s", self.move_from_s, 0.0, 600.0)
        if self.move_until_s is not None:
            _check("move_until_s", self.move_until_s, self.move_from_s, 600.0)
        if self.top_texture and self.top_texture not in TEXTURES:
            raise SpecError("top_texture", f"expected one of {', '.join(TEXTURES)}, got {self.top_texture!r}")
        if self.top_texture and self.kind not in GROUND_KINDS:
            raise SpecError("top_texture", f"only kerbs, steps and holes have one, not a {self.kind}")
        _check("variant", self.variant, 0, 99)

    @property
    def hazard_kind(self) -> str:
        return HAZARD_KIND.get(self.kind, "obstacle")


@dataclass(frozen=True)
class ScenarioSpec:
    """A whole scene. `control` marks a clear-path control: a perfect system stays silent in it."""

    name: str = "scenario"
    description: str = ""
    control: bool = False
    duration_s: float = 8.0
    fps: float = 15.0
    resolution_wh: tuple[int, int] = (360, 640)
    seed: int = 0
    walker: WalkerSpec = WalkerSpec()
    camera: CameraSpec = CameraSpec()
    ground: GroundSpec = GroundSpec()
    lighting: LightingSpec = LightingSpec()
    corridor: CorridorSpec = CorridorSpec()
    obstacles: tuple[ObstacleSpec, ...] = ()

    def __post_init__(self) -> None:
        _check("duration_s", self.duration_s, 0.2, 120.0)
        _check("fps", self.fps, 1.0, 60.0)
        w, h = self.resolution_wh
        for name, v in (("width", w), ("height", h)):
            if not 64 <= v <= 1920:
                raise SpecError("resolution_wh", f"{name} expected 64..1920, got {v}")
        if w % 2 or h % 2:
            raise SpecError("resolution_wh", f"expected even sizes (H.264 yuv420p), got {w}x{h}")
        if not 2 <= self.frame_count <= 3600:
            raise SpecError(
                "duration_s", f"expected 2..3600 frames at {_num(self.fps)} fps, got {self.frame_count}"
            )
        _check("seed", self.seed, 0, 2**31 - 1)
        seen: set[str] = set()
        for i, o in enumerate(self.obstacles):
            if o.id in seen:
                raise SpecError(f"obstacles[{i}].id", f"duplicate id {o.id!r}")
            seen.add(o.id)
        if self.camera.pitch_deg is None:
            need, have = walker_view_deg(self), vertical_fov_deg(self)
            if need > have:
                raise SpecError(
                    "camera.distance_m",
                    f"the walker head to toe needs {need:.0f} deg of vertical view at "
                    f"{_num(self.camera.distance_m)} m "
                    f"but a {w}x{h} frame has {have:.0f} deg; use a portrait frame or a larger distance",
                )

    @property
    def frame_count(self) -> int:
        return round(self.duration_s * self.fps)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = _jsonable(asdict(self))
        return out


def vertical_fov_deg(spec: ScenarioSpec) -> float:
    intr = Intrinsics.for_frame(spec.resolution_wh, spec.camera.fov_long_side_deg)
    return math.degrees(2 * math.atan((intr.height / 2) / intr.fy))


def _walker_angles(spec: ScenarioSpec) -> tuple[float, float]:
    """Elevation (radians) of the walker's head top (+5 cm) and feet, seen from the nominal camera."""
    cam = spec.camera
    dist = math.hypot(cam.distance_m, cam.partner_offset_m)
    return math.atan2(spec.walker.height_m + 0.05 - cam.height_m, dist), -math.atan2(cam.height_m, dist)


def walker_view_deg(spec: ScenarioSpec) -> float:
    head, feet = _walker_angles(spec)
    return math.degrees(head - feet) + 4.0  # 2 degrees of margin above and below


def auto_pitch_deg(spec: ScenarioSpec) -> float:
    """The pitch that centres the walker head to toe vertically: a few degrees down."""
    head, feet = _walker_angles(spec)
    return math.degrees((head + feet) / 2)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _convert(tp: Any, value: Any, where: str) -> Any:
    """A JSON value as the field type `tp` (float, int, str, bool, X | None, tuples, spec dataclasses)."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in get_args(tp):
            return None
        (inner,) = [a for a in get_args(tp) if a is not type(None)]
        return _convert(inner, value, where)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SpecError(where, f"expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(where, f"expected a whole number, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise SpecError(where, f"expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise SpecError(where, f"expected a string, got {value!r}")
        return value
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(value, list):
            raise SpecError(where, f"expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise SpecError(where, f"expected {len(args)} values, got {len(value)}")
        return tuple(
            _convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True))
        )
    if isinstance(tp, type) and is_dataclass(tp):
        return _build(tp, value, where)
    raise TypeError(f"unsupported spec field type {tp!r}")  # a programming error, not a spec error


def _build(cls: type[Any], data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise SpecError(where, f"expected an object, got {data!r}")
    hints = get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        sub = f"{where}.{key}" if where else key
        if key not in known:
            raise SpecError(sub, f"unknown field (expected one of {', '.join(known)})")
        kwargs[key] = _convert(hints[key], value, sub)
    for f in known.values():
        if f.name not in kwargs and f.default is f.default_factory:  # both MISSING: a required field
            raise SpecError(f"{where}.{f.name}" if where else f.name, "required")
    try:
        return cls(**kwargs)
    except SpecError as exc:
        raise (exc.within(where) if where else exc) from None


def parse_spec(data: Mapping[str, Any], name: str | None = None) -> ScenarioSpec:
    """A validated spec from JSON data; `name` (the file stem) is the default for the `name` field."""
    if not isinstance(data, Mapping):
        raise SpecError("", "a spec is a JSON object ({...})")
    payload = dict(data)
    if name is not None:
        payload.setdefault("name", name)
    spec = _build(ScenarioSpec, payload, "")
    assert isinstance(spec, ScenarioSpec)
    return spec


def load_spec(path: Path) -> ScenarioSpec:
    """Read and validate a JSON spec. Errors are SpecErrors that start with the file's path."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(str(path), f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SpecError(str(path), "not UTF-8 text") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(
            str(path), f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    try:
        return parse_spec(data, path.stem)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc.where}" if exc.where else str(path), exc.problem) from None


# ------------------------------------------------------------------------------------------ camera


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole camera; the field of view spans the frame's long side, as on a phone held either way."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def for_frame(cls, resolution_wh: tuple[int, int], fov_long_side_deg: float) -> Intrinsics:
        w, h = resolution_wh
        f = (max(w, h) / 2) / math.tan(math.radians(fov_long_side_deg) / 2)
        return cls(w, h, f, f, (w - 1) / 2, (h - 1) / 2)

    def matrix(self) -> F64:
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1]], np.float64)


def rotation_world_to_camera(yaw_deg: float, pitch_deg: float, roll_deg: float) -> F64:
    """Rows: the camera's x (right), y (down) and z (forward) axes in world coordinates. Yaw turns
    towards +X, pitch up is positive, roll turns about the optical axis. det = -1: the world axes
    (X right, Y up, Z ahead) are a left-handed set, the camera's a right-handed one."""
    y, p, r = (math.radians(a) for a in (yaw_deg, pitch_deg, roll_deg))
    fwd = np.array([math.sin(y) * math.cos(p), math.sin(p), math.cos(y) * math.cos(p)])
    right = np.array([math.cos(y), 0.0, -math.sin(y)])
    down = np.cross(right, fwd)
    right, down = math.cos(r) * right + math.sin(r) * down, -math.sin(r) * right + math.cos(r) * down
    rot: F64 = np.stack([right, down, fwd]).astype(np.float64)
    return rot


@dataclass(frozen=True)
class CameraPose:
    """`position_m` (3,) world; `rotation` (3, 3) world to camera: p_cam = rotation @ (P - position_m)."""

    position_m: F64
    rotation: F64
    yaw_deg: float
    pitch_deg: float
    roll_deg: float

    @classmethod
    def look(
        cls, position_m: Sequence[float], yaw_deg: float, pitch_deg: float, roll_deg: float = 0.0
    ) -> CameraPose:
        return cls(
            np.asarray(position_m, np.float64),
            rotation_world_to_camera(yaw_deg, pitch_deg, roll_deg),
            yaw_deg,
            pitch_deg,
            roll_deg,
        )

    def to_camera(self, points_m: F64) -> F64:
        """(n, 3) world points in camera coordinates."""
        return (np.asarray(points_m, np.float64).reshape(-1, 3) - self.position_m) @ self.rotation.T

    def to_json(self) -> dict[str, Any]:
        return {
            "position_m": [round(float(v), 4) for v in self.position_m],
            "yaw_deg": round(self.yaw_deg, 3),
            "pitch_deg": round(self.pitch_deg, 3),
            "roll_deg": round(self.roll_deg, 3),
            "rotation": [[round(float(v), 6) for v in row] for row in self.rotation],
        }


def project(points_m: F64, pose: CameraPose, intr: Intrinsics) -> tuple[F64, F64]:
    """Pixel coordinates (n, 2) of world points (n, 3), and their camera depth z (n,): z > 0 is in front."""
    cam = pose.to_camera(points_m)
    z = cam[:, 2]
    safe = np.where(np.abs(z) < 1e-9, 1e-9, z)
    uv = np.column_stack([intr.fx * cam[:, 0] / safe + intr.cx, intr.fy * cam[:, 1] / safe + intr.cy])
    return uv, z


def stepping_pose(
    pose: Pose,
    camera: Mapping[str, Any],
    fy: float,
    cy: float,
    height_px: int,
    heel_z_m: float,
    walked_m: float,
    step_m: float,
) -> Pose:
    """`pose` of the gliding rendered walker as if they stepped: the lower toe is the planted foot, which
    stays on the ground while the body moves on, so its row is that of a ground point falling behind the
    toes by up to a step (`walked_m` modulo `step_m`), then jumping back as the other foot takes over; the
    other toe is lifted (a swing). `camera` is a truth frame's camera (`rotation`, `position_m`)."""
    rot, pos = np.asarray(camera["rotation"], np.float64), np.asarray(camera["position_m"], np.float64)

    def row(z: float) -> float:
        p = rot @ (np.array([0.0, 0.0, z]) - pos)
        return float(fy * p[1] / p[2] + cy)

    toe_z = heel_z_m - HEEL_BACK_M  # the body plane, where the cut-out's toes stand
    behind = -(walked_m % step_m)  # the planted foot falls towards the camera, then hands over
    shift = (row(toe_z + behind) - row(toe_z)) / height_px
    xy = pose.xy.copy()
    lower = float(max(xy[L_TOE, 1], xy[R_TOE, 1]))
    planted, swinging = (L_TOE, R_TOE) if xy[L_TOE, 1] >= xy[R_TOE, 1] else (R_TOE, L_TOE)
    xy[planted, 1] = lower + shift
    xy[swinging, 1] = lower + shift - 0.02
    return Pose(xy=xy, visibility=pose.visibility.copy())


# -------------------------------------------------------------------------------------- kinematics


@dataclass(frozen=True)
class ObstacleState:
    """Where an obstacle is at one instant: its footprint's world box and velocity."""

    x_min: float
    x_max: float
    z_min: float
    z_max: float
    vx_mps: float
    vz_mps: float
    travelled_m: float

    @property
    def x_m(self) -> float:
        return (self.x_min + self.x_max) / 2

    @property
    def z_m(self) -> float:
        return (self.z_min + self.z_max) / 2


def _heading_vectors(heading_deg: float) -> tuple[F64, F64]:
    """(side, forward) unit vectors in the world for a heading (0: towards the walker, -Z)."""
    h = math.radians(heading_deg)
    fwd = np.array([math.sin(h), 0.0, -math.cos(h)])
    side = np.array([math.cos(h), 0.0, math.sin(h)])
    return side, fwd


def _half_extents(o: ObstacleSpec) -> tuple[float, float]:
    """Half-extents in X and Z of the footprint turned to its heading."""
    if o.kind == "person":
        return o.width_m / 2, o.depth_m / 2  # a cut-out always faces the camera
    h = math.radians(o.heading_deg)
    c, s = abs(math.cos(h)), abs(math.sin(h))
    return c * o.width_m / 2 + s * o.depth_m / 2, s * o.width_m / 2 + c * o.depth_m / 2


class Scene:
    """The scene's kinematics, a pure function of time: walker, camera and obstacles."""

    def __init__(self, spec: ScenarioSpec) -> None:
        self.spec = spec
        self.intr = Intrinsics.for_frame(spec.resolution_wh, spec.camera.fov_long_side_deg)
        self.pitch_deg = spec.camera.pitch_deg if spec.camera.pitch_deg is not None else auto_pitch_deg(spec)
        rng = np.random.default_rng([spec.seed, 1])
        # Shake: per axis (yaw, pitch, roll, x, y, z) three smooth sinusoids; the second is the partner's
        # step rhythm (about 1.8 Hz), the others slower sway and faster hand tremor.
        step_hz = 1.6 + 0.3 * spec.walker.speed_mps
        self._shake_hz = np.column_stack(
            [rng.uniform(0.2, 0.8, 6), step_hz * rng.uniform(0.95, 1.05, 6), rng.uniform(2.5, 5.0, 6)]
        )
        self._shake_phase = rng.uniform(0, 2 * math.pi, (6, 3))
        weights = np.array([0.45, 0.4, 0.15])
        self._shake_weight = np.tile(weights, (6, 1))
        self._breath_phase = float(rng.uniform(0, 2 * math.pi))
        self.heel_z0 = self.walker_z(0.0) + HEEL_BACK_M
        self.obstacles = spec.obstacles

    @property
    def times_s(self) -> F64:
        return np.arange(self.spec.frame_count, dtype=np.float64) / self.spec.fps

    def walker_z(self, t: float) -> float:
        """Z of the walker's body plane (where the cut-out stands); the heels are HEEL_BACK_M further."""
        return self.spec.walker.speed_mps * t

    def heel_z(self, t: float) -> float:
        return self.walker_z(t) + HEEL_BACK_M

    def camera_distance(self, t: float) -> float:
        cam = self.spec.camera
        period = cam.breathing_period_s
        return cam.distance_m + cam.breathing_m * math.sin(2 * math.pi * t / period + self._breath_phase)

    def shake(self, t: float) -> F64:
        """(6,): yaw, pitch, roll offsets (deg) and x, y, z offsets (m), peak-bounded by the spec."""
        cam = self.spec.camera
        wave = np.sin(2 * math.pi * self._shake_hz * t + self._shake_phase)
        unit = (wave * self._shake_weight).sum(axis=1)
        amp = np.array(
            [cam.shake_deg, cam.shake_deg, 0.5 * cam.shake_deg, cam.shake_m, cam.shake_m, cam.shake_m]
        )
        return np.asarray(unit * amp, np.float64)

    def camera_pose(self, t: float) -> CameraPose:
        """The partner's phone at time t: D in front of the walker, aimed at the walker (yaw), the
        spec's or the automatic pitch, plus shake."""
        cam = self.spec.camera
        dist = self.camera_distance(t)
        s = self.shake(t)
        pos = (cam.partner_offset_m + s[3], cam.height_m + s[4], self.walker_z(t) - dist + s[5])
        yaw = math.degrees(math.atan2(-cam.partner_offset_m, dist))
        return CameraPose.look(pos, yaw + s[0], self.pitch_deg + s[1], s[2])

    def obstacle_state(self, o: ObstacleSpec, t: float) -> ObstacleState:
        hx, hz = _half_extents(o)
        if o.kind in GROUND_KINDS:
            z0 = self.heel_z0 + o.distance_m
            return ObstacleState(
                o.lateral_m - o.width_m / 2, o.lateral_m + o.width_m / 2, z0, z0 + o.depth_m, 0, 0, 0
            )
        until = math.inf if o.move_until_s is None else o.move_until_s
        moved = o.speed_mps * max(0.0, min(t, until) - o.move_from_s)
        moving = o.move_from_s <= t < until and o.speed_mps > 0
        _, fwd = _heading_vectors(o.heading_deg)
        x = o.lateral_m + moved * float(fwd[0])
        z = self.heel_z0 + o.distance_m + hz + moved * float(fwd[2])
        vx, vz = (o.speed_mps * fwd[0], o.speed_mps * fwd[2]) if moving else (0.0, 0.0)
        return ObstacleState(x - hx, x + hx, z - hz, z + hz, float(vx), float(vz), moved)

    def ground_height(self, x: float, z: float) -> float:
        """Height of the ground at (x, z): kerbs and steps raise or lower it, holes sink it."""
        for o in self.obstacles:
            if o.kind in GROUND_KINDS:
                st = self.obstacle_state(o, 0.0)
                if st.x_min <= x <= st.x_max and st.z_min <= z <= st.z_max:
                    return _feature_level(o)
        return 0.0


def _feature_level(o: ObstacleSpec) -> float:
    """The ground level inside a ground feature's region, relative to the surrounding ground."""
    if o.kind == "kerb_up":
        return o.height_m
    if o.kind in ("kerb_down", "hole"):
        return -o.height_m
    return o.height_m  # step: signed


# ------------------------------------------------------------------------------------------- truth


@dataclass(frozen=True)
class ObstacleFrame:
    """One obstacle at one frame, as a perfect system would know it."""

    id: str
    distance_m: float  # heels to the nearest face along Z; negative once passed
    lateral_m: float
    side: Side
    closing_speed_mps: float  # walker speed minus the obstacle's Z velocity
    ttc_s: float | None  # distance / closing speed, when closing and in the corridor
    in_corridor: bool
    visible_fraction: float | None = None  # filled in by the renderer

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "distance_m": round(self.distance_m, 4),
            "lateral_m": round(self.lateral_m, 4),
            "side": self.side,
            "closing_speed_mps": round(self.closing_speed_mps, 4),
            "ttc_s": None if self.ttc_s is None else round(self.ttc_s, 4),
            "in_corridor": self.in_corridor,
            "visible_fraction": None if self.visible_fraction is None else round(self.visible_fraction, 4),
        }


@dataclass(frozen=True)
class ExpectedEvent:
    """A warning a perfect system gives, in the shape of timeline.json's events."""

    t_s: float
    tier: Tier
    kind: str
    side: Side
    distance_m: float
    ttc_s: float
    obstacle_id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "t": round(self.t_s, 4),
            "tier": self.tier,
            "kind": self.kind,
            "side": self.side,
            "distance_m": round(self.distance_m, 3),
            "ttc_s": round(self.ttc_s, 3),
            "obstacle_id": self.obstacle_id,
        }


@dataclass(frozen=True)
class ObstacleSummary:
    """Per obstacle: when each tier first applies, when contact comes and the 2 s-lead deadline."""

    id: str
    kind: str
    hazard_kind: str
    ever_in_corridor: bool
    advisory_t_s: float | None
    urgent_t_s: float | None
    stop_t_s: float | None
    contact_t_s: float | None
    contact_in_clip: bool
    deadline_t_s: float | None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}


@dataclass(frozen=True)
class Truth:
    """The kinematic truth of a spec: needs no rendering (coverage and visibility come from `Renderer`)."""

    times_s: tuple[float, ...]
    walker_z_m: tuple[float, ...]
    obstacles: tuple[tuple[ObstacleFrame, ...], ...]  # per frame, in spec order
    events: tuple[ExpectedEvent, ...]
    summaries: tuple[ObstacleSummary, ...]


def side_of(x_min: float, x_max: float) -> Side:
    """The side as the walker feels it: +X is the walker's left (the walker faces the camera)."""
    if x_min <= CENTRE_BAND_M and x_max >= -CENTRE_BAND_M:
        return "centre"
    return "left" if x_min + x_max > 0 else "right"


def tier_for(ttc_s: float | None) -> Tier | None:
    if ttc_s is None:
        return None
    ttc_s = round(ttc_s, 9)  # a TTC of exactly 3 s must not flip with floating-point noise
    for tier, limit in TIER_TTC_S:
        if (ttc_s < limit) if tier == "stop" else (ttc_s <= limit):
            return tier
    return None


def obstacle_frame(scene: Scene, o: ObstacleSpec, t: float) -> ObstacleFrame:
    st = scene.obstacle_state(o, t)
    half = scene.spec.corridor.width_m / 2
    distance = st.z_min - scene.heel_z(t)
    closing = scene.spec.walker.speed_mps - st.vz_mps
    in_corridor = bool(st.x_max > -half and st.x_min < half)
    ttc = distance / closing if in_corridor and closing > 1e-9 and distance >= 0 else None
    return ObstacleFrame(o.id, distance, st.x_m, side_of(st.x_min, st.x_max), closing, ttc, in_corridor)


def build_truth(spec: ScenarioSpec) -> Truth:
    """Distances, TTCs, the perfect warnings and per-obstacle summaries at every frame time."""
    scene = Scene(spec)
    times = [float(t) for t in scene.times_s]
    per_frame = tuple(tuple(obstacle_frame(scene, o, t) for o in spec.obstacles) for t in times)
    events: list[ExpectedEvent] = []
    summaries: list[ObstacleSummary] = []
    for i, o in enumerate(spec.obstacles):
        rank, first = -1, dict[str, float]()
        for t, frames in zip(times, per_frame, strict=True):
            f = frames[i]
            tier = tier_for(f.ttc_s)
            if tier is None or f.ttc_s is None:
                continue
            for name, _ in TIER_TTC_S:
                if TIER_RANK[name] <= TIER_RANK[tier]:
                    first.setdefault(name, t)
            if TIER_RANK[tier] > rank:  # tiers crossed between two frames: one event, the higher tier
                rank = TIER_RANK[tier]
                events.append(ExpectedEvent(t, tier, o.hazard_kind, f.side, f.distance_m, f.ttc_s, o.id))
        contact, in_clip = _contact_time(times, [frames[i] for frames in per_frame])
        summaries.append(
            ObstacleSummary(
                o.id,
                o.kind,
                o.hazard_kind,
                any(frames[i].in_corridor for frames in per_frame),
                first.get("advisory"),
                first.get("urgent"),
                first.get("stop"),
                contact,
                in_clip,
                None if contact is None else contact - WARNING_LEAD_S,
            )
        )
    events.sort(key=lambda e: (e.t_s, -TIER_RANK[e.tier], e.obstacle_id))
    walker_z = tuple(scene.walker_z(t) for t in times)
    return Truth(tuple(times), walker_z, per_frame, tuple(events), tuple(summaries))


def _contact_time(times: Sequence[float], frames: Sequence[ObstacleFrame]) -> tuple[float | None, bool]:
    """When the heels reach the obstacle while it is in the corridor (interpolated between frames); past
    the clip's end, extrapolated from the last frame when still closing. (time, within the clip)."""
    prev: ObstacleFrame | None = None
    for k, f in enumerate(frames):
        if f.in_corridor and f.distance_m <= 0:
            if prev is None or not prev.in_corridor or prev.distance_m <= 0:
                return times[k], True
            frac = prev.distance_m / (prev.distance_m - f.distance_m)
            return times[k - 1] + frac * (times[k] - times[k - 1]), True
        prev = f
    last = frames[-1] if frames else None
    if last is not None and last.ttc_s is not None:
        return times[-1] + last.ttc_s, False
    return None, False


# ------------------------------------------------------------------------------------ cut-out people


@dataclass(frozen=True)
class Sprite:
    """A person cut out of a real frame: `bgr` (h, w, 3) uint8, `alpha` (h, w) float32 in [0, 1]; the soles
    are at row `foot_row`, the body's centre at column `centre_col`; `height_px`: head top to soles."""

    bgr: U8
    alpha: F32
    foot_row: int
    centre_col: float
    height_px: int


def _read_frames(path: Path, indices: Sequence[int]) -> dict[int, U8]:
    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    out: dict[int, U8] = {}
    try:
        k = 0
        while len(out) < len(set(indices)):
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            if k in indices:
                out[k] = frame.astype(np.uint8, copy=False)
            k += 1
    finally:
        cap.release()
    missing = sorted(set(indices) - set(out))
    if missing:
        raise ScenarioError(f"{path}: frames {missing} could not be read (is it the original clip?)")
    return out


@lru_cache(maxsize=4)
def _cutouts(clip: Path, indices: tuple[int, ...]) -> tuple[Sprite, ...]:
    """Cut the person out of the given frames with MediaPipe's bundled selfie-segmentation model."""
    import mediapipe as mp

    frames = _read_frames(clip, indices)
    sprites: list[Sprite] = []
    seg = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
    try:
        for i in indices:
            bgr = frames[i]
            mask = np.asarray(seg.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).segmentation_mask, np.float32)
            # Soft but tight edge: the model's mask is already smooth; this sharpens its ramp a little and
            # pulls it inwards, and the edge pixels take the body's colour, not the studio wall's.
            alpha = np.clip((mask - 0.45) / 0.3, 0.0, 1.0).astype(np.float32)
            bgr = _decontaminated(bgr, alpha)
            ys, xs = np.nonzero(alpha >= 0.5)
            if len(ys) < 1000:
                raise ScenarioError(f"{clip}: no person found in frame {i} by selfie segmentation")
            y0, y1 = max(0, int(ys.min()) - 4), min(bgr.shape[0], int(ys.max()) + 5)
            x0, x1 = max(0, int(xs.min()) - 4), min(bgr.shape[1], int(xs.max()) + 5)
            sprites.append(
                Sprite(
                    bgr[y0:y1, x0:x1].copy(),
                    alpha[y0:y1, x0:x1].copy(),
                    int(ys.max()) - y0,
                    float(xs.mean()) - x0,
                    int(ys.max() - ys.min()) + 1,
                )
            )
    finally:
        seg.close()
    # Every chosen frame must show the person upright (each is then pasted at the spec's full height).
    tallest = max(s.height_px for s in sprites)
    scale = min(1.0, SPRITE_MAX_HEIGHT_PX / tallest)
    for s in sprites:
        if s.height_px < 0.93 * tallest:
            raise ScenarioError(
                f"{clip}: a chosen frame does not show the person standing (is it the original clip?)"
            )
    return tuple(_scaled(s, scale) for s in sprites)


def _decontaminated(bgr: U8, alpha: F32) -> U8:
    """Edge pixels get the colour of the body next to them (alpha-weighted blur), so a pasted cut-out has
    no halo of the background it was cut from."""
    core = (alpha >= 0.95).astype(np.float32)
    num = cv2.GaussianBlur(bgr.astype(np.float32) * core[..., None], (0, 0), 4.0)
    den = cv2.GaussianBlur(core, (0, 0), 4.0)[..., None]
    inner = num / np.maximum(den, 1e-4)
    out = np.where((alpha < 0.95)[..., None] & (den > 1e-3), inner, bgr.astype(np.float32))
    return np.clip(out, 0, 255).astype(np.uint8)


def _scaled(s: Sprite, scale: float) -> Sprite:
    if scale >= 1.0:
        return s
    size = (max(1, round(s.bgr.shape[1] * scale)), max(1, round(s.bgr.shape[0] * scale)))
    bgr = cv2.resize(s.bgr, size, interpolation=cv2.INTER_AREA).astype(np.uint8)
    alpha = cv2.resize(s.alpha, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    return Sprite(bgr, alpha, round(s.foot_row * scale), s.centre_col * scale, round(s.height_px * scale))


def _recoloured(s: Sprite, hue_shift: int, mirror: bool) -> Sprite:
    """Another person for the eye: strongly coloured clothes get another hue; optionally mirrored."""
    hsv = cv2.cvtColor(s.bgr, cv2.COLOR_BGR2HSV)
    vivid = (hsv[..., 1] > 120) & (hsv[..., 2] > 60)
    hue = hsv[..., 0].astype(np.int32)
    hsv[..., 0] = np.where(vivid, (hue + hue_shift) % 180, hue).astype(np.uint8)
    bgr = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR).astype(np.uint8)
    alpha = s.alpha
    centre = s.centre_col
    if mirror:
        bgr, alpha = bgr[:, ::-1].copy(), alpha[:, ::-1].copy()
        centre = bgr.shape[1] - 1 - centre
    return Sprite(bgr, alpha, s.foot_row, centre, s.height_px)


# ----------------------------------------------------------------------------------------- textures


def _tile_noise(rng: np.random.Generator, size: int, cells: int) -> F32:
    """Smooth noise that tiles seamlessly: `cells` random values per side, cubic-interpolated to `size`."""
    w = rng.standard_normal((cells, cells)).astype(np.float32)
    if cells >= size:
        return w
    step, pad = size // cells, 2
    big = cv2.resize(
        np.pad(w, pad, mode="wrap"), ((cells + 2 * pad) * step,) * 2, interpolation=cv2.INTER_CUBIC
    )
    out = big[pad * step : pad * step + size, pad * step : pad * step + size]
    return np.asarray(out / (out.std() + 1e-6), np.float32)


def _fbm(rng: np.random.Generator, size: int, octaves: Sequence[tuple[int, float]]) -> F32:
    out = np.zeros((size, size), np.float32)
    for cells, amp in octaves:
        out += amp * _tile_noise(rng, size, cells)
    return out


def _to_u8(img: npt.NDArray[Any]) -> U8:
    out: U8 = np.clip(img, 0, 255).astype(np.uint8)
    return out


def _colourise(lum: F32, base_bgr: Sequence[float]) -> U8:
    img = lum[..., None] * np.asarray(base_bgr, np.float32)[None, None, :]
    return _to_u8(img)


def _texture_image(name: str, seed: int) -> U8:
    """A seamless procedural ground texture, TEXTURE_SIZE square at TEXEL_M per texel, BGR."""
    n = TEXTURE_SIZE
    rng = np.random.default_rng([seed, TEXTURES.index(name), 7])
    if name == "asphalt":
        lum = 1 + _fbm(rng, n, [(8, 0.06), (64, 0.05), (512, 0.05), (2048, 0.09)])
        grit = _tile_noise(rng, n, 1024)
        lum += 0.35 * (grit > 2.0) - 0.25 * (grit < -2.3)
        return _colourise(lum, (80, 80, 84))
    if name == "concrete":
        ys, xs = np.indices((n, n))
        slab = 128  # 1.28 m slabs
        tone = rng.normal(0, 0.045, (n // slab, n // slab)).astype(np.float32)
        lum = 1 + tone[ys // slab, xs // slab] + _fbm(rng, n, [(16, 0.04), (128, 0.03), (2048, 0.05)])
        joint = ((xs % slab) < 2) | ((ys % slab) < 2)
        lum = np.where(joint, lum * 0.55, lum).astype(np.float32)
        return _colourise(lum, (158, 162, 165))
    if name == "smooth":  # a polished or freshly sealed floor (a clinic's): light varies over metres only
        lum = 1 + _fbm(rng, n, [(8, 0.05), (64, 0.015)])
        return _colourise(lum, (120, 124, 128))
    if name == "grass":
        lum = 1 + _fbm(rng, n, [(16, 0.12), (128, 0.08), (1024, 0.12), (2048, 0.18)])
        patch = _fbm(rng, n, [(8, 1.0), (32, 0.5)])
        dry = np.clip(0.5 + 0.35 * patch, 0, 1)[..., None]
        green = np.array([45, 115, 62], np.float32)
        straw = np.array([70, 125, 135], np.float32)
        img = lum[..., None] * (green * (1 - dry) + straw * dry)
        return _to_u8(img)
    if name == "paving":
        ys, xs = np.indices((n, n)).astype(np.float32)
        bh, bw = n / 200, n / 100  # 10.24 x 20.48 cm pavers, running bond
        row = np.floor(ys / bh).astype(np.int32)
        shifted = xs + (row % 2) * bw / 2
        col = np.floor(shifted / bw).astype(np.int32) % 100
        palette = np.array([[62, 82, 150], [70, 92, 160], [88, 100, 138], [110, 118, 135]], np.float32)
        pick = rng.integers(0, len(palette), (200, 100))
        tone = rng.normal(1.0, 0.06, (200, 100)).astype(np.float32)
        colour = palette[pick[row % 200, col]] * tone[row % 200, col][..., None]
        joint = ((ys - row * bh) < 1.0) | ((shifted - np.floor(shifted / bw) * bw) < 1.0)
        lum = 1 + _fbm(rng, n, [(32, 0.04), (2048, 0.06)])
        img = colour * lum[..., None]
        img[joint] = (95, 110, 118)
        return _to_u8(img)
    # gravel: many small stones of varied tone, each with a darker rim, on a darker bed
    lum = 1 + _fbm(rng, n, [(16, 0.05), (2048, 0.08)])
    img = _colourise(lum * 0.62, (112, 126, 136))
    count = n * n // 16
    xs_s, ys_s = rng.integers(0, n, count), rng.integers(0, n, count)
    radii = rng.integers(1, 4, count)
    tones = rng.normal(1.0, 0.09, count) * rng.choice([0.85, 1.0, 1.1], count)
    for x, y, r, tn in zip(xs_s.tolist(), ys_s.tolist(), radii.tolist(), tones.tolist(), strict=True):
        colour = (112 * tn, 128 * tn, 140 * tn)
        for dx in (0, -n, n) if (x < r or x >= n - r) else (0,):
            for dy in (0, -n, n) if (y < r or y >= n - r) else (0,):
                cv2.circle(img, (x + dx, y + dy), r, colour, -1, lineType=cv2.LINE_8)
    return img


@lru_cache(maxsize=20)
def _texture(name: str, seed: int) -> tuple[U8, ...]:
    """The texture's mip pyramid, full size first, each level half the last (box filter)."""
    levels = [_texture_image(name, seed)]
    while levels[-1].shape[0] > 8:
        half = levels[-1].shape[0] // 2
        levels.append(cv2.resize(levels[-1], (half, half), interpolation=cv2.INTER_AREA).astype(np.uint8))
    return tuple(levels)


def _remap_points(img: U8, u: F32, v: F32) -> F32:
    """Bilinear, wrapping samples of `img` at texel coordinates (n,). remap wants maps under 32767 rows."""
    n = len(u)
    if n == 0:
        return np.zeros((0, 3), np.float32)
    cols = 512
    rows = -(-n // cols)
    pad = rows * cols - n
    size = img.shape[0]
    mu = np.pad(np.mod(u, size), (0, pad)).reshape(rows, cols).astype(np.float32)
    mv = np.pad(np.mod(v, size), (0, pad)).reshape(rows, cols).astype(np.float32)
    out = cv2.remap(img, mu, mv, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
    return np.asarray(out.reshape(-1, 3)[:n], np.float32)


def sample_texture(pyramid: Sequence[U8], u_m: F32, v_m: F32, footprint_m: F32, texel_m: float) -> F32:
    """Trilinear samples (n, 3) of a texture laid on a surface at (u, v) metres, for screen pixels that
    each cover `footprint_m` of it: the mip level is picked so one texel is about one pixel."""
    level = np.clip(np.log2(np.maximum(footprint_m / texel_m, 1e-6)), 0, len(pyramid) - 1).astype(np.float32)
    lo = np.floor(level).astype(np.int32)
    frac = level - lo
    out = np.zeros((len(u_m), 3), np.float32)
    order = np.argsort(lo, kind="stable")
    bounds = np.searchsorted(lo[order], np.arange(len(pyramid) + 1))
    for lv in range(len(pyramid)):
        idx = order[bounds[lv] : bounds[lv + 1]]
        if len(idx) == 0:
            continue
        scale = 1.0 / (texel_m * 2**lv)
        uu, vv = u_m[idx] * np.float32(scale), v_m[idx] * np.float32(scale)
        a = _remap_points(pyramid[lv], uu, vv)
        if lv + 1 < len(pyramid):
            b = _remap_points(pyramid[lv + 1], uu * np.float32(0.5), vv * np.float32(0.5))
            a += (b - a) * frac[idx, None]
        out[idx] = a
    return out


# ------------------------------------------------------------------------------------------ geometry


@dataclass(frozen=True)
class Part:
    """A convex solid: `vertices` (n, 3) world, faces as vertex index tuples, a base colour (BGR)."""

    vertices: F64
    faces: tuple[tuple[int, ...], ...]
    colour_bgr: tuple[float, float, float]
    grain: float = 0.3  # how strongly a concrete-like surface texture shows (0 flat paint, 1 bare concrete)


GRAIN = {"wall": 1.0, "car": 0.08, "pole": 0.2, "bench": 0.5}
BOX_FACES = ((0, 1, 2, 3), (4, 5, 6, 7), (0, 1, 5, 4), (1, 2, 6, 5), (2, 3, 7, 6), (3, 0, 4, 7))


def box_part(
    origin: F64,
    side: F64,
    fwd: F64,
    a: tuple[float, float],
    y: tuple[float, float],
    b: tuple[float, float],
    colour: tuple[float, float, float],
) -> Part:
    """A box spanning a (along `side`), y (up) and b (along `fwd`) around `origin` (on the ground)."""
    up = np.array([0.0, 1.0, 0.0])
    corners = []
    for yy in y:
        for aa, bb in ((a[0], b[0]), (a[1], b[0]), (a[1], b[1]), (a[0], b[1])):
            corners.append(origin + aa * side + yy * up + bb * fwd)
    return Part(np.array(corners, np.float64), BOX_FACES, colour)


def cylinder_part(
    p0: F64, p1: F64, radius: float, colour: tuple[float, float, float], sides: int = 12
) -> Part:
    axis = p1 - p0
    axis = axis / np.linalg.norm(axis)
    helper = np.array([0.0, 1.0, 0.0]) if abs(axis[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    e1 = np.cross(axis, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(axis, e1)
    ang = np.linspace(0, 2 * math.pi, sides, endpoint=False)
    ring = np.cos(ang)[:, None] * e1 + np.sin(ang)[:, None] * e2
    verts = np.vstack([p0 + radius * ring, p1 + radius * ring])
    faces: list[tuple[int, ...]] = [
        (i, (i + 1) % sides, sides + (i + 1) % sides, sides + i) for i in range(sides)
    ]
    faces += [tuple(range(sides)), tuple(range(2 * sides - 1, sides - 1, -1))]
    return Part(verts, tuple(faces), colour)


def clip_polygon(poly: F64, normal: F64, offset: float) -> F64:
    """Sutherland-Hodgman: the part of polygon (k, d) where normal . p >= offset."""
    if len(poly) == 0:
        return poly
    out: list[F64] = []
    dist = poly @ normal - offset
    for i in range(len(poly)):
        j = (i + 1) % len(poly)
        if dist[i] >= 0:
            out.append(poly[i])
        if (dist[i] >= 0) != (dist[j] >= 0):
            s = dist[i] / (dist[i] - dist[j])
            out.append(poly[i] + s * (poly[j] - poly[i]))
    return np.array(out, np.float64).reshape(-1, poly.shape[1])


PALETTES: dict[str, tuple[tuple[float, float, float], ...]] = {
    "pole": ((120, 120, 118), (60, 70, 60), (150, 150, 150), (40, 40, 45)),
    "bin": ((45, 90, 40), (40, 40, 42), (120, 70, 30), (110, 110, 105)),
    "bench": ((50, 85, 135), (45, 65, 95), (120, 125, 125), (35, 50, 70)),
    "wall": ((150, 152, 150), (70, 85, 150), (120, 135, 150), (105, 105, 100)),
    "car": ((40, 40, 170), (150, 90, 40), (185, 185, 185), (225, 225, 225), (40, 40, 40), (40, 110, 60)),
    "cyclist": ((40, 120, 230), (180, 100, 40), (60, 170, 60), (40, 40, 200)),
    "dog": ((40, 80, 130), (35, 35, 38), (205, 208, 210), (90, 150, 200)),
}


def obstacle_parts(o: ObstacleSpec, st: ObstacleState, base_y: float) -> list[Part]:
    """The obstacle's solids at its current place (not for people, cut-outs, or ground features)."""
    grain = GRAIN.get(o.kind, 0.3)
    return [replace(p, grain=grain) for p in _obstacle_parts(o, st, base_y)]


def _obstacle_parts(o: ObstacleSpec, st: ObstacleState, base_y: float) -> list[Part]:
    side, fwd = _heading_vectors(o.heading_deg)
    origin = np.array([st.x_m, base_y, st.z_m])
    w, d, h = o.width_m, o.depth_m, o.height_m
    pal = PALETTES.get(o.kind, ((128, 128, 128),))
    col = pal[o.variant % len(pal)]

    def box(
        a: tuple[float, float], y: tuple[float, float], b: tuple[float, float], c: tuple[float, float, float]
    ) -> Part:
        return box_part(origin, side, fwd, a, y, b, c)

    def dark(c: tuple[float, float, float], k: float) -> tuple[float, float, float]:
        return (c[0] * k, c[1] * k, c[2] * k)

    up = np.array([0.0, 1.0, 0.0])
    if o.kind == "pole":
        return [cylinder_part(origin, origin + h * up, w / 2, col)]
    if o.kind == "bin":
        return [
            box((-w / 2, w / 2), (0, 0.92 * h), (-d / 2, d / 2), col),
            box((-w / 2 - 0.02, w / 2 + 0.02), (0.92 * h, h), (-d / 2 - 0.03, d / 2 + 0.02), dark(col, 0.8)),
        ]
    if o.kind == "bench":
        s = h / 0.85
        legs = (60.0, 60.0, 62.0)
        parts = [box((-w / 2, w / 2), (0.40 * s, 0.46 * s), (-d / 2, d / 2), col)]
        for x in (-w / 2 + 0.12, w / 2 - 0.12):
            parts.append(box((x - 0.03, x + 0.03), (0, 0.40 * s), (-d / 2 + 0.04, d / 2 - 0.04), legs))
        if h > 0.6:
            parts.append(box((-w / 2, w / 2), (0.50 * s, 0.85 * s), (-d / 2, -d / 2 + 0.05), col))
            for x in (-w / 2 + 0.12, w / 2 - 0.12):
                parts.append(box((x - 0.03, x + 0.03), (0.46 * s, 0.50 * s), (-d / 2, -d / 2 + 0.05), legs))
        return parts
    if o.kind == "wall":
        return [box((-w / 2, w / 2), (0, h), (-d / 2, d / 2), col)]
    if o.kind == "car":
        r = 0.31
        glass = (70.0, 58.0, 52.0)
        parts = [
            box((-w / 2, w / 2), (0.22, 0.6 * h), (-d / 2, d / 2), col),
            box((-0.44 * w, 0.44 * w), (0.6 * h, h), (-0.30 * d, 0.20 * d), glass),
            box((-0.40 * w, -0.30 * w), (0.45 * h, 0.55 * h), (d / 2, d / 2 + 0.01), (40, 40, 200)),
            box((0.30 * w, 0.40 * w), (0.45 * h, 0.55 * h), (d / 2, d / 2 + 0.01), (40, 40, 200)),
        ]
        for bb in (-(d / 2 - 0.75), d / 2 - 0.75):
            for sgn in (-1.0, 1.0):
                c = origin + bb * fwd + r * up
                parts.append(
                    cylinder_part(
                        c + sgn * (w / 2 - 0.24) * side, c + sgn * (w / 2 - 0.02) * side, r, (28, 28, 30)
                    )
                )
        return parts
    if o.kind == "cyclist":
        s = h / 1.7
        ls = d / 1.75
        jacket = col
        parts = []
        for bb in (-0.52 * ls, 0.52 * ls):
            c = origin + bb * fwd + 0.34 * s * up
            parts.append(cylinder_part(c - 0.02 * side, c + 0.02 * side, 0.34 * s, (30, 30, 32), sides=14))
        parts += [
            box((-0.02, 0.02), (0.58 * s, 0.64 * s), (-0.45 * ls, 0.45 * ls), (90, 90, 95)),
            box((-0.02, 0.02), (0.34 * s, 0.62 * s), (-0.12 * ls, -0.04 * ls), (90, 90, 95)),
            box((-0.13 * s, 0.13 * s), (0.40 * s, 0.88 * s), (-0.18 * ls, 0.05 * ls), (45, 40, 40)),
            box((-0.19 * s, 0.19 * s), (0.88 * s, 1.40 * s), (-0.16 * ls, 0.16 * ls), jacket),
            box((-0.22 * s, 0.22 * s), (1.08 * s, 1.22 * s), (0.10 * ls, 0.45 * ls), dark(jacket, 0.8)),
            box((-0.10 * s, 0.10 * s), (1.42 * s, 1.62 * s), (-0.06 * ls, 0.14 * ls), (110, 140, 190)),
            box((-0.12 * s, 0.12 * s), (1.58 * s, 1.72 * s), (-0.08 * ls, 0.16 * ls), (30, 30, 30)),
        ]
        return parts
    if o.kind == "dog":
        s = h / 0.6
        ls = d / 0.8
        phase = 2 * math.pi * st.travelled_m / 0.7
        parts = []
        for bb, aa, ph in (
            (0.22, 0.07, 0.0),
            (0.22, -0.07, math.pi),
            (-0.22, 0.07, math.pi),
            (-0.22, -0.07, 0.0),
        ):
            swing = 0.07 * ls * math.sin(phase + ph)
            b0 = bb * ls + swing
            parts.append(
                box((aa * s - 0.03, aa * s + 0.03), (0, 0.34 * s), (b0 - 0.03, b0 + 0.03), dark(col, 0.85))
            )
        parts += [
            box((-0.1 * s, 0.1 * s), (0.30 * s, 0.50 * s), (-0.30 * ls, 0.30 * ls), col),
            box((-0.075 * s, 0.075 * s), (0.42 * s, 0.62 * s), (0.26 * ls, 0.42 * ls), col),
            box((-0.04 * s, 0.04 * s), (0.44 * s, 0.52 * s), (0.42 * ls, 0.50 * ls), dark(col, 0.7)),
            box((-0.02, 0.02), (0.45 * s, 0.58 * s), (-0.42 * ls, -0.30 * ls), col),
        ]
        return parts
    raise ValueError(f"no solid model for {o.kind}")


# ------------------------------------------------------------------------------------------ renderer


@dataclass(frozen=True)
class RenderedFrame:
    """One rendered frame: `bgr` (h, w, 3) uint8, `labels` (h, w) int16 (0 sky, 1 ground, 2 walker,
    10 + i obstacle i), corridor coverage overall and per metre band, and each obstacle's visible share."""

    bgr: U8
    labels: I16
    pose: CameraPose
    coverage: float
    coverage_by_m: tuple[float, ...]
    visible: tuple[float, ...]


@dataclass
class _Buffers:
    colour: F32  # (n, 3) flat
    zbuf: F32  # (n,) ray length to the nearest surface (m), inf for sky
    labels: I16  # (n,)
    dirs: F32  # (n, 3) unit world ray directions
    origin: F64  # (3,) camera centre


def _bump(t: float, start: float, duration: float) -> float:
    """0 outside [start, start + duration], rising smoothly to 1 at the middle."""
    x = (t - start) / duration
    return 0.5 - 0.5 * math.cos(2 * math.pi * x) if 0 <= x <= 1 else 0.0


class Renderer:
    """Renders a spec frame by frame. Needs the walker footage (see `clips_dir`)."""

    AMBIENT = 0.45  # sky light, always there; the sun adds sun_strength * cos(incidence)

    def __init__(self, spec: ScenarioSpec, clips_dir: Path | None = None) -> None:
        self.spec = spec
        self.scene = Scene(spec)
        clip = (clips_dir or DEFAULT_CLIPS_DIR) / WALKER_CLIP
        if not clip.is_file():
            raise ScenarioError(
                f"the walker is cut out of real footage, {clip}, which is absent; "
                "put the shared clips beside the checkout (../shared/clips) or pass --clips DIR"
            )
        self.walker_sprites = _cutouts(clip.resolve(), WALKER_FRAMES)
        self.person_sprites: dict[str, tuple[Sprite, ...]] = {}
        people = [o for o in spec.obstacles if o.kind == "person"]
        if people:
            base = _cutouts(clip.resolve(), PERSON_FRAMES)
            for n, o in enumerate(people):
                shift = (40, 100, 70, 130)[(o.variant + n) % 4]
                self.person_sprites[o.id] = tuple(
                    _recoloured(s, shift, mirror=(o.variant + n) % 2 == 0) for s in base
                )
        intr = self.scene.intr
        self.w, self.h = intr.width, intr.height
        us, vs = np.meshgrid(np.arange(self.w, dtype=np.float64), np.arange(self.h, dtype=np.float64))
        rays = np.stack(
            [(us - intr.cx) / intr.fx, (vs - intr.cy) / intr.fy, np.ones_like(us)], axis=-1
        ).reshape(-1, 3)
        self.rays_cam = (rays / np.linalg.norm(rays, axis=1, keepdims=True)).astype(np.float32)
        # the sky is smooth: it is worked out on a 4x coarser grid (block centres) and scaled up
        self.sky_wh = (-(-self.w // 4), -(-self.h // 4))
        su, sv = np.meshgrid(np.arange(self.sky_wh[0]) * 4 + 1.5, np.arange(self.sky_wh[1]) * 4 + 1.5)
        coarse = np.stack([(su - intr.cx) / intr.fx, (sv - intr.cy) / intr.fy, np.ones_like(su)], axis=-1)
        coarse = coarse.reshape(-1, 3)
        self.sky_rays_cam = (coarse / np.linalg.norm(coarse, axis=1, keepdims=True)).astype(np.float32)
        # four variants of each texture, picked by the seed: scenes rendered in one process share them
        self.ground_tex = _texture(spec.ground.texture, spec.seed % 4)
        self.face_tex = _texture("concrete", (spec.seed + 1) % 4)
        self.top_tex = {
            o.id: _texture(o.top_texture or spec.ground.texture, (spec.seed + 2) % 4)
            for o in spec.obstacles
            if o.kind in GROUND_KINDS
        }
        lt = spec.lighting
        az, el = math.radians(lt.sun_azimuth_deg), math.radians(lt.sun_elevation_deg)
        self.sun = np.array([math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el)])
        self.exposure = self._exposure_track()
        self.features = [(i, o) for i, o in enumerate(spec.obstacles) if o.kind in GROUND_KINDS]
        rng = np.random.default_rng([spec.seed, 3])
        self.tree_phase = rng.uniform(0, 2 * math.pi, 4)

    # -- light
    def sun_strength(self, t: float) -> float:
        lt = self.spec.lighting
        s = lt.sun_strength
        for c in lt.clouds:
            s *= 1 - c.dim * _bump(t, c.start_s, c.duration_s)
        return s

    def irradiance(self, t: float, cos_sun: F32 | float, lit: F32 | float = 1.0) -> Any:
        """Light on a surface relative to sunlit flat ground with no cloud (so 1.0 is the reference)."""
        ref = self.AMBIENT + self.spec.lighting.sun_strength * self.sun[1]
        return (self.AMBIENT + self.sun_strength(t) * np.maximum(cos_sun, 0.0) * lit) / ref

    def _exposure_track(self) -> F64:
        """The phone's auto-exposure: partly makes up for a cloud, with a lag of about 0.7 s."""
        times = self.scene.times_s
        out = np.ones(len(times))
        level = 1.0
        alpha = 1 - math.exp(-1 / (self.spec.fps * 0.7))
        for k, t in enumerate(times):
            target = float(self.irradiance(float(t), float(self.sun[1]))) ** -0.6
            level += alpha * (target - level)
            out[k] = level
        return out

    # -- frame
    def frame(self, k: int) -> RenderedFrame:
        t = k / self.spec.fps
        pose = self.scene.camera_pose(t)
        n = self.w * self.h
        buf = _Buffers(
            np.zeros((n, 3), np.float32),
            np.full(n, np.inf, np.float32),
            np.zeros(n, np.int16),
            (self.rays_cam @ pose.rotation.astype(np.float32)).astype(np.float32),
            pose.position_m,
        )
        shadow, occl = self._shadow_maps(t, pose)
        self._ground(t, buf, shadow, occl, pose.rotation)
        totals = self._objects(t, k, pose, buf)
        img = self._finish(t, k, buf)
        labels = buf.labels.reshape(self.h, self.w)
        coverage, by_m = self._coverage(t, pose, labels)
        visible = []
        for i, o in enumerate(self.spec.obstacles):
            if o.kind in GROUND_KINDS:
                visible.append(self._feature_visible(i, o, pose, labels))
            else:
                total = totals.get(i, 0)
                seen = int(np.count_nonzero(buf.labels == LABEL_OBSTACLE0 + i))
                visible.append(min(1.0, seen / total) if total else 0.0)
        return RenderedFrame(img, labels, pose, coverage, by_m, tuple(visible))

    def _finish(self, t: float, k: int, buf: _Buffers) -> U8:
        """Shadow bands, exposure, haze, then the sensor: a touch of blur and noise."""
        lt = self.spec.lighting
        finite = np.isfinite(buf.zbuf)
        dist = np.where(finite, buf.zbuf, np.float32(1e6))
        gain = np.full(len(dist), lt.brightness * self.exposure[k], np.float32)
        sun_share = self.sun_strength(t) / lt.sun_strength if lt.sun_strength > 0 else 0.0
        if lt.shadow_bands and sun_share > 0:
            world_z = np.float32(buf.origin[2]) + dist * buf.dirs[:, 2]
            for band in lt.shadow_bands:
                z0 = np.float32(self.scene.heel_z0 + band.distance_m)
                inside = _smoothstep(world_z - z0, 0.3) * _smoothstep(
                    z0 + np.float32(band.length_m) - world_z, 0.3
                )
                gain *= 1 - np.float32(band.darkness * sun_share) * inside * finite
        haze = np.where(
            finite, 1 - np.exp(dist * np.float32(-1 / 140.0)), np.float32(0.0)
        )  # the sky has its own
        colour = buf.colour * (gain * (1 - haze))[:, None]
        colour += haze[:, None] * (
            np.array([205, 200, 192], np.float32) * np.float32(lt.brightness * self.exposure[k])
        )
        img = cv2.GaussianBlur(colour.reshape(self.h, self.w, 3), (0, 0), 0.6)
        noise = np.empty((self.h, self.w, 1), np.float32)  # luma noise, as a phone's processing leaves it
        cv2.setRNGSeed(int(self.spec.seed * 7919 + k))
        cv2.randn(noise, np.zeros(1), np.full(1, 2.0))
        return _to_u8(img + noise)

    # -- ground, sky and ground features, by casting every pixel's ray
    def _ground(
        self, t: float, buf: _Buffers, shadow: tuple[F32, float, float, float], occl: F32, pose_rotation: F64
    ) -> None:
        """Cast the downward pixel rays at the ground and the ground features (kerbs, steps, holes), then
        texture, shade and shadow what they hit; the other rays see the sky and a far tree line."""
        cx, cy, cz = (float(v) for v in buf.origin)
        g = np.nonzero(buf.dirs[:, 1] < -1e-5)[0]  # kerbs are far below the camera: only these rays matter
        d = buf.dirs[g]
        dx, dy, dz = d[:, 0], d[:, 1], d[:, 2]
        best = (np.float32(-cy) / dy).astype(np.float32)
        surf = np.zeros(len(g), np.int32)  # 0 ground, 1 + 5j top of feature j, 2..5 + 5j its walls, -1 none
        hx, hz = cx + best * dx, cz + best * dz
        regions = [(self.scene.obstacle_state(o, 0.0), _feature_level(o)) for _, o in self.features]
        with np.errstate(divide="ignore", invalid="ignore"):
            for st, _ in regions:  # the ground is not there where a feature replaces it
                inside = (hx >= st.x_min) & (hx <= st.x_max) & (hz >= st.z_min) & (hz <= st.z_max)
                best[inside] = np.inf
                surf[inside] = -1
            for j, (st, level) in enumerate(regions):
                lo, hi = min(0.0, level), max(0.0, level)
                tt = (np.float32(level - cy) / dy).astype(np.float32)
                px, pz = cx + tt * dx, cz + tt * dz
                ok = (px >= st.x_min) & (px <= st.x_max) & (pz >= st.z_min) & (pz <= st.z_max)
                self._take(best, surf, tt, ok, 1 + 5 * j)
                for w, (axis, value) in enumerate(
                    ((0, st.x_min), (0, st.x_max), (2, st.z_min), (2, st.z_max))
                ):
                    comp, c0 = (dx, cx) if axis == 0 else (dz, cz)
                    tt = np.where(np.abs(comp) > 1e-6, np.float32(value - c0) / comp, np.inf).astype(
                        np.float32
                    )
                    py = cy + tt * dy
                    other = cz + tt * dz if axis == 0 else cx + tt * dx
                    olo, ohi = (st.z_min, st.z_max) if axis == 0 else (st.x_min, st.x_max)
                    ok = (tt > 0) & (py >= lo) & (py <= hi) & (other >= olo) & (other <= ohi)
                    self._take(best, surf, tt, ok, 2 + w + 5 * j)
        surf[~(best < 150)] = -1  # beyond: the far backdrop (tree line) drawn with the sky
        sky = np.ones(len(buf.dirs), np.bool_)
        sky[g[surf >= 0]] = False
        self._sky(t, buf, np.nonzero(sky)[0], pose_rotation)
        keep = surf >= 0
        g, d, best, surf = g[keep], d[keep], best[keep], surf[keep]
        dx, dy, dz = d[:, 0], d[:, 1], d[:, 2]
        sx, sy, sz = cx + best * dx, cy + best * dy, cz + best * dz
        colour = np.zeros((len(g), 3), np.float32)
        labels = np.full(len(g), LABEL_GROUND, np.int16)
        cos_sun = np.full(len(g), float(self.sun[1]), np.float32)
        tex_m = TEXEL_M * self.spec.ground.texture_scale
        f = self.scene.intr.fx

        def footprint(sel: npt.NDArray[np.intp], cos_view: F32) -> F32:
            # metres of surface per pixel: the geometric mean of the two axes keeps grazing ground sharp
            return np.asarray(best[sel] / f / np.sqrt(np.maximum(np.abs(cos_view), 0.03)), np.float32)

        base = np.nonzero(surf == 0)[0]
        colour[base] = sample_texture(self.ground_tex, sx[base], sz[base], footprint(base, dy[base]), tex_m)
        bx, bz = sx[base], sz[base]
        for m in self.spec.ground.markings:
            z0, x0 = self.scene.heel_z0 + m.distance_m, m.lateral_m - m.width_m / 2
            on = base[(bx >= x0) & (bx <= x0 + m.width_m) & (bz >= z0) & (bz <= z0 + m.depth_m)]
            _paint(colour, on, MARKING_PAINT[m.paint], grain_share=0.15)
        for j, (i, o) in enumerate(self.features):
            top = np.nonzero(surf == 1 + 5 * j)[0]
            col = sample_texture(self.top_tex[o.id], sx[top], sz[top], footprint(top, dy[top]), tex_m)
            colour[top] = col * (SOIL if o.kind == "hole" else 1.0)  # a pit: bare soil, little light
            labels[top] = LABEL_OBSTACLE0 + i
            for w, normal in enumerate(
                ((-1.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 0.0, -1.0), (0.0, 0.0, 1.0))
            ):
                wall = np.nonzero(surf == 2 + w + 5 * j)[0]
                if len(wall) == 0:
                    continue
                nrm = np.array(normal, np.float32)
                if float(np.mean(d[wall] @ nrm)) > 0:
                    nrm = -nrm  # the side the camera sees
                u = sz[wall] if w < 2 else sx[wall]
                tex = self.top_tex[o.id] if o.kind == "hole" else self.face_tex  # earth, or kerb stone
                col = sample_texture(tex, u, sy[wall] * 3.0, footprint(wall, d[wall] @ nrm), TEXEL_M)
                if o.kind == "hole":  # darker deeper down: the pit's sides see little sky
                    depth_share = np.clip(-sy[wall] / max(o.height_m, 1e-3), 0, 1)[:, None]
                    col = col * SOIL * 1.6 * (1 - 0.5 * depth_share)
                colour[wall] = col * (1.0 if o.kind == "hole" else 1.05)
                labels[wall] = LABEL_OBSTACLE0 + i
                cos_sun[wall] = float(nrm @ self.sun)
            self._edge_marks(
                i, o, regions[j][0], regions[j][1], surf == 1 + 5 * j, surf == 0, sx, sz, colour, labels
            )
        # cast shadows and contact shadows, from a top-down map
        smap, x0, z0, cell = shadow
        mu = ((sx - x0) / cell).astype(np.float32)
        mv = ((sz - z0) / cell).astype(np.float32)
        lit = 1 - _remap_scalar(smap, mu, mv)
        light = np.asarray(self.irradiance(t, cos_sun, lit), np.float32) * (
            1 - 0.55 * _remap_scalar(occl, mu, mv)
        )
        buf.colour[g] = colour * light[:, None]
        buf.zbuf[g] = best
        buf.labels[g] = labels

    def _sky(self, t: float, buf: _Buffers, idx: npt.NDArray[np.intp], rotation: F64) -> None:
        """A gradient by elevation and a hazy far tree line by azimuth, on the coarse grid."""
        if len(idx) == 0:
            return
        d = self.sky_rays_cam @ rotation.astype(np.float32)
        el = np.arcsin(np.clip(d[:, 1], -1, 1))
        az = np.arctan2(d[:, 0], d[:, 2])
        ph = self.tree_phase
        tree_top = np.radians(
            1.2
            + 1.6 * (0.5 + 0.5 * np.sin(3 * az + ph[0])) * (0.6 + 0.4 * np.sin(11 * az + ph[1]))
            + 0.5 * (0.5 + 0.5 * np.sin(37 * az + ph[2]))
        )
        k = np.clip(el / 0.6, 0, 1)[:, None]
        sky = (1 - k) * np.array([215, 205, 190], np.float32) + k * np.array([200, 150, 105], np.float32)
        trees = (
            np.array([72, 92, 80], np.float32) * 0.45 + np.array([205, 200, 192], np.float32) * 0.55
        )  # far: hazy
        cover = np.clip(0.5 + (tree_top - el) / (4 / self.scene.intr.fy), 0, 1)[:, None]  # soft over a cell
        sky = (cover * trees + (1 - cover) * sky).astype(np.float32)
        sw, sh = self.sky_wh
        full = cv2.resize(sky.reshape(sh, sw, 3), (sw * 4, sh * 4), interpolation=cv2.INTER_LINEAR)
        full = np.asarray(full[: self.h, : self.w], np.float32).reshape(-1, 3)
        buf.colour[idx] = full[idx] * float(self.irradiance(t, float(self.sun[1]))) ** 0.3
        buf.labels[idx] = LABEL_SKY

    @staticmethod
    def _take(best: F32, surf: npt.NDArray[np.int32], tt: F32, ok: npt.NDArray[np.bool_], code: int) -> None:
        closer = ok & (tt < best)
        best[closer] = tt[closer]
        surf[closer] = code

    @staticmethod
    def _edge_marks(
        i: int,
        o: ObstacleSpec,
        st: ObstacleState,
        level: float,
        on_top: npt.NDArray[np.bool_],
        on_ground: npt.NDArray[np.bool_],
        sx: F32,
        sz: F32,
        colour: F32,
        labels: I16,
    ) -> None:
        """Kerb stones and step nosings: a light band along the edge (yellow on steps), on the upper side."""
        if o.kind == "hole":
            return
        width = 0.15 if o.kind != "step" else 0.06
        paint = (168, 172, 175) if o.kind != "step" else MARKING_PAINT["yellow"]
        across = (sx >= st.x_min) & (sx <= st.x_max)
        if level > 0:  # the edge is the raised top's near end
            band = on_top & across & (sz <= st.z_min + width)
        else:  # the edge is the near ground's end, just before the drop
            band = on_ground & across & (sz >= st.z_min - width) & (sz <= st.z_min)
        idx = np.nonzero(band)[0]
        _paint(colour, idx, paint, grain_share=0.2)
        labels[idx] = LABEL_OBSTACLE0 + i

    # -- shadows on the ground: a top-down map around the camera, redrawn each frame
    def _shadow_maps(self, t: float, pose: CameraPose) -> tuple[tuple[F32, float, float, float], F32]:
        cell = 0.05
        x0, z0 = float(pose.position_m[0]) - 12.0, float(pose.position_m[2]) - 1.0
        nx, nz = int(24.0 / cell), int(40.0 / cell)
        smap = np.zeros((nz, nx), np.float32)
        occl = np.zeros((nz, nx), np.float32)
        sun = self.sun

        def to_cells(pts: F64) -> npt.NDArray[np.int32]:
            cells: npt.NDArray[np.int32] = np.round(
                np.column_stack([(pts[:, 0] - x0) / cell, (pts[:, 2] - z0) / cell]) * 16
            ).astype(np.int32)
            return cells

        for verts, base_y, footprint in self._casters(t):
            flat = verts - ((verts[:, 1] - base_y) / sun[1])[:, None] * sun[None, :]
            hull = cv2.convexHull(to_cells(flat))
            cv2.fillConvexPoly(smap, hull, (1.0,), lineType=cv2.LINE_AA, shift=4)
            if len(footprint) >= 3:
                cv2.fillConvexPoly(
                    occl, cv2.convexHull(to_cells(footprint)), (1.0,), lineType=cv2.LINE_AA, shift=4
                )
        soft_sun = np.asarray(cv2.GaussianBlur(smap, (0, 0), 1.0), np.float32)
        soft_occl = np.asarray(cv2.GaussianBlur(occl, (0, 0), 2.0), np.float32)
        return (soft_sun, x0, z0, cell), soft_occl

    def _casters(self, t: float) -> Iterator[tuple[F64, float, F64]]:
        """(vertices, base height, footprint corners grown by 5 cm) of everything that casts a shadow."""
        wz = self.scene.walker_z(t)
        yield from self._box_caster(0.0, wz, 0.42, 0.24, self.spec.walker.height_m, 0.0)
        for o in self.spec.obstacles:
            if o.kind in GROUND_KINDS:
                continue
            st = self.scene.obstacle_state(o, t)
            base_y = self.scene.ground_height(st.x_m, st.z_m)
            if o.kind == "person":
                yield from self._box_caster(st.x_m, st.z_m, 0.42, 0.24, o.height_m, base_y)
                continue
            for part in obstacle_parts(o, st, base_y):
                yield part.vertices, base_y, self._grow(part.vertices, base_y)

    def _box_caster(
        self, x: float, z: float, w: float, d: float, h: float, base_y: float
    ) -> Iterator[tuple[F64, float, F64]]:
        side, fwd = _heading_vectors(0.0)
        part = box_part(
            np.array([x, base_y, z]), side, fwd, (-w / 2, w / 2), (0.0, h), (-d / 2, d / 2), (0, 0, 0)
        )
        yield part.vertices, base_y, self._grow(part.vertices, base_y)

    @staticmethod
    def _grow(verts: F64, base_y: float) -> F64:
        low = verts[verts[:, 1] <= base_y + 0.05]
        if len(low) < 3:
            return np.zeros((0, 3))
        c = low.mean(axis=0)
        return np.asarray(c + (low - c) * 1.0 + np.sign(low - c) * np.array([0.05, 0.0, 0.05]), np.float64)

    # -- solids and cut-outs, with a z-buffer
    def _objects(self, t: float, k: int, pose: CameraPose, buf: _Buffers) -> dict[int, int]:
        """Draw obstacles and the walker far to near; returns each obstacle's unclipped pixel area."""
        items: list[tuple[float, Callable[[], int], int]] = []
        wz = self.scene.walker_z(t)
        step = max(1, round(self.spec.fps / 5))
        seq = (0, 1, 2, 3, 2, 1)
        sprite = self.walker_sprites[seq[(k // step) % len(seq)] % len(self.walker_sprites)]
        walker_base = np.array([0.0, 0.0, wz])
        dist = float(np.linalg.norm(walker_base - pose.position_m))
        items.append(
            (
                dist,
                lambda: self._sprite(
                    sprite, walker_base, self.spec.walker.height_m, LABEL_WALKER, t, pose, buf
                ),
                -1,
            )
        )
        for i, o in enumerate(self.spec.obstacles):
            if o.kind in GROUND_KINDS:
                continue
            st = self.scene.obstacle_state(o, t)
            base_y = self.scene.ground_height(st.x_m, st.z_m)
            centre = np.array([st.x_m, base_y, st.z_m])
            d = float(np.linalg.norm(centre - pose.position_m))
            if o.kind == "person":
                sprites = self.person_sprites[o.id]
                idx = (
                    int(st.travelled_m / 0.35) % len(sprites) if o.speed_mps > 0 else o.variant % len(sprites)
                )
                items.append(
                    (
                        d,
                        _bind_sprite(
                            self, sprites[idx], centre, o.height_m, LABEL_OBSTACLE0 + i, t, pose, buf
                        ),
                        i,
                    )
                )
            else:
                parts = obstacle_parts(o, st, base_y)
                items.append((d, _bind_parts(self, parts, LABEL_OBSTACLE0 + i, t, pose, buf), i))
        totals: dict[int, int] = {}
        for _, draw, i in sorted(items, key=lambda it: -it[0]):
            area = draw()
            if i >= 0:
                totals[i] = area
        return totals

    def _parts(self, parts: Sequence[Part], label: int, t: float, pose: CameraPose, buf: _Buffers) -> int:
        """Rasterise convex parts into the buffers; return the object's whole silhouette area in pixels
        as if the frame had no edges (within 3x the frame), for the visible share."""
        intr = self.scene.intr
        ext = (-float(self.w), -float(self.h), 2.0 * self.w, 2.0 * self.h)
        polys: list[F64] = []
        drawn: list[npt.NDArray[np.intp]] = []  # in-frame pixels on the object, in front of it or not
        order = sorted(parts, key=lambda p: -float(np.linalg.norm(p.vertices.mean(axis=0) - pose.position_m)))
        for part in order:
            centroid = part.vertices.mean(axis=0)
            cam = pose.to_camera(part.vertices)
            for face in part.faces:
                pw = part.vertices[list(face)]
                nrm = np.cross(pw[1] - pw[0], pw[2] - pw[0])
                nn = float(np.linalg.norm(nrm))
                if nn < 1e-12:
                    continue
                nrm /= nn
                fc = pw.mean(axis=0)
                if float(nrm @ (fc - centroid)) < 0:
                    nrm = -nrm
                if float(nrm @ (pose.position_m - fc)) <= 1e-9:
                    continue  # facing away
                pc = clip_polygon(cam[list(face)], np.array([0.0, 0.0, 1.0]), 0.05)
                if len(pc) < 3:
                    continue
                uv = np.column_stack(
                    [intr.fx * pc[:, 0] / pc[:, 2] + intr.cx, intr.fy * pc[:, 1] / pc[:, 2] + intr.cy]
                )
                uv = _clip_rect(uv, *ext)
                if len(uv) < 3:
                    continue
                polys.append(uv)
                shade = float(self.irradiance(t, float(nrm @ self.sun)))
                colour = np.array(part.colour_bgr, np.float32) * shade
                drawn.append(self._fill(uv, nrm, float(nrm @ pw[0]), colour, label, buf, part.grain, pc))
        _, outside = _union_area(polys, self.w, self.h)
        return len(np.unique(np.concatenate(drawn))) + outside if drawn else outside

    def _fill(
        self,
        uv: F64,
        nrm: F64,
        offset: float,
        colour: F32,
        label: int,
        buf: _Buffers,
        grain: float = 0.0,
        poly_cam: F64 | None = None,
    ) -> npt.NDArray[np.intp]:
        """Rasterise one planar face with the z-buffer: flat colour, a surface grain fixed to the face
        (so it moves with the object, not the screen), and darker low down where the ground hides sky."""
        vis = _clip_rect(uv, -0.5, -0.5, self.w - 0.5, self.h - 0.5)
        none = np.zeros(0, np.intp)
        if len(vis) < 3:
            return none
        x0, y0 = int(max(0, math.floor(vis[:, 0].min()))), int(max(0, math.floor(vis[:, 1].min())))
        x1, y1 = (
            int(min(self.w - 1, math.ceil(vis[:, 0].max()))),
            int(min(self.h - 1, math.ceil(vis[:, 1].max()))),
        )
        if x1 < x0 or y1 < y0:
            return none
        mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
        pts = np.round((vis - (x0, y0)) * 16).astype(np.int32)
        cv2.fillPoly(mask, [pts], (1,), lineType=cv2.LINE_8, shift=4)
        ys, xs = np.nonzero(mask)
        if len(ys) == 0:
            return none
        idx = (ys + y0) * self.w + (xs + x0)
        denom = buf.dirs[idx] @ nrm.astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            tt = (offset - float(nrm @ buf.origin)) / denom
        tt = np.where((denom < -1e-6) & (tt > 0), tt, np.inf)
        if poly_cam is not None:
            # A face seen nearly edge-on: pixels on its rasterised rim hit its plane far outside the face,
            # often in front of what really is in front. Keep only hits on the face (give or take a pixel).
            hits = np.where(np.isfinite(tt), tt, 0.0)[:, None] * self.rays_cam[idx]
            edges = np.roll(poly_cam, -1, axis=0) - poly_cam
            n_cam = np.cross(edges[0], poly_cam[2] - poly_cam[0])
            inward = np.cross(n_cam, edges)
            inward /= np.maximum(np.linalg.norm(inward, axis=1, keepdims=True), 1e-12)
            inward *= np.sign(np.einsum("ij,ij->i", poly_cam.mean(axis=0) - poly_cam, inward))[:, None]
            slack = tt / self.scene.intr.fx  # one pixel, in metres, at that distance
            inside = ((hits[:, None, :] - poly_cam[None, :, :]) * inward[None]).sum(axis=2).min(
                axis=1
            ) >= -slack
            tt = np.where(inside, tt, np.inf)
        on_face = idx[np.isfinite(tt)]
        nearer = tt < buf.zbuf[idx]
        idx, tt = idx[nearer], tt[nearer].astype(np.float32)
        pts = buf.origin.astype(np.float32) + tt[:, None] * buf.dirs[idx]
        ao = 0.8 + 0.2 * np.minimum(1.0, np.maximum(pts[:, 1], 0.0) / 0.6)
        shade = ao[:, None] * colour[None, :]
        if grain > 0:
            if abs(float(nrm[1])) > 0.9:  # a top: texture across X and Z
                u, v = pts[:, 0], pts[:, 2]
            else:
                tangent = np.array([-nrm[2], 0.0, nrm[0]], np.float32)
                tangent /= max(float(np.linalg.norm(tangent)), 1e-6)
                u, v = pts @ tangent, pts[:, 1]
            tex = sample_texture(self.face_tex, u, v, tt / np.float32(self.scene.intr.fx), TEXEL_M)
            shade = shade * (1 + grain * (tex.mean(axis=1, keepdims=True) / 150.0 - 1))
        buf.zbuf[idx] = tt
        buf.colour[idx] = shade
        buf.labels[idx] = label
        return np.asarray(on_face, np.intp)

    def _sprite(
        self,
        sprite: Sprite,
        base: F64,
        height_m: float,
        label: int,
        t: float,
        pose: CameraPose,
        buf: _Buffers,
    ) -> int:
        """Paste a cut-out standing at `base` (feet centre on the ground), facing the camera, `height_m` tall;
        its body hides what is behind it. Returns its unclipped area in pixels (alpha >= 0.5)."""
        to_cam = pose.position_m - base
        to_cam[1] = 0.0
        nb = to_cam / max(float(np.linalg.norm(to_cam)), 1e-9)  # billboard normal, towards the camera
        right = np.array([-nb[2], 0.0, nb[0]])  # the camera's right, seen from the camera
        if float((pose.rotation @ right)[0]) < 0:
            right = -right
        m = height_m / sprite.height_px
        hgt, wid = sprite.bgr.shape[:2]
        src = np.array([[0, 0], [wid - 1, 0], [wid - 1, hgt - 1], [0, hgt - 1]], np.float64)
        up = np.array([0.0, 1.0, 0.0])
        world = np.array(
            [base + (x - sprite.centre_col) * m * right + (sprite.foot_row - y) * m * up for x, y in src]
        )
        uv, z = project(world, pose, self.scene.intr)
        if float(z.min()) < 0.3:
            return 0
        ext = (-float(self.w), -float(self.h), 2.0 * self.w - 1, 2.0 * self.h - 1)
        bx0, by0 = max(ext[0], math.floor(uv[:, 0].min())), max(ext[1], math.floor(uv[:, 1].min()))
        bx1, by1 = min(ext[2], math.ceil(uv[:, 0].max())), min(ext[3], math.ceil(uv[:, 1].max()))
        if bx1 < bx0 or by1 < by0:
            return 0
        hom = cv2.getPerspectiveTransform(src.astype(np.float32), (uv - (bx0, by0)).astype(np.float32))
        size = (int(bx1 - bx0 + 1), int(by1 - by0 + 1))
        alpha = cv2.warpPerspective(sprite.alpha, hom, size, flags=cv2.INTER_LINEAR, borderValue=(0.0,))
        total = int(np.count_nonzero(alpha >= 0.5))
        fx0, fy0 = int(max(0, bx0)), int(max(0, by0))
        fx1, fy1 = int(min(self.w - 1, bx1)), int(min(self.h - 1, by1))
        if fx1 < fx0 or fy1 < fy0:
            return total
        shift = np.array([[1, 0, bx0 - fx0], [0, 1, by0 - fy0], [0, 0, 1]], np.float64)
        hom_f = shift @ hom
        fsize = (fx1 - fx0 + 1, fy1 - fy0 + 1)
        colour = cv2.warpPerspective(sprite.bgr, hom_f, fsize, flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
        a = alpha[int(fy0 - by0) : int(fy1 - by0) + 1, int(fx0 - bx0) : int(fx1 - bx0) + 1]
        ys, xs = np.nonzero(a > 0.02)
        if len(ys) == 0:
            return total
        idx = (ys + fy0) * self.w + (xs + fx0)
        nrm = nb.astype(np.float32)
        denom = buf.dirs[idx] @ nrm
        with np.errstate(divide="ignore", invalid="ignore"):
            tt = (float(nb @ base) - float(nb @ buf.origin)) / denom
        tt = np.where(denom < -1e-6, tt, np.inf).astype(np.float32)
        nearer = tt < buf.zbuf[idx]
        idx, ys, xs, tt = idx[nearer], ys[nearer], xs[nearer], tt[nearer]
        av = a[ys, xs][:, None]
        shade = float(self.irradiance(t, float(self.sun[1]))) ** 0.8
        px = colour[ys, xs].astype(np.float32) * shade
        buf.colour[idx] = av * px + (1 - av) * buf.colour[idx]
        solid = av[:, 0] >= 0.5
        buf.zbuf[idx[solid]] = tt[solid]
        buf.labels[idx[solid]] = label
        return total

    # -- truth measured on the rendered frame
    def corridor_cells(self, t: float) -> F64:
        """(n, 3) world centres of the corridor's ground cells, from the heels back `corridor.length_m`."""
        cor = self.spec.corridor
        nx = max(1, round(cor.width_m / CELL_M))
        nz = max(1, round(cor.length_m / CELL_M))
        xs = (np.arange(nx) + 0.5) * cor.width_m / nx - cor.width_m / 2
        zs = self.scene.heel_z(t) + (np.arange(nz) + 0.5) * cor.length_m / nz
        gx, gz = np.meshgrid(xs, zs)
        gy = np.vectorize(self.scene.ground_height)(gx, gz)
        return np.column_stack([gx.ravel(), gy.ravel(), gz.ravel()]).astype(np.float64)

    def _visible_points(
        self, pts: F64, pose: CameraPose, labels: I16, own: int | None
    ) -> npt.NDArray[np.bool_]:
        uv, z = project(pts, pose, self.scene.intr)
        col, row = np.round(uv[:, 0]).astype(np.int64), np.round(uv[:, 1]).astype(np.int64)
        inside = (z > 0.05) & (col >= 0) & (col < self.w) & (row >= 0) & (row < self.h)
        lab = np.full(len(pts), -1, np.int64)
        lab[inside] = labels[row[inside], col[inside]]
        ground_labels = [LABEL_GROUND] + [LABEL_OBSTACLE0 + i for i, _ in self.features]
        if own is not None:
            ground_labels.append(own)
        return np.asarray(inside & np.isin(lab, ground_labels), np.bool_)

    def _coverage(self, t: float, pose: CameraPose, labels: I16) -> tuple[float, tuple[float, ...]]:
        cells = self.corridor_cells(t)
        seen = self._visible_points(cells, pose, labels, None)
        depth = cells[:, 2] - self.scene.heel_z(t)
        bands = []
        for b in range(math.ceil(self.spec.corridor.length_m - 1e-9)):
            sel = (depth >= b) & (depth < b + 1)
            bands.append(float(seen[sel].mean()) if sel.any() else 0.0)
        return float(seen.mean()), tuple(bands)

    def _feature_visible(self, i: int, o: ObstacleSpec, pose: CameraPose, labels: I16) -> float:
        """Kerbs and steps: the share of their edge line in view; holes: the share of their opening."""
        st = self.scene.obstacle_state(o, 0.0)
        if o.kind == "hole":
            gx, gz = np.meshgrid(
                np.linspace(st.x_min, st.x_max, 9)[1:-1], np.linspace(st.z_min, st.z_max, 9)[1:-1]
            )
            pts = np.column_stack([gx.ravel(), np.zeros(gx.size), gz.ravel()])
        else:
            xs = np.linspace(st.x_min, st.x_max, 61)
            y = max(0.0, _feature_level(o))
            pts = np.column_stack([xs, np.full(len(xs), y), np.full(len(xs), st.z_min)])
        return float(self._visible_points(pts, pose, labels, LABEL_OBSTACLE0 + i).mean())


def _bind_sprite(
    r: Renderer,
    sprite: Sprite,
    base: F64,
    height_m: float,
    label: int,
    t: float,
    pose: CameraPose,
    buf: _Buffers,
) -> Callable[[], int]:
    return lambda: r._sprite(sprite, base, height_m, label, t, pose, buf)


def _bind_parts(
    r: Renderer, parts: Sequence[Part], label: int, t: float, pose: CameraPose, buf: _Buffers
) -> Callable[[], int]:
    return lambda: r._parts(parts, label, t, pose, buf)


def _smoothstep(x: Any, width: float) -> Any:
    return np.clip(0.5 + x / width, 0.0, 1.0)


def _remap_scalar(img: F32, u: F32, v: F32) -> F32:
    n = len(u)
    cols = 512
    rows = -(-n // cols)
    pad = rows * cols - n
    mu = np.pad(u, (0, pad)).reshape(rows, cols)
    mv = np.pad(v, (0, pad)).reshape(rows, cols)
    out = cv2.remap(img, mu, mv, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0.0,))
    return np.asarray(out.ravel()[:n], np.float32)


def _clip_rect(poly: F64, x0: float, y0: float, x1: float, y1: float) -> F64:
    for nrm, off in (((1.0, 0.0), x0), ((0.0, 1.0), y0), ((-1.0, 0.0), -x1), ((0.0, -1.0), -y1)):
        poly = clip_polygon(poly, np.array(nrm), off)
        if len(poly) < 3:
            return poly
    return poly


def _union_area(polys: Sequence[F64], width: int, height: int) -> tuple[int, int]:
    """Pixels covered by the union of polygons (rasterised as `_fill` does): in all, and outside the frame."""
    if not polys:
        return 0, 0
    allp = np.vstack(polys)
    x0, y0 = math.floor(allp[:, 0].min()), math.floor(allp[:, 1].min())
    x1, y1 = math.ceil(allp[:, 0].max()), math.ceil(allp[:, 1].max())
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    cv2.fillPoly(
        mask,
        [np.round((p - (x0, y0)) * 16).astype(np.int32) for p in polys],
        (1,),
        lineType=cv2.LINE_8,
        shift=4,
    )
    fx0, fy0 = max(0, -x0), max(0, -y0)
    fx1, fy1 = max(fx0, min(mask.shape[1], width - x0)), max(fy0, min(mask.shape[0], height - y0))
    total = int(np.count_nonzero(mask))
    return total, total - int(np.count_nonzero(mask[fy0:fy1, fx0:fx1]))


# ------------------------------------------------------------------------------------------ writing


class _VideoSink:
    """Raw BGR frames piped into ffmpeg: H.264, yuv420p, plays anywhere (as server/replay.py's sink)."""

    def __init__(self, path: Path, wh: tuple[int, int], fps: float) -> None:
        exe = shutil.which("ffmpeg")
        if exe is None:
            raise ScenarioError(
                "rendering a scenario needs ffmpeg with libx264 (scripts/install.sh installs it)"
            )
        cmd = [
            exe, "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24",
            "-s", f"{wh[0]}x{wh[1]}", "-r", f"{fps:g}", "-i", "-",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
            "-movflags", "+faststart", str(path),
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)

    def write(self, bgr: U8) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(np.ascontiguousarray(bgr).tobytes())
        except BrokenPipeError:
            raise ScenarioError(f"ffmpeg stopped early: {self._stderr()}") from None

    def _stderr(self) -> str:
        if self.proc.stderr is None:
            return ""
        with self.proc.stderr:
            return self.proc.stderr.read().decode(errors="replace").strip()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        err = self._stderr()
        if self.proc.wait() != 0:
            raise ScenarioError(f"ffmpeg failed writing the clip: {err}")

    def abort(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()


def render_frames(spec: ScenarioSpec, clips_dir: Path | None = None) -> Iterator[RenderedFrame]:
    """Every frame of the scene, in order."""
    renderer = Renderer(spec, clips_dir)
    for k in range(spec.frame_count):
        yield renderer.frame(k)


def truth_document(
    spec: ScenarioSpec, truth: Truth, frames: Sequence[RenderedFrame], clip_name: str
) -> dict[str, Any]:
    """truth.json: the spec, the camera, per-frame truth, the perfect warnings and per-obstacle summaries."""
    scene = Scene(spec)
    intr = scene.intr
    per_frame = []
    for k, (t, fr) in enumerate(zip(truth.times_s, frames, strict=True)):
        obstacles = [
            ObstacleFrame(**{**asdict(o), "visible_fraction": fr.visible[i]}).to_json()
            for i, o in enumerate(truth.obstacles[k])
        ]
        per_frame.append(
            {
                "k": k,
                "t": round(t, 4),
                "walker_z_m": round(truth.walker_z_m[k], 4),
                "walker_heel_z_m": round(truth.walker_z_m[k] + HEEL_BACK_M, 4),
                "camera": fr.pose.to_json(),
                "coverage": round(fr.coverage, 4),
                "coverage_by_m": [round(c, 4) for c in fr.coverage_by_m],
                "obstacles": obstacles,
            }
        )
    return {
        "format": TRUTH_FORMAT,
        "name": spec.name,
        "clip": clip_name,
        "fps": spec.fps,
        "frames": spec.frame_count,
        "duration_s": round(spec.frame_count / spec.fps, 4),
        "resolution_wh": list(spec.resolution_wh),
        "control": spec.control,
        "camera": {
            "intrinsics": {"fx": intr.fx, "fy": intr.fy, "cx": intr.cx, "cy": intr.cy},
            "K": intr.matrix().tolist(),
            "fov_long_side_deg": spec.camera.fov_long_side_deg,
            "pitch_deg_nominal": round(scene.pitch_deg, 4),
            "convention": "p_cam = rotation @ (P_world - position_m); camera x right, y down, z forward",
        },
        "walker": {
            "height_m": spec.walker.height_m,
            "speed_mps": spec.walker.speed_mps,
            "heel_back_m": HEEL_BACK_M,
            "source": f"{WALKER_CLIP} frames {list(WALKER_FRAMES)}",
        },
        "corridor": {"width_m": spec.corridor.width_m, "length_m": spec.corridor.length_m, "cell_m": CELL_M},
        "tiers_ttc_s": {"advisory": 3.0, "urgent": 1.5, "stop": 1.0},
        "expected_events": [e.to_json() for e in truth.events],
        "obstacles": [
            {**s.to_json(), "width_m": o.width_m, "depth_m": o.depth_m, "height_m": o.height_m}
            for s, o in zip(truth.summaries, spec.obstacles, strict=True)
        ],
        "per_frame": per_frame,
        "spec": spec.to_json(),
    }


def replaceable(out_dir: Path) -> bool:
    """May `render` write to out_dir? Yes if it does not exist, is empty, or holds an earlier scene (a
    truth.json of this format): it never replaces a folder that holds anything else."""
    if not out_dir.exists():
        return True
    if not out_dir.is_dir():
        return False
    names = {p.name for p in out_dir.iterdir()}
    if not names:
        return True
    if not names <= {"clip.mp4", "truth.json", SENSORS_NAME} or "truth.json" not in names:
        return False
    try:
        return bool(
            json.loads((out_dir / "truth.json").read_text(encoding="utf-8")).get("format") == TRUTH_FORMAT
        )
    except (OSError, ValueError, AttributeError):
        return False


def render(spec: ScenarioSpec, out_dir: Path, clips_dir: Path | None = None) -> Path:
    """Write out_dir/clip.mp4, out_dir/truth.json and out_dir/clip.sensors.json (the phone's tilt,
    vision/sensors.py). Everything is written into a hidden temporary folder beside out_dir and moved into
    place at the end (replacing an older out_dir), so a failure leaves nothing that looks complete.
    Returns out_dir."""
    out_dir = Path(out_dir)
    if not replaceable(out_dir):
        raise ScenarioError(f"{out_dir} exists and is not an earlier scene's output; refusing to replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    renderer = Renderer(spec, clips_dir)  # fails early, before any file, if the footage is absent
    truth = build_truth(spec)
    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    sink: _VideoSink | None = None
    try:
        sink = _VideoSink(tmp / "clip.mp4", spec.resolution_wh, spec.fps)
        frames: list[RenderedFrame] = []
        for k in range(spec.frame_count):
            fr = renderer.frame(k)
            sink.write(fr.bgr)
            # keep the truth, drop the pixels
            frames.append(
                RenderedFrame(fr.bgr[:0], fr.labels[:0], fr.pose, fr.coverage, fr.coverage_by_m, fr.visible)
            )
        sink.close()
        sink = None
        doc = truth_document(spec, truth, frames, "clip.mp4")
        (tmp / "truth.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        # what the phone's tilt sensor would have reported with each frame, as a live page sends it
        sensors = json.dumps(scene_sensor_log(doc), separators=(",", ":"))
        (tmp / SENSORS_NAME).write_text(sensors + "\n", encoding="utf-8")
        tmp.chmod(0o755)  # mkdtemp makes it private; the result is an ordinary folder
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".old", dir=out_dir.parent))
            out_dir.rename(old / "x")
            tmp.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out_dir)
    except BaseException:
        if sink is not None:
            sink.abort()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("rendered %s: %d frames in %.1f s", out_dir, spec.frame_count, time.perf_counter() - start)
    return out_dir


# ----------------------------------------------------------------------------------------------- CLI


def _spec_files(args: Sequence[str]) -> tuple[list[tuple[Path, bool]], list[str]]:
    """(file, came from a folder) for every SPEC argument, and the problems found."""
    files: list[tuple[Path, bool]] = []
    problems: list[str] = []
    for arg in args:
        p = Path(arg)
        if p.is_dir():
            found = sorted(p.glob("*.json"))
            if not found:
                problems.append(f"{p}: a folder with no *.json spec in it")
            files += [(f, True) for f in found]
        elif p.is_file():
            files.append((p, False))
        else:
            problems.append(f"{p}: no such file or folder")
    return files, problems


def _render_job(spec: ScenarioSpec, out_dir: Path, clips_dir: Path | None) -> tuple[str, float]:
    start = time.perf_counter()
    render(spec, out_dir, clips_dir)
    return spec.name, time.perf_counter() - start


def main(argv: list[str] | None = None, out: IO[str] | None = None) -> int:
    """`rearguard scenario SPEC [SPEC ...] --out DIR`: render scenes with their truth. One spec file is
    written to DIR itself; several (or a folder of *.json) to DIR/<spec stem>/ each. Exit 2 on bad input."""
    stdout = out or sys.stdout
    parser = argparse.ArgumentParser(
        prog="rearguard scenario",
        description="Render generated partner-walk scenes (clip.mp4) with exact ground truth (truth.json).",
    )
    parser.add_argument("specs", nargs="+", metavar="SPEC", help="a spec .json file, or a folder of them")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    parser.add_argument(
        "--jobs", type=int, default=1, metavar="N", help="scenes rendered at once (default 1)"
    )
    parser.add_argument(
        "--clips", type=Path, default=None, metavar="DIR", help=f"real footage (default {DEFAULT_CLIPS_DIR})"
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage and the problem
        return int(exc.code) if isinstance(exc.code, int) else 2
    if not 1 <= args.jobs <= 64:
        print(f"rearguard scenario: --jobs expected 1..64, got {args.jobs}", file=sys.stderr)
        return 2
    files, problems = _spec_files(args.specs)
    specs: list[tuple[ScenarioSpec, Path]] = []
    for path, _ in files:
        try:
            specs.append((load_spec(path), path))
        except SpecError as exc:
            problems.append(str(exc))
    stems = [p.stem for _, p in specs]
    for stem in sorted({s for s in stems if stems.count(s) > 1}):
        problems.append(f"two specs named {stem!r}: their output folders would clash")
    if problems:
        for p in problems:
            print(f"rearguard scenario: {p}", file=sys.stderr)
        return 2
    single = len(files) == 1 and not files[0][1]
    jobs = [(spec, args.out if single else args.out / path.stem) for spec, path in specs]
    for _, dest in jobs:
        if not replaceable(dest):
            problems.append(f"{dest} exists and is not an earlier scene's output; choose another --out")
    if problems:
        for p in problems:
            print(f"rearguard scenario: {p}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        if args.jobs == 1 or len(jobs) == 1:
            for spec, dest in jobs:
                _, secs = _render_job(spec, dest, args.clips)
                print(f"{dest}: {spec.frame_count} frames in {secs:.1f} s", file=stdout, flush=True)
        else:
            ctx = multiprocessing.get_context("spawn")  # MediaPipe's graph threads do not survive fork
            # one OpenCV thread per worker: the workers are the parallelism
            with ProcessPoolExecutor(args.jobs, ctx, initializer=cv2.setNumThreads, initargs=(1,)) as pool:
                futures = {
                    pool.submit(_render_job, spec, dest, args.clips): (spec, dest) for spec, dest in jobs
                }
                for fut, (spec, dest) in futures.items():
                    _, secs = fut.result()
                    print(f"{dest}: {spec.frame_count} frames in {secs:.1f} s", file=stdout, flush=True)
    except ScenarioError as exc:
        print(f"rearguard scenario: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # an --out that cannot be written: one line, not a traceback
        print(
            f"rearguard scenario: cannot write {exc.filename or args.out}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 2
    print(f"{len(jobs)} scene(s) in {time.perf_counter() - start:.1f} s", file=stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
