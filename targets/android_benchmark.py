"""Android: TFLite's `benchmark_model` binary over adb, and its text output parsed into the results schema.

benchmark_model feeds random inputs, so an Android result carries timing and memory only: no accuracy or
fidelity (README: "adb: not run on a device here").
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from edge_sdk.errors import RuntimeFailure
from targets.profiles import TargetProfile

_NUMBER = r"([0-9.]+(?:e[+-]?[0-9]+)?)"
_SUMMARY = re.compile(
    rf"Inference timings in us: Init: {_NUMBER}, First inference: {_NUMBER}, Warmup \(avg\): {_NUMBER}, Inference \(avg\): {_NUMBER}"
)
_STATS = re.compile(r"count=(\d+)((?: [a-z0-9]+=[0-9.e+-]+)+)")
_MEMORY = re.compile(rf"(?:Memory footprint delta from the start of the tool|Peak memory footprint) \(MB\): init={_NUMBER} overall={_NUMBER}")


def benchmark_model_argv(binary: str, graph: str, profile: TargetProfile, *, threads: int | None = None, xnnpack: bool | None = None,
                         runs: int = 50, warmup: int = 1) -> list[str]:
    """The benchmark_model command line for `graph` on the device, with the profile's threads and delegate."""
    use_xnnpack = profile.xnnpack if xnnpack is None else xnnpack
    num_threads = threads or profile.threads or 1
    return [
        binary, f"--graph={graph}", f"--num_threads={num_threads}", f"--use_xnnpack={'true' if use_xnnpack else 'false'}",
        f"--num_runs={runs}", f"--warmup_runs={warmup}",
    ]


def parse_benchmark_output(text: str) -> dict[str, Any]:
    """The timing and memory of one benchmark_model run, in the units of the results schema (ms, bytes)."""
    summary = _SUMMARY.search(text)
    if summary is None:
        tail = "\n".join(text.strip().splitlines()[-5:])
        raise RuntimeFailure(f"benchmark_model printed no 'Inference timings' line; its output ended with:\n{tail}",
                             fix="run the same command by hand with adb shell to see why it stopped")
    init_us, first_us, warmup_us, inference_us = (float(value) for value in summary.groups())
    stats_lines = [dict(pair.split("=") for pair in match.group(2).split()) | {"count": match.group(1)} for match in _STATS.finditer(text)]
    steady = stats_lines[-1] if stats_lines else {}
    latency: dict[str, Any] = {"mean_ms": inference_us / 1000.0, "count": int(steady.get("count", 0))}
    for key, name in (("min", "min_ms"), ("max", "max_ms"), ("std", "std_ms"), ("median", "p50_ms"), ("p95", "p95_ms"), ("p5", "p5_ms")):
        if key in steady:
            latency[name] = float(steady[key]) / 1000.0
    result: dict[str, Any] = {
        "timing": {"load_ms": init_us / 1000.0, "first_inference_ms": first_us / 1000.0, "warmup_mean_ms": warmup_us / 1000.0, "latency": latency},
        "memory": None,
        "xnnpack_applied": "XNNPACK delegate" in text and "Use xnnpack: [0]" not in text,
    }
    memory = _MEMORY.search(text)
    if memory:
        result["memory"] = {"init_mb": float(memory.group(1)), "overall_mb": float(memory.group(2)),
                            "peak_rss_bytes": int(float(memory.group(2)) * 1024 * 1024)}
    return result


def split_runs(text: str) -> list[str]:
    """Split a log with several runs (each begins with STARTING!) into one text per run."""
    parts = re.split(r"(?m)^(?:INFO: )?STARTING!\s*$", text)
    return [part for part in parts[1:] if part.strip()]


def bench_with_benchmark_model(transport: Any, artifact: Path, binary: Path | str, profile: TargetProfile, *, threads: int | None = None,
                               xnnpack: bool | None = None, runs: int = 50, warmup: int = 1, timeout_s: float | None = None) -> dict[str, Any]:
    """Push the artifact (and a local benchmark_model binary) through an open adb transport and run it."""
    remote_graph = transport.push(Path(artifact), "model.tflite")
    device_binary = str(binary)
    if Path(binary).is_file():
        device_binary = transport.push(Path(binary), "benchmark_model")
        transport.run(["chmod", "755", device_binary])
    output = transport.run(benchmark_model_argv(device_binary, remote_graph, profile, threads=threads, xnnpack=xnnpack, runs=runs, warmup=warmup), timeout_s)
    if output.returncode != 0:
        raise RuntimeFailure(f"benchmark_model exited with status {output.returncode} on {transport.host}: {(output.stderr or output.stdout).strip()[-500:]}")
    return parse_benchmark_output(output.stdout + output.stderr)
