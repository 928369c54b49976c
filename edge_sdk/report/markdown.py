"""The Markdown report, for READMEs and pull requests: the same tables, warnings and provenance as the HTML
report, without the plots (the HTML report has them)."""

from __future__ import annotations

import html
import re

from edge_sdk.report.columns import columns_for
from edge_sdk.report.model import ReportModel, TargetGroup
from edge_sdk.report.outputs import OUTPUT_HEADER, OUTPUTS_HELP, output_rows
from edge_sdk.report.verdict import Verdict, budget_sentence, pick_sentence
from edge_sdk.report.warnings import ReportWarning, grouped_warnings

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|#~!])")


def md_escape(text: str) -> str:
    """Text from a results file as literal Markdown: no HTML (escaped), no emphasis, links or table breaks."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(str(text), quote=False)).replace("\n", " ")


def md_table(header: list[str], rows: list[list[str]], numeric: list[bool] | None = None) -> str:
    """A GitHub-flavoured Markdown table; cells must already be escaped."""
    numeric = numeric or [False] * len(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(model: ReportModel, warnings: list[ReportWarning], verdict: Verdict, title: str = "edge-sdk benchmark report") -> str:
    """The whole report as one Markdown document."""
    sources = ", ".join(md_escape(str(source)) for source in model.sources)
    parts = [
        f"# {md_escape(title)}",
        f"Rendered {md_escape(model.generated_at)} from {sources}. Figures are as measured by `edge-sdk bench`; "
        "the report derives only size ratios and the Pareto front. Bracketed figures are 95 % intervals. Plots are in the HTML report.",
        _verdict(verdict, model),
        _warnings(warnings),
    ]
    parts += [_target(group) for group in model.targets]
    parts.append("## Columns\n\n" + "\n".join(f"- **{md_escape(c.header)}**: {md_escape(c.help)}" for c in columns_for(model.rows) if c.help))
    parts.append(_provenance(model))
    return "\n\n".join(parts) + "\n"


def _verdict(verdict: Verdict, model: ReportModel) -> str:
    """The verdict; an HTML anchor with id="verdict" so that a link to #verdict works where Markdown renders HTML."""
    lines = ['<a id="verdict"></a>', "", "## Verdict", "", md_escape(budget_sentence(verdict)), ""]
    lines += [f"- {md_escape(pick_sentence(item))}" for item in verdict.picks + verdict.overall]
    flagged = [row for row in model.rows if verdict.flags_for(row)]
    if flagged:
        lines += ["", "Flags:", ""]
        lines += [f"- #{row.number} {md_escape(row.label)} on {md_escape(row.target)}: {md_escape('; '.join(verdict.flags_for(row)))}" for row in flagged]
    return "\n".join(lines)


def _warnings(warnings: list[ReportWarning]) -> str:
    if not warnings:
        return "No warnings."
    groups = grouped_warnings(warnings)
    counts = ", ".join(f"{len(items)} {kind}" for kind, items in groups.items())
    blocks = ["\n".join(f"- **{md_escape(w.kind)}** {md_escape(w.subject)}: {md_escape(w.message)}" for w in items) for items in groups.values()]
    # Collapsed where the Markdown renderer supports <details> (GitHub does); plain text elsewhere.
    return f"<details><summary>Warnings ({len(warnings)}): {md_escape(counts)}</summary>\n\n" + "\n\n".join(blocks) + "\n\n</details>"


def _target(group: TargetGroup) -> str:
    columns = columns_for(group.rows)
    rows = []
    for row in group.rows:
        if row.ok:
            rows.append([md_escape(column.text(row)) for column in columns])
        else:
            error = (row.error or "failed").splitlines()[0]
            rows.append([str(row.number), md_escape(row.label), f"FAILED: {md_escape(error)}"] + [""] * (len(columns) - 3))
    table = md_table([md_escape(c.header) for c in columns], rows, [c.numeric for c in columns])
    section = f"## Target: {md_escape(group.name)}\n\n{table}"
    outputs = output_rows(group.rows)
    if outputs:  # every output of every artifact, by kind, per step and streaming
        numeric = [index == 0 for index in range(len(OUTPUT_HEADER))]
        section += (f"\n\n### Outputs against the float reference\n\n{md_escape(OUTPUTS_HELP)}\n\n"
                    + md_table([md_escape(name) for name in OUTPUT_HEADER], [[md_escape(cell) for cell in cells] for cells in outputs], numeric))
    return section


def _provenance(model: ReportModel) -> str:
    blocks = ["## Provenance"]
    for source, items in model.provenance:
        blocks.append(f"### {md_escape(source)}\n\n" + md_table(["item", "value"], [[md_escape(k), md_escape(v)] for k, v in items]))
    return "\n\n".join(blocks)
