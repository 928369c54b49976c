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
    assert len(re.findall(r'<table class="results"', dom)) == 1 and "<th>p99</th>" in dom
    assert re.search(r'<tr[^>]*>\s*<td class="num">1</td><td>digits_<wbr>fp32\.<wbr>tflite</td>', dom)
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
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.<wbr>tflite" in dom and "<script" not in dom
    # Nothing to load: no external URL, no <img>, <link>, <iframe> or other element with a src.
    assert not re.search(r"https?://", dom)
    assert not re.search(r"<(img|link|iframe|object|embed|source|video|audio)\b", dom)
    assert not re.search(r"""\ssrc=["']""", dom)
    # Chromium reports a failed load on stderr as a net:: error.
    assert "net::ERR" not in shot.stderr + dumped.stderr


# A page that shows the report, unchanged, in an iframe of the width under test (the iframe is the report's viewport,
# so its media queries apply; Chromium's headless window cannot be narrower than 500 px), then measures the layout
# from outside (a srcdoc frame shares the page's origin; the report itself has no script and forbids one) and writes
# what it found into its own DOM, which --dump-dom returns.
HARNESS = """<!DOCTYPE html><html><head><meta charset="utf-8"><style>body {{ margin: 0 }} iframe {{ border: 0; display: block }}</style></head>
<body><iframe id="report" width="{width}" height="{height}" srcdoc="{srcdoc}"></iframe><pre id="layout-probe"></pre><script>
document.getElementById("report").addEventListener("load", function () {{
  const doc = this.contentDocument, view = this.contentWindow;
  const width = doc.documentElement.clientWidth;
  const wide = [];
  for (const element of doc.body.querySelectorAll("*")) {{
    if (element.closest(".table-wrap")) continue;
    const box = element.getBoundingClientRect();
    if (box.width > 0 && (box.right > width + 1 || box.left < -1)) wide.push(element.tagName + "." + element.getAttribute("class") + " " + Math.round(box.left) + ".." + Math.round(box.right));
  }}
  const plots = [...doc.querySelectorAll("svg.plot")].map(svg => svg.getBoundingClientRect().right <= width + 1 && svg.getBoundingClientRect().width > 100);
  const wrap = doc.querySelector(".table-wrap");
  const scrolls = wrap.scrollWidth > wrap.clientWidth;
  wrap.scrollLeft = wrap.scrollWidth;
  const cell = wrap.querySelector("tbody tr td:nth-child(2)").getBoundingClientRect();
  const sticky = cell.left >= wrap.getBoundingClientRect().left - 1 && cell.right > cell.left;
  wrap.scrollLeft = 0;
  const order = ["verdict", "warnings"].map(id => doc.getElementById(id).getBoundingClientRect().top).concat([doc.querySelector("table.results").getBoundingClientRect().top]);
  document.getElementById("layout-probe").textContent = JSON.stringify({{width, wide, plots, scrolls, sticky, order, page: doc.documentElement.scrollWidth}});
}});
</script></body></html>"""


def many_artifacts(document):
    """Fourteen rows from two real ones: four source models in two formats and two precisions (a pipeline's report)."""
    import json as _json

    fp32, int8 = document["results"]
    rows = []
    for model in ("teacher", "student_distilled", "student_pruned", "student_qat"):
        for fmt in ("tflite", "onnx"):
            for base in (fp32, int8):
                if model == "student_qat" and base is fp32 and fmt == "onnx":
                    continue
                twin = _json.loads(_json.dumps(base))
                twin["artifact"].update(name=f"{model}_{base['artifact']['mode']}.{fmt}", format=fmt)
                twin["reference"]["path"] = f"/models/{model}.h5"
                rows.append(twin)
    document["results"] = rows[:14]


@pytest.mark.parametrize("width", [1400, 420])
def test_report_fits_the_screen_at_desktop_and_phone_widths(results_json, tmp_path, width):
    import html
    import json

    from edge_sdk.pipeline import SUMMARY_COLUMNS, _insert_before, summary_html

    results = edited_copy(results_json, tmp_path / "results.json", many_artifacts)
    report = write_report([results], tmp_path / "report.html")
    # As the pipeline writes it: with its compression summary (a second wide table) before the legend.
    row = {"model": "student_distilled", "artifact": "student_distilled_int8.tflite", "target": "desktop", "size_bytes": 22_600,
           "gzip_size_bytes": 19_100, "weight_sparsity": 0.75, "top1": 0.9489, "drop_points": 0.44, "teacher_agreement": 0.9667, "within_budget": True}
    assert set(row) >= {"model", "artifact", "target"} and len(SUMMARY_COLUMNS) == 10
    report.write_text(_insert_before(report.read_text(), '<section id="columns">', summary_html([row] * 14)))
    harness = tmp_path / f"harness-{width}.html"
    harness.write_text(HARNESS.format(width=width, height=4200, srcdoc=html.escape(report.read_text(), quote=True)))
    window = f"--window-size={max(width, 500) + 20},4200"
    shot = tmp_path / f"report-{width}.png"
    taken = chromium(tmp_path / "profile-shot", f"--screenshot={shot}", window, "--hide-scrollbars", harness.as_uri())
    assert taken.returncode == 0 and shot.exists() and shot.stat().st_size > 20_000, taken.stderr[-2000:]

    dumped = chromium(tmp_path / "profile-dom", window, "--dump-dom", harness.as_uri())
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    found = json.loads(html.unescape(re.search(r'<pre id="layout-probe">(.*?)</pre>', dumped.stdout, re.S).group(1)))
    # The frame's own scroll bar may take up to 20 px of it.
    assert width - 20 <= found["width"] <= width and found["page"] <= found["width"], found  # nothing scrolls the page sideways
    assert found["wide"] == [], found["wide"]  # no element wider than the viewport outside the table's scroll box
    assert len(found["plots"]) == 3 and all(found["plots"]), found  # every plot fits: none clipped
    if width == 420:
        assert found["scrolls"] and found["sticky"], found  # the wide table scrolls in its box, the artifact column stays
    verdict_top, warnings_top, table_top = found["order"]
    assert verdict_top < warnings_top < table_top  # the verdict first, then the (collapsed) warnings, then the table
