"""ONNX -> TensorRT engine (TensorRT 10 API), built on this machine or on the device over SSH.

fp32 and fp16 (builder flag) from a float ONNX; int8 only from an explicit Q/DQ ONNX (converters/onnx.py
--quant int8), built strongly typed: TensorRT 10.1 deprecates implicit INT8 calibration, 11 removes it.
The manifest's "fingerprint" (TensorRT / CUDA / driver versions, GPU, compute capability, ONNX sha256,
build options) says where the engine runs; targets/runners/tensorrt.py refuses it anywhere else.
The TensorRT calls themselves live in targets/tensorrt_build.py, which also runs on the device.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from edge_sdk._lazy import require
from converters.base import Builder, Conversion
from converters.options import TensorRTOptions
from edge_sdk.environment import package_versions
from edge_sdk.errors import ModelFileError, UsageError
from edge_sdk.fileio import sha256_of
from edge_sdk.formats import FORMATS, INT8
from edge_sdk.progress import Progress
from targets.tensorrt_build import BuildFailure, BuildSettings, build_serialized_engine, probe_device
from targets.tensorrt_fingerprint import ENGINE_CACHE_DIR, DeviceInfo, fingerprint_record
from targets.tensorrt_remote import build_on_device, sdk_error

__all__ = ["BUILDER", "TensorRTOptions"]

SPEC = FORMATS["tensorrt"]
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


class TensorRTBuilder(Builder):
    def check(self, conversion: Conversion) -> None:
        onnx_path = conversion.source
        if not isinstance(onnx_path, Path) or onnx_path.suffix.lower() != ".onnx":
            raise UsageError(f"TensorRT engines are built from ONNX, not {Path(str(onnx_path)).name}", fix=f"convert first: edge-sdk convert {onnx_path} --to onnx -o model.onnx")
        if not onnx_path.is_file():
            raise ModelFileError(f"model {onnx_path} does not exist", fix="check the path")
        if conversion.calibration is not None:
            raise UsageError("TensorRT builds INT8 from a Q/DQ ONNX, not with a calibrator (deprecated in TensorRT 10.1, removed in 11)",
                             fix="calibrate when making the ONNX: edge-sdk convert MODEL --to onnx --quant int8 --calib DATA; then --to tensorrt --quant int8 without --calib")

    def writes_artifact(self, options: TensorRTOptions) -> bool:
        return not options.host or options.fetch_engine

    def load(self, conversion: Conversion) -> Any:
        onnx_path, options = conversion.source, conversion.options
        quantize_ops = _count_qdq(onnx_path)
        if options.mode == INT8 and quantize_ops == 0:
            raise UsageError(f"{onnx_path} has no QuantizeLinear/DequantizeLinear nodes; TensorRT INT8 needs an explicit Q/DQ model",
                             fix="edge-sdk convert MODEL --to onnx --quant int8 --calib DATA -o model_int8.onnx")
        conversion.details.update(qdq_nodes=quantize_ops, onnx_sha256=sha256_of(onnx_path))
        return None

    def build(self, conversion: Conversion) -> None:
        options, onnx_path = conversion.options, conversion.source
        settings = options.build_settings(conversion.data.input_shapes)
        if options.host:
            fetch_to = conversion.staged if options.fetch_engine else None
            location, device, info = _build_remote(onnx_path, conversion.details["onnx_sha256"], settings, options.host, fetch_to, conversion.progress)
        else:
            location, device, info = _build_local(onnx_path, settings, conversion.staged, conversion.progress)
        if location["fetched"]:
            location["path"] = str(conversion.output)
        conversion.details.update(settings=settings, location=location, device=device, info=info)

    def skipped_validation(self, conversion: Conversion) -> dict[str, Any]:
        # Validation runs the engine, so it happens where the engine can run: bench it there against the ONNX.
        return {"status": "skipped", "reason": "run `edge-sdk bench ENGINE --reference MODEL.onnx --data DATA` on the GPU that built it"}

    def manifest(self, conversion: Conversion, validation: dict[str, Any]) -> dict[str, Any]:
        options, details, device = conversion.options, conversion.details, conversion.details["device"]
        location = details["location"]
        spec = conversion.spec
        return {
                "format": SPEC.name,
            "mode": options.mode,
            "options": {**asdict(options), "timing_cache": str(options.timing_cache) if options.timing_cache else None, "input_shapes": conversion.data.input_shapes or {}},
            "source": {"path": str(conversion.source), "sha256": details["onnx_sha256"], "kind": "onnx", "qdq_nodes": details["qdq_nodes"]},
            "fingerprint": fingerprint_record(device, details["onnx_sha256"], details["settings"].to_dict()),
            "engine": location,
            "target": options.target,
            "preprocess": spec.to_dict() if spec else None,
            "size_bytes": location["size_bytes"],
            "sha256": location["sha256"],
            "integer_op_share": 1.0 if options.mode == INT8 else 0.0,
            "conversion_seconds": round(conversion.seconds, 3),
            "validation": validation,
            "toolchain": {**package_versions(("onnx", "numpy")), "tensorrt": device.tensorrt_version},
            **details["info"],
        }


BUILDER = TensorRTBuilder()


def _count_qdq(onnx_path: Path) -> int:
    onnx = require("onnx", "reading the ONNX model's Q/DQ nodes")
    model = onnx.load(str(onnx_path), load_external_data=False)
    return sum(1 for node in model.graph.node if node.op_type in QDQ_OPS)


def _build_local(onnx_path: Path, settings: BuildSettings, staged: Path, progress: Progress) -> tuple[dict[str, Any], DeviceInfo, dict[str, Any]]:
    try:
        device = DeviceInfo.from_dict(probe_device())
        progress.message(f"building a {settings.mode} TensorRT {device.tensorrt_version} engine for {device.gpu_name} ...")
        engine = build_serialized_engine(onnx_path, settings, log=progress.message)
    except BuildFailure as failure:
        raise sdk_error(failure.to_dict(), "this machine") from failure
    staged.write_bytes(engine)
    location = {"where": "local", "path": str(staged), "fetched": True, "size_bytes": staged.stat().st_size, "sha256": sha256_of(staged)}
    return location, device, {"cache": None}


def _build_remote(onnx_path: Path, onnx_sha256: str, settings: BuildSettings, host: str, fetch_to: Path | None, progress: Progress) -> tuple[dict[str, Any], DeviceInfo, dict[str, Any]]:
    from targets.transport.ssh import SshTransport

    progress.message(f"building on {host} (engine cache {ENGINE_CACHE_DIR}) ...")
    with SshTransport(host) as transport:
        build = build_on_device(transport, onnx_path, onnx_sha256, settings, host=host, fetch_engine_to=fetch_to)
    progress.message(f"{'reused the cached' if build.cached else 'built the'} engine {build.fingerprint} on {host}")
    location = {"where": host, "path": build.engine_path_on_device, "fetched": build.fetched, "size_bytes": build.size_bytes, "sha256": build.sha256}
    return location, build.device, {"cache": {"hit": build.cached, "build_seconds": build.build_seconds}}
