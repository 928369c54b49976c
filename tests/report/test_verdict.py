"""The verdict's rules on synthetic results (figures chosen here, never this machine's timings): the budget's upper
bound, no labels, nothing qualifies, "slower than fp32", "within noise", the teacher's overall pick, and where the
verdict appears in both reports."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from edge_sdk.report.html import render_html
from edge_sdk.report.markdown import render_markdown
from edge_sdk.report.model import build_model
from edge_sdk.report.verdict import DEFAULT_BUDGET_POINTS, build_verdict, latency_text, verdict_text
from edge_sdk.report.warnings import WarningPolicy, report_warnings


def result(name: str, mode: str, p50_ms: float, *, fmt: str = "tflite", source: str | None = "/m/teacher.keras", top1: float | None = 0.95,
           drop: tuple[float, float, float] | None = (0.0, -0.5, 0.5), median_ci: tuple[float, float] | None = None,
           agreement: float = 1.0, samples: int = 1000, size: int = 100_000) -> dict[str, Any]:
    """One result record; `drop` is (estimate, low, high) in points, `median_ci` the median's 95 % interval in ms."""
    low, high = median_ci or (p50_ms * 0.99, p50_ms * 1.01)
    reference: dict[str, Any] | None = None
    if source is not None:
        reference = {"path": source, "fidelity": {"top1_agreement": agreement, "sqnr_db": 30.0}}
        if drop is not None:
            reference.update(accuracy_drop_points=drop[0], accuracy_drop_ci_points={"estimate": drop[0], "low": drop[1], "high": drop[2]})
    return {
        "artifact": {"name": name, "path": f"/a/{name}", "format": fmt, "mode": mode, "size_bytes": size},
        "target": {"name": "desktop", "transport": "local"},
        "data": {"path": "/d/test.npz", "evaluated_samples": samples},
        "settings": {"runs": 100, "warmup": 10},
        "environment": {},
        "status": "ok",
        "timing": {
            "load_ms": 1.0, "latency": {"p50_ms": p50_ms, "p90_ms": p50_ms * 1.1, "p99_ms": p50_ms * 1.2},
            "latencies_ms": [p50_ms] * 8,
            "stability": {"noisy": False, "median_ci_ms": {"estimate": p50_ms, "low": low, "high": high}, "median_relative_half_width": 0.01},
        },
        "accuracy": None if top1 is None else {"samples": samples, "top1": top1, "top1_ci": {"estimate": top1, "low": top1 - 0.01, "high": top1 + 0.01}},
        "reference": reference,
    }


def verdict_for(results: list[dict[str, Any]], max_drop: float | None = None, baseline: str | None = None):
    model = build_model([{"schema_version": "1.0", "results": results}], [Path("results.json")])
    return model, build_verdict(model, max_drop, baseline)


def test_the_pick_is_the_fastest_within_the_budget_judged_on_the_upper_bound():
    model, verdict = verdict_for([
        result("m_fp32.tflite", "fp32", 2.0),
        # Faster, and its drop of 0.8 points is within a 1-point budget, but not its upper bound (1.4).
        result("m_int8.tflite", "int8", 0.5, drop=(0.8, 0.2, 1.4)),
        result("m_fp16.tflite", "fp16", 1.5, drop=(0.1, -0.3, 0.6)),
    ], max_drop=1.0)
    (pick,) = verdict.picks
    assert pick.row.name == "m_fp16.tflite" and pick.qualified == 2 and pick.candidates == 3
    assert not verdict.budget_is_default
    _, wider = verdict_for([result("m_fp32.tflite", "fp32", 2.0), result("m_int8.tflite", "int8", 0.5, drop=(0.8, 0.2, 1.4))], max_drop=1.5)
    assert wider.picks[0].row.name == "m_int8.tflite"


def test_the_default_budget_is_used_and_said_when_none_is_given():
    _, verdict = verdict_for([result("m_fp32.tflite", "fp32", 2.0)])
    assert verdict.budget_is_default and verdict.budget_points == DEFAULT_BUDGET_POINTS
    assert "the default" in verdict_text(verdict, [])


def test_nothing_qualifies_is_said_plainly():
    model, verdict = verdict_for([
        result("m_fp32.tflite", "fp32", 2.0, drop=(0.0, -2.0, 2.0)),  # even the float artifact's interval is too wide
        result("m_int8.tflite", "int8", 0.5, drop=(3.0, 2.0, 4.0)),
    ], max_drop=1.0)
    assert verdict.picks[0].nothing_qualifies
    assert "nothing qualifies: none of 2 artifact(s) is within the budget" in verdict_text(verdict, model.rows)


def test_without_labels_the_fidelity_gate_decides():
    model, verdict = verdict_for([
        result("m_fp32.tflite", "fp32", 2.0, top1=None, drop=None, agreement=1.0),
        result("m_int8.tflite", "int8", 0.5, top1=None, drop=None, agreement=0.95),  # lower bound ~93.5 % < 99 %
        result("m_fp16.tflite", "fp16", 1.0, top1=None, drop=None, agreement=0.999),  # lower bound ~99.4 %
    ], max_drop=1.0)
    (pick,) = verdict.picks
    assert pick.basis == "fidelity" and pick.row.name == "m_fp16.tflite"
    assert "agreement 99.90 % (no labels)" in verdict_text(verdict, model.rows)


def test_without_a_float_reference_nothing_is_recommended_blind():
    _, verdict = verdict_for([result("a.tflite", "fp32", 2.0, source=None, top1=None), result("b.tflite", "int8", 1.0, source=None, top1=None)])
    assert verdict.picks[0].nothing_qualifies and verdict.picks[0].basis == "none"


def test_slower_than_fp32_and_within_noise_flags():
    model, verdict = verdict_for([
        result("m_fp32.tflite", "fp32", 2.0, median_ci=(1.98, 2.02)),
        result("m_int8.tflite", "int8", 7.2, median_ci=(7.1, 7.3)),
        result("m_fp16.tflite", "fp16", 2.01, median_ci=(1.99, 2.05)),
        result("m_fp32.onnx", "fp32", 1.0, fmt="onnx"),  # ONNX int8 is compared with the ONNX fp32, not the TFLite one
        result("m_int8.onnx", "int8", 0.5, fmt="onnx"),
    ])
    by_name = {row.name: row for row in model.rows}
    assert verdict.flags_for(by_name["m_int8.tflite"]) == ["int8 is 3.6x slower than fp32 here"]
    assert by_name["m_int8.tflite"].latency_ratio_to_float == 3.6
    assert verdict.flags_for(by_name["m_fp16.tflite"]) == ["latency difference from fp32 within noise (the medians' 95 % intervals overlap)"]
    assert by_name["m_int8.onnx"].latency_ratio_to_float == 0.5 and verdict.flags_for(by_name["m_int8.onnx"]) == []
    assert verdict.flags_for(by_name["m_fp32.tflite"]) == []


def test_accuracy_interval_wider_than_the_drop_is_flagged():
    model, verdict = verdict_for([result("m_fp32.tflite", "fp32", 2.0), result("m_int8.tflite", "int8", 1.0, drop=(0.3, -0.9, 1.5))])
    assert "accuracy interval wider than the drop" in verdict.flags_for(model.rows[1])


def test_one_pick_per_source_model_and_an_overall_pick_against_the_teacher():
    results = [
        result("teacher_fp32.tflite", "fp32", 4.0, top1=0.97),
        result("teacher_int8.tflite", "int8", 3.0, top1=0.97, drop=(0.0, -0.4, 0.4)),
        result("student_fp32.tflite", "fp32", 1.0, source="/m/student.keras", top1=0.965),
        result("student_int8.tflite", "int8", 0.8, source="/m/student.keras", top1=0.90, drop=(6.5, 5.0, 8.0)),
    ]
    model, verdict = verdict_for(results, max_drop=2.0, baseline="/m/teacher.keras")
    assert [(p.source, p.row.name) for p in verdict.picks] == [("teacher.keras", "teacher_int8.tflite"), ("student.keras", "student_fp32.tflite")]
    (overall,) = verdict.overall
    # The student's fp32 is 0.5 points below the teacher, with an unpaired interval of about +-1.4: within 2 points.
    assert overall.row.name == "student_fp32.tflite" and overall.basis == "teacher"
    assert abs(overall.drop_points - 0.5) < 1e-9 and overall.drop_interval[1] < 2.0
    assert "all models vs the teacher: ship student_fp32.tflite" in verdict_text(verdict, model.rows)
    # With a tighter budget no student qualifies, but the teacher's own int8 does on its paired interval.
    _, tight = verdict_for(results, max_drop=1.0, baseline="/m/teacher.keras")
    assert tight.overall[0].row.name == "teacher_int8.tflite" and tight.overall[0].drop_interval == (-0.4, 0.4)
    _, no_teacher = verdict_for(results, max_drop=2.0)
    assert no_teacher.overall == []


def test_latency_text_has_three_significant_digits_and_a_unit():
    assert [latency_text(v) for v in (0.00191, 0.005, 0.0123, 0.5, 1.234, 12.345, 123.45, 4321.0)] == [
        "1.91 µs", "5.00 µs", "12.3 µs", "500 µs", "1.23 ms", "12.3 ms", "123 ms", "4.32 s"]


def test_both_reports_open_with_the_verdict_and_collapse_the_warnings():
    results = [result("m_fp32.tflite", "fp32", 2.0), result("m_int8.tflite", "int8", 7.2, median_ci=(7.1, 7.3), drop=(0.3, -0.9, 1.5))]
    model, verdict = verdict_for(results, max_drop=1.0)
    warnings = report_warnings(model.rows, WarningPolicy(max_drop_points=1.0))
    assert warnings
    page = render_html(model, warnings, verdict)
    verdict_at, warnings_at, table_at = page.index('id="verdict"'), page.index('id="warnings"'), page.index('<table class="results"')
    assert verdict_at < warnings_at < table_at
    assert re.search(r'<section id="warnings"><details><summary>Warnings \(\d+\)', page)
    assert "ship m_fp32.tflite (#1)" in page and "int8 is 3.6x slower than fp32 here" in page
    assert ">latency x fp32</th>" in page and ">3.60</td>" in page
    markdown = render_markdown(model, warnings, verdict)
    assert markdown.index('<a id="verdict"></a>') < markdown.index("<details>") < markdown.index("| \\# | artifact")
    assert "int8 is 3.6x slower than fp32 here" in markdown
