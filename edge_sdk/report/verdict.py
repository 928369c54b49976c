"""The verdict: which artifact to ship, per target and per source model, and plain flags on the others.

The rules, applied to recorded figures only (never a re-measurement):
- With labels, an artifact qualifies when the upper bound of its accuracy drop's 95 % interval against its float
  reference is within the budget (the gate's `--max-drop` / `accuracy_budget`; DEFAULT_BUDGET_POINTS when none).
- Without labels, when its agreement with the float reference passes the fidelity gate: the 95 % (Wilson) lower
  bound of the agreement is at least 100 % minus the budget.
- The recommended artifact is the fastest p50 among those that qualify; "nothing qualifies" is said plainly.
- Where students share a teacher's labels (the pipeline), one overall pick per target with the teacher's fp32
  artifact as the baseline: its top-1 minus the candidate's, with an unpaired interval from both accuracy intervals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from edge_sdk.report.model import FLOAT_MODES, ArtifactRow, ReportModel
from edge_sdk.report.warnings import Z_95

DEFAULT_BUDGET_POINTS = 1.0


@dataclass
class Pick:
    """The recommendation for one (target, source model), or for a target overall against a baseline."""

    target: str
    source: str  # the source model's file name; "all models" for an overall pick
    row: ArtifactRow | None
    basis: str  # "labels" | "fidelity" | "teacher" | "none"
    candidates: int
    qualified: int
    drop_points: float | None = None  # the drop the pick was judged on (vs its reference, or vs the teacher)
    drop_interval: tuple[float, float] | None = None

    @property
    def nothing_qualifies(self) -> bool:
        return self.row is None


@dataclass
class Verdict:
    budget_points: float
    budget_is_default: bool
    picks: list[Pick] = field(default_factory=list)
    overall: list[Pick] = field(default_factory=list)
    flags: dict[int, list[str]] = field(default_factory=dict)  # row number -> plain flags

    def flags_for(self, row: ArtifactRow) -> list[str]:
        return self.flags.get(row.number, [])


def budget_for(model: ReportModel, max_drop_points: float | None) -> tuple[float, bool]:
    """The budget in points and whether it is the default: the one asked for, else the gate's recorded one."""
    if max_drop_points is not None:
        return max_drop_points, False
    recorded = [row.gate["max_drop_points"] for row in model.rows if row.gate and "max_drop_points" in row.gate]
    return (recorded[0], False) if recorded else (DEFAULT_BUDGET_POINTS, True)


def build_verdict(model: ReportModel, max_drop_points: float | None = None, baseline_reference: str | None = None) -> Verdict:
    """Picks per target and source model, the overall pick against `baseline_reference` (the teacher's float model
    path, when students share its labels) and the plain flags of every row."""
    budget, is_default = budget_for(model, max_drop_points)
    verdict = Verdict(budget, is_default)
    for group in model.targets:
        sources = list(dict.fromkeys(row.source_model for row in group.rows))
        for source in sources:
            rows = [row for row in group.rows if row.source_model == source]
            verdict.picks.append(pick(group.name, source, rows, budget))
        if baseline_reference is not None and len(sources) > 1:
            baseline = next((row for row in group.rows if row.ok and row.mode in FLOAT_MODES and row.source_model == str(baseline_reference)), None)
            if baseline is not None:
                verdict.overall.append(overall_pick(group.name, group.rows, baseline, budget))
        for row in group.rows:
            flags = row_flags(row)
            if flags:
                verdict.flags[row.number] = flags
    return verdict


def pick(target: str, source: str, rows: list[ArtifactRow], budget: float) -> Pick:
    """The fastest p50 among the rows that qualify (see the module docstring)."""
    timed = [row for row in rows if row.ok and row.p50_ms is not None]
    basis = "labels" if any(row.drop_ci_points or row.drop_points is not None for row in timed) else (
        "fidelity" if any(row.agreement is not None for row in timed) else "none")
    qualified = [row for row in timed if qualifies(row, budget, basis)]
    best = min(qualified, key=lambda row: row.p50_ms) if qualified else None  # type: ignore[arg-type,return-value]
    name = Path(source).name if source else "(no float reference)"
    return Pick(target, name, best, basis, len(timed), len(qualified),
                best.drop_points if best else None, best.drop_ci_points if best else None)


def qualifies(row: ArtifactRow, budget: float, basis: str) -> bool:
    if basis == "labels":
        upper = drop_upper_points(row)
        return upper is not None and upper <= budget
    if basis == "fidelity":
        lower = agreement_lower_bound(row)
        return lower is not None and 100.0 * lower >= 100.0 - budget
    return False  # nothing to judge accuracy by: no artifact is recommended blind


def drop_upper_points(row: ArtifactRow) -> float | None:
    if row.gate and "drop_upper_points" in row.gate:
        return float(row.gate["drop_upper_points"])
    if row.drop_ci_points is not None:
        return row.drop_ci_points[1]
    return row.drop_points  # results written before intervals existed: the point estimate is all there is


def agreement_lower_bound(row: ArtifactRow) -> float | None:
    """95 % Wilson lower bound of the top-1 agreement with the float reference, on the evaluated samples."""
    if row.agreement is None:
        return None
    samples = int((row.result.get("data") or {}).get("evaluated_samples") or row.accuracy_samples or 0)
    if samples <= 0:
        return row.agreement
    p, z2 = row.agreement, Z_95 * Z_95
    centre = (p + z2 / (2 * samples)) / (1 + z2 / samples)
    spread = Z_95 * math.sqrt(p * (1 - p) / samples + z2 / (4 * samples * samples)) / (1 + z2 / samples)
    return max(0.0, centre - spread)


def overall_pick(target: str, rows: list[ArtifactRow], baseline: ArtifactRow, budget: float) -> Pick:
    """The fastest artifact of any source model whose drop against the baseline (the teacher's fp32 artifact) is
    within the budget. A student's interval is unpaired (each model was judged against its own reference), so it is
    conservative; the teacher's own artifacts keep their paired interval."""
    judged: list[tuple[ArtifactRow, float, tuple[float, float]]] = []
    for row in rows:
        if not row.ok or row.p50_ms is None or row.top1 is None or baseline.top1 is None:
            continue
        if row.source_model == baseline.source_model and row.drop_points is not None and row.drop_ci_points is not None:
            judged.append((row, row.drop_points, row.drop_ci_points))  # the teacher's own artifacts: the paired interval
            continue
        drop = 100.0 * (baseline.top1 - row.top1)
        half = math.hypot(_half_width(baseline), _half_width(row))
        judged.append((row, drop, (drop - half, drop + half)))
    qualified = [item for item in judged if item[2][1] <= budget]
    best = min(qualified, key=lambda item: item[0].p50_ms) if qualified else None  # type: ignore[arg-type,return-value]
    return Pick(target, "all models", best[0] if best else None, "teacher", len(judged), len(qualified),
                best[1] if best else None, best[2] if best else None)


def _half_width(row: ArtifactRow) -> float:
    return 0.0 if row.top1_ci is None else 100.0 * (row.top1_ci[1] - row.top1_ci[0]) / 2.0


def row_flags(row: ArtifactRow) -> list[str]:
    """Plain flags: slower than its fp32 twin, a latency difference within noise, an accuracy interval wider than
    the drop, noisy timings."""
    if not row.ok:
        return []
    flags = []
    twin = row.float_twin
    if twin is not None and twin is not row and row.latency_ratio_to_float is not None:
        if medians_overlap(row, twin):
            flags.append("latency difference from fp32 within noise (the medians' 95 % intervals overlap)")
        elif row.latency_ratio_to_float > 1:
            flags.append(f"{row.mode} is {row.latency_ratio_to_float:.1f}x slower than fp32 here")
    if row.drop_points is not None and row.drop_ci_points is not None and row.drop_points != 0:
        if (row.drop_ci_points[1] - row.drop_ci_points[0]) / 2.0 > abs(row.drop_points):
            flags.append("accuracy interval wider than the drop")
    if row.noisy:
        flags.append("noisy timings")
    artifact = row.result.get("artifact") or {}
    if artifact.get("verified") is False:
        flags.append("unverified: the file was not checked against its manifest, or did not match it")
    if artifact.get("has_manifest") is False:
        flags.append("no manifest: its preprocessing is unknown")
    if artifact.get("validation_failed"):
        flags.append("FAILED validation when converted (kept with --keep-failed)")
    return flags


def medians_overlap(row: ArtifactRow, other: ArtifactRow) -> bool:
    """The two medians' 95 % intervals overlap (results without intervals: never said to overlap)."""
    if row.median_ci_ms is None or other.median_ci_ms is None:
        return False
    return row.median_ci_ms[0] <= other.median_ci_ms[1] and other.median_ci_ms[0] <= row.median_ci_ms[1]


# --- text (terminal and Markdown share it; HTML escapes the same sentences) ---------------------------------


def latency_text(value_ms: float | None) -> str:
    """A latency in 3 significant digits with its unit: microseconds below 1 ms, seconds from 1 s."""
    if value_ms is None or math.isnan(value_ms):
        return "-"
    if math.isinf(value_ms):
        return "inf"
    if abs(value_ms) < 1.0:
        return f"{_sig3(value_ms * 1000.0)} µs"
    if abs(value_ms) >= 1000.0:
        return f"{_sig3(value_ms / 1000.0)} s"
    return f"{_sig3(value_ms)} ms"


def _sig3(value: float) -> str:
    if value == 0:
        return "0"
    digits = max(0, 2 - int(math.floor(math.log10(abs(value)))))
    text = f"{value:.{digits}f}"
    return text if float(text) < 1000 or digits == 0 else f"{value:.0f}"


def budget_sentence(verdict: Verdict) -> str:
    default = " (the default; set --max-drop or accuracy_budget)" if verdict.budget_is_default else ""
    return (f"Budget: accuracy drop at most {verdict.budget_points:g} point{'s' if verdict.budget_points != 1 else ''}"
            f"{default}, judged on the 95 % upper bound of the drop (with labels) or the lower bound of agreement with the float "
            "reference (without); the pick is the fastest p50 among those within it.")


def pick_sentence(item: Pick) -> str:
    """One line: where, what, and the figures it rests on."""
    where = f"{item.target}, {item.source}" if item.source != "all models" else f"{item.target}, all models vs the teacher"
    if item.row is None:
        if item.basis == "none":
            return f"{where}: nothing qualifies: no labels and no float reference, so accuracy cannot be judged"
        return f"{where}: nothing qualifies: none of {item.candidates} artifact(s) is within the budget"
    row = item.row
    parts = [f"p50 {latency_text(row.p50_ms)}"]
    if item.drop_points is not None:
        interval = f" [{item.drop_interval[0]:+.2f}, {item.drop_interval[1]:+.2f}]" if item.drop_interval else ""
        parts.append(f"drop {item.drop_points:+.2f} pts{interval}" + (" vs the teacher" if item.basis == "teacher" else ""))
    elif item.basis == "fidelity" and row.agreement is not None:
        parts.append(f"agreement {100 * row.agreement:.2f} % (no labels)")
    if row.size_bytes is not None:
        ratio = f", x{row.size_ratio_to_float:.2f} fp32" if row.size_ratio_to_float is not None else ""
        parts.append(f"{row.size_bytes / 1024:,.1f} KB{ratio}")
    if row.latency_ratio_to_float is not None and row.float_twin is not row:
        parts.append(f"latency x{row.latency_ratio_to_float:.2f} fp32")
    return f"{where}: ship {row.name} (#{row.number}): " + ", ".join(parts) + f" ({item.qualified} of {item.candidates} qualify)"


def verdict_lines(verdict: Verdict, rows: list[ArtifactRow]) -> list[str]:
    """The verdict as plain lines: picks, overall picks, then one line per flagged artifact."""
    lines = [pick_sentence(item) for item in verdict.picks + verdict.overall]
    for row in rows:
        flags = verdict.flags_for(row)
        if flags:
            lines.append(f"#{row.number} {row.name} on {row.target}: " + "; ".join(flags))
    return lines


def verdict_text(verdict: Verdict, rows: list[ArtifactRow]) -> str:
    """The verdict for a terminal: a heading, the budget, the lines."""
    return "\n".join(["Verdict", budget_sentence(verdict), *(f"  {line}" for line in verdict_lines(verdict, rows))])
