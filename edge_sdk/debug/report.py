"""One report format for per-layer quantization error, whatever the runtime: layers in execution order with
their SQNR (signal-to-quantization-noise ratio, dB; lower is worse), ranked worst first, and the first layer
where the error jumps."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edge_sdk.fileio import check_can_write, write_bytes_atomic, write_json_atomic

# A healthy int8 tensor sits around 30-45 dB; a drop of 6 dB (4x the noise power) from the layer before is a jump.
JUMP_DB = 6.0
HEALTHY_DB = 30.0


@dataclass
class LayerError:
    """Quantization error of one layer's output on real inputs.

    `name` is the node name `--exclude-nodes` takes (ONNX: the node that produces the activation, the tensor's own
    name for a graph input; TFLite: the op's output tensor name, which is how TFLite names an op); `tensor` is the
    activation's tensor name where it differs. `sqnr_db` is the layer's own error (its float result on the same quantized inputs against its quantized
    result); `cumulative_sqnr_db`, where the runtime gives it, compares with the float model's activation, so it
    includes the error of every layer before. `float_key` is what keeps this layer in float in a re-conversion
    (TFLite: the output tensor name for denylisted_nodes; ONNX: node names for nodes_to_exclude).
    """

    index: int
    name: str
    op: str
    sqnr_db: float
    float_key: list[str] = field(default_factory=list)
    cumulative_sqnr_db: float | None = None
    rmse_over_scale: float | None = None
    scale: float | None = None
    tensor: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {key: _finite(value) for key, value in asdict(self).items()}


@dataclass
class DebugReport:
    format: str  # "tflite" | "onnx"
    artifact: str
    reference: str
    data: str
    samples: int
    layers: list[LayerError]
    notes: list[str] = field(default_factory=list)

    @property
    def ranked(self) -> list[LayerError]:
        """Worst first (lowest SQNR); ties keep execution order."""
        return sorted(self.layers, key=lambda layer: (layer.sqnr_db, layer.index))

    @property
    def first_jump(self) -> LayerError | None:
        """The first layer, in execution order, whose SQNR falls `JUMP_DB` below the layer before it (the first
        layer is compared with a healthy int8 tensor, `HEALTHY_DB`)."""
        previous = HEALTHY_DB
        for layer in self.layers:
            if layer.sqnr_db < previous - JUMP_DB:
                return layer
            previous = min(HEALTHY_DB, layer.sqnr_db) if math.isfinite(layer.sqnr_db) else HEALTHY_DB
        return None

    def to_dict(self) -> dict[str, Any]:
        jump = self.first_jump
        return {
            "kind": "edge-sdk quantization debug",
            "format": self.format, "artifact": self.artifact, "reference": self.reference, "data": self.data, "samples": self.samples,
            "first_jump": jump.to_dict() if jump else None,
            "ranked": [layer.name for layer in self.ranked],
            "layers": [layer.to_dict() for layer in self.layers],
            "notes": self.notes,
        }

    def to_markdown(self, top: int = 10) -> str:
        jump = self.first_jump
        lines = [
            f"## Quantization debug: {Path(self.artifact).name} ({self.format}) against {Path(self.reference).name}",
            "",
            f"{self.samples} samples of {self.data}. SQNR in dB, lower is worse; the layer's own error unless noted.",
            "",
            f"First layer where the error jumps: **{jump.name}** ({jump.op}, {jump.sqnr_db:.1f} dB)" if jump else "No jump: the error grows gradually.",
            "",
            "| rank | node | tensor | op | SQNR dB | cumulative SQNR dB | RMSE/scale |",
            "| ---: | --- | --- | --- | ---: | ---: | ---: |",
        ]
        for rank, layer in enumerate(self.ranked[:top], start=1):
            lines.append(f"| {rank} | {layer.name} | {layer.tensor or '(same)'} | {layer.op} | {layer.sqnr_db:.1f} | {_fmt(layer.cumulative_sqnr_db)} | {_fmt(layer.rmse_over_scale, '.2f')} |")
        lines.extend(f"\n_{note}_" for note in self.notes)
        return "\n".join(lines) + "\n"

    def save(self, path: Path, overwrite: bool = False) -> None:
        check_can_write(Path(path), overwrite, "debug report")
        if Path(path).suffix == ".md":
            write_bytes_atomic(Path(path), self.to_markdown(top=len(self.layers)).encode("utf-8"))
        else:
            write_json_atomic(Path(path), self.to_dict())


def sqnr_from_powers(signal_power: float, noise_power: float) -> float:
    if noise_power <= 0:
        return math.inf
    if signal_power <= 0:
        return -math.inf
    return 10.0 * math.log10(signal_power / noise_power)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else (1e9 if value > 0 else -1e9)
    return value


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def dumps(report: DebugReport) -> str:
    return json.dumps(report.to_dict(), indent=2)
