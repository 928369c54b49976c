"""The report API: results files in, one HTML or Markdown document out."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edge_sdk.errors import UsageError
from edge_sdk.fileio import check_can_write, write_bytes_atomic
from edge_sdk.report.model import build_model
from edge_sdk.report.verdict import build_verdict
from edge_sdk.report.warnings import WarningPolicy, report_warnings
from edge_sdk.results import load_results

REPORT_FORMATS = {"html": (".html", ".htm"), "md": (".md", ".markdown")}


def report_format_for(output: Path | None, fmt: str | None) -> str:
    """The format asked for by `fmt`, else by the output's suffix; a contradiction is a UsageError."""
    by_suffix = next((name for name, suffixes in REPORT_FORMATS.items() if output and output.suffix.lower() in suffixes), None)
    if fmt is not None:
        if fmt not in REPORT_FORMATS:
            raise UsageError(f"--format {fmt} is not a report format", fix=f"use one of {', '.join(REPORT_FORMATS)}")
        if by_suffix and by_suffix != fmt:
            raise UsageError(f"--format {fmt} contradicts the output name {output}", fix=f"name the output *{REPORT_FORMATS[fmt][0]} or drop --format")
        return fmt
    if output is None:
        return "html"
    if by_suffix is None:
        raise UsageError(f"cannot tell the report format from {output}", fix="name it .html or .md, or pass --format html|md")
    return by_suffix


def render_report(results_paths: Sequence[Path], fmt: str = "html", policy: WarningPolicy | None = None, baseline_reference: str | None = None) -> str:
    """Render one report over every results file (each is validated against the results schema on load). The
    verdict comes first; `baseline_reference` (the teacher's float model, in a pipeline) adds an overall pick."""
    if not results_paths:
        raise UsageError("no results files to report on", fix="give one or more files written by `edge-sdk bench -o`")
    if fmt not in REPORT_FORMATS:
        raise UsageError(f"report format {fmt!r} is not one of {', '.join(REPORT_FORMATS)}")
    paths = [Path(path) for path in results_paths]
    model = build_model([load_results(path) for path in paths], paths)
    policy = policy or WarningPolicy()
    warnings = report_warnings(model.rows, policy)
    verdict = build_verdict(model, policy.max_drop_points, baseline_reference)
    if fmt == "md":
        from edge_sdk.report.markdown import render_markdown

        return render_markdown(model, warnings, verdict)
    from edge_sdk.report.html import render_html

    return render_html(model, warnings, verdict)


def report_document(results_paths: Sequence[Path], policy: WarningPolicy | None = None, baseline_reference: str | None = None) -> dict[str, Any]:
    """The report's content as JSON-ready data (`edge-sdk report --json`): the verdict, the flags, the warnings and
    one row per artifact with the report's derived figures (ratios to fp32, Pareto)."""
    from edge_sdk.report.verdict import budget_sentence, pick_sentence

    paths = [Path(path) for path in results_paths]
    if not paths:
        raise UsageError("no results files to report on", fix="give one or more files written by `edge-sdk bench -o`")
    model = build_model([load_results(path) for path in paths], paths)
    policy = policy or WarningPolicy()
    verdict = build_verdict(model, policy.max_drop_points, baseline_reference)

    def pick(item: Any) -> dict[str, Any]:
        return {"target": item.target, "source": item.source, "artifact": item.row.name if item.row else None, "number": item.row.number if item.row else None,
                "basis": item.basis, "qualified": item.qualified, "candidates": item.candidates, "drop_points": item.drop_points,
                "drop_interval_points": list(item.drop_interval) if item.drop_interval else None, "text": pick_sentence(item)}

    return {
        "sources": [str(path) for path in paths],
        "verdict": {"budget_points": verdict.budget_points, "budget_is_default": verdict.budget_is_default, "rule": budget_sentence(verdict),
                    "picks": [pick(item) for item in verdict.picks], "overall": [pick(item) for item in verdict.overall]},
        "warnings": [{"kind": w.kind, "subject": w.subject, "message": w.message} for w in report_warnings(model.rows, policy)],
        "rows": [{
            "number": row.number, "artifact": row.name, "source": row.source or None, "target": row.target, "status": row.status, "format": row.format,
            "mode": row.mode, "size_bytes": row.size_bytes, "size_ratio_to_float": row.size_ratio_to_float,
            "latency_ratio_to_float": row.latency_ratio_to_float, "p50_ms": row.p50_ms, "p99_ms": row.p99_ms, "top1": row.top1,
            "drop_points": row.drop_points, "noisy": row.noisy, "gate_passed": row.gate["passed"] if row.gate else None, "pareto": row.pareto,
            "flags": verdict.flags_for(row),
        } for row in model.rows],
    }


def write_report(
    results_paths: Sequence[Path],
    output: Path,
    fmt: str | None = None,
    policy: WarningPolicy | None = None,
    overwrite: bool = False,
) -> Path:
    """Render and write a report atomically; refuses to replace an existing report without `overwrite`."""
    output = Path(output)
    fmt = report_format_for(output, fmt)
    check_can_write(output, overwrite, "report")
    write_bytes_atomic(output, render_report(results_paths, fmt, policy).encode("utf-8"))
    return output
