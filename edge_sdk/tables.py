"""Plain-text renderings for the terminal: the bench table and the inspect summary."""

from __future__ import annotations

from typing import Any


# The report's columns (edge_sdk/report/columns.py), by the same names, less those a terminal has no room for.
TERMINAL_COLUMNS = ("#", "artifact", "format", "precision", "size KB", "size x fp32", "latency x fp32", "p50", "p50 ±", "p99",
                    "top-1 %", "drop pts", "gate", "agree %")


def _report_model(results: list[dict[str, Any]]) -> Any:
    from pathlib import Path

    from edge_sdk.report.model import build_model

    return build_model([{"results": results}], [Path("results.json")])


def results_table(results: list[dict[str, Any]]) -> str:
    """One row per result, with the report's column names: 3 significant digits with units, the 95 % intervals,
    the noisy flag and the gate's verdict."""
    from edge_sdk.report.columns import columns_for

    model = _report_model(results)
    columns = [column for column in columns_for(model.rows) if column.header in TERMINAL_COLUMNS]
    rows = [[column.header for column in columns]]
    for row in model.rows:
        if row.ok:
            rows.append([column.text(row) for column in columns])
        else:
            rows.append([str(row.number), row.label, "FAILED: " + str(row.error or "").splitlines()[0][:80]] + [""] * (len(columns) - 3))
    widths = [max(len(row[i]) for row in rows if not row[i].startswith("FAILED")) for i in range(len(columns))]

    def line(cells: list[str]) -> str:
        if len(cells) > 2 and cells[2].startswith("FAILED"):
            return f"{cells[0].rjust(widths[0])}  {cells[1].ljust(widths[1])}  {cells[2]}"
        return "  ".join(cell.rjust(widths[i]) if columns[i].numeric else cell.ljust(widths[i]) for i, cell in enumerate(cells)).rstrip()

    lines = [line(row) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    references = sorted({(r.get("reference") or {}).get("path") for r in results if r.get("reference")} - {None})
    if references:
        lines.append(f"reference: {', '.join(references)}; drop = reference top-1 minus artifact top-1, in points; [95 % intervals]")
    return "\n".join(lines)


def verdict_summary(results: list[dict[str, Any]], max_drop_points: float | None = None, baseline_reference: str | None = None) -> str:
    """The verdict (edge_sdk/report/verdict.py) for the end of a terminal run: what to ship, per target and model."""
    from edge_sdk.report.verdict import build_verdict, verdict_text

    model = _report_model(results)
    return verdict_text(build_verdict(model, max_drop_points, baseline_reference), model.rows)


def inspection_text(info: dict[str, Any]) -> str:
    lines = [f"{info['path']}  ({info['kind']}, {info['size_bytes']} bytes, gzip {info.get('gzip_size_bytes', '-')} bytes)", f"sha256 {info['sha256']}"]
    tflite = info.get("tflite")
    if tflite:
        for key in ("inputs", "outputs"):
            for tensor in tflite["io"][key]:
                quant = tensor.get("quantization")
                quant_text = f" scale={quant['scale']:.6g} zero_point={quant['zero_point']}" if quant else ""
                lines.append(f"{key[:-1]:6} {tensor['name']} {tensor['shape']} {tensor['dtype']}{quant_text}")
        lines.append(f"ops ({tflite['op_count']}): " + ", ".join(f"{name} x{count}" for name, count in tflite["ops"].items()))
        lines.append(f"integer compute ops: {100 * tflite['integer_op_share']:.0f}%   weight bytes: {tflite['weight_bytes']}")
    onnx = info.get("onnx")
    if onnx:
        lines.append(f"opset {onnx['opset']}, producer {onnx['producer'] or '-'}" + (f", external data {onnx['external_data']}" if onnx["external_data"] else ""))
        for key in ("inputs", "outputs"):
            for tensor in onnx["io"][key]:
                lines.append(f"{key[:-1]:6} {tensor['name']} {tensor['shape']} {tensor['dtype']}")
        lines.append(f"ops ({onnx['op_count']}): " + ", ".join(f"{name} x{count}" for name, count in onnx["ops"].items()))
        lines.append(f"compute nodes on quantized data: {100 * onnx['integer_op_share']:.0f}%")
    manifest = info.get("manifest")
    if manifest:
        lines.append(f"manifest: mode {manifest.get('mode')}, source {manifest.get('source', {}).get('path')}, converted in {manifest.get('conversion_seconds')} s")
        if manifest.get("preprocess"):
            spec = {k: v for k, v in manifest["preprocess"].items() if v is not None}
            lines.append(f"preprocess: {spec}")
        if manifest.get("calibration"):
            calibration = manifest["calibration"]
            lines.append(f"calibration: {calibration['samples']} samples of {calibration['path']} (seed {calibration['seed']})")
        if manifest.get("validation"):
            lines.append(f"validation: {manifest['validation']}")
        lines.append(f"toolchain: {manifest.get('toolchain')}")
    else:
        lines.append("manifest: none (not converted by edge-sdk)")
    return "\n".join(lines)
