"""Per-layer debugging against a PyTorch model (`debug ARTIFACT --reference package.module:factory`).

ONNX: the per-layer comparison (edge_sdk.debug.onnx) matches the QDQ artifact's activations with a float ONNX
model's by tensor name. The PyTorch model is exported to ONNX in a temporary folder exactly as `convert` exported
it (torch.onnx.export at the input shapes the artifact's manifest records), so the names are the ones the
quantizer saw; the folder is removed afterwards.

TFLite: the ranking comes from TensorFlow's QuantizationDebugger, which re-quantizes a Keras or SavedModel source
with the artifact's settings; it cannot run a PyTorch model, so that part is refused with a message saying what
works instead (the ONNX twin's ranking, and `bench --reference` for the whole-model figures).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from edge_sdk.debug.report import DebugReport
from edge_sdk.errors import UsageError
from edge_sdk.loaders.torch_weights import TorchModelSpec


def debug_against_pytorch(artifact: Path, model: TorchModelSpec, data: Path, *, kind: str, **options: Any) -> DebugReport:
    """Per-layer quantization error of an ONNX int8 `artifact` against the PyTorch model it was converted from."""
    if kind == "tflite":
        weights = f" --weights {model.weights}" if model.weights else ""
        raise UsageError(
            f"debug ranks a TFLite artifact's layers with TensorFlow's QuantizationDebugger, which re-quantizes a Keras or SavedModel "
            f"source; it cannot run the PyTorch model {model.factory}",
            fix=f"rank the layers of the ONNX int8 twin instead (edge-sdk convert {model.factory}{weights} --to onnx --quant int8 --calib DATA ...; "
                f"edge-sdk debug MODEL.onnx --reference {model.factory} ...), and bench {artifact.name} with --reference {model.factory} for its whole-model figures",
        )
    from edge_sdk.artifact import load_artifact
    from edge_sdk.debug.onnx import debug_onnx
    from edge_sdk.reference_eval import torch_feed

    manifest = load_artifact(artifact, verify=False).manifest  # debug_artifact verified it (or was told not to)
    feed = torch_feed(model, manifest, artifact.name)  # exit 4 where the manifest does not say how PyTorch takes the inputs
    folder = Path(tempfile.mkdtemp(prefix="edge-sdk-debug-torch-"))
    try:
        reference = _export(model, feed.input_shapes, folder)
        report = debug_onnx(artifact, reference, data, **options)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report.reference = model.factory  # the weights are named in the note below
    report.notes.append(f"reference: the PyTorch model {model}, exported to ONNX with torch.onnx.export at {dict(feed.input_shapes)} as convert exports it.")
    return report


def check_fallback_reference(reference: Any) -> None:
    """The float fallback (`debug --max-drop`) re-converts the model from the artifact's file source and re-benches
    it against `reference`: a PyTorch reference is refused there, before any work."""
    if isinstance(reference, TorchModelSpec):
        raise UsageError(f"the float fallback (--max-drop) re-converts the model from a file source; it does not take a PyTorch --reference ({reference.factory})",
                         fix="rank the layers against the PyTorch model without --max-drop, then convert with --exclude-nodes / --float-nodes-from")


def _export(model: TorchModelSpec, input_shapes: dict[str, list[int]], folder: Path) -> Path:
    from edge_sdk._lazy import require
    from edge_sdk.loaders.to_onnx import torch_source, torch_to_onnx

    onnx = require("onnx", "exporting the PyTorch reference to ONNX")
    proto = torch_to_onnx(torch_source(model), input_shapes)
    path = folder / "reference.onnx"
    onnx.save_model(proto, str(path), save_as_external_data=True, location="reference.onnx.data")
    return path
