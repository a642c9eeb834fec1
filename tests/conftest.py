"""Shared fixtures: real clips from ../shared (skipped when absent) and a real uvicorn on loopback."""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
import uvicorn

from server.app import create_app
from server.clips import frames, probe
from server.config import Settings

CLIPS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "clips"


def clip_path(name: str) -> Path:
    path = CLIPS_DIR / name
    if not path.is_file():
        pytest.skip(f"real footage {path} is absent (it lives in ../shared/clips beside the checkout)")
    return path


def read_frames(name: str, limit: int = 1000, full_size: bool = False) -> list[np.ndarray]:
    """Frames of a real clip as replay and the camera page see them: upright, 640 px on the long side (or,
    `full_size`, at the clip's own size)."""
    info = probe(clip_path(name))
    info = replace(info, analysis_wh=info.source_wh) if full_size else info
    return list(itertools.islice(frames(info), limit))


def jpeg(frame: np.ndarray, quality: int = 80) -> bytes:
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def empty_scene(w: int = 360, h: int = 640, seed: int = 7) -> np.ndarray:
    """A path with nobody on it: a textured ground, so the pose model has something to look at. Frames of a
    stream need different `seed`s, as a real sensor's noise makes them differ: the server takes a frame that
    repeats the one before byte for byte for a frozen picture, not for a new frame."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), (90, 110, 120), np.uint8)
    img[h // 2 :] = (60, 80, 70)
    noise = rng.integers(0, 25, size=(h, w, 1), dtype=np.uint8)
    return cv2.add(img, np.repeat(noise, 3, axis=2))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    base: str
    settings: Settings
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def ws_base(self) -> str:
        return self.base.replace("http://", "ws://")

    def create_session(self, mode: str = "partner") -> dict[str, str]:
        r = httpx.post(f"{self.base}/api/sessions", json={"mode": mode})
        r.raise_for_status()
        return dict(r.json())

    def ws_url(self, role: str, session: dict[str, str], token: str | None = None) -> str:
        tok = session["token"] if token is None else token
        return f"{self.ws_base}/ws/{role}/{session['session_id']}?token={tok}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_server(**overrides: object) -> LiveServer:
    port = free_port()
    settings = Settings(host="127.0.0.1", port=port, **overrides)  # type: ignore[arg-type]
    app = create_app(settings)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", ws_max_size=settings.max_frame_bytes + 4096
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    return LiveServer(f"http://127.0.0.1:{port}", settings, server, thread)


@pytest.fixture
def live_server() -> Iterator[LiveServer]:
    srv = start_server()
    yield srv
    srv.stop()
