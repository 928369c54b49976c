"""The per-target table's columns, shared by the HTML and Markdown renderings."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from edge_sdk.report.model import ArtifactRow


def number(value: float | None, pattern: str, scale: float = 1.0) -> str:
    """A figure for a table cell; '-' when it was not measured."""
    if value is None:
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return pattern.format(value * scale)


def milliseconds(value: float | None) -> str:
    """A latency in three significant digits with its unit (µs below 1 ms), so 5 µs never reads "0.005"."""
    from edge_sdk.report.verdict import latency_text

    return latency_text(value)


def interval(bounds: tuple[float, float] | None, pattern: str, scale: float = 1.0) -> str:
    """A 95 % interval as "[low, high]"; empty when none was recorded."""
    return "" if bounds is None else f"[{number(bounds[0], pattern, scale)}, {number(bounds[1], pattern, scale)}]"


def gate_verdict(row: ArtifactRow) -> str:
    gate = row.gate
    return "-" if not gate else ("pass" if gate["passed"] else "FAIL")


def gate_figures(row: ArtifactRow) -> str:
    """What the verdict rests on: the drop's 95 % upper bound against the budget, in points."""
    gate = row.gate
    return "" if not gate else f"({gate['drop_upper_points']:.2f} {'≤' if gate['passed'] else '>'} {gate['max_drop_points']:g})"


def median_precision(row: ArtifactRow) -> str:
    """The median's 95 % interval half-width as a share of it."""
    half_width = (row.stability or {}).get("median_relative_half_width")
    return "-" if half_width is None else f"±{number(half_width, '{:.2f}', 100)} %"


@dataclass(frozen=True)
class Column:
    header: str
    cell: Callable[[ArtifactRow], str]
    numeric: bool = True
    help: str = ""
    optional: bool = False  # left out of a table where no row has a value
    css_class: Callable[[ArtifactRow], str] | None = None  # HTML only: a class for the cell, to colour a verdict
    detail: Callable[[ArtifactRow], str] | None = None  # a qualifier (interval, marker): a second line in HTML

    def text(self, row: ArtifactRow) -> str:
        """The cell on one line, figure then qualifier, e.g. "97.78 [96.4, 99.1]" (Markdown)."""
        detail = self.detail(row) if self.detail else ""
        return f"{self.cell(row)} {detail}" if detail else self.cell(row)


COLUMNS: list[Column] = [
    Column("#", lambda r: str(r.number), help="the artifact's number, the same in the plots"),
    Column("artifact", lambda r: r.label, numeric=False),
    Column("format", lambda r: str(r.format or "-"), numeric=False),
    Column("precision", lambda r: str(r.mode or "-"), numeric=False),
    Column("size KB", lambda r: number(r.size_bytes, "{:,.1f}", 1 / 1024)),
    Column("size x fp32", lambda r: number(r.size_ratio_to_float, "{:.2f}"), help="size divided by the size of the float (fp32) artifact"),
    Column(
        "latency x fp32", lambda r: number(r.latency_ratio_to_float, "{:.2f}"),
        help="p50 divided by the p50 of the fp32 twin (same source model, format and target); above 1 is slower than fp32",
    ),
    Column("load ms", lambda r: number(r.load_ms, "{:.1f}")),
    Column("p50", lambda r: milliseconds(r.p50_ms), help="median latency of one inference (µs: microseconds, ms: milliseconds)"),
    Column(
        "p50 ±", median_precision, detail=lambda r: "noisy" if r.noisy else "", css_class=lambda r: "noisy" if r.noisy else "",
        help="half-width of the 95 % interval of the median latency, as a share of the median; 'noisy': the run failed its "
        "stability check (median interval wider than the target, warm-up unsettled, or a very large tail; see Warnings)",
    ),
    Column("p90", lambda r: milliseconds(r.p90_ms)),
    Column("p99", lambda r: milliseconds(r.p99_ms)),
    Column("runs/s", lambda r: number(r.throughput_per_s, "{:,.0f}"), help="throughput at the mean latency, one sample per run"),
    Column("peak MB", lambda r: number(r.peak_rss_bytes, "{:,.0f}", 1 / 2**20), help="peak resident memory of the benchmarking process"),
    Column("top-1 %", lambda r: number(r.top1, "{:.2f}", 100), detail=lambda r: interval(r.top1_ci, "{:.1f}", 100), help="top-1 accuracy [seeded bootstrap 95 % interval]"),
    Column(
        "drop pts", lambda r: number(r.drop_points, "{:+.2f}"), detail=lambda r: interval(r.drop_ci_points, "{:+.2f}"),
        help="float reference top-1 minus artifact top-1, in points (positive = worse) [paired bootstrap 95 % interval]",
    ),
    Column(
        "gate", gate_verdict, detail=gate_figures, numeric=False, optional=True, css_class=lambda r: "" if not r.gate else ("pass" if r.gate["passed"] else "fail"),
        help="accuracy gate (--max-drop, accuracy_budget): passes when the drop's 95 % upper bound is within the budget; (upper bound vs budget, points)",
    ),
    Column("agree %", lambda r: number(r.agreement, "{:.2f}", 100), help="samples where artifact and float reference pick the same class"),
    Column("SQNR dB", lambda r: number(r.sqnr_db, "{:.1f}"), help="signal-to-quantization-noise ratio of the outputs against the float reference"),
    Column("Pareto", lambda r: "yes" if r.pareto else "", numeric=False, help="no other artifact is both faster (p50) and more accurate"),
]


def columns_for(rows: list[ArtifactRow]) -> list[Column]:
    """The columns of one table: every column, less the optional ones no row has a value for."""
    ok_rows = [row for row in rows if row.ok]
    return [column for column in COLUMNS if not column.optional or any(column.cell(row) != "-" for row in ok_rows)]
