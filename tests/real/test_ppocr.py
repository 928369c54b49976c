"""PP-OCR from rapidocr-onnxruntime's wheel, straight from its files: the direction classifier in fp32 and int8."""

from __future__ import annotations

import numpy as np
import pytest

import edge_sdk
from edge_sdk.artifact import load_artifact
from edge_sdk.api import convert
from edge_sdk.bench import BenchSettings

pytestmark = pytest.mark.slow


def _bare_accuracy(model, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    scores = np.concatenate([session.run(None, {"x": x[i : i + 1]})[0] for i in range(len(x))])
    return float(np.mean(scores.argmax(axis=1) == y)), scores


def test_direction_classifier_fp32_and_int8_against_the_original(ppocr_cls, text_lines_npz, tmp_path):
    lines, calibration = text_lines_npz
    artifacts = []
    for mode in ("fp32", "int8"):
        artifact = convert(ppocr_cls, tmp_path / f"cls_{mode}.onnx", to="onnx", mode=mode, calibration=calibration,
                           calibration_samples=64, input_shapes={"x": [1, 3, 48, 192]})
        artifacts.append(artifact.path)
    import onnxruntime as ort

    for path in artifacts:  # --input-shape is written into the file: bare ONNX Runtime sees the fixed dims
        assert ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_inputs()[0].shape == [1, 3, 48, 192]
        manifest = load_artifact(path).manifest
        assert manifest.inputs[0].shape == [1, 3, 48, 192]
        assert manifest.details["input_shapes_fixed"]["x"]["fixed_by"] == "--input-shape"
    int8_manifest = load_artifact(artifacts[1]).manifest
    # Real export: quant_pre_process's symbolic shape inference fails on it; the fallback is recorded.
    assert any("quant_pre_process failed" in note for note in int8_manifest.details["conversion_notes"])
    assert any("opset 11 to 13" in note for note in int8_manifest.details["conversion_notes"])

    results = edge_sdk.benchmark(artifacts, lines, reference=ppocr_cls, settings=BenchSettings(runs=3, warmup=1))
    with np.load(lines) as data:
        x, y = data["x"], data["y"]
    reference_accuracy, reference_scores = _bare_accuracy(ppocr_cls, x, y)
    assert reference_accuracy >= 0.95
    figures = {}
    for path, result in zip(artifacts, results):
        assert result.status == "ok", result.error
        accuracy, scores = _bare_accuracy(path, x, y)
        assert result.accuracy["top1"] == pytest.approx(accuracy)  # the SDK's figure, recomputed with bare ORT
        output = result.reference["outputs"]["save_infer_model/scale_0.tmp_1"]
        assert output["kind"] == "class_scores"
        assert output["top1_agreement"] == pytest.approx(np.mean(scores.argmax(1) == reference_scores.argmax(1)))
        figures[path.name] = accuracy
    assert figures["cls_fp32.onnx"] >= 0.95
    assert figures["cls_int8.onnx"] >= figures["cls_fp32.onnx"] - 0.01
