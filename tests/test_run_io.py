"""`edge-sdk run` (the slim runner) with the I/O model: a batch axis in the middle, a scalar input, every output
written by name."""

from __future__ import annotations

import numpy as np


def _model(path):
    import onnx
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Add", ["x", "h"], ["s"]), helper.make_node("Mul", ["s", "gain"], ["hn"]),
             helper.make_node("ReduceSum", ["hn"], ["total"], keepdims=0)]
    graph = helper.make_graph(nodes, "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3]),
                                           helper.make_tensor_value_info("h", TensorProto.FLOAT, [2, None, 3]),
                                           helper.make_tensor_value_info("gain", TensorProto.FLOAT, [])],
                              [helper.make_tensor_value_info("total", TensorProto.FLOAT, []), helper.make_tensor_value_info("hn", TensorProto.FLOAT, [2, None, 3])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def test_run_feeds_a_middle_batch_axis_and_a_scalar_and_writes_every_output(tmp_path):
    from edge_sdk.cli import main

    rng = np.random.default_rng(0)
    x, h, gain = rng.random((5, 3), np.float32), rng.random((5, 2, 3), np.float32), rng.random(5).astype(np.float32)
    np.savez(tmp_path / "in.npz", x=x, h=h, gain=gain)
    code = main(["run", str(_model(tmp_path / "m.onnx")), "--inputs", str(tmp_path / "in.npz"), "-o", str(tmp_path / "r.json"),
                 "--outputs", str(tmp_path / "out.npz"), "--runs", "2", "--warmup", "0", "--batch-axis", "h:1", "--batch-axis", "gain:none"])
    assert code == 0
    with np.load(tmp_path / "out.npz") as outputs:
        expected_hn = (x[:, None, :] + h) * gain[:, None, None]  # per sample: (2, 3), fed as (2, 1, 3)
        np.testing.assert_allclose(outputs["hn"].reshape(5, 2, 3), expected_hn, rtol=1e-6)
        np.testing.assert_allclose(outputs["total"], expected_hn.sum(axis=(1, 2)), rtol=1e-5)
        np.testing.assert_allclose(outputs["outputs"], outputs["total"])
