"""Wire format of the WebSockets (see docs/protocol.md): frame envelopes in, JSON messages both ways."""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vision.alerts import Active, Cue
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
    pitch_deg: float | None = None
    roll_deg: float | None = None


def _num(header: dict[str, Any], key: str) -> float | None:
    value = header.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProtocolError("bad_frame_header", f"{key} must be a number")
    return float(value)


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
        pitch_deg=_num(header, "pitch"),
        roll_deg=_num(header, "roll"),
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
