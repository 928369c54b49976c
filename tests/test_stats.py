import numpy as np

from edge_sdk import stats


def test_accuracy_interval_is_seeded_and_covers_the_estimate():
    correct = np.r_[np.ones(450), np.zeros(50)]
    first, second = stats.accuracy_interval(correct, seed=3), stats.accuracy_interval(correct, seed=3)
    assert first == second and first.low < 0.9 < first.high and 0.02 < first.half_width < 0.04


def test_paired_drop_is_narrower_than_independent_intervals():
    rng = np.random.default_rng(0)
    reference = rng.random(1000) < 0.95
    artifact = reference.copy()
    artifact[:10] = False  # the artifact loses 10 samples the reference got right (drop <= 1 point)
    drop = stats.paired_drop_interval(reference, artifact)
    independent = stats.accuracy_interval(reference).half_width + stats.accuracy_interval(artifact).half_width
    assert drop.low >= 0 and drop.high < 2.0 and 100 * independent > 2 * drop.half_width


def test_median_interval_and_sample_count():
    values = np.random.default_rng(1).lognormal(0, 0.1, 2000)
    interval = stats.median_interval(values)
    assert interval.low < np.median(values) < interval.high and stats.relative_half_width(interval) < 0.01
    assert 3000 < stats.samples_for_half_width(0.98, 0.5) < 3100
