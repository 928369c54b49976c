"""A small ONNX model with dynamic batch, H and W, for the tests of --input-shape (convert, debug, check-calib)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FIXED_SHAPE = [1, 3, 12, 20]


def write_dynamic_onnx(folder: Path, samples: int = 16) -> tuple[Path, Path]:
    """(model, data .npz): Conv 3->4 (3x3, pads 1), Relu, GlobalAveragePool, Flatten on x [N,3,H,W] (symbolic
    dims) -> y [N,4]; the data holds x (samples, 3, 12, 20) in 0..1 and labels y in 0..3."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["p"]), helper.make_node("Flatten", ["p"], ["y"])]
    graph = helper.make_graph(nodes, "dyn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
                              [numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w"), numpy_helper.from_array(np.zeros(4, np.float32), "b")])
    path = Path(folder) / "dyn.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    data = Path(folder) / "data.npz"
    np.savez(data, x=rng.random((samples, 3, 12, 20)).astype(np.float32), y=rng.integers(0, 4, samples))
    return path, data
