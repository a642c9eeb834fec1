"""The command line and `--https`: bad flags get a clear error; the self-signed certificate serves TLS."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography import x509

from server.app import create_app
from server.config import Settings
from server.tls import ensure_certificate
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "--port", "eighty"], "invalid int value"),
        (["serve", "--bogus"], "unrecognized arguments"),
        (["models", "rebuild"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_flags_exit_2_with_a_message(args: list[str], message: str) -> None:
    r = subprocess.run([sys.executable, "-m", "server", *args], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and message in r.stderr


def test_bad_setting_in_the_environment_is_refused_clearly() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "server", "serve", "--port", "1"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"REARGUARD_MAX_SESSIONS": "0", "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert r.returncode != 0 and "max_sessions" in r.stderr


def test_models_verify_passes() -> None:
    cmd = [sys.executable, "-m", "server", "models", "verify"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and "checksum ok" in r.stdout


def test_self_signed_certificate_covers_the_hosts_and_is_reused(tmp_path: Path) -> None:
    cert, key = ensure_certificate(tmp_path, ["192.168.1.20", "rearguard.local"])
    san = x509.load_pem_x509_certificate(cert.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    names = {str(v) for v in san.value.get_values_for_type(x509.DNSName)}
    ips = {str(v) for v in san.value.get_values_for_type(x509.IPAddress)}
    assert {"rearguard.local", "localhost"} <= names and {"192.168.1.20", "127.0.0.1"} <= ips
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    before = cert.read_bytes()
    ensure_certificate(tmp_path, ["192.168.1.20"])
    assert cert.read_bytes() == before  # still covers the host: not remade
    ensure_certificate(tmp_path, ["10.0.0.5"])
    assert cert.read_bytes() != before  # a new address: remade


def test_https_serves_with_the_certificate(tmp_path: Path) -> None:
    cert, key = ensure_certificate(tmp_path, [])
    port = free_port()
    app = create_app(Settings(host="127.0.0.1", port=port))
    tls = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **tls))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        context = ssl.create_default_context(cafile=str(cert))
        r = httpx.get(f"https://127.0.0.1:{port}/healthz", verify=context)
        assert r.json()["status"] == "ok"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_the_links_serve_prints_open_sessions_of_their_own_mode(tmp_path: Path) -> None:
    """`serve` prints a partner walk's links and a solo workout's: each opens a session of its mode (the
    solo link once opened a partner session, with no treadmill monitor behind "Watching")."""
    import json
    import queue
    import re

    from websockets.sync.client import connect

    port = free_port()
    cmd = [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", str(port)]
    env = {"PATH": "/usr/bin:/bin", "REARGUARD_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert proc.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout or []], daemon=True).start()
        links: dict[str, str] = {}
        deadline = time.monotonic() + 60
        while "solo" not in links and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                line = lines.get(timeout=1)
                if m := re.search(r"(camera|walker|solo)\.html#s=([\w-]+)&t=([\w-]+)", line):
                    links[m.group(1)] = f"/ws/{m.group(1)}/{m.group(2)}?token={m.group(3)}"
        assert set(links) == {"camera", "walker", "solo"}
        while time.monotonic() < deadline:  # the links are printed as the app starts, before it listens
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            time.sleep(0.1)
        for role, mode in (("camera", "partner"), ("solo", "solo")):
            with connect(f"ws://127.0.0.1:{port}{links[role]}") as ws:
                welcome = json.loads(ws.recv(timeout=10))
                assert welcome["type"] == "welcome" and welcome["mode"] == mode
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        if proc.stdout is not None:
            proc.stdout.close()
