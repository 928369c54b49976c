"""edge_sdk.data_sanity: degenerate calibration / validation data is refused (exit 4) unless allowed."""

from __future__ import annotations

import numpy as np
import pytest

from edge_sdk.data import Dataset, PreprocessSpec
from edge_sdk.data_sanity import check_informative, degenerate_reason
from edge_sdk.errors import DataError


@pytest.mark.parametrize(("array", "reason"), [
    (np.zeros((6, 4, 4), np.float32), "all zero"),
    (np.full((6, 4, 4), 0.5, np.float32), "constant value"),
    (np.tile(np.arange(16, dtype=np.float32).reshape(1, 4, 4), (6, 1, 1)), "all 6 samples are the same"),
])
def test_degenerate_data_is_named(tmp_path, array, reason):
    np.savez(tmp_path / "d.npz", x=array)
    dataset = Dataset(tmp_path / "d.npz", PreprocessSpec())
    assert reason in degenerate_reason(dataset, None)
    with pytest.raises(DataError, match=reason) as raised:
        check_informative(dataset, None, "calibration")
    assert raised.value.exit_code == 4 and "--allow-degenerate-calibration" in raised.value.fix
    with pytest.warns(UserWarning, match="degenerate"):
        assert "degenerate" in check_informative(dataset, None, "calibration", allow=True)


def test_real_data_passes(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).random((6, 4, 4), np.float32))
    assert check_informative(Dataset(tmp_path / "d.npz", PreprocessSpec()), None, "validation") is None


def test_one_constant_input_beside_varying_ones_is_fine(tmp_path):
    """silero-vad's sample rate is the same in every sample; its audio is not."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", input=rng.random((6, 16), np.float32), sr=np.full(6, 16000, np.int64))
    assert degenerate_reason(Dataset(tmp_path / "d.npz", PreprocessSpec()), None) is None
    np.savez(tmp_path / "z.npz", input=np.zeros((6, 16), np.float32), sr=np.zeros(6, np.int64))
    assert degenerate_reason(Dataset(tmp_path / "z.npz", PreprocessSpec()), None) == "every input is all zero in every sample"
