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
    "litert_torch": ("litert-torch (PyTorch/ONNX -> TFLite)", "torch-tflite"),
    "ai_edge_quantizer": ("ai-edge-quantizer", "torch-tflite"),
    "onnx2torch": ("onnx2torch (ONNX -> TFLite)", "torch-tflite"),
    "safetensors": ("safetensors", "torch-tflite"),
    "safetensors.torch": ("safetensors", "torch-tflite"),
    "deepspeed": ("DeepSpeed (ZeRO checkpoints)", "deepspeed"),
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
        raise MissingDependencyError(f"{label} not installed{needed_for}: {error}", fix=install_command(extra)) from error


def install_command(extra: str) -> str:
    """The command that installs an extra with the pins it needs (requirements/constraints.txt of the source tree)."""
    if extra == "deepspeed":  # a source distribution: no C++/CUDA ops at build time, built against the installed torch
        return "DS_BUILD_OPS=0 pip install --no-build-isolation -c requirements/constraints.txt 'edge-sdk[deepspeed]'"
    if extra == "torch-tflite":  # litert-torch needs typing_extensions<4.13 (xdsl): the constraints pin 4.12.2
        return "pip install -c requirements/constraints.txt 'edge-sdk[torch-tflite]'"
    return f"pip install 'edge-sdk[{extra}]'"


def is_available(module_name: str) -> bool:
    """True when `module_name` can be found, without importing it."""
    import importlib.util

    try:
        return importlib.util.find_spec(module_name) is not None
    except (ImportError, ValueError):
        return False
