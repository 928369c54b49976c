"""Warnings a report raises about its own figures: too few samples, noisy timings, a blown accuracy budget."""

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
    max_p99_over_p50: float = 2.0
    max_latency_cv: float = 0.25


@dataclass(frozen=True)
class ReportWarning:
    kind: str  # "samples" | "noise" | "budget" | "failed"
    subject: str
    message: str


def accuracy_half_width_points(top1: float, samples: int) -> float:
    """Half-width, in points, of the 95 % Wilson score interval of an accuracy measured on `samples` samples.

    Wilson rather than the normal approximation so that 100 % on 20 samples is not reported as exact.
    """
    z2 = Z_95 * Z_95
    spread = Z_95 * math.sqrt(top1 * (1 - top1) / samples + z2 / (4 * samples * samples))
    return 100.0 * spread / (1 + z2 / samples)


def report_warnings(rows: list[ArtifactRow], policy: WarningPolicy) -> list[ReportWarning]:
    """Every warning for the rows, in row order."""
    warnings: list[ReportWarning] = []
    for row in rows:
        subject = f"{row.label} on {row.target}"
        if not row.ok:
            first_line = (row.error or "no error message").splitlines()[0]
            warnings.append(ReportWarning("failed", subject, f"the benchmark failed: {first_line}"))
            continue
        warnings.extend(_sample_warnings(row, subject, policy))
        warnings.extend(_noise_warnings(row, subject, policy))
        if policy.max_drop_points is not None and row.drop_points is not None and row.drop_points > policy.max_drop_points:
            warnings.append(ReportWarning(
                "budget", subject,
                f"accuracy drop {row.drop_points:.2f} points vs the float reference is above the budget of {policy.max_drop_points:g} points",
            ))
    return warnings


def _sample_warnings(row: ArtifactRow, subject: str, policy: WarningPolicy) -> list[ReportWarning]:
    if row.top1 is None or not row.accuracy_samples:
        return []
    half_width = accuracy_half_width_points(row.top1, row.accuracy_samples)
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


def _noise_warnings(row: ArtifactRow, subject: str, policy: WarningPolicy) -> list[ReportWarning]:
    reasons = []
    if row.p50_ms and row.p99_ms is not None and row.p99_ms / row.p50_ms > policy.max_p99_over_p50:
        reasons.append(f"p99/p50 = {row.p99_ms / row.p50_ms:.1f} (limit {policy.max_p99_over_p50:g})")
    if row.mean_ms and row.std_ms is not None and row.std_ms / row.mean_ms > policy.max_latency_cv:
        reasons.append(f"coefficient of variation {row.std_ms / row.mean_ms:.2f} (limit {policy.max_latency_cv:g})")
    if not reasons:
        return []
    runs = f" over {row.timed_runs} runs" if row.timed_runs else ""
    return [ReportWarning(
        "noise", subject,
        f"noisy timings{runs}: {', '.join(reasons)}; pin threads, close other work or use more runs before comparing latencies",
    )]
