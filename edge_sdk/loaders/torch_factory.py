"""`package.module:factory` specs: import the module and call the factory (shared by the ONNX export and checkpoint
intake, which both build a PyTorch model from one)."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from edge_sdk._lazy import require
from edge_sdk.errors import UsageError


def module_from_factory(spec: str) -> Any:
    """Import `package.module:factory` and call the factory; it must return an nn.Module."""
    torch = require("torch", "PyTorch intake")
    module_name, _, attribute = spec.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`: a factory module in the working folder imports
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise UsageError(f"PyTorch factory spec {spec!r}: cannot import module {module_name!r}: {error}", fix="check the module is on PYTHONPATH (run from its folder)") from error
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise UsageError(f"PyTorch factory spec {spec!r}: module {module_name!r} has no callable {attribute!r}")
    model = factory()
    if not isinstance(model, torch.nn.Module):
        raise UsageError(f"PyTorch factory spec {spec!r} returned {type(model).__name__}, not a torch.nn.Module")
    return model
