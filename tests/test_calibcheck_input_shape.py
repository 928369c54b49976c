"""`edge-sdk check-calib --input-shape`: the sufficiency estimate converts and runs a model with dynamic H and W at
the given dims (tests/dynamic_models.py); without them it cannot convert it and says so."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge_sdk.calibcheck import estimate_sufficiency
from edge_sdk.cli import main
from edge_sdk.errors import UsageError
from tests.dynamic_models import FIXED_SHAPE, write_dynamic_onnx

SHAPE_FLAG = "x:" + ",".join(map(str, FIXED_SHAPE))


def test_sufficiency_on_a_dynamic_model_uses_input_shape(tmp_path, capsys):
    model, data = write_dynamic_onnx(tmp_path, samples=24)
    with pytest.raises(UsageError, match="dynamic dimension"):
        estimate_sufficiency(model, data, data, to="onnx", calibration_samples=8, subsets=2, eval_samples=24, workdir=tmp_path)
    result = estimate_sufficiency(model, data, data, to="onnx", calibration_samples=8, subsets=2, eval_samples=24, workdir=tmp_path, input_shapes={"x": FIXED_SHAPE})
    assert len(result["top1"]) == 2 and all(0.0 <= value <= 1.0 for value in result["top1"])
    # The figure is measured: recomputed here with bare ONNX Runtime on the subset-0 artifact (every sample).
    import onnxruntime as ort

    session = ort.InferenceSession(str(tmp_path / "calib_subset0.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == FIXED_SHAPE  # converted at the given dims
    with np.load(data) as arrays:
        predictions = [int(session.run(None, {"x": sample[None]})[0].argmax()) for sample in arrays["x"]]
        assert result["top1"][0] == pytest.approx(float(np.mean(np.asarray(predictions) == arrays["y"])))
    capsys.readouterr()
    code = main(["check-calib", str(data), "--data", str(data), "--reference", str(model), "--to", "onnx", "--calib-samples", "8", "--subsets", "2",
                 "--input-shape", SHAPE_FLAG, "--json"])
    assert code in (0, 4)  # 4: findings about the data itself (duplicates: the same file is both sets)
    assert len(json.loads(capsys.readouterr().out)["sufficiency"]["top1"]) == 2
    # --input-shape without a model to apply it to is a usage error, not silently ignored
    assert main(["check-calib", str(data), "--data", str(data), "--input-shape", SHAPE_FLAG, "--quiet"]) == 2
