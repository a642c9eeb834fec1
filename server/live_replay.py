"""`rearguard replay --realtime --server URL`: stream a clip at its own frame rate to a running server as a
phone would, collect the cues that come back, and set them beside the offline timeline of the same clip."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import websockets.exceptions
from websockets.asyncio.client import connect

from server.clips import ClipError, ClipInfo, phone_jpeg, probe, timed_frames
from server.protocol import pack_frame
from server.replay import (
    ReplayOptions,
    check_out_dir,
    match_events,
    percentile,
    replay_clip,
    sensor_readings,
)
from vision.sensors import reading_at

TAIL_S = 1.0  # wait this long after the last frame for its status and cues


class ServerError(Exception):
    """The server answered, but not as a Rearguard server does, or it went away mid-stream."""


def create_session(server: str, mode: str = "partner") -> dict[str, Any]:
    req = urllib.request.Request(
        f"{server.rstrip('/')}/api/sessions",
        data=json.dumps({"mode": mode}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # the user's own server URL
            data = json.load(resp)
    except urllib.error.HTTPError as exc:  # before OSError: it is one, but the server did answer
        body = exc.read(500).decode("utf-8", "replace")
        try:
            detail = json.loads(body).get("detail", body)
        except (ValueError, AttributeError):
            detail = body.strip()[:200]
        raise ServerError(f"{server} refused a session: HTTP {exc.code} {detail}") from exc
    except ValueError as exc:
        raise ServerError(f"{server} is not a Rearguard server (its answer is not JSON)") from exc
    if not (
        isinstance(data, dict) and isinstance(data.get("token"), str) and isinstance(data.get("ws"), dict)
    ):
        raise ServerError(f"{server} is not a Rearguard server (no session in its answer)")
    return data


def end_session(server: str, session: dict[str, Any]) -> None:
    """Gives the session's place back at once (else it is held for the server's idle half hour, and a few
    replays filled the server: phones were refused). Best effort: the stream's result stands either way."""
    query = urllib.parse.urlencode({"token": session["token"]})
    url = (
        f"{server.rstrip('/')}/api/sessions/{urllib.parse.quote(str(session.get('session_id', '')))}?{query}"
    )
    with contextlib.suppress(OSError):
        urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=5).close()


async def stream_clip(
    info: ClipInfo, server: str, pitch_deg: list[float | None] | None = None, mode: str = "partner"
) -> dict[str, Any]:
    """Streams the clip as a phone would: partner mode as the camera with a walker listening, treadmill mode
    as the solo phone that does both. Raises ServerError for a server that is not one, or that goes away."""
    solo = mode == "treadmill"
    session = create_session(server, "solo" if solo else "partner")
    try:
        return await _stream(info, server, session, pitch_deg, solo)
    except (websockets.exceptions.InvalidURI, websockets.exceptions.InvalidHandshake) as exc:
        raise ServerError(f"{server} is not a Rearguard server (its sockets: {exc})") from exc
    except websockets.exceptions.ConnectionClosed as exc:
        raise ServerError(f"{server} closed the stream ({exc})") from exc
    finally:
        end_session(server, session)


async def _stream(
    info: ClipInfo, server: str, session: dict[str, Any], pitch_deg: list[float | None] | None, solo: bool
) -> dict[str, Any]:
    ws_base = server.rstrip("/").replace("https://", "wss://").replace("http://", "ws://")
    query = f"?token={session['token']}"
    sent_ms: dict[int, float] = {}
    clip_s: dict[int, float] = {}  # each frame's time in the clip, s: a cue is timed by the frame it answers
    latencies: list[float] = []
    server_added: list[float] = []
    events: list[dict[str, Any]] = []
    last_status: dict[str, Any] = {}
    start = time.monotonic()

    def now_ms() -> float:
        return (time.monotonic() - start) * 1000.0

    camera_path = session["ws"]["solo" if solo else "camera"]
    async with (
        connect(ws_base + camera_path + query, max_size=2**22) as cam,
        connect(ws_base + session["ws"]["walker"] + query) as walker,
    ):

        async def read_camera() -> None:
            async for raw in cam:
                msg = json.loads(raw)
                if msg.get("type") == "status" and msg.get("seq") in sent_ms:
                    e2e = now_ms() - sent_ms[msg["seq"]]
                    latencies.append(e2e)
                    server_added.append(e2e - float(msg["timings_ms"]["pose"]))
                    last_status.update(msg)

        async def read_walker() -> None:
            # The walker's socket hears the cues (a solo session's too: a listening phone may join it)
            async for raw in walker:
                msg = json.loads(raw)
                if msg.get("type") != "cue":
                    continue
                seq = msg.get("seq")
                t = clip_s[seq] if isinstance(seq, int) and seq in clip_s else now_ms() / 1000.0
                events.append(
                    {k: msg.get(k) for k in ("tier", "kind", "side", "distance_m", "ttc_s", "text", "repeat")}
                    | {"t": round(t, 3), "received_s": round(now_ms() / 1000.0, 3)}
                )

        readers = [asyncio.create_task(read_camera()), asyncio.create_task(read_walker())]
        n, last_ms = 0, 0.0
        for i, (frame, t_ms) in enumerate(timed_frames(info)):
            # Each frame leaves when the phone would have sent it: at its time in the clip (clips.FrameClock)
            delay = start + t_ms / 1000.0 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            jpeg = phone_jpeg(frame)
            sent_ms[i], clip_s[i] = now_ms(), round(t_ms) / 1000.0
            pitch = reading_at(pitch_deg, i)
            # Stamped with the frame's time in the clip, as a phone stamps its capture time: a client that
            # falls behind and catches up in a burst must not have its frames analysed as sent
            header = {"seq": i, "t": t_ms} | ({} if pitch is None else {"pitch": pitch})
            await cam.send(pack_frame(jpeg, **header))
            n, last_ms = i + 1, t_ms
        await asyncio.sleep(max(0.0, start + last_ms / 1000.0 + 1.0 / info.fps - time.monotonic()))
        await asyncio.sleep(TAIL_S)
        for task in readers:
            task.cancel()
    duration_s = last_ms / 1000.0 + 1.0 / info.fps if n else 0.0
    return {
        "server": server,
        "frames_sent": n,
        "frames_processed": int(last_status.get("processed", 0)),
        "frames_dropped": int(last_status.get("dropped", 0)),
        "latency_ms": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95)},
        "server_added_ms": {"p50": percentile(server_added, 50), "p95": percentile(server_added, 95)},
        # Cues after the last frame are the server noticing the stream ended (camera lost), not the clip.
        "events": [e for e in events if e["t"] <= duration_s],
    }


def compare(
    offline: list[dict[str, Any]], live: list[dict[str, Any]], tolerance_s: float = 1.0
) -> dict[str, Any]:
    """Pair the onsets of the two timelines by kind and time."""
    matched, only_offline, only_live = match_events(
        [e for e in offline if not e.get("repeat")],
        [e for e in live if not e.get("repeat")],
        lambda a, b: True,
        lambda e: tolerance_s,
    )
    return {
        "matched": matched,
        "only_offline": only_offline,
        "only_live": only_live,
        "tolerance_s": tolerance_s,
    }


def cmd_realtime(args: argparse.Namespace, clips: list[Path], opts: ReplayOptions) -> int:
    if not args.server:
        print("rearguard: --realtime needs --server URL (a running `rearguard serve`)", file=sys.stderr)
        return 2
    if not args.server.startswith(("http://", "https://")):
        print(f"rearguard: --server must be an http:// or https:// URL, got {args.server!r}", file=sys.stderr)
        return 2
    status = 0
    for clip in clips:
        out = Path(args.out) if args.out and len(clips) == 1 else Path(args.out or "replay") / clip.stem
        try:
            check_out_dir(out, clip)  # before streaming: a bad --out found afterwards lost the stream
            info = probe(clip, opts.fps)
            sensors = sensor_readings(clip, info, opts)  # the phone's tilt, as the page sends it
            live = asyncio.run(stream_clip(info, args.server, sensors[1], opts.mode))
            row = replay_clip(clip, out, opts, live=live, sensors=sensors)
        except ClipError as exc:
            print(f"rearguard: {exc}", file=sys.stderr)
            status = 2
            continue
        except ServerError as exc:
            print(f"rearguard: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"rearguard: cannot reach {args.server}: {exc}", file=sys.stderr)
            return 2
        lat, cmp = live["latency_ms"], row["comparison"]
        print(
            f"{clip.name}: {live['frames_sent']} frames sent, {live['frames_processed']} processed, "
            f"{live['frames_dropped']} dropped; latency p50 {lat['p50'] or 0:.1f} ms "
            f"p95 {lat['p95'] or 0:.1f} ms; {len(cmp['matched'])} cues as offline, "
            f"{len(cmp['only_offline'])} only offline, {len(cmp['only_live'])} only live -> {out}"
        )
        if str(row.get("labels", "pass")) != "pass":
            status = max(status, 1)
    return status
