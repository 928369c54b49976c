"""Warnings a report raises about its own figures: too few samples, noisy timings, a failed accuracy gate or budget.

Where the benchmark recorded its own verdict (the accuracy interval, `timing.stability.noisy`, `reference.gate`) the
warning repeats it; the thresholds below apply only to results written before those records existed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edge_sdk.report.model import ArtifactRow

# z for a two-sided 95 % interval.
Z_95 = 1.959964


@dataclass(frozen=True)
class WarningPolicy:
    """Thresholds for the warnings section. Points are percentage points of top-1 accuracy."""

    max_drop_points: float | None = None
    max_accuracy_half_width_points: float = 1.0
    # Results without `timing.stability` only: judged from the recorded percentiles, mean and std.
    max_p99_over_p50: float = 2.0
    max_latency_cv: float = 0.25


@dataclass(frozen=True)
class ReportWarning:
    kind: str  # "samples" | "noise" | "gate" | "budget" | "failed" | "provenance"
    subject: str
    message: str


def accuracy_half_width_points(top1: float, samples: int) -> float:
    """Half-width, in points, of the 95 % Wilson score interval of an accuracy measured on `samples` samples.

    Wilson rather than the normal approximation so that 100 % on 20 samples is not reported as exact.
    """
    z2 = Z_95 * Z_95
    spread = Z_95 * math.sqrt(top1 * (1 - top1) / samples + z2 / (4 * samples * samples))
    return 100.0 * spread / (1 + z2 / samples)


# From this many sample-size warnings on one target, they are shown as one line (a pipeline has many artifacts).
GROUP_SAMPLE_WARNINGS_FROM = 3


def report_warnings(rows: list[ArtifactRow], policy: WarningPolicy) -> list[ReportWarning]:
    """Every warning for the rows, in row order; many sample-size warnings on one target become one."""
    return _group_sample_warnings(rows, _warnings_per_row(rows, policy), policy)


def grouped_warnings(warnings: list[ReportWarning]) -> dict[str, list[ReportWarning]]:
    """The warnings by kind, the most serious kinds first."""
    order = ["failed", "provenance", "gate", "budget", "noise", "samples"]
    groups: dict[str, list[ReportWarning]] = {}
    for warning in sorted(warnings, key=lambda w: order.index(w.kind) if w.kind in order else len(order)):
        groups.setdefault(warning.kind, []).append(warning)
    return groups


def _provenance_warnings(row: ArtifactRow, subject: str) -> list[ReportWarning]:
    """An artifact run with --no-verify, or without a manifest, is not known to be what its name says."""
    artifact = row.result.get("artifact") or {}
    warnings = []
    if artifact.get("verified") is False:
        why = artifact.get("verification") or "not checked (--no-verify)"
        warnings.append(ReportWarning("provenance", subject, f"unverified: {why}"))
    if artifact.get("has_manifest") is False:
        warnings.append(ReportWarning("provenance", subject, "no manifest: its preprocessing is unknown (the data was fed as given, or as bench flags said)"))
    warnings += [ReportWarning("provenance", subject, line) for line in artifact_warnings(artifact)]
    return warnings


def artifact_warnings(artifact: dict) -> list[str]:  # type: ignore[type-arg]
    """What a result's artifact record says the user must know (terminal and report): it failed validation when it
    was converted (kept by `convert --keep-failed`), and its manifest's warnings (e.g. degenerate calibration)."""
    lines = []
    if artifact.get("validation_failed"):
        failures = "; ".join(artifact.get("validation_failures") or []) or "see its manifest's validation"
        lines.append(f"FAILED validation against its source when it was converted (kept with --keep-failed): {failures}")
    lines += [f"was converted with a warning: {line}" for line in artifact.get("manifest_warnings") or []]
    return lines


def _warnings_per_row(rows: list[ArtifactRow], policy: WarningPolicy) -> list[ReportWarning]:
    warnings: list[ReportWarning] = []
    for row in rows:
        subject = f"{row.label} on {row.target}"
        if not row.ok:
            first_line = (row.error or "no error message").splitlines()[0]
            warnings.append(ReportWarning("failed", subject, f"the benchmark failed: {first_line}"))
            continue
        warnings.extend(_provenance_warnings(row, subject))
        warnings.extend(_sample_warnings(row, subject, policy))
        warnings.extend(_noise_warnings(row, subject, policy))
        warnings.extend(_gate_warnings(row, subject))
        gate_judged_budget = row.gate is not None and row.gate.get("max_drop_points") == policy.max_drop_points and not row.gate["passed"]
        if policy.max_drop_points is not None and row.drop_points is not None and row.drop_points > policy.max_drop_points and not gate_judged_budget:
            warnings.append(ReportWarning(
                "budget", subject,
                f"accuracy drop {row.drop_points:.2f} points vs the float reference is above the budget of {policy.max_drop_points:g} points",
            ))
    return warnings


def _group_sample_warnings(rows: list[ArtifactRow], warnings: list[ReportWarning], policy: WarningPolicy) -> list[ReportWarning]:
    by_target: dict[str, list[ArtifactRow]] = {}
    for row in rows:
        if any(w.kind == "samples" and w.subject == f"{row.label} on {row.target}" for w in warnings):
            by_target.setdefault(row.target, []).append(row)
    grouped = {target: members for target, members in by_target.items() if len(members) >= GROUP_SAMPLE_WARNINGS_FROM}
    if not grouped:
        return warnings
    kept = [w for w in warnings if not (w.kind == "samples" and w.subject.rsplit(" on ", 1)[-1] in grouped)]
    for target, members in grouped.items():
        widths = [_half_width_points(row) for row in members]
        counts = sorted({row.accuracy_samples for row in members})
        hidden = [row.label for row, width in zip(members, widths) if row.drop_points and width > abs(row.drop_points)]
        message = (
            f"accuracy on {'/'.join(str(c) for c in counts)} samples is known only to ±{min(widths):.2f}-{max(widths):.2f} points (95 %) "
            f"for {', '.join(row.label for row in members)}"
            + (f"; larger than the drop reported for {', '.join(hidden)}" if hidden else "")
            + "; evaluate on more samples before trusting differences that small"
        )
        kept.insert(0, ReportWarning("samples", f"{len(members)} artifacts on {target}", message))
    return kept


def _half_width_points(row: ArtifactRow) -> float:
    if row.top1_ci is not None:
        return 100.0 * (row.top1_ci[1] - row.top1_ci[0]) / 2.0  # the benchmark's bootstrap interval
    return accuracy_half_width_points(row.top1 or 0.0, row.accuracy_samples or 1)


def _sample_warnings(row: ArtifactRow, subject: str, policy: WarningPolicy) -> list[ReportWarning]:
    if row.top1 is None or not row.accuracy_samples:
        return []
    half_width = _half_width_points(row)
    drop = row.drop_points
    hides_drop = drop is not None and drop != 0 and half_width > abs(drop)
    if half_width <= policy.max_accuracy_half_width_points and not hides_drop:
        return []
    reasons = []
    if half_width > policy.max_accuracy_half_width_points:
        reasons.append(f"more than {policy.max_accuracy_half_width_points:g} point")
    if hides_drop:
        reasons.append(f"larger than the {drop:+.2f}-point drop reported")
    return [ReportWarning(
        "samples", subject,
        f"accuracy {100 * row.top1:.2f} % on {row.accuracy_samples} samples is known to ±{half_width:.2f} points (95 %), "
        f"{' and '.join(reasons)}; evaluate on more samples before trusting differences that small",
    )]


def _gate_warnings(row: ArtifactRow, subject: str) -> list[ReportWarning]:
    gate = row.gate
    if not gate:
        return []
    warnings = []
    if not gate["passed"]:
        warnings.append(ReportWarning(
            "gate", subject,
            f"accuracy gate failed: drop {gate.get('drop_points', row.drop_points or 0.0):+.2f} points, 95 % upper bound "
            f"{gate['drop_upper_points']:.2f} above the budget of {gate['max_drop_points']:g} points",
        ))
    if gate.get("precision_warning"):
        warnings.append(ReportWarning("samples", subject, f"accuracy gate: {gate['precision_warning']}"))
    return warnings


def _noise_warnings(row: ArtifactRow, subject: str, policy: WarningPolicy) -> list[ReportWarning]:
    runs = f" over {row.timed_runs} runs" if row.timed_runs else ""
    if row.noisy is not None:
        if not row.noisy:
            return []
        stability = row.stability or {}
        reasons = list(stability.get("noisy_reasons") or [])
        if not reasons:  # written before the reasons were recorded
            half_width, target = stability.get("median_relative_half_width"), stability.get("target_relative_half_width")
            if half_width is not None and target is not None and half_width > target:
                reasons.append(f"median known to +-{100 * half_width:.2f} % (95 %), wider than the +-{100 * target:g} % target")
            if stability.get("warmup_stable") is False:
                reasons.append("warm-up never settled")
        return [ReportWarning(
            "noise", subject,
            f"noisy timings{runs}: {'; '.join(reasons) or 'the benchmark flagged the run'}; "
            "pin threads, close other work or use more runs (or --latency-target/--time-budget) before comparing latencies",
        )]
    reasons = []
    if row.p50_ms and row.p99_ms is not None and row.p99_ms / row.p50_ms > policy.max_p99_over_p50:
        reasons.append(f"p99/p50 = {row.p99_ms / row.p50_ms:.1f} (limit {policy.max_p99_over_p50:g})")
    if row.mean_ms and row.std_ms is not None and row.std_ms / row.mean_ms > policy.max_latency_cv:
        reasons.append(f"coefficient of variation {row.std_ms / row.mean_ms:.2f} (limit {policy.max_latency_cv:g})")
    if not reasons:
        return []
    return [ReportWarning(
        "noise", subject,
        f"noisy timings{runs}: {', '.join(reasons)}; pin threads, close other work or use more runs before comparing latencies",
    )]
