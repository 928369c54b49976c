"""A tfmot pruning schedule that reaches its target on short training.

`PolynomialDecay(..., frequency=100)` (tfmot's default) only updates masks every 100 steps and only reaches
`final_sparsity` at a step where `(step - begin_step) % frequency == 0`: a fine-tune of a few hundred steps
stops early, at a lower sparsity, and a small one never prunes at all (0 %). Here the frequency follows the
length of training and `end_step` falls on an update step inside it.
"""

from __future__ import annotations

from typing import Any

from edge_sdk.errors import UsageError


def pruning_steps(total_steps: int, updates: int = 10, begin_step: int = 0) -> tuple[int, int]:
    """(frequency, end_step) so that `updates` mask updates end at or before the last training step."""
    if total_steps - begin_step < 2:
        raise UsageError(f"pruning needs at least 2 training steps after begin_step, got {total_steps - begin_step}")
    last_step = total_steps - 1
    frequency = max(1, (last_step - begin_step) // max(1, updates))
    end_step = begin_step + frequency * ((last_step - begin_step) // frequency)
    return frequency, end_step


def polynomial_pruning_schedule(target_sparsity: float, total_steps: int, initial_sparsity: float = 0.0, begin_step: int = 0, updates: int = 10) -> Any:
    """`tfmot.sparsity.keras.PolynomialDecay` from `initial_sparsity` to `target_sparsity` within `total_steps`
    (= epochs * batches per epoch). Train with the `UpdatePruningStep` callback, then `strip_pruning`."""
    if not 0.0 <= initial_sparsity <= target_sparsity < 1.0:
        raise UsageError(f"pruning sparsities must satisfy 0 <= initial ({initial_sparsity}) <= target ({target_sparsity}) < 1")
    import tensorflow_model_optimization as tfmot

    frequency, end_step = pruning_steps(total_steps, updates, begin_step)
    return tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=initial_sparsity, final_sparsity=target_sparsity, begin_step=begin_step, end_step=end_step, frequency=frequency
    )
