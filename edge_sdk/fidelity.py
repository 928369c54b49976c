"""Fidelity against the float reference, per output and by what the output is (never pooled across outputs).

A figure has to fit its output: top-1 agreement over a single probability is always 100 %, cosine over a
probability map is dominated by the background, SQNR over a packed detector output is dominated by the box
coordinates. So each output gets a kind (`class_scores`, `values`, `dense_map`, `sequence`, `state`,
`detections`), inferred from its shape and values or given with `--output-kind NAME:KIND`, and the figures of
that kind:

- class_scores: top-1 (and top-5) agreement, SQNR;
- values (probabilities, single values, regressors): absolute / relative error and decision agreement at a
  threshold (`--threshold NAME:VALUE`, default 0.5);
- dense_map: per-pixel agreement and IoU of the masks thresholded at the same threshold;
- sequence ((T, C) per sample): per-position argmax agreement and whole-sequence agreement;
- state: relative error and SQNR;
- detections: see edge_sdk.detections.

Arrays given here hold one row per sample: (N, *per-sample shape). Pure numpy; no runtime is imported.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge_sdk import metrics
from edge_sdk.detections import DetectionLayout, compare_detections, infer_detection_layout, parse_detection_layout
from edge_sdk.errors import UsageError
from edge_sdk.manifest import OUTPUT_KINDS

DEFAULT_THRESHOLD = 0.5
_STATE_NAMES = ("state", "staten", "hn", "cn", "h_n", "c_n", "hidden", "cell")


@dataclass
class OutputKinds:
    """What the user said about outputs: kinds (`--output-kind`), detection layouts and decision thresholds."""

    kinds: dict[str, str] = field(default_factory=dict)
    detection_layouts: dict[str, DetectionLayout] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    state_outputs: frozenset[str] = frozenset()

    def threshold(self, name: str) -> float:
        return self.thresholds.get(name, DEFAULT_THRESHOLD)

    def to_dict(self) -> dict[str, Any]:
        return {"kinds": dict(self.kinds), "thresholds": dict(self.thresholds),
                "detection_layouts": {name: layout.to_dict() for name, layout in self.detection_layouts.items()}}


def parse_output_kinds(texts: list[str] | None, thresholds: list[str] | None = None) -> OutputKinds:
    """`--output-kind NAME:KIND[:SPEC]` (repeatable) and `--threshold NAME:VALUE` (repeatable) -> OutputKinds."""
    parsed = OutputKinds()
    for text in texts or []:
        name, _, rest = text.partition(":")
        kind, _, spec = rest.partition(":")
        if not name or kind not in OUTPUT_KINDS:
            raise UsageError(f"--output-kind {text!r} must be NAME:KIND with KIND one of {', '.join(OUTPUT_KINDS)}",
                             fix="e.g. --output-kind speech_probs:values or --output-kind output0:detections:boxes=0-3,scores=4-,layout=CN")
        if spec and kind != "detections":
            raise UsageError(f"--output-kind {text!r}: only the detections kind takes a layout after the kind")
        parsed.kinds[name] = kind
        if kind == "detections":
            parsed.detection_layouts[name] = parse_detection_layout(spec)
    for text in thresholds or []:
        name, _, value = text.rpartition(":")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not name or not math.isfinite(number):
            raise UsageError(f"--threshold {text!r} must be NAME:VALUE, e.g. --threshold speech_probs:0.5")
        parsed.thresholds[name] = number
    return parsed


def infer_kind(name: str, sample_shape: tuple[int, ...], values: np.ndarray | None = None, state_outputs: frozenset[str] = frozenset()) -> str:
    """The kind of an output from its per-sample shape (no batch axis) and, where it helps, its values.

    One number -> values; a vector -> class_scores; (T, C) rows that sum to 1 -> sequence; a (C, N) or (N, C)
    table whose first 4 channels hold pixel coordinates and the rest scores in [0, 1] -> detections
    (edge_sdk.detections.infer_detection_layout); an image-like map (last two dims >= 8) -> dense_map; anything
    else -> values; outputs paired with an input as state, or named like state (hn, cn, state...) -> state. A
    packed output with normalised boxes cannot be told from a map: describe it with
    --output-kind NAME:detections:boxes=...,scores=....
    """
    if name in state_outputs or name.lower().replace(".", "_") in _STATE_NAMES:
        return "state"
    squeezed = tuple(d for d in sample_shape if d != 1)
    if len(squeezed) == 0:
        return "values"
    if len(squeezed) == 1:
        return "class_scores"
    if len(squeezed) == 2 and values is not None and _rows_sum_to_one(np.asarray(values).reshape(-1, *squeezed)):
        return "sequence"  # a softmax over the last axis at every position (a CTC recogniser's (T, C))
    if len(squeezed) == 2 and values is not None and infer_detection_layout(np.asarray(values).reshape(-1, *sample_shape)) is not None:
        return "detections"
    if min(squeezed[-2:]) >= 8:
        return "dense_map"
    return "values"


def _rows_sum_to_one(values: np.ndarray) -> bool:
    sums = np.asarray(values, dtype=np.float64).sum(axis=-1)
    return bool(np.all(np.abs(sums - 1.0) < 1e-2))


def kind_of(name: str, reference: np.ndarray, given: OutputKinds) -> str:
    """The user's kind for `name`, else the inferred one (from the reference's per-sample shape and values)."""
    if name in given.kinds:
        return given.kinds[name]
    return infer_kind(name, tuple(reference.shape[1:]), reference[:64], given.state_outputs)


def detection_layout_of(name: str, reference: np.ndarray, given: OutputKinds) -> DetectionLayout:
    """The layout of a detections output: the user's (`--output-kind NAME:detections:...`), else inferred from the
    reference's values, else the default (boxes 0-3, scores 4-, CN)."""
    if name in given.detection_layouts:
        return given.detection_layouts[name]
    return infer_detection_layout(np.asarray(reference)[:64]) or DetectionLayout()


def compare_output(kind: str, outputs: np.ndarray, reference: np.ndarray, threshold: float = DEFAULT_THRESHOLD,
                   layout: DetectionLayout | None = None) -> dict[str, Any]:
    """The figures of one output of `kind`: `outputs` and `reference` are (N, ...) arrays of the same shape."""
    outputs, reference = np.asarray(outputs, np.float64), np.asarray(reference, np.float64)
    if outputs.shape != reference.shape:
        raise UsageError(f"the artifact's output has shape {outputs.shape[1:]} per sample, the reference's {reference.shape[1:]}",
                         fix="compare an artifact with the model it was converted from")
    if kind == "detections":
        return compare_detections(outputs, reference, layout or DetectionLayout())
    record: dict[str, Any] = {"kind": kind, "samples": int(outputs.shape[0])}
    record.update(_error_figures(outputs, reference))
    if kind == "class_scores":
        rows_out, rows_ref = outputs.reshape(len(outputs), -1), reference.reshape(len(reference), -1)
        record["top1_agreement"] = metrics.top1_agreement(rows_out, rows_ref)
        if rows_out.shape[1] > 5:
            top5 = np.argsort(-rows_out, axis=1, kind="stable")[:, :5]
            record["top5_agreement"] = float(np.mean(np.any(top5 == rows_ref.argmax(axis=1)[:, None], axis=1)))
        record["cosine_mean"] = metrics.mean_cosine_similarity(rows_out, rows_ref)
    elif kind == "values":
        record.update(_decisions(outputs, reference, threshold))
    elif kind == "dense_map":
        record.update(_decisions(outputs, reference, threshold))
        record["pixel_agreement"] = record.pop("decision_agreement")
        masks_out, masks_ref = outputs > threshold, reference > threshold
        union = np.logical_or(masks_out, masks_ref).sum()
        record["mask_iou"] = float(np.logical_and(masks_out, masks_ref).sum() / union) if union else None
        if not union:
            record["note"] = f"no value above {threshold:g} in either map: mask IoU is undefined"
    elif kind == "sequence":
        positions_out, positions_ref = outputs.argmax(axis=-1), reference.argmax(axis=-1)
        record["position_agreement"] = float(np.mean(positions_out == positions_ref))
        record["sequence_agreement"] = float(np.mean(np.all((positions_out == positions_ref).reshape(len(outputs), -1), axis=1)))
    elif kind != "state":
        raise UsageError(f"output kind {kind!r} is not one of {', '.join(OUTPUT_KINDS)}")
    return record


def _error_figures(outputs: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """Absolute and relative error and SQNR; identical outputs say so instead of an infinite SQNR."""
    difference = outputs - reference
    reference_norm = float(np.linalg.norm(reference))
    sqnr = metrics.sqnr_db(outputs, reference)
    return {
        "max_abs_error": float(np.abs(difference).max()) if difference.size else 0.0,
        "mean_abs_error": float(np.abs(difference).mean()) if difference.size else 0.0,
        "relative_error": float(np.linalg.norm(difference) / reference_norm) if reference_norm > 0 else None,
        "sqnr_db": sqnr if math.isfinite(sqnr) else None,
        "identical": bool(np.array_equal(outputs, reference)),
    }


def _decisions(outputs: np.ndarray, reference: np.ndarray, threshold: float) -> dict[str, Any]:
    """Agreement of the decisions `value > threshold`, and how informative it is (a constant reference is not)."""
    decided_out, decided_ref = outputs > threshold, reference > threshold
    record: dict[str, Any] = {
        "threshold": threshold,
        "decision_agreement": float(np.mean(decided_out == decided_ref)),
        "reference_positive_share": float(np.mean(decided_ref)),
        "artifact_positive_share": float(np.mean(decided_out)),
    }
    if decided_ref.all() or not decided_ref.any():
        record["note"] = f"every reference value is on one side of {threshold:g}: decision agreement says little"
    return record


def compare_outputs(outputs: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray], given: OutputKinds | None = None) -> dict[str, dict[str, Any]]:
    """Figures for every output the reference has, each by its own kind; missing outputs are named, not skipped."""
    given = given or OutputKinds()
    records: dict[str, dict[str, Any]] = {}
    for name, artifact_name in match_outputs(list(outputs), list(reference)).items():
        expected = reference[name]
        if artifact_name is None:
            records[name] = {"kind": None, "error": f"the artifact has no output {name!r} (it has {', '.join(outputs)})"}
            continue
        kind = kind_of(name, np.asarray(expected), given)
        layout = detection_layout_of(name, expected, given) if kind == "detections" else None
        records[name] = compare_output(kind, outputs[artifact_name], expected, given.threshold(name), layout)
        if artifact_name != name:
            records[name]["artifact_output"] = artifact_name
    return records


def match_outputs(artifact_names: list[str], reference_names: list[str]) -> dict[str, str | None]:
    """Reference output -> the artifact output it is compared with: the same name, else (a converter renamed the
    outputs: Keras -> TFLite) the one in the same position when both have as many outputs."""
    matched: dict[str, str | None] = {}
    for position, name in enumerate(reference_names):
        if name in artifact_names:
            matched[name] = name
        elif len(artifact_names) == len(reference_names) and artifact_names[position] not in reference_names:
            matched[name] = artifact_names[position]
        else:
            matched[name] = None
    return matched


def primary_fidelity(outputs: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """The whole-tensor figures of one output (N, ...); top-1 agreement and cosine only where a sample has more
    than one value (over one value they are always perfect: such a figure is left out, not reported as 100 %)."""
    figures: dict[str, Any] = metrics.fidelity(outputs, reference)
    if int(np.prod(np.shape(reference)[1:], dtype=np.int64)) < 2:
        figures["top1_agreement"] = None
        figures["cosine_mean"] = None
    return figures


# Below these, an output's figures are worth a warning (conversion validation; the gates themselves live with the
# format's per-mode tolerances).
WEAK_AGREEMENT = 0.95
WEAK_RELATIVE_ERROR = 0.25


def weak_outputs(records: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """'speech_probs: values, decision agreement 77.0 % (SQNR 5.0 dB)' for each output whose figures are weak."""
    weak = []
    for name, record in records.items():
        key, value = headline(record)
        if value is None:
            continue
        if (key == "relative_error" and value > WEAK_RELATIVE_ERROR) or (key not in ("relative_error", "sqnr_db") and value < WEAK_AGREEMENT):
            weak.append(f"{name}: {describe_record(record)}")
        elif record.get("kind") == "state" and (record.get("relative_error") or 0.0) > WEAK_RELATIVE_ERROR:
            weak.append(f"{name}: state, relative error {record['relative_error']:.3f}")
    return weak


def headline(record: Mapping[str, Any]) -> tuple[str, float | None]:
    """The one figure that best summarises an output's record, with its name (for tables and gates)."""
    for key in ("top1_agreement", "recall", "mask_iou", "position_agreement", "decision_agreement", "sqnr_db"):
        if record.get(key) is not None:
            return key, record[key]
    return "relative_error", record.get("relative_error")


_FIGURE_LABELS = {"top1_agreement": "top-1 agreement", "recall": "matched recall", "mask_iou": "mask IoU",
                  "position_agreement": "per-position agreement", "decision_agreement": "decision agreement",
                  "sqnr_db": "SQNR", "relative_error": "relative error"}


def describe_record(record: Mapping[str, Any]) -> str:
    """'values, decision agreement 76.0 % (SQNR 5.6 dB)' for one output's record."""
    key, value = headline(record)
    if record.get("error"):
        return str(record["error"])
    if value is None:
        return f"{record.get('kind')}: identical" if record.get("identical") else f"{record.get('kind')}: -"
    shown = f"{value:.1f} dB" if key == "sqnr_db" else (f"{value:.3f}" if key == "relative_error" else f"{100 * value:.1f} %")
    extra = f" (SQNR {record['sqnr_db']:.1f} dB)" if key != "sqnr_db" and record.get("sqnr_db") is not None else ""
    return f"{record.get('kind')}, {_FIGURE_LABELS[key]} {shown}{extra}"


def output_lines(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per artifact and output with its kind and headline figure, per step and streaming (terminal)."""
    lines = []
    for result in results:
        reference = result.get("reference") or {}
        name = (result.get("artifact") or {}).get("name")
        for mode, records in (("", reference.get("outputs") or {}), (" streaming", (reference.get("streaming") or {}).get("outputs") or {})):
            for output, record in records.items():
                lines.append(f"{name} {output}{mode}: {describe_record(record)}")
    return lines
