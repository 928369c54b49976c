"""edge_sdk.fidelity: figures per output kind, recomputed here with plain numpy."""

from __future__ import annotations

import numpy as np
import pytest

from edge_sdk.errors import UsageError
from edge_sdk.fidelity import OutputKinds, compare_output, compare_outputs, headline, infer_kind, parse_output_kinds


def test_kinds_are_inferred_from_shape_and_values() -> None:
    rng = np.random.default_rng(0)
    softmax = rng.random((4, 25, 40))
    softmax /= softmax.sum(axis=-1, keepdims=True)
    assert infer_kind("speech_probs", ()) == "values"
    assert infer_kind("output", (1,)) == "values"
    assert infer_kind("logits", (10,)) == "class_scores"
    assert infer_kind("softmax", (25, 40), softmax) == "sequence"
    assert infer_kind("sigmoid", (1, 64, 64), rng.random((2, 1, 64, 64))) == "dense_map"
    assert infer_kind("boxes", (100, 4), rng.random((2, 100, 4))) == "values"
    assert infer_kind("hn", (1, 1, 128)) == "state"
    assert infer_kind("out", (2, 128), state_outputs=frozenset({"out"})) == "state"


def test_a_single_value_gets_no_argmax_agreement_and_its_decisions_are_counted() -> None:
    rng = np.random.default_rng(1)
    reference = rng.random((200, 1))
    outputs = np.clip(reference + rng.normal(0, 0.1, reference.shape), 0, 1)
    record = compare_output("values", outputs, reference, threshold=0.5)
    assert "top1_agreement" not in record  # argmax over one value is always 100 %: never reported
    assert record["decision_agreement"] == pytest.approx(np.mean((outputs > 0.5) == (reference > 0.5)))
    assert record["decision_agreement"] < 1.0
    assert record["max_abs_error"] == pytest.approx(np.abs(outputs - reference).max())
    assert headline(record)[0] == "decision_agreement"


def test_constant_reference_decisions_are_flagged() -> None:
    record = compare_output("values", np.full((5, 1), 0.2), np.full((5, 1), 0.1))
    assert record["decision_agreement"] == 1.0 and "says little" in record["note"]


def test_dense_map_pixel_agreement_and_mask_iou() -> None:
    rng = np.random.default_rng(2)
    reference = rng.random((3, 1, 32, 32))
    outputs = reference + rng.normal(0, 0.05, reference.shape)
    record = compare_output("dense_map", outputs, reference, threshold=0.7)
    masks_out, masks_ref = outputs > 0.7, reference > 0.7
    assert record["pixel_agreement"] == pytest.approx(np.mean(masks_out == masks_ref))
    assert record["mask_iou"] == pytest.approx((masks_out & masks_ref).sum() / (masks_out | masks_ref).sum())
    assert 0.5 < record["mask_iou"] < 1.0


def test_class_scores_sequence_and_state() -> None:
    rng = np.random.default_rng(3)
    reference = rng.normal(size=(50, 10))
    outputs = reference + rng.normal(0, 0.5, reference.shape)
    record = compare_output("class_scores", outputs, reference)
    assert record["top1_agreement"] == pytest.approx(np.mean(outputs.argmax(1) == reference.argmax(1)))
    assert "top5_agreement" in record
    sequence = compare_output("sequence", outputs.reshape(5, 10, 10), reference.reshape(5, 10, 10))
    assert sequence["position_agreement"] == pytest.approx(record["top1_agreement"])
    state = compare_output("state", outputs, reference)
    assert state["relative_error"] == pytest.approx(np.linalg.norm(outputs - reference) / np.linalg.norm(reference))
    assert state["sqnr_db"] == pytest.approx(10 * np.log10(np.sum(reference**2) / np.sum((outputs - reference) ** 2)))


def test_identical_outputs_have_no_infinite_sqnr() -> None:
    reference = np.ones((2, 3))
    record = compare_output("state", reference, reference)
    assert record["identical"] and record["sqnr_db"] is None


def test_every_output_is_compared_separately() -> None:
    reference = {"probs": np.array([0.1, 0.9, 0.8]), "hn": np.ones((3, 1, 1, 4))}
    outputs = {"probs": np.array([0.2, 0.4, 0.9]), "hn": np.ones((3, 1, 1, 4)) * 1.1}
    records = compare_outputs(outputs, reference)
    assert records["probs"]["kind"] == "values" and records["probs"]["decision_agreement"] == pytest.approx(2 / 3)
    assert records["hn"]["kind"] == "state" and records["hn"]["relative_error"] == pytest.approx(0.1)
    assert "no output" in compare_outputs({"probs": outputs["probs"]}, reference)["hn"]["error"]


def test_parse_output_kinds_and_thresholds() -> None:
    given = parse_output_kinds(["speech_probs:values", "output0:detections:boxes=0-3,scores=4-,layout=CN"], ["speech_probs:0.3"])
    assert given.kinds == {"speech_probs": "values", "output0": "detections"}
    assert given.detection_layouts["output0"].scores == (4, None)
    assert given.threshold("speech_probs") == 0.3 and given.threshold("other") == 0.5
    assert isinstance(given, OutputKinds)
    for bad in (["x:nonsense"], ["x"], ["x:values:boxes=0-3"], ["o:detections:boxes=0-2"], ["o:detections:what=1"]):
        with pytest.raises(UsageError):
            parse_output_kinds(bad)
    with pytest.raises(UsageError):
        parse_output_kinds(None, ["x:high"])


def test_renamed_outputs_are_matched_by_position() -> None:
    from edge_sdk.fidelity import match_outputs

    assert match_outputs(["StatefulPartitionedCall:0"], ["dense_1"]) == {"dense_1": "StatefulPartitionedCall:0"}
    assert match_outputs(["b", "a"], ["a", "b"]) == {"a": "a", "b": "b"}
    assert match_outputs(["x"], ["a", "b"]) == {"a": None, "b": None}
    records = compare_outputs({"out:0": np.eye(3)}, {"logits": np.eye(3)})
    assert records["logits"]["top1_agreement"] == 1.0 and records["logits"]["artifact_output"] == "out:0"


def test_terminal_lines_name_each_output_its_kind_and_figure() -> None:
    from edge_sdk.fidelity import output_lines

    record = compare_output("values", np.array([[0.2], [0.9]]), np.array([[0.6], [0.9]]))
    result = {"artifact": {"name": "a.onnx"}, "reference": {"outputs": {"p": record}, "streaming": {"outputs": {"p": record}}}}
    lines = output_lines([result])
    assert lines[0].startswith("a.onnx p: values, decision agreement 50.0 % (SQNR")
    assert lines[1].startswith("a.onnx p streaming: values")


def test_weak_outputs_are_named() -> None:
    from edge_sdk.fidelity import weak_outputs

    good = compare_output("values", np.array([[0.9], [0.1]]), np.array([[0.8], [0.2]]))
    bad = compare_output("values", np.array([[0.1], [0.1]]), np.array([[0.8], [0.2]]))
    drifting = compare_output("state", np.ones((2, 4)) * 2, np.ones((2, 4)))
    assert weak_outputs({"good": good, "bad": bad, "h": drifting}) == ["bad: values, decision agreement 50.0 % (SQNR 1.3 dB)", "h: state, relative error 1.000"]
