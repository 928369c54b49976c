"""Low-rank factorization of Dense layers by truncated SVD.

A Dense kernel W (inputs x units) becomes two Dense layers, (W ~ U_r S_r V_r^T): inputs -> rank (U_r S_r, no
bias) -> units (V_r^T, the original bias and activation). The rank is the smallest one that keeps `energy` of
the squared singular values; a layer is only factorized where that saves parameters.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edge_sdk.errors import UsageError


@dataclass
class LowRankLayer:
    """What happened to one Dense layer."""

    name: str
    input_dim: int
    units: int
    rank: int
    retained_energy: float
    parameters_before: int
    parameters_after: int
    factorized: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rank_for_energy(singular_values: np.ndarray, energy: float) -> int:
    """The smallest rank r with sum(s[:r]^2) >= energy * sum(s^2)."""
    if not 0.0 < energy <= 1.0:
        raise UsageError(f"retained energy {energy} must be in (0, 1]")
    squared = np.asarray(singular_values, dtype=np.float64) ** 2
    cumulative = np.cumsum(squared) / squared.sum()
    return int(min(len(squared), np.searchsorted(cumulative, energy - 1e-12) + 1))


def factorize_dense_layers(model: Any, energy: float = 0.9) -> tuple[Any, list[LowRankLayer]]:
    """A new Sequential model with its Dense layers factorized where that saves parameters, and a per-layer report.

    Works for Keras 3 and tf_keras Sequential models; other layers are copied with their weights.
    """
    keras = _keras_of(model)
    if not isinstance(model, keras.Sequential):
        raise UsageError(f"low-rank factorization takes a Sequential model, not {type(model).__name__}", fix="rebuild the model as keras.Sequential")
    factorized = keras.Sequential([keras.Input(tuple(model.inputs[0].shape[1:]))], name=f"{model.name}_lowrank")
    report = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            kernel, *bias = layer.get_weights()
            left, singular, right = np.linalg.svd(kernel, full_matrices=False)
            rank = rank_for_energy(singular, energy)
            input_dim, units = kernel.shape
            after = rank * (input_dim + units) + (units if bias else 0)
            before = kernel.size + (units if bias else 0)
            entry = LowRankLayer(layer.name, input_dim, units, rank, float((singular[:rank] ** 2).sum() / (singular**2).sum()), before, min(before, after), after < before)
            report.append(entry)
            if entry.factorized:
                first = keras.layers.Dense(rank, use_bias=False, name=f"{layer.name}_lowrank_a")
                second = keras.layers.Dense(units, activation=layer.activation, use_bias=bool(bias), name=f"{layer.name}_lowrank_b")
                factorized.add(first)
                factorized.add(second)
                first.set_weights([(left[:, :rank] * singular[:rank]).astype(kernel.dtype)])
                second.set_weights([right[:rank].astype(kernel.dtype), *bias])
                continue
        copy = type(layer).from_config(layer.get_config())
        factorized.add(copy)
        copy.set_weights(layer.get_weights())
    return factorized, report


def _keras_of(model: Any) -> Any:
    # tfmot only works with tf_keras models, so both Keras flavours appear in the examples.
    if type(model).__module__.startswith("tf_keras"):
        import tf_keras

        return tf_keras
    import keras

    return keras
