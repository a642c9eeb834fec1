"""The walker's speed a live server measures when the network delivers frames unevenly, with the frames timed
by their capture stamps (the camera page's header `t`) and by their arrival.

    .venv/bin/python bench/capture_times.py SCENE [SCENE ...] [--jitter-ms 0 100] [--seed 1]

Each SCENE is a folder `rearguard scenario` rendered (clip.mp4, truth.json, clip.sensors.json). Its frames go
to a real uvicorn on loopback as a camera page would send them, taken at the clip's rate; each leaves a
uniform 0 to `--jitter-ms` after it was taken and never before the frame ahead of it (one TCP stream: a late
frame holds up the next, as on Wi-Fi). Run twice per setting: with `t` in each header (the server times the
frame when it was taken, server/sessions.py CaptureClock) and without it (timed by arrival, as before
2026-12-01). Prints the walker speed from each `status` (path.walker_speed_mps) against the scene's truth,
after the first third of the clip (the speed's smoothing has settled): median, median and p90 of the error,
and the spread. Figures only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from server.clips import frames, phone_jpeg, probe  # noqa: E402
from server.protocol import pack_frame  # noqa: E402
from tests.conftest import start_server  # noqa: E402
from vision.sensors import load_pitch  # noqa: E402


def run(url: str, jpegs: list[bytes], fps: float, pitch: list[float | None], jitter_ms: float, stamped: bool,
        seed: int) -> list[float]:  # fmt: skip
    rng = np.random.default_rng(seed)
    speeds: list[float] = []
    with connect(url, max_queue=None) as cam:

        def read() -> None:
            try:
                while True:
                    m = json.loads(cam.recv())
                    path = m.get("path") if m.get("type") == "status" else None
                    if path and path.get("walker_speed_mps") is not None:
                        speeds.append(float(path["walker_speed_mps"]))
            except Exception:  # the socket closed
                return

        threading.Thread(target=read, daemon=True).start()
        start, last = time.monotonic() * 1000 + 200, 0.0
        for i, jpeg in enumerate(jpegs):
            taken = start + i * 1000 / fps
            last = max(last, taken + rng.uniform(0, jitter_ms))
            if (wait := last / 1000 - time.monotonic()) > 0:
                time.sleep(wait)
            header = (
                {"seq": i}
                | ({"t": taken} if stamped else {})
                | ({} if pitch[i] is None else {"pitch": pitch[i]})
            )
            cam.send(pack_frame(jpeg, **header))
        time.sleep(0.5)
    return speeds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenes", nargs="+", type=Path)
    ap.add_argument("--jitter-ms", type=float, nargs="+", default=[0.0, 100.0])
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    srv = start_server(max_sessions=256)
    print("| scene | jitter ms | timed by | speeds | median m/s (truth) | error median / p90 | spread (sd) |")
    print("|---|---|---|---|---|---|---|")
    try:
        for scene in args.scenes:
            truth = json.loads((scene / "truth.json").read_text())
            v_true = float(truth["spec"]["walker"]["speed_mps"])
            info = probe(scene / "clip.mp4")
            jpegs = [phone_jpeg(f) for f in frames(info)]
            log = scene / "clip.sensors.json"
            pitch = load_pitch(log) if log.is_file() else [None] * len(jpegs)
            for jitter in args.jitter_ms:
                for stamped in (True, False):
                    url = srv.ws_url("camera", srv.create_session())
                    got = run(url, jpegs, info.fps, pitch, jitter, stamped, args.seed)
                    sp = np.array(got[len(got) // 3 :])
                    row = f"| {scene.name} | {jitter:g} | {'capture' if stamped else 'arrival'} | {len(sp)} "
                    if not len(sp):
                        print(row + "| - | - | - |")
                        continue
                    err = np.abs(sp - v_true)
                    med, p90, sd = np.median(err), np.percentile(err, 90), sp.std()
                    print(f"{row}| {np.median(sp):.2f} ({v_true:g}) | {med:.3f} / {p90:.3f} | {sd:.3f} |")
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
