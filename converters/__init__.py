"""Converters, one module per output format, looked up through edge_sdk.formats.FORMATS."""

from __future__ import annotations

import importlib
from types import ModuleType

from edge_sdk.errors import UsageError
from edge_sdk.formats import format_named


def converter_module(format_name: str) -> ModuleType:
    """The module whose `convert(model_path, output, options, calibration, ...)` makes this format."""
    spec = format_named(format_name)
    if spec.converter_module is None:
        raise UsageError(f"no converter for format {format_name!r}")
    try:
        return importlib.import_module(spec.converter_module)
    except ModuleNotFoundError as error:
        if error.name == spec.converter_module:
            raise UsageError(f"the {format_name} converter is not available in this version of edge-sdk") from error
        raise
