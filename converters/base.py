"""The converter template: check the output -> load the source -> build -> validate against the source ->
write the artifact and its manifest atomically (Polygraphy's `call_impl`; Optimum's per-config tolerance).

Each format module supplies a `Builder` (its `BUILDER`): how to load its source, build the artifact inside the
staging folder, run the artifact and the source for validation, and describe the result in a manifest. The
template owns everything the formats share, so they cannot drift: output and suffix checks, the staging folder
(third-party steps run with it as their working directory; it is removed on failure; one left by a killed run is
removed), one `validate_against_source` over every output with the tolerance from the format table, and the order
in which files appear (external data, artifact, manifest).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from converters.options import DataSettings
from edge_sdk.artifact import Artifact, load_artifact, manifest_path_for
from edge_sdk.data import Dataset, InputBinding, PreprocessSpec
from edge_sdk.errors import ConversionError, OutputWriteError, UsageError
from edge_sdk.fidelity import OutputKinds, weak_outputs
from edge_sdk.fileio import WRITE_ERRNOS, check_can_write, check_writable_folder, sha256_of
from edge_sdk.formats import FORMATS, INT8, INT16X8, FormatSpec, Tolerance, format_named
from edge_sdk.manifest import manifest_from_record, write_manifest
from edge_sdk.progress import Progress
from edge_sdk.staging import publish, staging_folder, working_directory


@dataclass
class Conversion:
    """One conversion as the template and the format's builder see it."""

    format: FormatSpec
    source: Any  # an absolute Path, or a PyTorch object / module:factory spec
    output: Path  # absolute
    options: Any
    data: DataSettings
    preprocess: PreprocessSpec | None
    calibration: Dataset | None
    validation: Dataset | None
    progress: Progress
    staging: Path = Path()
    staged: Path = Path()  # the artifact inside the staging folder
    loaded: Any = None  # what the builder's load() returned
    shapes: list[tuple[str, list[int]]] = field(default_factory=list)  # concrete input shapes, set by load/build
    companions: list[str] = field(default_factory=list)  # files beside the artifact it refers to (ONNX external data)
    started: float = 0.0
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)  # what the build found out, for the builder's manifest
    warnings: list[str] = field(default_factory=list)  # kept in the manifest's `warnings` (inspect and bench show them)

    @property
    def mode(self) -> str:
        return str(self.options.mode)

    @property
    def source_label(self) -> str:
        return str(self.source) if isinstance(self.source, (str, Path)) else type(self.source).__name__

    @property
    def validation_data(self) -> Dataset | None:
        return self.validation or self.calibration

    @property
    def spec(self) -> PreprocessSpec | None:
        """The preprocessing the artifact expects: the data's spec, else the one given."""
        data = self.calibration or self.validation
        return data.spec if data else self.preprocess


class Builder:
    """The format-specific steps of a conversion. Override `load`, `build`, `manifest`; for validation also
    `artifact_runner` and `source_outputs` (return None from `artifact_runner` to skip validation)."""

    def check(self, conversion: Conversion) -> None:
        """Refuse what cannot work before anything is loaded or written (the default: calibrated modes need data)."""
        if conversion.format.needs_calibration(conversion.mode) and conversion.calibration is None:
            raise UsageError(f"--quant {conversion.mode} needs calibration data", fix="pass --calib DATA (.npz, .npy or an image folder)")

    def for_source(self, source: Any) -> Builder:
        """The builder for this source (a format may hand some sources to another builder: TFLite from PyTorch)."""
        return self

    def writes_artifact(self, options: Any) -> bool:
        """False when the artifact stays elsewhere (a TensorRT engine built and kept on a device)."""
        return True

    def load(self, conversion: Conversion) -> Any:
        """Load the source (before the working directory moves); set `conversion.shapes`."""
        raise NotImplementedError

    def build(self, conversion: Conversion) -> None:
        """Write the artifact to `conversion.staged` (and its companions beside it)."""
        raise NotImplementedError

    def artifact_runner(self, conversion: Conversion) -> Any:
        """A runner (targets.runners) for the staged artifact, or None when it cannot run here."""
        return None

    def source_outputs(self, conversion: Conversion, samples: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
        """The source model's outputs for `samples` (each a batch of 1), stacked over the samples, in source order."""
        raise NotImplementedError

    def validation_extra(self, conversion: Conversion) -> dict[str, Any]:
        return {}

    def skipped_validation(self, conversion: Conversion) -> dict[str, Any]:
        return {"status": "skipped", "reason": "no data given (pass --calib or --validate-data)"}

    def manifest(self, conversion: Conversion, validation: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def conversion_fix(self, conversion: Conversion) -> str:
        return "check the calibration data matches the evaluation preprocessing (edge-sdk inspect shows the spec)"


def convert_with(format_name: str, source: Any, output: Path, options: Any, data: DataSettings, *, overwrite: bool = False, progress: Progress | None = None,
                 keep_failed: bool = False) -> Artifact:
    """Convert `source` to `output` in the format `format_name` with typed options: the one path of every conversion.

    An artifact that fails validation is refused (ConversionError, exit 6) and nothing is written; with
    `keep_failed` it is written with its manifest marked failed (`validation.status == "failed"`, the report beside
    it) for `edge-sdk debug`, and the ConversionError is still raised (its `kept_artifact` is the path)."""
    spec = format_named(format_name)
    builder: Builder = spec.converter().BUILDER
    output = Path(os.path.abspath(output))
    if output.suffix.lower() not in spec.suffixes:
        raise UsageError(f"--to {spec.name} writes {' or '.join(spec.suffixes)} files, not {output.name}", fix=f"name the output *{spec.suffix}")
    source = _absolute_source(source)
    builder = builder.for_source(source)
    if not isinstance(source, Path) and "torch" not in spec.source_kinds:  # an nn.Module or a module:factory spec
        takers = [name for name, other in FORMATS.items() if "torch" in other.source_kinds]
        raise UsageError(f"a PyTorch model (nn.Module or module:factory spec) converts with --to {' or '.join(takers)}, not {spec.name}")
    writes = builder.writes_artifact(options)
    if writes:
        check_can_write(output, overwrite, "artifact")
    check_can_write(manifest_path_for(output), overwrite, "manifest")
    check_writable_folder(output.parent, "output folder")  # a read-only folder is refused before any work (exit 12)
    data = _absolute(data)
    preprocess = data.preprocess if isinstance(data.preprocess, PreprocessSpec) else PreprocessSpec.from_dict(data.preprocess)
    calibration = Dataset(data.calibration, preprocess, input_key=data.input_key) if data.calibration else None
    validation = Dataset(data.validation_data, preprocess, input_key=data.input_key) if data.validation_data else None
    conversion = Conversion(spec, source, output, options, data, preprocess, calibration, validation, progress or Progress(enabled=False))
    builder.check(conversion)
    _check_informative(conversion)
    conversion.loaded = builder.load(conversion)
    try:
        return _convert_in_staging(builder, conversion, output, writes, keep_failed)
    except OSError as error:
        if error.errno not in WRITE_ERRNOS:
            raise
        # A full disk or a read-only file system during a third-party step (ONNX Runtime, TensorFlow write their own
        # files): the staging folder is gone, the output folder is as it was (exit 12, like an atomic write).
        raise OutputWriteError(f"cannot write {output}: {error.strerror or error}; {output.name} was left as it was before",
                               fix="free disk space (or choose another output folder) and run again") from error


def _convert_in_staging(builder: Builder, conversion: Conversion, output: Path, writes: bool, keep_failed: bool = False) -> Artifact:
    # Every third-party step (the build, running the source and the artifact) runs with the staging folder as its
    # working directory: tools that drop scratch files there (ORT's quant_pre_process) never touch the user's folder.
    with staging_folder(output) as staging, working_directory(staging):
        conversion.staging, conversion.staged = staging, staging / output.name
        conversion.started = time.perf_counter()
        builder.build(conversion)
        conversion.seconds = time.perf_counter() - conversion.started
        runner = builder.artifact_runner(conversion) if conversion.validation_data is not None else None
        if runner is None:
            report = builder.skipped_validation(conversion)
        else:
            report = validate_against_source(conversion, runner, lambda samples: builder.source_outputs(conversion, samples), builder.conversion_fix(conversion))
            report.update(builder.validation_extra(conversion))
        failure = validation_failure(conversion, report, builder.conversion_fix(conversion), keep_failed) if report.get("status") == "failed" else None
        if failure is not None and not keep_failed:
            raise failure  # the staging folder goes with it: nothing is written
        record = builder.manifest(conversion, report)
        if conversion.warnings:  # e.g. degenerate calibration data allowed by --allow-degenerate-calibration
            record["warnings"] = list(conversion.warnings)
        io = record.get("io") or record.get("signature") or {}
        for tensor in io.get("outputs") or []:  # the user's --output-kind is what the output is
            tensor["kind"] = conversion.data.output_kinds.kinds.get(tensor.get("name"), tensor.get("kind"))
        if writes:  # the template owns what identifies the artifact's bytes
            record.setdefault("sha256", sha256_of(conversion.staged))
            record.setdefault("size_bytes", conversion.staged.stat().st_size + sum((staging / name).stat().st_size for name in conversion.companions))
        manifest = manifest_from_record(record, where=f"manifest of {output}")  # validated before anything is moved
        if writes:
            publish(conversion.staged, output, conversion.companions)
        write_manifest(output, manifest)
    if failure is not None:  # --keep-failed: kept, marked failed (validation.status), and still exit 6
        failure.message += (f"\nkept the artifact that failed validation at {output} (its manifest says validation status \"failed\"); "
                            f"`edge-sdk debug {output}` runs on it")
        failure.kept_artifact = output  # type: ignore[attr-defined]
        raise failure
    # An engine built on a device without --fetch-engine stays there: no local bytes to verify.
    return load_artifact(output) if output.is_file() else Artifact(output, manifest)


def _check_informative(conversion: Conversion) -> None:
    """All-zero or constant calibration / validation data calibrates and validates nothing: refused (exit 4) unless
    `allow_degenerate_calibration`, then kept as a warning among the conversion's details."""
    from edge_sdk.data_sanity import check_informative

    data, allow = conversion.data, conversion.data.allow_degenerate_calibration
    calibration, validation = conversion.calibration, conversion.validation
    notes = [
        check_informative(calibration, calibration.subset(data.calibration_samples, data.seed) if calibration else None, "calibration", allow),
        check_informative(validation, validation.subset(data.validation_samples, data.seed + 1) if validation else None, "validation", allow),
    ]
    if any(notes):
        conversion.details["degenerate_data"] = [note for note in notes if note]
        conversion.warnings += [f"{note} (--allow-degenerate-calibration): the artifact's ranges and validation figures may not hold on real data"
                                for note in notes if note]


def _absolute(data: DataSettings) -> DataSettings:
    """Data paths made absolute: third-party steps run in the staging folder, and data is read during them."""
    calibration = Path(os.path.abspath(data.calibration)) if data.calibration else None
    validation = Path(os.path.abspath(data.validation_data)) if data.validation_data else None
    return dataclasses.replace(data, calibration=calibration, validation_data=validation)


def _absolute_source(source: Any) -> Any:
    from edge_sdk.loaders.to_onnx import is_factory_spec

    if isinstance(source, (str, Path)) and not is_factory_spec(source):
        return Path(os.path.abspath(source))
    return source


def validate_against_source(conversion: Conversion, runner: Any, source_outputs: Callable[[list[dict[str, np.ndarray]]], list[np.ndarray]], fix: str) -> dict[str, Any]:
    """Run the artifact and its source on the same real samples and gate EVERY output by its kind (STYLE 14).

    Outputs pair by name when the names agree, else by position (a converter may rename them). Each output is held
    to the format table's tolerance for the mode by the figures that fit its kind (edge_sdk.conversion_gate): whole-
    tensor cosine and SQNR, or for a packed detections output its score rows' SQNR and matched recall. Returns the
    validation report (every output's figures and gates); its status is "failed" when an output failed a gate:
    the template then refuses the artifact (ConversionError, see `validation_failure`), or keeps it marked failed."""
    from edge_sdk.conversion_gate import failures, judge_output, summary

    data = conversion.validation_data
    if data is None:
        raise ValueError("validate_against_source needs validation data")
    tolerance: Tolerance = conversion.format.tolerance(conversion.mode)
    indices = data.subset(conversion.data.validation_samples, conversion.data.seed + 1)
    binding = InputBinding.bind(data, conversion.shapes)
    samples, artifact_rows = [], []
    with runner:
        names = [spec.name for spec in runner.inputs]
        by_name = sorted(names) == sorted(name for name, _ in binding.model_inputs)
        output_names = [spec.name for spec in runner.outputs]
        for sample in data.samples(indices):
            fitted = binding.fit(sample, str(data.path))
            samples.append(fitted)
            feed = fitted if by_name else {name: fitted[model_name] for name, (model_name, _) in zip(names, binding.model_inputs)}
            result = runner.infer(feed)
            artifact_rows.append([np.asarray(result[name])[0] for name in output_names])
    artifact = [np.stack([row[index] for row in artifact_rows]) for index in range(len(output_names))]
    source = source_outputs(samples)
    pairs = _pair_outputs(artifact, source, conversion)
    given = _output_kinds(conversion, output_names)
    records = [judge_output(name, ours, theirs, tolerance, given) for name, (ours, theirs) in zip(output_names, pairs)]
    failed = failures(records)
    report: dict[str, Any] = {"status": "failed" if failed else "passed", "samples": len(samples), **summary(records, tolerance), "outputs": records}
    if failed:
        report["failures"] = failed
    # The kinds' own figures (top-1, decision agreement, mask IoU...) that look weak are named with a warning.
    weak = weak_outputs({record["name"]: record["by_kind"] for record in records if record.get("by_kind") and record["kind"] != "detections"})
    if weak:
        report["weak_outputs"] = weak
        for line in weak:
            print(f"warning: validation of the {conversion.mode} {conversion.format.name} model against {conversion.source_label}: {line}", file=sys.stderr)
    return report


def validation_failure(conversion: Conversion, report: dict[str, Any], fix: str, kept: bool = False) -> ConversionError:
    """The error of a failed validation: every output and figure that failed, with its threshold, and a true fix."""
    from edge_sdk.conversion_gate import collapsed_scores

    fixes = [fix]
    if collapsed_scores(report["outputs"]):
        fixes.append("a packed detector output's score rows share one quantization scale with its large box coordinates: "
                     "keep the node that packs them (its final Concat) in float with --exclude-nodes NAME (`edge-sdk debug` ranks the layers and names them)")
    if conversion.mode == INT8 and INT16X8 in conversion.format.modes:
        fixes.append(f"or try --quant {INT16X8} (16-bit activations)")
    if not kept:
        fixes.append("add --keep-failed to keep the artifact (its manifest marked failed) and run `edge-sdk debug` on it")
    return ConversionError(
        f"the {conversion.mode} {conversion.format.name} model does not behave like {conversion.source_label} "
        f"(validation on {report['samples']} real samples, the format table's {conversion.format.name} {conversion.mode} tolerances): "
        + "; ".join(f"on output {line}" for line in report["failures"]),
        fix="; ".join(fixes),
    )


def _output_kinds(conversion: Conversion, output_names: list[str]) -> OutputKinds:
    """What the user said about the outputs (`--output-kind`), checked against the artifact's output names."""
    given = conversion.data.output_kinds
    unknown = sorted(set(given.kinds) - set(output_names))
    if unknown:
        raise UsageError(f"--output-kind names {', '.join(unknown)}, which the {conversion.format.name} model does not output (its outputs: {', '.join(output_names)})",
                         fix="name one of the artifact's outputs (edge-sdk inspect lists them)")
    return given


def _pair_outputs(artifact: list[np.ndarray], source: list[np.ndarray], conversion: Conversion) -> list[tuple[np.ndarray, np.ndarray]]:
    """Artifact outputs with the source output each one stands for: by position, or by shape when positions moved."""
    if len(artifact) != len(source):
        raise ConversionError(f"the {conversion.format.name} model has {len(artifact)} outputs, its source {conversion.source_label} has {len(source)}",
                              fix="report this model: the converter changed the model's outputs")
    pairs, unused = [], list(range(len(source)))
    for index, ours in enumerate(artifact):
        same = [i for i in unused if np.shape(source[i]) == np.shape(ours)]
        if not same:
            raise ConversionError(f"output {index} of the {conversion.format.name} model has shape {np.shape(ours)[1:]}, which no output of {conversion.source_label} has",
                                  fix="check the input shapes (--input-shape)")
        chosen = index if index in same else same[0]
        unused.remove(chosen)
        pairs.append((ours, source[chosen]))
    return pairs
