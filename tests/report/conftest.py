"""A real results file: the digits CNN's fp32 and int8 TFLite artifacts benchmarked against the Keras reference."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import edge_sdk
from edge_sdk.bench import BenchSettings
from edge_sdk.results import save_results
from targets.runners.base import RunnerOptions


@pytest.fixture(scope="session")
def results_json(tmp_path_factory: pytest.TempPathFactory, digits_artifacts, digits_keras, digits_npz) -> Path:
    # A 1-point accuracy gate, so the results carry a real gate record beside the intervals and the stability record.
    settings = BenchSettings(runs=60, warmup=5, runner=RunnerOptions(threads=1), max_drop_points=1.0)
    results = edge_sdk.benchmark([digits_artifacts["fp32"], digits_artifacts["int8"]], digits_npz[1], reference=digits_keras, settings=settings)
    assert all(result.status == "ok" for result in results)
    path = tmp_path_factory.mktemp("results") / "results.json"
    save_results(path, results)
    return path


def edited_copy(source: Path, destination: Path, edit) -> Path:
    """Write `edit(document)` of the results file `source` to `destination` (the real file is never changed)."""
    document: dict[str, Any] = copy.deepcopy(json.loads(source.read_text()))
    edit(document)
    destination.write_text(json.dumps(document, indent=2))
    return destination


def noisy_and_over_budget(document: dict[str, Any]) -> None:
    """Mark the int8 result's timings noisy and its accuracy gate failed, as the benchmark records them."""
    int8 = document["results"][1]
    int8["timing"]["stability"].update(noisy=True, median_relative_half_width=0.018, noisy_reasons=["median known to +-1.80 % (95 %) over 60 runs, wider than the +-1 % target"])
    int8["reference"]["gate"].update(passed=False, drop_points=0.9, drop_upper_points=1.6)


def without_trust_records(document: dict[str, Any]) -> None:
    """Results as written before intervals, the gate and the stability record existed."""
    for result in document["results"]:
        result["accuracy"].pop("top1_ci")
        result["reference"].pop("accuracy_drop_ci_points")
        result["reference"].pop("gate")
        result["timing"].pop("stability")
        result["timing"].pop("cold_start", None)
