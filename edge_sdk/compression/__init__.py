"""Helpers for compressing a model before it is converted: distillation, pruning, low-rank factorization, and
the weight statistics converters record in manifests (sparsity, unique values per layer).

Importing this package imports no framework; each helper imports TensorFlow, tfmot or torch when called.
"""

from __future__ import annotations

from edge_sdk.compression.distillation import distillation_loss, pack_distillation_targets, torch_distillation_loss
from edge_sdk.compression.low_rank import LowRankLayer, factorize_dense_layers, rank_for_energy
from edge_sdk.compression.pruning import polynomial_pruning_schedule
from edge_sdk.compression.weights import weight_statistics, weight_statistics_of_model

__all__ = [
    "LowRankLayer",
    "distillation_loss",
    "factorize_dense_layers",
    "pack_distillation_targets",
    "polynomial_pruning_schedule",
    "rank_for_energy",
    "torch_distillation_loss",
    "weight_statistics",
    "weight_statistics_of_model",
]
