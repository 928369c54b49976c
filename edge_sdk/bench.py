"""Benchmark artifacts on real data: load time, latency distribution, memory, accuracy against labels
and fidelity against the float reference model on the same inputs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk import latency, metrics, stats
from edge_sdk._lazy import require
from edge_sdk.artifact import Artifact, load_artifact
from edge_sdk.data import Dataset, InputBinding, PreprocessSpec, check_data_path
from edge_sdk.environment import describe_machine, reset_peak_rss, rss_bytes
from edge_sdk.checkpoint import BenchCheckpoint, result_key
from edge_sdk.io_model import checked_infer
from edge_sdk.bench_io import add_streaming, check_labels, per_sample_rows, preprocess_overrides, with_manifest_io
from edge_sdk.fidelity import OutputKinds, compare_outputs, primary_fidelity
from edge_sdk.errors import DataError, DataFileError, EdgeSdkError, InterruptedRun, OutputWriteError, UsageError
from edge_sdk.fileio import gzip_size_of, sha256_of, size_of
from edge_sdk.model_safety import check_model_file, trusting_model_code
from edge_sdk.models import detect_model_kind
from edge_sdk.progress import Progress
from edge_sdk.reference_eval import REFERENCE_OUTPUTS, ReferenceCache, ReferenceRequest, content_hash  # noqa: F401 - re-exported
from edge_sdk.results import BenchResult
from targets.runners import runner_for
from targets.runners.base import BaseRunner, RunnerOptions


@dataclass
class BenchSettings:
    """How to measure. `max_samples` evaluates a deterministic (seeded) subset of the data."""

    runs: int = 100
    warmup: int = 10
    max_samples: int | None = None
    seed: int = 0
    runner: RunnerOptions = field(default_factory=RunnerOptions)
    target: str = "desktop"
    # Self-validating latency (edge_sdk.latency): set either to time adaptively instead of `runs` fixed runs.
    latency_target: float | None = None  # wanted 95 % half-width of the median, as a fraction (0.01 = +-1 %)
    time_budget_s: float | None = None
    cold_start: bool = False  # also time process start to first result in a fresh process
    max_drop_points: float | None = None  # accuracy gate: budget for the upper bound of the drop vs the reference
    # Crash isolation (edge_sdk.isolation): each artifact loads and runs in a worker process with these limits.
    # They change what may fail, not what is measured, so they are not part of `to_dict()` (nor of resume keys).
    isolate: bool = True
    # Refuse an artifact whose sha256 does not match its manifest (False: --no-verify, results say "unverified").
    verify: bool = True
    timeout_s: float | None = 600.0
    memory_limit_bytes: int | None = None
    # The I/O model (edge_sdk.io_model, edge_sdk.fidelity): where each input's batch axis goes (--batch-axis), what
    # each output is (--output-kind, --threshold) and the state pairs carried through sequences (--state).
    batch_axes: dict[str, int | None] = field(default_factory=dict)
    output_kinds: OutputKinds = field(default_factory=OutputKinds)
    state_pairs: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.runs < 1:
            raise UsageError(f"--runs {self.runs} must be at least 1")
        if self.warmup < 0:
            raise UsageError(f"--warmup {self.warmup} must not be negative")
        if self.max_samples is not None and self.max_samples < 1:
            raise UsageError(f"--samples {self.max_samples} must be at least 1", fix="leave --samples out to evaluate every sample")
        if self.seed < 0:
            raise UsageError(f"--seed {self.seed} must be 0 or more")
        if self.runner.threads is not None and self.runner.threads < 1:
            raise UsageError(f"--threads {self.runner.threads} must be at least 1")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise UsageError(f"--timeout {self.timeout_s:g} must be more than 0 seconds")
        if self.memory_limit_bytes is not None and self.memory_limit_bytes < 2**20:
            raise UsageError(f"--memory-limit {self.memory_limit_bytes} bytes is below 1 MiB", fix="give it in MiB, e.g. --memory-limit 2048")

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": self.runs, "warmup": self.warmup, "max_samples": self.max_samples, "seed": self.seed, "runner": self.runner.to_dict(),
            "latency_target": self.latency_target, "time_budget_s": self.time_budget_s, "cold_start": self.cold_start, "max_drop_points": self.max_drop_points,
            **_io_settings(self),
        }

    @property
    def adaptive_latency(self) -> bool:
        return self.latency_target is not None or self.time_budget_s is not None


@dataclass
class Evaluation:
    outputs: np.ndarray  # the primary (first) output, one row per sample: accuracy against labels reads it
    labels: np.ndarray | None
    first_inference_ms: float
    cache: str = "computed"  # float references only: "reused" when taken from REFERENCE_OUTPUTS
    # Every output by name, one row per sample (fidelity compares each by its kind); None where not collected.
    all_outputs: dict[str, np.ndarray] | None = None
    # Stateful models (edge_sdk.streaming): the state pairs used, and every output with the model carrying its
    # own state through each sequence of the data.
    state_pairs: list[tuple[str, str]] | None = None
    streaming_outputs: dict[str, np.ndarray] | None = None


def bench(
    artifacts: list[Path],
    data: Path,
    *,
    reference: Path | None = None,
    settings: BenchSettings | None = None,
    preprocess: dict[str, Any] | None = None,
    input_key: str | None = None,
    label_key: str | None = None,
    progress: Progress | None = None,
    checkpoint: BenchCheckpoint | None = None,
) -> list[BenchResult]:
    """Benchmark each artifact on `data`; one result per artifact (failed ones carry status 'error').

    Each artifact loads and runs in a worker process (edge_sdk.isolation) unless `settings.isolate` is False.
    With a `checkpoint` (edge_sdk.checkpoint), every finished result is saved at once, and results it already
    holds for the same files and settings are reused instead of measured again.
    """
    settings = settings or BenchSettings()
    progress = progress or Progress(enabled=False)
    if not artifacts:
        raise UsageError("no artifacts to benchmark")
    PreprocessSpec.from_dict(preprocess)  # bad preprocessing flags fail once, before any work, not once per artifact
    check_data_path(Path(data))
    references = ReferenceCache(Path(reference), settings, progress) if reference else None
    if reference:
        # A missing or unreadable reference, or one that carries code, fails before any work.
        check_model_file(Path(reference), detect_model_kind(Path(reference)))
    environment = describe_machine()
    keys = [result_key(Path(path), Path(data), reference, settings.to_dict(), preprocess or {}, input_key, label_key, settings.target) for path in artifacts] if checkpoint else []
    if checkpoint:
        checkpoint.check_all_reusable(keys)
    results: list[BenchResult] = []
    for index, path in enumerate(artifacts):
        finished = checkpoint.finished(keys[index]) if checkpoint else None
        if finished is not None:
            progress.step("bench", f"{Path(path).name} (finished in an earlier run, taken from {checkpoint.path})")  # type: ignore[union-attr]
            results.append(BenchResult(**{key: value for key, value in finished.items() if key != "schema_version"}))
            continue
        progress.step("bench", Path(path).name)
        try:
            result = _bench_one(Path(path), Path(data), references, settings, preprocess or {}, input_key, label_key, environment, progress)
        except DataFileError as error:
            # The data itself is unusable: every artifact would fail the same way, so stop now (exit 4).
            done = f" ({_unfinished(artifacts, index, checkpoint)})" if index else ""
            raise DataFileError(f"{error.message}{done}", fix=error.fix) from None
        except EdgeSdkError as error:
            # Recorded, not raised: the other artifacts still run; the caller reports failures.
            result = BenchResult(
                artifact={"path": str(path), "name": Path(path).name},
                target={"name": settings.target, "transport": "local"},
                data={"path": str(data)},
                settings=settings.to_dict(),
                environment=environment,
                status="error",
                error=str(error),
                exit_code=error.exit_code,
            )
        except KeyboardInterrupt:
            raise InterruptedRun(f"interrupted while benchmarking {Path(path).name}: {_unfinished(artifacts, index, checkpoint)}",
                                 fix="run the same command again to resume" if checkpoint else "give -o to keep finished results") from None
        results.append(result)
        if checkpoint:
            try:
                checkpoint.record(keys[index], result.to_dict())
            except OutputWriteError as error:
                raise OutputWriteError(f"{error.message}; {_unfinished(artifacts, index, checkpoint)}", fix=error.fix) from error
    return results


def _unfinished(artifacts: list[Path], index: int, checkpoint: BenchCheckpoint | None) -> str:
    kept = f", kept in {checkpoint.path}" if checkpoint else " (not saved: no results file was given)"
    names = ", ".join(Path(path).name for path in artifacts[index:])
    return f"{index} of {len(artifacts)} artifact(s) finished{kept}; not finished: {names}"


def _bench_one(
    path: Path,
    data_path: Path,
    references: ReferenceCache | None,
    settings: BenchSettings,
    overrides: dict[str, Any],
    input_key: str | None,
    label_key: str | None,
    environment: dict[str, Any],
    progress: Progress,
) -> BenchResult:
    artifact = load_artifact(path, verify=settings.verify)
    # Measured with what the manifest declares about the I/O; recorded with what the user asked for.
    measured_settings = with_manifest_io(settings, artifact.manifest)
    spec = PreprocessSpec.from_dict(artifact.preprocess).merged(overrides)
    overridden = preprocess_overrides(artifact.preprocess, overrides)
    dataset = Dataset(data_path, spec, input_key=input_key, label_key=label_key)
    indices = dataset.subset(settings.max_samples, settings.seed)
    if dataset.sequence_ids is not None:
        from edge_sdk.streaming import sequence_subset

        indices = sequence_subset(dataset.sequence_ids, settings.max_samples, settings.seed)  # whole sequences
    request = MeasureRequest(path, data_path, spec, input_key, label_key, indices, measured_settings)
    if settings.isolate:
        from edge_sdk.isolation import IsolationLimits, run_isolated

        progress.message(f"measuring {path.name} in a worker process ...")  # its framework output goes to the worker's log
        limits = IsolationLimits(settings.timeout_s, settings.memory_limit_bytes)
        measured: Measurement = run_isolated("edge_sdk.bench:measure", request, label=path.name, limits=limits)
    else:
        from edge_sdk.quiet import framework_output

        with framework_output(f"measuring {path.name}"):
            measured = measure(request, progress=progress)
    evaluation = measured.evaluation
    latencies_ms = measured.stability.latencies_ms
    result = BenchResult(
        artifact=describe_artifact(artifact, measured.io),
        target={"name": settings.target, "transport": "local", "host": None},
        data={**dataset.describe(), "evaluated_samples": int(evaluation.outputs.shape[0]), **({"preprocess_overrides": overridden} if overridden else {})},
        settings={**settings.to_dict(), "runtime": measured.runtime},
        environment=environment,
        timing={
            "load_ms": measured.load_ms,
            "first_inference_ms": evaluation.first_inference_ms,
            "latency": metrics.latency_stats(latencies_ms),
            "latencies_ms": [round(value, 6) for value in latencies_ms],
            "stability": measured.stability.to_dict(),
            "cold_start": measured.cold_start,
        },
        memory={"peak_rss_bytes": measured.peak_rss_bytes, "rss_increase_bytes": max(0, measured.peak_rss_bytes - measured.rss_before_bytes)},
        accuracy=accuracy_record(evaluation, settings.seed),
    )
    if references is not None:
        try:
            reference_eval = references.outputs_for(dataset, indices, input_key, label_key)
            result.reference = compare_to_reference(references, reference_eval, evaluation, measured_settings)
        except DataFileError:
            raise
        except EdgeSdkError as error:
            # The artifact's own figures stand; the comparison with the reference is what failed.
            result.status, result.error = "error", f"{error}" if str(error).startswith("reference ") else f"reference {references.path.name}: {error}"
    return result


@dataclass
class MeasureRequest:
    """What the worker needs to load, evaluate and time one artifact (the host already chose the samples)."""

    path: Path
    data_path: Path
    spec: PreprocessSpec
    input_key: str | None
    label_key: str | None
    indices: list[int] | None
    settings: BenchSettings


@dataclass
class Measurement:
    """What the worker sends back; accuracy and fidelity are computed from `evaluation` on the host."""

    evaluation: Evaluation
    stability: latency.LatencyMeasurement
    runtime: dict[str, Any]
    io: dict[str, Any]
    load_ms: float
    peak_rss_bytes: int
    rss_before_bytes: int
    cold_start: dict[str, Any] | None


def measure(request: MeasureRequest, phase: Any = None, progress: Progress | None = None) -> Measurement:
    """Load the artifact, evaluate every selected sample and time it. Runs in the worker process (see
    edge_sdk.isolation), so peak RSS is the worker's own: the runtime, the model and the data, nothing else."""
    phase = phase or (lambda name: None)
    progress = progress or Progress(enabled=False)
    path, settings = request.path, request.settings
    dataset = Dataset(request.data_path, request.spec, input_key=request.input_key, label_key=request.label_key)
    runner = runner_for(path, settings.runner)
    reset_peak_rss()
    rss_before, _ = rss_bytes()
    phase("loading")
    with runner:
        phase("running")
        evaluation = evaluate(runner, dataset, request.indices, progress, f"evaluate {path.name}", batch_axes=settings.batch_axes)
        add_streaming(evaluation, runner, dataset, request.indices, settings)
        stability = _timed_latency(runner, dataset, settings, progress, path.name)
        runtime = runner.describe()
        io = {"inputs": [s.to_dict() for s in runner.inputs], "outputs": [s.to_dict() for s in runner.outputs]}
    _, peak_rss = rss_bytes()
    cold_start = _cold_start(path, runner, dataset, settings) if settings.cold_start else None
    return Measurement(evaluation, stability, runtime, io, (runner.load_time_s or 0.0) * 1000.0, peak_rss, rss_before, cold_start)


def _timed_latency(runner: BaseRunner, dataset: Dataset, settings: BenchSettings, progress: Progress, label: str) -> latency.LatencyMeasurement:
    """Fixed `runs` (then judged for noise), or adaptive timing when a latency target or time budget is set."""
    if not settings.adaptive_latency:
        return latency.assess_fixed_runs(time_runs(runner, dataset, settings, progress, label), settings.warmup)
    policy_settings = {"target_relative_half_width": settings.latency_target, "time_budget_s": settings.time_budget_s}
    policy = latency.LatencyPolicy(**{key: value for key, value in policy_settings.items() if value is not None})
    inputs = _first_inputs(runner, dataset, settings.batch_axes)

    def one_run() -> float:
        _checked_infer(runner, inputs)
        return (runner.inference_time_s or 0.0) * 1000.0

    progress.message(f"timing {label} until the median is known to +-{100 * policy.target_relative_half_width:g} % (budget {policy.time_budget_s:g} s) ...")
    return latency.measure_latency(one_run, policy)


def _first_inputs(runner: BaseRunner, dataset: Dataset, batch_axes: dict[str, int | None] | None = None) -> dict[str, np.ndarray]:
    binding = InputBinding.bind(dataset, [(spec.name, spec.dims or spec.shape) for spec in runner.inputs], batch_axes)
    return binding.fit(next(iter(dataset.samples([0]))), str(dataset.path))


def _cold_start(path: Path, runner: BaseRunner, dataset: Dataset, settings: BenchSettings) -> dict[str, Any]:
    inputs = _first_inputs(runner, dataset, settings.batch_axes)
    return latency.cold_start_ms(path, {spec.name: inputs[spec.name] for spec in runner.inputs}, settings.runner.to_dict())


def evaluate(runner: BaseRunner, dataset: Dataset, indices: list[int] | None, progress: Progress, label: str, batch_size: int = 64,
             batch_axes: dict[str, int | None] | None = None) -> Evaluation:
    """Run every selected sample once; returns every output of each (by name), the primary (first) one, and labels.

    Runners that take any batch size (the float reference) get `batch_size` samples per call when every input is
    batch-first; artifacts run one sample per call, as they will on the device.
    """
    binding = InputBinding.bind(dataset, [(spec.name, spec.dims or spec.shape) for spec in runner.inputs], batch_axes)
    total = dataset.num_samples if indices is None else len(indices)
    per_call = batch_size if runner.supports_batching and not any(axis not in (None, 0) for axis in binding.batch_axes.values()) else 1
    outputs: dict[str, list[np.ndarray]] = {spec.name: [] for spec in runner.outputs}
    labels: list[int] = []
    first_ms: float | None = None
    pending: list[dict[str, np.ndarray]] = []

    def flush() -> None:
        nonlocal first_ms
        batch = pending[0] if len(pending) == 1 else {name: np.concatenate([p[name] for p in pending]) for name in pending[0]}
        result = _checked_infer(runner, batch)
        if first_ms is None:
            first_ms = (runner.inference_time_s or 0.0) * 1000.0
        for name, value in result.items():
            outputs.setdefault(name, []).extend(per_sample_rows(value, len(pending)))
        task.advance(len(pending))
        pending.clear()

    with progress.task(label, total) as task:
        for sample in dataset.samples(indices):
            pending.append(binding.fit(sample, str(dataset.path)))
            if sample.label is not None:
                labels.append(sample.label)
            if len(pending) == per_call:
                flush()
        if pending:
            flush()
    stacked = {name: np.stack(rows) for name, rows in outputs.items() if rows}
    primary = stacked[runner.outputs[0].name]
    return Evaluation(primary, np.asarray(labels) if labels and len(labels) == len(primary) else None, first_ms or 0.0, all_outputs=stacked)


def time_runs(runner: BaseRunner, dataset: Dataset, settings: BenchSettings, progress: Progress, label: str) -> list[float]:
    """Warm up, then time `runs` runtime calls on the first sample; the runner times the call alone."""
    inputs = _first_inputs(runner, dataset, settings.batch_axes)
    for _ in range(settings.warmup):
        _checked_infer(runner, inputs)
    latencies = []
    with progress.task(f"time {label}", settings.runs) as task:
        for _ in range(settings.runs):
            _checked_infer(runner, inputs)
            latencies.append((runner.inference_time_s or 0.0) * 1000.0)
            task.advance()
    return latencies


_checked_infer = checked_infer  # the runtime's errors as RuntimeFailure (edge_sdk.io_model)


def _top1_correct(evaluation: Evaluation) -> np.ndarray | None:
    outputs = evaluation.outputs.reshape(evaluation.outputs.shape[0], -1)
    if evaluation.labels is None or outputs.shape[1] < 2:
        return None
    return np.argmax(outputs, axis=1) == evaluation.labels


def accuracy_record(evaluation: Evaluation, seed: int = 0) -> dict[str, Any] | None:
    outputs = evaluation.outputs.reshape(evaluation.outputs.shape[0], -1)
    if evaluation.labels is None or outputs.shape[1] < 2:
        return None
    check_labels(evaluation.labels, outputs.shape[1])
    accuracy: dict[str, Any] = {"samples": int(outputs.shape[0]), "top1": metrics.topk_accuracy(outputs, evaluation.labels, 1)}
    accuracy["top1_ci"] = stats.accuracy_interval(_top1_correct(evaluation), seed=seed).to_dict()  # type: ignore[arg-type]
    if outputs.shape[1] > 5:
        accuracy["top5"] = metrics.topk_accuracy(outputs, evaluation.labels, 5)
    return accuracy


def compare_to_reference(references: ReferenceCache, reference: Evaluation, evaluation: Evaluation, settings: BenchSettings | None = None) -> dict[str, Any]:
    settings = settings or BenchSettings()
    if reference.outputs.shape != evaluation.outputs.shape:
        raise DataError(f"reference {references.path.name}: its outputs have shape {reference.outputs.shape[1:]} per sample, the artifact's {evaluation.outputs.shape[1:]}",
                        fix="give the float model this artifact was converted from as --reference")
    payload: dict[str, Any] = {
        "path": str(references.path),
        "runtime": references.description,
        "cache": reference.cache,
        "fidelity": primary_fidelity(evaluation.outputs, reference.outputs),
    }
    given = settings.output_kinds
    if evaluation.state_pairs:
        given = dataclasses.replace(given, state_outputs=frozenset(output for _, output in evaluation.state_pairs))
        payload["state_pairs"] = [list(pair) for pair in evaluation.state_pairs]
    if reference.all_outputs and evaluation.all_outputs:
        # Every output, each by its kind (edge_sdk.fidelity): never pooled, never only the first. Per step: each
        # model got the state recorded in the data.
        payload["outputs"] = compare_outputs(evaluation.all_outputs, reference.all_outputs, given)
    primary = (payload.get("outputs") or {}).get(next(iter(reference.all_outputs or {}), ""))
    if primary and primary.get("kind") not in (None, "class_scores"):
        # Top-1 over a flattened map or a regressor is no figure of that output (its kind's figures are in `outputs`).
        payload["fidelity"]["top1_agreement"] = None
    if reference.streaming_outputs and evaluation.streaming_outputs:
        # Streaming: each model carried its own state through each sequence.
        payload["streaming"] = {"outputs": compare_outputs(evaluation.streaming_outputs, reference.streaming_outputs, given)}
    reference_accuracy = accuracy_record(reference, settings.seed)
    artifact_accuracy = accuracy_record(evaluation, settings.seed)
    if reference_accuracy is not None and artifact_accuracy is not None:
        payload["accuracy"] = reference_accuracy
        payload["accuracy_drop_points"] = 100.0 * (reference_accuracy["top1"] - artifact_accuracy["top1"])
        drop = stats.paired_drop_interval(_top1_correct(reference), _top1_correct(evaluation), seed=settings.seed)  # type: ignore[arg-type]
        payload["accuracy_drop_ci_points"] = drop.to_dict()
        if settings.max_drop_points is not None:
            from edge_sdk.gate import gate_record

            payload["gate"] = gate_record(drop, settings.max_drop_points, artifact_accuracy["top1"])
    return payload


def _io_settings(settings: BenchSettings) -> dict[str, Any]:
    """The I/O settings that change what is measured (only when given, so older results keep their keys)."""
    given: dict[str, Any] = {}
    if settings.batch_axes:
        given["batch_axes"] = dict(settings.batch_axes)
    if settings.output_kinds.kinds or settings.output_kinds.thresholds:
        given["output_kinds"] = settings.output_kinds.to_dict()
    if settings.state_pairs:
        given["state_pairs"] = [list(pair) for pair in settings.state_pairs]
    return given


def describe_artifact(artifact: Artifact, io: dict[str, Any]) -> dict[str, Any]:
    """The artifact part of a result: what the file is (from its manifest, or guessed from its I/O without one)."""
    path, manifest = artifact.path, artifact.manifest
    fmt = (manifest.format if manifest else "") or detect_model_kind(path)
    mode = (manifest.mode if manifest else "") or _guess_precision(io)
    data_files = [path.parent / str(entry.get("path", "")) for entry in (manifest.external_data if manifest else [])]
    if manifest is None and fmt == "onnx":
        # No manifest to list them: the graph itself names its external data files (a 24 KB graph may hold 1.6 MB).
        from edge_sdk.loaders.onnx_intake import external_data_files

        onnx = require("onnx", "reading .onnx files")
        data_files = [path.parent / name for name in external_data_files(onnx.load(str(path), load_external_data=False))]
    external = sum(size_of(data) for data in data_files if data.is_file())
    return {
        "path": str(path),
        "name": path.name,
        "format": fmt,
        "mode": mode,
        "has_manifest": manifest is not None,
        "verified": artifact.verified,
        "verification": artifact.verification_problem,
        # Kept by `convert --keep-failed` although it failed validation: run and reported, flagged everywhere.
        "validation_failed": bool(manifest and manifest.failed_validation),
        "validation_failures": list((manifest.validation or {}).get("failures") or []) if manifest and manifest.failed_validation else [],
        "manifest_warnings": list(manifest.warnings) if manifest else [],
        "size_bytes": size_of(path) + external,
        "gzip_size_bytes": gzip_size_of(path) if path.is_file() else None,
        "sha256": sha256_of(path),
        "io": io,
    }


def _guess_precision(io: dict[str, Any]) -> str:
    """Without a manifest: the input's integer type names the precision, else 'float'."""
    dtype = io["inputs"][0]["dtype"] if io["inputs"] else "float32"
    from edge_sdk.formats import PRECISION_OF_INPUT_DTYPE, UNKNOWN_FLOAT

    return PRECISION_OF_INPUT_DTYPE.get(dtype, UNKNOWN_FLOAT)


def evaluate_reference(request: ReferenceRequest, phase: Any = None, progress: Progress | None = None) -> tuple[Evaluation, dict[str, Any]]:
    """Run the float reference on the selected samples (in the worker process); its outputs and description."""
    phase = phase or (lambda name: None)
    dataset = Dataset(request.data_path, request.spec, input_key=request.input_key, label_key=request.label_key)
    with trusting_model_code(request.trust_model):
        runner = runner_for(request.path, request.settings.runner)
        phase("loading")
        with runner:
            phase("running")
            evaluation = evaluate(runner, dataset, request.indices, progress or Progress(enabled=False), f"reference {request.path.name}",
                                  batch_axes=request.settings.batch_axes)
            add_streaming(evaluation, runner, dataset, request.indices, request.settings)
            return evaluation, runner.describe()
