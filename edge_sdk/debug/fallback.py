"""Automatic float fallback: keep the most sensitive layers (ranked by the debugger) in float, re-quantize,
re-measure, and stop at the smallest set whose accuracy-drop upper bound meets the budget.

The chosen settings are saved as JSON (`float_nodes`), which `edge-sdk convert --float-nodes-from` reads to
reproduce the artifact.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge_sdk.artifact import load_artifact
from edge_sdk.debug.report import DebugReport
from edge_sdk.errors import UsageError
from edge_sdk.fileio import check_can_write, write_json_atomic


@dataclass
class FallbackStep:
    float_layers: list[str]
    float_nodes: list[str]
    artifact: str
    drop_points: float | None
    drop_upper_points: float | None
    passed: bool
    size_bytes: int
    p50_ms: float | None


@dataclass
class FallbackResult:
    artifact: str
    max_drop_points: float
    baseline: FallbackStep
    steps: list[FallbackStep] = field(default_factory=list)
    chosen: FallbackStep | None = None

    @property
    def within_budget(self) -> bool:
        return self.chosen is not None

    def summary(self) -> str:
        base = self.baseline
        if self.chosen is None:
            tried = len(self.steps)
            return (f"fallback cannot bring {Path(self.artifact).name} within --max-drop {self.max_drop_points:g}: "
                    f"{tried} float set(s) tried, lowest drop upper bound {min([s.drop_upper_points or math.inf for s in self.steps] + [self.baseline.drop_upper_points or math.inf]):.2f} points")
        chosen = self.chosen
        size_cost = chosen.size_bytes - base.size_bytes
        latency_cost = (chosen.p50_ms - base.p50_ms) if chosen.p50_ms is not None and base.p50_ms is not None else None
        return (f"{len(chosen.float_layers)} layer(s) kept in float bring the drop from {base.drop_points:.2f} to {chosen.drop_points:.2f} points "
                f"(upper bound {chosen.drop_upper_points:.2f} <= {self.max_drop_points:g}); cost: {size_cost:+d} bytes, "
                + (f"{latency_cost:+.4f} ms p50" if latency_cost is not None else "latency not measured") + f"; artifact {chosen.artifact}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "edge-sdk float fallback", "artifact": self.artifact, "max_drop_points": self.max_drop_points,
            "within_budget": self.within_budget, "summary": self.summary(),
            "float_nodes": self.chosen.float_nodes if self.chosen else None,
            "baseline": asdict(self.baseline), "steps": [asdict(step) for step in self.steps],
            "chosen": asdict(self.chosen) if self.chosen else None,
        }

    def save(self, path: Path, overwrite: bool = False) -> None:
        check_can_write(Path(path), overwrite, "fallback settings")
        write_json_atomic(Path(path), self.to_dict())


def float_nodes_from(path: Path) -> list[str]:
    """The float layers saved by a fallback run (`edge-sdk convert --float-nodes-from FILE`)."""
    import json

    try:
        payload = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise UsageError(f"--float-nodes-from {path} is not a readable JSON file: {error}") from error
    nodes = payload.get("float_nodes") if isinstance(payload, dict) else None
    if not isinstance(nodes, list) or not nodes:
        raise UsageError(f"{path} holds no float_nodes (the fallback did not reach the budget?)", fix="give a file written by `edge-sdk debug --max-drop ... --save-fallback`")
    return [str(node) for node in nodes]


def run_fallback(
    report: DebugReport, data: Path, *, max_drop_points: float, output_dir: Path, max_samples: int | None = 1000,
    max_layers: int | None = None, preprocess: dict[str, Any] | None = None, input_key: str | None = None, runs: int = 50,
) -> FallbackResult:
    """Grow the float set along the debugger's ranking (worst first) until the gate passes or layers run out."""
    from edge_sdk.api import bench, convert
    from edge_sdk.bench import BenchSettings

    artifact = Path(report.artifact)
    manifest = load_artifact(artifact, verify=False).manifest  # debug_artifact verified it (or was told not to)
    if manifest is None:
        raise UsageError(f"the fallback re-converts {artifact} from its source, but it has no manifest", fix="convert the model with edge-sdk first")
    calibration = manifest.calibration or {}
    settings = BenchSettings(runs=runs, warmup=10, max_samples=max_samples, max_drop_points=max_drop_points)

    def measure(path: Path, layers: list[str], nodes: list[str]) -> FallbackStep:
        result = bench([path], data, reference=report.reference, settings=settings, preprocess=preprocess, input_key=input_key)[0]
        if result.status != "ok":
            raise UsageError(f"the fallback could not measure {path}: {result.error}")
        gate = (result.reference or {}).get("gate") or {}
        return FallbackStep(layers, nodes, str(path), gate.get("drop_points"), gate.get("drop_upper_points"), bool(gate.get("passed")),
                            int(result.artifact["size_bytes"]), (result.timing or {}).get("latency", {}).get("p50_ms"))

    outcome = FallbackResult(str(artifact), max_drop_points, measure(artifact, [], []))
    if outcome.baseline.passed:
        outcome.chosen = outcome.baseline
        return outcome
    # The first layer where the error jumps goes first (later layers inherit its error), then worst first;
    # layers without error (+inf dB) are never candidates.
    jump = report.first_jump
    ranked = ([jump] if jump else []) + [layer for layer in report.ranked if layer is not jump]
    candidates = [layer for layer in ranked if layer.sqnr_db < math.inf and layer.float_key]
    output_dir.mkdir(parents=True, exist_ok=True)
    for count in range(1, min(len(candidates), max_layers or len(candidates)) + 1):
        chosen = candidates[:count]
        nodes = sorted({key for layer in chosen for key in layer.float_key})
        target = output_dir / f"{artifact.stem}_float{count}{artifact.suffix}"
        convert(
            manifest.source["path"], target, to=manifest.format, mode=manifest.mode, calibration=calibration.get("path"),
            calibration_samples=calibration.get("samples"), seed=calibration.get("seed", 0), preprocess=manifest.preprocess,
            # The shapes the user gave convert (not the resolved ones): a fixed shape changes how the source is traced
            # (converters/input_shapes.py), and the debugger's node names are those of the artifact's own tracing.
            input_shapes=(manifest.options or {}).get("input_shapes") or None, float_nodes=nodes, overwrite=True,
        )
        step = measure(target, [layer.name for layer in chosen], nodes)
        outcome.steps.append(step)
        if step.passed:
            outcome.chosen = step
            break
    return outcome
