"""Every compression example runs top to bottom (small epochs) and its model goes through convert + bench."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_distillation_example(tmp_path):
    from examples.compression import distillation

    summary = distillation.run(tmp_path, epochs=3)
    assert summary["student_parameters"] < summary["teacher_parameters"] / 5
    assert summary["student_accuracy"] > 0.7
    assert [r["status"] for r in summary["records"]] == ["ok", "ok"]


def test_pruning_example_reaches_target_sparsity_and_shrinks_gzip(tmp_path):
    from examples.compression import pruning

    summary = pruning.run(tmp_path, epochs=2, target_sparsity=0.75)
    # The schedule reaches the target even on ~90 steps (tfmot's default frequency=100 would stay at 0 %).
    assert summary["sparsity"] == pytest.approx(0.75, abs=0.02)
    by_name = {r["artifact"]["name"]: r["artifact"] for r in summary["records"]}
    assert by_name["student_pruned_fp32.tflite"]["gzip_size_bytes"] < 0.6 * by_name["student_fp32.tflite"]["gzip_size_bytes"]


def test_qat_example_converts_without_calibration(tmp_path):
    from examples.compression import qat

    summary = qat.run(tmp_path, epochs=2)
    assert summary["manifest"]["calibration"] is None
    assert summary["manifest"]["quantization_ranges"].startswith("learned")
    assert summary["records"][0]["reference"]["fidelity"]["top1_agreement"] > 0.97


def test_clustering_example_reports_unique_values(tmp_path):
    from examples.compression import clustering

    summary = clustering.run(tmp_path, epochs=2, clusters=8)
    assert all(layer["unique_values"] <= 8 for layer in summary["layers"])


def test_low_rank_example(tmp_path):
    from examples.compression import low_rank

    summary = low_rank.run(tmp_path, epochs=2, energy=0.8)
    before, after = summary["parameters"]
    assert after < before and any(layer["factorized"] for layer in summary["layers"])
    assert summary["records"][0]["status"] == "ok"


def test_torch_distill_prune_example(tmp_path):
    from examples.compression import torch_distill_prune

    summary = torch_distill_prune.run(tmp_path, epochs=2, sparsity=0.5)
    assert summary["manifest"]["weights"]["sparsity"] == pytest.approx(0.5, abs=0.02)
    assert [r["status"] for r in summary["records"]] == ["ok", "ok"]
