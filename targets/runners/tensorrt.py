"""TensorRT runner (TensorRT 10 API): I/O by tensor name, device buffers through cuda-python, no torch.

An engine runs only on the TensorRT version and GPU that built it: the runner compares the fingerprint in the
engine's manifest with this device and refuses a mismatch with a message to rebuild. Timings use CUDA events
on one stream and are split as trtexec splits them: host-to-device, compute, device-to-host, and end to end
(`inference_time_s` is end to end, so it compares with ONNX Runtime's CUDA provider, whose run() copies too).

Imports numpy, TensorRT and cuda-python only: part of the slim on-device runner.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_sdk.artifact import read_manifest
from edge_sdk.errors import MissingDependencyError, ModelFileError, RuntimeFailure
from targets.runners.base import BaseRunner, IOSpec
from targets.tensorrt_build import BuildFailure, cuda_check, import_cudart, probe_device, require_tensorrt
from targets.tensorrt_fingerprint import DeviceInfo, compatibility_problems

if TYPE_CHECKING:  # type-checked against tensorrt-stubs (tools/typecheck_tensorrt.py); imported lazily at run time
    import tensorrt as trt

# TensorRT DataType name -> numpy dtype (names, so this table needs no TensorRT import).
NUMPY_DTYPES = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32, "INT64": np.int64, "BOOL": np.bool_, "UINT8": np.uint8}


@dataclass
class StageTimings:
    """One inference, in milliseconds, from CUDA events (trtexec's H2D / GPU compute / D2H / latency)."""

    h2d_ms: float
    compute_ms: float
    d2h_ms: float
    end_to_end_ms: float


@dataclass
class _Binding:
    spec: IOSpec
    is_input: bool
    nbytes: int
    device_pointer: int = 0


def _load_error(error: BuildFailure) -> Exception:
    if error.kind == "missing":
        return MissingDependencyError(error.message, fix=error.fix)
    return RuntimeFailure(error.message, fix=error.fix or None)


class TensorRTRunner(BaseRunner):
    runtime_name = "tensorrt"

    def activate_impl(self) -> None:
        try:
            require_tensorrt()
            self._cudart = import_cudart()
            self.device = DeviceInfo.from_dict(probe_device())
        except BuildFailure as error:
            raise _load_error(error) from error
        import tensorrt as trt

        self._check_fingerprint()
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if engine is None:
            raise ModelFileError(f"TensorRT {trt.__version__} cannot deserialize {self.path} (see its log above)",
                                 fix="rebuild the engine on this device: edge-sdk convert MODEL.onnx --to tensorrt")
        self._engine: trt.ICudaEngine = engine
        self._context: trt.IExecutionContext = engine.create_execution_context()
        self._bindings = [self._binding(engine, engine.get_tensor_name(index)) for index in range(engine.num_io_tensors)]
        self.inputs = [b.spec for b in self._bindings if b.is_input]
        self.outputs = [b.spec for b in self._bindings if not b.is_input]
        cudart = self._cudart
        self._stream = cuda_check(cudart.cudaStreamCreate(), "cudaStreamCreate")
        self._events = [cuda_check(cudart.cudaEventCreate(), "cudaEventCreate") for _ in range(4)]
        for binding in self._bindings:
            binding.device_pointer = int(cuda_check(cudart.cudaMalloc(binding.nbytes), "cudaMalloc"))
            if not self._context.set_tensor_address(binding.spec.name, binding.device_pointer):
                raise RuntimeFailure(f"TensorRT refused the buffer for tensor {binding.spec.name!r} of {self.path}")
        self.last_timings: StageTimings | None = None
        self.timings: list[StageTimings] = []

    def _check_fingerprint(self) -> None:
        manifest = read_manifest(self.path)
        if manifest is None:
            warnings.warn(f"{self.path} has no manifest: cannot check it was built for this GPU and TensorRT; TensorRT will refuse it if not", stacklevel=3)
            return
        problems = compatibility_problems(manifest.details, self.device)
        if problems:
            raise RuntimeFailure(
                f"engine {self.path} was not built for this device:\n  " + "\n  ".join(problems),
                fix=f"rebuild it here: edge-sdk convert {manifest.source.get('path', 'MODEL.onnx')} --to tensorrt --quant {manifest.mode} -o {self.path} --overwrite",
            )

    def _binding(self, engine: trt.ICudaEngine, name: str) -> _Binding:
        import tensorrt as trt

        dims = engine.get_tensor_shape(name)
        shape = tuple(dims[axis] for axis in range(len(dims)))
        if any(d < 0 for d in shape):
            raise ModelFileError(f"tensor {name!r} of {self.path} has dynamic shape {shape}; this runner takes fixed-shape engines",
                                 fix="rebuild with a concrete --input-shape")
        type_name = engine.get_tensor_dtype(name).name
        if type_name not in NUMPY_DTYPES:
            raise ModelFileError(f"tensor {name!r} of {self.path} has TensorRT type {type_name}, which this runner does not feed")
        dtype = np.dtype(NUMPY_DTYPES[type_name])
        is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
        return _Binding(IOSpec(name, shape, dtype), is_input, int(np.prod(shape, dtype=np.int64)) * dtype.itemsize)

    def infer_impl(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cudart, stream = self._cudart, self._stream
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        hosts = {b.spec.name: np.ascontiguousarray(inputs[b.spec.name], dtype=b.spec.dtype) for b in self._bindings if b.is_input}
        results = {b.spec.name: np.empty(b.spec.shape, b.spec.dtype) for b in self._bindings if not b.is_input}
        start, copied_in, computed, done = self._events
        cuda_check(cudart.cudaEventRecord(start, stream), "cudaEventRecord")
        for binding in self._bindings:
            if binding.is_input:
                cuda_check(cudart.cudaMemcpyAsync(binding.device_pointer, hosts[binding.spec.name].ctypes.data, binding.nbytes, h2d, stream), "cudaMemcpyAsync")
        cuda_check(cudart.cudaEventRecord(copied_in, stream), "cudaEventRecord")
        if not self._context.execute_async_v3(int(stream)):
            raise RuntimeFailure(f"TensorRT could not enqueue {self.path} (see its log above)")
        cuda_check(cudart.cudaEventRecord(computed, stream), "cudaEventRecord")
        for binding in self._bindings:
            if not binding.is_input:
                cuda_check(cudart.cudaMemcpyAsync(results[binding.spec.name].ctypes.data, binding.device_pointer, binding.nbytes, d2h, stream), "cudaMemcpyAsync")
        cuda_check(cudart.cudaEventRecord(done, stream), "cudaEventRecord")
        cuda_check(cudart.cudaStreamSynchronize(stream), "cudaStreamSynchronize")
        timings = StageTimings(*(float(cuda_check(cudart.cudaEventElapsedTime(a, b), "cudaEventElapsedTime")) for a, b in ((start, copied_in), (copied_in, computed), (computed, done), (start, done))))
        self.last_timings = timings
        self.timings.append(timings)
        self.inference_time_s = timings.end_to_end_ms / 1000.0
        return {name: array.astype(np.float32, copy=False) for name, array in results.items()}

    def deactivate_impl(self) -> None:
        cudart = self._cudart
        for binding in getattr(self, "_bindings", []):
            if binding.device_pointer:
                cudart.cudaFree(binding.device_pointer)
                binding.device_pointer = 0
        for event in getattr(self, "_events", []):
            cudart.cudaEventDestroy(event)
        if getattr(self, "_stream", None) is not None:
            cudart.cudaStreamDestroy(self._stream)
            self._stream = None

    def runtime_version(self) -> str:
        device = getattr(self, "device", None)
        return f"tensorrt {device.tensorrt_version}" if device else "tensorrt (not loaded)"

    def describe(self) -> dict[str, Any]:
        description = super().describe()
        device = getattr(self, "device", None)
        description["device"] = device.to_dict() if device else None
        timings = getattr(self, "timings", [])
        if timings:
            description["stage_ms_median"] = {stage: float(np.median([getattr(t, stage) for t in timings])) for stage in ("h2d_ms", "compute_ms", "d2h_ms", "end_to_end_ms")}
        return description
