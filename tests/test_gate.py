"""The accuracy gate on real data: a good int8 digits CNN passes, one calibrated on data scaled by 255 fails."""

import numpy as np
import pytest

import edge_sdk.api as api
from edge_sdk.bench import BenchSettings
from edge_sdk.cli import main
from edge_sdk.gate import AccuracyGateError, check_gate
from edge_sdk.results import load_results, save_results
from tests.conftest import DIGITS_PREPROCESS


@pytest.fixture(scope="session")
def badly_calibrated(tmp_path_factory, digits_keras, digits_npz):
    """int8 digits CNN calibrated on raw values x255 while its manifest (and evaluation) uses the right scale."""
    out = tmp_path_factory.mktemp("bad_calibration")
    with np.load(digits_npz[0]) as data:
        np.savez(out / "train_x255.npz", x=data["x"] * 255, y=data["y"])
    return api.convert(digits_keras, out / "digits_int8_bad.tflite", mode="int8", calibration=out / "train_x255.npz", preprocess=DIGITS_PREPROCESS).path


def test_gate_passes_good_int8_and_fails_bad_calibration(tmp_path, digits_artifacts, badly_calibrated, digits_keras, digits_npz):
    results = api.bench([digits_artifacts["int8"], badly_calibrated], digits_npz[1], reference=digits_keras, settings=BenchSettings(runs=20, warmup=5, max_drop_points=2.0))
    good, bad = (r.reference["gate"] for r in results)
    assert good["passed"] and good["drop_upper_points"] <= 2.0
    assert not bad["passed"] and bad["drop_points"] > 20
    assert results[0].accuracy["top1_ci"]["low"] < results[0].accuracy["top1"] < results[0].accuracy["top1_ci"]["high"]
    assert results[1].reference["accuracy_drop_ci_points"]["low"] > 2.0
    with pytest.raises(AccuracyGateError) as raised:
        check_gate(results)
    assert badly_calibrated.name in str(raised.value) and digits_artifacts["int8"].name not in str(raised.value)
    save_results(tmp_path / "r.json", results)
    load_results(tmp_path / "r.json")  # the additive fields validate against the schema


def test_cli_bench_max_drop_exits_non_zero_naming_the_artifact(capsys, digits_artifacts, badly_calibrated, digits_keras, digits_npz):
    common = ["bench", "--data", str(digits_npz[1]), "--reference", str(digits_keras), "--runs", "5", "--warmup", "1", "--max-drop", "2", "--quiet"]
    assert main([*common[:1], str(digits_artifacts["int8"]), *common[1:]]) == 0
    assert main([*common[:1], str(badly_calibrated), *common[1:]]) == 10
    err = capsys.readouterr().err
    assert badly_calibrated.name in err and "upper bound" in err and "exceeds --max-drop 2" in err
