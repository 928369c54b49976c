"""Every script in tools/bench runs in its smoke mode (tiny sizes, the same code as `make bench`) and prints its
figures: a tool nothing runs rots silently (issue 12: `make bench` failed on main with an ImportError)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

BENCH = REPO / "tools" / "bench"
# The figures each script prints as `name: value`, and the goals printed beside its ratios.
FIGURES = {
    "runner_overhead.py": {"keys": {"bare_converter_s", "edge_sdk_convert_s", "convert_time_ratio", "bare_invoke_p50_ms", "sdk_reported_p50_ms", "sdk_p50_ratio"},
                           "goals": {"convert_time_ratio": "1.2", "sdk_p50_ratio": "1.02"}},
    "serve.py": {"keys": {"bare_runner_p50_ms", "served_c1_p50_ms", "served_c8_throughput_rps", "served_batched_c8_throughput_rps", "served_overhead_c1_ms"},
                 "goals": {"served_overhead_c1_ms": "1"}},
}
FIGURE = re.compile(r"^\s*([a-z0-9_]+): (-?\d+(?:\.\d+)?(?:e-?\d+)?)(?:\s+goal <= ([\d.]+): (met|not met))?\s*$")


def test_every_bench_script_has_its_figures_listed_here():
    assert sorted(path.name for path in BENCH.glob("*.py")) == sorted(FIGURES)


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(FIGURES))
def test_bench_script_smoke_mode_prints_its_figures(script):
    result = subprocess.run([sys.executable, str(BENCH / script), "--smoke"], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = {match[1]: match for match in map(FIGURE.match, result.stdout.splitlines()) if match}
    assert set(figures) == FIGURES[script]["keys"], result.stdout
    assert all(float(match[2]) > 0 for match in figures.values()), result.stdout
    assert {name: match[3] for name, match in figures.items() if match[3]} == FIGURES[script]["goals"], result.stdout
