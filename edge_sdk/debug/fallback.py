"""Automatic float fallback: keep the most sensitive layers (ranked by the debugger) in float, re-quantize,
re-measure, and stop at the smallest set whose accuracy-drop upper bound meets the budget.

The search stops when it would keep more than `max_float_share` of the quantizable layers in float: past that
point the artifact is a float model with int8 islands (a Quantize/Dequantize pair at every border), and the
honest answer is "int8 is not viable here". The same source is then quantized with int16 activations (TFLite
int16x8, same calibration) and measured the same way, when the format offers such a mode.

Every try is built in a staging folder beside the output (edge_sdk.staging); only the artifact that meets the
budget (and its manifest) is moved into the output folder, the rest is removed, also on failure or Ctrl-C.
The chosen settings are saved as JSON (`float_nodes`), which `edge-sdk convert --float-nodes-from` reads to
reproduce the artifact.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge_sdk.artifact import load_artifact, manifest_path_for
from edge_sdk.debug.report import DebugReport
from edge_sdk.errors import ConversionError, UsageError
from edge_sdk.fileio import _write_error, check_can_write, write_json_atomic
from edge_sdk.formats import FORMATS, INT8, INT16X8

# A quarter of the layers: beyond it the float part dominates size and latency (and each float island costs a
# Quantize/Dequantize pair), while int16 activations keep every op in integer at ~the int8 weight size. The issue's
# case (all 33 layers in float, reported as success) is what this bound stops.
DEFAULT_MAX_FLOAT_SHARE = 0.25


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
    mode: str = INT8
    error: str | None = None  # the try could not be converted, or failed conversion validation (the message)


@dataclass
class FallbackResult:
    artifact: str
    max_drop_points: float
    baseline: FallbackStep
    steps: list[FallbackStep] = field(default_factory=list)
    chosen: FallbackStep | None = None
    max_float_share: float = DEFAULT_MAX_FLOAT_SHARE
    quantizable_layers: int = 0
    stopped: str | None = None  # why the int8 search ended without a result
    int16x8: FallbackStep | None = None  # the int16-activation try, once int8 is not viable
    int16x8_unavailable: str | None = None  # why no int16-activation try was made

    @property
    def viable(self) -> bool:
        """An int8 artifact (possibly with layers in float) meets the budget."""
        return self.chosen is not None

    @property
    def within_budget(self) -> bool:
        """Some artifact meets the budget: int8 (with layers in float) or, failing that, int16x8."""
        return self.result is not None

    @property
    def result(self) -> FallbackStep | None:
        """The artifact to use: the chosen int8 step, else a passing int16x8 try, else None."""
        if self.chosen is not None:
            return self.chosen
        return self.int16x8 if self.int16x8 is not None and self.int16x8.passed else None

    def summary(self) -> str:
        if self.chosen is not None:
            return _viable_summary(self.baseline, self.chosen, self.max_drop_points)
        lowest = min([s.drop_upper_points for s in [self.baseline, *self.steps] if s.drop_upper_points is not None] or [math.inf])
        text = (f"int8 is not viable here: {self.stopped}; lowest int8 drop upper bound {lowest:.2f} points "
                f"(budget --max-drop {self.max_drop_points:g}).")
        return f"{text} {self._int16_summary()}"

    def _int16_summary(self) -> str:
        if self.int16x8 is None:
            return f"int16x8: {self.int16x8_unavailable or 'not tried'}."
        step = self.int16x8
        if step.error:
            return f"int16x8 could not be converted: {step.error}"
        figures = (f"int16x8: drop {_points(step.drop_points)} points (upper bound {_points(step.drop_upper_points)}), "
                   f"{step.size_bytes} bytes ({step.size_bytes - self.baseline.size_bytes:+d} vs int8), p50 {_ms(step.p50_ms)}")
        if step.passed:
            return f"{figures}: within the budget; artifact {step.artifact}"
        return f"{figures}: not within the budget either (no artifact kept)"

    def to_dict(self) -> dict[str, Any]:
        result = self.result
        return {
            "kind": "edge-sdk float fallback", "artifact": self.artifact, "max_drop_points": self.max_drop_points,
            "viable": self.viable, "within_budget": self.within_budget, "summary": self.summary(),
            "max_float_share": self.max_float_share, "quantizable_layers": self.quantizable_layers, "stopped": self.stopped,
            "float_nodes": self.chosen.float_nodes if self.chosen else None,
            "result_artifact": result.artifact if result else None, "result_mode": result.mode if result else None,
            "baseline": asdict(self.baseline), "steps": [asdict(step) for step in self.steps],
            "chosen": asdict(self.chosen) if self.chosen else None,
            INT16X8: asdict(self.int16x8) if self.int16x8 else {"tried": False, "reason": self.int16x8_unavailable},
        }

    def save(self, path: Path, overwrite: bool = False) -> None:
        check_can_write(Path(path), overwrite, "fallback settings")
        write_json_atomic(Path(path), self.to_dict())


def _viable_summary(base: FallbackStep, chosen: FallbackStep, budget: float) -> str:
    size_cost = chosen.size_bytes - base.size_bytes
    latency_cost = (chosen.p50_ms - base.p50_ms) if chosen.p50_ms is not None and base.p50_ms is not None else None
    return (f"{len(chosen.float_layers)} layer(s) kept in float bring the drop from {_points(base.drop_points)} to {_points(chosen.drop_points)} points "
            f"(upper bound {_points(chosen.drop_upper_points)} <= {budget:g}); cost: {size_cost:+d} bytes, "
            + (f"{latency_cost:+.4f} ms p50" if latency_cost is not None else "latency not measured") + f"; artifact {chosen.artifact}")


def _points(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ms(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.4f} ms"


def float_nodes_from(path: Path) -> list[str]:
    """The float layers saved by a fallback run (`edge-sdk convert --float-nodes-from FILE`)."""
    import json

    try:
        payload = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise UsageError(f"--float-nodes-from {path} is not a readable JSON file: {error}") from error
    nodes = payload.get("float_nodes") if isinstance(payload, dict) else None
    if not isinstance(nodes, list) or not nodes:
        mode = payload.get("result_mode") if isinstance(payload, dict) else None
        fix = ("int8 was not viable and the fallback chose int16x8: convert with --quant int16x8 instead" if mode == INT16X8
               else "give a file written by `edge-sdk debug --max-drop ... --save-fallback`")
        raise UsageError(f"{path} holds no float_nodes (the fallback did not reach the budget in int8)", fix=fix)
    return [str(node) for node in nodes]


def check_max_float_share(share: float) -> None:
    """Refuse a share outside (0, 1] (exit 2), before any work."""
    if not 0.0 < share <= 1.0:
        raise UsageError(f"--max-float-share {share:g} must be above 0 and at most 1", fix="e.g. --max-float-share 0.25 (a quarter of the layers)")


def run_fallback(
    report: DebugReport, data: Path, *, max_drop_points: float, output_dir: Path, max_samples: int | None = 1000,
    max_layers: int | None = None, preprocess: dict[str, Any] | None = None, input_key: str | None = None, runs: int = 50,
    max_float_share: float = DEFAULT_MAX_FLOAT_SHARE, overwrite: bool = False,
) -> FallbackResult:
    """Grow the float set along the debugger's ranking (worst first) until the gate passes, the float share would
    exceed `max_float_share` of the quantizable layers, or layers run out; then, int8 not being viable, try
    int16x8. Only the artifact that meets the budget is written to `output_dir` (existing files only with
    `overwrite`)."""
    from edge_sdk.staging import staging_folder

    check_max_float_share(max_float_share)
    artifact = Path(report.artifact)
    manifest = load_artifact(artifact, verify=False).manifest  # debug_artifact verified it (or was told not to)
    if manifest is None:
        raise UsageError(f"the fallback re-converts {artifact} from its source, but it has no manifest", fix="convert the model with edge-sdk first")
    search = _Search(report, manifest, data, max_drop_points, max_samples, preprocess, input_key, runs)
    outcome = FallbackResult(str(artifact), max_drop_points, search.measure(artifact, [], [], manifest.mode),
                             max_float_share=max_float_share, quantizable_layers=len(report.layers))
    if outcome.baseline.passed:
        outcome.chosen = outcome.baseline
        return outcome
    # The first layer where the error jumps goes first (later layers inherit its error), then worst first;
    # layers without error (+inf dB) are never candidates.
    jump = report.first_jump
    ranked = ([jump] if jump else []) + [layer for layer in report.ranked if layer is not jump]
    candidates = [layer for layer in ranked if layer.sqnr_db < math.inf and layer.float_key]
    # At least one layer is always tried: on a tiny model a quarter is less than one layer.
    share_limit = max(1, math.floor(max_float_share * len(report.layers)))
    limit = min(len(candidates), share_limit, max_layers or len(candidates))
    _check_outputs_free(artifact, Path(output_dir), limit, overwrite)
    with staging_folder(Path(output_dir) / f"{artifact.stem}_fallback") as staging:
        for count in range(1, limit + 1):
            chosen = candidates[:count]
            nodes = sorted({key for layer in chosen for key in layer.float_key})
            step = search.try_mode(staging / f"try{count}" / f"{artifact.stem}_float{count}{artifact.suffix}", manifest.mode, nodes, [layer.name for layer in chosen])
            outcome.steps.append(step)
            if step.passed:
                outcome.chosen = step
                break
        if outcome.chosen is None:
            outcome.stopped = _stop_reason(limit, share_limit, len(candidates), len(report.layers), max_float_share, max_layers)
            spec = FORMATS[manifest.format]
            if INT16X8 in spec.modes:
                outcome.int16x8 = search.try_mode(staging / INT16X8 / f"{artifact.stem}_{INT16X8}{artifact.suffix}", INT16X8, [], [])
            else:
                outcome.int16x8_unavailable = f"the {spec.name} format has no int16-activation mode (its modes: {', '.join(spec.modes)})"
        result = outcome.result
        if result is not None and result is not outcome.baseline:
            result.artifact = str(_keep(Path(result.artifact), Path(output_dir), overwrite))
    return outcome


def _stop_reason(limit: int, share_limit: int, candidates: int, layers: int, share: float, max_layers: int | None) -> str:
    if limit == share_limit and limit < candidates:
        return (f"{limit} of {layers} quantizable layers in float did not meet the budget, and more would exceed "
                f"--max-float-share {share:g}")
    if max_layers is not None and limit == max_layers and limit < candidates:
        return f"{limit} layer(s) in float (the most allowed) did not meet the budget"
    return f"keeping every candidate layer ({candidates} of {layers}) in float did not meet the budget"


class _Search:
    """Convert the source again with the artifact's own settings (and a float set or another mode), and measure."""

    def __init__(self, report: DebugReport, manifest: Any, data: Path, budget: float, max_samples: int | None,
                 preprocess: dict[str, Any] | None, input_key: str | None, runs: int) -> None:
        from edge_sdk.bench import BenchSettings

        self.report, self.manifest, self.data, self.preprocess, self.input_key = report, manifest, data, preprocess, input_key
        self.settings = BenchSettings(runs=runs, warmup=min(10, runs), max_samples=max_samples, max_drop_points=budget)

    def measure(self, path: Path, layers: list[str], nodes: list[str], mode: str) -> FallbackStep:
        from edge_sdk.api import bench

        result = bench([path], self.data, reference=self.report.reference, settings=self.settings, preprocess=self.preprocess, input_key=self.input_key)[0]
        if result.status != "ok":
            raise UsageError(f"the fallback could not measure {path}: {result.error}")
        gate = (result.reference or {}).get("gate") or {}
        return FallbackStep(layers, nodes, str(path), gate.get("drop_points"), gate.get("drop_upper_points"), bool(gate.get("passed")),
                            int(result.artifact["size_bytes"]), (result.timing or {}).get("latency", {}).get("p50_ms"), mode)

    def try_mode(self, target: Path, mode: str, nodes: list[str], layers: list[str]) -> FallbackStep:
        """Convert into `target` (inside the staging folder) and measure it; a try that fails conversion or its
        validation is recorded, not fatal: the search goes on. A try that fails conversion validation is kept in
        the staging folder (`keep_failed`) and measured, so its figures show, but it is never chosen."""
        from edge_sdk.api import convert

        manifest, calibration = self.manifest, self.manifest.calibration or {}
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            convert(
                manifest.source["path"], target, to=manifest.format, mode=mode, calibration=calibration.get("path"),
                calibration_samples=calibration.get("samples"), seed=calibration.get("seed", 0), preprocess=manifest.preprocess,
                # The shapes the user gave convert (not the resolved ones): a fixed shape changes how the source is traced
                # (converters/input_shapes.py), and the debugger's node names are those of the artifact's own tracing.
                input_shapes=(manifest.options or {}).get("input_shapes") or None, float_nodes=nodes or None, overwrite=True, keep_failed=True,
            )
        except (ConversionError, UsageError) as error:
            # A float set that breaks the conversion is one failed try; another mode this source cannot take (a
            # UsageError) is reported as such. A bad setting of the artifact's own mode stays fatal.
            if isinstance(error, UsageError) and mode == manifest.mode:
                raise
            if getattr(error, "kept_artifact", None) is None:
                return FallbackStep(layers, nodes, str(target), None, None, False, 0, None, mode, error=str(error))
            step = self.measure(target, layers, nodes, mode)
            step.passed, step.error = False, f"failed conversion validation: {error.message}"
            return step
        return self.measure(target, layers, nodes, mode)


def _check_outputs_free(artifact: Path, output_dir: Path, limit: int, overwrite: bool) -> None:
    """Refuse (exit 8) before the search, not after it, when a file the search may keep already exists."""
    names = [f"{artifact.stem}_float{count}{artifact.suffix}" for count in range(1, limit + 1)] + [f"{artifact.stem}_{INT16X8}{artifact.suffix}"]
    for name in names:
        check_can_write(output_dir / name, overwrite, "fallback artifact")
        check_can_write(manifest_path_for(output_dir / name), overwrite, "fallback manifest")


def _keep(staged: Path, output_dir: Path, overwrite: bool) -> Path:
    """Move the chosen try (its companions, artifact and manifest: everything in its own try folder) into
    `output_dir`, in the order a conversion publishes them; returns the artifact's new path."""
    output_dir.mkdir(parents=True, exist_ok=True)
    manifest = manifest_path_for(staged)
    files = [path for path in staged.parent.iterdir() if path not in (staged, manifest)] + [staged, manifest]
    for path in files:
        check_can_write(output_dir / path.name, overwrite, "fallback artifact")
    for path in files:
        try:
            os.replace(path, output_dir / path.name)
        except OSError as error:
            raise _write_error(output_dir / path.name, error) from error
    return output_dir / staged.name
