"""The self-contained HTML report: inline CSS, inline SVG plots, no script, no external resource.

Every string that comes from a results file (names, paths, errors, hostnames) goes through `html.escape`.
"""

from __future__ import annotations

from html import escape

from edge_sdk.report import plots
from edge_sdk.report.columns import Column, columns_for
from edge_sdk.report.model import ArtifactRow, ReportModel, TargetGroup
from edge_sdk.report.outputs import OUTPUT_HEADER, OUTPUTS_HELP, output_rows
from edge_sdk.report.verdict import Verdict, budget_sentence, pick_sentence
from edge_sdk.report.warnings import ReportWarning, grouped_warnings

_CSS = """
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 2rem auto; max-width: 1400px;
       padding: 0 1rem; color: #1b1f24; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #d0d7de; padding-bottom: 0.2rem; }
.meta { color: #57606a; font-size: 0.9rem; }
.table-wrap { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: 0.8rem; margin: 0.8rem 0; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.4rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
table.results th { vertical-align: bottom; }
th[title] { text-decoration: underline dotted; cursor: help; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.failed td { background: #fff1f0; }
td.noisy { color: #9a6700; font-weight: 600; }
td.fail { color: #cf222e; font-weight: 600; }
td.pass { color: #1a7f37; }
td .detail { display: block; color: #57606a; font-size: 0.9em; font-weight: normal; white-space: nowrap; }
td.noisy .detail, td.fail .detail { color: inherit; font-weight: 600; }
tr.pareto td:nth-child(2) { font-weight: 600; }
/* The artifact column (and its number) stays in view while the wide table scrolls sideways. */
table.results th:nth-child(-n+2), table.results td:nth-child(-n+2) { position: sticky; background: #fff; z-index: 1; }
table.results th:nth-child(-n+2) { background: #f6f8fa; }
table.results th:nth-child(1), table.results td:nth-child(1) { left: 0; min-width: 1.6rem; max-width: 1.6rem; box-sizing: border-box; }
table.results th:nth-child(2), table.results td:nth-child(2) { left: 1.6rem; max-width: 13rem; }
tr.failed td:nth-child(-n+2) { background: #fff1f0; }
#verdict { border: 2px solid #1a7f37; border-radius: 6px; padding: 0.2rem 1rem 0.6rem; background: #f6fff8; }
#verdict h2 { margin-top: 0.6rem; border: none; }
#verdict li.pick { font-weight: 600; } #verdict li.none { color: #cf222e; font-weight: 600; }
#verdict li { margin: 0.3rem 0; overflow-wrap: anywhere; }
details summary { cursor: pointer; font-weight: 600; color: #9a6700; margin: 1rem 0 0.4rem; }
h1, h2, h3, p, li, dd, code { overflow-wrap: anywhere; }
table.provenance { table-layout: fixed; width: 100%; }
table.provenance th { width: 30%; max-width: 11rem; }
table.provenance td { word-break: break-word; }
/* min(): on a phone one plot per row at the screen's width, never a fixed 460 px that runs off it. */
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(460px, 100%), 1fr)); gap: 1rem; }
@media (max-width: 600px) {
  body { margin: 0.5rem auto; padding: 0 0.5rem; } h1 { font-size: 1.3rem; }
  /* On a phone the sticky artifact column wraps, so that the figures beside it keep some room. */
  table.results th:nth-child(2), table.results td:nth-child(2) { white-space: normal; overflow-wrap: anywhere; min-width: 7rem; max-width: 9rem; }
}
figure { margin: 0; border: 1px solid #d0d7de; border-radius: 6px; padding: 0.5rem; background: #fff; }
svg.plot { width: 100%; height: auto; display: block; }
ul.warnings li { margin: 0.3rem 0; }
.warning-kind { display: inline-block; min-width: 5.5rem; font-weight: 600; color: #9a6700; }
.warning-kind.failed, .warning-kind.budget, .warning-kind.gate { color: #cf222e; }
.ok { color: #1a7f37; }
dl.legend { font-size: 0.85rem; display: grid; grid-template-columns: max-content 1fr; gap: 0.1rem 1rem; }
dl.legend dt { font-weight: 600; } dl.legend dd { margin: 0; }
"""


def render_html(model: ReportModel, warnings: list[ReportWarning], verdict: Verdict, title: str = "edge-sdk benchmark report") -> str:
    """The whole report as one HTML document."""
    sources = ", ".join(escape(str(source)) for source in model.sources)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # No script and no resource from anywhere: the page renders the same offline and cannot run injected code.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
        f"<title>{escape(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">Rendered {escape(model.generated_at)} from {sources}. Figures are as measured by <code>edge-sdk bench</code>; '
        "the report derives only size ratios and the Pareto front. Bracketed figures are 95 % intervals.</p>",
        _verdict_section(verdict, model),
        _warnings_section(warnings),
    ]
    for group in model.targets:
        parts.append(_target_section(group))
    parts.append(_legend(columns_for(model.rows)))
    parts.append(_provenance_section(model))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _verdict_section(verdict: Verdict, model: ReportModel) -> str:
    picks = "\n".join(
        f'<li class="{"none" if item.nothing_qualifies else "pick"}">{escape(pick_sentence(item))}</li>' for item in verdict.picks + verdict.overall
    )
    flagged = [(row, verdict.flags_for(row)) for row in model.rows if verdict.flags_for(row)]
    flags = "\n".join(f"<li><strong>#{row.number} {escape(row.label)}</strong> on {escape(row.target)}: {escape('; '.join(items))}</li>" for row, items in flagged)
    flag_block = f'<h3>Flags</h3><ul class="flags">\n{flags}\n</ul>' if flags else ""
    return (f'<section id="verdict"><h2>Verdict</h2><p class="meta">{escape(budget_sentence(verdict))}</p>'
            f'<ul class="picks">\n{picks}\n</ul>{flag_block}</section>')


def _warnings_section(warnings: list[ReportWarning]) -> str:
    if not warnings:
        return '<section id="warnings"><p class="ok">No warnings.</p></section>'
    groups = grouped_warnings(warnings)
    counts = ", ".join(f"{len(items)} {kind}" for kind, items in groups.items())
    blocks = "\n".join(
        '<ul class="warnings">' + "".join(
            f'<li><span class="warning-kind {escape(w.kind)}">{escape(w.kind)}</span> <strong>{escape(w.subject)}</strong>: {escape(w.message)}</li>'
            for w in items
        ) + "</ul>"
        for items in groups.values()
    )
    # Collapsed: the verdict and the tables come first; the warnings are one click away.
    return f'<section id="warnings"><details><summary>Warnings ({len(warnings)}): {escape(counts)}</summary>\n{blocks}\n</details></section>'


def _cell(column: Column, row: ArtifactRow) -> str:
    classes = " ".join(name for name in ("num" if column.numeric else "", column.css_class(row) if column.css_class else "") if name)
    attribute = f' class="{escape(classes)}"' if classes else ""
    detail = column.detail(row) if column.detail else ""
    # The qualifier on its own line keeps the columns narrow enough for the table to fit a laptop screen.
    second_line = f'<span class="detail">{escape(detail)}</span>' if detail else ""
    text = escape(column.cell(row))
    if column.header == "artifact":  # long file names break after "_" and ".", never inside a word
        text = text.replace("_", "_<wbr>").replace(".", ".<wbr>")
    return f"<td{attribute}>{text}{second_line}</td>"


def _target_section(group: TargetGroup) -> str:
    columns = columns_for(group.rows)
    header = "".join(f'<th title="{escape(c.help)}">{escape(c.header)}</th>' if c.help else f"<th>{escape(c.header)}</th>" for c in columns)
    body = []
    for row in group.rows:
        if not row.ok:
            error = (row.error or "").splitlines()[0] if row.error else "failed"
            cells = f"<td class=\"num\">{row.number}</td><td>{escape(row.label)}</td><td colspan=\"{len(columns) - 2}\">FAILED: {escape(error)}</td>"
            body.append(f'<tr class="failed">{cells}</tr>')
            continue
        cells = "".join(_cell(column, row) for column in columns)
        body.append(f'<tr class="{"pareto" if row.pareto else ""}">{cells}</tr>')
    figures = [
        ("latency-accuracy", plots.latency_accuracy_svg(group.rows)),
        ("size", plots.size_svg(group.rows)),
        ("latency-distribution", plots.latency_distribution_svg(group.rows)),
    ]
    figure_html = "\n".join(f'<figure class="{name}">{svg}</figure>' for name, svg in figures if svg)
    return (
        f'<section class="target"><h2>Target: {escape(group.name)}</h2>'
        f'<div class="table-wrap"><table class="results"><thead><tr>{header}</tr></thead><tbody>\n' + "\n".join(body) + "\n</tbody></table></div>"
        f'<div class="plots">\n{figure_html}\n</div>{_outputs_table(group)}</section>'
    )


def _outputs_table(group: TargetGroup) -> str:
    """Every output of every artifact, by kind, per step and streaming (empty when no result compared outputs)."""
    rows = output_rows(group.rows)
    if not rows:
        return ""
    header = "".join(f"<th>{escape(name)}</th>" for name in OUTPUT_HEADER)
    body = "\n".join("<tr>" + "".join(f'<td class="num">{escape(cell)}</td>' if index == 0 else f"<td>{escape(cell)}</td>" for index, cell in enumerate(cells)) + "</tr>"
                     for cells in rows)
    return (f'<h3>Outputs against the float reference</h3><p class="meta">{escape(OUTPUTS_HELP)}</p>'
            f'<div class="table-wrap"><table class="outputs"><thead><tr>{header}</tr></thead><tbody>\n{body}\n</tbody></table></div>')


def _legend(columns: list[Column]) -> str:
    entries = "".join(f"<dt>{escape(c.header)}</dt><dd>{escape(c.help)}</dd>" for c in columns if c.help)
    return f'<section id="columns"><h2>Columns</h2><dl class="legend">{entries}</dl></section>'


def _provenance_section(model: ReportModel) -> str:
    blocks = []
    for source, items in model.provenance:
        rows = "".join(f"<tr><th>{escape(label)}</th><td>{escape(value)}</td></tr>" for label, value in items)
        blocks.append(f'<h3>{escape(source)}</h3><table class="provenance"><tbody>{rows}</tbody></table>')
    return '<section id="provenance"><h2>Provenance</h2>' + "\n".join(blocks) + "</section>"
