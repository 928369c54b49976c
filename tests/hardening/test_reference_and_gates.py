"""A reference whose outputs differ in shape from the artifacts', NaN latencies in results files and in compare
(gates that used to fail open), and the umask of written files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge_sdk.errors import DataError
from edge_sdk.fileio import write_json_atomic
from edge_sdk.report import compare_documents
from edge_sdk.results import load_results
from tests.hardening.conftest import copies, run_cli

BUILD_TWO_OUTPUT_REFERENCE = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras
model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(2)])
model.save(sys.argv[1])
"""


def test_a_reference_of_another_output_shape_is_an_error_per_artifact_with_the_results_kept(tmp_path, sine_npz, hello_world):
    pytest.importorskip("keras")
    reference = tmp_path / "two_outputs.keras"
    subprocess.run([sys.executable, "-c", BUILD_TWO_OUTPUT_REFERENCE, reference], check=True, capture_output=True)
    first, second = copies(hello_world, tmp_path / "a", ["first.tflite", "second.tflite"])
    out = tmp_path / "r.json"
    completed = run_cli("bench", first, second, "--data", sine_npz, "--reference", reference, "--runs", "3", "-o", out, "--quiet", timeout=300)
    assert completed.returncode == 1 and "Traceback" not in completed.stderr, completed.stderr
    assert "reference two_outputs.keras: its outputs have shape (2,) per sample, the artifact's (1,)" in completed.stderr
    results = load_results(out)["results"]
    assert [r["artifact"]["name"] for r in results] == ["first.tflite", "second.tflite"]
    assert all(r["status"] == "error" and len(r["timing"]["latencies_ms"]) == 3 for r in results)


@pytest.fixture
def results_document() -> dict:
    corpus = Path(__file__).parents[1] / "fuzz" / "corpus" / "results.json"
    return json.loads(corpus.read_text())


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("field", ["p50_ms", "mean_ms"])
def test_nan_or_inf_latencies_fail_the_schema(tmp_path, results_document, field, value):
    results_document["results"][0]["timing"]["latency"][field] = value
    path = tmp_path / "r.json"
    path.write_text(json.dumps(results_document))
    with pytest.raises(DataError, match=rf"field results\[0\]\.timing\.latency\.{field} is {value}, not a finite number"):
        load_results(path)


def test_report_compare_refuses_a_nan_latency_instead_of_passing_it(tmp_path, results_document):
    baseline, new = tmp_path / "base.json", tmp_path / "new.json"
    baseline.write_text(json.dumps(results_document))
    results_document["results"][0]["timing"]["latency"]["p50_ms"] = float("nan")
    new.write_text(json.dumps(results_document))
    completed = run_cli("report", "--compare", baseline, new, "--max-latency-regression", "10%")
    assert completed.returncode == 4 and "Traceback" not in completed.stderr, completed.stderr
    assert "timing.latency.p50_ms is nan, not a finite number" in completed.stderr


def test_compare_documents_fails_closed_on_a_nan_latency(results_document):
    """The API takes documents that never went through the schema: a NaN there is a regression, never a pass."""
    import copy

    new = copy.deepcopy(results_document)
    new["results"][0]["timing"]["latency"]["p50_ms"] = float("nan")
    comparison = compare_documents(results_document, new, max_latency_regression_percent=10.0)
    assert any("p50 latency is not a finite number" in line for change in comparison.changes for line in change.regressions)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_respect_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        write_json_atomic(tmp_path / "out.json", {"a": 1})
    finally:
        os.umask(previous)
    assert (tmp_path / "out.json").stat().st_mode & 0o777 == mode


def test_cli_outputs_are_0644_under_umask_022(tmp_path, sine_npz, hello_world):
    (model,) = copies(hello_world, tmp_path, ["m.tflite"])
    out = tmp_path / "r.json"
    completed = subprocess.run(["bash", "-c", f"umask 022 && exec {sys.executable} -m edge_sdk bench {model} --data {sine_npz} --runs 2 -o {out} --quiet"],
                               capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    assert completed.returncode == 0, completed.stderr
    assert out.stat().st_mode & 0o777 == 0o644
