"""Lazy imports of heavy frameworks with a clear message when an extra is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from edge_sdk.errors import MissingDependencyError

# What each optional module is, and the extra that installs it.
_EXTRAS: dict[str, tuple[str, str]] = {
    "tensorflow": ("TensorFlow", "tf"),
    "tf_keras": ("tf-keras (Keras 2)", "tf"),
    "tensorflow_model_optimization": ("TensorFlow Model Optimization", "tf"),
    "keras": ("Keras", "tf"),
    "ai_edge_litert": ("TFLite runtime (ai-edge-litert)", "litert"),
    "ai_edge_litert.interpreter": ("TFLite runtime (ai-edge-litert)", "litert"),
    "onnx": ("ONNX", "onnx"),
    "onnxruntime": ("ONNX Runtime", "onnx"),
    "tf2onnx": ("tf2onnx", "onnx"),
    "torch": ("PyTorch", "torch"),
    "PIL": ("Pillow (image folders)", "images"),
    "PIL.Image": ("Pillow (image folders)", "images"),
    "matplotlib": ("matplotlib (report plots)", "report"),
    "jsonschema": ("jsonschema (results file validation)", "report"),
    "yaml": ("PyYAML", "report"),
}


def require(module_name: str, purpose: str | None = None) -> ModuleType:
    """Import `module_name` or raise MissingDependencyError naming the extra to install."""
    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        label, extra = _EXTRAS.get(module_name, (module_name, "all"))
        needed_for = f" (needed for {purpose})" if purpose else ""
        raise MissingDependencyError(
            f"{label} not installed{needed_for}: {error}",
            fix=f"pip install 'edge-sdk[{extra}]'",
        ) from error


def is_available(module_name: str) -> bool:
    """True when `module_name` can be found, without importing it."""
    import importlib.util

    try:
        return importlib.util.find_spec(module_name) is not None
    except (ImportError, ValueError):
        return False
