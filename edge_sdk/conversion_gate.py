"""The conversion validation gate: every output of an artifact against its source, each by a figure that fits its kind.

Whole-tensor figures mislead on some outputs: top-1 and cosine over a single value are always perfect, and on a
packed detector output (4 box rows with pixel coordinates, then class-score rows in (0, 1)) cosine and SQNR are
dominated by the boxes: an int8 artifact whose scores collapsed to two values showed cosine 0.9994 / 29 dB
(issue 13). So each output is gated by its kind (edge_sdk.fidelity), against the format table's tolerance for the
mode (edge_sdk.formats.Tolerance):

- class_scores, values, dense_map, sequence, state: the whole tensor's mean cosine (where a sample has more than
  one value) and SQNR;
- detections: the SQNR of the score rows alone and the recall of the reference's detections matched at
  IoU >= 0.5 (edge_sdk.detections); the whole-tensor figures are recorded under `whole_tensor`, never gated;
- every kind: the largest absolute error, for modes with an `atol`.

Pure numpy; the thresholds live only in the format table.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from edge_sdk import metrics
from edge_sdk.errors import EdgeSdkError
from edge_sdk.fidelity import OutputKinds, compare_output, detection_layout_of, kind_of
from edge_sdk.formats import Tolerance

# figure key -> (what the message calls it, its unit, the tolerance field that holds its floor)
_FIGURES = {
    "cosine_mean": ("mean cosine", "", "min_cosine"),
    "sqnr_db": ("SQNR", " dB", "min_sqnr_db"),
    "score_sqnr_db": ("SQNR of the score rows", " dB", "min_sqnr_db"),
    "recall": ("matched-detection recall", "", "min_detection_recall"),
    "max_abs_error": ("max abs error", "", "atol"),
}


def judge_output(name: str, ours: np.ndarray, theirs: np.ndarray, tolerance: Tolerance, given: OutputKinds) -> dict[str, Any]:
    """One output's record: its kind, its figures, and each gate it was held to ({figure, value, threshold,
    passed}; `passed` None when the figure cannot be measured here, with a note why)."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    kind = kind_of(name, theirs, given)
    whole = _whole_tensor(ours, theirs)
    record: dict[str, Any] = {"name": name, "kind": kind}
    if kind == "detections":
        by_kind = compare_output(kind, ours, theirs, given.threshold(name), detection_layout_of(name, theirs, given))
        record.update(score_sqnr_db=by_kind["score_sqnr_db"], recall=by_kind["recall"], precision=by_kind["precision"],
                      max_abs_error=whole["max_abs_error"], identical=whole["identical"],
                      score_identical=bool(by_kind.get("score_identical")), whole_tensor=whole)
        record["whole_tensor"]["note"] = "not gated: the box coordinates dominate a whole-tensor figure"
        checks = [("score_sqnr_db", _sqnr_undefined(by_kind.get("score_signal_zero"), record["score_identical"])),
                  ("recall", "the reference has no detection above the score threshold" if by_kind["recall"] is None else None)]
    else:
        by_kind = _by_kind(kind, ours, theirs, given.threshold(name))
        record.update(whole)
        checks = [("cosine_mean", "a single value per sample: cosine is always 1" if whole["cosine_mean"] is None and not whole["identical"] else None),
                  ("sqnr_db", _sqnr_undefined(whole["signal_zero"], whole["identical"]))]
    checks.append(("max_abs_error", None))
    record["by_kind"] = by_kind
    record["gates"] = [_gate(figure, record.get(figure), tolerance, undefined) for figure, undefined in checks
                       if getattr(tolerance, _FIGURES[figure][2]) is not None]
    record["passed"] = all(gate["passed"] is not False for gate in record["gates"])
    return record


def _whole_tensor(ours: np.ndarray, theirs: np.ndarray) -> dict[str, Any]:
    figures = metrics.fidelity(ours, theirs)
    single_value = int(np.prod(theirs.shape[1:], dtype=np.int64)) < 2  # top-1 and cosine always perfect: left out
    sqnr = figures["sqnr_db"]
    return {
        "cosine_mean": None if single_value or not math.isfinite(figures["cosine_mean"]) else float(figures["cosine_mean"]),
        "top1_agreement": None if single_value else float(figures["top1_agreement"]),
        "sqnr_db": float(sqnr) if math.isfinite(sqnr) else None,
        "max_abs_error": float(figures["max_abs_error"]),
        "mean_abs_error": float(figures["mean_abs_error"]),
        "identical": bool(np.array_equal(ours, theirs)),
        "signal_zero": not bool(np.any(theirs)),
    }


def _sqnr_undefined(signal_zero: bool | None, identical: bool) -> str | None:
    if identical:
        return None  # no noise at all: passes (SQNR infinite, recorded as null)
    return "the reference is all zero: SQNR is undefined" if signal_zero else None


def _by_kind(kind: str, ours: np.ndarray, theirs: np.ndarray, threshold: float) -> dict[str, Any]:
    """The kind's own figures (edge_sdk.fidelity), recorded beside the gate; {} when they cannot be computed."""
    try:
        return compare_output(kind, ours, theirs, threshold, None)
    except (ValueError, EdgeSdkError):
        return {}


def _gate(figure: str, value: float | None, tolerance: Tolerance, undefined: str | None) -> dict[str, Any]:
    threshold = getattr(tolerance, _FIGURES[figure][2])
    gate: dict[str, Any] = {"figure": figure, "value": value, "threshold": threshold}
    if undefined is not None:
        gate.update(passed=None, note=undefined)
    elif value is None:  # identical outputs: no noise, no error
        gate["passed"] = True
    elif figure == "max_abs_error":
        gate["passed"] = value <= threshold
    else:
        gate["passed"] = value >= threshold
    return gate


def failures(records: list[dict[str, Any]]) -> list[str]:
    """'output0 (detections): SQNR of the score rows 0.0 dB, needs >= 10 dB; matched-detection recall 0, needs >= 0.7'
    for every output that failed a gate."""
    lines = []
    for record in records:
        failed = [gate for gate in record["gates"] if gate["passed"] is False]
        if failed:
            lines.append(f"{record['name']} ({record['kind']}): " + "; ".join(_gate_text(gate) for gate in failed))
    return lines


def _gate_text(gate: dict[str, Any]) -> str:
    label, unit, _ = _FIGURES[gate["figure"]]
    bound = "<=" if gate["figure"] == "max_abs_error" else ">="
    value = f"{gate['value']:.1f}" if unit else f"{gate['value']:.4g}"
    return f"{label} {value}{unit}, needs {bound} {gate['threshold']:g}{unit}"


def collapsed_scores(records: list[dict[str, Any]]) -> bool:
    """A packed detections output failed on its scores (their SQNR or the matched recall)."""
    return any(record["kind"] == "detections" and gate["passed"] is False and gate["figure"] in ("score_sqnr_db", "recall")
               for record in records for gate in record["gates"])


def summary(records: list[dict[str, Any]], tolerance: Tolerance) -> dict[str, Any]:
    """The report's top-level figures: the thresholds, and the worst gated cosine / SQNR / error over the outputs."""
    cosines = [r for r in records if r.get("kind") != "detections" and r.get("cosine_mean") is not None]
    worst = min(cosines, key=lambda r: r["cosine_mean"]) if cosines else None
    sqnrs = [value for r in records for value in (r.get("sqnr_db") if r.get("kind") != "detections" else r.get("score_sqnr_db"),) if value is not None]
    report: dict[str, Any] = {
        "min_cosine": tolerance.min_cosine, "min_sqnr_db": tolerance.min_sqnr_db, "atol": tolerance.atol, "min_detection_recall": tolerance.min_detection_recall,
        "cosine_mean": worst["cosine_mean"] if worst else None, "top1_agreement": worst.get("top1_agreement") if worst else None,
        "sqnr_db": min(sqnrs) if sqnrs else None,
        "max_abs_error": max(r["max_abs_error"] for r in records) if records else 0.0,
    }
    recalls = [r["recall"] for r in records if r.get("kind") == "detections" and r.get("recall") is not None]
    if recalls:
        report["detection_recall"] = min(recalls)
    return report


def tolerance_table() -> str:
    """The format table's validation tolerances as a Markdown table (the README copies it; a test keeps them equal)."""
    from edge_sdk.formats import FORMATS

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:g}"

    rows = ["| format | mode | mean cosine >= | SQNR (dB) >= | matched-detection recall >= | max abs error <= |", "| --- | --- | --- | --- | --- | --- |"]
    for spec in FORMATS.values():
        for mode in spec.modes:
            tolerance = spec.tolerance(mode)
            rows.append(f"| {spec.name} | {mode} | {cell(tolerance.min_cosine)} | {cell(tolerance.min_sqnr_db)} | "
                        f"{cell(tolerance.min_detection_recall)} | {cell(tolerance.atol)} |")
    return "\n".join(rows)
