"""edge_sdk.pipeline and edge_sdk.pipeline_config: validation messages, a full run, and the re-run cache."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import yaml

from edge_sdk.errors import UsageError
from edge_sdk.gate import GATE_EXIT_CODE, AccuracyGateError
from edge_sdk.pipeline_config import load_config


def write_config(folder, document):
    path = folder / "edge.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
def workspace(tmp_path, digits_keras, digits_npz):
    shutil.copyfile(digits_keras, tmp_path / "cnn.keras")
    shutil.copyfile(digits_npz[0], tmp_path / "train.npz")
    shutil.copyfile(digits_npz[1], tmp_path / "test.npz")
    return tmp_path


def base_document():
    return {
        "version": 1, "output": "out",
        "data": {"evaluation": "test.npz", "calibration": "train.npz"},
        "preprocess": {"scale": 0.0625, "layout": "NHWC"},
        "models": {"cnn": {"path": "cnn.keras"}},
        "formats": {"tflite": ["fp32"]},
        "targets": {"desktop": {"kind": "desktop"}},
        "bench": {"runs": 5, "warmup": 1},
        "accuracy_budget": {"max_drop_points": 2.0},
    }


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(extra=1), "top level: unknown key(s) extra"),
    (lambda d: d["models"]["cnn"].update(path="missing.keras"), "models.cnn.path: missing.keras does not exist"),
    (lambda d: d["formats"].update(tflite=["int4"]), "formats.tflite: unknown mode(s) ['int4']"),
    (lambda d: d["targets"].update(pi={"kind": "ssh", "host": "pi @box"}), "targets.pi.host: an ssh target needs a host name"),
    (lambda d: d["targets"].update(pi={"kind": "desktop", "host": "box"}), "targets.pi.host: a desktop target runs on this machine"),
    (lambda d: d["bench"].update(runs=0), "bench.runs: must be an integer >= 1"),
    (lambda d: d["models"]["cnn"].update(teacher="nobody"), "models.cnn.teacher: 'nobody' is not another model"),
    (lambda d: d["data"].pop("calibration") and d["formats"].update(tflite=["int8"]), "data.calibration: int8 and int16x8 modes need calibration data"),
])
def test_invalid_config_names_file_key_and_problem(workspace, change, message):
    document = base_document()
    change(document)
    path = write_config(workspace, document)
    with pytest.raises(UsageError) as raised:
        load_config(path)
    assert str(path) in str(raised.value) and message in str(raised.value)


def test_valid_config_with_ssh_host_loads(workspace):
    document = base_document()
    document["targets"]["pi"] = {"kind": "ssh", "host": "pi@raspberrypi.local", "port": 2222}
    config = load_config(write_config(workspace, document))
    assert [t.name for t in config.targets] == ["desktop", "pi"] and not config.targets[1].runnable


def test_pipeline_runs_then_reruns_only_what_changed(workspace):
    from edge_sdk.pipeline import run_pipeline
    from edge_sdk.results import load_results

    document = base_document()
    path = write_config(workspace, document)
    first = run_pipeline(path)
    assert first.converted == ["cnn -> tflite fp32"] and first.benched == ["cnn_fp32.tflite on desktop"]
    assert len(load_results(first.files["results"])["results"]) == 1
    assert "Compression summary" in first.files["md"].read_text() and "compression-summary" in first.files["html"].read_text()

    unchanged = run_pipeline(path)
    assert unchanged.converted == [] and unchanged.conversions_cached == ["cnn -> tflite fp32"] and unchanged.benched == []

    document["formats"]["tflite"] = ["fp32", "dynamic"]
    changed = run_pipeline(write_config(workspace, document))
    assert changed.converted == ["cnn -> tflite dynamic"] and changed.conversions_cached == ["cnn -> tflite fp32"]
    assert changed.benched == ["cnn_dynamic.tflite on desktop"]
    assert len(load_results(changed.files["results"])["results"]) == 2


def test_cli_pipeline(workspace, capsys):
    from edge_sdk.cli import main

    document = base_document()
    document["targets"]["pi"] = {"kind": "ssh", "host": "pi@raspberrypi.local"}
    assert main(["pipeline", str(write_config(workspace, document))]) == 0
    printed = capsys.readouterr().out
    assert "skipped target pi" in printed and "report: " in printed


def test_pipeline_applies_the_accuracy_gate_after_writing_results_and_reports(workspace, capsys):
    from edge_sdk.cli import main
    from edge_sdk.pipeline import run_pipeline
    from edge_sdk.results import load_results

    # Calibration data scaled by 16 (inputs 0..16 instead of 0..1): int8 ranges 16x too wide lose about a point of
    # accuracy (scaled by 255 the converter's own validation refuses the model). The fp32 artifact loses none.
    with np.load(workspace / "train.npz") as train:
        np.savez(workspace / "train_x16.npz", x=train["x"] * 16.0, y=train["y"])
    document = base_document()
    document["data"]["calibration"] = "train_x16.npz"
    document["accuracy_budget"]["max_drop_points"] = 0.5
    document["formats"]["tflite"] = ["fp32", "int8"]
    path = write_config(workspace, document)
    with pytest.raises(AccuracyGateError) as raised:
        run_pipeline(path)
    message = str(raised.value)
    assert "cnn_int8.tflite: accuracy drop" in message and "exceeds --max-drop 0.5" in message and "cnn_fp32.tflite" not in message
    out = workspace / "out"
    assert f"results and reports written: {out / 'results.json'}" in message

    # Results and both reports were written before the gate failed, with the verdict in each.
    results = {r["artifact"]["name"]: r for r in load_results(out / "results.json")["results"]}
    fp32_gate, int8_gate = results["cnn_fp32.tflite"]["reference"]["gate"], results["cnn_int8.tflite"]["reference"]["gate"]
    assert fp32_gate["passed"] and fp32_gate["drop_upper_points"] == 0.0
    assert not int8_gate["passed"] and int8_gate["drop_upper_points"] > 0.5
    assert f"(95 % upper bound {int8_gate['drop_upper_points']:.2f}) exceeds --max-drop 0.5" in message
    assert "accuracy gate failed" in (out / "report.html").read_text() and "accuracy gate failed" in (out / "report.md").read_text()
    rows = {row["artifact"]: row for row in json.loads((out / "pipeline.json").read_text())["rows"]}
    assert rows["cnn_fp32.tflite"]["within_budget"] is True and rows["cnn_int8.tflite"]["within_budget"] is False

    # The CLI exits with the gate's code, after the work is cached: nothing is converted or benched again.
    assert main(["pipeline", str(path)]) == GATE_EXIT_CODE
    assert "accuracy gate failed" in capsys.readouterr().err
    assert len(load_results(out / "results.json")["results"]) == 2
