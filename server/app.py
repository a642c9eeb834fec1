"""The FastAPI app: health, session creation, the camera / walker / solo WebSockets, and the web client."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import io
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, HTTPException, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from models import verify_bundle
from server.config import Settings
from server.protocol import (
    CLOSE_CAMERA_TAKEN,
    CLOSE_NO_SESSION,
    CLOSE_POLICY,
    CLOSE_REPLACED,
    CLOSE_TOO_BIG,
    CLOSE_UNAUTHORIZED,
    CLOSE_UNSUPPORTED,
    CLOSE_WRONG_MODE,
    ProtocolError,
    message,
    parse_control,
    parse_frame,
)
from server.sessions import Peer, Session, SessionRegistry, now_ms
from server.soundtrack import espeak_available, phrase_wav
from vision.phrases import all_phrases
from vision.treadmill import TreadmillConfig

logger = logging.getLogger(__name__)
# What the solo page may tell of the walker and the belt: the treadmill settings' own bounds, metres
TREADMILL_BOUNDS = {
    k: tuple(v["range"])
    for k, v in TreadmillConfig.describe().items()
    if k in ("body_height_m", "belt_length_m", "belt_width_m")
}
WEB_CLIENT_DIR = Path(__file__).resolve().parent.parent / "web_client"
Role = Literal["camera", "walker", "solo"]


class SessionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["partner", "solo"] = "partner"


class SessionCreated(BaseModel):
    session_id: str
    token: str
    mode: str
    camera_url: str | None = Field(description="partner sessions: the partner's phone")
    walker_url: str | None = Field(description="the walker's phone (or a second phone that only listens)")
    solo_url: str | None = Field(description="solo sessions: the one phone by the treadmill")
    ws: dict[str, str] = Field(description="WebSocket paths for each role; add ?token=")


@functools.lru_cache(maxsize=64)
def qr_svg_bytes(data: str) -> bytes:
    """A QR code of `data` as SVG."""
    import qrcode
    import qrcode.image.svg

    img = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    buf = io.BytesIO()
    img.save(buf)
    return buf.getvalue()


def base_url(settings: Settings, request: Request) -> str:
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/")
    return str(request.base_url).rstrip("/")


# The roles each mode has a place for. A solo page on a partner session would run the obstacle pipeline
# and say "Watching" with no treadmill monitor behind it (the links `serve` printed did exactly that).
ROLES_BY_MODE: dict[str, tuple[str, ...]] = {"partner": ("camera", "walker"), "solo": ("solo", "walker")}


def session_links(session: Session, base: str) -> dict[str, str | None]:
    """The pages of the session's own roles; None for the other mode's."""
    frag = f"#s={session.id}&t={session.token}"
    roles = ROLES_BY_MODE[session.mode]
    return {
        f"{role}_url": f"{base}/{role}.html{frag}" if role in roles else None
        for role in ("camera", "walker", "solo")
    }


def create_app(
    settings: Settings | None = None, on_ready: Callable[[SessionRegistry], None] | None = None
) -> FastAPI:
    """The service. `on_ready` runs once the session registry exists (the CLI prints links from it)."""
    settings = settings or Settings()
    # Fail at start-up, not on the first frame, when the model bundle is missing or corrupt.
    verify_bundle(settings.model_path)
    settings.pipeline_config()  # a bad drill file fails here, at start-up, not in a session

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        executor = ThreadPoolExecutor(max_workers=settings.vision_workers, thread_name_prefix="vision")
        registry = SessionRegistry(settings, executor)
        app.state.registry = registry

        async def reaper() -> None:
            while True:
                await asyncio.sleep(5)
                await registry.reap()

        reap_task = asyncio.create_task(reaper())
        if on_ready is not None:
            on_ready(registry)
        try:
            yield
        finally:
            reap_task.cancel()
            await registry.close_all()
            executor.shutdown(wait=True, cancel_futures=True)

    app = FastAPI(title="Rearguard", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.started = time.time()

    @app.get("/healthz")
    async def healthz(request: Request) -> dict[str, Any]:
        registry: SessionRegistry = request.app.state.registry
        return {
            "status": "ok",
            "sessions": len(registry.sessions),
            "max_sessions": settings.max_sessions,
            "uptime_s": round(time.time() - request.app.state.started, 1),
        }

    @app.post("/api/sessions", status_code=201)
    async def create_session(request: Request, body: SessionRequest | None = None) -> SessionCreated:
        registry: SessionRegistry = request.app.state.registry
        session = registry.create(body.mode if body else "partner")
        if session is None:
            raise HTTPException(503, f"server is full ({settings.max_sessions} sessions); try again later")
        return SessionCreated(
            session_id=session.id,
            token=session.token,
            mode=session.mode,
            **session_links(session, base_url(settings, request)),
            ws={role: f"/ws/{role}/{session.id}" for role in ROLES_BY_MODE[session.mode]},
        )

    @app.delete("/api/sessions/{session_id}", status_code=204)
    async def end_session(request: Request, session_id: str, token: str | None = None) -> Response:
        """Ends a session now (its sockets are closed with 1001): a replay that streamed a clip gives back its
        place at once instead of holding it for the idle half hour. Needs the session's token."""
        registry: SessionRegistry = request.app.state.registry
        session = registry.get(session_id)
        if session is None:
            raise HTTPException(404, "no such session")
        if not session.check_token(token):
            raise HTTPException(403, "wrong or missing token")
        await registry.end(session_id)
        return Response(status_code=204)

    @app.get("/api/qr.svg")
    async def qr_svg(data: Annotated[str, Query(max_length=512)]) -> Response:
        # Drawn off the event loop (a 1 kB code took 90-130 ms inline, and a burst of requests held back
        # every session's heartbeats past the walker page's alarm) and kept: a session's links do not change.
        svg = await run_in_threadpool(qr_svg_bytes, data)
        return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})

    phrase_texts = all_phrases()

    @app.get("/api/phrases")
    async def phrases() -> dict[str, Any]:
        """Every phrase a cue may speak, with a URL of its pre-rendered audio (None without espeak-ng:
        the page then uses the browser's own speech)."""
        rendered = espeak_available()
        return {
            "rendered": rendered,
            "phrases": {
                pid: {
                    "text": text,
                    "url": f"/api/phrases/{pid}.wav?v={hashlib.sha1(text.encode()).hexdigest()[:8]}"
                    if rendered
                    else None,
                }
                for pid, text in phrase_texts.items()
            },
        }

    @app.get("/api/phrases/{pid}.wav")
    async def phrase_audio(pid: str) -> Response:
        if pid not in phrase_texts:
            raise HTTPException(404, f"no phrase {pid!r}")
        if not espeak_available():
            raise HTTPException(
                503, "espeak-ng is not installed on the server (scripts/install.sh installs it)"
            )
        data = await run_in_threadpool(phrase_wav, phrase_texts[pid])
        # The URL carries a hash of the text, so the page may keep it for good.
        return Response(
            data, media_type="audio/wav", headers={"Cache-Control": "public, max-age=31536000, immutable"}
        )

    @app.websocket("/ws/{role}/{session_id}")
    async def ws_endpoint(websocket: WebSocket, role: str, session_id: str, token: str | None = None) -> None:
        await handle_socket(websocket, role, session_id, token)

    async def handle_socket(ws: WebSocket, role: str, session_id: str, token: str | None) -> None:
        registry: SessionRegistry = ws.app.state.registry
        await ws.accept()
        # Refusals come after accept so a browser sees the close code, not a bare failed handshake.
        if role not in ("camera", "walker", "solo"):
            await ws.close(CLOSE_NO_SESSION, f"unknown role {role!r}")
            return
        session = registry.get(session_id)
        if session is None:
            await ws.close(CLOSE_NO_SESSION, "no such session")
            return
        if not session.check_token(token):
            logger.warning("session %s: %s refused, wrong or missing token", session_id, role)
            await ws.close(CLOSE_UNAUTHORIZED, "wrong or missing token")
            return
        if role not in ROLES_BY_MODE[session.mode]:
            other = (
                "a partner walk: open its camera or walker link"
                if session.mode == "partner"
                else ("a solo treadmill workout: open its solo link")
            )
            await ws.close(CLOSE_WRONG_MODE, f"this session is for {other}")
            return
        if role == "walker" and len(session.walkers) >= settings.max_walkers_per_session:
            # A phone that dropped off the network leaves its socket open until TCP gives up: a dead one
            # makes room (a page refused here stops retrying, and its walker would hear only its own stop).
            t = now_ms()
            dead = [w for w in session.walkers if w.role == "walker" and not w.alive(t)]
            if not dead:
                await ws.close(CLOSE_CAMERA_TAKEN, "too many walker devices on this session")
                return
            oldest = min(dead, key=lambda w: w.last_heard_ms)
            session.walkers.discard(oldest)
            await oldest.close(CLOSE_REPLACED, "replaced by a newer walker connection")
        takes_frames = role in ("camera", "solo")
        if takes_frames and session.camera is not None:
            if not session.camera_stale():
                await ws.close(CLOSE_CAMERA_TAKEN, "this session already has a camera")
                return
            # A phone that reconnects after a network drop replaces its own stale socket.
            old = session.camera
            session.camera = None
            await old.close(CLOSE_REPLACED, "replaced by a newer camera connection")
        peer = Peer(ws, role, session.id)
        if takes_frames:
            session.camera = peer
        if role in ("walker", "solo"):
            session.walkers.add(peer)
        session.touch()
        session.welcome(peer)
        logger.info("session %s: %s connected", session.id, role)
        try:
            await receive_loop(session, peer, takes_frames)
        finally:
            peer.stop()
            session.walkers.discard(peer)
            session.touch()
            if session.camera is peer:
                session.camera_gone()
            logger.info("session %s: %s disconnected", session.id, role)

    async def receive_loop(session: Session, peer: Peer, takes_frames: bool) -> None:
        ws = peer.ws
        while True:
            try:
                msg = await ws.receive()
            except WebSocketDisconnect:
                return
            if msg["type"] == "websocket.disconnect":
                return
            received = now_ms()
            peer.last_heard_ms = received
            data: bytes | None = msg.get("bytes")
            text: str | None = msg.get("text")
            try:
                if data is not None:
                    if not takes_frames:
                        await peer.close(CLOSE_UNSUPPORTED, "this socket takes no binary frames")
                        return
                    if len(data) > settings.max_frame_bytes:
                        await peer.close(CLOSE_TOO_BIG, f"frame over {settings.max_frame_bytes} bytes")
                        return
                    # Never blocks: the frame goes into the session's one slot and vision runs elsewhere.
                    session.offer_frame(parse_frame(data), received, peer)
                elif text is not None:
                    if len(text) > settings.max_text_bytes:
                        await peer.close(CLOSE_TOO_BIG, f"message over {settings.max_text_bytes} bytes")
                        return
                    handle_control(session, peer, parse_control(text))
            except ProtocolError as exc:
                peer.send(message("error", code=exc.code, detail=exc.detail))
                peer.error_times.append(received)
                recent = [t for t in peer.error_times if received - t < 60_000]
                if len(recent) > settings.max_errors_per_minute:
                    await peer.close(CLOSE_POLICY, "too many malformed messages")
                    return

    def handle_control(session: Session, peer: Peer, msg: dict[str, Any]) -> None:
        kind = msg["type"]
        if kind == "recalibrate":
            if session.mode != "solo" or peer is not session.camera:
                raise ProtocolError("bad_message", "recalibrate is for the solo (treadmill) phone")
            t = now_ms()
            if t - session.recalibrated_ms < 1000:
                # Taps in the same second are one request: each answered filled the page's outbox, and a burst
                # closed its socket for not reading (4008)
                return
            session.recalibrated_ms = t
            peer.keep(asyncio.create_task(session.recalibrate()))
            peer.send(message("recalibrating"))
            return
        if kind == "heartbeat":
            return
        if kind == "settings":
            sensitivity = msg.get("sensitivity")
            if sensitivity not in ("early", "normal", "fewer"):
                raise ProtocolError("bad_settings", 'sensitivity must be "early", "normal" or "fewer"')
            # The walker's stature, the ground model's ruler; null: not told (the prior); left out: unchanged.
            height = msg.get("height_m")
            if height is not None and (
                isinstance(height, bool) or not isinstance(height, int | float) or not 1.0 <= height <= 2.3
            ):
                raise ProtocolError(
                    "bad_settings", "height_m must be the walker's height in metres, 1.0 to 2.3"
                )
            belt: dict[str, Any] = {k: msg[k] for k in ("belt_length_m", "belt_width_m") if k in msg}
            if belt and session.mode != "solo":
                raise ProtocolError("bad_settings", "belt sizes are for the solo (treadmill) phone")
            # Who tells the walker's height and the belt: any page of a partner walk, but of a solo workout
            # only the solo phone (a phone that only listens sends its own saved height on every connect,
            # which would fight the solo page's and recalibrate each time)
            tells = session.mode == "partner" or peer.role == "solo"
            if tells and session.mode == "solo":
                told = {**belt, "body_height_m": height}
                for name, value in told.items():  # null: the treadmill's default
                    low, high = TREADMILL_BOUNDS[name]
                    number = not isinstance(value, bool) and isinstance(value, int | float)
                    if value is not None and not (number and low <= value <= high):
                        raise ProtocolError("bad_settings", f"{name} must be {low}..{high} m")
            session.policy.set_sensitivity(sensitivity)
            if tells and ("height_m" in msg or belt):
                if "height_m" in msg:
                    session.walker_height_m = None if height is None else float(height)
                session.belt.update({k: None if v is None else float(v) for k, v in belt.items()})
                peer.keep(asyncio.create_task(session.apply_told()))
            peer.send(
                message("settings", sensitivity=sensitivity, height_m=session.walker_height_m, **session.belt)
            )
            return
        if kind == "swap":
            # The pair swaps roles (the brief advises it often): every walker device becomes the
            # camera and the camera becomes a walker. Pages navigate themselves; the session stays.
            if peer.role != "camera":
                raise ProtocolError("bad_message", "only the camera can ask to swap roles")
            for walker in session.walkers:
                walker.send(message("swap", role="camera"))
            peer.send(message("swap", role="walker"))
            return
        if kind == "ping":
            peer.send(message("pong", t=msg.get("t"), server_ms=round(now_ms(), 1)))
            return
        raise ProtocolError("unknown_type", f"unknown message type {kind!r}")

    app.mount("/", StaticFiles(directory=WEB_CLIENT_DIR, html=True), name="web_client")
    return app
