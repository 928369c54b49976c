"""Float reference runner for Keras 3 (.keras), tf_keras (.h5) and SavedModel models (host only)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from edge_sdk.models import LoadedModel, load_model
from targets.runners.base import BaseRunner, IOSpec


class ReferenceRunner(BaseRunner):
    runtime_name = "reference"

    @classmethod
    def from_loaded(cls, loaded: LoadedModel) -> ReferenceRunner:
        """An active runner over a model already in memory (the converter validates with it)."""
        runner = cls(loaded.path)
        runner._use(loaded)
        runner.is_active = True
        return runner

    def activate_impl(self) -> None:
        self._use(load_model(self.path))

    def _use(self, loaded: LoadedModel) -> None:
        self._loaded: LoadedModel = loaded
        signature = loaded.signature
        self.inputs = [IOSpec(t.name, tuple(1 if d is None else d for d in t.shape), np.dtype(t.dtype)) for t in signature.inputs]
        self.outputs = [IOSpec(t.name, tuple(1 if d is None else d for d in t.shape), np.dtype(t.dtype)) for t in signature.outputs]
        self.supports_batching = all(t.shape and t.shape[0] is None for t in signature.inputs)
        if any(d is None for t in signature.inputs for d in t.shape[1:]):
            # The base class checks per-sample shapes; a dynamic dimension accepts any size.
            self.inputs = [IOSpec(t.name, tuple(t.shape), np.dtype(t.dtype)) for t in signature.inputs]  # type: ignore[arg-type]

    def _check_inputs(self, inputs: dict[str, np.ndarray]) -> None:
        if any(d is None for spec in self.inputs for d in spec.shape):
            return
        super()._check_inputs(inputs)

    def infer_impl(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        loaded = self._loaded
        if loaded.framework == "savedmodel":
            import tensorflow as tf

            function = loaded.model.signatures["serving_default"]
            feeds = {spec.name: tf.constant(inputs[spec.name]) for spec in self.inputs}
            start = time.perf_counter()
            result = function(**feeds)
            self.inference_time_s = time.perf_counter() - start
            return {spec.name: np.asarray(result[spec.name], dtype=np.float32) for spec in self.outputs}
        ordered = [inputs[spec.name] for spec in self.inputs]
        start = time.perf_counter()
        result = loaded.model(ordered[0] if len(ordered) == 1 else ordered, training=False)
        self.inference_time_s = time.perf_counter() - start
        values = result if isinstance(result, (list, tuple)) else [result]
        return {spec.name: np.asarray(value, dtype=np.float32) for spec, value in zip(self.outputs, values)}

    def deactivate_impl(self) -> None:
        self._loaded = None  # type: ignore[assignment]

    def runtime_version(self) -> str:
        import importlib.metadata as metadata

        framework = getattr(self, "_loaded", None)
        package = "tf-keras" if framework is not None and framework.framework == "tf_keras" else "tensorflow"
        try:
            return f"{package} {metadata.version(package)}"
        except metadata.PackageNotFoundError:
            return package

    def describe(self) -> dict[str, Any]:
        description = super().describe()
        description["framework"] = self._loaded.framework if getattr(self, "_loaded", None) else None
        return description
