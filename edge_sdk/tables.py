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
    references = sorted({str(r["reference"]["path"]) for r in results if (r.get("reference") or {}).get("path")})
    if references:
        lines.append(f"reference: {', '.join(references)}; drop = reference top-1 minus artifact top-1, in points; [95 % intervals]")
    return "\n".join(lines)


def verdict_summary(results: list[dict[str, Any]], max_drop_points: float | None = None, baseline_reference: str | None = None) -> str:
    """The verdict (edge_sdk/report/verdict.py) for the end of a terminal run: what to ship, per target and model."""
    from edge_sdk.report.verdict import build_verdict, verdict_text

    model = _report_model(results)
    return verdict_text(build_verdict(model, max_drop_points, baseline_reference), model.rows)


def text_table(header: list[str], rows: list[list[str]], indent: str = "  ") -> str:
    """A plain aligned table: a header, a rule, one line per row."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(indent + line for line in lines)


def plain(value: Any) -> str:
    """A value for a person: floats in 6 significant digits, dicts as "key value, ...", lists comma-separated."""
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "-"}[value]
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return ", ".join(f"{key} {plain(item)}" for key, item in value.items() if item is not None)
    if isinstance(value, (list, tuple)):
        return ", ".join(plain(item) for item in value)
    return str(value)


def _size(size_bytes: Any) -> str:
    return "-" if size_bytes is None else f"{size_bytes / 1024:,.1f} KB"


def inspection_text(info: dict[str, Any]) -> str:
    """`edge-sdk inspect` for a person: a summary, the input/output table, the op table, the manifest."""
    summary = [["file", str(info["path"])], ["kind", str(info["kind"])], ["size", f"{_size(info['size_bytes'])} (gzip {_size(info.get('gzip_size_bytes'))})"],
               ["sha256", str(info["sha256"])]]
    tflite, onnx, keras = info.get("tflite"), info.get("onnx"), info.get("keras")
    details = tflite or onnx or keras
    if keras:
        parameters = f", {keras['parameters']:,} parameters" if keras.get("parameters") is not None else ""
        summary.append(["model", f"{keras['framework']} {keras.get('keras_version') or '?'} {keras.get('model_class') or ''}{parameters}".strip()])
        summary += [["note", note] for note in keras.get("notes") or []]
    if onnx:
        summary.append(["opset", f"opset {onnx['opset']}, producer {onnx['producer'] or '-'}" + (f", external data {onnx['external_data']}" if onnx["external_data"] else "")])
    if tflite:
        summary.append(["integer ops", f"integer compute ops: {100 * tflite['integer_op_share']:.0f}%, weight bytes {tflite['weight_bytes']:,}"])
    elif onnx:
        summary.append(["integer ops", f"compute nodes on quantized data: {100 * onnx['integer_op_share']:.0f}%"])
    parts = [text_table(["", ""], summary, indent="").split("\n", 2)[2]]
    if details:
        io_rows = []
        for key in ("inputs", "outputs"):
            for tensor in details["io"][key]:
                quant = tensor.get("quantization")
                io_rows.append([key[:-1], tensor["name"], "?" if tensor["shape"] is None else str(tensor["shape"]), tensor["dtype"],
                                f"{quant['scale']:.6g}" if quant else "-", str(quant["zero_point"]) if quant else "-"])
        parts.append("\n" + text_table(["io", "name", "shape", "dtype", "scale", "zero point"], io_rows))
        what = "layers" if keras else "ops"  # a Keras model is counted in layers (nested models opened)
        parts.append(f"\n{what} ({details['op_count']}):\n" + text_table([what[:-1], "count"], [[name, str(count)] for name, count in details["ops"].items()]))
    manifest = info.get("manifest")
    if manifest:
        if info.get("verification"):
            parts.append(f"\nwarning: {info['verification']}")
        if (manifest.get("validation") or {}).get("status") == "failed":
            parts.append("\nwarning: this artifact FAILED validation against its source (kept with convert --keep-failed): "
                         + "; ".join(manifest["validation"].get("failures") or []))
        for line in manifest.get("warnings") or []:
            parts.append(f"\nwarning: converted with a warning: {line}")
        rows = [["version", plain(manifest.get("manifest_version"))], ["format", plain(manifest.get("format"))], ["mode", plain(manifest.get("mode"))],
                ["source", plain((manifest.get("source") or {}).get("path"))], ["converted in", f"{plain(manifest.get('conversion_seconds'))} s"]]
        if manifest.get("preprocess"):
            rows.append(["preprocess", plain({k: v for k, v in manifest["preprocess"].items() if v is not None})])
        if manifest.get("calibration"):
            calibration = manifest["calibration"]
            rows.append(["calibration", f"calibration: {calibration.get('samples')} samples of {calibration.get('path')} (seed {calibration.get('seed')})"])
        if manifest.get("validation"):
            rows.append(["validation", validation_text(manifest["validation"])])
        for line in manifest.get("warnings") or []:
            rows.append(["warning", line])
        rows.append(["toolchain", plain(manifest.get("toolchain"))])
        parts.append("\nmanifest:\n" + text_table(["item", "value"], rows))
    else:
        parts.append("\nmanifest: none (not converted by edge-sdk): its preprocessing is unknown")
    return "\n".join(parts)


def validation_text(validation: dict[str, Any]) -> str:
    """'passed on 100 samples: output0 (detections) score SQNR 31.2 dB >= 10, recall 1 >= 0.7; ...' (one line per
    artifact in `inspect`; the manifest keeps every figure)."""
    status = validation.get("status")
    if not validation.get("outputs"):
        return plain(validation)
    parts = []
    for output in validation["outputs"]:
        gates = ", ".join(f"{gate['figure']} {_figure(gate['value']) if gate['passed'] is not None else '-'} {'<=' if gate['figure'] == 'max_abs_error' else '>='} {gate['threshold']:g}"
                          + ("" if gate["passed"] is not False else " FAILED") + (f" ({gate['note']})" if gate.get("note") else "")
                          for gate in output.get("gates") or [])
        parts.append(f"{output['name']} ({output.get('kind')}): {gates or '-'}")
    return f"{status} on {validation.get('samples')} samples: " + "; ".join(parts)


def _figure(value: Any) -> str:
    return "identical" if value is None else f"{value:.4g}"
