"""edge_sdk/conversion_gate.py and the template's use of it: every output gated by its kind against the format table.

The acceptance case of issue 13: a YOLO-style detector whose one output packs 4 box rows (pixel coordinates, in
the hundreds) and 3 class-score rows (sigmoids in (0, 1)). ONNX Runtime's int8 gives the packed tensor one scale,
which wipes out the scores; the whole-tensor cosine (the old gate) still passes, the score rows' SQNR and the
matched recall do not. Keeping the Concat that packs them in float (--exclude-nodes pack) is the true fix.
Figures are recomputed here with bare ONNX Runtime and numpy."""

import json

import numpy as np
import pytest

from edge_sdk.cli import main
from edge_sdk.conversion_gate import judge_output
from edge_sdk.fidelity import OutputKinds, infer_kind
from edge_sdk.formats import FORMATS, INT8, INT16X8
from edge_sdk.manifest import read_manifest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

CLASSES, FEATURES, CANDIDATES = 3, 8, 64
INT8_ONNX = FORMATS["onnx"].tolerance(INT8)


def _detector(path, box_scale=320.0):
    """x (1, 8, 64) -> output0 (1, 4+3, 64): Concat('pack') of xywh boxes (cx, cy in 0..640) and sigmoid scores."""
    rng = np.random.default_rng(0)
    scale = np.array([[box_scale], [box_scale], [box_scale / 16], [box_scale / 16]], np.float32)
    offset = np.array([[box_scale], [box_scale], [box_scale / 8], [box_scale / 8]], np.float32)
    weights = [numpy_helper.from_array((rng.standard_normal((4, FEATURES)) * 0.5).astype(np.float32), "Wb"),
               numpy_helper.from_array(rng.standard_normal((CLASSES, FEATURES)).astype(np.float32), "Ws"),
               numpy_helper.from_array(scale, "box_scale"), numpy_helper.from_array(offset, "box_offset"),
               numpy_helper.from_array(np.full((CLASSES, 1), -3.0, np.float32), "score_bias")]
    nodes = [helper.make_node("MatMul", ["Wb", "x"], ["b0"]), helper.make_node("Tanh", ["b0"], ["b1"]),
             helper.make_node("Mul", ["b1", "box_scale"], ["b2"]), helper.make_node("Add", ["b2", "box_offset"], ["boxes"]),
             helper.make_node("MatMul", ["Ws", "x"], ["s0"]), helper.make_node("Add", ["s0", "score_bias"], ["s1"]),
             helper.make_node("Sigmoid", ["s1"], ["scores"]), helper.make_node("Concat", ["boxes", "scores"], ["output0"], axis=1, name="pack")]
    graph = helper.make_graph(nodes, "detector", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, FEATURES, CANDIDATES])],
                              [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4 + CLASSES, CANDIDATES])], weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


@pytest.fixture
def detector(tmp_path):
    model = _detector(tmp_path / "det.onnx")
    data = tmp_path / "det.npz"
    np.savez(data, x=np.random.default_rng(1).standard_normal((40, FEATURES, CANDIDATES)).astype(np.float32))
    return model, data


def _outputs(path, data):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {"x": sample[None]})[0] for sample in np.load(data)["x"]])


def _sqnr_db(ours, theirs):
    return 10 * np.log10(np.sum(theirs.astype(np.float64) ** 2) / np.sum((ours.astype(np.float64) - theirs) ** 2))


def _whole_tensor_cosine(ours, theirs):
    a, b = ours.reshape(len(ours), -1).astype(np.float64), theirs.reshape(len(theirs), -1).astype(np.float64)
    return float(np.mean(np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))))


def test_collapsed_scores_fail_validation_with_exit_6_naming_the_scores(detector, tmp_path, capsys):
    model, data = detector
    out = tmp_path / "out"
    out.mkdir()
    assert main(["convert", str(model), "--to", "onnx", "--quant", "int8", "--calib", str(data), "-o", str(out / "det_int8.onnx")]) == 6
    error = capsys.readouterr().err
    assert "on output output0 (detections)" in error and f"SQNR of the score rows 0.0 dB, needs >= {INT8_ONNX.min_sqnr_db:g} dB" in error
    assert f"matched-detection recall 0, needs >= {INT8_ONNX.min_detection_recall:g}" in error
    assert "--exclude-nodes" in error and "--keep-failed" in error and "Traceback" not in error
    assert list(out.iterdir()) == []  # without --keep-failed nothing is written


def test_keep_failed_keeps_the_artifact_marked_failed_and_the_old_whole_tensor_gate_would_have_passed(detector, tmp_path, capsys):
    model, data = detector
    kept = tmp_path / "det_int8.onnx"
    assert main(["convert", str(model), "--to", "onnx", "--quant", "int8", "--calib", str(data), "-o", str(kept), "--keep-failed"]) == 6
    error = capsys.readouterr().err
    assert f"kept the artifact that failed validation at {kept}" in error and f"edge-sdk debug {kept}" in error
    manifest = read_manifest(kept)
    assert manifest.failed_validation and manifest.validation["status"] == "failed"
    record = manifest.validation["outputs"][0]
    assert record["kind"] == "detections"  # inferred: pixel boxes in rows 0-3, scores in [0, 1] in rows 4-
    assert {gate["figure"]: gate["passed"] for gate in record["gates"]} == {"score_sqnr_db": False, "recall": False}
    # Recomputed with bare ONNX Runtime: the int8 scores collapsed (no detection is left above the 0.25 threshold).
    ours, theirs = _outputs(kept, data), _outputs(model, data)
    assert ours[:, 4:].max() < 0.25 <= theirs[:, 4:].max()
    assert record["recall"] == 0.0 and record["by_kind"]["reference_detections"] > 0 and record["by_kind"]["artifact_detections"] == 0
    assert record["score_sqnr_db"] == pytest.approx(_sqnr_db(ours[:, 4:], theirs[:, 4:]), abs=1e-6)
    # The old gate (the worst output's whole-tensor mean cosine) would have passed this artifact: the boxes dominate.
    cosine = _whole_tensor_cosine(ours, theirs)
    assert cosine >= INT8_ONNX.min_cosine and record["whole_tensor"]["cosine_mean"] == pytest.approx(cosine)
    assert _sqnr_db(ours, theirs) >= INT8_ONNX.min_sqnr_db  # and so would a whole-tensor SQNR


def test_healthy_variant_passes_with_the_fix_the_message_names(detector, tmp_path, capsys):
    model, data = detector
    healthy = tmp_path / "det_int8.onnx"
    assert main(["convert", str(model), "--to", "onnx", "--quant", "int8", "--calib", str(data), "-o", str(healthy),
                 "--exclude-nodes", "pack", "--output-kind", "output0:detections:boxes=0-3,scores=4-,layout=CN"]) == 0
    validation = read_manifest(healthy).validation
    record = validation["outputs"][0]
    assert validation["status"] == "passed" and record["kind"] == "detections"
    assert all(gate["passed"] for gate in record["gates"]) and record["recall"] >= INT8_ONNX.min_detection_recall
    ours, theirs = _outputs(healthy, data), _outputs(model, data)
    assert record["score_sqnr_db"] == pytest.approx(_sqnr_db(ours[:, 4:], theirs[:, 4:]), abs=1e-6)
    assert record["score_sqnr_db"] >= INT8_ONNX.min_sqnr_db
    assert read_manifest(healthy).options["output_kinds"]["kinds"] == {"output0": "detections"}
    assert [tensor.kind for tensor in read_manifest(healthy).outputs] == ["detections"]


def test_output_kind_naming_no_output_is_refused(detector, tmp_path, capsys):
    model, data = detector
    assert main(["convert", str(model), "--to", "onnx", "--calib", str(data), "-o", str(tmp_path / "m.onnx"), "--output-kind", "boxes:detections"]) == 2
    assert "does not output (its outputs: output0)" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_every_kind_is_gated_by_its_own_figures():
    rng = np.random.default_rng(0)
    reference = rng.standard_normal((20, 10))
    noisy = reference + 0.8 * rng.standard_normal(reference.shape)  # SQNR ~2 dB
    record = judge_output("logits", noisy, reference, INT8_ONNX, OutputKinds())
    gates = {gate["figure"]: gate for gate in record["gates"]}
    assert record["kind"] == "class_scores" and set(gates) == {"cosine_mean", "sqnr_db"}
    assert gates["sqnr_db"]["value"] == pytest.approx(_sqnr_db(noisy, reference)) and gates["sqnr_db"]["passed"] is False
    assert gates["cosine_mean"]["value"] == pytest.approx(_whole_tensor_cosine(noisy, reference))
    # One value per sample: cosine is always 1, so only the SQNR gates it.
    single = judge_output("prob", reference[:, :1] * 0.9, reference[:, :1], INT8_ONNX, OutputKinds())
    assert single["kind"] == "values" and [gate["figure"] for gate in single["gates"] if gate["passed"] is not None] == ["sqnr_db"]
    assert single["passed"] and single["sqnr_db"] == pytest.approx(20.0)
    # Identical outputs pass (SQNR infinite, recorded as null); an all-zero reference leaves SQNR undefined, said so.
    assert judge_output("y", reference, reference, INT8_ONNX, OutputKinds())["passed"]
    zero = judge_output("z", reference * 0.01, reference * 0, INT8_ONNX, OutputKinds())
    assert next(gate for gate in zero["gates"] if gate["figure"] == "sqnr_db")["note"] == "the reference is all zero: SQNR is undefined"


def test_packed_detections_are_inferred_from_values_maps_are_not(detector):
    model, data = detector
    theirs = _outputs(model, data)
    assert infer_kind("output0", theirs.shape[1:], theirs) == "detections"
    normalised = theirs.copy()
    normalised[:, :4] /= 700.0  # boxes in 0..1 look like any map: the user says --output-kind
    assert infer_kind("output0", normalised.shape[1:], normalised) != "detections"
    probability_map = np.random.default_rng(0).uniform(size=(4, 1, 32, 32))
    assert infer_kind("maps", probability_map.shape[1:], probability_map) == "dense_map"


def test_bench_and_run_warn_about_a_failed_artifact_without_refusing_it(detector, tmp_path, capsys):
    model, data = detector
    kept = tmp_path / "det_int8.onnx"
    assert main(["convert", str(model), "--to", "onnx", "--quant", "int8", "--calib", str(data), "-o", str(kept), "--keep-failed"]) == 6
    capsys.readouterr()
    results = tmp_path / "results.json"
    assert main(["bench", str(kept), "--data", str(data), "--runs", "3", "--warmup", "1", "-o", str(results)]) == 0
    assert "FAILED validation against its source when it was converted (kept with --keep-failed)" in capsys.readouterr().err
    artifact = json.loads(results.read_text())["results"][0]["artifact"]
    assert artifact["validation_failed"] is True and "output0 (detections)" in artifact["validation_failures"][0]
    from edge_sdk.report.api import report_document

    document = report_document([results])
    assert any("FAILED validation" in warning["message"] for warning in document["warnings"])
    assert any("FAILED validation" in flag for flag in document["rows"][0]["flags"])
    assert main(["run", str(kept), "--inputs", str(data), "--runs", "2", "--warmup", "1", "-o", str(tmp_path / "run.json")]) == 0
    assert "FAILED validation" in capsys.readouterr().err
    assert main(["inspect", str(kept)]) == 0
    assert "this artifact FAILED validation against its source" in capsys.readouterr().out


def test_degenerate_calibration_warning_is_kept_in_the_manifest_and_shown(detector, tmp_path, capsys):
    model, _ = detector
    zeros = tmp_path / "zeros.npz"
    np.savez(zeros, x=np.zeros((8, FEATURES, CANDIDATES), np.float32))
    artifact = tmp_path / "det_fp32.onnx"
    assert main(["convert", str(model), "--to", "onnx", "--calib", str(zeros), "-o", str(artifact), "--allow-degenerate-calibration"]) == 0
    warnings = read_manifest(artifact).warnings
    assert len(warnings) == 1 and "is all zero in every sample" in warnings[0] and "--allow-degenerate-calibration" in warnings[0]
    capsys.readouterr()
    assert main(["inspect", str(artifact)]) == 0
    assert f"converted with a warning: {warnings[0]}" in capsys.readouterr().out
    results = tmp_path / "results.json"
    assert main(["bench", str(artifact), "--data", str(zeros), "--runs", "3", "--warmup", "1", "-o", str(results)]) == 0
    assert "was converted with a warning" in capsys.readouterr().err
    from edge_sdk.report.api import report_document

    assert any(warnings[0] in warning["message"] for warning in report_document([results])["warnings"])


def test_readme_thresholds_are_the_format_tables():
    from edge_sdk.conversion_gate import tolerance_table
    from tests.conftest import REPO

    assert tolerance_table() in (REPO / "README.md").read_text()


def test_bench_reads_the_detection_layout_convert_recorded(detector, tmp_path, capsys):
    """The layout given to convert (here a score threshold of 0.1, not the default 0.25) is what bench uses without
    being told again; a flag given to bench still wins. Recall recomputed with the SDK's decoder on bare ORT outputs."""
    from edge_sdk.detections import DetectionLayout, compare_detections

    model, data = detector
    healthy = tmp_path / "det_int8.onnx"
    assert main(["convert", str(model), "--to", "onnx", "--quant", "int8", "--calib", str(data), "-o", str(healthy),
                 "--exclude-nodes", "pack", "--output-kind", "output0:detections:boxes=0-3,scores=4-,layout=CN,score=0.1"]) == 0
    results = tmp_path / "r.json"
    assert main(["bench", str(healthy), "--data", str(data), "--reference", str(model), "--runs", "2", "--warmup", "0", "-o", str(results)]) == 0
    record = json.loads(results.read_text())["results"][0]["reference"]["outputs"]["output0"]
    assert record["kind"] == "detections" and record["layout"]["score_threshold"] == 0.1
    expected = compare_detections(_outputs(healthy, data), _outputs(model, data), DetectionLayout(score_threshold=0.1))
    assert record["recall"] == pytest.approx(expected["recall"]) and record["reference_detections"] == expected["reference_detections"]
    assert main(["bench", str(healthy), "--data", str(data), "--reference", str(model), "--runs", "2", "--warmup", "0", "-o", str(results), "--overwrite",
                 "--output-kind", "output0:detections:boxes=0-3,scores=4-,layout=CN,score=0.5"]) == 0
    assert json.loads(results.read_text())["results"][0]["reference"]["outputs"]["output0"]["layout"]["score_threshold"] == 0.5


def _keras_detector(path):
    """The same packing in Keras -> TFLite: x (8, 64) -> (4+3, 64), box rows in pixels (0..640) and sigmoid scores,
    joined by one Concatenate; the kind is left to inference (no --output-kind)."""
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    x = keras.Input((FEATURES, CANDIDATES))
    candidates = keras.layers.Permute((2, 1))(x)
    boxes = keras.layers.Rescaling(320.0, offset=320.0)(keras.layers.Dense(4, activation="tanh")(candidates))
    scores = keras.layers.Dense(CLASSES, activation="sigmoid")(candidates)
    packed = keras.layers.Permute((2, 1))(keras.layers.Concatenate(axis=-1)([boxes, scores]))
    model = keras.Model(x, packed)
    model.save(path)
    return model


def test_tflite_int8_detector_whose_scores_collapse_fails_and_int16x8_passes(detector, tmp_path, capsys):
    """The TFLite path of the gate: full-integer int8 gives the packed output one scale and the scores collapse
    (exit 6 naming them, nothing written); int16x8 keeps them (score SQNR recomputed with bare LiteRT)."""
    from ai_edge_litert.interpreter import Interpreter

    data = detector[1]
    model = _keras_detector(tmp_path / "det.keras")
    common = ["convert", str(tmp_path / "det.keras"), "--calib", str(data), "--quiet"]
    assert main([*common, "--quant", "int8", "-o", str(tmp_path / "det_int8.tflite")]) == 6
    error = capsys.readouterr().err
    assert "(detections): SQNR of the score rows" in error and "--quant int16x8" in error
    assert not list(tmp_path.glob("det_int8*"))
    assert main([*common, "--quant", "int16x8", "-o", str(tmp_path / "det_16.tflite")]) == 0
    record = read_manifest(tmp_path / "det_16.tflite").validation["outputs"][0]
    assert record["kind"] == "detections" and all(gate["passed"] for gate in record["gates"])
    interpreter = Interpreter(model_path=str(tmp_path / "det_16.tflite"))
    interpreter.allocate_tensors()
    (entry,), (exit_,) = interpreter.get_input_details(), interpreter.get_output_details()
    ours = []
    for sample in np.load(data)["x"]:
        interpreter.set_tensor(entry["index"], sample[None].astype(entry["dtype"]))
        interpreter.invoke()
        ours.append(interpreter.get_tensor(exit_["index"]))
    ours, theirs = np.concatenate(ours), model.predict(np.load(data)["x"], verbose=0)
    assert record["score_sqnr_db"] == pytest.approx(_sqnr_db(ours[:, 4:], theirs[:, 4:]), abs=0.05)
    assert record["score_sqnr_db"] >= FORMATS["tflite"].tolerance(INT16X8).min_sqnr_db


def test_a_damaged_recorded_layout_is_one_message(detector, tmp_path, capsys):
    model, data = detector
    healthy = tmp_path / "det_int8.onnx"
    assert main(["convert", str(model), "--to", "onnx", "--quant", "int8", "--calib", str(data), "-o", str(healthy),
                 "--exclude-nodes", "pack", "--output-kind", "output0:detections:boxes=0-3,scores=4-,layout=CN"]) == 0
    manifest_path = healthy.with_name(healthy.name + ".manifest.json")
    document = json.loads(manifest_path.read_text())
    document["options"]["output_kinds"]["detection_layouts"]["output0"]["boxes"] = "zero"
    manifest_path.write_text(json.dumps(document))
    capsys.readouterr()
    assert main(["bench", str(healthy), "--data", str(data), "--runs", "2", "--warmup", "0", "-o", str(tmp_path / "r.json")]) == 3
    error = capsys.readouterr().err
    assert "records damaged output kinds" in error and "Traceback" not in error
    (record,) = json.loads((tmp_path / "r.json").read_text())["results"]  # the artifact's error, as bench records each one
    assert record["status"] == "error" and record["exit_code"] == 3
