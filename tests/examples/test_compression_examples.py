"""Every compression example runs top to bottom in its smoke mode (`--smoke`: small epochs, the same code as a full
run), its model goes through convert + bench, and the figures it prints are checked."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from tests.examples.figures import printed_figures

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# The figures each example prints.
FIGURES = {
    "distillation": {"teacher_parameters", "student_parameters", "teacher_accuracy", "student_accuracy", "artifacts_ok"},
    "pruning": {"weight_sparsity", "dense_fp32_gzip_bytes", "pruned_fp32_gzip_bytes", "pruned_int8_gzip_bytes"},
    "qat": {"calibration", "quantization_ranges", "int8_top1_agreement"},
    "clustering": {"clustered_layers", "max_unique_values"},
    "low_rank": {"parameters_before", "parameters_after", "factorized_layers", "artifacts_ok"},
    "torch_distill_prune": {"weight_sparsity", "artifacts_ok"},
}


def test_every_compression_example_is_run_here():
    examples = {path.stem for path in (EXAMPLES / "compression").glob("*.py")} - {"__init__", "common"}
    assert examples == set(FIGURES)


def _smoke(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    module = importlib.import_module(f"examples.compression.{name}")
    assert module.main(["--smoke", "--out", str(tmp_path)]) == 0
    figures = printed_figures(capsys.readouterr().out)
    assert FIGURES[name] <= set(figures), f"{name} printed {sorted(figures)}"
    return figures


@pytest.mark.slow
def test_distillation_example(tmp_path, capsys):
    figures = _smoke("distillation", tmp_path, capsys)
    assert int(figures["student_parameters"]) < int(figures["teacher_parameters"]) / 5
    assert float(figures["student_accuracy"]) > 0.7
    assert figures["artifacts_ok"] == "2"


@pytest.mark.slow
def test_pruning_example_reaches_target_sparsity_and_shrinks_gzip(tmp_path, capsys):
    figures = _smoke("pruning", tmp_path, capsys)
    # The schedule reaches the target even on ~90 steps (tfmot's default frequency=100 would stay at 0 %).
    assert float(figures["weight_sparsity"]) == pytest.approx(0.75, abs=0.02)
    assert int(figures["pruned_fp32_gzip_bytes"]) < 0.6 * int(figures["dense_fp32_gzip_bytes"])


@pytest.mark.slow
def test_qat_example_converts_without_calibration(tmp_path, capsys):
    figures = _smoke("qat", tmp_path, capsys)
    assert figures["calibration"] == "None"
    assert figures["quantization_ranges"].startswith("learned")
    assert float(figures["int8_top1_agreement"]) > 0.97


@pytest.mark.slow
def test_clustering_example_reports_unique_values(tmp_path, capsys):
    figures = _smoke("clustering", tmp_path, capsys)
    assert int(figures["clustered_layers"]) >= 1 and int(figures["max_unique_values"]) <= 8


@pytest.mark.slow
def test_low_rank_example(tmp_path, capsys):
    figures = _smoke("low_rank", tmp_path, capsys)
    assert int(figures["parameters_after"]) < int(figures["parameters_before"]) and int(figures["factorized_layers"]) >= 1
    assert figures["artifacts_ok"] == "1"


@pytest.mark.slow
def test_torch_distill_prune_example(tmp_path, capsys):
    figures = _smoke("torch_distill_prune", tmp_path, capsys)
    assert float(figures["weight_sparsity"]) == pytest.approx(0.5, abs=0.02)
    assert figures["artifacts_ok"] == "2"
