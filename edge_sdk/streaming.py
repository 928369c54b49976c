"""Stateful models: state pairs and streaming evaluation.

A stateful model (an RNN voice-activity detector, a streaming recogniser) takes its state as inputs and gives the
next state as outputs: silero-vad's `state -> stateN`, or `h -> hn, c -> cn`. Evaluated per step, every sample
gets the state recorded in the data (the reference's own state), which hides how errors build up over time.
Evaluated streaming, each model carries its own state through each sequence (the `.npz` array `sequence`), starting
from the state recorded for the sequence's first sample, as it will on the device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edge_sdk.errors import UsageError

_NEXT_STATE_SUFFIXES = ("n", "_n", "_out", "out", "_next", "next", "_new")


def parse_state_pairs(text: str | None) -> list[tuple[str, str]]:
    """`--state h:hn,c:cn` -> [("h", "hn"), ("c", "cn")] (input name, output name)."""
    pairs: list[tuple[str, str]] = []
    for part in filter(None, (text or "").split(",")):
        state_input, _, state_output = part.partition(":")
        if not state_input or not state_output:
            raise UsageError(f"--state {text!r} must be INPUT:OUTPUT pairs, e.g. --state h:hn,c:cn")
        pairs.append((state_input.strip(), state_output.strip()))
    return pairs


def _compatible(first: Sequence[int | None], second: Sequence[int | None]) -> bool:
    return len(first) == len(second) and all(a is None or b is None or a == b for a, b in zip(first, second))


def detect_state_pairs(inputs: Sequence[tuple[str, Sequence[int | None]]], outputs: Sequence[tuple[str, Sequence[int | None]]]) -> list[tuple[str, str]]:
    """Pairs found from names and shapes where unambiguous: an output named like an input plus a next-state suffix
    (stateN, hn, c_out...) with a compatible shape. An input that two outputs could continue is left unpaired."""
    pairs = []
    for input_name, input_dims in inputs:
        candidates = [name for name, dims in outputs
                      if name.lower() in {input_name.lower() + suffix for suffix in _NEXT_STATE_SUFFIXES} and _compatible(input_dims, dims)]
        if len(candidates) == 1:
            pairs.append((input_name, candidates[0]))
    return pairs


def check_state_pairs(pairs: Sequence[tuple[str, str]], input_names: Sequence[str], output_names: Sequence[str]) -> None:
    """Every pair names a model input and a model output (UsageError otherwise)."""
    for state_input, state_output in pairs:
        if state_input not in input_names or state_output not in output_names:
            raise UsageError(f"--state {state_input}:{state_output}: the model's inputs are {list(input_names)} and its outputs {list(output_names)}")


def sequence_subset(sequence_ids: np.ndarray, count: int | None, seed: int = 0) -> list[int] | None:
    """Streaming counts whole sequences: the sample indices of `count` sequences chosen with `seed` (None: all)."""
    sequences = np.unique(sequence_ids)
    if count is None or count >= len(sequences):
        return None
    chosen = set(np.random.default_rng(seed).choice(sequences, size=count, replace=False).tolist())
    return [index for index, sequence in enumerate(sequence_ids.tolist()) if sequence in chosen]


def evaluate_streaming(runner: Any, dataset: Any, indices: list[int] | None, pairs: Sequence[tuple[str, str]], batch_axes: dict[str, int | None] | None = None) -> dict[str, np.ndarray]:
    """Every output of every selected sample, the model carrying its own state within each sequence.

    At the first sample of a sequence the state inputs come from the data; after that from the model's own state
    outputs of the previous step. Returns {output name: (N, ...) array}, in sample order.
    """
    from edge_sdk.io_model import checked_infer as _checked_infer, per_sample_rows
    from edge_sdk.data import InputBinding

    if dataset.sequence_ids is None:
        raise UsageError(f"streaming evaluation needs a `sequence` array in {dataset.path}", fix="save np.savez(path, ..., sequence=ids) with one id per sample")
    binding = InputBinding.bind(dataset, [(spec.name, spec.dims or spec.shape) for spec in runner.inputs], batch_axes)
    outputs: dict[str, list[np.ndarray]] = {spec.name: [] for spec in runner.outputs}
    carried: dict[str, np.ndarray] = {}
    previous_sequence = None
    for sample in dataset.samples(indices):
        feeds = binding.fit(sample, str(dataset.path))
        sequence = int(dataset.sequence_ids[sample.index])
        if sequence == previous_sequence:
            feeds.update({state_input: carried[state_input].reshape(feeds[state_input].shape) for state_input, _ in pairs})
        previous_sequence = sequence
        result = _checked_infer(runner, feeds)
        carried = {state_input: np.asarray(result[state_output]) for state_input, state_output in pairs}
        for name, value in result.items():
            outputs.setdefault(name, []).extend(per_sample_rows(value, 1))
    return {name: np.stack(rows) for name, rows in outputs.items() if rows}
