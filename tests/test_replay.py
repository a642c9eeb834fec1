"""`rearguard replay` end to end: real clips in; timeline, annotated video with cue audio and report out."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from server.clips import ClipError, probe
from server.soundtrack import SAMPLE_RATE, decode_wav_mono
from tests.conftest import LiveServer, clip_path, empty_scene, read_frames

ROOT = Path(__file__).resolve().parents[1]
needs_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None, reason="ffmpeg not installed (install.sh does)"
)
pytestmark = [pytest.mark.slow, needs_ffmpeg]


def rearguard(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


def write_clip(path: Path, frames: list[np.ndarray], fps: float, extra: list[str] | None = None) -> Path:
    h, w = frames[0].shape[:2]
    cmd = ["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}",
           "-r", str(fps), "-i", "-", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           *(extra or []), str(path)]  # fmt: skip
    subprocess.run(cmd, input=b"".join(f.tobytes() for f in frames), check=True)
    return path


@pytest.fixture(scope="module")
def leaving_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 s of a real person facing the camera, then 4 s of the place without her, at 10 fps."""
    person = [cv2.resize(f, (360, 640)) for f in read_frames("squats_facing_camera.mp4", limit=20)]
    empty = cv2.resize(empty_scene(), (360, 640))
    frames = [person[i // 2] for i in range(40)] + [empty] * 40
    return write_clip(tmp_path_factory.mktemp("clips") / "walker_leaves.mp4", frames, 10)


def load(out: Path) -> dict[str, Any]:
    return dict(json.loads((out / "timeline.json").read_text()))


def test_replay_writes_timeline_video_with_cue_audio_and_report(leaving_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = rearguard("replay", str(leaving_clip), "--out", str(out))
    assert r.returncode == 0, r.stderr
    tl = load(out)
    assert (tl["clip"], tl["mode"], tl["fps"], tl["frames"]) == ("walker_leaves.mp4", "partner", 10.0, 80)
    first = tl["events"][0]
    assert set(first) >= {"t", "tier", "kind", "side", "distance_m", "ttc_s", "text"}
    # She is last seen at 3.9 s; the grace is 0.5 s, so the stop cue comes with the frame at 4.5 s.
    assert (first["kind"], first["tier"], first["t"]) == ("walker_lost", "stop", 4.5)
    assert [(e["t"], e["repeat"]) for e in tl["events"]] == [(4.5, False), (6.5, True)]  # repeated every 2 s
    frames = json.loads((out / "frames.json").read_text())
    assert len(frames["t"]) == 80 and sum(frames["walker"][:40]) >= 38 and sum(frames["walker"][40:]) == 0
    assert (out / "report.html").stat().st_size > 1000

    video = str(out / "annotated.mp4")
    cmd = ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,duration", "-of", "json", video]
    probe_out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    streams = {s["codec_name"]: float(s["duration"]) for s in json.loads(probe_out)["streams"]}
    assert set(streams) == {"h264", "aac"} and all(abs(d - 8.0) < 0.2 for d in streams.values())
    # The audio track is silent until the first cue and sounds at each cue.
    cmd = ["ffmpeg", "-loglevel", "error", "-i", video, "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "wav", "-"]
    wav = subprocess.run(cmd, capture_output=True, check=True).stdout
    audio = decode_wav_mono(wav)
    loud = np.flatnonzero(np.abs(audio) > 0.05) / SAMPLE_RATE
    assert loud.size and abs(loud[0] - 4.5) < 0.1
    assert np.abs(audio[: int(4.4 * SAMPLE_RATE)]).max() < 0.01


def test_two_runs_give_the_same_timeline(leaving_clip: Path, tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert (
            rearguard("replay", str(leaving_clip), "--out", str(tmp_path / name), "--no-video").returncode
            == 0
        )
    a, b = load(tmp_path / "a"), load(tmp_path / "b")
    assert a["events"] == b["events"]
    fa, fb = (json.loads((tmp_path / n / "frames.json").read_text()) for n in "ab")
    assert fa["walker"] == fb["walker"]


def test_labels_make_a_clip_a_regression_test(leaving_clip: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(
        json.dumps({"expect": [{"t": 4.3, "kind": "walker_lost", "tier": "stop"}], "tolerance_s": 0.5})
    )
    r = rearguard(
        "replay", str(leaving_clip), "--out", str(tmp_path / "g"), "--no-video", "--labels", str(good)
    )
    assert r.returncode == 0 and "pass" in r.stdout
    assert load(tmp_path / "g")["labels"]["passed"] is True
    late = tmp_path / "late.json"
    late.write_text(json.dumps({"expect": [{"t": 2.0, "kind": "walker_lost"}], "tolerance_s": 0.5}))
    r = rearguard(
        "replay", str(leaving_clip), "--out", str(tmp_path / "l"), "--no-video", "--labels", str(late)
    )
    assert (
        r.returncode == 1 and "FAIL (1 missed, 1 false)" in r.stdout and "expected events not met" in r.stderr
    )


def test_many_clips_at_once_with_a_summary(leaving_clip: Path, tmp_path: Path) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    shutil.copy(leaving_clip, folder / "one.mp4")
    shutil.copy(clip_path("corridor_two_walk_backward.mp4"), folder / "two.mp4")
    r = rearguard("replay", str(folder), "--out", str(tmp_path / "out"), "--no-video", "--jobs", "2")
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert sorted(c["clip"] for c in summary["clips"]) == ["one.mp4", "two.mp4"] and summary["errors"] == {}
    assert load(tmp_path / "out" / "two")["frames"] > 30
    assert "one.mp4" in r.stdout and "two.mp4" in r.stdout


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (lambda p: None, [], "no such file"),
        (lambda p: p.write_bytes(b""), [], "empty file"),
        (lambda p: p.write_text("not a video at all\n" * 100), [], "decode"),
        (lambda p: p.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 500), [], "decode"),
        (lambda p: p.write_text("{}"), ["--calibration", "CAL"], "not a treadmill calibration"),
    ],
)
def test_bad_clips_get_a_clear_message_and_no_output(
    tmp_path: Path, make: Any, args: list[str], message: str
) -> None:
    clip = tmp_path / "bad.mp4"
    make(clip)
    if "--calibration" in args:
        shutil.copy(clip_path("corridor_two_walk_backward.mp4"), clip)
        (tmp_path / "cal.json").write_text("{}")
        args = ["--mode", "treadmill", "--calibration", str(tmp_path / "cal.json")]
    out = tmp_path / "out"
    r = rearguard("replay", str(clip), "--out", str(out), *args)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert not out.exists() and not [p for p in tmp_path.iterdir() if "partial" in p.name]


def test_bad_fps_flag_is_refused(tmp_path: Path) -> None:
    r = rearguard(
        "replay", str(clip_path("corridor_two_walk_backward.mp4")), "--fps", "0", "--out", str(tmp_path / "o")
    )
    assert r.returncode == 2 and "--fps" in r.stderr


def test_portrait_rotation_metadata_is_applied(tmp_path: Path) -> None:
    """Phones record landscape pixels with a rotation tag; the pipeline must see the walker upright."""
    frames = [
        cv2.rotate(cv2.resize(f, (360, 640)), cv2.ROTATE_90_COUNTERCLOCKWISE)
        for f in read_frames("squats_facing_camera.mp4", limit=5)
    ]
    raw = write_clip(tmp_path / "landscape.mp4", frames, 5)
    tagged = tmp_path / "tagged.mp4"
    cmd = [
        "ffmpeg",
        "-loglevel",
        "error",
        "-i",
        str(raw),
        "-c",
        "copy",
        "-metadata:s:v:0",
        "rotate=90",
        str(tagged),
    ]
    subprocess.run(cmd, check=True)
    assert probe(raw).source_wh == (640, 360)
    assert probe(tagged).source_wh == (360, 640)
    out = tmp_path / "out"
    assert rearguard("replay", str(tagged), "--out", str(out), "--no-video").returncode == 0
    assert sum(json.loads((out / "frames.json").read_text())["walker"]) == 5


def test_probe_refuses_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ClipError, match="not a file"):
        probe(tmp_path)


def test_realtime_replay_through_a_running_server(live_server: LiveServer, tmp_path: Path) -> None:
    clip = clip_path("corridor_two_walk_backward.mp4")
    out = tmp_path / "rt"
    r = rearguard(
        "replay", str(clip), "--realtime", "--server", live_server.base, "--out", str(out), "--no-video"
    )
    assert r.returncode == 0, r.stderr
    live = json.loads((out / "live.json").read_text())
    assert live["frames_sent"] == load(out)["frames"]
    assert live["frames_processed"] + live["frames_dropped"] == live["frames_sent"]
    assert live["latency_ms"]["p50"] > 0 and live["server_added_ms"]["p95"] is not None
    assert set(live["comparison"]) >= {"matched", "only_offline", "only_live"}
    assert "latency p50" in r.stdout


def test_realtime_needs_a_server_url(tmp_path: Path) -> None:
    clip = clip_path("corridor_two_walk_backward.mp4")
    assert "needs --server" in rearguard("replay", str(clip), "--realtime").stderr
    r = rearguard(
        "replay", str(clip), "--realtime", "--server", "http://127.0.0.1:9", "--out", str(tmp_path / "x")
    )
    assert r.returncode == 2 and "cannot reach" in r.stderr


@pytest.mark.browser
def test_annotated_video_plays_in_chromium(leaving_clip: Path, tmp_path: Path) -> None:
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("Debian's chromium is not installed (scripts/install.sh --test installs it)")
    from playwright.sync_api import sync_playwright

    out = tmp_path / "out"
    assert rearguard("replay", str(leaving_clip), "--out", str(out)).returncode == 0
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--autoplay-policy=no-user-gesture-required",
                "--no-first-run",
            ],
        )
        page = browser.new_page()
        page.goto((out / "report.html").as_uri())  # the report embeds the video beside it
        played = page.evaluate(
            """new Promise((resolve) => {
                 const v = document.querySelector("video");
                 const go = () => v.play().then(() => setTimeout(
                     () => resolve([v.videoWidth, v.videoHeight, v.duration, v.currentTime]), 800));
                 if (v.readyState >= 3) go(); else v.addEventListener("canplay", go, { once: true });
                 v.addEventListener("error", () => resolve(["error", v.error && v.error.code]));
                 setTimeout(() => resolve(["timeout", v.readyState]), 10000);
               })"""
        )
        browser.close()
    assert played[:2] == [360, 640] and abs(played[2] - 8.0) < 0.2 and played[3] > 0.3


def test_treadmill_replay_counts_steps_without_false_alarms(tmp_path: Path) -> None:
    """The real treadmill clip: a man running for 12 s, about 33 steps counted by eye (docs/treadmill.md)."""
    clip = clip_path("treadmill_phone_side.mp4")
    out = tmp_path / "tm"
    r = rearguard("replay", str(clip), "--mode", "treadmill", "--out", str(out), "--no-video")
    assert r.returncode == 0, r.stderr
    tl = load(out)
    assert tl["mode"] == "treadmill" and tl["calibrated"] is True
    assert [e for e in tl["events"] if e["kind"] in ("edge_back", "edge_front", "edge_side", "stumble")] == []
    assert 25 <= tl["workout"]["steps"] <= 40 and 140 <= tl["workout"]["cadence_spm"] <= 200
    frames = json.loads((out / "frames.json").read_text())
    assert len(frames["zone"]) == tl["frames"]
    # The calibration learned here replays another run of the same phone position without relearning.
    again = tmp_path / "again"
    cal = str(out / "calibration.json")
    r = rearguard(
        "replay", str(clip), "--mode", "treadmill", "--calibration", cal, "--out", str(again), "--no-video"
    )
    assert r.returncode == 0, r.stderr
    first = json.loads((out / "frames.json").read_text())["zone"]
    given = json.loads((again / "frames.json").read_text())["zone"]
    assert first[0] == "unknown" and "centre" in first  # learned from the first seconds
    assert given[0] == "centre"  # placed from the first frame
