"""Fidelity of a detector output that packs boxes and scores in one tensor (YOLO-style `output0`).

Box coordinates are large and dominate any whole-tensor figure (cosine, SQNR): an artifact whose class scores
collapsed can still show cosine 0.999. So the packed output is decoded per sample into detections (boxes above a
score threshold, greedy non-maximum suppression), the artifact's detections are matched to the reference's at
IoU >= 0.5 with the same class, and recall / precision against the reference are reported, with the SQNR of the
score rows alone. Pure numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_sdk.errors import UsageError


@dataclass(frozen=True)
class DetectionLayout:
    """Where boxes and scores sit in a packed detection output (per sample, without the batch axis).

    `layout` CN: rows are channels (4 box rows, then one row per class) and columns are candidates, as YOLOv8
    exports (shape (4+C, N)); NC: one row per candidate. `box_format` xywh is centre x, centre y, width, height.
    """

    boxes: tuple[int, int] = (0, 4)  # channel range [start, stop)
    scores: tuple[int, int | None] = (4, None)
    layout: str = "CN"
    box_format: str = "xywh"
    score_threshold: float = 0.25
    iou_threshold: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        return {"boxes": list(self.boxes), "scores": list(self.scores), "layout": self.layout, "box_format": self.box_format,
                "score_threshold": self.score_threshold, "iou_threshold": self.iou_threshold}

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> DetectionLayout:
        """The layout `to_dict` recorded (a manifest's `options.output_kinds.detection_layouts`)."""
        boxes, scores = record.get("boxes") or [0, 4], record.get("scores") or [4, None]
        return cls(boxes=(int(boxes[0]), int(boxes[1])), scores=(int(scores[0]), None if scores[1] is None else int(scores[1])),
                   **{key: record[key] for key in ("layout", "box_format", "score_threshold", "iou_threshold") if key in record})


def _channel_range(text: str, flag: str) -> tuple[int, int | None]:
    """'0-3' -> (0, 4); '4-' -> (4, None); '5' -> (5, 6)."""
    try:
        if "-" in text:
            start, stop = text.split("-", 1)
            return int(start), (int(stop) + 1 if stop else None)
        return int(text), int(text) + 1
    except ValueError as error:
        raise UsageError(f"{flag}: {text!r} is not a channel range like 0-3 or 4-") from error


def parse_detection_layout(text: str, flag: str = "--output-kind") -> DetectionLayout:
    """`boxes=0-3,scores=4-,layout=CN[,format=xywh|xyxy][,score=0.25][,iou=0.5]` -> DetectionLayout."""
    values: dict[str, Any] = {}
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        if key == "boxes":
            values["boxes"] = _channel_range(value, flag)
        elif key == "scores":
            values["scores"] = _channel_range(value, flag)
        elif key == "layout" and value.upper() in ("CN", "NC"):
            values["layout"] = value.upper()
        elif key == "format" and value in ("xywh", "xyxy"):
            values["box_format"] = value
        elif key in ("score", "iou"):
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if not 0.0 < number < 1.0:
                raise UsageError(f"{flag}: {key}={value!r} must be a number between 0 and 1")
            values["score_threshold" if key == "score" else "iou_threshold"] = number
        else:
            raise UsageError(f"{flag}: {part!r} is not understood",
                             fix="describe a detection output like output0:detections:boxes=0-3,scores=4-,layout=CN (format=xywh|xyxy, score=0.25, iou=0.5)")
    layout = DetectionLayout(**values)
    if layout.boxes[1] is None or layout.boxes[1] - layout.boxes[0] != 4:
        raise UsageError(f"{flag}: boxes={text!r} must name exactly 4 channels, e.g. boxes=0-3")
    return layout


# A packed output is recognised from its values (edge_sdk.fidelity.infer_kind) when its box channels hold
# coordinates beyond this (pixels, not normalised 0..1) and every other channel holds scores within [0, 1].
_BOX_COORDINATE_SPAN = 1.5


def infer_detection_layout(values: np.ndarray) -> DetectionLayout | None:
    """The layout of a packed detector output (YOLO-style: 4 box channels, then one score channel per class) told
    from reference values (N, ...), or None when they do not look like one. Channels are the shorter axis of the
    per-sample table; the first 4 must span more than 1.5 (pixel coordinates), the rest must lie within [0, 1]."""
    values = np.asarray(values, dtype=np.float64)
    squeezed = tuple(d for d in values.shape[1:] if d != 1)
    if len(squeezed) != 2 or min(squeezed) < 5 or squeezed[0] == squeezed[1] or not values.size or not np.isfinite(values).all():
        return None
    layout = "CN" if squeezed[0] < squeezed[1] else "NC"
    tables = values.reshape(len(values), *squeezed)
    tables = tables if layout == "NC" else np.swapaxes(tables, 1, 2)  # -> (N, candidates, channels)
    boxes, scores = tables[..., :4], tables[..., 4:]
    if np.abs(boxes).max() <= _BOX_COORDINATE_SPAN or scores.min() < 0.0 or scores.max() > 1.0 or scores.max() == 0.0:
        return None
    return DetectionLayout(layout=layout)


def decode(sample: np.ndarray, layout: DetectionLayout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes xyxy (K,4), scores (K,), classes (K,)) of one sample, after the score threshold and NMS."""
    table = np.asarray(sample, dtype=np.float64).reshape(sample.shape[-2], sample.shape[-1])
    table = table if layout.layout == "NC" else table.T  # -> (candidates, channels)
    boxes = table[:, layout.boxes[0] : layout.boxes[1]]
    scores_all = table[:, layout.scores[0] : layout.scores[1]]
    if scores_all.shape[1] == 0:
        raise UsageError(f"detection layout scores={layout.scores} selects no channel of an output with {table.shape[1]} channels")
    classes = scores_all.argmax(axis=1)
    scores = scores_all.max(axis=1)
    keep = scores >= layout.score_threshold
    boxes, scores, classes = boxes[keep], scores[keep], classes[keep]
    if layout.box_format == "xywh":
        boxes = np.concatenate([boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2], axis=1)
    order = np.argsort(-scores, kind="stable")
    kept: list[int] = []
    for index in order:
        if all(classes[other] != classes[index] or box_iou(boxes[index], boxes[other]) < layout.iou_threshold for other in kept):
            kept.append(int(index))
    return boxes[kept], scores[kept], classes[kept]


def box_iou(first: np.ndarray, second: np.ndarray) -> float:
    """Intersection over union of two xyxy boxes (0 when both are empty)."""
    width = max(0.0, min(first[2], second[2]) - max(first[0], second[0]))
    height = max(0.0, min(first[3], second[3]) - max(first[1], second[1]))
    intersection = width * height
    union = (first[2] - first[0]) * (first[3] - first[1]) + (second[2] - second[0]) * (second[3] - second[1]) - intersection
    return float(intersection / union) if union > 0 else 0.0


def match_count(found: tuple[np.ndarray, np.ndarray, np.ndarray], wanted: tuple[np.ndarray, np.ndarray, np.ndarray], iou_threshold: float) -> int:
    """Greedy one-to-one matches of `found` to `wanted` detections (same class, IoU >= threshold), best score first."""
    used: set[int] = set()
    for index in np.argsort(-found[1], kind="stable"):
        best, best_iou = -1, iou_threshold
        for candidate in range(len(wanted[0])):
            if candidate in used or wanted[2][candidate] != found[2][index]:
                continue
            iou = box_iou(found[0][index], wanted[0][candidate])
            if iou >= best_iou:
                best, best_iou = candidate, iou
        if best >= 0:
            used.add(best)
    return len(used)


def compare_detections(outputs: np.ndarray, reference: np.ndarray, layout: DetectionLayout) -> dict[str, Any]:
    """Matched-detection recall and precision of `outputs` against `reference` ((N, ...) each), and score SQNR."""
    from edge_sdk.metrics import sqnr_db

    matched = found_total = wanted_total = 0
    score_rows_out: list[np.ndarray] = []
    score_rows_ref: list[np.ndarray] = []
    for sample_out, sample_ref in zip(outputs, reference):
        found, wanted = decode(sample_out, layout), decode(sample_ref, layout)
        matched += match_count(found, wanted, layout.iou_threshold)
        found_total += len(found[0])
        wanted_total += len(wanted[0])
        for table, rows in ((sample_out, score_rows_out), (sample_ref, score_rows_ref)):
            table = table.reshape(table.shape[-2], table.shape[-1])
            rows.append((table if layout.layout == "NC" else table.T)[:, layout.scores[0] : layout.scores[1]])
    scores_out, scores_ref = np.stack(score_rows_out), np.stack(score_rows_ref)
    return {
        "kind": "detections",
        "layout": layout.to_dict(),
        "reference_detections": wanted_total,
        "artifact_detections": found_total,
        "matched": matched,
        "recall": matched / wanted_total if wanted_total else None,
        "precision": matched / found_total if found_total else None,
        "score_sqnr_db": _finite(sqnr_db(scores_out, scores_ref)),
        "score_identical": bool(np.array_equal(scores_out, scores_ref)),  # score_sqnr_db null: no noise at all
        "score_signal_zero": not bool(np.any(scores_ref)),  # score_sqnr_db null: undefined
    }


def _finite(value: float) -> float | None:
    """JSON has no infinity: identical scores give None (see 'identical')."""
    return value if math.isfinite(value) else None
