"""targets/runners/tensorrt.py and the device build over a transport: what runs honestly without TensorRT."""

import json
import sys

import numpy as np
import pytest

from edge_sdk.errors import MissingDependencyError, RuntimeFailure
from edge_sdk.models import detect_model_kind
from targets import tensorrt_build
from targets.runners import RUNNER_FOR_KIND, runner_for
from targets.runners.tensorrt import TensorRTRunner
from targets.tensorrt_build import BuildSettings
from targets.tensorrt_fingerprint import DeviceInfo, fingerprint_record
from targets.tensorrt_remote import build_on_device


def test_engine_files_are_tensorrt_and_run_by_the_tensorrt_runner(tmp_path):
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"\x00" * 32)
    assert detect_model_kind(engine) == "tensorrt" and RUNNER_FOR_KIND["tensorrt"] == "tensorrt"
    assert isinstance(runner_for(engine), TensorRTRunner)


def test_runner_without_tensorrt_is_one_clear_error(tmp_path):
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"\x00" * 32)
    with pytest.raises(MissingDependencyError) as caught:
        with TensorRTRunner(engine):
            pass
    assert "TensorRT is not installed" in str(caught.value) and "JetPack" in str(caught.value)


def test_an_engine_for_another_gpu_is_refused_with_a_rebuild_command(tmp_path):
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"\x00" * 32)
    orin = DeviceInfo("10.3.0", "12.6", "12.6", "Orin", "8.7")
    from edge_sdk.fileio import sha256_of
    from edge_sdk.manifest import Manifest, write_manifest

    write_manifest(engine, Manifest(
        format="tensorrt", mode="int8", sha256=sha256_of(engine), size_bytes=32, inputs=[], outputs=[], source={"path": "model_int8.onnx"},
        details={"fingerprint": fingerprint_record(orin, "ab" * 32, BuildSettings().to_dict())},
    ))
    runner = TensorRTRunner(engine)
    runner.device = DeviceInfo("10.3.0", "12.8", "12.8", "NVIDIA H100", "9.0")  # what probe_device() would say on that machine
    with pytest.raises(RuntimeFailure) as caught:
        runner._check_fingerprint()
    message = str(caught.value)
    assert "was not built for this device" in message and "compute capability: built with 8.7, here 9.0" in message
    assert "edge-sdk convert model_int8.onnx --to tensorrt --quant int8" in message


def test_device_build_over_the_local_transport_reports_the_missing_tensorrt(tmp_path):
    """The real build script, pushed and run with python on the 'device' (this machine, which has no TensorRT)."""
    local = pytest.importorskip("targets.transport.local")
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"not needed: the probe fails first")
    with local.LocalTransport() as transport:
        with pytest.raises(MissingDependencyError) as caught:
            build_on_device(transport, onnx, "ab" * 32, BuildSettings(), host="local", cache_dir=str(tmp_path / "cache"), python=sys.executable)
        assert sorted(p.name for p in __import__("pathlib").Path(transport.workdir).iterdir()) == ["tensorrt_build.py"]  # the ONNX was not shipped
    assert "on local: TensorRT is not installed" in str(caught.value) and "nvidia-tensorrt" in str(caught.value)
    assert not (tmp_path / "cache").exists()


def test_build_script_cache_lookup_runs_standalone(tmp_path):
    """`python3 tensorrt_build.py build` without --onnx: only the cache is consulted (no TensorRT needed for a lookup)."""
    import subprocess

    key = "0123456789abcdef0123456789abcdef"
    command = [sys.executable, tensorrt_build.__file__, "build", "--fingerprint", key, "--cache-dir", str(tmp_path), "--settings", json.dumps(BuildSettings().to_dict())]
    miss = json.loads(subprocess.run(command, capture_output=True, text=True, check=True, cwd=tmp_path).stdout)
    assert miss["needs_onnx"] and not miss["cached"]
    (tmp_path / f"{key}.engine").write_bytes(b"cached")
    hit = json.loads(subprocess.run([*command, "--copy-to", "out.engine"], capture_output=True, text=True, check=True, cwd=tmp_path).stdout)
    assert hit["cached"] and (tmp_path / "out.engine").read_bytes() == b"cached"
    bad = subprocess.run([sys.executable, tensorrt_build.__file__, "probe"], capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode == 3 and json.loads(bad.stdout)["kind"] == "missing"


@pytest.mark.gpu
def test_runner_on_a_gpu(tmp_path):
    try:
        tensorrt_build.require_tensorrt()
        tensorrt_build.import_cudart()
    except tensorrt_build.BuildFailure as missing:
        pytest.skip(f"needs TensorRT and cuda-python: {missing.message}")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from converters.options import TensorRTOptions
    from edge_sdk.api import convert

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    onnx.save(helper.make_model(graph), str(tmp_path / "m.onnx"))
    artifact = convert(tmp_path / "m.onnx", tmp_path / "m.engine", TensorRTOptions(mode="fp32"))
    with TensorRTRunner(artifact.path) as runner:
        out = runner.infer({"x": np.array([[-1.0, 0.0, 2.0, -3.0]], np.float32)})
        assert np.array_equal(out["y"], [[0.0, 0.0, 2.0, 0.0]])
        assert runner.last_timings is not None and runner.last_timings.end_to_end_ms >= runner.last_timings.compute_ms
