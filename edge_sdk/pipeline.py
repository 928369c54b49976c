"""`edge-sdk pipeline edge.yaml`: every model to every format and mode, every artifact benched on every target
against its float reference (and its teacher, where one is named), then results.json, report.html, report.md.
A `kind: ssh` target is a device: its benches go through edge_sdk.api.bench_on_devices, the code path of
`edge-sdk bench --target PROFILE --host URL`; a failing device gives error results for its target, the other targets
still report, and after results and reports are written the run raises DeviceError naming it.

Re-running skips work whose inputs did not change: a conversion is keyed by the source's sha256, the format,
mode, preprocessing, the data files' sha256 and the toolchain versions; a bench by the artifact's sha256, the
reference's, the data's, the target and the bench settings (`pipeline-cache.json` in the output folder).

`accuracy_budget.max_drop_points` is the accuracy gate of `edge-sdk bench --max-drop` (edge_sdk/gate.py): after every
result and report is written, an artifact whose drop's 95 % upper bound exceeds the budget raises AccuracyGateError.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_sdk.errors import DataError, InterruptedRun, ModelFileError
from edge_sdk.fileio import check_writable_folder, output_lock, sha256_of, write_bytes_atomic, write_json_atomic
from edge_sdk.loaders.torch_weights import TorchModelSpec
from edge_sdk.model_safety import trusting_model_code
from edge_sdk.pipeline_config import ModelEntry, PipelineConfig, TargetEntry, load_config
from edge_sdk.progress import Progress

CACHE_FILE = "pipeline-cache.json"
TOOLCHAIN = ("tensorflow", "tf-keras", "keras", "tensorflow-model-optimization", "onnx", "onnxruntime", "tf2onnx", "torch", "ai-edge-litert", "numpy")


@dataclass
class PipelineRun:
    """What one run did: per artifact, whether it was converted or taken from the cache, and the outputs written."""

    output: Path
    converted: list[str] = field(default_factory=list)
    conversions_cached: list[str] = field(default_factory=list)
    benched: list[str] = field(default_factory=list)
    benches_cached: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    verdict: str = ""  # the report's verdict as plain text, for the end of the terminal output


def run_pipeline(config_path: str | Path, progress: Progress | None = None) -> PipelineRun:
    """Run the pipeline file `config_path`; see the module docstring. An output folder that cannot be written, or
    that another pipeline is writing (an advisory lock), is refused before any work."""
    config = load_config(config_path)
    check_writable_folder(config.output, "pipeline output folder")
    with output_lock(config.output / "results.json", "pipeline output"):
        return _run(config, progress or Progress(enabled=False))


def _run(config: PipelineConfig, progress: Progress) -> PipelineRun:
    from edge_sdk.version import __version__
    from edge_sdk.environment import package_versions

    config.output.mkdir(parents=True, exist_ok=True)
    run = PipelineRun(config.output)
    cache_path = config.output / CACHE_FILE
    cache = _read_cache(cache_path)
    toolchain = {"edge-sdk": __version__, **package_versions(TOOLCHAIN)}
    data_hashes = {"evaluation": sha256_of(config.evaluation_data), "calibration": sha256_of(config.calibration_data) if config.calibration_data else None}
    artifacts: dict[str, list[Path]] = {}
    results = []
    steps = sum(len(modes) for model in config.models for modes in model.formats.values())
    progress.begin(steps * (1 + len(config.targets)) + 1)  # every conversion, every bench, the reports
    try:  # every finished conversion and bench is in the cache at once (_convert, _bench): a re-run resumes
        for model in config.models:
            artifacts[model.name] = [_convert(model, fmt, mode, config, cache, toolchain, data_hashes, run, progress) for fmt, modes in model.formats.items() for mode in modes]
        for target in config.targets:
            bench_artifacts = _bench_on_device if target.on_device else _bench_here
            for model in config.models:
                teacher = next((m for m in config.models if m.name == model.teacher), None)
                measured = bench_artifacts(artifacts[model.name], model, teacher, target, config, cache, data_hashes, run, progress)
                for path, (result, teacher_fidelity) in zip(artifacts[model.name], measured):
                    results.append(result)
                    run.rows.append(_row(model, target, path, result, teacher_fidelity, config.max_drop_points))
    except (KeyboardInterrupt, InterruptedRun):
        raise InterruptedRun(_unfinished_steps(config, run), fix="run the same command again: finished steps are taken from the cache") from None
    _write_json_cache(cache_path, cache)
    progress.step("report", str(config.output))
    _write_outputs(config, results, run)
    progress.end()
    _check_device_targets(config, run)
    _check_accuracy_budget(results, run)
    return run


def _check_device_targets(config: PipelineConfig, run: PipelineRun) -> None:
    """A device that failed (unreachable, refused, runtime missing, crashed) leaves error results for its target
    while every other target reports; after results and reports are written, the run fails naming it."""
    from edge_sdk.errors import DeviceError

    failures = []
    for target in (t for t in config.targets if t.on_device):
        rows = [row for row in run.rows if row["target"] == target.name]
        failed = [row for row in rows if row["status"] != "ok"]
        if failed:
            failures.append(f"target {target.name} ({target.url}): {len(failed)} of {len(rows)} benches failed; first: {failed[0]['artifact']}: {failed[0]['error']}")
    if failures:
        written = ", ".join(str(path) for path in run.files.values())
        raise DeviceError("\n".join(failures) + f"\n  results and reports written: {written}",
                          fix="fix the device or the target's settings in the pipeline file, then run it again: finished benches are taken from the cache")


def _check_accuracy_budget(results: list[Any], run: PipelineRun) -> None:
    """`accuracy_budget.max_drop_points` is the gate of `bench --max-drop`: judged on the upper bound of the drop's
    95 % interval, and checked only after results and reports are written, so a failed gate leaves them to read."""
    from edge_sdk.gate import AccuracyGateError, check_gate

    try:
        check_gate(results)
    except AccuracyGateError as error:
        written = ", ".join(str(path) for path in run.files.values())
        raise AccuracyGateError(f"{error.message}\n  results and reports written: {written}", fix=error.fix) from None


def _key(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _read_cache(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"conversions": {}, "benches": {}}
    try:
        cache = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise DataError(f"pipeline cache {path} is not valid JSON: {error}", fix="delete it; the next run rebuilds everything") from error
    if not isinstance(cache, dict) or not all(isinstance(cache.get(part), dict) for part in ("conversions", "benches")):
        raise DataError(f"pipeline cache {path} is not a cache this edge-sdk wrote (no conversions/benches mappings)", fix="delete it; the next run rebuilds everything")
    return cache


def _write_json_cache(path: Path, cache: dict[str, Any]) -> None:
    write_json_atomic(path, cache)


def _unfinished_steps(config: PipelineConfig, run: PipelineRun) -> str:
    """What an interrupted run finished (kept in the cache) and what it did not."""
    from edge_sdk.formats import FORMATS

    done = set(run.converted + run.conversions_cached + run.benched + run.benches_cached)
    steps = [f"{model.name} -> {fmt} {mode}" for model in config.models for fmt, modes in model.formats.items() for mode in modes]
    steps += [f"{model.name}_{mode}{FORMATS[fmt].suffix} on {target.name}" for target in config.targets
              for model in config.models for fmt, modes in model.formats.items() for mode in modes]
    unfinished = [step for step in steps if step not in done]
    return (f"pipeline interrupted: {len(steps) - len(unfinished)} of {len(steps)} steps finished (kept in {config.output / CACHE_FILE}); "
            f"not finished: {', '.join(unfinished)}, and the reports")


def _convert(model: ModelEntry, fmt: str, mode: str, config: PipelineConfig, cache: dict[str, Any], toolchain: dict[str, str], data_hashes: dict[str, Any], run: PipelineRun, progress: Progress) -> Path:
    from edge_sdk.api import convert
    from edge_sdk.formats import format_named

    spec = format_named(fmt)
    output = config.output / "artifacts" / f"{model.name}_{mode}{spec.suffix}"
    calibrated = spec.needs_calibration(mode)
    # nhwc_input: the formats whose options have it (TFLite) take NHWC, fed as such; the others keep the model's NCHW.
    nhwc = model.nhwc_input and "nhwc_input" in {option.name for option in dataclasses.fields(spec.options_type())}
    preprocess = {**model.preprocess, "layout": "NHWC"} if nhwc else model.preprocess
    key = _key({
        "source": model.identity(), "format": fmt, "mode": mode, "preprocess": preprocess, "toolchain": toolchain,
        "validation_data": data_hashes["evaluation"], "calibration_data": data_hashes["calibration"] if calibrated else None,
        **({"nhwc_input": True} if nhwc else {}),
    })
    label = f"{model.name} -> {fmt} {mode}"
    manifest = output.with_name(output.name + ".manifest.json")
    cached = cache["conversions"].get(str(output))
    if isinstance(cached, dict) and cached.get("key") == key and output.exists() and manifest.exists():
        if _artifact_unchanged(output, cached):
            progress.step("convert", f"{label} (unchanged, from the cache)")
            run.conversions_cached.append(label)
            return output
        progress.message(f"{output} changed since it was cached (sha256 differs): converting again")
    progress.step("convert", label)
    output.parent.mkdir(parents=True, exist_ok=True)
    pytorch = model.path if isinstance(model.path, TorchModelSpec) else None
    convert(  # a PyTorch factory goes in as `convert FACTORY --weights W --input-shape ...` does
        pytorch.factory if pytorch else model.path, output, to=fmt, mode=mode, calibration=config.calibration_data if calibrated else None,
        validation_data=config.evaluation_data, preprocess=preprocess, overwrite=True, progress=progress,
        input_shapes=model.input_shapes, weights=pytorch.weights if pytorch else None, trust_model=model.trust_model,
        **({"nhwc_input": True} if nhwc else {}),
    )
    cache["conversions"][str(output)] = {"key": key, "sha256": sha256_of(output)}
    _write_json_cache(config.output / CACHE_FILE, cache)
    run.converted.append(label)
    return output


def _artifact_unchanged(output: Path, cached: dict[str, Any]) -> bool:
    """The artifact is the one this cache entry converted: its sha256 matches the cache's and its manifest's."""
    from edge_sdk.manifest import read_manifest, verify_artifact

    try:
        manifest = read_manifest(output)
    except ModelFileError:
        return False
    return manifest is not None and verify_artifact(output, manifest) is None and sha256_of(output) == cached.get("sha256")


def _bench_settings(config: PipelineConfig, target: TargetEntry, runs: int | None = None, warmup: int | None = None) -> Any:
    from edge_sdk.measurement import SETTINGS_VERSION, settings_from_mapping

    # The pipeline's `bench:` section in the JSON form of the measurement settings (one builder for every caller).
    return settings_from_mapping({
        "settings_version": SETTINGS_VERSION, "runs": runs or config.bench.get("runs", 100),
        "warmup": config.bench.get("warmup", 10) if warmup is None else warmup, "max_samples": config.max_samples,
        "runner": {"threads": config.bench.get("threads", 1)}, "target": target.name,
        "max_drop_points": config.max_drop_points if runs is None else None,
    }, f"{config.path}: bench")


def _bench_key(path: Path, model: ModelEntry, teacher: ModelEntry | None, target: TargetEntry, settings: Any, config: PipelineConfig, data_hashes: dict[str, Any]) -> str:
    return _key({  # the path too: two models with byte-identical artifacts are two results, not one
        "artifact": sha256_of(path), "artifact_path": str(path), "reference": model.identity(), "teacher": teacher.identity() if teacher else None,
        "data": data_hashes["evaluation"], "label_key": config.label_key, "target": target.to_dict(), "settings": settings.to_dict(),
    })


def _from_cache(cache: dict[str, Any], key: str) -> tuple[Any, dict[str, Any] | None] | None:
    from edge_sdk.results import BenchResult

    cached = cache["benches"].get(key)
    if cached is None:
        return None
    record = {k: v for k, v in cached["result"].items() if k != "schema_version"}
    return BenchResult(**record), cached["teacher_fidelity"]


def _remember(cache: dict[str, Any], key: str, result: Any, teacher_fidelity: dict[str, Any] | None, config: PipelineConfig) -> None:
    """Only results that succeeded are cached: a failed bench runs again next time."""
    if result.status == "ok":
        cache["benches"][key] = {"result": result.to_dict(), "teacher_fidelity": teacher_fidelity}
        _write_json_cache(config.output / CACHE_FILE, cache)


def _bench_here(paths: list[Path], model: ModelEntry, teacher: ModelEntry | None, target: TargetEntry, config: PipelineConfig, cache: dict[str, Any], data_hashes: dict[str, Any], run: PipelineRun, progress: Progress) -> list[tuple[Any, dict[str, Any] | None]]:
    """Bench each artifact on this machine, one at a time (each finished bench is cached at once)."""
    from edge_sdk.api import bench

    measured = []
    for path in paths:
        settings = _bench_settings(config, target)
        key = _bench_key(path, model, teacher, target, settings, config, data_hashes)
        label = f"{path.name} on {target.name}"
        cached = _from_cache(cache, key)
        if cached is not None:
            progress.step("bench", f"{label} (unchanged, from the cache)")
            run.benches_cached.append(label)
            measured.append(cached)
            continue
        with trusting_model_code(model.trust_model):  # the model's own trust flag (pipeline_config), for its reference
            result = bench([path], config.evaluation_data, reference=model.path, settings=settings, label_key=config.label_key, progress=progress)[0]
        teacher_fidelity = None
        if teacher is not None and result.status == "ok":
            # Agreement with the teacher is an accuracy figure only: one timed run is enough.
            quick = _bench_settings(config, target, runs=1, warmup=0)
            # Part of this artifact's bench step: no step line of its own.
            with trusting_model_code(teacher.trust_model):
                against_teacher = bench([path], config.evaluation_data, reference=teacher.path, settings=quick, label_key=config.label_key, progress=Progress(enabled=False))[0]
            teacher_fidelity = (against_teacher.reference or {}).get("fidelity")
        _remember(cache, key, result, teacher_fidelity, config)
        run.benched.append(label)
        measured.append((result, teacher_fidelity))
    return measured


def _bench_on_device(paths: list[Path], model: ModelEntry, teacher: ModelEntry | None, target: TargetEntry, config: PipelineConfig, cache: dict[str, Any], data_hashes: dict[str, Any], run: PipelineRun, progress: Progress) -> list[tuple[Any, dict[str, Any] | None]]:
    """Bench the artifacts not in the cache on the ssh device of `target`, through edge_sdk.api.bench_on_devices
    (`edge-sdk bench --target PROFILE --host URL`): one connection and one runner upload for all of them. A device
    failure is an error result per artifact, never an exception."""
    from edge_sdk.api import bench_on_devices

    keys = {path: _bench_key(path, model, teacher, target, _bench_settings(config, target), config, data_hashes) for path in paths}
    measured: dict[Path, tuple[Any, dict[str, Any] | None]] = {}
    for path in paths:
        cached = _from_cache(cache, keys[path])
        if cached is not None:
            progress.step("bench", f"{path.name} on {target.name} (unchanged, from the cache)")
            run.benches_cached.append(f"{path.name} on {target.name}")
            measured[path] = cached
    todo = [path for path in paths if path not in measured]
    for path in todo:
        progress.step("bench", f"{path.name} on {target.name} ({target.url})")
    if todo:
        def on_device(artifacts: list[Path], reference: ModelEntry, settings: Any) -> list[Any]:
            with trusting_model_code(reference.trust_model):
                results = bench_on_devices([*artifacts], config.evaluation_data, target=str(target.profile), hosts=[target.url], reference=reference.path,
                                           settings=settings, device_options=target.device_options(), label_key=config.label_key, progress=progress)
            for result in results:  # the pipeline's target name, as for desktop targets; the profile next to it
                result.target = {**result.target, "name": target.name, "profile": target.profile}
            return results

        results = on_device(todo, model, _bench_settings(config, target))
        fidelities: dict[Path, dict[str, Any] | None] = {}
        succeeded = [path for path, result in zip(todo, results) if result.status == "ok"]
        if teacher is not None and succeeded:
            # Agreement with the teacher is an accuracy figure only: one timed run is enough.
            for path, against_teacher in zip(succeeded, on_device(succeeded, teacher, _bench_settings(config, target, runs=1, warmup=0))):
                fidelities[path] = (against_teacher.reference or {}).get("fidelity")
        for path, result in zip(todo, results):
            _remember(cache, keys[path], result, fidelities.get(path), config)
            run.benched.append(f"{path.name} on {target.name}")
            measured[path] = (result, fidelities.get(path))
    return [measured[path] for path in paths]


def _row(model: ModelEntry, target: TargetEntry, path: Path, result: Any, teacher_fidelity: dict[str, Any] | None, max_drop: float | None) -> dict[str, Any]:
    from edge_sdk.artifact import read_manifest

    manifest = read_manifest(path)
    weights = (manifest.weights if manifest else None) or {}
    accuracy = result.accuracy or {}
    reference = result.reference or {}
    drop = reference.get("accuracy_drop_points")
    gate = reference.get("gate")
    return {
        "model": model.name, "teacher": model.teacher, "target": target.name, "artifact": path.name, "format": manifest.format if manifest else None,
        "mode": manifest.mode if manifest else None, "status": result.status, "error": result.error,
        "size_bytes": manifest.size_bytes if manifest else None, "gzip_size_bytes": manifest.gzip_size_bytes if manifest else None,
        "weight_sparsity": weights.get("sparsity"), "max_unique_weight_values": max((layer["unique_values"] for layer in weights.get("layers", [])), default=None),
        "quantization_ranges": manifest.quantization_ranges if manifest else None,
        "top1": accuracy.get("top1"), "drop_points": drop, "teacher_agreement": (teacher_fidelity or {}).get("top1_agreement"),
        # The gate's verdict (95 % upper bound of the drop), as `bench --max-drop` judges it.
        "within_budget": gate["passed"] if gate else (None if max_drop is None or drop is None else drop <= max_drop),
    }


def _write_outputs(config: PipelineConfig, results: list[Any], run: PipelineRun) -> None:
    from edge_sdk.report import WarningPolicy, render_report
    from edge_sdk.results import save_results

    results_path = config.output / "results.json"
    save_results(results_path, results, overwrite=True)
    from edge_sdk.tables import verdict_summary

    run.verdict = verdict_summary([result.to_dict() for result in results], config.max_drop_points, teacher_reference(config))
    summary_path = config.output / "pipeline.json"
    write_json_atomic(summary_path, {"config": str(config.path), "rows": run.rows})
    policy = WarningPolicy(max_drop_points=config.max_drop_points)
    run.files = {"results": results_path, "summary": summary_path}
    for fmt, name in (("html", "report.html"), ("md", "report.md")):
        text = render_report([results_path], fmt, policy, baseline_reference=teacher_reference(config))
        # The teacher/student summary goes after the tables and plots, before the columns' legend and provenance.
        text = _insert_before(text, "\n## Columns" if fmt == "md" else '<section id="columns">',
                              "\n" + summary_markdown(run.rows) if fmt == "md" else summary_html(run.rows) + "\n")
        write_bytes_atomic(config.output / name, text.encode("utf-8"))
        run.files[fmt] = config.output / name


SUMMARY_COLUMNS = (
    ("model", lambda r: r["model"]), ("artifact", lambda r: r["artifact"]), ("target", lambda r: r["target"]),
    ("size KB", lambda r: _fmt(r["size_bytes"], 1 / 1024, "{:.1f}")), ("gzip KB", lambda r: _fmt(r["gzip_size_bytes"], 1 / 1024, "{:.1f}")),
    ("weight sparsity %", lambda r: _fmt(r["weight_sparsity"], 100, "{:.1f}")), ("top-1 vs labels %", lambda r: _fmt(r["top1"], 100, "{:.2f}")),
    ("drop vs float pts", lambda r: _fmt(r["drop_points"], 1, "{:+.2f}")), ("agree vs teacher %", lambda r: _fmt(r["teacher_agreement"], 100, "{:.2f}")),
    ("in budget", lambda r: {True: "yes", False: "NO", None: "-"}[r["within_budget"]]),
)


def _fmt(value: float | None, scale: float, pattern: str) -> str:
    return "-" if value is None else pattern.format(value * scale)


def summary_markdown(rows: list[dict[str, Any]]) -> str:
    """The compression section: gzip size next to raw size (where pruning shows), weight sparsity, accuracy against
    the labels, the float model and the teacher."""
    lines = ["## Compression summary", "", "| " + " | ".join(h for h, _ in SUMMARY_COLUMNS) + " |", "|" + "---|" * len(SUMMARY_COLUMNS)]
    lines += ["| " + " | ".join(cell(row) for _, cell in SUMMARY_COLUMNS) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def summary_html(rows: list[dict[str, Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h, _ in SUMMARY_COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(cell(row)))}</td>" for _, cell in SUMMARY_COLUMNS) + "</tr>" for row in rows)
    return (f'<section id="compression-summary"><h2>Compression summary</h2><div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div></section>")


def _insert_before(document: str, marker: str, section: str) -> str:
    index = document.find(marker)
    return document + section if index < 0 else document[:index] + section + document[index:]


def teacher_reference(config: PipelineConfig) -> str | None:
    """The float model students share their labels with (the first teacher named), for the report's overall pick."""
    teacher_name = next((model.teacher for model in config.models if model.teacher), None)
    teacher = next((model for model in config.models if model.name == teacher_name), None)
    return str(teacher.path) if teacher else None
