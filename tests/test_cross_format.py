import json

import pytest

from edge_sdk.cli import main
from tests.conftest import DIGITS_PREPROCESS

pytestmark = pytest.mark.slow


def test_tflite_and_onnx_bench_together_against_keras_in_one_results_file(tmp_path, digits_keras, digits_npz, digits_artifacts, capsys):
    import edge_sdk

    onnx_fp32 = edge_sdk.convert(digits_keras, tmp_path / "m.onnx", to="onnx", preprocess=DIGITS_PREPROCESS).path
    assert main(["convert", str(digits_keras), "--to", "onnx", "--quant", "int8", "--calib", str(digits_npz[0]), "--calib-samples", "200",
                 "--no-per-channel", "--calib-method", "MinMax", "--scale", "1/16", "--layout", "NHWC", "-o", str(tmp_path / "m_int8.onnx"), "--quiet"]) == 0
    results_file = tmp_path / "results.json"
    code = main(["bench", str(digits_artifacts["fp32"]), str(digits_artifacts["int8"]), str(onnx_fp32), str(tmp_path / "m_int8.onnx"),
                 "--reference", str(digits_keras), "--data", str(digits_npz[1]), "--runs", "5", "--warmup", "1", "--threads", "1",
                 "--providers", "CPU", "--graph-optimization", "all", "-o", str(results_file)])
    assert code == 0
    document = json.loads(results_file.read_text())
    rows = {(r["artifact"]["format"], r["artifact"]["mode"]): r for r in document["results"]}
    assert set(rows) == {("tflite", "fp32"), ("tflite", "int8"), ("onnx", "fp32"), ("onnx", "int8")}
    for row in rows.values():
        assert row["reference"]["accuracy_drop_points"] < 1.5
    assert rows[("onnx", "fp32")]["reference"]["fidelity"]["max_abs_error"] <= 1e-5
    assert "m_int8.onnx" in capsys.readouterr().out
