"""The slim runner entry (`python -m edge_sdk.runner`, `edge-sdk run`) and the host side of a device bench, run
through the local transport: same outputs as a local bench, numpy plus one runtime only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.conftest import DIGITS_PREPROCESS, REPO

HEAVY = ("tensorflow", "keras", "tf_keras", "torch", "tf2onnx", "onnx", "converters", "matplotlib", "jsonschema")


def _preprocessed_inputs(data: Path, out: Path, count: int = 20) -> Path:
    with np.load(data) as arrays:
        x = arrays["x"][:count].astype(np.float32)
    np.savez(out, x=(x * DIGITS_PREPROCESS["scale"])[..., None])
    return out


def _run_runner_probe(args: list[str]) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    # Runs the runner as `-m` would, then lists the top-level modules the process imported.
    probe = (
        "import runpy, sys\n"
        f"sys.argv = ['edge_sdk.runner', *{args!r}]\n"
        "try:\n"
        "    runpy.run_module('edge_sdk.runner', run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    code = exit.code\n"
        "print('MODULES=' + ','.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=300)
    line = next(line for line in result.stdout.splitlines() if line.startswith("MODULES="))
    return result, set(line[len("MODULES="):].split(","))


def test_runner_on_int8_tflite_imports_numpy_and_litert_only(digits_artifacts, digits_npz, tmp_path):
    inputs = _preprocessed_inputs(digits_npz[1], tmp_path / "inputs.npz")
    result, modules = _run_runner_probe([str(digits_artifacts["int8"]), "--inputs", str(inputs), "--output", str(tmp_path / "r.json"),
                                         "--outputs", str(tmp_path / "o.npz"), "--runs", "3", "--warmup", "1"])
    assert result.returncode == 0, result.stderr
    assert "ai_edge_litert" in modules and "numpy" in modules
    assert not modules & {*HEAVY, "onnxruntime"}, modules & {*HEAVY, "onnxruntime"}
    document = json.loads((tmp_path / "r.json").read_text())
    record = document["results"][0]
    assert document["schema_version"] == record["schema_version"]
    assert record["status"] == "ok" and record["data"]["evaluated_samples"] == 20
    assert record["environment"]["architecture"] and record["environment"]["cores"]
    assert record["settings"]["runtime"]["runtime"] == "litert"
    assert np.load(tmp_path / "o.npz")["outputs"].shape == (20, 10)


def test_check_runtime_prints_the_version_and_missing_one_is_exit_5(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "edge_sdk.runner", "--check-runtime", "litert"], capture_output=True, text=True, cwd=REPO)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["package"] == "ai-edge-litert"
    # A runtime that cannot be imported: hide onnxruntime behind a module that fails to import.
    (tmp_path / "onnxruntime.py").write_text("raise ImportError('onnxruntime hidden for this test')\n")
    missing = subprocess.run([sys.executable, "-m", "edge_sdk.runner", "--check-runtime", "onnxruntime"], capture_output=True, text=True,
                             cwd=REPO, env={"PYTHONPATH": f"{tmp_path}:{REPO}", "PATH": "/usr/bin:/bin"})
    assert missing.returncode == 5
    assert "ONNX Runtime not installed" in missing.stderr and "pip install" in missing.stderr


def test_edge_sdk_run_matches_the_runner_module(digits_artifacts, digits_npz, tmp_path):
    from edge_sdk.cli import main

    inputs = _preprocessed_inputs(digits_npz[1], tmp_path / "inputs.npz", count=8)
    assert main(["run", str(digits_artifacts["int8"]), "--inputs", str(inputs), "-o", str(tmp_path / "r.json"), "--outputs", str(tmp_path / "o.npz"), "--runs", "2"]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["results"][0]["artifact"]["mode"] == "int8"


def test_device_bench_over_the_local_transport_equals_a_local_bench(digits_artifacts, digits_npz, digits_keras):
    import edge_sdk
    from edge_sdk.api import bench_on_devices
    from edge_sdk.bench import BenchSettings

    local = edge_sdk.benchmark([digits_artifacts["int8"]], digits_npz[1], reference=digits_keras, settings=BenchSettings(runs=3, warmup=1, max_samples=40))[0]
    remote = bench_on_devices([digits_artifacts["int8"]], digits_npz[1], target="desktop", hosts=["local"], reference=digits_keras,
                              settings=BenchSettings(runs=3, warmup=1, max_samples=40))[0]
    assert remote.status == "ok", remote.error
    assert remote.target["transport"] == "local" and remote.target["runtime_check"]["runtime"] == "litert"
    assert remote.accuracy == local.accuracy
    assert remote.reference["fidelity"] == local.reference["fidelity"]
    assert remote.data["evaluated_samples"] == 40


def test_remote_runner_crash_is_an_error_result_with_the_log(digits_npz, tmp_path):
    from edge_sdk.api import bench_on_devices
    from edge_sdk.bench import BenchSettings

    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 64)
    results = bench_on_devices([broken], digits_npz[1], target="desktop", hosts=["local"], settings=BenchSettings(runs=2, warmup=0, max_samples=4),
                               preprocess=DIGITS_PREPROCESS)
    assert results[0].status == "error"
    assert "the runner crashed on" in results[0].error and "broken.tflite" in results[0].error


def test_unknown_target_is_a_usage_error():
    from edge_sdk.cli import main

    assert main(["bench", "m.tflite", "--data", "d.npz", "--target", "raspberry-pi-9", "--host", "ssh://pi@x"]) == 2


def test_a_device_bench_sends_its_settings_as_json_not_flags(digits_artifacts, digits_npz, monkeypatch):
    """The device reads the measurement settings from the pushed settings.json (checked by the runner), with the
    profile filling in what the user left open; no measurement flag is rebuilt on the command line."""
    from edge_sdk import remote
    from edge_sdk.api import bench_on_devices
    from edge_sdk.bench import BenchSettings
    from edge_sdk.measurement import check_settings
    from targets.runners.base import RunnerOptions
    from targets.transport.local import LocalTransport

    seen: dict[str, list] = {"argv": [], "settings": []}

    class RecordingLocalTransport(LocalTransport):  # the real local transport, remembering what it was given
        def push_impl(self, local, remote_path):
            if remote_path.endswith("/settings.json"):
                seen["settings"].append(json.loads(Path(local).read_text()))
            super().push_impl(local, remote_path)

        def run_impl(self, argv, timeout_s, path_prepends):
            seen["argv"].append(argv)
            return super().run_impl(argv, timeout_s, path_prepends)

    monkeypatch.setattr(remote, "open_transport", lambda host, options: RecordingLocalTransport())
    settings = BenchSettings(runs=4, warmup=1, max_samples=12, runner=RunnerOptions(kernels="reference"))
    result = bench_on_devices([digits_artifacts["int8"]], digits_npz[1], target="desktop", hosts=["local"], settings=settings)[0]
    assert result.status == "ok", result.error
    assert len(result.timing["latencies_ms"]) == 4  # the device ran the runs the JSON asked for
    [document] = seen["settings"]
    assert check_settings(document)["runs"] == 4 and document["runner"]["kernels"] == "reference" and document["target"] == "desktop"
    runner_argv = next(argv for argv in seen["argv"] if "--inputs" in argv)
    assert runner_argv[runner_argv.index("--settings") + 1] == "settings.json"
    assert not {"--runs", "--warmup", "--threads", "--kernels", "--no-xnnpack", "--providers"} & set(runner_argv)
