"""The runner interface: activate (load) / infer / deactivate, as a context manager.

Public methods check state and inputs, then call the `*_impl` methods that each runtime
overrides. `infer_impl` records the time of the runtime call alone in `inference_time_s`, so
input checks, quantization and copies never pollute the measured latency.

This module imports numpy only: it is part of the slim on-device runner.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.errors import DataError, RuntimeFailure


@dataclass
class RunnerOptions:
    """Settings a runner may use; each runtime reads the ones that apply to it."""

    threads: int | None = None
    xnnpack: bool = True
    kernels: str = "default"  # "default" or "reference" (TFLite reference kernels)
    reset_state: bool = False  # reset state variables before every sample (LSTMs)
    providers: list[str] = field(default_factory=list)  # ONNX Runtime execution providers
    graph_optimization: str = "all"  # ONNX Runtime: disable | basic | extended | all
    input_shapes: dict[str, list[int]] = field(default_factory=dict)  # fixed dims for dynamic inputs (--input-shape)

    def to_dict(self) -> dict[str, Any]:
        # input_shapes only when given: results and settings files without it keep their keys.
        return {key: value for key, value in asdict(self).items() if key != "input_shapes" or value}


@dataclass
class IOSpec:
    """One runtime input or output: name, concrete shape, dtype and quantization (scale, zero point)."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float = 0.0
    zero_point: int = 0
    # The shape as the model declares it, None for a dynamic dim (runtimes that have dynamic dims set it);
    # `shape` then holds 1 for each dynamic dim. Inputs are checked against `dims`, taking any size where dynamic.
    dims: tuple[int | None, ...] | None = None

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0 and self.dtype.kind in "iu"

    def to_dict(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"name": self.name, "shape": list(self.shape), "dtype": self.dtype.name}
        if self.dims is not None and None in self.dims:
            payload["dims"] = list(self.dims)
        if self.quantized:
            payload["quantization"] = {"scale": self.scale, "zero_point": self.zero_point}
        return payload


class BaseRunner:
    """Base class of every runner. Subclasses set `runtime_name` and implement the `*_impl` methods."""

    runtime_name = "base"
    # True when one runtime call can take any batch size (then callers may batch samples).
    supports_batching = False

    def __init__(self, path: Path, options: RunnerOptions | None = None) -> None:
        self.path = Path(path)
        self.options = options or RunnerOptions()
        self.is_active = False
        self.load_time_s: float | None = None
        self.inference_time_s: float | None = None
        self.inputs: list[IOSpec] = []
        self.outputs: list[IOSpec] = []

    # --- public interface ----------------------------------------------------------------------
    def activate(self) -> None:
        if self.is_active:
            raise RuntimeFailure(f"runner for {self.path} is already active")
        start = time.perf_counter()
        self.activate_impl()
        self.load_time_s = time.perf_counter() - start
        self.is_active = True

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run float inputs (with a batch axis); returns float outputs, dequantized where needed.

        A batch larger than the model's fixed batch is run one sample at a time and the
        outputs concatenated; `inference_time_s` is then the sum of the runtime calls.
        """
        if not self.is_active:
            raise RuntimeFailure(f"runner for {self.path} is not active; use it as a context manager")
        self._check_inputs(inputs)
        model_batch = self.inputs[0].shape[0] if self.inputs and self.inputs[0].shape else 1
        batch = next(iter(inputs.values())).shape[0]
        if batch == model_batch or self.supports_batching:
            return self.infer_impl(inputs)
        if model_batch != 1:
            raise DataError(f"{self.path} takes a batch of {model_batch}, got {batch}")
        per_sample = []
        total = 0.0
        for index in range(batch):
            per_sample.append(self.infer_impl({name: array[index : index + 1] for name, array in inputs.items()}))
            total += self.inference_time_s or 0.0
        self.inference_time_s = total
        return {name: np.concatenate([out[name] for out in per_sample]) for name in per_sample[0]}

    def deactivate(self) -> None:
        if self.is_active:
            self.deactivate_impl()
            self.is_active = False

    def describe(self) -> dict[str, Any]:
        """Runtime name, version and the options in force, for results and manifests."""
        return {"runtime": self.runtime_name, "version": self.runtime_version(), "options": self.options.to_dict()}

    def __enter__(self) -> BaseRunner:
        self.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        self.deactivate()

    # --- for subclasses --------------------------------------------------------------------------
    def activate_impl(self) -> None:
        raise NotImplementedError

    def infer_impl(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def deactivate_impl(self) -> None:
        pass

    def runtime_version(self) -> str:
        return "unknown"

    # --- helpers -------------------------------------------------------------------------------
    def _check_inputs(self, inputs: dict[str, np.ndarray]) -> None:
        expected = [spec.name for spec in self.inputs]
        if sorted(inputs) != sorted(expected):
            raise DataError(f"{self.path} takes inputs {expected}, got {sorted(inputs)}")
        for spec in self.inputs:
            if spec.dims is not None:
                self._check_dims(spec, tuple(inputs[spec.name].shape))
                continue
            got = tuple(inputs[spec.name].shape[1:])
            if got != tuple(spec.shape[1:]):
                raise DataError(f"input {spec.name!r} of {self.path} has per-sample shape {tuple(spec.shape[1:])}, got {got}")


    def _check_dims(self, spec: IOSpec, got: tuple[int, ...]) -> None:
        """Every fixed dim must match, but the first: `infer` runs a larger batch one sample at a time; dynamic dims
        (None) take any size."""
        dims = spec.dims or ()
        if len(got) != len(dims) or any(wanted is not None and wanted != size for wanted, size in list(zip(dims, got))[1:]):
            shown = tuple("?" if d is None else d for d in dims)
            raise DataError(f"input {spec.name!r} of {self.path} has shape {shown} (? = any size), got {got}",
                            fix="give data of that shape, or --input-shape NAME:DIMS / --batch-axis NAME:AXIS")


def apply_input_shapes(specs: list[IOSpec], shapes: dict[str, list[int]], path: Path) -> list[IOSpec]:
    """`specs` with the dims `shapes` fixes ({name: full shape}; the name '' means the only input)."""
    if "" in shapes and len(specs) == 1:
        shapes = {specs[0].name: shapes[""]}
    unknown = sorted(set(shapes) - {spec.name for spec in specs})
    if unknown:
        raise DataError(f"--input-shape names {unknown}, but {path} has inputs {[spec.name for spec in specs]}")
    fixed = []
    for spec in specs:
        wanted = shapes.get(spec.name)
        dims = spec.dims if spec.dims is not None else spec.shape
        if wanted is None:
            fixed.append(spec)
            continue
        if len(wanted) != len(dims) or any(d is not None and d != w for d, w in zip(dims, wanted)):
            shown = tuple("?" if d is None else d for d in dims)
            raise DataError(f"--input-shape {spec.name}:{','.join(map(str, wanted))} does not fit input {spec.name!r} of {path}, whose shape is {shown}")
        fixed.append(IOSpec(spec.name, tuple(wanted), spec.dtype, spec.scale, spec.zero_point, dims=tuple(wanted)))
    return fixed


def quantize(array: np.ndarray, spec: IOSpec) -> np.ndarray:
    """Float to the integer type of `spec` with its scale and zero point (round half to even, clip)."""
    if not spec.quantized:
        return array.astype(spec.dtype, copy=False)
    info = np.iinfo(spec.dtype)
    quantized = np.round(array / spec.scale) + spec.zero_point
    return np.clip(quantized, info.min, info.max).astype(spec.dtype)


def dequantize(array: np.ndarray, spec: IOSpec) -> np.ndarray:
    if not spec.quantized:
        return array.astype(np.float32, copy=False)
    return ((array.astype(np.float32) - spec.zero_point) * spec.scale).astype(np.float32)
