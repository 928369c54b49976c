"""The calibration checker on real MNIST / digits data."""

import numpy as np

from edge_sdk.calibcheck import check_calibration, estimate_sufficiency
from tests.conftest import DIGITS_PREPROCESS, shared


def test_flags_mis_scaled_and_transposed_sets_and_bad_samples(tmp_path):
    with np.load(shared("mnist/mnist_test.npz")) as data:
        x = data["x_test"][:500].astype(np.float32)
    np.savez(tmp_path / "eval.npz", x=x[:, :, :, None] / 255)
    np.savez(tmp_path / "calib_255.npz", x=x[:, :, :, None])
    np.savez(tmp_path / "calib_nchw.npz", x=x[:, None, :, :] / 255)
    dirty = x.copy() / 255
    dirty[:5] = 0.0  # blank images
    dirty[10:15] = dirty[20]  # duplicates
    dirty[30] *= 40  # an outlier that stretches the range
    np.savez(tmp_path / "calib_dirty.npz", x=dirty[:, :, :, None])
    assert "scale" in check_calibration(tmp_path / "calib_255.npz", tmp_path / "eval.npz").kinds
    assert "layout" in check_calibration(tmp_path / "calib_nchw.npz", tmp_path / "eval.npz").kinds
    dirty_kinds = check_calibration(tmp_path / "calib_dirty.npz", tmp_path / "eval.npz").kinds
    assert {"constant", "duplicates", "outliers"} <= dirty_kinds
    clean = check_calibration(tmp_path / "eval.npz", tmp_path / "eval.npz")
    assert not clean.findings and "no problems found" in clean.to_text()


def test_sufficiency_reports_the_spread_over_calibration_subsets(tmp_path, digits_keras, digits_npz):
    result = estimate_sufficiency(digits_keras, digits_npz[0], digits_npz[1], preprocess=DIGITS_PREPROCESS, calibration_samples=20, subsets=2, eval_samples=200, workdir=tmp_path)
    assert len(result["top1"]) == 2 and result["mean"] > 0.8 and 0 <= result["spread"] < 0.1
