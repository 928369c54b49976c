"""Build a TensorRT engine from ONNX, and describe the device it is built on (TensorRT 10 API).

Standard library + TensorRT + cuda-python only, so the same file serves two ways:
- imported by converters/tensorrt.py for a build on this machine;
- pushed to a device (a Jetson) and run there with its python3: `python3 tensorrt_build.py probe` prints
  the device as JSON; `python3 tensorrt_build.py build ...` builds into the device's engine cache (or
  reuses a cached engine) and prints what it did as JSON. Errors print {"ok": false, ...} and exit 3.

INT8 comes only from explicit Q/DQ nodes in the ONNX (converters/onnx.py --quant int8): TensorRT 10.1
deprecates implicit calibration and TensorRT 11 removes it. Such networks are built strongly typed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # type-checked against tensorrt-stubs (tools/typecheck_tensorrt.py); imported lazily at run time
    import tensorrt as trt

TENSORRT_FIX = (
    "TensorRT's Python API is needed. On a Jetson, JetPack ships it: `sudo apt install nvidia-tensorrt` "
    "(or python3-libnvinfer) and use the system python3; on an x86 machine with an NVIDIA GPU: "
    "pip install tensorrt (from NVIDIA's index). Or build on the device: --host ssh://user@jetson"
)
CUDA_PYTHON_FIX = "pip install cuda-python (its major version must match the device's CUDA, e.g. 'cuda-python==12.*' on JetPack 6)"
MODES = ("fp32", "fp16", "int8")


class BuildFailure(Exception):
    """A build that cannot happen. `kind`: missing | usage | parse | build."""

    def __init__(self, kind: str, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.kind, self.message, self.fix = kind, message, fix

    def to_dict(self) -> dict[str, Any]:
        return {"ok": False, "kind": self.kind, "message": self.message, "fix": self.fix}


@dataclass
class BuildSettings:
    """How to build an engine. Everything but `timing_cache` is part of the engine's fingerprint."""

    mode: str = "fp32"
    workspace_mb: int = 1024
    dla_core: int | None = None
    gpu_fallback: bool = True  # DLA: run layers the DLA cannot on the GPU
    strongly_typed: bool = False  # set for int8 (types come from the Q/DQ ONNX)
    input_shapes: dict[str, list[int]] = field(default_factory=dict)  # for inputs with dynamic dimensions
    optimization_level: int = 3
    timing_cache: str | None = None  # file read before and written after the build

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def require_tensorrt() -> None:
    """Raise BuildFailure('missing') unless the real TensorRT Python API can be imported."""
    try:
        import tensorrt
    except ImportError as error:
        raise BuildFailure("missing", f"TensorRT is not installed for {sys.executable}: {error}", TENSORRT_FIX) from error
    # tensorrt-stubs installed alone leave a `tensorrt` folder of .pyi files: Python imports it as an empty
    # namespace package, which is not TensorRT.
    if getattr(tensorrt, "Builder", None) is None:
        raise BuildFailure("missing", f"TensorRT is not installed for {sys.executable} (only its type stubs are)", TENSORRT_FIX)


def import_cudart() -> Any:
    """cuda-python's runtime module (cuda-bindings 12.x+ path first, then the older `cuda.cudart`)."""
    try:
        from cuda.bindings import runtime

        return runtime
    except ImportError:
        pass
    try:
        from cuda import cudart

        return cudart
    except ImportError as error:
        raise BuildFailure("missing", f"cuda-python is not installed for {sys.executable}: {error}", CUDA_PYTHON_FIX) from error


def cuda_check(result: Any, call: str) -> Any:
    """cuda-python returns (error, *values): raise on an error, return the value(s)."""
    error, *values = result if isinstance(result, tuple) else (result,)
    if int(error) != 0:
        raise BuildFailure("build", f"{call} failed with CUDA error {int(error)} ({error})", "check the GPU and driver with nvidia-smi / tegrastats")
    return values[0] if len(values) == 1 else tuple(values)


def _cuda_version(number: int) -> str:
    return f"{number // 1000}.{(number % 1000) // 10}"


def probe_device(device_index: int = 0) -> dict[str, str]:
    """TensorRT, CUDA runtime and driver versions, GPU name and compute capability of this machine."""
    require_tensorrt()
    import tensorrt as trt

    cudart = import_cudart()
    properties = cuda_check(cudart.cudaGetDeviceProperties(device_index), "cudaGetDeviceProperties")
    name = properties.name
    return {
        "tensorrt_version": trt.__version__,
        "cuda_version": _cuda_version(int(cuda_check(cudart.cudaRuntimeGetVersion(), "cudaRuntimeGetVersion"))),
        "driver_version": _cuda_version(int(cuda_check(cudart.cudaDriverGetVersion(), "cudaDriverGetVersion"))),
        "gpu_name": (name.decode(errors="replace") if isinstance(name, bytes) else str(name)).rstrip("\x00"),
        "compute_capability": f"{properties.major}.{properties.minor}",
    }


def check_settings(settings: BuildSettings) -> None:
    """Refuse settings TensorRT would reject later, or silently ignore."""
    if settings.mode not in MODES:
        raise BuildFailure("usage", f"TensorRT mode {settings.mode!r} is not one of {', '.join(MODES)}", "use --quant fp32, fp16 or int8")
    if settings.workspace_mb <= 0:
        raise BuildFailure("usage", f"--workspace-mb {settings.workspace_mb} must be positive")
    if settings.dla_core is not None and settings.mode == "fp32":
        raise BuildFailure("usage", "the DLA runs fp16 or int8 only, not fp32", "pass --quant fp16, or an int8 (Q/DQ) ONNX with --quant int8")
    if settings.strongly_typed and settings.mode == "fp16":
        raise BuildFailure("usage", "a strongly typed network takes its types from the ONNX; fp16 here means the FP16 builder flag",
                           "build fp16 weakly typed (the default), or convert --to onnx --quant fp16 first")


def build_serialized_engine(onnx_path: Path, settings: BuildSettings, log: Any = None) -> bytes:
    """Parse `onnx_path` and build a serialized engine with `settings` (TensorRT 10 API)."""
    check_settings(settings)
    require_tensorrt()
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if settings.strongly_typed:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        raise BuildFailure("parse", f"TensorRT {trt.__version__} cannot parse {onnx_path}:\n" + "\n".join(parser_errors(parser)),
                           "export the model at an opset TensorRT supports, or replace the unsupported ops named above")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, settings.workspace_mb << 20)
    config.builder_optimization_level = settings.optimization_level
    if settings.mode == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif settings.mode == "int8" and not settings.strongly_typed:
        config.set_flag(trt.BuilderFlag.INT8)  # explicit Q/DQ in a weakly typed network needs the flag; no calibrator
    if settings.dla_core is not None:
        if settings.dla_core >= builder.num_DLA_cores:
            raise BuildFailure("usage", f"--dla-core {settings.dla_core}: this device has {builder.num_DLA_cores} DLA cores",
                               "Orin Nano has none; AGX Orin and Xavier have 2 (cores 0 and 1)")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = settings.dla_core
        if settings.gpu_fallback:
            config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    _add_profile_for_dynamic_inputs(builder, network, config, settings)

    cache_file = Path(os.path.expanduser(settings.timing_cache)) if settings.timing_cache else None
    cache_bytes = cache_file.read_bytes() if cache_file and cache_file.exists() else b""
    if not config.set_timing_cache(config.create_timing_cache(cache_bytes), False) and log:
        log(f"timing cache {cache_file} was made by another TensorRT or GPU; starting a new one")
        config.set_timing_cache(config.create_timing_cache(b""), False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BuildFailure("build", f"TensorRT {trt.__version__} could not build an engine from {onnx_path} ({settings.mode})",
                           "read the TensorRT errors printed above; try a larger --workspace-mb")
    if cache_file is not None:
        _write_atomic(cache_file, bytes(config.get_timing_cache().serialize()))
    return bytes(serialized)


def parser_errors(parser: trt.OnnxParser) -> list[str]:
    """Every ONNX parser error as 'node NAME (#INDEX): description'."""
    lines = []
    for index in range(parser.num_errors):
        error: trt.ParserError = parser.get_error(index)  # the stubs leave get_error's result untyped
        lines.append(f"  node {error.node_name() or '?'} (#{error.node()}, {error.node_operator() or '?'}): {error.desc()}")
    return lines


def _add_profile_for_dynamic_inputs(builder: trt.Builder, network: trt.INetworkDefinition, config: trt.IBuilderConfig, settings: BuildSettings) -> None:
    dynamic = []
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        shape = [tensor.shape[axis] for axis in range(len(tensor.shape))]  # Dims is indexable, not iterable
        if any(d < 0 for d in shape):
            dynamic.append((tensor.name, shape))
    if not dynamic:
        return
    import tensorrt as trt

    profile = builder.create_optimization_profile()
    for name, shape in dynamic:
        given = settings.input_shapes.get(name) or (settings.input_shapes.get("") if len(dynamic) == 1 else None)
        if not given:
            raise BuildFailure("usage", f"input {name!r} has dynamic shape {shape}; TensorRT needs a concrete one",
                               f"pass --input-shape {name}:1,...")
        profile.set_shape(name, trt.Dims(given), trt.Dims(given), trt.Dims(given))
    config.add_optimization_profile(profile)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_engine_path(cache_dir: str, fingerprint: str) -> Path:
    """Where the engine with this fingerprint lives in the cache (the fingerprint must be hex: it is a path)."""
    if not fingerprint or any(c not in "0123456789abcdef" for c in fingerprint):
        raise BuildFailure("usage", f"not an engine fingerprint: {fingerprint!r}")
    return Path(os.path.expanduser(cache_dir)) / f"{fingerprint}.engine"


def build_into_cache(fingerprint: str, cache_dir: str, settings: BuildSettings, onnx: Path | None, copy_to: Path | None) -> dict[str, Any]:
    """Reuse the cached engine for `fingerprint`, or build it from `onnx` into the cache; copy it out if asked."""
    engine_path = cached_engine_path(cache_dir, fingerprint)
    cached = engine_path.exists()
    seconds = 0.0
    if not cached:
        if onnx is None:
            return {"ok": True, "cached": False, "needs_onnx": True, "engine": str(engine_path)}
        started = time.perf_counter()
        _write_atomic(engine_path, build_serialized_engine(onnx, settings, log=lambda text: print(text, file=sys.stderr)))
        seconds = time.perf_counter() - started
    if copy_to is not None:
        shutil.copyfile(engine_path, copy_to)
    return {"ok": True, "cached": cached, "needs_onnx": False, "engine": str(engine_path), "size_bytes": engine_path.stat().st_size,
            "sha256": sha256_of_file(engine_path), "build_seconds": round(seconds, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tensorrt_build.py", description="edge-sdk's TensorRT engine builder (runs on the device)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("probe", help="print this device's TensorRT / CUDA / GPU as JSON")
    build = commands.add_parser("build", help="build into (or reuse from) the engine cache")
    build.add_argument("--fingerprint", required=True)
    build.add_argument("--cache-dir", required=True)
    build.add_argument("--settings", required=True, help="BuildSettings as JSON")
    build.add_argument("--onnx", type=Path, help="the ONNX model; without it only the cache is looked up")
    build.add_argument("--copy-to", type=Path, help="also copy the engine here (to fetch it)")
    args = parser.parse_args(argv)
    try:
        if args.command == "probe":
            result: dict[str, Any] = {"ok": True, "device": probe_device()}
        else:
            settings = BuildSettings(**json.loads(args.settings))
            result = build_into_cache(args.fingerprint, args.cache_dir, settings, args.onnx, args.copy_to)
    except BuildFailure as failure:
        print(json.dumps(failure.to_dict()))
        return 3
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
