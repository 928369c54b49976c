"""Self-validating latency: warm up until the timings settle, time until the median is known to a target
precision or a budget runs out, flag the run as noisy when it is not; and cold start in a fresh process.

`measure_latency` takes a callable that runs the model once and returns the runtime call's own time in ms
(the runner records it), so the loop never times input checks or copies.

When a run is noisy (the same rule for adaptive timing and for a fixed `--runs`):
- the median's 95 % interval, from the runs actually taken, is wider than the target (default +-1 %), or
- fewer than 6 runs were timed (no distribution-free 95 % interval of a median exists below 6), or
- warm-up never settled, or
- the tail is very large: more than 1 % of the runs, and more than a handful (5), took over 3x the median; with
  500 runs or more that is exactly p99/p50 > 3. A few outliers (a page fault, a timer interrupt) in a run whose
  median is well determined do not make it noisy; they still show in p99 and max.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk import stats
from edge_sdk.errors import RuntimeFailure, UsageError


@dataclass(frozen=True)
class LatencyPolicy:
    """When to stop warming up and timing. `target_relative_half_width` 0.01 asks for the median to +-1 %."""

    target_relative_half_width: float = 0.01
    time_budget_s: float = 10.0
    min_runs: int = 30
    max_runs: int = 20000
    warmup_window: int = 10
    warmup_tolerance: float = 0.05
    max_warmup_runs: int = 300
    check_every: int = 10
    max_p99_over_p50: float = 3.0

    def __post_init__(self) -> None:
        if not 0 < self.target_relative_half_width < 1:
            raise UsageError(f"--latency-target {self.target_relative_half_width} must be a fraction between 0 and 1, e.g. 0.01 for +-1 %")
        if self.time_budget_s <= 0:
            raise UsageError(f"--time-budget {self.time_budget_s} must be positive (seconds)")
        if self.max_p99_over_p50 <= 1:
            raise UsageError(f"latency tail limit p99/p50 {self.max_p99_over_p50} must be above 1")
        if self.min_runs < 6 or self.max_runs < self.min_runs:
            raise UsageError(f"latency runs: min_runs {self.min_runs} must be at least 6 and at most max_runs {self.max_runs}")


# Below this many runs there is no distribution-free 95 % interval of a median: P(all runs on one side) > 5 %.
MIN_RUNS_FOR_MEDIAN_INTERVAL = 6
# Slow runs tolerated whatever the run count: a handful of outliers says nothing about the median.
TOLERATED_SLOW_RUNS = 5
TAIL_SHARE = 0.01  # the p99 in "p99/p50"


@dataclass
class LatencyMeasurement:
    latencies_ms: list[float]
    warmup_runs: int
    warmup_stable: bool
    median: stats.Interval
    stop_reason: str  # "target" | "time_budget" | "max_runs" | "fixed_runs"
    target_relative_half_width: float
    elapsed_s: float
    cold_start: dict[str, Any] | None = field(default=None)
    max_p99_over_p50: float = 3.0
    half_drift: float | None = None  # fixed runs: relative difference of the two halves' medians

    @property
    def relative_half_width(self) -> float:
        return stats.relative_half_width(self.median)

    @property
    def slow_runs(self) -> int:
        """Runs that took more than `max_p99_over_p50` times the median."""
        return int(np.count_nonzero(np.asarray(self.latencies_ms) > self.max_p99_over_p50 * self.median.estimate))

    @property
    def noisy_reasons(self) -> list[str]:
        """Why the run is noisy, one phrase per failed check (empty when it is not); see the module docstring."""
        runs = len(self.latencies_ms)
        reasons = []
        if runs < MIN_RUNS_FOR_MEDIAN_INTERVAL:
            reasons.append(f"{runs} timed runs cannot bound the median at 95 % ({MIN_RUNS_FOR_MEDIAN_INTERVAL} or more needed)")
        elif self.relative_half_width > self.target_relative_half_width:
            reasons.append(
                f"median known to +-{100 * self.relative_half_width:.2f} % (95 %) over {runs} runs, "
                f"wider than the +-{100 * self.target_relative_half_width:g} % target"
            )
        if not self.warmup_stable and self.half_drift is not None:
            reasons.append(f"the medians of the first and second half of the runs differ by {100 * self.half_drift:.1f} % (more than 5 %: warm-up or throttling)")
        elif not self.warmup_stable:
            reasons.append("warm-up never settled")
        if self.slow_runs > max(TOLERATED_SLOW_RUNS, TAIL_SHARE * runs):
            reasons.append(f"{self.slow_runs} of {runs} runs took over {self.max_p99_over_p50:g}x the median")
        return reasons

    @property
    def noisy(self) -> bool:
        return bool(self.noisy_reasons)

    def to_dict(self) -> dict[str, Any]:
        """The `timing.stability` record of a result."""
        return {
            "median_ci_ms": self.median.to_dict(),
            "median_relative_half_width": self.relative_half_width,
            "target_relative_half_width": self.target_relative_half_width,
            "noisy": self.noisy,
            "noisy_reasons": self.noisy_reasons,
            "slow_runs": self.slow_runs,
            "max_p99_over_p50": self.max_p99_over_p50,
            "warmup_runs": self.warmup_runs,
            "warmup_stable": self.warmup_stable,
            "timed_runs": len(self.latencies_ms),
            "stop_reason": self.stop_reason,
            "elapsed_s": round(self.elapsed_s, 3),
        }


def warm_up(call: Callable[[], float], policy: LatencyPolicy) -> tuple[int, bool]:
    """Run windows of `warmup_window` calls until two consecutive window medians agree within the tolerance
    (caches, allocators and lazy kernel selection have settled); returns (runs, settled)."""
    runs, previous = 0, None
    while runs < policy.max_warmup_runs:
        window = [call() for _ in range(policy.warmup_window)]
        runs += len(window)
        median = float(np.median(window))
        if previous is not None and abs(median - previous) <= policy.warmup_tolerance * max(previous, 1e-9):
            return runs, True
        previous = median
    return runs, False


def measure_latency(call: Callable[[], float], policy: LatencyPolicy, clock: Callable[[], float] = time.perf_counter) -> LatencyMeasurement:
    """Warm up until stable, then time until the median's interval is within the target or the budget is spent."""
    started = clock()
    warmup_runs, stable = warm_up(call, policy)
    latencies: list[float] = []
    reason = "max_runs"
    while len(latencies) < policy.max_runs:
        latencies.extend(call() for _ in range(policy.check_every))
        if len(latencies) >= policy.min_runs:
            interval = stats.median_interval(np.asarray(latencies))
            if stats.relative_half_width(interval) <= policy.target_relative_half_width:
                reason = "target"
                break
        if clock() - started > policy.time_budget_s:
            reason = "time_budget"
            break
    return LatencyMeasurement(
        latencies, warmup_runs, stable, stats.median_interval(np.asarray(latencies)), reason, policy.target_relative_half_width, clock() - started,
        max_p99_over_p50=policy.max_p99_over_p50,
    )


def assess_fixed_runs(latencies_ms: list[float], warmup_runs: int, target_relative_half_width: float = 0.01, max_p99_over_p50: float = 3.0) -> LatencyMeasurement:
    """The same stability record for a fixed number of runs (`--runs`), so every result carries the noisy flag.

    The target is judged on the interval the runs taken give: 200 runs of a model whose timings sit within a few
    per cent of each other pin the median well inside +-1 %, however small the model."""
    values = np.asarray(latencies_ms, dtype=np.float64)
    if values.size == 0:
        raise UsageError("no timed runs to assess", fix="time at least one run (--runs 1 or more)")
    half = values.size // 2
    # Warm-up is judged after the fact: the first and second half of the timed runs must agree.
    drift = abs(float(np.median(values[:half]) - np.median(values[half:]))) / max(float(np.median(values)), 1e-9) if values.size >= 20 else None
    return LatencyMeasurement(
        list(latencies_ms), warmup_runs, drift is None or drift <= 0.05, stats.median_interval(values), "fixed_runs", target_relative_half_width, 0.0,
        max_p99_over_p50=max_p99_over_p50, half_drift=drift,
    )


_COLD_START_CHILD = r"""
import json, sys, time
import numpy as np
from targets.runners import runner_for
from targets.runners.base import RunnerOptions
path, inputs_file, options = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
with np.load(inputs_file, allow_pickle=False) as arrays:
    feeds = {name: arrays[name] for name in arrays.files}
imported = time.perf_counter()
runner = runner_for(path, RunnerOptions(**options))
with runner:
    names = [spec.name for spec in runner.inputs]
    runner.infer({name: feeds[key] for name, key in zip(names, sorted(feeds))})
    print(json.dumps({"load_ms": (runner.load_time_s or 0) * 1000, "first_inference_ms": (runner.inference_time_s or 0) * 1000}), flush=True)
"""


def cold_start_ms(artifact: Path, inputs: dict[str, np.ndarray], runner_options: dict[str, Any] | None = None, timeout_s: float = 120.0) -> dict[str, Any]:
    """Process start to first result: spawn a fresh Python that imports the runner, loads `artifact` and runs
    one sample. The parent's clock runs from just before the spawn until the child reports its first result."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep), "TF_CPP_MIN_LOG_LEVEL": "2"}
    with tempfile.TemporaryDirectory(prefix="edge-sdk-cold-") as folder:
        inputs_file = Path(folder) / "inputs.npz"
        # Keys sort in the runner's input order: the child feeds them positionally.
        np.savez(inputs_file, **{f"{index:03d}": array for index, array in enumerate(inputs.values())})
        command = [sys.executable, "-c", _COLD_START_CHILD, str(artifact), str(inputs_file), json.dumps(runner_options or {})]
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=folder, env=env)
        line = process.stdout.readline() if process.stdout else ""
        first_result = time.perf_counter()
        try:
            _, errors = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired as error:
            process.kill()
            raise RuntimeFailure(f"cold-start run of {artifact} did not finish in {timeout_s:.0f} s") from error
    if process.returncode != 0 or not line.strip():
        raise RuntimeFailure(f"cold-start run of {artifact} failed (exit {process.returncode}): {errors.strip()[-500:]}", fix="run `edge-sdk bench` without --cold-start to see the runtime's error")
    child = json.loads(line)
    return {"process_to_first_result_ms": (first_result - started) * 1000.0, **child}
