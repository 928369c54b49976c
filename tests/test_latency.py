import itertools

import numpy as np
import pytest

from edge_sdk import latency


def test_warm_up_waits_for_stable_timings_then_meets_the_target():
    # Calls that speed up as caches warm (1 + 4 exp(-n/8) ms), with +- 0.5 % noise.
    rng = np.random.default_rng(0)
    counter = itertools.count()
    call = lambda: (1.0 + 4.0 * np.exp(-next(counter) / 8.0)) * (1 + 0.005 * rng.standard_normal())
    measured = latency.measure_latency(call, latency.LatencyPolicy(target_relative_half_width=0.01, time_budget_s=5))
    assert measured.warmup_runs >= 30 and measured.warmup_stable
    assert measured.stop_reason == "target" and not measured.noisy and measured.median.estimate == pytest.approx(1.0, rel=0.01)


def test_noisy_run_is_flagged_when_the_budget_runs_out():
    rng = np.random.default_rng(0)
    clock = itertools.count(0, 0.01).__next__  # each clock read advances 10 ms
    measured = latency.measure_latency(lambda: float(rng.lognormal(0, 1.0)), latency.LatencyPolicy(target_relative_half_width=0.001, time_budget_s=1.0), clock=clock)
    assert measured.stop_reason == "time_budget" and measured.noisy and measured.to_dict()["noisy"] is True


def tiny_cnn_timings(outliers: int, spread: float = 0.003, runs: int = 200) -> list[float]:
    """Timings shaped like the digits CNN's on a desktop: ~10 us, +-0.3 % jitter, `outliers` runs at ~6x the median."""
    rng = np.random.default_rng(1)
    values = 0.010 * (1 + spread * rng.standard_normal(runs))
    values[rng.choice(runs, size=outliers, replace=False)] = 0.060
    return values.tolist()


def test_fixed_runs_with_a_handful_of_outliers_are_not_noisy_when_the_median_is_pinned():
    measured = latency.assess_fixed_runs(tiny_cnn_timings(outliers=4), warmup_runs=10)
    assert measured.relative_half_width < 0.002 and measured.slow_runs == 4
    assert not measured.noisy and measured.to_dict()["noisy_reasons"] == []


def test_fixed_runs_with_a_heavy_tail_are_noisy_even_when_the_median_is_pinned():
    measured = latency.assess_fixed_runs(tiny_cnn_timings(outliers=12), warmup_runs=10)  # 6 % of runs at 6x
    assert measured.relative_half_width < 0.002
    assert measured.noisy and measured.noisy_reasons == ["12 of 200 runs took over 3x the median"]


def test_fixed_runs_with_a_wide_median_interval_are_noisy():
    # +-10 % jitter: 200 runs pin the median only to about +-1.4 %, wider than the +-1 % target.
    measured = latency.assess_fixed_runs(tiny_cnn_timings(outliers=0, spread=0.10), warmup_runs=10)
    assert 0.01 < measured.relative_half_width < 0.03
    assert measured.noisy and measured.noisy_reasons[0].startswith("median known to +-1.")
    assert not latency.assess_fixed_runs(tiny_cnn_timings(outliers=0, spread=0.10), 10, target_relative_half_width=0.05).noisy


def test_too_few_fixed_runs_are_noisy_however_close_they_are():
    measured = latency.assess_fixed_runs([1.0, 1.0, 1.0], warmup_runs=0)
    assert measured.relative_half_width == 0 and measured.noisy
    assert "3 timed runs cannot bound the median" in measured.noisy_reasons[0]


def test_cold_start_spawns_a_fresh_process(digits_artifacts):
    result = latency.cold_start_ms(digits_artifacts["fp32"], {"x": np.zeros((1, 8, 8, 1), np.float32)})
    assert result["process_to_first_result_ms"] > result["load_ms"] + result["first_inference_ms"] > 0
