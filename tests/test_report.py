"""The replay report: self-contained, one marker per cue, escaped, survives empty input, optional sections."""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from server.report import render_report

EVIL = "<script>alert(1)</script>"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class TagChecker(HTMLParser):
    """Records every tag, checks that non-void elements nest and close properly, and collects attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.opened: dict[str, int] = {}
        self.closed: dict[str, int] = {}
        self.attrs: list[tuple[str, str, str]] = []
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attrs += [(tag, k, v or "") for k, v in attrs]
        self.opened[tag] = self.opened.get(tag, 0) + 1
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attrs += [(tag, k, v or "") for k, v in attrs]

    def handle_endtag(self, tag: str) -> None:
        self.closed[tag] = self.closed.get(tag, 0) + 1
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.texts.append(data)


def check_markup(page: str) -> TagChecker:
    checker = TagChecker()
    checker.feed(page)
    checker.close()
    assert checker.errors == []
    assert checker.stack == []
    assert checker.opened.get("svg", 0) == checker.closed.get("svg", 0) > 0
    return checker


def event(
    t: float, tier: str, *, repeat: bool = False, kind: str = "obstacle", text: str = ""
) -> dict[str, Any]:
    return {
        "t": t,
        "tier": tier,
        "kind": kind,
        "side": "left",
        "distance_m": 1.4,
        "ttc_s": 1.3,
        "text": text or f"{tier} {kind} at {t}",
        "repeat": repeat,
    }


EVENTS = [
    event(2.0, "advisory"),
    event(3.5, "urgent"),
    event(4.2, "stop"),
    event(6.2, "stop", repeat=True),
    event(8.0, "advisory"),
    event(8.5, "stop", kind="walker_lost"),
]


def timeline(events: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "clip": "squats.mp4",
        "mode": "partner",
        "fps": 10.0,
        "frames": 100,
        "duration_s": 10.0,
        "source": "offline",
        "events": EVENTS if events is None else events,
        "summary": {"walker_seen_share": 0.9, "cues_per_minute": 30.0, "pipeline_ms_p95": 30.0},
        **extra,
    }


def frames(n: int = 100) -> dict[str, Any]:
    """10 fps: pipeline 20 ms (30 ms from frame 50), walker lost in frames 70-79, obstacle in 20-44."""
    return {
        "t": [i / 10 for i in range(n)],
        "pipeline_ms": [20.0 if i < 50 else 30.0 for i in range(n)],
        "pose_ms": [12.0] * n,
        "walker": [0 if 70 <= i < 80 else 1 for i in range(n)],
        "hazards": [["obstacle"] if 20 <= i < 45 else [] for i in range(n)],
        "ttc_s": [4.0 - (i - 20) * 0.15 if 20 <= i < 45 else None for i in range(n)],
    }


LIVE: dict[str, Any] = {
    "server": "http://127.0.0.1:8000",
    "frames_sent": 100,
    "frames_processed": 96,
    "frames_dropped": 4,
    "latency_ms": {"p50": 41.5, "p95": 77.25},
    "server_added_ms": {"p50": 22.0, "p95": 31.0},
    "events": [event(2.1, "advisory"), event(3.6, "urgent")],
}
COMPARISON: dict[str, Any] = {
    "matched": [[EVENTS[0], LIVE["events"][0]], [EVENTS[1], LIVE["events"][1]]],
    "only_offline": EVENTS[2:],
    "only_live": [],
    "tolerance_s": 1.0,
}
LABELS: dict[str, Any] = {
    "matches": [[{"t": 2.0, "tier": "advisory", "kind": "obstacle"}, EVENTS[0]]],
    "misses": [{"t": 9.0, "tier": "urgent", "kind": "kerb"}],
    "false_alarms": [EVENTS[4]],
    "passed": False,
}


def render(
    tmp_path: Path, tl: dict[str, Any] | None = None, fr: dict[str, Any] | None = None, **kw: Any
) -> str:
    path = render_report(tmp_path, timeline() if tl is None else tl, frames() if fr is None else fr, **kw)
    assert path == tmp_path / "report.html"
    return path.read_text(encoding="utf-8")


def test_writes_one_well_formed_page_and_no_temporary_file(tmp_path: Path) -> None:
    page = render(tmp_path, live=LIVE, comparison=COMPARISON, labels=LABELS)
    assert page.startswith("<!DOCTYPE html>")
    assert sorted(os.listdir(tmp_path)) == ["report.html"]
    check_markup(page)
    assert "<title>Rearguard report: squats.mp4 (partner)</title>" in page


def test_page_is_self_contained(tmp_path: Path) -> None:
    page = render(tmp_path / "plain")
    for needle in ("http://", "https://", "<script src", "<link", "url(", "@import"):
        assert needle not in page
    # With a live section the server's address is shown as text, but nothing is loaded from anywhere.
    page = render(tmp_path / "all", live=LIVE, comparison=COMPARISON, labels=LABELS)
    assert "<script src" not in page and "<link" not in page and "url(" not in page
    for tag, name, value in check_markup(page).attrs:
        if name in ("src", "href", "xlink:href", "poster", "data"):
            assert value == "annotated.mp4" or value.startswith("#"), (tag, name, value)


def test_cues_plot_has_one_marker_per_event_coloured_by_tier(tmp_path: Path) -> None:
    page = render(tmp_path)
    markers = re.findall(
        r'<circle class="cue tier-(\w+)( repeat)?"[^>]*fill="(#\w+)"[^>]*fill-opacity="([\d.]+)"', page
    )
    assert len(markers) == len(EVENTS)
    tiers = sorted(m[0] for m in markers)
    assert tiers == sorted(e["tier"] for e in EVENTS)
    colours = {tier: {m[2] for m in markers if m[0] == tier} for tier in ("advisory", "urgent", "stop")}
    assert all(len(c) == 1 for c in colours.values())
    assert len({next(iter(c)) for c in colours.values()}) == 3  # three distinct tier colours
    repeats = [m for m in markers if m[1]]
    assert len(repeats) == 1 and float(repeats[0][3]) < 1.0  # the repeat is drawn lighter
    assert all(float(m[3]) == 1.0 for m in markers if not m[1])


def test_every_cue_is_listed_in_the_table(tmp_path: Path) -> None:
    page = render(tmp_path)
    table = page.split('<section id="cue-list">', 1)[1].split("</section>", 1)[0]
    assert table.count("<tr class=") == len(EVENTS)
    for e in EVENTS:
        assert e["text"] in table
        assert f'data-t="{e["t"]:.2f}"' in table  # the time seeks the video


def test_summary_table_has_counts_rate_and_every_summary_key(tmp_path: Path) -> None:
    page = render(tmp_path)
    summary = page.split('<section id="summary">', 1)[1].split("</section>", 1)[0]
    assert "<th>cues: stop</th><td>3 (1 repeats)</td>" in summary
    assert "<th>cues: advisory</th><td>2 (0 repeats)</td>" in summary
    assert "<th>cues per minute (incl. repeats)</th><td>36.0</td>" in summary  # 6 cues in 10 s
    for key in timeline()["summary"]:
        assert f"summary: {key}" in summary
    assert "0.9 (90.0 %)" in summary and "30 ms" in summary


def test_hazard_plot_has_thresholds_spans_and_ttc_line(tmp_path: Path) -> None:
    page = render(tmp_path)
    assert page.count('class="threshold"') == 3
    for label in ("advisory &lt; 3 s", "urgent &lt; 1.5 s", "stop &lt; 1 s"):
        assert label in page
    spans = re.findall(r'<rect class="hazard-span kind-0" x="([\d.]+)"[^>]*width="([\d.]+)"', page)
    assert len(spans) == 1  # frames 20-44 are one run, 2.0 s to 4.5 s
    assert page.count('class="series-ttc"') == 1


def test_cost_plot_prints_median_and_p95(tmp_path: Path) -> None:
    page = render(tmp_path)
    assert "pipeline: median <b>25.0 ms</b>, p95 <b>30.0 ms</b>" in page
    ramp = {"t": [i / 10 for i in range(101)], "pipeline_ms": [float(i) for i in range(101)]}
    assert "median <b>50.0 ms</b>, p95 <b>95.0 ms</b>" in render(tmp_path / "ramp", fr=ramp)
    assert "pose: median <b>12.0 ms</b>, p95 <b>12.0 ms</b>" in page
    assert "frame budget 100.0 ms at 10 fps" in page
    assert re.search(r'<text class="tick"[^>]*>\d+ ms</text>', page)  # value ticks carry units
    assert re.search(r'<text class="tick"[^>]*>\d+ s</text>', page)


def test_walker_strip_shows_the_lost_span(tmp_path: Path) -> None:
    page = render(tmp_path)
    assert page.count('class="walker-run lost"') == 1
    assert page.count('class="walker-run seen"') == 2
    assert "90.0 % of frames" in page


def test_long_series_are_reduced_but_keep_spikes(tmp_path: Path) -> None:
    n = 20_000
    fr = {"t": [i / 30 for i in range(n)], "pipeline_ms": [20.0] * n}
    fr["pipeline_ms"][12_345] = 400.0
    page = render(tmp_path, timeline(duration_s=n / 30, frames=n, fps=30.0), fr)
    points = re.search(r'<polyline class="series-pipeline" points="([^"]*)"', page)
    assert points is not None
    n_points = len(points.group(1).split())
    assert 100 < n_points < 2_000
    assert "max 400.0 ms" in page


def test_user_text_is_escaped_everywhere(tmp_path: Path) -> None:
    evil_event = event(1.0, EVIL, kind=EVIL, text=EVIL) | {"side": EVIL}
    tl = timeline([evil_event], clip=EVIL, mode=EVIL, source=EVIL, summary={EVIL: EVIL})
    fr = frames() | {"hazards": [[EVIL]] * 100}
    live = LIVE | {"server": EVIL, "events": [evil_event]}
    comparison = {
        "matched": [[evil_event, evil_event]],
        "only_offline": [evil_event],
        "only_live": [evil_event],
    }
    labels = {
        "matches": [[{"t": 1.0, "text": EVIL}, evil_event]],
        "misses": [{EVIL: EVIL}],
        "false_alarms": [],
    }
    page = render(tmp_path, tl, fr, live=live, comparison=comparison, labels=labels, video_name='a"b.mp4')
    assert "alert(1)</script>" not in page and "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<script>") == 1  # only the report's own seek-the-video script
    assert 'src="a&quot;b.mp4"' in page
    checker = check_markup(page)
    assert not any(tag == "script" and name == "src" for tag, name, _ in checker.attrs)
    assert any(EVIL in text for text in checker.texts)  # the browser shows the name as typed


@pytest.mark.parametrize(
    "fr",
    [{}, {"t": []}, {"t": [0.0, 0.1, 0.2]}, {"t": [0.0, 0.1], "ttc_s": [None, None], "walker": [None, None]}],
)
def test_empty_input_renders_and_says_no_data(tmp_path: Path, fr: dict[str, Any]) -> None:
    tl = timeline([], duration_s=0.0, frames=0, summary={}) | {"fps": None}
    page = render(tmp_path, tl, fr)
    check_markup(page)
    for plot in ("cue", "ttc-plot", "cost-plot", "walker-plot"):
        empty = re.search(rf'<svg class="plot {plot} empty"[^>]*>(.*?)</svg>', page)
        assert empty is not None, plot
        assert "no data" in empty.group(1)
    assert 'class="cue tier-' not in page
    assert "No cues." in page and "would have heard <b>nothing</b>" in page


def test_missing_columns_leave_the_other_plots_intact(tmp_path: Path) -> None:
    fr = {"t": [i / 10 for i in range(100)], "walker": [1] * 100}
    page = render(tmp_path, fr=fr)
    assert 'class="walker-run seen"' in page
    assert '<svg class="plot cost-plot empty"' in page and '<svg class="plot ttc-plot empty"' in page
    assert 'class="cue tier-stop"' in page


def test_optional_sections_appear_only_when_given(tmp_path: Path) -> None:
    page = render(tmp_path / "none", video_name=None)
    for section in ('id="live"', 'id="comparison"', 'id="labels"', 'id="coverage"', "<video", "<script"):
        assert section not in page
    coverage = [{"t": float(s), "coverage": 0.5} for s in range(10)]
    page = render(
        tmp_path / "all", timeline(coverage=coverage), live=LIVE, comparison=COMPARISON, labels=LABELS
    )
    for section in ('id="live"', 'id="comparison"', 'id="labels"', 'id="coverage"', "series-coverage"):
        assert section in page
    assert '<video id="video" controls preload="metadata" src="annotated.mp4">' in page


def test_live_comparison_and_label_sections_carry_their_numbers(tmp_path: Path) -> None:
    page = render(tmp_path, live=LIVE, comparison=COMPARISON, labels=LABELS)
    live = page.split('<section id="live">', 1)[1].split("</section>", 1)[0]
    assert "4 (4.0 % of sent)" in live and "p50 41.5 ms, p95 77.2 ms" in live
    assert live.count('class="live-cue tier-') == 2
    comparison = page.split('<section id="comparison">', 1)[1].split("</section>", 1)[0]
    assert "<b>2</b> cue(s) matched within ±1 s; <b>4</b> only offline; <b>0</b> only live." in comparison
    labels = page.split('<section id="labels">', 1)[1].split("</section>", 1)[0]
    assert '<p class="verdict fail">FAIL</p>' in labels
    assert "<b>1</b> matched, <b>1</b> missed, <b>1</b> false alarm(s)." in labels
    assert page.count('class="expected-miss"') == 1  # the miss is marked on the cues plot
    passed = render(tmp_path / "pass", labels=LABELS | {"misses": [], "false_alarms": [], "passed": True})
    assert '<p class="verdict pass">PASS</p>' in passed


def test_a_failed_write_leaves_the_previous_report_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    render(tmp_path)
    before = (tmp_path / "report.html").read_text(encoding="utf-8")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("server.report.os.replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        render_report(tmp_path, timeline(clip="other.mp4"), frames())
    assert (tmp_path / "report.html").read_text(encoding="utf-8") == before
    assert sorted(os.listdir(tmp_path)) == ["report.html"]


COVERAGE = [
    {"t": float(s), "coverage": c, "by_m": [b, c, None], "low": low}
    for s, (c, b, low) in enumerate(
        [(0.3, 0.6, True), (0.35, 0.6, True), (None, None, None), (0.7, 0.8, False), (0.8, 0.9, False)]
        + [(0.9, 1.0, False)] * 5
    )
]
OBSTACLES = [
    {"id": "7", "kind": "bin", "first_t": 2.0, "last_t": 4.4, "frames": 25, "in_corridor_frames": 20,
     "min_distance_m": 0.8, "min_ttc_s": 1.1, "max_closing_mps": 0.7, "side": "left"},
    {"id": "9", "kind": None, "first_t": 6.0, "last_t": 6.2, "frames": 3, "in_corridor_frames": 0,
     "min_distance_m": None, "min_ttc_s": None, "max_closing_mps": None, "side": None},
]  # fmt: skip


def test_coverage_chart_has_frames_seconds_bands_and_low_spans(tmp_path: Path) -> None:
    fr = frames() | {"coverage": [None if 20 <= i < 30 else 0.2 + i / 200 for i in range(100)]}
    tl = timeline(coverage=COVERAGE, coverage_summary={"median": 0.62, "share_low": 0.2, "frames_known": 90})
    page = render(tmp_path, tl, fr)
    check_markup(page)
    section = page.split('<section id="coverage">', 1)[1].split("</section>", 1)[0]
    assert section.count('class="coverage-low"') == 2  # the two low seconds
    assert section.count('<circle class="coverage-second"') == 9  # second 2 is unknown
    assert section.count('class="series-coverage"') == 2  # a gap where the second is unknown
    assert section.count('class="series-coverage-frame"') == 2  # and where the frames are
    assert all(f'class="series-band-{b}"' in section for b in (0, 1)) and "series-band-2" not in section
    assert "coverage low (the partner is coached)" in section and "0–1 m behind" in section
    summary = page.split('<section id="summary">', 1)[1].split("</section>", 1)[0]
    assert "<th>path seen (median of frames)</th><td>62 %</td>" in summary
    assert "<th>coverage low (share of frames)</th><td>20.0 %</td>" in summary


def test_coverage_unknown_everywhere_says_so(tmp_path: Path) -> None:
    unknown = [{"t": float(s), "coverage": None, "by_m": [None] * 3, "low": None} for s in range(10)]
    page = render(tmp_path, timeline(coverage=unknown), frames() | {"coverage": [None] * 100})
    assert '<svg class="plot coverage-plot empty"' in page and "coverage unknown in every frame" in page


def test_obstacle_table_lists_each_tracked_obstacle(tmp_path: Path) -> None:
    page = render(tmp_path / "none", timeline(obstacles=[]))
    assert 'id="obstacles"' not in page and "<th>obstacles tracked</th><td>0</td>" in page
    page = render(tmp_path / "two", timeline(obstacles=OBSTACLES))
    check_markup(page)
    table = page.split('<section id="obstacles">', 1)[1].split("</section>", 1)[0]
    assert "Obstacles tracked (2)" in table and table.count("<tr>") == 3  # header and two rows
    assert '<td>7</td><td>bin</td><td class="num"><a href="#video" data-t="2.00">2.00</a></td>' in table
    assert '<td class="num">0.80</td><td class="num">1.10</td><td class="num">0.70</td>' in table
    assert '<a href="#obstacles">obstacles</a>' in page
    evil = [OBSTACLES[0] | {"id": EVIL, "kind": EVIL, "side": EVIL}]
    page = render(tmp_path / "evil", timeline(obstacles=evil))
    assert "<script>alert" not in page and "&lt;script&gt;" in page


def test_unexpected_notices_are_listed_apart_from_false_alarms(tmp_path: Path) -> None:
    notice = event(3.0, "advisory", kind="path_hidden", text="I cannot see behind you")
    page = render(tmp_path, labels=LABELS | {"notices": [notice]})
    labels = page.split('<section id="labels">', 1)[1].split("</section>", 1)[0]
    assert "Notices heard but not expected (1): not false alarms" in labels
    assert labels.count("<li>") == 3 and "I cannot see behind you" in labels  # miss, false alarm, notice
    assert "Notices heard" not in render(tmp_path / "none", labels=LABELS)
