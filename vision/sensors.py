"""The phone's tilt as its gravity sensor reports it: a log beside a clip, and a model of the sensor.

Live, the camera page sends with each frame the elevation of the phone's camera (degrees, up positive,
computed from DeviceOrientation's beta and gamma: see web_client/camera.js), and partner mode measures
the camera's height from it instead of assuming one (vision/ground.py). A replayed clip has no sensor,
unless a log comes with it: `CLIP.sensors.json` beside the clip (or `rearguard replay --sensors FILE`), one
reading per frame of the clip,

    {"format": "rearguard-sensors/1", "pitch_deg": [-11.2, -11.0, null, ...], "model": {...}}

(`null` where the phone said nothing; `model` is free-form, how the log was made). The scene generator
writes one for each scene, from the rendered camera's true pitch through `TiltModel`, the errors of a
phone's fused tilt: a bias that stays for the whole walk (a phone's accelerometer is true to about a
degree once its fusion has settled; the walk's accelerations, filtered by the gyroscope, add a slow
wobble), noise on each reading, and a lag (the reading attached to a frame is the newest one when the
page grabs the frame, which the camera took a little earlier).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

SENSORS_FORMAT = "rearguard-sensors/1"


class SensorLogError(ValueError):
    """A sensor log that cannot be used with its clip."""


@dataclass(frozen=True)
class TiltModel:
    bias_deg: float = 1.0  # at most this far off for the whole walk, drawn per clip (signed, uniform)
    wobble_deg: float = 0.5  # the walk's accelerations left in the fused tilt: a sine at the step rate
    step_hz: float = 1.8  # a partner's steps, 100-120 a minute
    noise_deg: float = 0.2  # each reading's own noise
    lag_s: float = 0.05  # the reading is older than the frame by this much


def simulated_pitch(true_pitch_deg: Sequence[float], fps: float, seed: int, model: TiltModel) -> list[float]:
    """What a phone's tilt sensor would report with each frame, from the camera's true elevation per
    frame (degrees, up positive) at `fps`; the same seed gives the same readings."""
    rng = np.random.default_rng(seed)
    bias = float(rng.uniform(-model.bias_deg, model.bias_deg))
    phase = float(rng.uniform(0.0, 2.0 * math.pi))
    t = np.arange(len(true_pitch_deg)) / fps
    lagged = np.interp(t - model.lag_s, t, np.asarray(true_pitch_deg, float))
    wobble = model.wobble_deg * np.sin(2.0 * math.pi * model.step_hz * t + phase)
    noise = rng.normal(0.0, model.noise_deg, len(t))
    return [round(float(v), 3) for v in lagged + bias + wobble + noise]


def is_elevation(value: object) -> bool:
    """A camera elevation in degrees: a finite number from -90 (straight down) to 90 (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and -90.0 <= value <= 90.0


def reading_at(pitch_deg: Sequence[float | None] | None, i: int) -> float | None:
    """Frame `i`'s reading of a log (None without a log, past its end, or where the phone said nothing)."""
    return pitch_deg[i] if pitch_deg is not None and 0 <= i < len(pitch_deg) else None


def sensors_path_for(clip: Path) -> Path:
    """Where a clip's sensor log is looked for: beside it, CLIP.sensors.json."""
    return clip.with_name(clip.stem + ".sensors.json")


def sensor_log(pitch_deg: Sequence[float | None], model: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"format": SENSORS_FORMAT, "pitch_deg": list(pitch_deg), "model": model or {}}


def scene_sensor_log(truth: dict[str, Any], model: TiltModel | None = None) -> dict[str, Any]:
    """The log a phone would have written beside a rendered scene (its truth.json as a dict)."""
    model = model or TiltModel()
    true_pitch = [float(fr["camera"]["pitch_deg"]) for fr in truth["per_frame"]]
    seed = int(truth["spec"].get("seed", 0)) + 7919  # not the render's own stream
    readings = simulated_pitch(true_pitch, float(truth["fps"]), seed, model)
    return sensor_log(readings, {"simulated": asdict(model), "seed": seed})


def load_pitch(path: Path) -> list[float | None]:
    """The per-frame pitch readings of a sensor log; SensorLogError if it is not one."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SensorLogError(f"{path}: cannot read a sensor log: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != SENSORS_FORMAT:
        raise SensorLogError(f"{path}: not a sensor log (expected format {SENSORS_FORMAT!r})")
    values = doc.get("pitch_deg")
    if not isinstance(values, list):
        raise SensorLogError(f"{path}: 'pitch_deg' must be a list, one reading per frame")
    out: list[float | None] = []
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
        elif is_elevation(v):
            out.append(float(v))
        else:
            raise SensorLogError(
                f"{path}: reading {i} is {v!r}, not an elevation in degrees (-90 to 90) or null"
            )
    return out
