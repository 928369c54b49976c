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

# Colour = source model (Okabe-Ito: distinguishable, also for colour-blind readers), marker = format and precision;
# every point also carries its artifact number, the first column of the table.
_COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "h"]
_figure_ids = itertools.count(1)


def _matplotlib() -> Any:
    from edge_sdk._lazy import require

    return require("matplotlib", "report plots")


def _keys(rows: list[ArtifactRow], key: Any) -> list[str]:
    return list(dict.fromkeys(key(row) for row in rows))


def _source_name(row: ArtifactRow) -> str:
    return row.source_model.rsplit("/", 1)[-1] or "artifacts"


def _kind(row: ArtifactRow) -> str:
    return f"{row.format or '?'} {row.mode or '?'}"


def _color(rows: list[ArtifactRow], row: ArtifactRow) -> str:
    """One colour per source model (per artifact when there is a single source), the same in every plot of a target."""
    sources = _keys(rows, _source_name)
    if len(sources) == 1:
        return _COLORS[next(i for i, other in enumerate(rows) if other is row) % len(_COLORS)]
    return _COLORS[sources.index(_source_name(row)) % len(_COLORS)]


def _marker(rows: list[ArtifactRow], row: ArtifactRow) -> str:
    return _MARKERS[_keys(rows, _kind).index(_kind(row)) % len(_MARKERS)]


def _plain(text: str) -> str:
    """Text for matplotlib that is never read as mathtext (a `$` in a model name stays a `$`)."""
    return text.replace("$", r"\$")


def latency_unit(values_ms: list[float]) -> tuple[str, float]:
    """("µs", 1000) when the typical (median) value is below 1 ms, so that 0.00191 ms reads 1.91 µs; else ("ms", 1).
    The median, not the maximum: one slow outlier run must not turn every typical run into "0.002"."""
    finite = sorted(value for value in values_ms if value is not None and value > 0)
    return ("µs", 1000.0) if finite and finite[len(finite) // 2] < 1.0 else ("ms", 1.0)


def _quartiles(row: ArtifactRow) -> tuple[float, float] | None:
    if len(row.latencies_ms) < 4:
        return None
    ordered = sorted(row.latencies_ms)
    return ordered[len(ordered) // 4], ordered[(3 * len(ordered)) // 4]


def latency_accuracy_svg(rows: list[ArtifactRow]) -> str | None:
    """p50 latency against top-1 accuracy, one numbered point per artifact with error bars (accuracy: 95 % interval,
    latency: p25-p75); the Pareto front is ringed and joined."""
    points = [row for row in rows if row.ok and row.p50_ms is not None and row.top1 is not None]
    if not points:
        return None
    unit, scale = latency_unit([row.p50_ms for row in points] + [value for row in points for value in (_quartiles(row) or ())])  # type: ignore[arg-type,misc]
    figure, axes = _figure(6.4, 4.4)
    for row in points:
        x, y = row.p50_ms * scale, 100 * row.top1  # type: ignore[operator]
        quartiles = _quartiles(row)
        xerr = [[max(0.0, x - quartiles[0] * scale)], [max(0.0, quartiles[1] * scale - x)]] if quartiles else None
        yerr = [[y - 100 * row.top1_ci[0]], [100 * row.top1_ci[1] - y]] if row.top1_ci else None
        color = _color(rows, row)
        axes.errorbar([x], [y], xerr=xerr, yerr=yerr, fmt="none", ecolor=color, elinewidth=1, capsize=2, alpha=0.6, zorder=2)
        axes.scatter([x], [y], s=60, color=color, marker=_marker(rows, row), edgecolors="white", linewidths=0.6, zorder=3)
        axes.annotate(str(row.number), (x, y), xytext=(5, 4), textcoords="offset points", fontsize=8, fontweight="bold", color=color, zorder=4)
    front = sorted((row for row in points if row.pareto), key=lambda row: row.p50_ms)  # type: ignore[arg-type,return-value]
    if front:
        xs, ys = [row.p50_ms * scale for row in front], [100 * row.top1 for row in front]  # type: ignore[operator]
        axes.scatter(xs, ys, s=220, facecolors="none", edgecolors="black", linewidths=1.0, zorder=1)
        axes.step(xs, ys, where="post", color="black", linewidth=1, linestyle="--", zorder=1)
    _readable_axis(axes, "x", [row.p50_ms * scale for row in points])  # type: ignore[operator]
    axes.set_xlabel(f"p50 latency ({unit}); bars: p25-p75")
    axes.set_ylabel("top-1 accuracy (%); bars: 95 % interval")
    axes.set_title("Latency vs accuracy (up and left is better)")
    axes.grid(True, alpha=0.3)
    axes.margins(x=0.12)
    lows = [100 * (row.top1_ci[0] if row.top1_ci else row.top1) for row in points]  # type: ignore[operator]
    highs = [100 * (row.top1_ci[1] if row.top1_ci else row.top1) for row in points]  # type: ignore[operator]
    pad = max(0.3, 0.1 * (max(highs) - min(lows)))
    axes.set_ylim(max(0.0, min(lows) - pad), min(100.5, max(highs) + pad))
    _legend(axes, rows, points, front_drawn=bool(front))
    return _svg(figure)


def _legend(axes: Any, rows: list[ArtifactRow], points: list[ArtifactRow], front_drawn: bool) -> None:
    """Colours name the source models and markers the format and precision; the numbers are the table's."""
    from matplotlib.lines import Line2D

    handles, labels = [], []
    if len(_keys(rows, _source_name)) > 1:
        for source in _keys(points, _source_name):
            color = _color(rows, next(row for row in points if _source_name(row) == source))
            handles.append(Line2D([], [], marker="o", linestyle="", color=color))
            labels.append(_plain(source))
    for kind in _keys(points, _kind):
        handles.append(Line2D([], [], marker=_marker(rows, next(row for row in points if _kind(row) == kind)), linestyle="", color="#555555"))
        labels.append(_plain(kind))
    if front_drawn:
        handles.append(Line2D([], [], marker="o", linestyle="--", markerfacecolor="none", color="black"))
        labels.append("Pareto front")
    axes.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize=8, frameon=False)


def size_svg(rows: list[ArtifactRow]) -> str | None:
    """Artifact size in KB, one bar per artifact, labelled with its ratio to the float artifact."""
    sized = [row for row in rows if row.size_bytes is not None]
    if not sized:
        return None
    figure, axes = _figure(6.4, 1.2 + 0.4 * len(sized))
    positions = list(range(len(sized)))[::-1]
    sizes_kb = [row.size_bytes / 1024 for row in sized]  # type: ignore[operator]
    axes.barh(positions, sizes_kb, color=[_color(rows, row) for row in sized], height=0.6)
    axes.set_yticks(positions, [_plain(f"{row.number} {row.name}") for row in sized], fontsize=8)
    for position, size_kb, row in zip(positions, sizes_kb, sized):
        ratio = f"  {size_kb:,.1f} KB" + (f" (x{row.size_ratio_to_float:.2f} fp32)" if row.size_ratio_to_float is not None else "")
        axes.text(size_kb, position, ratio, va="center", fontsize=8)
    axes.set_xlim(0, max(sizes_kb) * 1.6)
    axes.set_xlabel("size (KB)")
    axes.set_title("Artifact size")
    axes.grid(True, axis="x", alpha=0.3)
    return _svg(figure)


def latency_distribution_svg(rows: list[ArtifactRow]) -> str | None:
    """Box plot of every timed run per artifact (box: p25-p75, whiskers: p1-p99, dots beyond)."""
    timed = [row for row in rows if row.ok and row.latencies_ms]
    if not timed:
        return None
    unit, scale = latency_unit([value for row in timed for value in row.latencies_ms])
    figure, axes = _figure(6.4, 1.2 + 0.4 * len(timed))
    positions = list(range(len(timed)))[::-1]
    boxes = axes.boxplot(
        [[value * scale for value in row.latencies_ms] for row in timed], positions=positions, orientation="horizontal", whis=(1, 99), widths=0.5,
        patch_artist=True, flierprops={"marker": ".", "markersize": 3, "alpha": 0.5}, medianprops={"color": "black", "linewidth": 2},
    )
    for row, box in zip(timed, boxes["boxes"]):
        box.set_facecolor(_color(rows, row))
        box.set_alpha(0.7)
    axes.set_yticks(positions, [_plain(f"{row.number} {row.name} (n={len(row.latencies_ms)})") for row in timed], fontsize=8)
    _readable_axis(axes, "x", [value * scale for row in timed for value in row.latencies_ms])
    axes.set_xlabel(f"latency per run ({unit}): box p25-p75, whiskers p1-p99")
    axes.set_title("Latency distribution")
    axes.grid(True, axis="x", alpha=0.3)
    return _svg(figure)


def _figure(width_in: float, height_in: float) -> tuple[Any, Any]:
    _matplotlib()
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_in, height_in), layout="constrained")
    return figure, figure.add_subplot()


def _readable_axis(axes: Any, axis: str, values: list[float]) -> None:
    """Log scale beyond a 5x spread (a linear axis squeezes the typical runs next to one slow outlier), with plain
    numbers on every labelled tick (1, 2, 5 per decade) instead of a lone "10^-2"."""
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    which = axes.xaxis if axis == "x" else axes.yaxis
    positive = [value for value in values if value and value > 0]
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    if positive and max(positive) / min(positive) > 5:
        (axes.set_xscale if axis == "x" else axes.set_yscale)("log")
        # 1-2-5 per decade while they fit; over more than two decades, one labelled tick per decade.
        subs = (1.0, 2.0, 5.0) if max(positive) / min(positive) <= 100 else (1.0,)
        which.set_major_locator(LogLocator(base=10, subs=subs))
        which.set_major_formatter(plain)
        which.set_minor_formatter(NullFormatter())
    else:
        which.set_major_locator(MaxNLocator(nbins=6))
        which.set_major_formatter(plain)


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
