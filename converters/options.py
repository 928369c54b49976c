"""Typed conversion options, one class per format, and the data settings every format shares.

Light on purpose (dataclasses and argparse only): the CLI builds its parser from the argument groups here
without importing a converter. Each argument group follows Polygraphy's tools/args style: `add(parser)` adds
the format's flags, `parse(args)` returns the settings the user gave, `to_flags(options)` writes options back
as flags. `options_from_settings` is the one place where a setting is matched to the format that owns it.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_sdk.errors import UsageError
from edge_sdk.formats import FORMATS, FP32, INT8, format_named

QUANT_TYPES = ("s8s8", "u8s8")  # ONNX: activations, weights
CALIBRATION_METHODS = ("MinMax", "Entropy", "Percentile")


@dataclass
class DataSettings:
    """Data and preprocessing shared by every format: what to calibrate and validate on, and how to feed it."""

    calibration: Path | None = None
    validation_data: Path | None = None  # default: the calibration data
    preprocess: Any = None  # a PreprocessSpec or its dict
    input_key: str | None = None
    calibration_samples: int | None = 300
    validation_samples: int = 100
    seed: int = 0
    input_shapes: dict[str, list[int]] | None = None
    # All-zero or constant calibration / validation data is refused (edge_sdk.data_sanity) unless this is set.
    allow_degenerate_calibration: bool = False
    # What outputs are, for validation by kind (edge_sdk.conversion_gate): an edge_sdk.fidelity.OutputKinds, or the
    # `--output-kind` texts ("output0:detections:boxes=0-3,scores=4-,layout=CN"); default: inferred per output.
    output_kinds: Any = None

    def __post_init__(self) -> None:
        from edge_sdk.fidelity import OutputKinds, parse_output_kinds  # numpy, no runtime

        self.calibration = Path(self.calibration) if self.calibration else None
        self.validation_data = Path(self.validation_data) if self.validation_data else None
        if not isinstance(self.output_kinds, OutputKinds):
            self.output_kinds = parse_output_kinds(list(self.output_kinds or []))

    def record(self) -> dict[str, Any]:
        """The settings a manifest records among the options (how the artifact was made)."""
        record = {"calibration_samples": self.calibration_samples, "seed": self.seed, "input_shapes": self.input_shapes, "validation_samples": self.validation_samples}
        if self.output_kinds.kinds:
            record["output_kinds"] = self.output_kinds.to_dict()
        return record


def _check_mode(options: Any, format_name: str, label: str) -> None:
    modes = format_named(format_name).modes
    if options.mode not in modes:
        raise UsageError(f"--quant {options.mode!r} is not {label} mode; choose one of {', '.join(modes)}")


@dataclass
class TFLiteOptions:
    mode: str = FP32
    # int8: allow float kernels where an op has no int8 kernel (else the conversion fails).
    allow_float_fallback: bool = False
    # Selective quantization (edge-sdk debug --max-drop): layers (output tensor names) and op types kept in
    # float through the MLIR quantizer's denylists; such models keep float inputs and outputs.
    float_nodes: list[str] = field(default_factory=list)
    float_ops: list[str] = field(default_factory=list)
    # PyTorch / ONNX sources (converters/tflite_torch.py): an NHWC-input artifact from an NCHW model, and the int8
    # quantizer ("aeq": ai-edge-quantizer, "pt2e": litert-torch's PT2E; None = the measured default, aeq).
    nhwc_input: bool = False
    torch_quantizer: str | None = None

    def __post_init__(self) -> None:
        _check_mode(self, "tflite", "a TFLite")
        calibrated = FORMATS["tflite"].calibrated_modes
        if (self.float_nodes or self.float_ops) and self.mode not in calibrated:
            # The TFLite converter has no denylist outside calibrated quantization: fp16 / dynamic-range would
            # silently convert every node anyway (issue 13), so the request is refused.
            raise UsageError(f"TFLite --quant {self.mode} cannot keep nodes or op types in float (--exclude-nodes / --exclude-op-types / --float-nodes-from): "
                             f"only its calibrated modes ({', '.join(calibrated)}) can",
                             fix=f"drop the --exclude-* flags, use --quant {' or '.join(calibrated)}, or --to onnx --quant {self.mode} (which keeps them in float)")


@dataclass
class OnnxOptions:
    mode: str = FP32
    per_channel: bool = True
    quant_types: str = "s8s8"
    calibration_method: str = "MinMax"
    exclude_nodes: list[str] = field(default_factory=list)
    exclude_op_types: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        _check_mode(self, "onnx", "an ONNX")
        if self.quant_types not in QUANT_TYPES:
            raise UsageError(f"--quant-types {self.quant_types!r} must be one of {', '.join(QUANT_TYPES)} (activations, weights)")
        if self.calibration_method not in CALIBRATION_METHODS:
            raise UsageError(f"--calib-method {self.calibration_method!r} must be one of {', '.join(CALIBRATION_METHODS)}")


ONNXOptions = OnnxOptions  # the name used before issue 12


@dataclass
class TensorRTOptions:
    mode: str = FP32
    workspace_mb: int = 1024
    timing_cache: Path | None = None  # local builds: reused between builds (device builds keep theirs in the cache)
    dla_core: int | None = None
    gpu_fallback: bool = True
    optimization_level: int = 3
    host: str | None = None  # ssh://user@jetson: build there, cache there
    fetch_engine: bool = False  # with host: also copy the engine back to the output path
    target: str | None = None  # target profile name, recorded in the manifest

    def __post_init__(self) -> None:
        _check_mode(self, "tensorrt", "a TensorRT")
        self.timing_cache = Path(self.timing_cache) if self.timing_cache else None
        if self.fetch_engine and not self.host:
            raise UsageError("--fetch-engine fetches an engine built on --host; a local build writes the engine anyway")

    def build_settings(self, input_shapes: dict[str, list[int]] | None = None) -> Any:
        """The settings the builder reads. INT8 networks are strongly typed: their types come from the Q/DQ ONNX."""
        from targets.tensorrt_build import BuildSettings

        return BuildSettings(
            mode=self.mode, workspace_mb=self.workspace_mb, dla_core=self.dla_core, gpu_fallback=self.gpu_fallback,
            strongly_typed=self.mode == INT8, input_shapes=dict(input_shapes or {}), optimization_level=self.optimization_level,
            timing_cache=str(self.timing_cache) if self.timing_cache else None,
        )


DATA_KEYS = tuple(f.name for f in dataclasses.fields(DataSettings))


def options_from_settings(format_name: str, settings: dict[str, Any]) -> tuple[Any, DataSettings]:
    """(typed options, data settings) for `format_name` from flat settings (the keyword API, the CLI).

    None means "not given". A setting of another format is refused (exit 2) naming the format it belongs to."""
    spec = format_named(format_name)
    given = {key: value for key, value in settings.items() if value is not None}
    float_nodes = given.pop("float_nodes", None)
    data = DataSettings(**{key: given.pop(key) for key in DATA_KEYS if key in given})
    own = {f.name for f in dataclasses.fields(spec.options_type())}
    if float_nodes:  # layers kept in float: TFLite output tensor names, ONNX node names (edge_sdk.debug.fallback)
        if "exclude_nodes" in own:
            given["exclude_nodes"] = sorted(set(given.get("exclude_nodes") or []) | set(float_nodes))
        else:
            given["float_nodes"] = list(float_nodes)
    if "exclude_nodes" not in own and "float_nodes" in own:  # TFLite: --exclude-* are its float nodes / op types
        given["float_nodes"] = list(dict.fromkeys([*given.get("float_nodes", []), *given.pop("exclude_nodes", [])]))
        given["float_ops"] = list(dict.fromkeys([*given.get("float_ops", []), *given.pop("exclude_op_types", [])]))
    foreign = sorted(key for key in given if key not in own)
    if foreign:
        owners = {key: [name for name, other in FORMATS.items() if key in {f.name for f in dataclasses.fields(other.options_type())}] for key in foreign}
        unknown = [key for key, names in owners.items() if not names]
        if unknown:
            raise UsageError(f"unknown conversion setting(s) {', '.join(unknown)}", fix=f"see `edge-sdk convert -h` for the {format_name} settings")
        owner = owners[foreign[0]][0]
        raise UsageError(f"{', '.join(foreign)} apply to --to {owner} only, not {format_name}", fix=f"drop them, or convert with --to {owner}")
    return spec.options_type()(**given), data


class _Arguments:
    """A format's flags: the options field each flag sets, and how to write a value back as flags."""

    title = ""
    flags: dict[str, str] = {}  # options field -> flag

    def add(self, parser: argparse.ArgumentParser) -> None:
        raise NotImplementedError

    def parse(self, args: argparse.Namespace) -> dict[str, Any]:
        """The settings of this format the user gave (flags left at None were not given)."""
        return {name: getattr(args, _dest(flag)) for name, flag in self.flags.items() if getattr(args, _dest(flag), None) is not None}

    def to_flags(self, options: Any) -> list[str]:
        """`options` as the flags that make it again (defaults left out)."""
        defaults = type(options)()
        flags: list[str] = []
        for name, flag in self.flags.items():
            value = getattr(options, name)
            if value == getattr(defaults, name):
                continue
            if isinstance(value, bool):
                flags.append(flag if value else f"--no-{flag[2:]}")
            elif isinstance(value, list):
                flags += [flag, ",".join(value)]
            else:
                flags += [flag, str(value)]
        return ["--quant", options.mode, *flags]


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


class TFLiteArguments(_Arguments):
    title = "TFLite (--to tflite)"
    flags = {"allow_float_fallback": "--allow-float-fallback", "nhwc_input": "--nhwc-input", "torch_quantizer": "--torch-quantizer"}

    def add(self, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group(self.title)
        group.add_argument("--allow-float-fallback", action="store_true", default=None, help="int8: keep ops without int8 kernels in float")
        group.add_argument("--nhwc-input", action="store_true", default=None, help="from PyTorch/ONNX: the artifact takes NHWC (the PyTorch model takes NCHW)")
        group.add_argument("--torch-quantizer", choices=["aeq", "pt2e"], help="int8 from PyTorch/ONNX: ai-edge-quantizer (aeq, default) or litert-torch's PT2E")


class OnnxArguments(_Arguments):
    title = "ONNX Runtime quantization (--to onnx)"
    flags = {"per_channel": "--per-channel", "quant_types": "--quant-types", "calibration_method": "--calib-method",
             "exclude_nodes": "--exclude-nodes", "exclude_op_types": "--exclude-op-types"}

    def add(self, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group(self.title)
        group.add_argument("--per-channel", action=argparse.BooleanOptionalAction, default=None, help="per-channel weight scales (default on)")
        group.add_argument("--quant-types", choices=QUANT_TYPES, help="activation/weight integer types (default s8s8)")
        group.add_argument("--calib-method", choices=CALIBRATION_METHODS, help="calibration method (default MinMax)")
        group.add_argument("--exclude-nodes", type=_comma_list, help="comma-separated nodes to keep in float: ONNX node names (tensor names are mapped to "
                           "their node); TFLite int8/int16x8: op names as `edge-sdk debug` lists them. Unknown names: exit 2")
        group.add_argument("--exclude-op-types", type=_comma_list, help="comma-separated op types to keep in float, e.g. Softmax,Gemm")


class TensorRTArguments(_Arguments):
    title = "TensorRT engines (--to tensorrt, from an ONNX model)"
    flags = {"workspace_mb": "--workspace-mb", "timing_cache": "--timing-cache", "dla_core": "--dla-core", "target": "--target",
             "host": "--host", "fetch_engine": "--fetch-engine"}

    def add(self, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group(self.title)
        group.add_argument("--workspace-mb", type=int, help="builder workspace limit in MiB (default 1024)")
        group.add_argument("--timing-cache", type=Path, help="timing cache file reused between local builds")
        group.add_argument("--dla-core", type=int, help="build for this DLA core (Jetson AGX/Xavier; fp16 or int8)")
        group.add_argument("--target", help="target profile the engine is for, e.g. jetson-orin-nano (recorded)")
        group.add_argument("--host", help="build on this device (ssh://user@jetson) and cache the engine there")
        group.add_argument("--fetch-engine", action="store_true", default=None, help="with --host: copy the engine back to -o")


def _comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]
