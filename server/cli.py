"""The `rearguard` command: serve, models."""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from collections.abc import Sequence

from models import BUNDLE_PATH, ModelBundleError, build_bundle, verify_bundle

logger = logging.getLogger("rearguard")


def lan_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback, as phones on the LAN would reach it."""
    addrs: set[str] = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            addrs.add(str(info[4][0]))
    except OSError:
        pass
    return sorted(a for a in addrs if not a.startswith("127."))


def print_qr(text: str) -> None:
    import qrcode

    qr = qrcode.QRCode(border=1)
    qr.add_data(text)
    qr.print_ascii(out=sys.stdout, invert=True)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from server.app import create_app, session_links
    from server.config import Settings
    from server.sessions import SessionRegistry

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if args.https:
        overrides["https"] = True
    if args.public_url:
        overrides["public_base_url"] = args.public_url
    settings = Settings(**overrides)
    scheme = "https" if settings.https else "http"
    hosts = lan_addresses() if settings.host in ("0.0.0.0", "::") else [settings.host]
    ssl_kwargs = {}
    if settings.https:
        from server.tls import ensure_certificate

        cert, key = ensure_certificate(settings.data_dir / "tls", hosts)
        ssl_kwargs = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    base = settings.public_base_url or f"{scheme}://{(hosts or ['localhost'])[0]}:{settings.port}"

    def first_session(registry: SessionRegistry) -> None:
        # One ready-made session so a pair can start from the terminal's links and QR code.
        session = registry.create("partner")
        if session is None:
            return
        links = session_links(session, base.rstrip("/"))
        print(f"\nRearguard is running. Open {base}/ on a phone to start a session, or use these:")
        print(f"  partner's phone (camera): {links['camera_url']}")
        print(f"  walker's phone:           {links['walker_url']}")
        print(f"  solo (treadmill):         {links['solo_url']}")
        if settings.https:
            print("  (self-signed certificate: accept the browser's warning once on each phone)")
        print("Walker, scan this:")
        print_qr(links["walker_url"])
        sys.stdout.flush()

    try:
        app = create_app(settings, on_ready=first_session)
    except ModelBundleError as exc:
        print(f"rearguard: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        ws_max_size=settings.max_frame_bytes + 4096,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_level="info",
        **ssl_kwargs,  # type: ignore[arg-type]
    )
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    try:
        if args.action == "build":
            path = build_bundle()
            print(f"built and verified {path}")
        else:
            path = verify_bundle()
            print(f"{path}: checksum ok")
    except ModelBundleError as exc:
        print(f"rearguard: {exc}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rearguard", description="Eyes in the back of a backward walker's head."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the service and print the links for the phones")
    serve.add_argument("--host", help="address to listen on (default 0.0.0.0)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument(
        "--https", action="store_true", help="TLS with a self-signed certificate (phones need it)"
    )
    serve.add_argument("--public-url", help="base URL for links when behind a reverse proxy")
    serve.set_defaults(func=cmd_serve)
    models = sub.add_parser("models", help=f"build or verify the pose model bundle ({BUNDLE_PATH.name})")
    models.add_argument("action", choices=["build", "verify"])
    models.set_defaults(func=cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
