"""HTML and Markdown reports rendered from a real results file: tables, plots, warnings, provenance, escaping."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys

import pytest

from edge_sdk.errors import OutputExistsError, UsageError
from edge_sdk.report import WarningPolicy, render_report, write_report
from edge_sdk.report.warnings import accuracy_half_width_points
from tests.report.conftest import edited_copy, noisy_and_over_budget, without_trust_records

INJECTION = "<script>alert(1)</script>.tflite"


def test_html_report_has_the_table_plots_provenance_and_no_external_reference(results_json):
    page = render_report([results_json], "html")
    assert page.startswith("<!DOCTYPE html>")
    table = re.search(r'<table class="results">.*?</table>', page, flags=re.S).group(0)
    for header in ("format", "precision", "size KB", "size x fp32", "latency x fp32", "load ms", "p50", "p50 ±", "p90", "p99", "runs/s", "peak MB", "top-1 %", "drop pts", "gate", "agree %", "SQNR dB"):
        assert f">{header}</th>" in table
    assert table.count("<tr") == 3  # header + fp32 + int8
    assert "digits_<wbr>fp32.<wbr>tflite" in table and "digits_<wbr>int8.<wbr>tflite" in table  # breaks after _ and .
    assert ">1.00</td>" in table  # the fp32 artifact against itself
    assert page.count("<svg") == 3 and 'class="latency-accuracy"' in page and "Pareto front" in page
    for section in ("Warnings", "Target: desktop", "Provenance"):
        assert section in page
    for item in ("machine", "runtime", "threads", "settings", "packages", "ai-edge-litert 2.3.0", "float reference"):
        assert item in page
    # Self-contained: nothing fetched, nothing run.
    assert "http://" not in page and "https://" not in page and "<script" not in page.lower()
    assert not re.search(r"""(src|href)=["'](?!#)""", page)
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "two plots share an SVG id"


def expected_cells(result):
    """The accuracy, drop, gate and median-precision cells as the report must print them from a result's JSON."""
    top1, ci = result["accuracy"]["top1"], result["accuracy"]["top1_ci"]
    reference = result["reference"]
    drop, drop_ci, gate = reference["accuracy_drop_points"], reference["accuracy_drop_ci_points"], reference["gate"]
    stability = result["timing"]["stability"]
    return [
        f"{100 * top1:.2f} [{100 * ci['low']:.1f}, {100 * ci['high']:.1f}]",
        f"{drop:+.2f} [{drop_ci['low']:+.2f}, {drop_ci['high']:+.2f}]",
        f"{'pass' if gate['passed'] else 'FAIL'} ({gate['drop_upper_points']:.2f} {'≤' if gate['passed'] else '>'} {gate['max_drop_points']:g})",
        f"±{100 * stability['median_relative_half_width']:.2f} %" + (" noisy" if stability["noisy"] else ""),
    ]


def test_both_reports_show_the_recorded_intervals_and_gate(results_json):
    results = json.loads(results_json.read_text())["results"]
    page = render_report([results_json], "html")
    markdown = render_report([results_json], "md")
    for result in results:
        top1, drop, gate, precision = expected_cells(result)
        assert gate.startswith("pass (0.00 ≤ 1)")  # the int8 digits CNN agrees with its float reference
        for cell in (top1, drop, gate):  # HTML: the figure, then the interval or the figures on a second line
            figure, detail = cell.split(" ", 1)
            assert f'>{html.escape(figure)}<span class="detail">{html.escape(detail)}</span></td>' in page
        figure = precision.removesuffix(" noisy")
        assert re.search(rf'<td class="num( noisy)?">{re.escape(figure)}(<span class="detail">noisy</span>)?</td>', page)
        row = next(line for line in markdown.splitlines() if f"| {result['artifact']['name'].replace('_', chr(92) + '_')} |" in line)
        for cell in (top1.replace("[", "\\[").replace("]", "\\]"), drop.replace("[", "\\[").replace("]", "\\]"), gate, precision):
            assert f"| {cell} |" in row
    assert "Bracketed figures are 95 % intervals" in page and "Bracketed figures are 95 % intervals" in markdown


def test_noisy_run_and_failed_gate_are_marked_and_warned(results_json, tmp_path):
    flagged = edited_copy(results_json, tmp_path / "flagged.json", noisy_and_over_budget)
    int8 = json.loads(flagged.read_text())["results"][1]
    top1, drop, gate, precision = expected_cells(int8)
    assert precision == "±1.80 % noisy" and gate == "FAIL (1.60 > 1)"
    page = render_report([flagged], "html")
    assert '<td class="num noisy">±1.80 %<span class="detail">noisy</span></td>' in page
    assert '<td class="fail">FAIL<span class="detail">(1.60 &gt; 1)</span></td>' in page
    assert '<span class="warning-kind noise">noise</span> <strong>digits_int8.tflite on desktop</strong>: noisy timings over 60 runs: median known to +-1.80 %' in page
    assert "accuracy gate failed: drop +0.90 points, 95 % upper bound 1.60 above the budget of 1 points" in page
    markdown = render_report([flagged], "md")
    assert "| ±1.80 % noisy |" in markdown and "| FAIL (1.60 &gt; 1) |" in markdown  # Markdown renders &gt; as >
    assert "**noise** digits\\_int8.tflite on desktop: noisy timings over 60 runs: median known to +-1.80 %" in markdown
    assert "**gate** digits\\_int8.tflite on desktop: accuracy gate failed" in markdown
    # The fp32 row keeps its own, passing verdict.
    assert "**gate** digits\\_fp32.tflite" not in markdown


def test_old_results_without_intervals_gate_or_stability_still_render(results_json, tmp_path):
    old = edited_copy(results_json, tmp_path / "old.json", without_trust_records)
    top1 = json.loads(old.read_text())["results"][0]["accuracy"]["top1"]
    page = render_report([old], "html")
    assert f">{100 * top1:.2f}</td>" in page and ">gate</th>" not in page and "noisy</td>" not in page
    assert re.search(r'<td class="num">-</td>', page)  # no median interval recorded
    markdown = render_report([old], "md")
    assert f"| {100 * top1:.2f} |" in markdown and "| gate |" not in markdown


def test_markdown_report_has_the_same_table(results_json):
    text = render_report([results_json], "md")
    assert "| \\# | artifact | format | precision | size KB | size x fp32 | latency x fp32 |" in text
    assert "digits\\_fp32.tflite" in text and "## Provenance" in text and "<svg" not in text


def test_user_input_is_escaped_everywhere(results_json, tmp_path):
    def inject(document):
        result = document["results"][1]
        result["artifact"]["name"] = INJECTION
        result["artifact"]["path"] = "/models/" + INJECTION
        result["target"]["name"] = "<b>pi</b>"
        result["environment"]["hostname"] = "<img src=x onerror=alert(2)>"

    hostile = edited_copy(results_json, tmp_path / "hostile.json", inject)
    page = render_report([hostile], "html")
    assert "<script" not in page and "<img" not in page and "<b>pi</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.tflite" in page
    markdown = render_report([hostile], "md")
    assert "<script>" not in markdown and "&lt;script&gt;alert(1)&lt;/script&gt;.tflite" in markdown


def test_warnings_name_the_budget_the_noise_and_the_sample_count(results_json, tmp_path):
    def degrade(document):
        without_trust_records(document)  # the report's own thresholds apply only where the bench recorded no verdict
        int8 = document["results"][1]
        int8["reference"]["accuracy_drop_points"] = 2.5
        latency = int8["timing"]["latency"]
        latency["p99_ms"] = latency["p50_ms"] * 5

    degraded = edited_copy(results_json, tmp_path / "degraded.json", degrade)
    text = render_report([degraded], "md", WarningPolicy(max_drop_points=1.0))
    assert "**budget** digits\\_int8.tflite on desktop: accuracy drop 2.50 points vs the float reference is above the budget of 1 points" in text
    assert "**noise** digits\\_int8.tflite on desktop: noisy timings over 60 runs: p99/p50 = 5.0" in text
    # 450 test digits at ~97 % resolve accuracy to about ±1.6 points: more than 1 point.
    assert "on 450 samples is known to ±" in text
    assert "**budget**" not in render_report([degraded], "md", WarningPolicy(max_drop_points=3.0))


def test_wilson_half_width():
    assert accuracy_half_width_points(0.5, 100) == pytest.approx(9.6, abs=0.1)
    assert accuracy_half_width_points(1.0, 20) > 5  # 20/20 is not "exactly 100 %"
    assert accuracy_half_width_points(0.97, 10_000) < 0.4


def test_failed_results_are_shown_and_warned(results_json, tmp_path):
    def fail(document):
        document["results"][1].update(status="error", error="the runtime failed to run x.tflite: boom", timing=None, accuracy=None, memory=None, reference=None)

    failed = edited_copy(results_json, tmp_path / "failed.json", fail)
    page = render_report([failed], "html")
    assert "FAILED: the runtime failed to run x.tflite: boom" in page and "the benchmark failed" in page


def test_write_report_by_suffix_atomically_and_never_over_an_existing_one(results_json, tmp_path):
    html_path = write_report([results_json], tmp_path / "report.html")
    md_path = write_report([results_json], tmp_path / "report.md")
    assert html_path.read_text().startswith("<!DOCTYPE html>") and md_path.read_text().startswith("# edge-sdk")
    before = html_path.read_text()
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_report([results_json], html_path)
    assert html_path.read_text() == before
    write_report([results_json], html_path, overwrite=True)
    with pytest.raises(UsageError, match="cannot tell the report format"):
        write_report([results_json], tmp_path / "report.txt")
    with pytest.raises(UsageError, match="contradicts"):
        write_report([results_json], tmp_path / "other.html", fmt="md")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report.md"]  # no temporary files left


def test_two_results_files_render_in_one_report(results_json):
    page = render_report([results_json, results_json], "html")
    assert "digits_int8.tflite [results.json]" in page and page.count('<table class="provenance">') == 2


def test_cli_report_and_import_boundary(results_json, tmp_path):
    output = tmp_path / "r.md"
    run = subprocess.run([sys.executable, "-m", "edge_sdk", "report", str(results_json), "-o", str(output), "--max-drop", "0.5"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert f"report: {output}" in run.stdout and output.exists()
    again = subprocess.run([sys.executable, "-m", "edge_sdk", "report", str(results_json), "-o", str(output)], capture_output=True, text=True, timeout=120)
    assert again.returncode == 8 and "already exists" in again.stderr
    # Importing the report package loads neither matplotlib nor a framework; rendering Markdown does not either.
    probe = (
        "import sys; from edge_sdk.report import render_report; render_report([sys.argv[1]], 'md'); "
        "print(sorted(m for m in ('matplotlib', 'tensorflow', 'torch', 'onnxruntime') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe, str(results_json)], capture_output=True, text=True, timeout=120)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"


def test_many_sample_size_warnings_on_one_target_become_one_line(results_json, tmp_path):
    def many_artifacts(document):
        base = document["results"]
        copies = []
        for index in range(4):
            for result in base:
                twin = json.loads(json.dumps(result))
                twin["artifact"]["name"] = f"v{index}_{result['artifact']['name']}"
                copies.append(twin)
        document["results"] = copies

    eight = edited_copy(results_json, tmp_path / "eight.json", many_artifacts)
    text = render_report([eight], "md", WarningPolicy())
    sample_lines = [line for line in text.splitlines() if line.startswith("- **samples**")]
    assert len(sample_lines) == 1, sample_lines
    assert "8 artifacts on desktop" in sample_lines[0] and "v3\\_digits\\_int8.tflite" in sample_lines[0]
    assert "on 450 samples is known only to ±" in sample_lines[0]
    # Two artifacts keep one line each (tests above).
    assert sum(line.startswith("- **samples**") for line in render_report([results_json], "md", WarningPolicy()).splitlines()) == 2
