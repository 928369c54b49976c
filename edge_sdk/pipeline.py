"""`edge-sdk pipeline edge.yaml`: every model to every format and mode, every artifact benched on every target
against its float reference (and its teacher, where one is named), then results.json, report.html, report.md.

Re-running skips work whose inputs did not change: a conversion is keyed by the source's sha256, the format,
mode, preprocessing, the data files' sha256 and the toolchain versions; a bench by the artifact's sha256, the
reference's, the data's, the target and the bench settings (`pipeline-cache.json` in the output folder).

`accuracy_budget.max_drop_points` is the accuracy gate of `edge-sdk bench --max-drop` (edge_sdk/gate.py): after every
result and report is written, an artifact whose drop's 95 % upper bound exceeds the budget raises AccuracyGateError.
"""

from __future__ import annotations

import hashlib
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_sdk.errors import DataError, InterruptedRun
from edge_sdk.fileio import sha256_of, write_bytes_atomic, write_json_atomic
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
    skipped_targets: dict[str, str] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)


def run_pipeline(config_path: str | Path, progress: Progress | None = None) -> PipelineRun:
    """Run the pipeline file `config_path`; see the module docstring."""
    from edge_sdk import __version__
    from edge_sdk.environment import package_versions

    config = load_config(config_path)
    progress = progress or Progress(enabled=False)
    config.output.mkdir(parents=True, exist_ok=True)
    run = PipelineRun(config.output)
    cache_path = config.output / CACHE_FILE
    cache = _read_cache(cache_path)
    toolchain = {"edge-sdk": __version__, **package_versions(TOOLCHAIN)}
    data_hashes = {"evaluation": sha256_of(config.evaluation_data), "calibration": sha256_of(config.calibration_data) if config.calibration_data else None}
    artifacts: dict[str, list[Path]] = {}
    results = []
    try:  # every finished conversion and bench is in the cache at once (_convert, _bench): a re-run resumes
        for model in config.models:
            artifacts[model.name] = [_convert(model, fmt, mode, config, cache, toolchain, data_hashes, run, progress) for fmt, modes in model.formats.items() for mode in modes]
        for target in config.targets:
            if not target.runnable:
                run.skipped_targets[target.name] = f"{target.kind} targets ({target.host}) are not run by the pipeline yet; only desktop/local"
                continue
            for model in config.models:
                teacher = next((m for m in config.models if m.name == model.teacher), None)
                for path in artifacts[model.name]:
                    result, teacher_fidelity = _bench(path, model, teacher, target, config, cache, data_hashes, run, progress)
                    results.append(result)
                    run.rows.append(_row(model, target, path, result, teacher_fidelity, config.max_drop_points))
    except (KeyboardInterrupt, InterruptedRun):
        raise InterruptedRun(_unfinished_steps(config, run), fix="run the same command again: finished steps are taken from the cache") from None
    _write_json_cache(cache_path, cache)
    _write_outputs(config, results, run)
    _check_accuracy_budget(results, run)
    return run


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
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise DataError(f"pipeline cache {path} is not valid JSON: {error}", fix="delete it; the next run rebuilds everything") from error


def _write_json_cache(path: Path, cache: dict[str, Any]) -> None:
    write_json_atomic(path, cache)


def _unfinished_steps(config: PipelineConfig, run: PipelineRun) -> str:
    """What an interrupted run finished (kept in the cache) and what it did not."""
    done = set(run.converted + run.conversions_cached + run.benched + run.benches_cached)
    steps = [f"{model.name} -> {fmt} {mode}" for model in config.models for fmt, modes in model.formats.items() for mode in modes]
    steps += [f"{model.name}_{mode}.{fmt} on {target.name}" for target in config.targets if target.runnable
              for model in config.models for fmt, modes in model.formats.items() for mode in modes]
    unfinished = [step for step in steps if step not in done]
    return (f"pipeline interrupted: {len(steps) - len(unfinished)} of {len(steps)} steps finished (kept in {config.output / CACHE_FILE}); "
            f"not finished: {', '.join(unfinished)}, and the reports")


def _convert(model: ModelEntry, fmt: str, mode: str, config: PipelineConfig, cache: dict[str, Any], toolchain: dict[str, str], data_hashes: dict[str, Any], run: PipelineRun, progress: Progress) -> Path:
    from edge_sdk.api import convert

    output = config.output / "artifacts" / f"{model.name}_{mode}.{fmt}"
    calibrated = mode in ("int8", "int16x8")
    key = _key({
        "source": sha256_of(model.path), "format": fmt, "mode": mode, "preprocess": model.preprocess, "toolchain": toolchain,
        "validation_data": data_hashes["evaluation"], "calibration_data": data_hashes["calibration"] if calibrated else None,
    })
    label = f"{model.name} -> {fmt} {mode}"
    manifest = output.with_name(output.name + ".manifest.json")
    if cache["conversions"].get(str(output)) == key and output.exists() and manifest.exists():
        run.conversions_cached.append(label)
        return output
    output.parent.mkdir(parents=True, exist_ok=True)
    convert(
        model.path, output, to=fmt, mode=mode, calibration=config.calibration_data if calibrated else None,
        validation_data=config.evaluation_data, preprocess=model.preprocess, overwrite=True, progress=progress,
    )
    cache["conversions"][str(output)] = key
    _write_json_cache(config.output / CACHE_FILE, cache)
    run.converted.append(label)
    return output


def _bench(path: Path, model: ModelEntry, teacher: ModelEntry | None, target: TargetEntry, config: PipelineConfig, cache: dict[str, Any], data_hashes: dict[str, Any], run: PipelineRun, progress: Progress) -> tuple[Any, dict[str, Any] | None]:
    from edge_sdk.api import bench
    from edge_sdk.bench import BenchSettings
    from edge_sdk.results import BenchResult
    from targets.runners.base import RunnerOptions

    settings = BenchSettings(
        runs=config.bench.get("runs", 100), warmup=config.bench.get("warmup", 10), max_samples=config.max_samples,
        runner=RunnerOptions(threads=config.bench.get("threads", 1)), target=target.name, max_drop_points=config.max_drop_points,
    )
    key = _key({
        "artifact": sha256_of(path), "reference": sha256_of(model.path), "teacher": sha256_of(teacher.path) if teacher else None,
        "data": data_hashes["evaluation"], "label_key": config.label_key, "target": target.to_dict(), "settings": settings.to_dict(),
    })
    label = f"{path.name} on {target.name}"
    cached = cache["benches"].get(key)
    if cached is not None:
        run.benches_cached.append(label)
        record = {k: v for k, v in cached["result"].items() if k != "schema_version"}
        return BenchResult(**record), cached["teacher_fidelity"]
    result = bench([path], config.evaluation_data, reference=model.path, settings=settings, label_key=config.label_key, progress=progress)[0]
    teacher_fidelity = None
    if teacher is not None and result.status == "ok":
        # Agreement with the teacher is an accuracy figure only: one timed run is enough.
        quick = BenchSettings(runs=1, warmup=0, max_samples=config.max_samples, runner=settings.runner, target=target.name)
        against_teacher = bench([path], config.evaluation_data, reference=teacher.path, settings=quick, label_key=config.label_key, progress=progress)[0]
        teacher_fidelity = (against_teacher.reference or {}).get("fidelity")
    if result.status == "ok":
        cache["benches"][key] = {"result": result.to_dict(), "teacher_fidelity": teacher_fidelity}
        _write_json_cache(config.output / CACHE_FILE, cache)
    run.benched.append(label)
    return result, teacher_fidelity


def _row(model: ModelEntry, target: TargetEntry, path: Path, result: Any, teacher_fidelity: dict[str, Any] | None, max_drop: float | None) -> dict[str, Any]:
    from edge_sdk.artifact import read_manifest

    manifest = read_manifest(path) or {}
    weights = manifest.get("weights") or {}
    accuracy = result.accuracy or {}
    reference = result.reference or {}
    drop = reference.get("accuracy_drop_points")
    gate = reference.get("gate")
    return {
        "model": model.name, "teacher": model.teacher, "target": target.name, "artifact": path.name, "format": manifest.get("format"),
        "mode": manifest.get("mode"), "status": result.status, "error": result.error,
        "size_bytes": manifest.get("size_bytes"), "gzip_size_bytes": manifest.get("gzip_size_bytes"),
        "weight_sparsity": weights.get("sparsity"), "max_unique_weight_values": max((layer["unique_values"] for layer in weights.get("layers", [])), default=None),
        "quantization_ranges": manifest.get("quantization_ranges"),
        "top1": accuracy.get("top1"), "drop_points": drop, "teacher_agreement": (teacher_fidelity or {}).get("top1_agreement"),
        # The gate's verdict (95 % upper bound of the drop), as `bench --max-drop` judges it.
        "within_budget": gate["passed"] if gate else (None if max_drop is None or drop is None else drop <= max_drop),
    }


def _write_outputs(config: PipelineConfig, results: list[Any], run: PipelineRun) -> None:
    from edge_sdk.report import WarningPolicy, render_report
    from edge_sdk.results import save_results

    results_path = config.output / "results.json"
    save_results(results_path, results, overwrite=True)
    summary_path = config.output / "pipeline.json"
    write_json_atomic(summary_path, {"config": str(config.path), "rows": run.rows, "skipped_targets": run.skipped_targets})
    policy = WarningPolicy(max_drop_points=config.max_drop_points)
    run.files = {"results": results_path, "summary": summary_path}
    for fmt, name in (("html", "report.html"), ("md", "report.md")):
        text = render_report([results_path], fmt, policy)
        section = summary_markdown(run.rows) if fmt == "md" else summary_html(run.rows)
        text = text + "\n" + section if fmt == "md" else _insert_before_body_end(text, section)
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
    return f'<section id="compression-summary"><h2>Compression summary</h2><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></section>'


def _insert_before_body_end(document: str, section: str) -> str:
    index = document.lower().rfind("</body>")
    return document + section if index < 0 else document[:index] + section + document[index:]
