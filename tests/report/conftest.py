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
    settings = BenchSettings(runs=60, warmup=5, runner=RunnerOptions(threads=1))
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
