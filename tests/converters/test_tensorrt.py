"""converters/tensorrt.py and its pure logic: fingerprints, cache keys, options; what happens without TensorRT."""

import json
import subprocess
import sys

import pytest

from converters import tensorrt as trt_converter
from edge_sdk.errors import MissingDependencyError, UsageError
from targets import tensorrt_build
from targets.tensorrt_build import BuildSettings, build_into_cache, cached_engine_path
from targets.tensorrt_fingerprint import DeviceInfo, cached_engine_name, compatibility_problems, engine_fingerprint, fingerprint_record
from tests.conftest import REPO

ORIN = DeviceInfo("10.3.0", "12.6", "12.6", "Orin", "8.7")
SETTINGS = BuildSettings(mode="int8", strongly_typed=True).to_dict()


def test_fingerprint_is_stable_and_changes_with_every_input():
    key = engine_fingerprint(ORIN, "ab" * 32, SETTINGS)
    assert key == engine_fingerprint(ORIN, "ab" * 32, dict(reversed(list(SETTINGS.items()))))
    assert len(key) == 32 and cached_engine_name(key) == f"{key}.engine"
    others = [
        engine_fingerprint(DeviceInfo("10.7.0", "12.6", "12.6", "Orin", "8.7"), "ab" * 32, SETTINGS),
        engine_fingerprint(DeviceInfo("10.3.0", "12.6", "12.6", "Orin", "8.6"), "ab" * 32, SETTINGS),
        engine_fingerprint(ORIN, "cd" * 32, SETTINGS),
        engine_fingerprint(ORIN, "ab" * 32, {**SETTINGS, "mode": "fp16"}),
        engine_fingerprint(ORIN, "ab" * 32, {**SETTINGS, "workspace_mb": 2048}),
        engine_fingerprint(ORIN, "ab" * 32, {**SETTINGS, "dla_core": 0}),
    ]
    assert len({key, *others}) == 7


def test_timing_cache_path_does_not_change_the_cache_key():
    assert engine_fingerprint(ORIN, "ab" * 32, {**SETTINGS, "timing_cache": "/a"}) == engine_fingerprint(ORIN, "ab" * 32, SETTINGS)


def test_cache_names_refuse_anything_but_a_hex_key():
    for bad in ("", "../../etc/passwd", "ABC", "a b"):
        with pytest.raises(ValueError):
            cached_engine_name(bad)
        with pytest.raises(tensorrt_build.BuildFailure):
            cached_engine_path("/tmp", bad)


def test_compatibility_ignores_the_onnx_hash_and_names_each_mismatch():
    manifest = {"fingerprint": fingerprint_record(ORIN, "ab" * 32, SETTINGS)}
    assert compatibility_problems(manifest, ORIN) == []
    h100 = DeviceInfo("10.3.0", "12.8", "12.8", "NVIDIA H100 80GB HBM3", "9.0")
    problems = compatibility_problems(manifest, h100)
    assert len(problems) == 4
    assert "compute capability: built with 8.7, here 9.0" in problems
    assert compatibility_problems({}, ORIN) == ["the manifest has no engine fingerprint (not built by edge-sdk, or an older manifest)"]
    assert "lacks" in compatibility_problems({"fingerprint": {"version": 1, "device": {"gpu_name": "x"}}}, ORIN)[0]


def test_cache_lookup_reuses_an_engine_and_asks_for_the_onnx_on_a_miss(tmp_path):
    key = engine_fingerprint(ORIN, "ab" * 32, SETTINGS)
    miss = build_into_cache(key, str(tmp_path), BuildSettings(**SETTINGS), onnx=None, copy_to=None)
    assert miss == {"ok": True, "cached": False, "needs_onnx": True, "engine": str(tmp_path / f"{key}.engine")}
    (tmp_path / f"{key}.engine").write_bytes(b"engine bytes")  # what an earlier build left in the cache
    hit = build_into_cache(key, str(tmp_path), BuildSettings(**SETTINGS), onnx=None, copy_to=tmp_path / "copy.engine")
    assert hit["cached"] and not hit["needs_onnx"] and hit["build_seconds"] == 0.0 and hit["size_bytes"] == 12
    assert (tmp_path / "copy.engine").read_bytes() == b"engine bytes"


@pytest.mark.parametrize("settings, words", [
    (dict(mode="int4"), "not one of fp32, fp16, int8"),
    (dict(mode="fp32", dla_core=0), "DLA runs fp16 or int8"),
    (dict(mode="fp16", strongly_typed=True), "strongly typed"),
    (dict(workspace_mb=0), "must be positive"),
])
def test_settings_tensorrt_would_reject_are_refused_first(settings, words):
    with pytest.raises(tensorrt_build.BuildFailure) as caught:
        tensorrt_build.check_settings(BuildSettings(**settings))
    assert words in caught.value.message and caught.value.kind == "usage"


def test_option_mapping():
    options = trt_converter.options_for(mode="int8", calibration_samples=300, seed=0, input_shapes=None, allow_float_fallback=False, workspace_mb=512)
    settings = options.build_settings()
    assert settings.strongly_typed and settings.workspace_mb == 512 and settings.input_shapes == {}
    assert not trt_converter.options_for(mode="fp16").build_settings().strongly_typed
    with pytest.raises(UsageError, match="--fetch-engine"):
        trt_converter.options_for(mode="fp32", fetch_engine=True)
    with pytest.raises(UsageError, match="TFLite setting"):
        trt_converter.options_for(mode="fp32", allow_float_fallback=True)


def test_probe_without_tensorrt_names_what_is_missing():
    with pytest.raises(tensorrt_build.BuildFailure) as caught:
        tensorrt_build.probe_device()
    assert caught.value.kind == "missing" and "nvidia-tensorrt" in caught.value.fix


@pytest.fixture
def float_onnx(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    path = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph), str(path))
    return path


def test_int8_needs_a_qdq_onnx(float_onnx, tmp_path):
    with pytest.raises(UsageError, match="no QuantizeLinear/DequantizeLinear"):
        trt_converter.convert(float_onnx, tmp_path / "m.engine", trt_converter.options_for(mode="int8"))


def test_local_build_without_tensorrt_is_one_clear_error_and_writes_nothing(float_onnx, tmp_path):
    with pytest.raises(MissingDependencyError) as caught:
        trt_converter.convert(float_onnx, tmp_path / "m.engine", trt_converter.options_for(mode="fp16"))
    assert "TensorRT is not installed" in str(caught.value) and "sudo apt install nvidia-tensorrt" in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "edge_sdk", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


def test_cli_convert_to_tensorrt_without_tensorrt(float_onnx, tmp_path):
    result = _cli("convert", float_onnx, "--to", "tensorrt", "--quant", "fp16", "--workspace-mb", "256", "-o", tmp_path / "m.engine", cwd=tmp_path)
    assert result.returncode == 5, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "TensorRT is not installed" in errors[0] and "Traceback" not in result.stderr
    assert "nvidia-tensorrt" in result.stderr
    assert not (tmp_path / "m.engine").exists()
    # Nothing else in the SDK is affected: the ONNX path converts as before.
    onnx_out = _cli("convert", float_onnx, "--to", "onnx", "-o", tmp_path / "copy.onnx", "--json", cwd=tmp_path)
    assert onnx_out.returncode == 0, onnx_out.stderr
    assert json.loads(onnx_out.stdout)["manifest"]["format"] == "onnx"


def test_cli_refuses_tensorrt_flags_for_other_formats(float_onnx, tmp_path):
    result = _cli("convert", float_onnx, "--to", "onnx", "--workspace-mb", "256", "-o", tmp_path / "x.onnx", cwd=tmp_path)
    assert result.returncode == 2 and "apply to --to tensorrt only" in result.stderr


@pytest.mark.gpu
def test_build_an_engine_on_a_gpu(float_onnx, tmp_path):
    try:
        tensorrt_build.require_tensorrt()
        tensorrt_build.import_cudart()
    except tensorrt_build.BuildFailure as missing:
        pytest.skip(f"needs TensorRT and cuda-python: {missing.message}")
    artifact = trt_converter.convert(float_onnx, tmp_path / "m.engine", trt_converter.options_for(mode="fp16", timing_cache=tmp_path / "t.cache"))
    assert artifact.path.stat().st_size > 0 and (tmp_path / "t.cache").exists()
    assert artifact.manifest.to_dict()["details"]["fingerprint"]["device"]["tensorrt_version"].startswith("10.")
