"""Wire format of the WebSockets (see docs/protocol.md): frame envelopes in, JSON messages both ways."""

from __future__ import annotations

import json
import math
import numbers
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from vision.alerts import Active, Cue
from vision.sensors import is_elevation
from vision.types import Analysis

PROTOCOL_VERSION = 1
FRAME_MAGIC = b"RGF1"
_HEADER_LEN = struct.Struct(">H")

# Close codes. 1xxx are RFC 6455; 4xxx are ours.
CLOSE_GOING_AWAY = 1001
CLOSE_UNSUPPORTED = 1003  # binary on a socket that takes none
CLOSE_POLICY = 1008  # too many malformed messages
CLOSE_TOO_BIG = 1009
CLOSE_TOO_SLOW = 4008  # a client that does not read its messages
CLOSE_UNAUTHORIZED = 4401
CLOSE_NO_SESSION = 4404
CLOSE_WRONG_MODE = 4405  # a role the session's mode has no place for (a solo phone on a partner session)
CLOSE_CAMERA_TAKEN = 4409
CLOSE_REPLACED = 4410  # a newer camera connection of the same session took over


class ProtocolError(ValueError):
    """A message the server cannot use; `code` is the error code sent back."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class FrameEnvelope:
    """A camera frame: JPEG bytes plus what the phone knew when it captured them."""

    jpeg: bytes
    seq: int | None = None
    capture_ms: float | None = None  # the phone's clock; only the phone compares it
    pitch_deg: float | None = None  # the camera's elevation from the phone's tilt sensor, up positive


def _num(header: dict[str, Any], key: str) -> float | None:
    value = header.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProtocolError("bad_frame_header", f"{key} must be a finite number")
    return float(value)


def _elevation(header: dict[str, Any]) -> float | None:
    pitch = _num(header, "pitch")
    if pitch is not None and not is_elevation(pitch):  # NaN fails too (JSON allows it)
        raise ProtocolError("bad_frame_header", "pitch must be the camera's elevation, -90 to 90 degrees")
    return pitch


def parse_frame(data: bytes) -> FrameEnvelope:
    """A binary message is either a bare JPEG or `RGF1` + u16 big-endian header length + JSON + JPEG."""
    if not data.startswith(FRAME_MAGIC):
        return FrameEnvelope(jpeg=data)
    if len(data) < 6:
        raise ProtocolError("bad_frame_header", "frame envelope shorter than its header")
    (n,) = _HEADER_LEN.unpack_from(data, 4)
    if len(data) < 6 + n:
        raise ProtocolError("bad_frame_header", "frame header runs past the message")
    try:
        header = json.loads(data[6 : 6 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError("bad_frame_header", f"frame header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise ProtocolError("bad_frame_header", "frame header must be a JSON object")
    seq = header.get("seq")
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int)):
        raise ProtocolError("bad_frame_header", "seq must be an integer")
    return FrameEnvelope(
        jpeg=data[6 + n :],
        seq=seq,
        capture_ms=_num(header, "t"),
        pitch_deg=_elevation(header),
    )


def pack_frame(jpeg: bytes, **header: Any) -> bytes:
    """The inverse of parse_frame, for clients written in Python (tests, replay --realtime, benchmarks)."""
    raw = json.dumps(header, separators=(",", ":")).encode()
    return FRAME_MAGIC + _HEADER_LEN.pack(len(raw)) + raw + jpeg


def parse_control(text: str) -> dict[str, Any]:
    try:
        msg = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError("bad_json", f"message is not JSON: {exc.msg}") from exc
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise ProtocolError("bad_message", 'a message must be a JSON object with a string "type"')
    return msg


def message(type_: str, /, **fields: Any) -> dict[str, Any]:
    return {"type": type_, "v": PROTOCOL_VERSION, **fields}


def encode(msg: dict[str, Any]) -> str:
    """A server message as JSON text a browser can parse: Python would write NaN and Infinity, which
    JSON.parse refuses, and the page drops the whole message (a cue among them) without a word. A
    non-finite number, wherever it came from, goes out as null."""
    try:
        return json.dumps(msg, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return json.dumps(_finite(msg), separators=(",", ":"), allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def cue_message(cue: Cue, cue_id: int, seq: int | None, capture_ms: float | None) -> dict[str, Any]:
    return message(
        "cue",
        id=cue_id,
        tier=cue.tier,
        kind=cue.kind,
        side=cue.side,
        text=cue.text,
        distance_m=cue.distance_m,
        ttc_s=cue.ttc_s,
        repeat=cue.repeat,
        phrase=cue.phrase,
        key=cue.key,
        t=round(cue.t_s, 3),
        seq=seq,
        capture_ms=capture_ms,
    )


def alert_message(active: Sequence[Active]) -> dict[str, Any]:
    """What is sounding now, most important first: the walker page's beeper follows the first."""
    return message(
        "alert",
        active=[
            {
                "key": a.key,
                "tier": a.tier,
                "kind": a.kind,
                "side": a.side,
                "ttc_s": None if a.ttc_s is None else round(a.ttc_s, 2),
                "distance_m": None if a.distance_m is None else round(a.distance_m, 2),
            }
            for a in active[:3]
        ],
    )


def pose_payload(analysis: Analysis) -> dict[str, Any] | None:
    if analysis.walker is None:
        return None
    w = analysis.walker
    return {
        "xy": [[round(float(x), 4), round(float(y), 4)] for x, y in w.xy],
        "vis": [round(float(v), 2) for v in w.visibility],
    }


# The partner's view of the walker's path, as the camera page draws it (`status.path`). Bounded so one
# odd frame cannot bloat the message: the page needs a few obstacles and a simple polygon.
MAX_PATH_OBSTACLES: Final = 8
MAX_CORRIDOR_POINTS: Final = 64
_OBSTACLE_NUMBERS = ("distance_m", "distance_sd_m", "closing_mps", "ttc_s")


def _r2(value: Any) -> float | None:
    """A finite number (numpy scalars too) rounded to 2 decimals, else None (unknown)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    x = float(value)
    return round(x, 2) if math.isfinite(x) else None


def _ints(values: Any, n: int | None = None) -> list[int] | None:
    """A flat list of numbers as ints (pixels), or None when it is not one (of length `n`)."""
    try:
        out = [round(float(v)) for v in values]
    except (TypeError, ValueError, OverflowError):
        return None
    return out if n is None or len(out) == n else None


def _obstacle(item: Any) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        return None
    ident = item.get("id")
    if isinstance(ident, numbers.Integral) and not isinstance(ident, bool):
        ident = int(ident)  # numpy integers too
    out: dict[str, Any] = {
        "id": ident if isinstance(ident, int | str) and not isinstance(ident, bool) else None,
        "kind": str(item.get("kind") or "obstacle"),
        "side": item.get("side") if item.get("side") in ("left", "centre", "right") else None,
        "in_corridor": bool(item.get("in_corridor", False)),
        "box_px": _ints(item["box_px"], 4) if item.get("box_px") is not None else None,
    }
    for key in _OBSTACLE_NUMBERS:
        out[key] = _r2(item.get(key))
    return out


def path_payload(path: dict[str, Any]) -> dict[str, Any] | None:
    """`Analysis.path` (vision/types.py PATH_KEYS) for the camera page, or None when the pipeline gave
    none. Missing keys become null; floats are rounded to 2 decimals; the corridor and boxes are integer
    pixels of the analysed frame (`frame_wh`). Malformed parts are dropped, never raised: a status must
    not cost the session its vision loop."""
    if not path:
        return None
    by_m, corridor = path.get("coverage_by_m"), path.get("corridor_px")
    if isinstance(by_m, np.ndarray):  # should a stage hand over an array rather than a list
        by_m = by_m.tolist()
    if isinstance(corridor, np.ndarray):
        corridor = corridor.tolist()
    points = []
    if isinstance(corridor, list | tuple):
        for pt in corridor[:MAX_CORRIDOR_POINTS]:
            uv = _ints(pt, 2)
            if uv is not None:
                points.append(uv)
    obstacles = path.get("obstacles")
    sent: list[dict[str, Any]] = []
    for item in obstacles if isinstance(obstacles, list | tuple) else ():
        o = _obstacle(item)
        if o is not None and len(sent) < MAX_PATH_OBSTACLES:
            sent.append(o)
    coach, coach_id = path.get("coach"), path.get("coach_id")
    return {
        "coverage": _r2(path.get("coverage")),
        "coverage_by_m": [_r2(v) for v in by_m] if isinstance(by_m, list | tuple) else None,
        "coverage_low": bool(path.get("coverage_low", False)),
        "coach": coach if isinstance(coach, str) and coach else None,
        "coach_id": coach_id if isinstance(coach_id, str) and coach_id else None,
        "walker_speed_mps": _r2(path.get("walker_speed_mps")),
        "motion_known": path["motion_known"] if isinstance(path.get("motion_known"), bool) else None,
        "camera_height_m": _r2(path.get("camera_height_m")),
        "camera_height_measured": path.get("camera_height_measured") is True,
        "corridor_px": points if len(points) >= 3 else None,
        "obstacles": sent,
    }
