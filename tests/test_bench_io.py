"""bench with the I/O model: labels checked against the class count, single values never "100 %", packed
detections matched per artifact (figures recomputed here with bare ONNX Runtime / numpy)."""

from __future__ import annotations

import numpy as np
import pytest

import edge_sdk
from edge_sdk.bench import BenchSettings
from edge_sdk.detections import compare_detections
from edge_sdk.fidelity import parse_output_kinds

FAST = BenchSettings(runs=2, warmup=0, isolate=False)


def _onnx(path, nodes, inputs, outputs, initializers=()):
    import onnx
    from onnx import helper

    graph = helper.make_graph(nodes, path.stem, inputs, outputs, list(initializers))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def _classifier(path, weights):
    from onnx import TensorProto, helper, numpy_helper

    return _onnx(path, [helper.make_node("MatMul", ["x", "w"], ["scores"])], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
                 [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, 3])], [numpy_helper.from_array(weights.astype(np.float32), "w")])


def test_labels_outside_the_class_count_are_refused(tmp_path):
    model = _classifier(tmp_path / "cls.onnx", np.eye(4, 3))
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).random((8, 4), np.float32), y=np.array([0, 1, 2, 7, 0, 1, 2, 0]))
    result = edge_sdk.benchmark([model], tmp_path / "d.npz", settings=FAST)[0]
    assert result.status == "error" and result.exit_code == 4 and "outside the model's 3 classes" in result.error


def test_a_single_probability_is_not_reported_as_perfect_agreement(tmp_path):
    from onnx import TensorProto, helper

    def sigmoid_model(name, gain):
        return _onnx(tmp_path / name, [helper.make_node("Mul", ["x", "g"], ["z"]), helper.make_node("Sigmoid", ["z"], ["p"])],
                     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1])], [helper.make_tensor_value_info("p", TensorProto.FLOAT, [None, 1])],
                     [helper.make_tensor(name="g", data_type=TensorProto.FLOAT, dims=[], vals=[gain])])

    x = np.linspace(-3, 3, 40, dtype=np.float32).reshape(40, 1) + 0.05
    np.savez(tmp_path / "d.npz", x=x)
    reference, artifact = sigmoid_model("ref.onnx", 1.0), sigmoid_model("art.onnx", -0.2)
    result = edge_sdk.benchmark([artifact], tmp_path / "d.npz", reference=reference, settings=FAST)[0]
    assert result.reference["fidelity"]["top1_agreement"] is None and result.reference["fidelity"]["cosine_mean"] is None
    record = result.reference["outputs"]["p"]
    expected = np.mean((1 / (1 + np.exp(0.2 * x)) > 0.5) == (1 / (1 + np.exp(-x)) > 0.5))
    assert record["kind"] == "values" and record["decision_agreement"] == pytest.approx(expected) and expected < 0.1


def test_packed_detections_are_matched_per_artifact(tmp_path):
    """A YOLO-style output (4 box rows + 2 class rows, 30 candidates); the 'int8-like' artifact squashes the score
    rows into 0.235-0.255, as collapsed int8 scores do, so most detections fall under the score threshold."""
    from onnx import TensorProto, helper, numpy_helper

    io = ([helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 30])], [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 6, 30])])
    reference = _onnx(tmp_path / "det.onnx", [helper.make_node("Identity", ["x"], ["output0"])], *io)
    scale = np.ones((6, 1), np.float32)
    scale[4:] = 0.02
    shift = np.zeros((6, 1), np.float32)
    shift[4:] = 0.235
    collapsed = _onnx(tmp_path / "det_collapsed.onnx", [helper.make_node("Mul", ["x", "s"], ["m"]), helper.make_node("Add", ["m", "b"], ["output0"])], *io,
                      [numpy_helper.from_array(scale, "s"), numpy_helper.from_array(shift, "b")])
    rng = np.random.default_rng(0)
    samples = []
    for _ in range(5):
        table = np.zeros((6, 30), np.float32)
        table[:2] = rng.uniform(20, 300, (2, 30))
        table[2:4] = rng.uniform(10, 40, (2, 30))
        table[4:] = rng.uniform(0, 1, (2, 30)) ** 3
        samples.append(table)
    np.savez(tmp_path / "d.npz", x=np.stack(samples))
    kinds = parse_output_kinds(["output0:detections:boxes=0-3,scores=4-,layout=CN"])
    settings = BenchSettings(runs=2, warmup=0, isolate=False, output_kinds=kinds)
    results = edge_sdk.benchmark([reference, collapsed], tmp_path / "d.npz", reference=reference, settings=settings)
    import onnxruntime as ort

    reference_out = np.stack([ort.InferenceSession(str(reference)).run(None, {"x": s[None]})[0][0] for s in samples])
    for path, result in zip((reference, collapsed), results):
        record = result.reference["outputs"]["output0"]
        outputs = np.stack([ort.InferenceSession(str(path)).run(None, {"x": s[None]})[0][0] for s in samples])
        expected = compare_detections(outputs, reference_out, kinds.detection_layouts["output0"])
        assert record["recall"] == pytest.approx(expected["recall"]) and record["matched"] == expected["matched"]
    assert results[0].reference["outputs"]["output0"]["recall"] == 1.0
    assert results[1].reference["outputs"]["output0"]["recall"] < 0.5


def test_a_failing_reference_is_an_error_of_each_comparison_and_the_artifacts_keep_their_figures(tmp_path, capsys):
    from edge_sdk.cli import main

    model = _classifier(tmp_path / "cls.onnx", np.eye(4, 3))
    from onnx import TensorProto, helper, numpy_helper

    # A reference that takes 5 features where the data has 4: it cannot run on this data.
    wrong = _onnx(tmp_path / "wrong.onnx", [helper.make_node("MatMul", ["x", "w"], ["scores"])], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 5])],
                  [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, 3])], [numpy_helper.from_array(np.eye(5, 3, dtype=np.float32), "w")])
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).random((6, 4), np.float32), y=np.array([0, 1, 2, 0, 1, 2]))
    results = edge_sdk.benchmark([model, model], tmp_path / "d.npz", reference=wrong, settings=FAST)
    # As for a crashing reference (tests/hardening/test_crash_isolation.py): each artifact's comparison is an error
    # naming the reference, its own measurements and accuracy stay, and the failing reference runs once.
    assert [r.status for r in results] == ["error", "error"] and all(r.accuracy is not None and r.reference is None for r in results)
    assert all(r.error.startswith("reference wrong.onnx: ") for r in results)
    code = main(["bench", str(model), str(model), "--data", str(tmp_path / "d.npz"), "--reference", str(wrong), "--runs", "2", "--warmup", "0", "--quiet"])
    errors = capsys.readouterr().err
    assert code != 0 and errors.count("reference wrong.onnx: ") == 2


def test_preprocessing_is_validated_once_for_every_source():
    from edge_sdk.data import PreprocessSpec
    from edge_sdk.errors import DataError, UsageError

    for bad in ({"scale": 0.0}, {"scale": float("nan")}, {"mean": []}, {"std": [float("inf")]}):
        with pytest.raises(UsageError):
            PreprocessSpec.from_dict(bad)
    with pytest.raises(DataError, match="3 values but the samples have 1 channels"):
        PreprocessSpec(mean=[0.5, 0.5, 0.5], layout="NHWC").apply(np.zeros((4, 4)))
    from edge_sdk.bench import preprocess_overrides

    assert preprocess_overrides({"scale": 1 / 255, "layout": "NHWC"}, {"scale": 1.0, "layout": None}) == ["scale: 0.00392156862745098 -> 1.0"]
