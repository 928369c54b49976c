"""An artifact that is not the file its manifest describes is refused by bench, run and debug, shown by inspect,
and measured only with --no-verify, marked unverified (issue 12)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def edge_sdk(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge_sdk", *map(str, args)], capture_output=True, text=True, timeout=600)


@pytest.fixture
def swapped(tmp_path: Path, digits_artifacts: dict[str, Path]) -> Path:
    """The fp32 model copied over the int8 one, the int8 manifest kept."""
    target = tmp_path / "digits_int8.tflite"
    shutil.copyfile(digits_artifacts["fp32"], target)
    shutil.copyfile(str(digits_artifacts["int8"]) + ".manifest.json", str(target) + ".manifest.json")
    return target


def test_bench_refuses_a_swapped_artifact_and_runs_it_unverified_when_told(tmp_path: Path, swapped: Path, digits_npz: tuple[Path, Path]) -> None:
    refused = edge_sdk("bench", swapped, "--data", digits_npz[1], "--samples", "20", "--runs", "3", "--warmup", "0", "-o", tmp_path / "r.json")
    assert refused.returncode == 3, refused.stderr
    assert "does not match its manifest" in refused.stderr and str(swapped) in refused.stderr and "int8" in refused.stderr
    assert "Traceback" not in refused.stderr

    ran = edge_sdk("bench", swapped, "--data", digits_npz[1], "--samples", "20", "--runs", "3", "--warmup", "0", "--no-verify", "-o", tmp_path / "u.json", "--json")
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout)["results"][0]
    assert result["artifact"]["verified"] is False and "does not match" in result["artifact"]["verification"]
    assert "unverified" in ran.stderr
    saved = json.loads((tmp_path / "u.json").read_text())
    assert saved["schema_version"] == "1.1" and saved["results"][0]["artifact"]["verified"] is False


def test_one_swapped_artifact_among_good_ones_is_that_artifacts_error(tmp_path: Path, swapped: Path, digits_artifacts: dict[str, Path], digits_npz: tuple[Path, Path]) -> None:
    mixed = edge_sdk("bench", digits_artifacts["fp32"], swapped, "--data", digits_npz[1], "--samples", "20", "--runs", "3", "--warmup", "0", "--json")
    assert mixed.returncode == 1, mixed.stderr
    statuses = {Path(r["artifact"]["path"]).name: (r["status"], r.get("exit_code")) for r in json.loads(mixed.stdout)["results"]}
    assert statuses == {"digits_fp32.tflite": ("ok", None), "digits_int8.tflite": ("error", 3)}


def test_run_and_debug_refuse_it_and_inspect_warns(tmp_path: Path, swapped: Path, digits_keras: Path, digits_npz: tuple[Path, Path]) -> None:
    inputs = tmp_path / "in.npz"
    with np.load(digits_npz[1]) as data:
        np.savez(inputs, x=(data["x"][:4, ..., None] / 16.0).astype(np.float32))
    run = edge_sdk("run", swapped, "--inputs", inputs, "-o", tmp_path / "run.json", "--runs", "2", "--warmup", "0")
    assert run.returncode == 3 and "does not match its manifest" in run.stderr and not (tmp_path / "run.json").exists()
    debug = edge_sdk("debug", swapped, "--reference", digits_keras, "--data", digits_npz[1], "--samples", "5")
    assert debug.returncode == 3 and "does not match its manifest" in debug.stderr
    inspected = edge_sdk("inspect", swapped)
    assert inspected.returncode == 0 and "warning:" in inspected.stdout and "does not match its manifest" in inspected.stdout
    assert "does not match" in json.loads(edge_sdk("inspect", swapped, "--json").stdout)["verification"]


def test_results_schema_1_0_still_reads(tmp_path: Path) -> None:
    from edge_sdk.results import load_results

    old = {"schema_version": "1.0", "results": [{
        "artifact": {"path": "a.tflite", "name": "a.tflite"}, "target": {"name": "desktop"}, "data": {}, "settings": {}, "environment": {}, "status": "error", "error": "it crashed",
    }]}
    (tmp_path / "old.json").write_text(json.dumps(old))
    document = load_results(tmp_path / "old.json")
    assert document["schema_version"] == "1.1" and document["results"][0]["artifact"]["verified"] is None
