"""TFLite runner on ai-edge-litert (or tflite-runtime where only that is installed).

Imports numpy plus one runtime: part of the slim on-device runner.
"""

from __future__ import annotations

import importlib
import time
from types import ModuleType
from typing import Any

import numpy as np

from edge_sdk.errors import DataError, MissingDependencyError, ModelFileError, UsageError
from targets.runners.base import BaseRunner, IOSpec, apply_input_shapes, dequantize, quantize

KERNEL_CHOICES = ("default", "reference")


def import_tflite_runtime() -> tuple[ModuleType, str, str]:
    """(interpreter module, package name, version): ai-edge-litert first, then tflite-runtime."""
    for module_name, package in (("ai_edge_litert.interpreter", "ai-edge-litert"), ("tflite_runtime.interpreter", "tflite-runtime")):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        root = importlib.import_module(module_name.split(".")[0])
        return module, package, str(getattr(root, "__version__", "unknown"))
    raise MissingDependencyError(
        "TFLite runtime not installed (neither ai-edge-litert nor tflite-runtime)",
        fix="pip install 'edge-sdk[litert]'",
    )


def _clean_name(name: str) -> str:
    # LiteRT names a Keras input "serving_default_keras_tensor:0"; Keras calls it "keras_tensor".
    name = name.split(":")[0]
    return name[len("serving_default_") :] if name.startswith("serving_default_") else name


def _io_spec(detail: dict[str, Any], name: str | None = None) -> IOSpec:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    shape = tuple(int(d) for d in detail["shape"])
    # shape_signature holds -1 for a dynamic dim (shape then holds 1 there); dims stay None for a fully static
    # tensor so that it keeps the strict per-sample check.
    signature = [int(d) for d in detail.get("shape_signature", shape)]
    dims = tuple(None if d < 0 else d for d in signature) if any(d < 0 for d in signature) else None
    return IOSpec(name or _clean_name(detail["name"]), shape, np.dtype(detail["dtype"]), float(scale), int(zero_point), dims=dims)


def _output_order(interpreter: Any, details: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """(output details in the model's own order, their names).

    A Keras model with several outputs converts to tensors named "StatefulPartitionedCall_1:0", ":1"... in an order of
    the converter's choosing; its serving signature lists them as output_0, output_1... in the Keras model's order.
    Where the signature covers every output, that order is used; the short names where they stay distinct, else the
    signature's names (two outputs must never share a name)."""
    import re

    names = [_clean_name(detail["name"]) for detail in details]
    try:
        signatures = interpreter.get_signature_list()
        key = "serving_default" if "serving_default" in signatures else (next(iter(signatures)) if len(signatures) == 1 else None)
        by_name = {name: detail["index"] for name, detail in interpreter.get_signature_runner(key).get_output_details().items()} if key else {}
    except (ValueError, RuntimeError, AttributeError):  # no signature, or tflite-runtime without signature runners
        by_name = {}
    by_index = {detail["index"]: detail for detail in details}
    if len(details) < 2 or sorted(by_name.values()) != sorted(by_index):
        return details, names if len(set(names)) == len(names) else [str(detail["name"]) for detail in details]
    natural = sorted(by_name, key=lambda name: [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)])
    ordered = [by_index[by_name[name]] for name in natural]
    short = [_clean_name(detail["name"]) for detail in ordered]
    return ordered, short if len(set(short)) == len(short) else natural


class LiteRTRunner(BaseRunner):
    runtime_name = "litert"

    def activate_impl(self) -> None:
        module, self._package, self._version = import_tflite_runtime()
        options = self.options
        if options.kernels not in KERNEL_CHOICES:
            raise UsageError(f"--kernels {options.kernels!r} must be one of {', '.join(KERNEL_CHOICES)}")
        resolver = module.OpResolverType
        if options.kernels == "reference":
            resolver_type = resolver.BUILTIN_REF
        elif options.xnnpack:
            resolver_type = resolver.AUTO
        else:
            resolver_type = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            self._interpreter = module.Interpreter(
                model_path=str(self.path), num_threads=options.threads, experimental_op_resolver_type=resolver_type
            )
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise ModelFileError(f"the TFLite runtime cannot load {self.path}: {error}", fix="check the file is a complete .tflite; convert it again") from error
        self._input_details = self._interpreter.get_input_details()
        self._output_details, self._output_names = _output_order(self._interpreter, self._interpreter.get_output_details())
        self.inputs = [_io_spec(d) for d in self._input_details]
        self.outputs = [_io_spec(d, name) for d, name in zip(self._output_details, self._output_names)]
        if options.input_shapes:
            # The same check and refusal as ONNX Runtime's runner; then the tensors take the fixed dims.
            self.inputs = apply_input_shapes(self.inputs, options.input_shapes, self.path)
            self._resize({spec.name: spec.shape for spec in self.inputs})

    def _resize(self, shapes: dict[str, tuple[int, ...]]) -> None:
        """Give the dynamic inputs named in `shapes` those shapes (resize_tensor_input + allocate_tensors)."""
        interpreter = self._interpreter
        changed = False
        for spec, detail in zip(self.inputs, self._input_details):
            wanted = shapes.get(spec.name)
            if wanted is None or tuple(wanted) == tuple(int(d) for d in detail["shape"]):
                continue
            try:
                interpreter.resize_tensor_input(detail["index"], list(wanted), strict=True)
            except (ValueError, RuntimeError) as error:
                raise DataError(f"the TFLite runtime cannot give input {spec.name!r} of {self.path} the shape {tuple(wanted)}: {error}",
                                fix="give data (or --input-shape NAME:DIMS) whose fixed dims match the model's") from error
            changed = True
        if not changed:
            return
        try:
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise DataError(f"the TFLite runtime cannot run {self.path} at input shapes {dict(shapes)}: {error}",
                            fix="give data (or --input-shape NAME:DIMS) of a shape the model supports") from error
        self._input_details = interpreter.get_input_details()
        current = {detail["index"]: detail for detail in interpreter.get_output_details()}
        self._output_details = [current[detail["index"]] for detail in self._output_details]  # the same order, new shapes
        self.outputs = [_io_spec(d, name) for d, name in zip(self._output_details, self._output_names)]

    def infer_impl(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        interpreter = self._interpreter
        if self.options.reset_state:
            interpreter.reset_all_variables()
        # Dynamic dims resolve from the data's shape, as ONNX Runtime takes them (a no-op while shapes stay the same).
        dynamic = {spec.name: tuple(inputs[spec.name].shape) for spec in self.inputs if spec.dims is not None and None in spec.dims}
        if dynamic:
            self._resize(dynamic)
            interpreter = self._interpreter
        for spec, detail in zip(self.inputs, self._input_details):
            interpreter.set_tensor(detail["index"], quantize(inputs[spec.name], spec))
        start = time.perf_counter()
        interpreter.invoke()
        self.inference_time_s = time.perf_counter() - start
        return {spec.name: dequantize(interpreter.get_tensor(detail["index"]), spec) for spec, detail in zip(self.outputs, self._output_details)}

    def invoke_only(self) -> None:
        """One bare runtime call on whatever inputs are set (the overhead benchmark's baseline)."""
        self._interpreter.invoke()

    def deactivate_impl(self) -> None:
        self._interpreter = None

    def runtime_version(self) -> str:
        return f"{getattr(self, '_package', 'ai-edge-litert')} {getattr(self, '_version', 'unknown')}"

    def describe(self) -> dict[str, Any]:
        description = super().describe()
        description["kernels"] = "reference" if self.options.kernels == "reference" else ("xnnpack" if self.options.xnnpack else "builtin")
        return description
