"""`edge-sdk debug --input-shape`: the reference's dynamic dims are fixed by the flag (default: the manifest's shapes),
on an int8 artifact converted from a model with dynamic H and W (tests/dynamic_models.py)."""

from __future__ import annotations

import json

import pytest

import edge_sdk.api as api
from edge_sdk.cli import main
from edge_sdk.debug import debug_artifact
from edge_sdk.errors import DataError, UsageError
from tests.dynamic_models import FIXED_SHAPE, write_dynamic_onnx


@pytest.fixture(scope="module")
def dynamic_int8(tmp_path_factory):
    folder = tmp_path_factory.mktemp("debug_dyn")
    model, data = write_dynamic_onnx(folder)
    artifact = api.convert(model, folder / "dyn_int8.onnx", to="onnx", mode="int8", calibration=data, input_shapes={"x": FIXED_SHAPE})
    return artifact.path, model, data


def test_debug_takes_input_shape_for_a_dynamic_reference(dynamic_int8, tmp_path, capsys):
    artifact, model, data = dynamic_int8
    report = debug_artifact(artifact, model, data, samples=8, input_shapes={"x": FIXED_SHAPE})
    assert report.layers and all(layer.sqnr_db > 10 for layer in report.layers)
    # The flag is what the data is fitted to: dims the data does not have are a data error (exit 4), not ignored.
    with pytest.raises(DataError):
        debug_artifact(artifact, model, data, samples=8, input_shapes={"x": [1, 3, 16, 20]})
    with pytest.raises(UsageError, match="--input-shape names 'z'"):
        debug_artifact(artifact, model, data, samples=8, input_shapes={"z": FIXED_SHAPE})
    capsys.readouterr()
    code = main(["debug", str(artifact), "--reference", str(model), "--data", str(data), "--samples", "8", "--input-shape", "x:" + ",".join(map(str, FIXED_SHAPE)), "--json"])
    assert code == 0
    assert [layer["name"] for layer in json.loads(capsys.readouterr().out)["debug"]["layers"]] == [layer.name for layer in report.layers]
    assert main(["debug", str(artifact), "--reference", str(model), "--data", str(data), "--input-shape", "x:1,3,16,20", "--quiet"]) == 4
