"""Benchmark artifacts on real data: load time, latency distribution, memory, accuracy against labels
and fidelity against the float reference model on the same inputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk import latency, metrics
from edge_sdk.artifact import load_artifact
from edge_sdk.data import Dataset, InputBinding, PreprocessSpec, check_data_path
from edge_sdk.environment import describe_machine, reset_peak_rss, rss_bytes
from edge_sdk.checkpoint import BenchCheckpoint, result_key
from edge_sdk.io_model import checked_infer
from edge_sdk.bench_io import add_streaming, describe_artifact, per_sample_rows, preprocess_overrides, with_manifest_io  # noqa: F401 - describe_artifact re-exported
from edge_sdk.fidelity import OutputKinds
from edge_sdk.errors import DataFileError, EdgeSdkError, InterruptedRun, OutputWriteError, UsageError
from edge_sdk.loaders.torch_weights import TorchModelSpec
from edge_sdk.model_safety import trusting_model_code
from edge_sdk.progress import Progress
from edge_sdk.reference_compare import Evaluation, accuracy_record, compare_to_reference  # noqa: F401 - re-exported
from edge_sdk.reference_eval import REFERENCE_OUTPUTS, MeasureRequest, ReferenceCache, TorchReference, content_hash  # noqa: F401 - re-exported
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


def bench(
    artifacts: list[Path],
    data: Path,
    *,
    reference: Path | TorchModelSpec | None = None,
    settings: BenchSettings | None = None,
    preprocess: dict[str, Any] | None = None,
    input_key: str | None = None,
    label_key: str | None = None,
    progress: Progress | None = None,
    checkpoint: BenchCheckpoint | None = None,
) -> list[BenchResult]:
    """Benchmark each artifact on `data`; one result per artifact (failed ones carry status 'error').

    `reference`: the float model file, or a PyTorch model (edge_sdk.reference_eval: fed as each artifact's manifest says).
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
    references = ReferenceCache(reference if isinstance(reference, TorchModelSpec) else Path(reference), settings, progress) if reference else None
    if references:
        # A missing or unreadable reference, one that carries code, a PyTorch model that does not build or whose
        # layout an artifact's manifest does not record, fails before any work.
        references.check(artifacts)
    environment = describe_machine()
    keys = [result_key(Path(path), Path(data), references.source if references else None, settings.to_dict(), preprocess or {}, input_key, label_key, settings.target) for path in artifacts] if checkpoint else []
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
            reference_eval = references.outputs_for(dataset, indices, input_key, label_key, manifest=artifact.manifest, artifact=path.name)
            result.reference = compare_to_reference(references, reference_eval, evaluation, measured_settings)
        except DataFileError:
            raise
        except EdgeSdkError as error:
            # The artifact's own figures stand; the comparison with the reference is what failed.
            result.status, result.error = "error", f"{error}" if str(error).startswith("reference ") else f"reference {references.name}: {error}"
    return result


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
    path, settings = Path(request.model), request.settings
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


def evaluate_reference(request: MeasureRequest, phase: Any = None, progress: Progress | None = None) -> tuple[Evaluation, dict[str, Any]]:
    """Run the float reference on the selected samples (in the worker process); its outputs and description."""
    phase = phase or (lambda name: None)
    dataset = Dataset(request.data_path, request.spec, input_key=request.input_key, label_key=request.label_key)
    with trusting_model_code(request.trust_model):
        if isinstance(request.model, TorchReference):
            from targets.runners.pytorch import PyTorchRunner

            runner: BaseRunner = PyTorchRunner(request.model, request.settings.runner)
        else:
            runner = runner_for(request.model, request.settings.runner)
        phase("loading")
        with runner:
            phase("running")
            evaluation = evaluate(runner, dataset, request.indices, progress or Progress(enabled=False), f"reference {runner.path.name}",
                                  batch_axes=request.settings.batch_axes)
            add_streaming(evaluation, runner, dataset, request.indices, request.settings)
            return evaluation, runner.describe()
