"""`make demo` end to end (small epochs): the pipeline on examples/edge.yaml, and the acceptance figures of
issues #2 and #6 on its output."""

import pytest

from examples.digits_demo import SMOKE, run_demo
from tests.examples.figures import printed_figures

pytestmark = pytest.mark.slow


def test_demo_runs_the_pipeline_and_writes_both_reports(tmp_path, capsys):
    run = run_demo(tmp_path / "demo", **SMOKE, quiet=True)  # what `examples/digits_demo.py --smoke` runs
    printed = capsys.readouterr().out
    figures = printed_figures(printed)
    assert int(figures["artifacts"]) == len(run.rows) and int(figures["artifacts_ok"]) == len(run.rows)
    html, md = run.files["html"], run.files["md"]
    assert html.exists() and md.exists()
    assert f"report: {html}" in printed and f"report: {md}" in printed
    rows = {(r["model"], r["artifact"]): r for r in run.rows}
    assert all(r["status"] == "ok" for r in rows.values()), [r["error"] for r in rows.values() if r["status"] != "ok"]

    # Issue #2: int8 of the digits CNN within 1.5 points of float and at most 0.3x its size.
    fp32, int8 = rows[("teacher", "teacher_fp32.tflite")], rows[("teacher", "teacher_int8.tflite")]
    assert abs(fp32["top1"] - int8["top1"]) * 100 <= 1.5
    assert int8["size_bytes"] <= 0.3 * fp32["size_bytes"]
    onnx_fp32, onnx_int8 = rows[("teacher", "teacher_fp32.onnx")], rows[("teacher", "teacher_int8.onnx")]
    assert abs(onnx_fp32["top1"] - onnx_int8["top1"]) * 100 <= 1.5

    # Issue #6: the student's size drop from pruning (gzip) and from int8, and accuracy against the teacher.
    distilled = rows[("student_distilled", "student_distilled_fp32.tflite")]
    pruned = rows[("student_pruned", "student_pruned_fp32.tflite")]
    pruned_int8 = rows[("student_pruned", "student_pruned_int8.tflite")]
    assert pruned["weight_sparsity"] > 0.5
    assert pruned["gzip_size_bytes"] < 0.6 * distilled["gzip_size_bytes"]
    assert pruned_int8["gzip_size_bytes"] < pruned["gzip_size_bytes"]
    for row in (distilled, pruned, pruned_int8):
        assert row["teacher_agreement"] > 0.9 and row["top1"] > 0.9
    qat = rows[("student_qat", "student_qat_int8.tflite")]
    assert qat["quantization_ranges"].startswith("learned")
    report_text = md.read_text()
    assert "student_pruned_int8.tflite" in report_text and "gzip" in report_text
