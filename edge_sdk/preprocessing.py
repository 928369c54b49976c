"""The preprocessing spec (`PreprocessSpec`): how raw samples become model inputs, validated once for convert,
bench, `--preprocess` files and manifests; and the parsers of its command-line values. edge_sdk.data applies it
to every sample it reads."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_sdk.errors import DataError, UsageError

LAYOUTS = ("NHWC", "NCHW")


@dataclass
class PreprocessSpec:
    """How raw samples become model inputs: x = ((resize(x) * scale) - mean) / std, then layout.

    Raw arrays and images are channel-last (HWC) or channel-less (HW). `layout` is what the
    model wants; a 2-D sample gets its channel axis where the layout puts it.
    """

    scale: float | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    layout: str | None = None
    source_layout: str | None = None
    resize: list[int] | None = None
    color: str | None = None
    dtype: str = "float32"

    def __post_init__(self) -> None:
        # Types first: a spec is read from JSON files and manifests, where "scale": "abc" would only fail at bench time.
        if self.scale is not None and not _is_number(self.scale):
            raise UsageError(f"preprocessing scale={self.scale!r} must be a number, e.g. 0.00392156 (1/255)")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, list) or not value or not all(_is_number(v) for v in value)):
                raise UsageError(f"preprocessing {name}={value!r} must be a list of numbers, one per channel")
        if self.resize is not None and (not isinstance(self.resize, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in self.resize)):
            raise UsageError(f"preprocessing resize={self.resize!r} must be two positive sizes: HEIGHT,WIDTH")
        if not isinstance(self.dtype, str):
            raise UsageError(f"preprocessing dtype={self.dtype!r} must be a numpy dtype name such as float32")
        for name in ("layout", "source_layout"):
            value = getattr(self, name)
            if value is not None and value not in LAYOUTS:
                raise UsageError(f"preprocessing {name}={value!r} is not one of {', '.join(LAYOUTS)}")
        if self.color not in (None, "rgb", "grayscale"):
            raise UsageError(f"preprocessing color={self.color!r} must be 'rgb' or 'grayscale'")
        if self.resize is not None and (len(self.resize) != 2 or min(self.resize) <= 0):
            raise UsageError(f"preprocessing resize={self.resize!r} must be two positive sizes: HEIGHT,WIDTH")
        if self.std is not None and any(value == 0 for value in self.std):
            raise UsageError("preprocessing std must not contain 0")
        # One validator for flags, --preprocess files and manifests: a zero or non-finite scale makes every sample
        # constant (figures measured on it mean nothing).
        if self.scale is not None and (not np.isfinite(self.scale) or self.scale == 0):
            raise UsageError(f"preprocessing scale={self.scale!r} must be a finite number other than 0", fix="e.g. --scale 1/255")
        for name in ("mean", "std"):
            values = getattr(self, name)
            if values is not None and (not values or not all(np.isfinite(values))):
                raise UsageError(f"preprocessing {name}={values!r} must be one or more finite numbers (one per channel)")
        try:
            np.dtype(self.dtype)
        except (TypeError, ValueError, SyntaxError) as error:
            raise UsageError(f"preprocessing dtype={self.dtype!r} is not a numpy dtype") from error

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, payload: dict[str, Any] | None) -> PreprocessSpec:
        if not payload:
            return cls()
        if not isinstance(payload, dict):
            raise UsageError(f"preprocessing must be a mapping of settings, not {type(payload).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(payload) - known)
        if unknown:
            raise UsageError(f"unknown preprocessing keys: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return cls(**payload)

    def merged(self, overrides: dict[str, Any]) -> PreprocessSpec:
        """A copy with every non-None value of `overrides` applied."""
        values = self.to_dict()
        values.update({key: value for key, value in overrides.items() if value is not None})
        return PreprocessSpec.from_dict(values)

    def apply(self, sample: np.ndarray) -> np.ndarray:
        """Preprocess one raw sample (no batch axis)."""
        x = np.asarray(sample, dtype=np.float32)
        if self.scale is not None:
            x = x * np.float32(self.scale)
        if self.layout is not None and x.ndim == 2:
            x = x[None, :, :] if self.layout == "NCHW" else x[:, :, None]
        elif self.layout and self.source_layout and self.layout != self.source_layout and x.ndim == 3:
            x = np.transpose(x, (2, 0, 1) if self.layout == "NCHW" else (1, 2, 0))
        if self.mean is not None or self.std is not None:
            channel_shape = (-1, 1, 1) if self.layout == "NCHW" and x.ndim == 3 else (-1,)
            channels = (x.shape[0] if channel_shape == (-1, 1, 1) else x.shape[-1]) if x.ndim else 1
            for name, values in (("mean", self.mean), ("std", self.std)):
                if values is not None and len(values) not in (1, channels):
                    raise DataError(f"preprocessing {name} has {len(values)} values but the samples have {channels} channels ({self.layout or 'channel-last'})",
                                    fix=f"give one {name} value per channel, or one for all")
            if self.mean is not None:
                x = x - np.asarray(self.mean, dtype=np.float32).reshape(channel_shape)
            if self.std is not None:
                x = x / np.asarray(self.std, dtype=np.float32).reshape(channel_shape)
        return np.asarray(x.astype(self.dtype, copy=False))  # a 0-d sample stays an array, not a numpy scalar


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


def parse_scale(text: str | float | None) -> float | None:
    """Accept `0.5`, `1/255` or None."""
    if text is None or isinstance(text, float):
        return text
    try:
        if "/" in text:
            numerator, denominator = text.split("/", 1)
            return float(numerator) / float(denominator)
        return float(text)
    except (ValueError, ZeroDivisionError) as error:
        raise UsageError(f"--scale {text!r} is not a number or a fraction like 1/255") from error


def parse_floats(text: str | None, flag: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise UsageError(f"{flag} {text!r} must be comma-separated numbers, e.g. 0.485,0.456,0.406") from error
