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


@dataclass(frozen=True)
class Column:
    header: str
    cell: Callable[[ArtifactRow], str]
    numeric: bool = True
    help: str = ""


COLUMNS: list[Column] = [
    Column("artifact", lambda r: r.label, numeric=False),
    Column("format", lambda r: str(r.format or "-"), numeric=False),
    Column("precision", lambda r: str(r.mode or "-"), numeric=False),
    Column("size KB", lambda r: number(r.size_bytes, "{:,.1f}", 1 / 1024)),
    Column("x fp32", lambda r: number(r.size_ratio_to_float, "{:.2f}"), help="size divided by the size of the float (fp32) artifact"),
    Column("load ms", lambda r: number(r.load_ms, "{:.1f}")),
    Column("p50 ms", lambda r: number(r.p50_ms, "{:.3f}")),
    Column("p90 ms", lambda r: number(r.p90_ms, "{:.3f}")),
    Column("p99 ms", lambda r: number(r.p99_ms, "{:.3f}")),
    Column("runs/s", lambda r: number(r.throughput_per_s, "{:,.0f}"), help="throughput at the mean latency, one sample per run"),
    Column("peak MB", lambda r: number(r.peak_rss_bytes, "{:,.0f}", 1 / 2**20), help="peak resident memory of the benchmarking process"),
    Column("top-1 %", lambda r: number(r.top1, "{:.2f}", 100)),
    Column("drop pts", lambda r: number(r.drop_points, "{:+.2f}"), help="float reference top-1 minus artifact top-1, in points (positive = worse)"),
    Column("agree %", lambda r: number(r.agreement, "{:.2f}", 100), help="samples where artifact and float reference pick the same class"),
    Column("SQNR dB", lambda r: number(r.sqnr_db, "{:.1f}"), help="signal-to-quantization-noise ratio of the outputs against the float reference"),
    Column("Pareto", lambda r: "yes" if r.pareto else "", numeric=False, help="no other artifact is both faster (p50) and more accurate"),
]
