"""Plain-text renderings for the terminal: the bench table and the inspect summary."""

from __future__ import annotations

import math
from typing import Any


def _fmt(value: Any, pattern: str, scale: float = 1.0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return pattern.format(value * scale)


def results_table(results: list[dict[str, Any]]) -> str:
    """One row per result: size, latency percentiles, accuracy, drop vs float, agreement, cosine, SQNR."""
    float_sizes = [r["artifact"].get("size_bytes") for r in results if r.get("status") == "ok" and r["artifact"].get("mode") in ("fp32", "float")]
    float_size = float_sizes[0] if float_sizes else None
    header = ["artifact", "format", "mode", "size KB", "x fp32", "load ms", "p50 ms", "p90 ms", "p99 ms", "acc %", "drop pts", "agree %", "cosine", "SQNR dB"]
    rows = [header]
    for result in results:
        artifact = result["artifact"]
        if result.get("status") != "ok":
            rows.append([artifact.get("name", "?"), "-", "-", "FAILED: " + str(result.get("error", "")).splitlines()[0][:60]] + [""] * (len(header) - 4))
            continue
        latency = result["timing"]["latency"]
        accuracy = result.get("accuracy") or {}
        reference = result.get("reference") or {}
        fidelity = reference.get("fidelity") or {}
        size = artifact["size_bytes"]
        rows.append([
            artifact["name"],
            str(artifact.get("format")),
            str(artifact.get("mode")),
            _fmt(size, "{:.1f}", 1 / 1024),
            _fmt(size / float_size if float_size else None, "{:.2f}"),
            _fmt(result["timing"]["load_ms"], "{:.1f}"),
            _fmt(latency["p50_ms"], "{:.3f}"),
            _fmt(latency["p90_ms"], "{:.3f}"),
            _fmt(latency["p99_ms"], "{:.3f}"),
            _fmt(accuracy.get("top1"), "{:.2f}", 100),
            _fmt(reference.get("accuracy_drop_points"), "{:+.2f}"),
            _fmt(fidelity.get("top1_agreement"), "{:.2f}", 100),
            _fmt(fidelity.get("cosine_mean"), "{:.5f}"),
            _fmt(fidelity.get("sqnr_db"), "{:.1f}"),
        ])
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    references = sorted({(r.get("reference") or {}).get("path") for r in results if r.get("reference")} - {None})
    if references:
        lines.append(f"reference: {', '.join(references)}; drop = reference top-1 minus artifact top-1, in points")
    return "\n".join(lines)


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
        lines.append(f"manifest: version {manifest.get('manifest_version')}, {manifest.get('format')} {manifest.get('mode')}, source {manifest.get('source', {}).get('path')}, converted in {manifest.get('conversion_seconds')} s")
        if info.get("verification"):
            lines.append(f"warning: {info['verification']}")
        if manifest.get("preprocess"):
            spec = {k: v for k, v in manifest["preprocess"].items() if v is not None}
            lines.append(f"preprocess: {spec}")
        if manifest.get("calibration"):
            calibration = manifest["calibration"]
            lines.append(f"calibration: {calibration.get('samples')} samples of {calibration.get('path')} (seed {calibration.get('seed')})")
        if manifest.get("validation"):
            lines.append(f"validation: {manifest['validation']}")
        lines.append(f"toolchain: {manifest.get('toolchain')}")
    else:
        lines.append("manifest: none (not converted by edge-sdk): its preprocessing is unknown")
    return "\n".join(lines)
