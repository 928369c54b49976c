"""ONNX -> TensorRT engine (TensorRT 10 API), built on this machine or on the device over SSH.

fp32 and fp16 (builder flag) from a float ONNX; int8 only from an explicit Q/DQ ONNX (converters/onnx.py
--quant int8), built strongly typed: TensorRT 10.1 deprecates implicit INT8 calibration, 11 removes it.
The manifest's "fingerprint" (TensorRT / CUDA / driver versions, GPU, compute capability, ONNX sha256,
build options) says where the engine runs; targets/runners/tensorrt.py refuses it anywhere else.
The TensorRT calls themselves live in targets/tensorrt_build.py, which also runs on the device.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge_sdk._lazy import require
from edge_sdk.artifact import Artifact, load_artifact, manifest_path_for
from edge_sdk.manifest import manifest_from_record, write_manifest
from edge_sdk.data import Dataset, PreprocessSpec
from edge_sdk.environment import package_versions
from edge_sdk.errors import ModelFileError, UsageError
from edge_sdk.fileio import check_can_write, sha256_of, write_bytes_atomic
from edge_sdk.progress import Progress
from targets.tensorrt_build import BuildFailure, BuildSettings, build_serialized_engine, probe_device
from targets.tensorrt_fingerprint import ENGINE_CACHE_DIR, DeviceInfo, fingerprint_record
from targets.tensorrt_remote import build_on_device, sdk_error

MODES = ("fp32", "fp16", "int8")
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


@dataclass
class TensorRTOptions:
    mode: str = "fp32"
    workspace_mb: int = 1024
    timing_cache: Path | None = None  # local builds: reused between builds (device builds keep theirs in the cache)
    dla_core: int | None = None
    gpu_fallback: bool = True
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    optimization_level: int = 3
    host: str | None = None  # ssh://user@jetson: build there, cache there
    fetch_engine: bool = False  # with host: also copy the engine back to the output path
    target: str | None = None  # target profile name, recorded in the manifest

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UsageError(f"--quant {self.mode!r} is not a TensorRT mode; choose one of {', '.join(MODES)}")
        if self.fetch_engine and not self.host:
            raise UsageError("--fetch-engine fetches an engine built on --host; a local build writes the engine anyway")

    def build_settings(self) -> BuildSettings:
        """The settings the builder reads. INT8 networks are strongly typed: their types come from the Q/DQ ONNX."""
        return BuildSettings(
            mode=self.mode, workspace_mb=self.workspace_mb, dla_core=self.dla_core, gpu_fallback=self.gpu_fallback,
            strongly_typed=self.mode == "int8", input_shapes=dict(self.input_shapes), optimization_level=self.optimization_level,
            timing_cache=str(self.timing_cache) if self.timing_cache else None,
        )


def options_for(**settings: Any) -> TensorRTOptions:
    """TensorRTOptions from the API's generic settings; settings TensorRT does not use are refused, not ignored."""
    if settings.pop("allow_float_fallback", False):
        raise UsageError("--allow-float-fallback is a TFLite setting; TensorRT keeps layers without int8 kernels in float itself")
    settings.pop("calibration_samples", None)
    settings.pop("seed", None)
    settings["input_shapes"] = settings.get("input_shapes") or {}
    return TensorRTOptions(**settings)


def convert(
    model_path: Any,
    output: Path,
    options: TensorRTOptions,
    calibration: Dataset | None = None,
    *,
    validation: Dataset | None = None,
    preprocess: PreprocessSpec | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> Artifact:
    """Build a TensorRT engine from the ONNX file `model_path`: here, or on `options.host` (cached there)."""
    progress = progress or Progress(enabled=False)
    onnx_path = Path(model_path)
    if onnx_path.suffix.lower() != ".onnx":
        raise UsageError(f"TensorRT engines are built from ONNX, not {onnx_path.name}", fix=f"convert first: edge-sdk convert {onnx_path} --to onnx -o model.onnx")
    if not onnx_path.is_file():
        raise ModelFileError(f"model {onnx_path} does not exist", fix="check the path")
    if calibration is not None:
        raise UsageError("TensorRT builds INT8 from a Q/DQ ONNX, not with a calibrator (deprecated in TensorRT 10.1, removed in 11)",
                         fix="calibrate when making the ONNX: edge-sdk convert MODEL --to onnx --quant int8 --calib DATA; then --to tensorrt --quant int8 without --calib")
    output = Path(output)
    writes_engine = not options.host or options.fetch_engine
    if writes_engine:
        check_can_write(output, overwrite, "engine")
    check_can_write(manifest_path_for(output), overwrite, "manifest")
    quantize_ops = _count_qdq(onnx_path)
    if options.mode == "int8" and quantize_ops == 0:
        raise UsageError(f"{onnx_path} has no QuantizeLinear/DequantizeLinear nodes; TensorRT INT8 needs an explicit Q/DQ model",
                         fix="edge-sdk convert MODEL --to onnx --quant int8 --calib DATA -o model_int8.onnx")
    onnx_sha256 = sha256_of(onnx_path)
    settings = options.build_settings()
    started = time.perf_counter()
    if options.host:
        location, device, fingerprint_info = _build_remote(onnx_path, onnx_sha256, settings, options.host, options.fetch_engine, output, progress)
    else:
        location, device, fingerprint_info = _build_local(onnx_path, settings, output, progress)
    seconds = time.perf_counter() - started
    spec = validation.spec if validation else preprocess
    manifest = {
        "format": "tensorrt",
        "mode": options.mode,
        "options": {**asdict(options), "timing_cache": str(options.timing_cache) if options.timing_cache else None},
        "source": {"path": str(onnx_path), "sha256": onnx_sha256, "kind": "onnx", "qdq_nodes": quantize_ops},
        "fingerprint": fingerprint_record(device, onnx_sha256, settings.to_dict()),
        "engine": location,
        "target": options.target,
        "preprocess": spec.to_dict() if spec else None,
        "size_bytes": location["size_bytes"],
        "sha256": location["sha256"],
        "integer_op_share": 1.0 if options.mode == "int8" else 0.0,
        "conversion_seconds": round(seconds, 3),
        # Validation runs the engine, so it happens where the engine can run: bench it there against the ONNX.
        "validation": {"status": "skipped", "reason": "run `edge-sdk bench ENGINE --reference MODEL.onnx --data DATA` on the GPU that built it"},
        "toolchain": {**package_versions(("onnx", "numpy")), "tensorrt": device.tensorrt_version},
        **fingerprint_info,
    }
    typed = manifest_from_record(manifest, where=f"manifest of {output}")
    write_manifest(output, typed)
    # An engine built on --host without --fetch-engine stays on the device: there are no local bytes to verify.
    return load_artifact(output) if output.is_file() else Artifact(output, typed)


def _count_qdq(onnx_path: Path) -> int:
    onnx = require("onnx", "reading the ONNX model's Q/DQ nodes")
    model = onnx.load(str(onnx_path), load_external_data=False)
    return sum(1 for node in model.graph.node if node.op_type in QDQ_OPS)


def _build_local(onnx_path: Path, settings: BuildSettings, output: Path, progress: Progress) -> tuple[dict[str, Any], DeviceInfo, dict[str, Any]]:
    try:
        device = DeviceInfo.from_dict(probe_device())
        progress.message(f"building a {settings.mode} TensorRT {device.tensorrt_version} engine for {device.gpu_name} ...")
        engine = build_serialized_engine(onnx_path, settings, log=progress.message)
    except BuildFailure as failure:
        raise sdk_error(failure.to_dict(), "this machine") from failure
    write_bytes_atomic(output, engine)
    location = {"where": "local", "path": str(output), "fetched": True, "size_bytes": output.stat().st_size, "sha256": sha256_of(output)}
    return location, device, {"cache": None}


def _build_remote(onnx_path: Path, onnx_sha256: str, settings: BuildSettings, host: str, fetch_engine: bool, output: Path, progress: Progress) -> tuple[dict[str, Any], DeviceInfo, dict[str, Any]]:
    from targets.transport.ssh import SshTransport

    progress.message(f"building on {host} (engine cache {ENGINE_CACHE_DIR}) ...")
    fetched_to = None
    if fetch_engine:
        output.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)
        os.close(handle)
        fetched_to = Path(name)
    try:
        with SshTransport(host) as transport:
            build = build_on_device(transport, onnx_path, onnx_sha256, settings, host=host, fetch_engine_to=fetched_to)
        if fetched_to is not None:
            os.replace(fetched_to, output)
    finally:
        if fetched_to is not None and fetched_to.exists():
            fetched_to.unlink()
    progress.message(f"{'reused the cached' if build.cached else 'built the'} engine {build.fingerprint} on {host}")
    location = {"where": host, "path": build.engine_path_on_device, "fetched": build.fetched, "size_bytes": build.size_bytes, "sha256": build.sha256}
    return location, build.device, {"cache": {"hit": build.cached, "build_seconds": build.build_seconds}}
