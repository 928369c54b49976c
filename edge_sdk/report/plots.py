"""Report plots as inline SVG text: latency vs accuracy (Pareto front marked), size, latency distribution.

matplotlib is imported here only, lazily, and drawn through `Figure` (the Agg/SVG canvases, no pyplot, no GUI
backend and no global state). The SVG is trimmed to a bare `<svg>` element with no external reference.
"""

from __future__ import annotations

import io
import itertools
import re
from typing import Any

from edge_sdk.report.model import ArtifactRow

# tab10 then its light companions: 20 artifacts before a colour repeats.
_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
           "#aec7e8", "#ff9896", "#98df8a", "#ffbb78", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5"]
_figure_ids = itertools.count(1)


def _matplotlib() -> Any:
    from edge_sdk._lazy import require

    return require("matplotlib", "report plots")


def _color(rows: list[ArtifactRow], row: ArtifactRow) -> str:
    """One colour per artifact, the same in every plot of a target."""
    return _COLORS[next(i for i, other in enumerate(rows) if other is row) % len(_COLORS)]


def _plain(text: str) -> str:
    """Text for matplotlib that is never read as mathtext (a `$` in a model name stays a `$`)."""
    return text.replace("$", r"\$")


def latency_accuracy_svg(rows: list[ArtifactRow]) -> str | None:
    """p50 latency against top-1 accuracy, one point per artifact; the Pareto front is ringed and joined."""
    # (row, p50 ms, top-1 %) for every artifact that has both figures.
    points = [(row, row.p50_ms, 100 * row.top1) for row in rows if row.ok and row.p50_ms is not None and row.top1 is not None]
    if not points:
        return None
    figure, axes = _figure(6.4, 3.6 + 0.22 * len(points))
    for row, p50_ms, top1_percent in points:
        axes.scatter([p50_ms], [top1_percent], s=70, color=_color(rows, row), zorder=3, label=_plain(row.label))
    front = sorted((point for point in points if point[0].pareto), key=lambda point: point[1])
    if front:
        axes.scatter([p[1] for p in front], [p[2] for p in front], s=260, facecolors="none", edgecolors="black", linewidths=1.2, zorder=2, label="Pareto front")
        axes.step([p[1] for p in front], [p[2] for p in front], where="post", color="black", linewidth=1, linestyle="--", zorder=1)
    _log_if_wide(axes, "x", [p[1] for p in points])
    axes.set_xlabel("p50 latency (ms)")
    axes.set_ylabel("top-1 accuracy (%)")
    axes.set_title("Latency vs accuracy (up and left is better)")
    axes.grid(True, alpha=0.3)
    axes.margins(x=0.15)
    accuracies = [p[2] for p in points]
    pad = max(0.5, 0.25 * (max(accuracies) - min(accuracies)))
    axes.set_ylim(max(0.0, min(accuracies) - pad), min(100.5, max(accuracies) + pad))
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, fontsize=8, frameon=False)
    return _svg(figure)


def size_svg(rows: list[ArtifactRow]) -> str | None:
    """Artifact size in KB, one bar per artifact, labelled with its ratio to the float artifact."""
    sized = [row for row in rows if row.size_bytes is not None]
    if not sized:
        return None
    figure, axes = _figure(6.4, 1.2 + 0.45 * len(sized))
    positions = list(range(len(sized)))[::-1]
    sizes_kb = [row.size_bytes / 1024 for row in sized]  # type: ignore[operator]
    axes.barh(positions, sizes_kb, color=[_color(rows, row) for row in sized], height=0.6)
    axes.set_yticks(positions, [_plain(row.label) for row in sized], fontsize=8)
    for position, size_kb, row in zip(positions, sizes_kb, sized):
        ratio = f"  {size_kb:,.1f} KB" + (f" (x{row.size_ratio_to_float:.2f} fp32)" if row.size_ratio_to_float is not None else "")
        axes.text(size_kb, position, ratio, va="center", fontsize=8)
    axes.set_xlim(0, max(sizes_kb) * 1.45)
    axes.set_xlabel("size (KB)")
    axes.set_title("Artifact size")
    axes.grid(True, axis="x", alpha=0.3)
    return _svg(figure)


def latency_distribution_svg(rows: list[ArtifactRow]) -> str | None:
    """Box plot of every timed run per artifact (box: p25-p75, whiskers: p1-p99, dots beyond)."""
    timed = [row for row in rows if row.ok and row.latencies_ms]
    if not timed:
        return None
    figure, axes = _figure(6.4, 1.2 + 0.45 * len(timed))
    positions = list(range(len(timed)))[::-1]
    boxes = axes.boxplot(
        [row.latencies_ms for row in timed], positions=positions, orientation="horizontal", whis=(1, 99), widths=0.5, patch_artist=True,
        flierprops={"marker": ".", "markersize": 3, "alpha": 0.5}, medianprops={"color": "black", "linewidth": 2},
    )
    for row, box in zip(timed, boxes["boxes"]):
        box.set_facecolor(_color(rows, row))
        box.set_alpha(0.7)
    axes.set_yticks(positions, [_plain(f"{row.label} (n={len(row.latencies_ms)})") for row in timed], fontsize=8)
    _log_if_wide(axes, "x", [value for row in timed for value in row.latencies_ms])
    axes.set_xlabel("latency per run (ms): box p25-p75, whiskers p1-p99")
    axes.set_title("Latency distribution")
    axes.grid(True, axis="x", alpha=0.3)
    return _svg(figure)


def _figure(width_in: float, height_in: float) -> tuple[Any, Any]:
    _matplotlib()
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_in, height_in), layout="constrained")
    return figure, figure.add_subplot()


def _log_if_wide(axes: Any, axis: str, values: list[float]) -> None:
    positive = [value for value in values if value and value > 0]
    # Beyond a 5x spread a linear axis squeezes the typical runs into a line next to one slow outlier.
    if positive and max(positive) / min(positive) > 5:
        (axes.set_xscale if axis == "x" else axes.set_yscale)("log")
        # Labelled minor ticks (3x10^-3, 4x10^-3, ...) run into each other; the major decades are enough.
        from matplotlib.ticker import NullFormatter

        (axes.xaxis if axis == "x" else axes.yaxis).set_minor_formatter(NullFormatter())


def _svg(figure: Any) -> str:
    matplotlib = _matplotlib()
    buffer = io.StringIO()
    # Text stays text (selectable, no glyph paths) and ids are stable from run to run.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "edge-sdk"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    return inline_svg(buffer.getvalue(), f"fig{next(_figure_ids)}")


def inline_svg(svg: str, id_prefix: str) -> str:
    """A bare `<svg>` element fit for inlining into HTML: no XML prolog, DOCTYPE, metadata, namespace URLs or fixed
    size, and every id prefixed so that several figures in one page never share an id."""
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    # The HTML parser puts inline <svg> in the SVG namespace (and xlink:href in XLink) by itself.
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg, count=0)
    svg = re.sub(r'(<svg[^>]*?)\s+width="[^"]*"\s+height="[^"]*"', r"\1", svg, count=1)
    ids = set(re.findall(r'\sid="([^"]+)"', svg))
    svg = re.sub(r'(\sid=")([^"]+)"', lambda m: f'{m.group(1)}{id_prefix}-{m.group(2)}"', svg)
    svg = re.sub(r"#([A-Za-z_][\w.-]*)", lambda m: f"#{id_prefix}-{m.group(1)}" if m.group(1) in ids else m.group(0), svg)
    return svg.replace("<svg", '<svg class="plot" role="img"', 1)
