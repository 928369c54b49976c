"""`edge-sdk report --compare`: a change table per artifact, exit code 9 naming each crossed threshold."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edge_sdk.errors import UsageError
from edge_sdk.report import RegressionError, compare_files, parse_percent
from tests.report.conftest import edited_copy


def slower(factor: float):
    """Every timing of the int8 artifact multiplied by `factor` (as a run on a busier or smaller machine)."""

    def edit(document):
        timing = next(r for r in document["results"] if r["artifact"]["mode"] == "int8")["timing"]
        timing["latency"] = {key: value * factor if key.endswith("_ms") else value / factor for key, value in timing["latency"].items()}
        timing["latencies_ms"] = [value * factor for value in timing["latencies_ms"]]

    return edit


def edge_sdk(*args):
    return subprocess.run([sys.executable, "-m", "edge_sdk", *map(str, args)], capture_output=True, text=True, timeout=120)


def test_a_30_percent_slower_run_fails_the_gate_with_the_regression_named(results_json, tmp_path):
    slow = edited_copy(results_json, tmp_path / "slow.json", slower(1.3))
    run = edge_sdk("report", "--compare", results_json, slow, "--max-latency-regression", "10%", "--max-accuracy-drop", "0.5")
    assert run.returncode == 9, run.stderr
    assert "1 regression from" in run.stderr
    assert "digits_int8.tflite on desktop: p50 latency +30.0% (limit +10%)" in run.stderr
    assert "digits_int8.tflite | desktop |" in run.stdout and "(+30.0%)" in run.stdout and "\\_" not in run.stdout  # plain names
    assert "digits_fp32.tflite" not in run.stderr


def test_the_same_run_passes_and_a_generous_threshold_passes(results_json, tmp_path):
    slow = edited_copy(results_json, tmp_path / "slow.json", slower(1.3))
    same = edge_sdk("report", "--compare", results_json, results_json, "--max-latency-regression", "10%", "--max-accuracy-drop", "0.5")
    assert same.returncode == 0, same.stderr
    assert same.stdout.count("| ok |") == 2
    generous = edge_sdk("report", "--compare", results_json, slow, "--max-latency-regression", "50")
    assert generous.returncode == 0, generous.stderr


def test_accuracy_drop_failure_and_missing_artifact_are_regressions(results_json, tmp_path):
    def worse(document):
        document["results"][1]["accuracy"]["top1"] -= 0.02
        del document["results"][0]

    new = edited_copy(results_json, tmp_path / "worse.json", worse)
    comparison = compare_files(results_json, new, max_accuracy_drop_points=0.5)
    regressions = comparison.regressions
    assert any(line.startswith("digits_int8.tflite on desktop: top-1 accuracy -2.00 points (limit -0.5 points)") for line in regressions)
    assert any(line.startswith("digits_fp32.tflite on desktop: missing from") for line in regressions)
    with pytest.raises(RegressionError) as error:
        comparison.raise_for_regressions()
    assert error.value.exit_code == 9


def test_parse_percent():
    assert parse_percent("10%") == 10.0 and parse_percent("2.5") == 2.5 and parse_percent(None) is None
    with pytest.raises(UsageError):
        parse_percent("ten")
