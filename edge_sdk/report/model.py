"""What a report shows, read from results documents: rows per target, the Pareto front, provenance.

Every figure comes from the JSON as written by the benchmark; the only derived values are the size ratio to the
float artifact and the Pareto marking (no artifact both faster at p50 and more accurate). Intervals, the accuracy
gate's verdict and the noisy-run flag are read as recorded; results written before they existed render without them.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_sdk.formats import FLOAT_MODES


@dataclass(eq=False)  # rows are compared by identity: a row links to its fp32 twin
class ArtifactRow:
    """One result as the report shows it. Times in ms, sizes in bytes, accuracy/agreement as fractions."""

    source: str
    name: str
    target: str
    status: str
    error: str | None
    format: str | None
    mode: str | None
    size_bytes: int | None
    size_ratio_to_float: float | None
    load_ms: float | None
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    std_ms: float | None
    throughput_per_s: float | None
    peak_rss_bytes: int | None
    top1: float | None
    accuracy_samples: int | None
    drop_points: float | None
    agreement: float | None
    sqnr_db: float | None
    top1_ci: tuple[float, float] | None = None  # 95 % interval of top1 (fractions)
    drop_ci_points: tuple[float, float] | None = None  # 95 % interval of drop_points
    gate: dict[str, Any] | None = None  # the `reference.gate` record: passed, max_drop_points, drop_upper_points
    stability: dict[str, Any] | None = None  # the `timing.stability` record: noisy, noisy_reasons, median interval
    latencies_ms: list[float] = field(default_factory=list)
    timed_runs: int | None = None
    pareto: bool = False
    reference_path: str | None = None  # the float model the result was judged against: the artifact's source
    median_ci_ms: tuple[float, float] | None = None  # 95 % interval of p50 (timing.stability.median_ci_ms)
    latency_ratio_to_float: float | None = None  # p50 over the p50 of the fp32 twin (same source, format, target)
    float_twin: ArtifactRow | None = field(default=None, repr=False)
    number: int = 0  # 1-based position in the report, shared by the table and the plots
    result: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def noisy(self) -> bool | None:
        """The benchmark's own verdict on its timings; None for results recorded before it existed."""
        return None if self.stability is None or "noisy" not in self.stability else bool(self.stability["noisy"])

    @property
    def source_model(self) -> str:
        """The float model this artifact came from, as far as the results say: its float reference."""
        return self.reference_path or ""

    @property
    def label(self) -> str:
        """The artifact name, qualified by its results file when a report renders several."""
        return f"{self.name} [{self.source}]" if self.source else self.name


@dataclass
class TargetGroup:
    name: str
    rows: list[ArtifactRow]


@dataclass
class ReportModel:
    sources: list[Path]
    documents: list[dict[str, Any]]
    targets: list[TargetGroup]
    provenance: list[tuple[str, list[tuple[str, str]]]]
    generated_at: str

    @property
    def rows(self) -> list[ArtifactRow]:
        return [row for group in self.targets for row in group.rows]


def target_label(target: dict[str, Any]) -> str:
    host = target.get("host")
    return f"{target.get('name', '?')} @ {host}" if host else str(target.get("name", "?"))


def build_model(documents: list[dict[str, Any]], sources: list[Path]) -> ReportModel:
    """Group the results of every document by target, in the order they appear."""
    several = len(documents) > 1
    groups: dict[str, TargetGroup] = {}
    for document, source in zip(documents, sources):
        label = Path(source).name if several else ""
        results = document["results"]
        for result in results:
            row = _row(result, label, _float_size(result, results))
            groups.setdefault(row.target, TargetGroup(row.target, [])).rows.append(row)
    for group in groups.values():
        mark_pareto_front(group.rows)
        link_float_twins(group.rows)
    for number, row in enumerate((row for group in groups.values() for row in group.rows), start=1):
        row.number = number
    provenance = [(str(source), _provenance(document)) for document, source in zip(documents, sources)]
    generated_at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return ReportModel([Path(s) for s in sources], documents, list(groups.values()), provenance, generated_at)


def mark_pareto_front(rows: list[ArtifactRow]) -> None:
    """Mark the rows no other row beats on both p50 latency (lower) and top-1 accuracy (higher)."""
    candidates = [row for row in rows if row.ok and row.p50_ms is not None and row.top1 is not None]
    for row in candidates:
        row.pareto = not any(
            other.p50_ms <= row.p50_ms and other.top1 >= row.top1 and (other.p50_ms < row.p50_ms or other.top1 > row.top1)  # type: ignore[operator]
            for other in candidates
        )


def link_float_twins(rows: list[ArtifactRow]) -> None:
    """Give each row its fp32 twin (same source model, format and target, mode fp32) and the p50 ratio to it."""
    for row in rows:
        twin = next((
            other for other in rows
            if other.ok and other.mode in FLOAT_MODES and other.format == row.format and other.target == row.target
            and other.source_model == row.source_model and other.source == row.source
        ), None)
        row.float_twin = twin
        if twin is not None and row.ok and row.p50_ms is not None and twin.p50_ms:
            row.latency_ratio_to_float = row.p50_ms / twin.p50_ms


def _float_size(result: dict[str, Any], results: list[dict[str, Any]]) -> int | None:
    """Size of the float artifact of the same target (and the same float reference, when there is one)."""
    reference_path = (result.get("reference") or {}).get("path")
    same_target = [
        other for other in results
        if other.get("status") == "ok" and other["artifact"].get("mode") in FLOAT_MODES and other["target"] == result["target"]
    ]
    matching = [other for other in same_target if (other.get("reference") or {}).get("path") == reference_path] or same_target
    return matching[0]["artifact"].get("size_bytes") if matching else None


def _row(result: dict[str, Any], source: str, float_size: int | None) -> ArtifactRow:
    artifact = result["artifact"]
    timing = result.get("timing") or {}
    latency = timing.get("latency") or {}
    accuracy = result.get("accuracy") or {}
    reference = result.get("reference") or {}
    fidelity = reference.get("fidelity") or {}
    size = artifact.get("size_bytes")
    latencies = list(timing.get("latencies_ms") or [])
    return ArtifactRow(
        source=source,
        name=str(artifact.get("name") or Path(str(artifact.get("path", "?"))).name),
        target=target_label(result.get("target") or {}),
        status=str(result.get("status", "ok")),
        error=result.get("error"),
        format=artifact.get("format"),
        mode=artifact.get("mode"),
        size_bytes=size,
        size_ratio_to_float=size / float_size if size is not None and float_size else None,
        load_ms=timing.get("load_ms"),
        p50_ms=latency.get("p50_ms"),
        p90_ms=latency.get("p90_ms"),
        p99_ms=latency.get("p99_ms"),
        mean_ms=latency.get("mean_ms"),
        std_ms=latency.get("std_ms"),
        throughput_per_s=latency.get("throughput_per_s"),
        peak_rss_bytes=(result.get("memory") or {}).get("peak_rss_bytes"),
        top1=accuracy.get("top1"),
        accuracy_samples=accuracy.get("samples"),
        drop_points=reference.get("accuracy_drop_points"),
        top1_ci=_bounds(accuracy.get("top1_ci")),
        drop_ci_points=_bounds(reference.get("accuracy_drop_ci_points")),
        gate=reference.get("gate"),
        stability=timing.get("stability"),
        agreement=fidelity.get("top1_agreement"),
        sqnr_db=fidelity.get("sqnr_db"),
        latencies_ms=latencies,
        reference_path=reference.get("path"),
        median_ci_ms=_bounds((timing.get("stability") or {}).get("median_ci_ms")),
        timed_runs=len(latencies) or (result.get("settings") or {}).get("runs"),
        result=result,
    )


def _bounds(interval: dict[str, Any] | None) -> tuple[float, float] | None:
    return (interval["low"], interval["high"]) if interval else None


def _provenance(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs; a value that differs between results lists each variant with its artifacts."""
    results = document["results"]
    tool = document.get("tool") or {}
    items = [
        ("results written", str(document.get("created_at", "-"))),
        ("tool", f"{tool.get('name', '?')} {tool.get('version', '?')}"),
        ("schema version", str(document.get("schema_version"))),
    ]
    measured = sorted(str(r["created_at"]) for r in results if r.get("created_at"))
    if measured:
        items.append(("measured", measured[0] if measured[0] == measured[-1] else f"{measured[0]} to {measured[-1]}"))
    extractors = [
        ("target", lambda r: f"{target_label(r['target'])} (transport {r['target'].get('transport') or '-'})"),
        ("machine", lambda r: _machine(r.get("environment") or {})),
        ("python", lambda r: (r.get("environment") or {}).get("python")),
        ("runtime", lambda r: _runtime(((r.get("settings") or {}).get("runtime")) or {})),
        ("threads", lambda r: _threads(r.get("settings") or {})),
        ("settings", lambda r: _settings(r.get("settings") or {})),
        ("packages", lambda r: ", ".join(f"{k} {v}" for k, v in ((r.get("environment") or {}).get("packages") or {}).items())),
        ("data", lambda r: _data(r.get("data") or {})),
        ("float reference", lambda r: _reference(r.get("reference"))),
    ]
    for label, extract in extractors:
        variants: dict[str, list[str]] = {}
        for result in results:
            value = extract(result)
            variants.setdefault("-" if value in (None, "") else str(value), []).append(str(result["artifact"].get("name", "?")))
        if len(variants) == 1:
            items.append((label, next(iter(variants))))
        elif variants:
            items.append((label, "; ".join(f"{value} ({', '.join(names)})" for value, names in variants.items())))
    return items


def _machine(environment: dict[str, Any]) -> str:
    return (
        f"{environment.get('hostname', '?')}: {environment.get('cpu', '?')}, {environment.get('cores', '?')} cores, "
        f"{environment.get('architecture', '?')}, {environment.get('os', '?')}"
    )


def _runtime(runtime: dict[str, Any]) -> str | None:
    if not runtime:
        return None
    kernels = f", kernels {runtime['kernels']}" if runtime.get("kernels") else ""
    return f"{runtime.get('version') or runtime.get('runtime')}{kernels}"


def _threads(settings: dict[str, Any]) -> str:
    threads = (settings.get("runner") or {}).get("threads")
    return "runtime default" if threads is None else str(threads)


def _settings(settings: dict[str, Any]) -> str:
    runner = settings.get("runner") or {}
    parts = [f"{settings.get('runs', '?')} timed runs after {settings.get('warmup', '?')} warm-up"]
    parts.append("all samples" if settings.get("max_samples") is None else f"subset of {settings['max_samples']} samples (seed {settings.get('seed')})")
    for key in ("xnnpack", "kernels", "reset_state"):
        if key in runner:
            parts.append(f"{key} {runner[key]}")
    return ", ".join(parts)


def _data(data: dict[str, Any]) -> str:
    evaluated = data.get("evaluated_samples")
    return f"{data.get('path', '?')} ({evaluated if evaluated is not None else '?'} of {data.get('samples', '?')} samples evaluated)"


def _reference(reference: dict[str, Any] | None) -> str | None:
    if not reference:
        return None
    runtime = reference.get("runtime") or {}
    return f"{reference.get('path')} ({runtime.get('version', '?')})"
