"""edge_sdk.io_model: batch axes (first, another, none), dynamic dims, scalars."""

from __future__ import annotations

import numpy as np
import pytest

from edge_sdk.errors import DataError, UsageError
from edge_sdk.io_model import fit_input, infer_batch_axis, parse_batch_axes


def test_batch_axis_is_found_where_only_one_place_fits() -> None:
    assert infer_batch_axis((None, 3, None, None), (3, 48, 192)) == 0
    assert infer_batch_axis((2, None, 128), (2, 128)) == 1  # silero's state [2, B, 128]
    assert infer_batch_axis((), ()) is None  # a scalar input (silero's sr)
    assert infer_batch_axis((1, 1, 128), (1, 1, 128)) is None
    assert infer_batch_axis((1, 28, 28, 1), (28, 28, 1)) == 0
    with pytest.raises(DataError):
        infer_batch_axis((None, 3, 48, 192), (3, 32, 100))


def test_fit_input_inserts_the_batch_axis_and_takes_dynamic_dims_from_the_data() -> None:
    sample = np.zeros((2, 128), np.float32)
    assert fit_input(sample, (2, None, 128), 1, "state").shape == (2, 1, 128)
    assert fit_input(np.array(16000), (), None, "sr").shape == ()
    assert fit_input(np.zeros((3, 48, 200)), (None, 3, 48, None), 0, "x").shape == (1, 3, 48, 200)
    assert fit_input(np.zeros((28, 28)), (1, 28, 28, 1), 0, "x").shape == (1, 28, 28, 1)  # size-1 axes reshaped
    with pytest.raises(DataError, match=r"expects \(3, 32, 100\) per sample"):
        fit_input(np.zeros((3, 48, 192)), (1, 3, 32, 100), 0, "x")


def test_parse_batch_axes() -> None:
    assert parse_batch_axes(["state:1", "sr:none"]) == {"state": 1, "sr": None}
    for bad in (["state"], ["state:x"], ["state:-1"]):
        with pytest.raises(UsageError):
            parse_batch_axes(bad)
