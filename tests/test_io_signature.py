"""edge_sdk.io_signature: batch axes, output kinds and state pairs written into a converter's manifest record."""

from __future__ import annotations

import numpy as np

from edge_sdk.data import Dataset, PreprocessSpec
from edge_sdk.io_signature import annotate_io
from edge_sdk.manifest import manifest_from_record


def test_silero_like_signature_is_annotated_from_the_data(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", input=rng.random((3, 576), np.float32), state=rng.random((3, 2, 128), np.float32), sr=np.full(3, 16000, np.int64))
    record = {"format": "onnx", "mode": "fp32", "signature": {
        "inputs": [{"name": "input", "shape": [None, None], "dtype": "float32"}, {"name": "state", "shape": [2, None, 128], "dtype": "float32"},
                   {"name": "sr", "shape": [], "dtype": "int64"}],
        "outputs": [{"name": "output", "shape": [None, 1], "dtype": "float32"}, {"name": "stateN", "shape": [None, None, None], "dtype": "float32"},
                    {"name": "logits", "shape": [None, 10], "dtype": "float32"}, {"name": "map", "shape": [None, 1, 64, 64], "dtype": "float32"}]}}
    annotate_io(record, Dataset(tmp_path / "d.npz", PreprocessSpec()))
    inputs = {t["name"]: t for t in record["signature"]["inputs"]}
    outputs = {t["name"]: t for t in record["signature"]["outputs"]}
    assert [inputs[name]["batch_axis"] for name in ("input", "state", "sr")] == [0, 1, None]
    assert record["state_pairs"] == [["state", "stateN"]]
    assert outputs["output"]["kind"] == "values" and outputs["logits"]["kind"] == "class_scores"
    assert outputs["stateN"]["kind"] == "state" and outputs["stateN"]["batch_axis"] == 1
    assert outputs["map"]["kind"] is None  # a map or a sequence needs values: bench infers it
    manifest = manifest_from_record({**record, "sha256": "0" * 64, "size_bytes": 1})  # the typed manifest accepts it
    assert manifest.state_pairs == [["state", "stateN"]] and manifest.inputs[1].batch_axis == 1
