"""The `rearguard` command: serve, models."""

from __future__ import annotations

import argparse
import concurrent.futures
import glob
import json
import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models import BUNDLE_PATH, ModelBundleError, build_bundle, verify_bundle

if TYPE_CHECKING:
    from server.replay import ReplayOptions

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
        # Ready-made sessions so a pair, or a solo user, can start from the terminal's links and QR code: one
        # of each mode, since a session's mode decides what watches (obstacles, or the treadmill monitor).
        # Pinned: the links stay good while the server runs, however long the phones take to be fetched.
        root = base.rstrip("/")
        print(f"\nRearguard is running. Open {base}/ on a phone to start a session, or use these:")
        pair = registry.create("partner", pinned=True)
        links = session_links(pair, root) if pair else {}
        if pair:
            print(f"  partner's phone (camera): {links['camera_url']}")
            print(f"  walker's phone:           {links['walker_url']}")
        # ...leaving a place free for a session started from the home page
        solo = registry.create("solo", pinned=True) if settings.max_sessions > 2 else None
        if solo:
            print(f"  solo (treadmill):         {session_links(solo, root)['solo_url']}")
        if settings.https:
            print("  (self-signed certificate: accept the browser's warning once on each phone)")
        if links.get("walker_url"):
            print("Walker, scan this:")
            print_qr(str(links["walker_url"]))
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
        access_log=False,  # its lines would carry session tokens from WebSocket query strings
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_level="info",
        **ssl_kwargs,  # type: ignore[arg-type]
    )
    return 0


VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi"}


def expand_clips(specs: Sequence[str]) -> list[Path]:
    """Files as given, every video in a folder, and glob patterns the shell did not expand."""
    out: list[Path] = []
    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.suffix.lower() in VIDEO_SUFFIXES)
        elif any(ch in spec for ch in "*?[") and not p.exists():
            out += sorted(Path(m) for m in glob.glob(spec))
        else:
            out.append(p)
    return out


def _replay_one(job: tuple[Path, Path, ReplayOptions]) -> tuple[str, dict[str, Any] | None, str | None]:
    from server.clips import ClipError
    from server.replay import replay_clip

    clip, out, opts = job
    try:
        return clip.name, replay_clip(clip, out, opts), None
    except ClipError as exc:
        return clip.name, None, str(exc)
    except Exception as exc:  # one broken clip must not lose the others' results
        logger.exception("replay of %s failed", clip)
        return clip.name, None, f"{type(exc).__name__}: {exc}"


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for r in rows:
        print("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns))


def cmd_replay(args: argparse.Namespace) -> int:
    from server.replay import ReplayOptions

    # Flags that would do nothing are refused, not ignored: the user meant something by them
    if args.server and not args.realtime:
        print("rearguard: --server goes with --realtime (stream to that server); add it or drop --server",
              file=sys.stderr)  # fmt: skip
        return 2
    if args.calibration and args.mode != "treadmill":
        print("rearguard: --calibration is for --mode treadmill", file=sys.stderr)
        return 2
    clips = expand_clips(args.clips)
    if not clips:
        print("rearguard: no clip matched", file=sys.stderr)
        return 2
    progress = sys.stderr.isatty() and not os.environ.get("CI")
    opts = ReplayOptions(
        mode=args.mode, video=not args.no_video, report=not args.no_report, fps=args.fps,
        labels=Path(args.labels) if args.labels else None, progress=progress and len(clips) == 1,
        calibration=Path(args.calibration) if args.calibration else None,
        sensors=Path(args.sensors) if args.sensors else None, use_sensors=not args.no_sensors,
    )  # fmt: skip
    if args.realtime:
        from server.live_replay import cmd_realtime

        return cmd_realtime(args, clips, opts)
    base = Path(args.out) if args.out else Path("replay")
    if len(clips) == 1:
        jobs = [(clips[0], base if args.out else base / clips[0].stem, opts)]
    else:
        stems = [c.stem for c in clips]
        jobs = [
            (c, base / (c.stem if stems.count(c.stem) == 1 else f"{c.stem}-{i}"), opts)
            for i, c in enumerate(clips)
        ]
    # Where the output goes is checked before any work: a bad --out found after the analysis lost it all
    from server.clips import ClipError
    from server.replay import check_out_dir

    try:
        if len(clips) > 1 and base.exists() and not base.is_dir():
            raise ClipError(f"--out {base} is a file, not a folder")
        for clip, out, _ in jobs:
            check_out_dir(out, clip)
    except ClipError as exc:
        print(f"rearguard: {exc}", file=sys.stderr)
        return 2
    workers = max(1, min(len(jobs), args.jobs or os.cpu_count() or 1))
    results: list[tuple[str, dict[str, Any] | None, str | None]] = []
    if workers == 1:
        results = [_replay_one(j) for j in jobs]
    else:
        # One process per clip at a time: MediaPipe holds the GIL-free core it runs on.
        with concurrent.futures.ProcessPoolExecutor(workers) as pool:
            for i, res in enumerate(pool.map(_replay_one, jobs), 1):
                results.append(res)
                if progress:
                    print(f"\r{i}/{len(jobs)} clips replayed", end="", file=sys.stderr, flush=True)
        if progress:
            print(file=sys.stderr)
    rows = [r | {"out": str(j[1])} for (_, r, _), j in zip(results, jobs, strict=True) if r is not None]
    errors = [(name, err) for name, _, err in results if err is not None]
    if rows:
        cols = ["clip", "frames", "duration_s", "walker_seen_share", "cues", "cues_per_minute", "stop_cues",
                "pipeline_ms_median", "replay_fps"]  # fmt: skip
        if any("labels" in r for r in rows):
            cols.append("labels")
        print_table(rows, [*cols, "out"])
    if len(clips) > 1:
        try:
            base.mkdir(parents=True, exist_ok=True)
            (base / "summary.json").write_text(json.dumps({"clips": rows, "errors": dict(errors)}, indent=1))
        except OSError as exc:
            errors.append(("summary.json", f"cannot write it into {base}: {exc.strerror or exc}"))
    for name, err in errors:
        print(f"rearguard: {name}: {err}", file=sys.stderr)
    if errors:
        return 2
    failed = [r["clip"] for r in rows if str(r.get("labels", "pass")) != "pass"]
    if failed:
        print(f"rearguard: expected events not met in {', '.join(failed)}", file=sys.stderr)
        return 1
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
    replay = sub.add_parser(
        "replay",
        help="run recorded clips through the live pipeline: timeline.json, annotated video, report",
        description="Replays each clip frame by frame through the same pipeline and alert policy as a live "
        "session. A labels file CLIP.labels.json next to a clip turns it into a regression test.",
    )
    replay.add_argument("clips", nargs="+", help="clip files, folders of clips, or glob patterns")
    replay.add_argument("--mode", choices=["partner", "treadmill"], default="partner")
    replay.add_argument(
        "--out", help="output folder (default ./replay/CLIP_NAME; with several clips, one per clip)"
    )
    replay.add_argument(
        "--fps", type=float, help="frame rate to assume when the container's is missing or wrong"
    )
    replay.add_argument("--labels", help="expected events file (default CLIP.labels.json beside the clip)")
    replay.add_argument(
        "--calibration", help="treadmill: a calibration.json from an earlier replay (default: learn it)"
    )
    tilt = replay.add_mutually_exclusive_group()
    tilt.add_argument(
        "--sensors", help="the phone's tilt log (default CLIP.sensors.json beside the clip, if any)"
    )
    tilt.add_argument("--no-sensors", action="store_true", help="ignore any tilt log: image only")
    replay.add_argument("--no-video", action="store_true", help="skip the annotated video")
    replay.add_argument("--no-report", action="store_true", help="skip the HTML report")
    replay.add_argument("--jobs", type=int, help="clips replayed at once (default: one per core)")
    replay.add_argument("--realtime", action="store_true", help="stream at the clip's frame rate to --server")
    replay.add_argument(
        "--server", help="a running Rearguard server, e.g. http://127.0.0.1:8000 (with --realtime)"
    )
    replay.set_defaults(func=cmd_replay)
    # Listed for --help; main() hands `scenario` to vision.scenario's own parser before this one runs.
    sub.add_parser("scenario", help="render test scenes with exact ground truth (docs/scenarios.md)")
    sub.add_parser(
        "evaluate", help="score warnings and coverage against rendered scenes' truth (docs/evaluate.md)"
    )
    models = sub.add_parser("models", help=f"build or verify the pose model bundle ({BUNDLE_PATH.name})")
    models.add_argument("action", choices=["build", "verify"])
    models.set_defaults(func=cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C: a word, not a traceback (replays clean up their temporary folders)
        print("rearguard: interrupted", file=sys.stderr)
        return 130


def _main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["scenario"]:  # its own parser, options and --help included
        from vision.scenario import main as scenario_main

        return scenario_main(argv[1:])
    if argv[:1] == ["evaluate"]:
        from server.evaluate import main as evaluate_main

        return evaluate_main(argv[1:])
    args = build_parser().parse_args(argv)
    level = logging.INFO if args.command == "serve" else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
