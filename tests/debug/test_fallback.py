"""The float-fallback search where int8 is not viable: it stops at the float-share limit, says so, measures
int16x8 instead, and leaves only the artifact that meets the budget (edge_sdk/debug/fallback.py)."""

import json

import numpy as np
import pytest

import edge_sdk.api as api
from edge_sdk.cli import main
from edge_sdk.debug.fallback import float_nodes_from
from edge_sdk.errors import UsageError

FEATURES, CLASSES, HIDDEN, OUTLIER = 16, 4, 4, 500.0


@pytest.fixture(scope="module")
def outlier_model(tmp_path_factory):
    """A linear classifier whose every hidden activation carries one constant channel at 500 beside features of
    scale 1: int8's 256 levels per tensor put a step of ~2 there, so the features round to 0 in every layer (no
    small float set can save it), while int16's 65,536 levels keep them. The logits sit on a shared offset of
    100, so conversion validation (cosine, SQNR) still passes and the int8 artifact is written."""
    import keras

    out = tmp_path_factory.mktemp("outlier")
    rng = np.random.default_rng(0)
    true = rng.normal(size=(FEATURES, CLASSES)).astype(np.float32)
    x = rng.normal(size=(2000, FEATURES)).astype(np.float32)
    scores = np.sort(x @ true, axis=1)
    x = x[scores[:, -1] - scores[:, -2] > 0.5][:600]  # a clear answer per sample: the labels are the float model's
    y = np.argmax(x @ true, axis=1)
    np.savez(out / "calib.npz", x=x[:200], y=y[:200])
    np.savez(out / "eval.npz", x=x[200:], y=y[200:])
    first, last = keras.layers.Dense(FEATURES + 1), keras.layers.Dense(CLASSES)
    middle = [keras.layers.Dense(FEATURES + 1) for _ in range(HIDDEN)]
    model = keras.Sequential([keras.Input((FEATURES,)), first, *middle, last])
    weights = np.zeros((FEATURES, FEATURES + 1), np.float32)
    weights[:, :FEATURES] = np.eye(FEATURES)
    first.set_weights([weights, np.r_[np.zeros(FEATURES), OUTLIER].astype(np.float32)])
    rotation = np.eye(FEATURES)
    for layer in middle:  # random rotations of the features, the outlier channel carried through
        turn, _ = np.linalg.qr(rng.normal(size=(FEATURES, FEATURES)))
        weights = np.zeros((FEATURES + 1, FEATURES + 1), np.float32)
        weights[:FEATURES, :FEATURES], weights[-1, -1] = turn, 1.0
        layer.set_weights([weights, np.zeros(FEATURES + 1, np.float32)])
        rotation = rotation @ turn
    weights = np.zeros((FEATURES + 1, CLASSES), np.float32)
    weights[:FEATURES] = rotation.T @ true
    last.set_weights([weights, np.full(CLASSES, 100.0, np.float32)])
    assert (model.predict(x, verbose=0).argmax(axis=1) == y).all()
    model.save(out / "outlier.keras")
    int8 = api.convert(out / "outlier.keras", out / "outlier_int8.tflite", mode="int8", calibration=out / "calib.npz")
    return out, int8.path


def test_not_viable_reports_int16x8_and_leaves_only_the_chosen_artifact(tmp_path, capsys, outlier_model):
    out, int8 = outlier_model
    before = sorted(path.name for path in out.iterdir())
    fallback_dir, saved = tmp_path / "fallback", tmp_path / "fallback.json"
    code = main(["debug", str(int8), "--reference", str(out / "outlier.keras"), "--data", str(out / "eval.npz"), "--samples", "100",
                 "--max-drop", "3", "--eval-samples", "400", "--fallback-dir", str(fallback_dir), "--save-fallback", str(saved), "--json"])
    captured = capsys.readouterr()
    assert code == 0  # int16x8 meets the budget
    outcome = json.loads(captured.out)["fallback"]
    assert "int8 is not viable here" in captured.err and "int8 is not viable here" in outcome["summary"]
    assert outcome["viable"] is False and outcome["within_budget"] is True and outcome["result_mode"] == "int16x8"
    assert outcome["baseline"]["drop_points"] > 20  # int8 collapsed
    # The search stopped at the share limit: at most a quarter of the quantizable layers in float, each try failed.
    share_limit = max(1, int(0.25 * outcome["quantizable_layers"]))
    assert 1 <= len(outcome["steps"]) <= share_limit and not any(step["passed"] for step in outcome["steps"])
    assert all(len(step["float_layers"]) <= share_limit for step in outcome["steps"]) and "--max-float-share 0.25" in outcome["stopped"]
    int16 = outcome["int16x8"]
    assert int16["mode"] == "int16x8" and int16["passed"] and int16["drop_upper_points"] <= 3.0 and int16["drop_points"] < 2
    assert int16["size_bytes"] > 0 and int16["p50_ms"] > 0
    assert f"upper bound {int16['drop_upper_points']:.2f}" in outcome["summary"] and "p50" in outcome["summary"]
    # Only the chosen artifact and its manifest are left; no try, no staging folder; the source folder unchanged.
    kept = "outlier_int8_int16x8.tflite"
    assert sorted(path.name for path in fallback_dir.iterdir()) == [kept, f"{kept}.manifest.json"]
    assert int16["artifact"] == str(fallback_dir / kept) and json.loads((fallback_dir / f"{kept}.manifest.json").read_text())["mode"] == "int16x8"
    assert sorted(path.name for path in out.iterdir()) == before
    stored = json.loads(saved.read_text())
    assert stored["viable"] is False and stored["int16x8"]["drop_upper_points"] == int16["drop_upper_points"]
    with pytest.raises(UsageError, match="no float_nodes") as raised:
        float_nodes_from(saved)
    assert "--quant int16x8" in raised.value.fix


def test_max_float_share_out_of_range_is_refused(outlier_model, capsys):
    out, int8 = outlier_model
    code = main(["debug", str(int8), "--reference", str(out / "outlier.keras"), "--data", str(out / "eval.npz"), "--samples", "20",
                 "--max-drop", "3", "--max-float-share", "1.5", "--quiet"])
    assert code == 2 and "--max-float-share 1.5" in capsys.readouterr().err


def test_a_failing_search_leaves_no_staging_folder(tmp_path, capsys, outlier_model):
    """The source the artifact was converted from is gone, so the first try fails (exit 3): its staging folder goes too."""
    import shutil

    out, _ = outlier_model
    source = tmp_path / "moved.keras"
    shutil.copyfile(out / "outlier.keras", source)
    artifact = api.convert(source, tmp_path / "moved_int8.tflite", mode="int8", calibration=out / "calib.npz").path
    source.unlink()
    fallback_dir = tmp_path / "fallback"
    code = main(["debug", str(artifact), "--reference", str(out / "outlier.keras"), "--data", str(out / "eval.npz"), "--samples", "50",
                 "--max-drop", "3", "--eval-samples", "200", "--fallback-dir", str(fallback_dir), "--quiet"])
    assert code == 3 and "moved.keras" in capsys.readouterr().err
    assert list(fallback_dir.iterdir()) == []


def test_an_existing_result_is_refused_before_the_search(tmp_path, capsys, outlier_model):
    out, int8 = outlier_model
    (tmp_path / "outlier_int8_int16x8.tflite").write_bytes(b"earlier result")
    code = main(["debug", str(int8), "--reference", str(out / "outlier.keras"), "--data", str(out / "eval.npz"), "--samples", "20",
                 "--max-drop", "3", "--eval-samples", "100", "--fallback-dir", str(tmp_path), "--quiet"])
    assert code == 8 and "outlier_int8_int16x8.tflite" in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["outlier_int8_int16x8.tflite"]
    assert (tmp_path / "outlier_int8_int16x8.tflite").read_bytes() == b"earlier result"
