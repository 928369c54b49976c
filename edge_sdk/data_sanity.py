"""Data that would make wrong figures with exit 0 is refused before any work: calibration or validation data whose
inputs are all zero or constant, or one sample repeated (calibration on it gives ranges that fit nothing real, and a
validation on it measures nothing: "cosine 0.99997" on zeros)."""

from __future__ import annotations

import warnings

import numpy as np

from edge_sdk.data import Dataset
from edge_sdk.errors import DataError


def degenerate_reason(dataset: Dataset, indices: list[int] | None) -> str | None:
    """Why the selected samples of `dataset` carry no information (None when they do)."""
    first: dict[str, np.ndarray] = {}
    varies = {name: False for name in dataset.input_names}
    low: dict[str, float] = {}
    high: dict[str, float] = {}
    count = 0
    for sample in dataset.samples(indices):
        count += 1
        for name, array in sample.inputs.items():
            values = np.asarray(array, dtype=np.float64)
            if values.size:
                low[name] = min(low.get(name, np.inf), float(values.min()))
                high[name] = max(high.get(name, -np.inf), float(values.max()))
            if name not in first:
                first[name] = values
            elif not varies[name] and (values.shape != first[name].shape or not np.array_equal(values, first[name])):
                varies[name] = True
    # One constant input beside others that vary is legitimate (silero-vad's sample rate `sr`); data in which no
    # input carries information is not.
    constant = [name for name in first if low.get(name) == high.get(name)]
    if first and len(constant) == len(first):
        name = constant[0]
        if all(low.get(other) == high.get(other) == 0.0 for other in constant):
            return f"input {name!r} is all zero in every sample" if len(first) == 1 else "every input is all zero in every sample"
        return f"input {name!r} holds one constant value ({low[name]:g}) in every sample" if len(first) == 1 else "every input holds one constant value"
    if count > 1 and not any(varies.values()):
        return f"all {count} samples are the same"
    return None


def check_informative(dataset: Dataset | None, indices: list[int] | None, purpose: str, allow: bool = False) -> str | None:
    """Refuse (DataError, exit 4) degenerate `purpose` data ('calibration', 'validation'), or with `allow` warn and
    return the warning (to keep in the manifest)."""
    if dataset is None:
        return None
    reason = degenerate_reason(dataset, indices)
    if reason is None:
        return None
    message = f"the {purpose} data {dataset.path} is degenerate: {reason}"
    if not allow:
        raise DataError(message, fix=f"give real {purpose} samples (the data the model will see), or --allow-degenerate-calibration to go on anyway")
    warnings.warn(message + " (--allow-degenerate-calibration)", stacklevel=2)
    return message
