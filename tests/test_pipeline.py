"""edge_sdk.pipeline and edge_sdk.pipeline_config: validation messages, a full run, and the re-run cache."""

from __future__ import annotations

import shutil

import pytest
import yaml

from edge_sdk.errors import UsageError
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
