"""report.html as a person sees it: headless Chromium renders it; the tables and SVG plots are in the rendered DOM
and nothing failed to load. The screenshot and DOM are kept next to the report for a human to look at."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from edge_sdk.report import write_report
from tests.report.conftest import edited_copy, noisy_and_over_budget

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed: run `bash tools/setup_test_env.sh` as root (Debian's chromium package)")
    return subprocess.run([str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120)


def test_report_renders_in_chromium_with_tables_and_plots(results_json, tmp_path):
    # The hostile name must render as text, not run; the int8 row is also marked noisy and over its accuracy budget.
    def edit(document):
        noisy_and_over_budget(document)
        document["results"][1]["artifact"].update(name="<script>alert(1)</script>.tflite")

    hostile = edited_copy(results_json, tmp_path / "results.json", edit)
    report = write_report([hostile], tmp_path / "report.html")
    screenshot = tmp_path / "report.png"

    shot = chromium(tmp_path / "profile-shot", f"--screenshot={screenshot}", "--window-size=1280,2400", report.as_uri())
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.exists() and screenshot.stat().st_size > 20_000  # a blank page is a few KB
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    dumped = chromium(tmp_path / "profile-dom", "--dump-dom", report.as_uri())
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = dumped.stdout
    (tmp_path / "report.dom.html").write_text(dom)

    # Tables and plots were parsed into elements (the SVG namespace applied by the HTML parser keeps the <svg> tags).
    assert len(re.findall(r'<table class="results"', dom)) == 1 and "<th>p99 ms</th>" in dom
    assert re.search(r"<tr[^>]*>\s*<td>digits_fp32\.tflite</td>", dom)
    assert len(re.findall(r'<svg class="plot"', dom)) == 3
    assert dom.count("<path") > 20 and "Latency vs accuracy" in dom and "Pareto front" in dom
    assert '<table class="provenance">' in dom
    # The intervals, the gate verdict and the noisy marker reached the rendered table and the warnings.
    assert re.search(r'<td class="num">\d+\.\d\d<span class="detail">\[\d+\.\d, \d+\.\d\]</span></td>', dom)  # top-1 % [95 % interval]
    assert '<td class="num noisy">±1.80 %<span class="detail">noisy</span></td>' in dom
    assert '<td class="fail">FAIL<span class="detail">(1.60 &gt; 1)</span></td>' in dom
    assert re.search(r'<td class="pass">pass<span class="detail">\(\d\.\d\d ≤ 1\)</span></td>', dom)
    assert "noisy timings over 60 runs: median known to +-1.80 %" in dom and "accuracy gate failed" in dom
    # The injected name is text in the DOM; no script element exists.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.tflite" in dom and "<script" not in dom
    # Nothing to load: no external URL, no <img>, <link>, <iframe> or other element with a src.
    assert not re.search(r"https?://", dom)
    assert not re.search(r"<(img|link|iframe|object|embed|source|video|audio)\b", dom)
    assert not re.search(r"""\ssrc=["']""", dom)
    # Chromium reports a failed load on stderr as a net:: error.
    assert "net::ERR" not in shot.stderr + dumped.stderr
