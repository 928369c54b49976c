"""The one typed table of artifact formats: everything the SDK knows about a format is in its row.

Per format: its converter module, typed options class, modes, runtimes in order of preference, file suffixes
(the first is the one it writes), validation tolerances per mode, the source kinds it converts from, its CLI
argument group and its inspector. The CLI's choices, the pipeline's validation, `runner_for`, the target
profiles and `inspect` all read this table. Adding a format is one module plus one row (README: Adding a format).

Rows name their code as lazy "module:attribute" strings: importing this module imports nothing heavy
(tests/test_dependencies.py), and the mode names below are the only mode literals of the package
(tests/test_format_table.py checks both).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_sdk.errors import ModelFileError, UsageError

# The mode vocabulary. Code compares against these names, never against string literals.
FP32 = "fp32"
FP16 = "fp16"
DYNAMIC = "dynamic"
INT8 = "int8"
INT16X8 = "int16x8"
UNKNOWN_FLOAT = "float"  # the precision of an artifact without a manifest whose inputs are float (edge_sdk.bench)
FLOAT_MODES = (FP32, UNKNOWN_FLOAT)  # full-precision artifacts: the size baseline of a report
# Without a manifest, an artifact's input dtype names its precision (numpy dtype name -> mode).
PRECISION_OF_INPUT_DTYPE = {"int8": INT8, "uint8": "uint8", "int16": INT16X8}


@dataclass(frozen=True)
class Tolerance:
    """How closely an artifact of one mode must follow its source on real data (STYLE 14).

    Every output is gated by its kind (edge_sdk.conversion_gate): class scores, values, maps, sequences and state
    on the whole tensor's mean cosine (`min_cosine`) and SQNR (`min_sqnr_db`); a packed detections output on the
    SQNR of its score rows alone (`min_sqnr_db`) and on the recall of the reference's detections matched at
    IoU >= 0.5 (`min_detection_recall`), never on the whole tensor, which its box coordinates dominate. `atol`:
    max abs error of every output (fp32, Optimum's ATOL_FOR_VALIDATION). None = not gated."""

    min_cosine: float
    atol: float | None = None
    min_sqnr_db: float | None = None
    min_detection_recall: float | None = None


@dataclass(frozen=True)
class FormatSpec:
    """One row of the format table. Code references are "module:attribute" strings, resolved on use."""

    name: str
    suffixes: tuple[str, ...]  # the first is the suffix the converter writes
    runtimes: tuple[str, ...]  # in order of preference; the first is the runner `runner_for` picks
    modes: tuple[str, ...]
    needs_gpu: bool
    converter_module: str | None
    options_class: str  # "module:Class" of the format's typed options (a dataclass with a `mode` field)
    arguments: str  # "module:Class" of its CLI argument group (add / parse / to_flags)
    tolerances: dict[str, Tolerance] = field(default_factory=dict)
    calibrated_modes: tuple[str, ...] = ()  # modes whose ranges come from calibration data
    source_kinds: tuple[str, ...] = ()  # edge_sdk.models.detect_model_kind names, plus "torch" (an nn.Module or spec)
    inspector: str | None = None  # "module:function" (path -> dict) that reads an artifact of this format

    @property
    def suffix(self) -> str:
        """The suffix this format's converter writes."""
        return self.suffixes[0]

    @property
    def runner(self) -> str:
        """The runner (targets.runners.RUNNERS) that runs this format here."""
        return self.runtimes[0]

    def tolerance(self, mode: str) -> Tolerance:
        return self.tolerances[mode]

    def needs_calibration(self, mode: str) -> bool:
        return mode in self.calibrated_modes

    def options_type(self) -> type:
        return resolve(self.options_class)  # type: ignore[no-any-return]

    def argument_group(self) -> Any:
        return resolve(self.arguments)()

    def converter(self) -> Any:
        """The converter module (its `BUILDER` is the format's build step for converters.base)."""
        if self.converter_module is None:
            raise UsageError(f"no converter for format {self.name!r}")
        try:
            return importlib.import_module(self.converter_module)
        except ModuleNotFoundError as error:
            if error.name == self.converter_module:
                raise UsageError(f"the {self.name} converter is not available in this version of edge-sdk") from error
            raise

    def inspect(self, path: Path) -> dict[str, Any] | None:
        return resolve(self.inspector)(Path(path)) if self.inspector else None  # type: ignore[no-any-return]


def resolve(reference: str) -> Any:
    """The object a "module:attribute" string names."""
    module_name, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


# Measured (issue 13): the PP-OCR detector's per-channel int8 probability map is 6.8 dB from its source on the
# validation samples, with mask IoU ~0.8 (tests/real/test_ppocr_detector.py: a usable artifact); outputs that
# collapsed are near 0 dB (the score rows of a packed detector, tests/test_conversion_gate.py).
INT8_MIN_SQNR_DB = 5.0

FORMATS: dict[str, FormatSpec] = {
    spec.name: spec
    for spec in (
        FormatSpec(
            "tflite", (".tflite",), ("litert", "tflite-runtime"), (FP32, FP16, DYNAMIC, INT8, INT16X8), False, "converters.tflite",
            "converters.options:TFLiteOptions", "converters.options:TFLiteArguments",
            # Float modes must match closely; quantized ones only have to be sane (accuracy is bench's job).
            tolerances={FP32: Tolerance(0.9999, min_sqnr_db=40.0, min_detection_recall=0.95), FP16: Tolerance(0.999, min_sqnr_db=30.0, min_detection_recall=0.9),
                        DYNAMIC: Tolerance(0.98, min_sqnr_db=15.0, min_detection_recall=0.8), INT8: Tolerance(0.9, min_sqnr_db=INT8_MIN_SQNR_DB, min_detection_recall=0.7),
                        INT16X8: Tolerance(0.98, min_sqnr_db=15.0, min_detection_recall=0.8)},
            calibrated_modes=(INT8, INT16X8), source_kinds=("keras", "h5", "savedmodel", "onnx", "pt2", "torchscript", "torch"), inspector="edge_sdk.inspection:inspect_tflite",
        ),
        FormatSpec(
            "onnx", (".onnx",), ("onnxruntime",), (FP32, FP16, DYNAMIC, INT8), False, "converters.onnx",
            "converters.options:OnnxOptions", "converters.options:OnnxArguments",
            tolerances={FP32: Tolerance(0.99999, atol=1e-4, min_sqnr_db=40.0, min_detection_recall=0.95),
                        FP16: Tolerance(0.999, min_sqnr_db=30.0, min_detection_recall=0.9),
                        DYNAMIC: Tolerance(0.98, min_sqnr_db=15.0, min_detection_recall=0.8), INT8: Tolerance(0.9, min_sqnr_db=INT8_MIN_SQNR_DB, min_detection_recall=0.7)},
            calibrated_modes=(INT8,), source_kinds=("keras", "h5", "savedmodel", "onnx", "pt2", "torchscript", "torch"),
            inspector="edge_sdk.inspection:analyze_onnx",
        ),
        FormatSpec(
            "tensorrt", (".engine", ".plan", ".trt"), ("tensorrt",), (FP32, FP16, INT8), True, "converters.tensorrt",
            "converters.options:TensorRTOptions", "converters.options:TensorRTArguments",
            # Validation runs the engine, so it happens where the engine runs (bench against the ONNX there).
            tolerances={FP32: Tolerance(0.9999), FP16: Tolerance(0.999), INT8: Tolerance(0.9)},
            source_kinds=("onnx",),
        ),
    )
}

# Float reference models: not artifacts, run by the reference runner.
REFERENCE_KINDS = ("keras", "h5", "savedmodel")
REFERENCE_RUNNER = "reference"


def format_named(name: str) -> FormatSpec:
    if name not in FORMATS:
        raise UsageError(f"unknown format {name!r}; known formats: {', '.join(FORMATS)}")
    return FORMATS[name]


def format_for_suffix(suffix: str) -> FormatSpec | None:
    """The format whose files end in `suffix` ('.onnx'), or None."""
    suffix = suffix.lower()
    return next((spec for spec in FORMATS.values() if suffix in spec.suffixes), None)


def format_of_path(path: Path) -> FormatSpec:
    spec = format_for_suffix(Path(path).suffix)
    if spec is None:
        raise ModelFileError(f"{path} is not an artifact this SDK runs (suffixes: {', '.join(s for f in FORMATS.values() for s in f.suffixes)})")
    return spec


def all_modes() -> tuple[str, ...]:
    """Every mode of every format, in table order, once."""
    return tuple(dict.fromkeys(mode for spec in FORMATS.values() for mode in spec.modes))


def runner_name_for_kind(kind: str) -> str | None:
    """The runner for a model of this kind (edge_sdk.models.detect_model_kind): its format's first runtime."""
    if kind in FORMATS:
        return FORMATS[kind].runner
    return REFERENCE_RUNNER if kind in REFERENCE_KINDS else None


def runtimes_for(format_name: str) -> tuple[str, ...]:
    """The runtimes that run a format, in order of preference (empty for an unknown format)."""
    return FORMATS[format_name].runtimes if format_name in FORMATS else ()
