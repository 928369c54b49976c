"""Mutated .onnx protobufs through the ONNX intake (read, check, lift, signature), run as a child process.

onnx parses and checks models in C++, so a hostile file could crash the interpreter rather than raise; the test
in test_onnx_intake.py runs this module in a child process, so that a crash fails that test with the input that
caused it (saved to the case file before each example runs) instead of killing the whole test session.

    python -m tests.fuzz.onnx_cases CASE_FILE [EXAMPLES]
"""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from edge_sdk.loaders.onnx_intake import load_onnx
from tests.conftest import SHARED_DATA
from tests.fuzz.harness import fuzz_settings, mutate, mutations, sdk_outcome


def small_model_bytes() -> bytes:
    """x[1,4] @ W[4,3] + b -> Relu, opset 13, weights as initializers."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3) / 12, "W")
    bias = numpy_helper.from_array(np.array([0.1, -0.2, 0.3], dtype=np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "b"], ["z"]), helper.make_node("Relu", ["z"], ["y"])],
        "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        initializer=[weights, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def seeds() -> dict[str, bytes]:
    found = {"small.onnx": small_model_bytes()}
    zoo = SHARED_DATA / "onnx_zoo_mnist" / "model.onnx"
    if zoo.exists():
        found["zoo_mnist_opset1.onnx"] = zoo.read_bytes()
    return found


def run(case_file: Path, examples: int) -> None:
    seed_bytes = seeds()
    folder = case_file.parent

    @fuzz_settings(examples)
    @given(seed=st.sampled_from(sorted(seed_bytes)), edits=mutations)
    def mutated_models_load_or_raise_an_sdk_error(seed: str, edits: list) -> None:
        data = mutate(seed_bytes[seed], edits)
        case_file.write_bytes(data)  # left behind if the process dies on this input
        path = folder / "model.onnx"
        path.write_bytes(data)
        outcome = sdk_outcome(load_onnx, path)
        if not isinstance(outcome, Exception):
            assert outcome.signature.outputs, "a loaded model without outputs"

    for name, data in seed_bytes.items():
        (folder / name).write_bytes(data)
        assert load_onnx(folder / name).signature.inputs, f"seed {name} does not load"
    mutated_models_load_or_raise_an_sdk_error()
    case_file.unlink(missing_ok=True)


if __name__ == "__main__":
    run(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 40)
