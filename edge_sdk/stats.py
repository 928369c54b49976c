"""Confidence intervals for the figures a benchmark reports: seeded, paired bootstrap for accuracy and its
drop against the float reference, and a distribution-free interval for a median latency.

Pure numpy; every function is deterministic for a given seed, so a results file can be reproduced.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided confidence interval, in the unit the caller chose."""

    estimate: float
    low: float
    high: float
    confidence: float = CONFIDENCE

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _resample_indices(samples: int, resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, samples, size=(resamples, samples))


def _percentile_interval(estimate: float, replicates: np.ndarray, confidence: float) -> Interval:
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(replicates, [tail, 100.0 - tail])
    return Interval(float(estimate), float(low), float(high), confidence)


def accuracy_interval(correct: np.ndarray, *, seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES, confidence: float = CONFIDENCE) -> Interval:
    """Bootstrap interval of an accuracy (a fraction) from one boolean per sample."""
    correct = np.asarray(correct, dtype=np.float64).ravel()
    if correct.size == 0:
        raise ValueError("no samples to compute an accuracy interval from")
    replicates = correct[_resample_indices(correct.size, resamples, seed)].mean(axis=1)
    return _percentile_interval(float(correct.mean()), replicates, confidence)


def paired_drop_interval(
    reference_correct: np.ndarray, artifact_correct: np.ndarray, *, seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES, confidence: float = CONFIDENCE
) -> Interval:
    """Bootstrap interval of the accuracy drop in percentage points (reference minus artifact).

    Paired: each replicate resamples the same samples for both models, so the per-sample agreement of the two
    models narrows the interval (two independent intervals would overstate the uncertainty of the drop).
    """
    reference = np.asarray(reference_correct, dtype=np.float64).ravel()
    artifact = np.asarray(artifact_correct, dtype=np.float64).ravel()
    if reference.shape != artifact.shape or reference.size == 0:
        raise ValueError(f"paired samples differ in count: reference {reference.size}, artifact {artifact.size}")
    difference = 100.0 * (reference - artifact)
    replicates = difference[_resample_indices(difference.size, resamples, seed)].mean(axis=1)
    return _percentile_interval(float(difference.mean()), replicates, confidence)


def samples_for_half_width(accuracy: float, half_width_points: float, confidence: float = CONFIDENCE) -> int:
    """Samples needed for a normal-approximation accuracy interval of +-`half_width_points` points."""
    z = _z(confidence)
    p = min(max(accuracy, 0.01), 0.99)  # a perfect score still needs samples to be believed
    return int(math.ceil(z * z * p * (1 - p) / (half_width_points / 100.0) ** 2))


def median_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> Interval:
    """Distribution-free interval of the median from order statistics (binomial(n, 1/2) ranks).

    Latencies are skewed and autocorrelated; order statistics assume neither a shape nor a variance.
    """
    ordered = np.sort(np.asarray(values, dtype=np.float64).ravel())
    count = ordered.size
    if count == 0:
        raise ValueError("no values to compute a median interval from")
    median = float(np.median(ordered))
    if count < 6:
        return Interval(median, float(ordered[0]), float(ordered[-1]), confidence)
    half = _z(confidence) * math.sqrt(count) / 2.0
    low_rank = max(0, int(math.floor(count / 2.0 - half)))
    high_rank = min(count - 1, int(math.ceil(count / 2.0 + half)))
    return Interval(median, float(ordered[low_rank]), float(ordered[high_rank]), confidence)


def relative_half_width(interval: Interval) -> float:
    """Half-width as a fraction of the estimate (inf for a zero estimate)."""
    return interval.half_width / abs(interval.estimate) if interval.estimate else math.inf


def _z(confidence: float) -> float:
    # Two-sided normal quantile; the inverse error function is not in the standard library before 3.12.
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + confidence / 2.0)
