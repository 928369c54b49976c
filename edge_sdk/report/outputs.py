"""The per-output table of a report: for each artifact and each output its kind and headline figure against the
float reference, per step and streaming, as `edge-sdk bench` recorded them (edge_sdk.fidelity). Plain text cells:
the HTML and Markdown renderers escape them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edge_sdk.fidelity import _FIGURE_LABELS, headline
from edge_sdk.report.model import ArtifactRow

OUTPUT_HEADER = ["#", "artifact", "output", "kind", "per step", "streaming"]
OUTPUTS_HELP = ("Each output compared with the float reference by its kind (class scores: top-1 agreement; probabilities and "
                "single values: decision agreement; maps: mask IoU; detections: matched recall; state: SQNR). Per step: each model "
                "got the reference's state; streaming: each carried its own state through each sequence.")


def figure_text(record: Mapping[str, Any] | None) -> str:
    """'top-1 agreement 98.0 % (SQNR 31.2 dB)' for one output's record; '' when there is none."""
    if not record:
        return ""
    if record.get("error"):
        return str(record["error"])
    key, value = headline(record)
    if value is None:
        return "identical" if record.get("identical") else "-"
    shown = f"{value:.1f} dB" if key == "sqnr_db" else (f"{value:.3f}" if key == "relative_error" else f"{100 * value:.1f} %")
    extra = f" (SQNR {record['sqnr_db']:.1f} dB)" if key != "sqnr_db" and record.get("sqnr_db") is not None else ""
    return f"{_FIGURE_LABELS.get(key, key)} {shown}{extra}"


def output_rows(rows: list[ArtifactRow]) -> list[list[str]]:
    """One row per artifact and output: number, artifact, output, kind, per-step figure, streaming figure."""
    table = []
    for row in rows:
        reference = (row.result or {}).get("reference") or {}
        per_step = reference.get("outputs") or {}
        streaming = (reference.get("streaming") or {}).get("outputs") or {}
        for name in list(per_step) + [name for name in streaming if name not in per_step]:
            record = per_step.get(name) or streaming.get(name) or {}
            table.append([str(row.number), row.label, str(name), str(record.get("kind") or "-"), figure_text(per_step.get(name)), figure_text(streaming.get(name))])
    return table
