"""Pure functions over timings and outputs: latency statistics, accuracy, fidelity to the float reference."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def latency_stats(latencies_ms: Sequence[float]) -> dict[str, float]:
    """min/mean/std/p50/p90/p99 in milliseconds and throughput (samples per second at the mean)."""
    values = np.asarray(latencies_ms, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no latencies to summarise")
    mean = float(values.mean())
    return {
        "min_ms": float(values.min()),
        "mean_ms": mean,
        "std_ms": float(values.std(ddof=1)) if values.size > 1 else 0.0,
        "p50_ms": float(np.percentile(values, 50)),
        "p90_ms": float(np.percentile(values, 90)),
        "p99_ms": float(np.percentile(values, 99)),
        "max_ms": float(values.max()),
        "throughput_per_s": 1000.0 / mean if mean > 0 else math.inf,
    }


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, k: int = 1) -> float:
    """Share of rows whose label is among the k highest scores."""
    scores = np.asarray(scores).reshape(len(labels), -1)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == np.asarray(labels)[:, None], axis=1)))


def top1_agreement(scores: np.ndarray, reference: np.ndarray) -> float:
    """Share of samples where the artifact and the reference pick the same class."""
    return float(np.mean(_rows(scores).argmax(axis=1) == _rows(reference).argmax(axis=1)))


def mean_cosine_similarity(outputs: np.ndarray, reference: np.ndarray) -> float:
    a, b = _rows(outputs).astype(np.float64), _rows(reference).astype(np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dots = np.sum(a * b, axis=1)
    # Two all-zero rows are identical; one all-zero row against a non-zero one is orthogonal.
    cosine = np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), np.where(np.all(a == b, axis=1), 1.0, 0.0))
    return float(np.mean(cosine))


def sqnr_db(outputs: np.ndarray, reference: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio in dB: 10 log10(sum(ref^2) / sum((out - ref)^2))."""
    reference64 = np.asarray(reference, dtype=np.float64)
    noise = np.sum((np.asarray(outputs, dtype=np.float64) - reference64) ** 2)
    signal = np.sum(reference64**2)
    if noise == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return float(10.0 * math.log10(signal / noise))


def abs_errors(outputs: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """(max, mean) absolute difference."""
    difference = np.abs(np.asarray(outputs, dtype=np.float64) - np.asarray(reference, dtype=np.float64))
    return float(difference.max()), float(difference.mean())


def fidelity(outputs: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Every fidelity figure of outputs against the float reference on the same inputs."""
    if np.shape(outputs) != np.shape(reference):
        raise ValueError(f"outputs {np.shape(outputs)} and reference {np.shape(reference)} differ in shape")
    max_error, mean_error = abs_errors(outputs, reference)
    return {
        "top1_agreement": top1_agreement(outputs, reference),
        "cosine_mean": mean_cosine_similarity(outputs, reference),
        "sqnr_db": sqnr_db(outputs, reference),
        "max_abs_error": max_error,
        "mean_abs_error": mean_error,
    }


def _rows(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    return array.reshape(array.shape[0], -1)
