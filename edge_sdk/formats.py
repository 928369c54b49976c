"""The one typed table of artifact formats, looked up by name or file suffix."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge_sdk.errors import ModelFileError, UsageError


@dataclass(frozen=True)
class FormatSpec:
    name: str
    suffix: str
    runtimes: tuple[str, ...]
    modes: tuple[str, ...]
    needs_gpu: bool
    converter_module: str | None


FORMATS: dict[str, FormatSpec] = {
    spec.name: spec
    for spec in (
        FormatSpec("tflite", ".tflite", ("litert",), ("fp32", "fp16", "dynamic", "int8", "int16x8"), False, "converters.tflite"),
        FormatSpec("onnx", ".onnx", ("onnxruntime",), ("fp32", "fp16", "dynamic", "int8"), False, "converters.onnx"),
        FormatSpec("tensorrt", ".engine", ("tensorrt",), ("fp32", "fp16", "int8"), True, "converters.tensorrt"),
    )
}

# Float reference models: not artifacts, run by the reference runner.
REFERENCE_KINDS = ("keras", "h5", "savedmodel")


def format_named(name: str) -> FormatSpec:
    if name not in FORMATS:
        raise UsageError(f"unknown format {name!r}; known formats: {', '.join(FORMATS)}")
    return FORMATS[name]


def format_of_path(path: Path) -> FormatSpec:
    suffix = Path(path).suffix.lower()
    for spec in FORMATS.values():
        if spec.suffix == suffix or (spec.name == "tensorrt" and suffix in (".engine", ".plan", ".trt")):
            return spec
    raise ModelFileError(f"{path} is not an artifact this SDK runs (suffixes: {', '.join(s.suffix for s in FORMATS.values())})")
