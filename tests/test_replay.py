"""`rearguard replay` end to end: real clips in; timeline, annotated video with cue audio and report out."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from server.clips import ClipError, probe
from server.replay import PathLog
from server.soundtrack import SAMPLE_RATE, decode_wav_mono
from tests.conftest import LiveServer, clip_path, empty_scene, read_frames
from vision.draw import LOW_BGR, SEEN_BGR, TIER_BGR, annotate
from vision.types import Analysis, Hazard

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


def write_timed_clip(path: Path, frames: list[np.ndarray], t_ms: list[int]) -> Path:
    """A clip of variable frame rate, as phones record: frame i shown from `t_ms[i]`."""
    h, w = frames[0].shape[:2]
    when = "+".join(f"eq(N\\,{i})*{t}" for i, t in enumerate(t_ms))  # one term per frame
    cmd = ["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}",
           "-r", "1000", "-i", "-", "-vf", f"setpts=({when})/1000/TB", "-fps_mode", "passthrough",
           "-video_track_timescale", "1000", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)]  # fmt: skip
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
    # She is last seen at 3.9 s; the grace is 0.5 s, so the stop cue comes with the frame at 4.5 s, and it
    # repeats every 2 s. Before that, only a notice that the path behind her is hidden may be heard.
    lost = [e for e in tl["events"] if e["kind"] == "walker_lost"]
    assert [(e["tier"], e["t"], e["repeat"]) for e in lost] == [("stop", 4.5, False), ("stop", 6.5, True)]
    assert {e["kind"] for e in tl["events"]} <= {"walker_lost", "path_hidden"}
    frames = json.loads((out / "frames.json").read_text())
    assert len(frames["t"]) == 80 and sum(frames["walker"][:40]) >= 38 and sum(frames["walker"][40:]) == 0
    # Partner mode: a coverage sample per second, a summary, per-frame coverage and obstacle counts. With
    # nobody in view there is no ground to measure, so the last seconds are unknown, not zero.
    assert [s["t"] for s in tl["coverage"]] == [float(s) for s in range(8)]
    assert all(set(s) == {"t", "coverage", "by_m", "low"} and len(s["by_m"]) == 3 for s in tl["coverage"])
    assert tl["coverage"][-1]["coverage"] is None and set(tl["coverage_summary"]) >= {"median", "share_low"}
    assert isinstance(tl["obstacles"], list)
    assert len(frames["coverage"]) == len(frames["obstacles"]) == 80 and frames["coverage"][-1] is None
    for second in tl["coverage"]:  # each sample is the mean of its second's known frames
        pairs = zip(frames["t"], frames["coverage"], strict=True)
        known = [c for t, c in pairs if int(t) == second["t"] and c is not None]
        assert second["coverage"] == (pytest.approx(sum(known) / len(known), abs=2e-3) if known else None)
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
    assert loud.size and abs(loud[0] - first["t"]) < 0.1
    assert np.abs(audio[: int((first["t"] - 0.1) * SAMPLE_RATE)]).max() < 0.01


def test_a_variable_frame_rate_clip_is_timed_by_its_timestamps(tmp_path: Path) -> None:
    """A phone that records fewer frames in low light or drops some under load writes a clip of variable
    frame rate. Timed by index and rate, every frame after the first gap came too early (the walker-lost
    stop below at 4.2 s of clip time instead of 4.45, and a clip that halves its rate for half its length
    moved by seconds); timed by its timestamps, the times are the clip's, and the annotated video holds each
    frame until the next one's time, so it stays in step with the cue audio."""
    person = [cv2.resize(f, (360, 640)) for f in read_frames("squats_facing_camera.mp4", limit=20)]
    gaps = [0, 300, 450, 800, 1500, 2000, 2100, 2200, 2300, 2400, 2500, 2600]  # ms after 4 s: uneven
    frames = [person[i // 2] for i in range(40)] + [empty_scene(seed=k) for k in range(len(gaps))]
    t_ms = [i * 100 for i in range(40)] + [4000 + g for g in gaps]
    clip = write_timed_clip(tmp_path / "uneven.mp4", frames, t_ms)
    out = tmp_path / "out"
    r = rearguard("replay", str(clip), "--out", str(out))
    assert r.returncode == 0, r.stderr
    tl = load(out)
    times = json.loads((out / "frames.json").read_text())["t"]
    assert times == pytest.approx([t / 1000 for t in t_ms], abs=0.0015)  # the container's ms, rounded
    assert tl["frame_times"]["from"] == "container" and tl["frame_times"]["uneven"] is True
    assert tl["frame_times"]["interval_ms"]["max"] == pytest.approx(700, abs=2)
    assert tl["duration_s"] == pytest.approx(6.6 + 1 / tl["fps"], abs=0.01)
    # Last seen at 3.9 s; 0.5 s later the stop: with the first frame from 4.4 s on, the one at 4.45 s.
    lost = [(e["t"], e["repeat"]) for e in tl["events"] if e["kind"] == "walker_lost"]
    assert lost[0] == (4.45, False)
    # The video lasts as long as the clip (not frames / rate), and so does its cue audio.
    video = str(out / "annotated.mp4")
    cmd = ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,duration", "-of", "json", video]
    probe_out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    streams = {s["codec_name"]: float(s["duration"]) for s in json.loads(probe_out)["streams"]}
    assert all(abs(d - tl["duration_s"]) < 0.15 for d in streams.values()), streams
    # --fps is the user's rate for every frame: index times, said so in the timeline.
    again = tmp_path / "again"
    r = rearguard("replay", str(clip), "--out", str(again), "--fps", "10", "--no-video", "--no-report")
    assert r.returncode == 0, r.stderr
    tl = load(again)
    assert tl["frame_times"] == {
        "from": "rate", "uneven": False, "interval_ms": {"min": 100.0, "median": 100.0, "max": 100.0}
    }  # fmt: skip
    assert json.loads((again / "frames.json").read_text())["t"][-1] == pytest.approx(5.1)


def test_clips_without_stamps_or_with_an_estimated_frame_count_are_timed_and_reported_right(
    tmp_path: Path,
) -> None:
    """A raw H.264 stream has no timestamps (OpenCV reads 0 for every frame): timed by the rate, and the
    timeline says "rate", not "container". A WebM of variable rate lists its frames as duration x nominal
    rate, more than it holds: compared by duration, it is not called cut short."""
    frames = [empty_scene(seed=k) for k in range(30)]
    mp4 = write_clip(tmp_path / "even.mp4", frames, 10)
    raw = tmp_path / "raw.h264"
    cmd = ["ffmpeg", "-loglevel", "error", "-y", "-i", str(mp4), "-c", "copy", "-bsf:v", "h264_mp4toannexb",
           str(raw)]  # fmt: skip
    subprocess.run(cmd, check=True)
    out = tmp_path / "raw"
    r = rearguard("replay", str(raw), "--out", str(out), "--no-video", "--no-report")
    assert r.returncode == 0, r.stderr
    assert load(out)["frame_times"]["from"] == "rate" and load(out)["frame_times"]["uneven"] is False
    assert json.loads((out / "frames.json").read_text())["t"][-1] == pytest.approx(2.9)
    t_ms = [k * 100 for k in range(15)] + [1500 + k * 200 for k in range(15)]  # 10 fps, then 5
    uneven = write_timed_clip(tmp_path / "uneven.mp4", frames, t_ms)
    webm = tmp_path / "uneven.webm"
    cmd = ["ffmpeg", "-loglevel", "error", "-y", "-i", str(uneven), "-c:v", "libvpx", "-b:v", "1M",
           "-fps_mode", "passthrough", str(webm)]  # fmt: skip
    subprocess.run(cmd, check=True)
    out = tmp_path / "webm"
    r = rearguard("replay", str(webm), "--out", str(out), "--no-video", "--no-report")
    assert r.returncode == 0, r.stderr
    tl = load(out)
    assert "truncated" not in tl and "frames its container lists" not in r.stderr
    assert tl["frames"] == 30 and tl["frame_times"]["uneven"] is True


def test_the_frame_clock_keeps_index_times_for_even_clips_and_mends_bad_stamps() -> None:
    from server.clips import FrameClock

    even = FrameClock(30.0)
    # A 30 fps clip's stamps in a time base of ms are rounded; within a millisecond, the index time stands.
    assert [even(t) for t in (0.0, 33.0, 67.0, 100.0)] == pytest.approx([0, 100 / 3, 200 / 3, 100])
    assert even.from_container == 0
    uneven = FrameClock(30.0)
    assert [uneven(t) for t in (500.0, 533.0, 700.0, 733.0)] == pytest.approx([0, 100 / 3, 200, 233])
    assert uneven.from_container == 2 and uneven.stamped == 3  # the stamps count from the first frame's
    assert even.stamped == 3
    bad = FrameClock(10.0)  # no stamps, a repeated one, one going back: one interval after the last
    stamps = (float("nan"), 100.0, 100.0, 50.0, 400.0)
    assert [bad(t) for t in stamps] == pytest.approx([0, 100, 200, 300, 400])
    assert bad.stamped == bad.from_container == 0  # timed by the rate, and said so
    fixed = FrameClock(10.0, timestamps=False)
    assert [fixed(t) for t in (0.0, 300.0, 450.0)] == [0.0, 100.0, 200.0]


def path_view(**extra: Any) -> dict[str, Any]:
    """A partner-mode path as the pipeline reports it (PATH_KEYS), for a 360x640 frame."""
    return {
        "coverage": 0.3, "coverage_by_m": [0.6, 0.3, 0.0], "coverage_low": True,
        "coach": "Walk half a step to your left", "coach_id": "coach_left", "walker_speed_mps": 0.6,
        "heading_deg": 0.0, "distance_m": 2.0,
        "corridor_px": [[150, 600], [210, 600], [196, 400], [164, 400]],
        "obstacles": [
            {"id": "7", "kind": "bin", "distance_m": 1.4, "distance_sd_m": 0.2, "closing_mps": 0.6,
             "ttc_s": 2.3, "side": "left", "in_corridor": True, "box_px": [220, 300, 300, 420]},
            {"id": "8", "kind": "pole", "distance_m": 5.0, "distance_sd_m": 0.8, "closing_mps": 0.6,
             "ttc_s": None, "side": "right", "in_corridor": False, "box_px": [20, 200, 40, 420]},
        ],
    } | extra  # fmt: skip


def test_path_log_reduces_frames_to_seconds_and_tolerates_empty_paths() -> None:
    log = PathLog()
    for k in range(25):  # 10 fps: the first second with a path, the second without, the third half
        t = k / 10
        if k < 10:
            log.add(t, path_view(coverage=0.2 + 0.02 * k, coverage_low=k < 6))
        elif k < 20:
            log.add(t, {})
        else:
            log.add(t, {"coverage": 0.9, "coverage_by_m": [1.0, None, "x"], "obstacles": "junk"})
    samples = log.samples(2.5)
    assert [s["t"] for s in samples] == [0.0, 1.0, 2.0]
    assert samples[0] == {"t": 0.0, "coverage": 0.29, "by_m": [0.6, 0.3, 0.0], "low": True}
    assert samples[1] == {"t": 1.0, "coverage": None, "by_m": [None, None, None], "low": None}
    assert samples[2] == {"t": 2.0, "coverage": 0.9, "by_m": [1.0, None, None], "low": None}
    assert log.summary() == {"median": 0.34, "share_low": 0.6, "frames_known": 15}
    bin_, pole = log.obstacle_list()
    assert bin_ == {
        "id": "7", "kind": "bin", "first_t": 0.0, "last_t": 0.9, "frames": 10, "in_corridor_frames": 10,
        "min_distance_m": 1.4, "min_ttc_s": 2.3, "max_closing_mps": 0.6, "side": "left",
    }  # fmt: skip
    assert pole["min_ttc_s"] is None and pole["in_corridor_frames"] == 0
    assert PathLog().samples(0.5) == [{"t": 0.0, "coverage": None, "by_m": [None, None, None], "low": None}]
    assert PathLog().summary() == {"median": None, "share_low": None, "frames_known": 0}


def analysis_of(path: dict[str, Any], hazards: tuple[Hazard, ...] = ()) -> Analysis:
    return Analysis(
        timestamp_ms=1000, frame_wh=(360, 640), walker=None, people=(), hazards=hazards, path=path
    )


def draw(frame: np.ndarray, path: dict[str, Any], hazards: tuple[Hazard, ...] = ()) -> np.ndarray:
    return annotate(frame, analysis_of(path, hazards), cue=None, watching=True, fps=15.0, cost_ms=20.0)


def test_annotated_frame_shows_corridor_obstacles_and_coaching_and_survives_bad_paths() -> None:
    frame = cv2.resize(empty_scene(), (360, 640))
    plain = draw(frame, {})
    assert np.array_equal(plain, draw(frame, {"obstacles": [], "corridor_px": None}))
    urgent = (Hazard(kind="obstacle", tier="urgent", key="obs:7"),)
    img = draw(frame, path_view(), urgent)
    # The corridor is tinted, not painted over: 30% of the colour for low coverage.
    inside = img[500, 180].astype(int)
    expected = 0.7 * frame[500, 180].astype(int) + 0.3 * np.array(LOW_BGR)
    assert np.abs(inside - expected).max() <= 2
    seen = draw(frame, path_view(coverage_low=False))
    assert np.abs(seen[500, 180].astype(int) - (0.7 * frame[500, 180] + 0.3 * np.array(SEEN_BGR))).max() <= 2
    # The bin's box takes its hazard's tier colour; the pole (no hazard, no TTC) is drawn grey and thin.
    assert tuple(img[360, 220]) == TIER_BGR["urgent"] and tuple(img[360, 221]) == TIER_BGR["urgent"]
    assert tuple(img[300, 20]) == (200, 200, 200) and tuple(img[300, 22]) != (200, 200, 200)
    # Without a hazard its tier follows its TTC (2.3 s: advisory).
    assert tuple(draw(frame, path_view())[360, 220]) == TIER_BGR["advisory"]
    # The partner's coaching and the coverage read-out are in the top-left block, which plain lacks.
    assert np.abs(img[60:130].astype(int) - plain[60:130].astype(int)).sum() > 1000
    for bad in (
        {
            "corridor_px": [[1, 2]],
            "obstacles": [{"box_px": [1, 2, 3]}, "x", {"box_px": [0, 0, float("nan"), 1]}],
        },
        {
            "corridor_px": "junk",
            "coverage": "high",
            "coverage_by_m": [0.1],
            "coach": 7,
            "obstacles": {"a": 1},
        },
        {"corridor_px": [[0, 0], [1e12, 0], [0, 5]], "obstacles": [{"box_px": [-50, -50, 900, 900]}]},
        {
            "coverage": float("nan"),
            "obstacles": [{"id": "1", "box_px": [10, 10, 50, 50], "distance_m": None}],
        },
    ):
        assert draw(frame, bad).shape == frame.shape


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
    checked = load(tmp_path / "g")["labels"]
    assert checked["passed"] is True and checked["false_alarms"] == []
    assert all(e["kind"] == "path_hidden" for e in checked["notices"])  # heard, shown, not false alarms
    late = tmp_path / "late.json"
    late.write_text(json.dumps({"expect": [{"t": 2.0, "kind": "walker_lost"}], "tolerance_s": 0.5}))
    r = rearguard(
        "replay", str(leaving_clip), "--out", str(tmp_path / "l"), "--no-video", "--labels", str(late)
    )
    assert (
        r.returncode == 1 and "FAIL (1 missed, 1 false)" in r.stdout and "expected events not met" in r.stderr
    )


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"tolerance_s": "abc", "expect": []}, '"tolerance_s" must be'),
        ({"ignore_kinds": 5, "expect": []}, '"ignore_kinds" must be'),
        ({"expect": [{"t": True, "kind": "walker_lost"}]}, '"t" (seconds)'),
        ({"expect": [{"t": 2.0, "kind": ["walker_lost"]}]}, '"kind" (a text)'),
        ({"expect": [{"t": 2.0, "kind": "walker_lost", "tier": "STOP"}]}, '"tier" is one of'),
        ({"expect": [{"t": 2.0, "kind": "walker_lost", "tolerance_s": None}]}, '"tolerance_s" must be'),
        ({"expect": [{"t": 2.0, "kind": "walker_lost", "tolerance_s": -1}]}, '"tolerance_s" must be'),
    ],
)
def test_a_bad_labels_file_is_refused_before_the_replay(
    leaving_clip: Path, tmp_path: Path, labels: dict[str, Any], message: str
) -> None:
    """Each of these crashed with a traceback after the whole replay, or was taken as valid and reported as
    the clip failing its labels."""
    path = tmp_path / "bad.labels.json"
    path.write_text(json.dumps(labels))
    out = tmp_path / "o"
    r = rearguard("replay", str(leaving_clip), "--out", str(out), "--no-video", "--labels", str(path))
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()


def test_a_clip_cut_short_is_replayed_as_far_as_it_goes_and_said_so(tmp_path: Path) -> None:
    """A phone's clip keeps its index at the front (faststart); cut off half way, it decodes up to the cut,
    and the replay covered part of it without a word."""
    frames = [cv2.resize(empty_scene(seed=i), (360, 640)) for i in range(40)]
    whole = write_clip(tmp_path / "whole.mp4", frames, 10, ["-movflags", "+faststart"])
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    r = rearguard("replay", str(cut), "--out", str(tmp_path / "o"), "--no-video", "--no-report")
    assert r.returncode == 0 and "frames its container lists could be decoded" in r.stderr
    truncated = load(tmp_path / "o")["truncated"]
    assert truncated["container_frames"] == 40 and 0 < truncated["decoded"] < 30
    r = rearguard("replay", str(whole), "--out", str(tmp_path / "w"), "--no-video", "--no-report")
    assert r.returncode == 0 and "truncated" not in load(tmp_path / "w") and "warning" not in r.stderr


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


def test_a_tilt_log_beside_the_clip_goes_with_its_frames(tmp_path: Path) -> None:
    """CLIP.sensors.json is replayed as the camera page sends the phone's tilt: the camera's height is then
    measured, not the 1.4 m prior; --no-sensors replays the image alone; a log of another clip (another
    length) or not a log at all is refused with a clear message and no output."""
    frames = [cv2.resize(f, (360, 640)) for f in read_frames("squats_facing_camera.mp4", limit=8)]
    clip = write_clip(tmp_path / "walk.mp4", frames, 5)
    log = tmp_path / "walk.sensors.json"
    log.write_text(json.dumps({"format": "rearguard-sensors/1", "pitch_deg": [-8.0] * 7 + [None]}))
    r = rearguard("replay", str(clip), "--out", str(tmp_path / "with"), "--no-video", "--no-report")
    assert r.returncode == 0, r.stderr
    assert load(tmp_path / "with")["sensors"] == "walk.sensors.json"
    heights = [h for h in json.loads((tmp_path / "with" / "frames.json").read_text())["camera_height_m"] if h]
    assert heights and all(abs(h - 1.4) > 0.05 for h in heights), heights
    r = rearguard("replay", str(clip), "--out", str(tmp_path / "without"), "--no-video", "--no-sensors")
    assert r.returncode == 0 and load(tmp_path / "without")["sensors"] is None
    heights = [
        h for h in json.loads((tmp_path / "without" / "frames.json").read_text())["camera_height_m"] if h
    ]
    assert heights and set(heights) == {1.4}
    for bad, message in [
        ({"format": "rearguard-sensors/1", "pitch_deg": [-8.0] * 30}, "30 readings for a clip of 8 frames"),
        ({"format": "rearguard-sensors/1", "pitch_deg": [-8.0] * 7 + ["up"]}, "reading 7 is 'up'"),
        ({"pitch_deg": []}, "not a sensor log"),
    ]:
        log.write_text(json.dumps(bad))
        out = tmp_path / "bad"
        r = rearguard("replay", str(clip), "--out", str(out), "--no-video")
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert not out.exists()
    r = rearguard("replay", str(clip), "--sensors", str(tmp_path / "none.json"), "--out", str(out))
    assert r.returncode == 2 and "none.json" in r.stderr and "Traceback" not in r.stderr
    r = rearguard("replay", str(clip), "--sensors", str(log), "--no-sensors", "--out", str(out))
    assert r.returncode == 2 and "not allowed with" in r.stderr
    # treadmill mode reads it too (a knocked phone)
    log.write_text(json.dumps({"format": "rearguard-sensors/1", "pitch_deg": [-8.0] * 8}))
    r = rearguard("replay", str(clip), "--mode", "treadmill", "--out", str(tmp_path / "tm"), "--no-video")
    assert r.returncode == 0, r.stderr
    assert load(tmp_path / "tm")["sensors"] == "walk.sensors.json"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--server", "http://127.0.0.1:9"], "--server goes with --realtime"),
        (["--calibration", "cal.json"], "--calibration is for --mode treadmill"),
    ],
)
def test_flags_that_would_do_nothing_are_refused(tmp_path: Path, args: list[str], message: str) -> None:
    """Both were ignored: the replay ran offline, or uncalibrated, and said nothing."""
    clip = clip_path("corridor_two_walk_backward.mp4")
    r = rearguard("replay", str(clip), *args, "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and message in r.stderr and not (tmp_path / "o").exists()


@pytest.mark.parametrize("fps", ["0", "1e-6"])  # 1e-6 spread 35 frames over ten hours and hung the replay
def test_bad_fps_flag_is_refused(tmp_path: Path, fps: str) -> None:
    clip = clip_path("corridor_two_walk_backward.mp4")
    r = rearguard("replay", str(clip), "--fps", fps, "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "--fps must be in" in r.stderr


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


def test_realtime_replay_gives_its_session_back_and_streams_treadmill_as_the_solo_phone(
    live_server: LiveServer, tmp_path: Path
) -> None:
    """Each realtime replay held a session for the server's idle half hour: a few filled the server and
    phones were refused. And a treadmill replay streamed to a partner session, which never calibrates."""
    clip = clip_path("corridor_two_walk_backward.mp4")
    sessions = httpx.get(f"{live_server.base}/healthz").json()["sessions"]
    for mode in ("partner", "treadmill"):
        out = tmp_path / mode
        r = rearguard(
            "replay", str(clip), "--realtime", "--server", live_server.base, "--out", str(out), "--no-video",
            "--no-report", "--mode", mode,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert json.loads((out / "live.json").read_text())["frames_processed"] > 0
        assert httpx.get(f"{live_server.base}/healthz").json()["sessions"] == sessions


def test_realtime_against_something_else_says_so(live_server: LiveServer, tmp_path: Path) -> None:
    clip = clip_path("corridor_two_walk_backward.mp4")
    r = rearguard(
        "replay",
        str(clip),
        "--realtime",
        "--server",
        f"{live_server.base}/not-here",
        "--out",
        str(tmp_path / "x"),
    )
    assert r.returncode == 2 and "refused a session: HTTP 4" in r.stderr and "Traceback" not in r.stderr


def test_replay_writes_a_whole_folder_and_never_over_other_files(leaving_clip: Path, tmp_path: Path) -> None:
    """--out is refused before any work when it is a file, holds the clip, or holds other things than an
    earlier replay (a user's own report.html was replaced); an earlier replay is replaced whole (its video
    was left beside a later replay's timeline)."""
    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    r = rearguard("replay", str(leaving_clip), "--out", str(a_file))
    assert r.returncode == 2 and "is a file" in r.stderr and "Traceback" not in r.stderr
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.html").write_text("MY NOTES")
    r = rearguard("replay", str(leaving_clip), "--out", str(mine))
    assert r.returncode == 2 and "other files" in r.stderr
    assert (mine / "report.html").read_text() == "MY NOTES"
    r = rearguard("replay", str(leaving_clip), "--out", str(leaving_clip.parent))
    assert r.returncode == 2 and "holds the clip" in r.stderr
    out = tmp_path / "out"
    assert rearguard("replay", str(leaving_clip), "--out", str(out)).returncode == 0
    assert (out / "annotated.mp4").is_file()
    assert rearguard("replay", str(leaving_clip), "--out", str(out), "--no-video").returncode == 0
    assert sorted(p.name for p in out.iterdir()) == ["frames.json", "report.html", "timeline.json"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # nothing left half-way


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
    assert "coverage" not in frames and "obstacles" not in frames and "coverage" not in tl  # partner only
    # No tilt log beside the clip: its phone's tilt is read from the room's vertical edges while calibrating
    # (it looks up about 12 deg), and the feet's ground line reads depth through it
    saved = json.loads((out / "calibration.json").read_text())
    assert 10.5 <= saved["phone_pitch_deg"] <= 13.5
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


def test_treadmill_cadence_holds_when_the_phone_halves_its_frame_rate(tmp_path: Path) -> None:
    """The real treadmill clip with every other frame of its second half left out, each kept frame at its
    own time (a phone in dim light drops to 15 fps): the same steps and cadence as the whole clip. Timed by
    index at the clip's average rate, its cadence read 203.6 steps a minute against 170."""
    clip = clip_path("treadmill_phone_side.mp4")
    uneven = tmp_path / "half_rate.mp4"
    keep = "select='lt(n\\,180)+not(mod(n-180\\,2))'"
    cmd = ["ffmpeg", "-loglevel", "error", "-y", "-i", str(clip), "-vf", keep, "-fps_mode", "passthrough",
           "-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p", str(uneven)]  # fmt: skip
    subprocess.run(cmd, check=True)
    figures = {}
    for name, path in (("whole", clip), ("half", uneven)):
        out = tmp_path / name
        r = rearguard(
            "replay", str(path), "--mode", "treadmill", "--out", str(out), "--no-video", "--no-report"
        )
        assert r.returncode == 0, r.stderr
        figures[name] = load(out)["workout"]
    assert abs(figures["half"]["steps"] - figures["whole"]["steps"]) <= 1
    assert figures["half"]["cadence_spm"] == pytest.approx(figures["whole"]["cadence_spm"], rel=0.04)
    assert figures["half"]["walking_s"] == pytest.approx(figures["whole"]["walking_s"], abs=0.3)
    assert load(tmp_path / "half")["frames"] == 270 and load(tmp_path / "half")["frame_times"]["uneven"]
