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
    (lambda d: d["targets"].update(pi={"kind": "ssh", "host": "pi @box", "profile": "raspberry-pi-4"}), "targets.pi.host: an ssh target needs a host like"),
    (lambda d: d["targets"].update(pi={"kind": "desktop", "host": "box"}), "targets.pi.host: a desktop target runs on this machine and takes no host"),
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


PI = {"kind": "ssh", "host": "ssh://pi@raspberrypi.local:2222", "profile": "raspberry-pi-4"}


@pytest.mark.parametrize("target, message", [
    ({"kind": "ssh", "host": "pi@box"}, "targets.pi.profile: an ssh target needs the device's profile, e.g. `profile: raspberry-pi-4`"),
    ({**PI, "profile": "raspberry-pi-9"}, "targets.pi.profile: unknown target profile 'raspberry-pi-9'"),
    ({**PI, "profile": "android-arm64"}, "targets.pi.profile: profile android-arm64 is reached over adb, not ssh"),
    ({**PI, "host": "http://pi@box"}, "targets.pi.host: --host 'http://pi@box' is not an ssh address"),
    ({**PI, "host": "ssh://pi@box:99999"}, "targets.pi.host: --host 'ssh://pi@box:99999' has an invalid port"),
    ({**PI, "port": 22}, "targets.pi.port: the host 'ssh://pi@raspberrypi.local:2222' already names the port"),
    ({**PI, "user": "root"}, "targets.pi.user: the host 'ssh://pi@raspberrypi.local:2222' already names the user"),
    ({**PI, "host": "box", "port": 70000}, "targets.pi.port: 70000 is not a TCP port"),
    ({**PI, "host": "box", "user": "a b"}, "targets.pi.user: must be a user name, not 'a b'"),
    ({**PI, "ssh_key": "keys/missing"}, "targets.pi.ssh_key: keys/missing does not exist"),
    ({**PI, "known_hosts": "missing_known_hosts"}, "targets.pi.known_hosts: missing_known_hosts does not exist"),
    ({**PI, "accept_new_host_key": "yes"}, "targets.pi.accept_new_host_key: must be true or false, not 'yes'"),
    ({**PI, "python": "python3 -S"}, "targets.pi.python: must be the device's Python interpreter"),
    ({**PI, "timeout_s": 0}, "targets.pi.timeout_s: must be a number >= 1, not 0"),
    ({**PI, "password": "x"}, "targets.pi: unknown key(s) password"),
    ({"kind": "desktop", "ssh_key": "cnn.keras"}, "targets.pi.ssh_key: a desktop target runs on this machine and takes no ssh_key"),
])
def test_invalid_device_target_names_the_key_and_problem(workspace, target, message):
    document = base_document()
    document["targets"]["pi"] = target
    path = write_config(workspace, document)
    with pytest.raises(UsageError) as raised:
        load_config(path)
    assert str(path) in str(raised.value) and message in str(raised.value), str(raised.value)


def test_device_targets_load_with_url_or_host_port_user(workspace):
    (workspace / "pi_key").write_text("key")
    document = base_document()
    document["targets"]["pi"] = {**PI, "ssh_key": "pi_key", "known_hosts": "new_known_hosts", "accept_new_host_key": True,
                                 "python": "/opt/venv/bin/python", "timeout_s": 120}
    document["targets"]["jetson"] = {"kind": "ssh", "host": "jetson.local", "port": 2200, "user": "nvidia", "profile": "jetson-orin-nano"}
    document["targets"]["bare"] = {"kind": "ssh", "host": "box", "profile": "raspberry-pi-5"}
    config = load_config(write_config(workspace, document))
    targets = {target.name: target for target in config.targets}
    desktop, pi, jetson, bare = (targets[name] for name in ("desktop", "pi", "jetson", "bare"))
    assert not desktop.on_device and pi.on_device
    assert (pi.url, jetson.url, bare.url) == ("ssh://pi@raspberrypi.local:2222", "ssh://nvidia@jetson.local:2200", "ssh://box:22")
    options = pi.device_options()
    assert (options.identity_file, options.known_hosts) == (workspace / "pi_key", workspace / "new_known_hosts")
    assert options.accept_new_host_key and options.python == "/opt/venv/bin/python" and options.timeout_s == 120.0
    assert bare.device_options().identity_file is None and not bare.device_options().accept_new_host_key
    # How the device is reached is not part of the bench's cache key; where it is and what it runs are.
    assert "ssh_key" not in pi.to_dict() and pi.to_dict()["profile"] == "raspberry-pi-4" and pi.to_dict()["python"] == "/opt/venv/bin/python"
    assert desktop.to_dict() == {"name": "desktop", "kind": "desktop", "host": None, "port": 22, "user": None}


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

    assert main(["pipeline", str(write_config(workspace, base_document()))]) == 0
    assert "report: " in capsys.readouterr().out


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


@pytest.mark.parametrize("change, message, fix", [
    (lambda d: d["models"].update({"../../x": d["models"]["cnn"]}), "models.../../x: the model name '../../x' is not a plain file name", "no '..', no '/'"),
    (lambda d: d["models"].update({"a/b": d["models"]["cnn"]}), "models.a/b: the model name 'a/b' is not a plain file name", "no '..', no '/'"),
    (lambda d: d["models"]["cnn"].update(teacher="cnn"), "models.cnn.teacher: a model cannot be its own teacher", "remove `teacher`: this file names no other model"),
    (lambda d: d["models"].update(a={"path": "cnn.keras", "teacher": "b"}, b={"path": "cnn.keras", "teacher": "a"}), "teachers form a loop: a -> b -> a", "remove `teacher` from one model"),
])
def test_hostile_names_and_teachers_are_refused_before_any_work(workspace, change, message, fix):
    document = base_document()
    change(document)
    path = write_config(workspace, document)
    before = sorted(p for p in workspace.parent.rglob("*"))
    with pytest.raises(UsageError) as raised:
        load_config(path)
    assert message in str(raised.value) and "fix: " in str(raised.value) and fix in str(raised.value)
    from edge_sdk.cli import main

    assert main(["pipeline", str(path)]) == 2
    assert sorted(p for p in workspace.parent.rglob("*")) == before  # nothing written, inside the workspace or beside it


def test_byte_identical_artifacts_stay_two_results_and_a_swapped_artifact_is_converted_again(workspace):
    from edge_sdk.pipeline import run_pipeline
    from edge_sdk.results import load_results

    shutil.copyfile(workspace / "cnn.keras", workspace / "twin.keras")
    document = base_document()
    document["models"]["twin"] = {"path": "twin.keras"}
    path = write_config(workspace, document)
    first = run_pipeline(path)
    artifacts = [r["artifact"]["name"] for r in load_results(first.files["results"])["results"]]
    assert artifacts == ["cnn_fp32.tflite", "twin_fp32.tflite"]
    out = workspace / "out" / "artifacts"
    assert (out / "cnn_fp32.tflite").read_bytes() == (out / "twin_fp32.tflite").read_bytes()  # byte-identical, still two rows

    # Swap one artifact behind the cache (same size, other bytes): the cache must notice by its sha256.
    swapped = bytearray((out / "cnn_fp32.tflite").read_bytes())
    swapped[-1] ^= 0xFF
    (out / "cnn_fp32.tflite").write_bytes(bytes(swapped))
    second = run_pipeline(path)
    assert second.converted == ["cnn -> tflite fp32"] and second.conversions_cached == ["twin -> tflite fp32"]
    assert (out / "cnn_fp32.tflite").read_bytes() == (out / "twin_fp32.tflite").read_bytes()
