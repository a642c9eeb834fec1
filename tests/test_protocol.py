"""Frame envelopes and control messages: what parses and what is refused, with which code."""

from __future__ import annotations

import json

import pytest

from server.protocol import (
    FRAME_MAGIC,
    ProtocolError,
    encode,
    message,
    pack_frame,
    parse_control,
    parse_frame,
)


def test_bare_jpeg_is_a_frame() -> None:
    env = parse_frame(b"\xff\xd8abc\xff\xd9")
    assert env.jpeg == b"\xff\xd8abc\xff\xd9" and env.seq is None


def test_envelope_round_trip() -> None:
    env = parse_frame(pack_frame(b"\xff\xd8x\xff\xd9", seq=7, t=12.5, pitch=-10, roll=2.0))
    assert (env.jpeg, env.seq, env.capture_ms, env.pitch_deg) == (b"\xff\xd8x\xff\xd9", 7, 12.5, -10.0)


@pytest.mark.parametrize(
    "data",
    [
        FRAME_MAGIC + b"\x00",  # shorter than the length field
        FRAME_MAGIC + b"\x00\x50{}",  # header length past the end
        FRAME_MAGIC + b"\x00\x03abc",  # header not JSON
        FRAME_MAGIC + b"\x00\x02[]",  # header not an object
        pack_frame(b"", seq="one"),
        pack_frame(b"", t="now"),
        pack_frame(b"", seq=True),
        pack_frame(b"", pitch=95.0),  # not an elevation
        pack_frame(b"", pitch=float("nan")),
        # echoed into every cue and status: NaN would make them JSON that a browser's JSON.parse refuses
        pack_frame(b"", t=float("nan")),
        pack_frame(b"", t=float("inf")),
        pack_frame(b"", seq=float("-inf")),
    ],
)
def test_bad_envelopes_are_refused(data: bytes) -> None:
    with pytest.raises(ProtocolError) as err:
        parse_frame(data)
    assert err.value.code == "bad_frame_header"


@pytest.mark.parametrize(
    ("text", "code"),
    [("{", "bad_json"), ("[1]", "bad_message"), ('{"type": 3}', "bad_message"), ('"x"', "bad_message")],
)
def test_bad_control_messages(text: str, code: str) -> None:
    with pytest.raises(ProtocolError) as err:
        parse_control(text)
    assert err.value.code == code


def test_good_control_message() -> None:
    assert parse_control('{"type": "ping", "t": 1}') == {"type": "ping", "t": 1}


def test_messages_are_json_a_browser_can_parse() -> None:
    """NaN or Infinity anywhere in a message goes out as null; JSON.parse refuses Python's NaN and the page
    would drop the whole message."""
    msg = message("cue", ttc_s=float("nan"), distance_m=1.5, extra={"a": [float("inf"), 2.0, -float("inf")]})
    text = encode(msg)
    assert "NaN" not in text and "Infinity" not in text
    expected = {"type": "cue", "v": 1, "ttc_s": None, "distance_m": 1.5, "extra": {"a": [None, 2.0, None]}}
    assert json.loads(text) == expected
    assert encode(message("ok", x=1.25)) == '{"type":"ok","v":1,"x":1.25}'
