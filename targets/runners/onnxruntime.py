"""ONNX Runtime runner: CPU execution provider by default, requested providers where installed.

Imports numpy plus onnxruntime only: part of the slim on-device runner. Models older than
opset 7 are refused by ONNX Runtime; `edge-sdk convert MODEL.onnx --to onnx` lifts them.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from edge_sdk.errors import MissingDependencyError, ModelFileError, UsageError
from targets.runners.base import BaseRunner, IOSpec, apply_input_shapes

GRAPH_OPTIMIZATION_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}
_ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(int32)": np.int32, "tensor(int64)": np.int64, "tensor(bool)": np.bool_}


def import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as error:
        raise MissingDependencyError(f"ONNX Runtime not installed: {error}", fix="pip install 'edge-sdk[onnx]'") from error
    return onnxruntime


def provider_name(name: str) -> str:
    """'cuda' or 'CUDA' -> 'CUDAExecutionProvider'; full names pass through."""
    if name.endswith("ExecutionProvider"):
        return name
    known = {"cpu": "CPU", "cuda": "CUDA", "tensorrt": "Tensorrt", "trt": "Tensorrt", "xnnpack": "Xnnpack", "nnapi": "Nnapi", "coreml": "CoreML", "openvino": "OpenVINO", "dml": "Dml", "rocm": "ROCM", "qnn": "QNN"}
    return f"{known.get(name.lower(), name)}ExecutionProvider"


def choose_providers(requested: list[str], available: list[str]) -> tuple[list[str], list[str]]:
    """(providers to use, requested ones that are not installed). CPU is always the last fallback."""
    wanted = [provider_name(name) for name in requested] or ["CPUExecutionProvider"]
    missing = [name for name in wanted if name not in available]
    chosen = [name for name in wanted if name in available]
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen, missing


def _io_spec(node: Any) -> IOSpec:
    dims = tuple(int(d) if isinstance(d, int) and d > 0 else None for d in node.shape)
    shape = tuple(1 if d is None else d for d in dims)
    return IOSpec(node.name, shape, np.dtype(_ORT_TYPES.get(node.type, np.float32)), dims=dims)


class OnnxRuntimeRunner(BaseRunner):
    runtime_name = "onnxruntime"

    def activate(self) -> None:
        super().activate()
        # Load time is the session creation alone (graph optimisation, kernel selection), not the import.
        self.load_time_s = self._session_creation_s

    def activate_impl(self) -> None:
        ort = import_onnxruntime()
        self._version = ort.__version__
        options = self.options
        if options.graph_optimization not in GRAPH_OPTIMIZATION_LEVELS:
            raise UsageError(f"--graph-optimization {options.graph_optimization!r} must be one of {', '.join(GRAPH_OPTIMIZATION_LEVELS)}")
        session_options = ort.SessionOptions()
        session_options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, GRAPH_OPTIMIZATION_LEVELS[options.graph_optimization])
        if options.threads is not None:
            session_options.intra_op_num_threads = options.threads
            session_options.inter_op_num_threads = 1
        self.providers, self.missing_providers = choose_providers(options.providers, ort.get_available_providers())
        if self.missing_providers:
            import warnings

            warnings.warn(
                f"ONNX Runtime {self._version} here has no {', '.join(self.missing_providers)}; running {self.path} on {', '.join(self.providers)}",
                stacklevel=2,
            )
        start = time.perf_counter()
        try:
            self._session = ort.InferenceSession(str(self.path), sess_options=session_options, providers=self.providers)
        except Exception as error:  # noqa: BLE001 - ORT raises its own pybind classes (Fail, InvalidGraph, NotImplemented...)
            if type(error).__module__.split(".")[0] != "onnxruntime":
                raise
            raise ModelFileError(f"ONNX Runtime {self._version} cannot load {self.path}: {error}", fix=_load_fix(str(error))) from error
        self._session_creation_s = time.perf_counter() - start
        self.inputs = [_io_spec(node) for node in self._session.get_inputs()]
        if options.input_shapes:
            self.inputs = apply_input_shapes(self.inputs, options.input_shapes, self.path)
        self.outputs = [_io_spec(node) for node in self._session.get_outputs()]

    def infer_impl(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = {spec.name: np.ascontiguousarray(inputs[spec.name], dtype=spec.dtype) for spec in self.inputs}
        start = time.perf_counter()
        values = self._session.run(None, feeds)
        self.inference_time_s = time.perf_counter() - start
        return {spec.name: np.asarray(value, dtype=np.float32) for spec, value in zip(self.outputs, values)}

    def deactivate_impl(self) -> None:
        self._session = None

    def runtime_version(self) -> str:
        return f"onnxruntime {getattr(self, '_version', 'unknown')}"

    def describe(self) -> dict[str, Any]:
        description = super().describe()
        description["providers"] = getattr(self, "providers", None)
        description["missing_providers"] = getattr(self, "missing_providers", [])
        return description


def _load_fix(message: str) -> str:
    lowered = message.lower()
    if "opset" in lowered and ("not supported" in lowered or "only *guarantees*" in lowered or "under development" in lowered):
        return "re-export the model at an opset this ONNX Runtime supports, or upgrade onnxruntime"
    if "opset" in lowered or "ir_version" in lowered:
        return "lift an old model with `edge-sdk convert MODEL.onnx --to onnx -o NEW.onnx`"
    if "protobuf" in lowered:
        return "the file is not a complete ONNX model; export it again"
    if "not_implemented" in lowered or "could not find an implementation" in lowered or "no op registered" in lowered:
        return "the model uses an op this ONNX Runtime has no kernel for; re-export it with standard ONNX ops"
    return "check the model with onnx.checker; export it again"
