"""edge_sdk.detections: packed boxes + scores decoded, matched and counted; recomputed here by brute force."""

from __future__ import annotations

import numpy as np
import pytest

from edge_sdk.detections import DetectionLayout, box_iou, compare_detections, decode, parse_detection_layout


def _packed(boxes_xywh: np.ndarray, scores: np.ndarray, candidates: int = 50, seed: int = 0) -> np.ndarray:
    """A YOLO-style (4 + C, candidates) table: the given detections first, then low-score noise."""
    rng = np.random.default_rng(seed)
    table = np.zeros((4 + scores.shape[1], candidates))
    table[:4] = rng.uniform(0, 100, (4, candidates))
    table[4:] = rng.uniform(0, 0.1, (scores.shape[1], candidates))
    table[:4, : len(boxes_xywh)] = boxes_xywh.T
    table[4:, : len(boxes_xywh)] = scores.T
    return table


def test_matched_recall_and_precision() -> None:
    boxes = np.array([[20, 20, 10, 10], [60, 60, 20, 20], [80, 20, 10, 10]], float)
    scores = np.array([[0.9, 0.0], [0.0, 0.8], [0.7, 0.0]])
    reference = _packed(boxes, scores)
    # The artifact finds the first box slightly moved, misses the second (score collapsed), and adds a false one.
    moved = boxes.copy()
    moved[0, :2] += 1
    artifact_scores = scores.copy()
    artifact_scores[1] = [0.0, 0.1]
    artifact = _packed(np.vstack([moved, [[40, 80, 10, 10]]]), np.vstack([artifact_scores, [[0.6, 0.0]]]))
    record = compare_detections(artifact[None], reference[None], parse_detection_layout("boxes=0-3,scores=4-,layout=CN"))
    assert record["reference_detections"] == 3 and record["artifact_detections"] == 3
    assert record["matched"] == 2
    assert record["recall"] == pytest.approx(2 / 3) and record["precision"] == pytest.approx(2 / 3)
    score_rows = (artifact[4:].T, reference[4:].T)
    expected = 10 * np.log10(np.sum(score_rows[1] ** 2) / np.sum((score_rows[0] - score_rows[1]) ** 2))
    assert record["score_sqnr_db"] == pytest.approx(expected)


def test_nms_and_layouts() -> None:
    boxes = np.array([[20, 20, 10, 10], [21, 20, 10, 10]], float)
    table = _packed(boxes, np.array([[0.9], [0.8]]))
    kept = decode(table, DetectionLayout())
    assert len(kept[0]) == 1 and kept[1][0] == pytest.approx(0.9)  # the overlapping lower score is suppressed
    assert len(decode(table.T, DetectionLayout(layout="NC"))[0]) == 1
    assert box_iou(np.array([0, 0, 2, 2.0]), np.array([1, 0, 3, 2.0])) == pytest.approx(1 / 3)
