import math

import numpy as np
import pytest

from edge_sdk import metrics


def test_latency_stats_percentiles_and_throughput():
    stats = metrics.latency_stats([1.0, 2.0, 3.0, 4.0])
    assert stats["min_ms"] == 1.0 and stats["max_ms"] == 4.0
    assert stats["mean_ms"] == pytest.approx(2.5)
    assert stats["p50_ms"] == pytest.approx(2.5)
    assert stats["throughput_per_s"] == pytest.approx(400.0)
    assert stats["std_ms"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1))


def test_topk_accuracy():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3], [0.2, 0.3, 0.5]])
    labels = np.array([1, 2, 0])
    assert metrics.topk_accuracy(scores, labels, 1) == pytest.approx(1 / 3)
    assert metrics.topk_accuracy(scores, labels, 2) == pytest.approx(2 / 3)


def test_fidelity_identical_and_perturbed():
    reference = np.random.default_rng(0).normal(size=(50, 10))
    same = metrics.fidelity(reference, reference)
    assert same["top1_agreement"] == 1.0 and same["cosine_mean"] == pytest.approx(1.0)
    assert math.isinf(same["sqnr_db"]) and same["max_abs_error"] == 0.0
    noisy = reference + 0.1 * np.random.default_rng(1).normal(size=reference.shape)
    figures = metrics.fidelity(noisy, reference)
    # noise power is 1% of the signal power: about 20 dB
    assert 18 < figures["sqnr_db"] < 22
    assert figures["cosine_mean"] < 1.0
    assert figures["max_abs_error"] > figures["mean_abs_error"] > 0


def test_fidelity_shape_mismatch():
    with pytest.raises(ValueError):
        metrics.fidelity(np.zeros((2, 3)), np.zeros((3, 3)))
