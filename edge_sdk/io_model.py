"""How data samples meet a model's inputs: batch axes (first, another axis, or none), dynamic dims, scalars.

A data file holds, per input, a leading sample axis N and then one sample as the model takes it without its
batch axis: silero-vad's `state [2, B, 128]` is stored as (N, 2, 128) and goes back in at axis 1; its scalar
`sr []` is stored as (N,) and has no batch axis. Where the batch axis goes is given (`--batch-axis state:1`,
`sr:none`, or the manifest's TensorSpec.batch_axis) or found from the shapes when only one place fits.
Dynamic dims (None) take the data's size. Pure numpy: part of the slim runner's imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edge_sdk.errors import DataError, RuntimeFailure, UsageError

Shape = Sequence[int | None]
NO_BATCH_AXIS = "none"


def parse_batch_axes(texts: list[str] | None) -> dict[str, int | None]:
    """`--batch-axis NAME:AXIS` (repeatable; AXIS an integer or `none`) -> {name: axis or None}."""
    axes: dict[str, int | None] = {}
    for text in texts or []:
        name, _, value = text.rpartition(":")
        if not name:
            raise UsageError(f"--batch-axis {text!r} must be NAME:AXIS, e.g. state:1 or sr:none")
        if value.lower() == NO_BATCH_AXIS:
            axes[name] = None
            continue
        try:
            axes[name] = int(value)
        except ValueError as error:
            raise UsageError(f"--batch-axis {text!r}: {value!r} is not an axis number or 'none'") from error
        if axes[name] < 0:  # type: ignore[operator]
            raise UsageError(f"--batch-axis {text!r}: the axis must not be negative")
    return axes


def parse_named_shapes(texts: list[str] | None) -> dict[str, list[int]]:
    """`--input-shape NAME:1,3,48,192` (repeatable; a bare `1,3,48,192` names the only input, key '')."""
    shapes: dict[str, list[int]] = {}
    for text in texts or []:
        name, _, dims = text.rpartition(":")
        try:
            shape = [int(part) for part in dims.split(",") if part.strip()]
        except ValueError as error:
            raise UsageError(f"--input-shape {text!r} must look like NAME:1,3,48,192") from error
        if not shape or min(shape) <= 0:
            raise UsageError(f"--input-shape {text!r} must have positive sizes")
        shapes[name] = shape
    return shapes


def _fits(model_dims: Shape, sample_shape: tuple[int, ...]) -> int | None:
    """How many fixed dims match when `sample_shape` is fed as `model_dims` (None when one does not match)."""
    if len(model_dims) != len(sample_shape):
        return None
    matched = 0
    for wanted, got in zip(model_dims, sample_shape):
        if wanted is None or wanted < 0:
            continue
        if wanted != got:
            return None
        matched += 1
    return matched


def infer_batch_axis(model_shape: Shape, sample_shape: tuple[int, ...]) -> int | None:
    """Where the batch axis of an input of `model_shape` goes for samples of `sample_shape`.

    Same rank: no batch axis (a scalar, or a model without one). One rank more: the axis whose removal leaves a
    shape the sample fits, with the most fixed dims matched; the first axis when several fit equally.
    Raises DataError when the sample cannot fit at all.
    """
    if len(model_shape) == len(sample_shape) and _fits(model_shape, sample_shape) is not None:
        return None
    if len(model_shape) == len(sample_shape) + 1:
        best, best_matched = None, -1
        for axis in range(len(model_shape)):
            if model_shape[axis] not in (None, 1) and (model_shape[axis] or 0) > 0:
                continue  # a fixed batch axis larger than 1 cannot take one sample
            matched = _fits([d for i, d in enumerate(model_shape) if i != axis], sample_shape)
            if matched is not None and matched > best_matched:
                best, best_matched = axis, matched
        if best is not None:
            return best
    raise DataError(f"a sample of shape {sample_shape} does not fit the input shape {_show(model_shape)}")


def fit_input(array: np.ndarray, model_shape: Shape, batch_axis: int | None, where: str) -> np.ndarray:
    """One sample made into one model input: the batch axis (of size 1) inserted where the model has it, dynamic
    dims taken from the sample. A sample that differs from the model's shape only by axes of size 1 is reshaped."""
    expected = [d for i, d in enumerate(model_shape) if i != batch_axis]
    if _fits(expected, tuple(array.shape)) is None:
        squeezed = tuple(d for d in array.shape if d != 1)
        if all(d is not None and d > 0 for d in expected) and squeezed == tuple(d for d in expected if d != 1):
            array = array.reshape(tuple(int(d or 1) for d in expected))
        else:
            raise DataError(
                f"{where} has shape {tuple(array.shape)} after preprocessing, the model expects {_show(expected)} per sample"
                + (f" (batch axis {batch_axis} of {_show(model_shape)})" if batch_axis is not None else " (no batch axis)"),
                fix="check the data file, or set --layout NHWC|NCHW, --resize H,W, --input-shape NAME:DIMS or --batch-axis NAME:AXIS to match the model",
            )
    return array if batch_axis is None else np.expand_dims(array, batch_axis)


def _show(shape: Shape) -> str:
    return "(" + ", ".join("?" if d is None or d < 0 else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def per_sample_rows(value: np.ndarray, count: int) -> list[np.ndarray]:
    """One output of a call on `count` samples, split into one array per sample: along the first axis when it
    has `count` rows (a batch axis), else (one sample, and no batch axis of that size) the whole array."""
    value = np.asarray(value)
    if value.ndim and value.shape[0] == count:
        return list(value)
    if count == 1:
        return [value]
    raise RuntimeFailure(f"an output of shape {value.shape} cannot be split into {count} samples")


def checked_infer(runner: Any, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`runner.infer(inputs)`, a runtime's RuntimeError becoming a RuntimeFailure (exit 7) naming the model."""
    try:
        return runner.infer(inputs)  # type: ignore[no-any-return]
    except RuntimeError as error:
        raise RuntimeFailure(f"the runtime failed to run {runner.path}: {error}", fix="check the artifact with `edge-sdk inspect`") from error
