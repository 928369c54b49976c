"""Weight statistics that show what compression did: sparsity (pruning) and unique values per layer (clustering).

Only weight matrices and kernels (2 or more dimensions) count: biases, batch-norm statistics and QAT range
variables are not what pruning or clustering act on.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np


def weight_statistics(named_weights: Iterable[tuple[str, np.ndarray]]) -> dict[str, Any]:
    """{"parameters", "zeros", "sparsity", "layers": [{"name", "shape", "parameters", "sparsity", "unique_values"}]}."""
    layers = []
    for name, array in named_weights:
        array = np.asarray(array)
        if array.ndim < 2 or array.size == 0 or not np.issubdtype(array.dtype, np.floating):
            continue
        zeros = int(np.count_nonzero(array == 0))
        layers.append({
            "name": name, "shape": list(array.shape), "parameters": int(array.size), "zeros": zeros,
            "sparsity": round(zeros / array.size, 6), "unique_values": int(np.unique(array).size),
        })
    parameters = sum(layer["parameters"] for layer in layers)
    zeros = sum(layer["zeros"] for layer in layers)
    return {"parameters": parameters, "zeros": zeros, "sparsity": round(zeros / parameters, 6) if parameters else 0.0, "layers": layers}


def weight_statistics_of_model(model: Any, base_dir: Path | None = None) -> dict[str, Any] | None:
    """Statistics of a Keras (3 or tf_keras) model, an ONNX ModelProto (external data read from `base_dir`) or a
    torch nn.Module; None for anything else."""
    if hasattr(model, "graph") and hasattr(model.graph, "initializer"):
        from onnx import numpy_helper

        folder = str(base_dir or "")
        return weight_statistics((init.name, numpy_helper.to_array(init, base_dir=folder)) for init in model.graph.initializer)
    if hasattr(model, "named_parameters"):
        return weight_statistics((name, tensor.detach().cpu().numpy()) for name, tensor in model.named_parameters())
    if hasattr(model, "weights"):
        return weight_statistics((_weight_name(weight), np.asarray(weight.numpy())) for weight in model.weights if _trainable_kernel(weight))
    return None


def _weight_name(weight: Any) -> str:
    return str(getattr(weight, "path", None) or getattr(weight, "name", "weight")).split(":")[0]


def _trainable_kernel(weight: Any) -> bool:
    # tfmot's QAT wrappers add min/max range variables and the pruning/clustering wrappers masks and indices.
    name = _weight_name(weight).lower()
    return not any(part in name for part in ("_min", "_max", "mask", "threshold", "pruning_step", "cluster_indices", "optimizer_step"))


def source_weight_statistics(loaded: Any) -> dict[str, Any] | None:
    """For a converter's manifest: statistics of the source model's weights (the converted file stores the same
    values, so the sparsity a pruned model gains shows in its gzip size, and a clustered one in its unique values)."""
    return weight_statistics_of_model(getattr(loaded, "model", loaded))
