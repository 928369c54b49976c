"""Float reference runner for a PyTorch model (`package.module:factory` with optional weights; host only).

A PyTorch module declares no input shape: the runner takes them, and the layout the samples come in, from an
edge_sdk.reference_eval.TorchReference (read from the manifest of the artifact it is compared with). Where the
artifact takes NHWC (convert --nhwc-input), its inputs are NHWC here too and are moved to NCHW for the module.
It is not in the runner registry (targets.runners.RUNNERS, looked up by file kind): it runs a factory, not a
file, and only as a bench's reference (edge_sdk.bench.evaluate_reference builds it).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from edge_sdk._lazy import require
from targets.runners.base import BaseRunner, IOSpec, RunnerOptions


def nchw_to_nhwc(shape: list[int]) -> list[int]:
    """(N, C, ...) -> (N, ..., C): how an input of this PyTorch shape is fed to an artifact made with --nhwc-input."""
    return [shape[0], *shape[2:], shape[1]] if len(shape) >= 3 else list(shape)


class PyTorchRunner(BaseRunner):
    runtime_name = "pytorch"
    supports_batching = True  # a module takes any batch size

    def __init__(self, reference: Any, options: RunnerOptions | None = None) -> None:
        from pathlib import Path

        super().__init__(Path(reference.model.factory), options)
        self.reference = reference
        self._weights: dict[str, Any] | None = None

    def activate_impl(self) -> None:
        from edge_sdk.loaders.torch_weights import factory_model

        torch = require("torch", "a PyTorch reference")
        if self.options.threads:
            torch.set_num_threads(self.options.threads)
        self._model, self._weights = factory_model(self.reference.model)
        torch_shapes = list(self.reference.input_shapes.items())
        fed = [nchw_to_nhwc(shape) if self.reference.nhwc_input else shape for _, shape in torch_shapes]
        self.inputs = [IOSpec(name, tuple(shape), np.dtype(np.float32)) for (name, _), shape in zip(torch_shapes, fed)]
        # A module names no outputs: one run on zeros gives their number, shapes and types.
        outputs = self._run([np.zeros(shape, np.float32) for _, shape in torch_shapes])
        self.outputs = [IOSpec(f"output_{index}", tuple(value.shape), value.dtype) for index, value in enumerate(outputs)]

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        torch = require("torch")
        with torch.no_grad():
            result = self._model(*[torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)) for array in arrays])
        values = result if isinstance(result, (list, tuple)) else [result]
        return [value.detach().float().numpy() for value in values]

    def infer_impl(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        arrays = [inputs[spec.name] for spec in self.inputs]
        if self.reference.nhwc_input:
            arrays = [np.moveaxis(array, -1, 1) if array.ndim >= 3 else array for array in arrays]
        start = time.perf_counter()
        values = self._run(arrays)
        self.inference_time_s = time.perf_counter() - start
        return {spec.name: value for spec, value in zip(self.outputs, values)}

    def deactivate_impl(self) -> None:
        self._model = None

    def runtime_version(self) -> str:
        import importlib.metadata as metadata

        try:
            return f"torch {metadata.version('torch')}"
        except metadata.PackageNotFoundError:
            return "torch"

    def describe(self) -> dict[str, Any]:
        description = super().describe()
        description.update(framework="torch", factory=self.reference.model.factory, weights=self._weights, nhwc_input=self.reference.nhwc_input)
        return description
