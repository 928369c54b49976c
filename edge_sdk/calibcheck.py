"""Check calibration data against the evaluation data before quantizing: per input range, mean, std and layout
(flags 0..255 against 0..1 and NCHW against NHWC), constant and duplicate samples, outliers that widen the
calibrated range; optionally how much accuracy varies when calibrating on different random subsets."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.data import Dataset, PreprocessSpec

RANGE_RATIO = 20.0  # a ratio of ranges this large is a scale mistake, not a distribution shift


@dataclass
class CalibrationCheck:
    calibration: str
    evaluation: str
    inputs: dict[str, dict[str, Any]]
    findings: list[dict[str, str]] = field(default_factory=list)
    sufficiency: dict[str, Any] | None = None

    @property
    def kinds(self) -> set[str]:
        return {finding["kind"] for finding in self.findings}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "edge-sdk calibration check", "calibration": self.calibration, "evaluation": self.evaluation,
                "inputs": self.inputs, "findings": self.findings, "sufficiency": self.sufficiency}

    def to_text(self) -> str:
        lines = [f"calibration {self.calibration} against evaluation {self.evaluation}"]
        for name, figures in self.inputs.items():
            for side in ("calibration", "evaluation"):
                f = figures[side]
                lines.append(f"  {name} {side}: shape {f['shape']} range [{f['min']:.4g}, {f['max']:.4g}] mean {f['mean']:.4g} std {f['std']:.4g}")
        lines += [f"  {finding['kind']}: {finding['message']}" for finding in self.findings] or ["  no problems found"]
        if self.sufficiency:
            s = self.sufficiency
            lines.append(f"  sufficiency: top-1 over {len(s['top1'])} subsets of {s['calibration_samples']} samples: "
                         f"mean {100 * s['mean']:.2f} %, spread {100 * s['spread']:.2f} points")
        return "\n".join(lines)


def _summary(dataset: Dataset, indices: list[int] | None) -> dict[str, dict[str, Any]]:
    per_input: dict[str, dict[str, Any]] = {}
    for sample in dataset.samples(indices):
        for name, array in sample.inputs.items():
            entry = per_input.setdefault(name, {"shape": list(array.shape), "maxima": [], "minima": [], "means": [], "stds": [], "hashes": []})
            values = np.asarray(array, dtype=np.float64)
            entry["maxima"].append(values.max()); entry["minima"].append(values.min())
            entry["means"].append(values.mean()); entry["stds"].append(values.std())
            entry["hashes"].append(hashlib.sha1(np.ascontiguousarray(array).tobytes()).hexdigest())
    return per_input


def _figures(entry: dict[str, Any]) -> dict[str, Any]:
    return {"shape": entry["shape"], "samples": len(entry["means"]), "min": float(min(entry["minima"])), "max": float(max(entry["maxima"])),
            "mean": float(np.mean(entry["means"])), "std": float(np.sqrt(np.mean(np.square(entry["stds"]))))}


def check_calibration(
    calibration: str | Path, evaluation: str | Path, *, preprocess: dict[str, Any] | None = None, calibration_preprocess: dict[str, Any] | None = None,
    input_key: str | None = None, max_samples: int | None = 1000, seed: int = 0,
) -> CalibrationCheck:
    """Compare the calibration set with the evaluation set, sample by sample, after each one's preprocessing."""
    spec = PreprocessSpec.from_dict(preprocess)
    calib_set = Dataset(Path(calibration), spec.merged(calibration_preprocess or {}), input_key=input_key)
    eval_set = Dataset(Path(evaluation), spec, input_key=input_key)
    calib, evals = _summary(calib_set, calib_set.subset(max_samples, seed)), _summary(eval_set, eval_set.subset(max_samples, seed))
    check = CalibrationCheck(str(calibration), str(evaluation), {})
    for name in calib:
        other = evals.get(name) or next(iter(evals.values()))
        c, e = _figures(calib[name]), _figures(other)
        check.inputs[name] = {"calibration": c, "evaluation": e}
        _compare(check, name, calib[name], c, e)
    return check


def _compare(check: CalibrationCheck, name: str, entry: dict[str, Any], c: dict[str, Any], e: dict[str, Any]) -> None:
    def flag(kind: str, message: str) -> None:
        check.findings.append({"kind": kind, "input": name, "message": message})

    if c["shape"] != e["shape"]:
        if sorted(c["shape"]) == sorted(e["shape"]):
            flag("layout", f"calibration samples are {c['shape']} but evaluation samples {e['shape']}: the same axes in another order (NCHW against NHWC?); set --layout / --source-layout so both match")
        else:
            flag("shape", f"calibration samples are {c['shape']} but evaluation samples {e['shape']}")
    calib_span, eval_span = c["max"] - c["min"], e["max"] - e["min"]
    if eval_span > 0 and calib_span > 0:
        ratio = calib_span / eval_span
        if ratio >= RANGE_RATIO or ratio <= 1 / RANGE_RATIO:
            flag("scale", f"calibration range [{c['min']:.4g}, {c['max']:.4g}] is {ratio:.3g}x the evaluation range [{e['min']:.4g}, {e['max']:.4g}] "
                          "(0..255 against 0..1?); quantization ranges will not fit the data the model sees - apply the same --scale to both")
    elif calib_span == 0:
        flag("constant", "every calibration sample has the same value")
    stds = np.asarray([s for s in entry["stds"]])
    constant = int(np.sum(stds == 0))
    if constant:
        flag("constant", f"{constant} of {stds.size} calibration samples are constant (blank images?); they add nothing to calibration")
    duplicates = len(entry["hashes"]) - len(set(entry["hashes"]))
    if duplicates:
        flag("duplicates", f"{duplicates} of {len(entry['hashes'])} calibration samples duplicate another sample")
    maxima, minima = np.asarray(entry["maxima"]), np.asarray(entry["minima"])
    high_q1, high_q3 = np.percentile(maxima, [25, 75])
    low_q1, low_q3 = np.percentile(minima, [25, 75])
    high_fence = high_q3 + 3 * max(high_q3 - high_q1, 1e-12 + 0.05 * abs(high_q3))
    low_fence = low_q1 - 3 * max(low_q3 - low_q1, 1e-12 + 0.05 * abs(low_q1))
    outliers = int(np.sum(maxima > high_fence) + np.sum(minima < low_fence))
    if outliers:
        flag("outliers", f"{outliers} calibration sample(s) lie far outside the others' range (beyond [{low_fence:.4g}, {high_fence:.4g}]); "
                         "min/max calibration stretches the range to them and loses resolution for the rest - remove them or use --calib-method Percentile")


def estimate_sufficiency(
    model: str | Path | Any, calibration: str | Path, evaluation: str | Path, *, to: str = "tflite", preprocess: dict[str, Any] | None = None,
    calibration_samples: int = 100, subsets: int = 3, eval_samples: int = 500, workdir: Path, input_shapes: dict[str, list[int]] | None = None,
) -> dict[str, Any]:
    """Quantize `subsets` times, each on another seeded random subset of `calibration_samples` calibration samples,
    and report the spread of top-1 accuracy on the evaluation data: a wide spread means too few samples.

    `model` is a float model file or a PyTorch model (edge_sdk.loaders.torch_weights.TorchModelSpec: its factory, weights
    and trust flag, converted as `convert FACTORY --weights W` does). `input_shapes` (--input-shape) fix the model's
    dynamic dims: each artifact is converted at them and run at them."""
    from edge_sdk.api import bench, convert
    from edge_sdk.bench import BenchSettings
    from edge_sdk.errors import RuntimeFailure, UsageError
    from edge_sdk.formats import format_named
    from targets.runners.base import RunnerOptions

    top1 = []
    spec = format_named(to)
    suffix, mode = spec.suffix, spec.calibrated_modes[0] if spec.calibrated_modes else None
    if mode is None:
        raise UsageError(f"--to {to} is not calibrated by the SDK", fix="estimate the calibration sample count with --to tflite or --to onnx")
    for seed in range(subsets):
        pytorch = model if hasattr(model, "factory") else None
        artifact = convert(pytorch.factory if pytorch else model, Path(workdir) / f"calib_subset{seed}{suffix}", to=to, mode=mode, calibration=calibration,
                           calibration_samples=calibration_samples, seed=seed, preprocess=preprocess, overwrite=True, input_shapes=input_shapes or None,
                           weights=pytorch.weights if pytorch else None, trust_model=bool(pytorch and pytorch.trust_model))
        settings = BenchSettings(runs=1, warmup=0, max_samples=eval_samples, runner=RunnerOptions(input_shapes=dict(input_shapes or {})))
        result = bench([artifact.path], evaluation, settings=settings)[0]
        if result.status != "ok":  # a failed measurement is no accuracy figure: say why
            raise RuntimeFailure(f"the sufficiency estimate could not measure {artifact.path.name}: {result.error}", fix="check the evaluation data fits the model")
        top1.append((result.accuracy or {}).get("top1", float("nan")))
    values = np.asarray(top1)
    return {"calibration_samples": calibration_samples, "subsets": subsets, "eval_samples": eval_samples, "top1": top1,
            "mean": float(values.mean()), "spread": float(values.max() - values.min()), "std": float(values.std(ddof=1)) if values.size > 1 else 0.0}
