"""The float reference of a bench: its outputs on the bench's samples, computed once per preprocessing and sample
subset, in a worker process like the artifacts (edge_sdk.isolation), so that a reference that crashes the
interpreter becomes an error naming it while the artifacts' results are kept.

A reference is a model file (Keras, SavedModel, ONNX, TFLite) or a PyTorch model (`package.module:factory` with
optional weights, edge_sdk.loaders.torch_weights.TorchModelSpec). A PyTorch model declares no input shape or
layout: both come from the artifact's manifest (`torch_feed`), so that it gets the artifact's samples as it takes
them (NCHW, where an artifact converted with --nhwc-input takes NHWC).
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_sdk.data import Dataset, PreprocessSpec
from edge_sdk.errors import DataError, EdgeSdkError, UsageError
from edge_sdk.fileio import sha256_of
from edge_sdk.loaders.torch_weights import TorchModelSpec
from edge_sdk.model_safety import check_model_file, model_code_trusted
from edge_sdk.progress import Progress

# Float reference outputs of this process, by content: (model sha256 - for a PyTorch model its factory, weights
# sha256, trust flag and feed -, data sha256, preprocessing, samples, runner settings) -> (outputs, the runtime's
# description). A bench of many artifacts, or a pipeline benching every artifact of a model (and every student against the teacher), runs each float model over the data once.
# (edge_sdk.bench imports this module: its BenchSettings and Evaluation are `Any` here, so no import circle.)
REFERENCE_OUTPUTS: dict[str, tuple[Any, dict[str, Any]]] = {}
REFERENCE_OUTPUTS_KEPT = 8  # the oldest entries go first: outputs of large evaluation sets take memory
_content_hashes: dict[tuple[str, int, int], str] = {}
# Where the worker finds the evaluation (by name: the bench imports this module, not the other way round).
EVALUATE_REFERENCE = "edge_sdk.bench:evaluate_reference"


def content_hash(path: Path) -> str:
    """sha256 of a file or folder; a file's is remembered while its size and modification time stay the same (a
    folder's modification time does not follow its files' contents, so a folder is hashed every time)."""
    if Path(path).is_dir():
        return sha256_of(Path(path))
    stat = Path(path).stat()
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _content_hashes:
        _content_hashes[key] = sha256_of(Path(path))
    return _content_hashes[key]


@dataclass(frozen=True)
class TorchReference:
    """A PyTorch model as a bench's float reference, and how the artifact's samples reach it."""

    model: TorchModelSpec
    input_shapes: dict[str, list[int]]  # by the artifact's input names, as PyTorch takes them (NCHW)
    nhwc_input: bool = False  # the artifact takes NHWC (convert --nhwc-input): samples are moved to NCHW for PyTorch


@dataclass
class MeasureRequest:
    """What a worker needs to evaluate one model on the samples the host chose: an artifact (edge_sdk.bench.measure,
    which also times it) or the float reference (edge_sdk.bench.evaluate_reference)."""

    model: Path | TorchReference
    data_path: Path
    spec: PreprocessSpec
    input_key: str | None
    label_key: str | None
    indices: list[int] | None
    settings: Any  # edge_sdk.bench.BenchSettings
    trust_model: bool = False  # references only: the host's --trust-model, for the worker process


def reference_source(reference: str | Path | TorchModelSpec | None, weights: str | Path | None = None, trust_model: bool = False) -> Path | TorchModelSpec | None:
    """What `--reference` (and `--reference-weights`) name: a model file, or a PyTorch `package.module:factory`."""
    from edge_sdk.loaders.to_onnx import is_factory_spec

    if reference is None or isinstance(reference, TorchModelSpec):
        if weights is not None:
            raise UsageError("--reference-weights needs a PyTorch --reference package.module:factory", fix="e.g. --reference mypkg.nets:make_cnn --reference-weights model.safetensors")
        return reference
    if is_factory_spec(str(reference)):
        return TorchModelSpec(str(reference), Path(weights) if weights is not None else None, trust_model or model_code_trusted())
    if weights is not None:
        raise UsageError(f"--reference-weights applies to a PyTorch package.module:factory reference, not the model file {reference}",
                         fix="give the factory that builds the architecture as --reference, e.g. mypkg.nets:make_cnn")
    return Path(reference)


def torch_feed(model: TorchModelSpec, manifest: Any, artifact: str) -> TorchReference:
    """The input shapes and layout of a PyTorch reference, from the manifest of the artifact it is compared with:
    litert-torch's TFLite records the PyTorch shapes and --nhwc-input; torch.onnx.export's ONNX takes PyTorch's own.
    Anything else is a DataError (exit 4): the layout the PyTorch model takes cannot be worked out."""
    convert_it = f"convert the PyTorch model itself and bench that artifact: edge-sdk convert {model.factory}{' --weights W' if model.weights else ''} --to tflite|onnx ..."
    if manifest is None:
        raise DataError(f"reference {model.factory}: {artifact} has no manifest, so the input shape and layout (NCHW, or NHWC with --nhwc-input) "
                        "the PyTorch reference takes cannot be worked out", fix=convert_it)
    details, source = manifest.details or {}, manifest.source or {}
    if details.get("torch_input_shapes"):
        shapes, nhwc = list(details["torch_input_shapes"].values()), bool(details.get("nhwc_input"))
    elif source.get("kind") == "torch" and manifest.input_shapes:
        shapes, nhwc = list(manifest.input_shapes.values()), False
    else:
        raise DataError(f"reference {model.factory}: {artifact} was converted from {source.get('path')} ({source.get('kind')}), not from PyTorch; "
                        "its manifest does not record the input layout a PyTorch model takes", fix=convert_it)
    names = [tensor.name for tensor in manifest.inputs]
    if len(names) != len(shapes):
        raise DataError(f"reference {model.factory}: {artifact} has {len(names)} input(s), its manifest records {len(shapes)} PyTorch input shape(s)", fix=convert_it)
    return TorchReference(model, {name: [int(d) for d in shape] for name, shape in zip(names, shapes)}, nhwc)


def check_torch_model(model: TorchModelSpec, phase: Any = None, progress: Any = None) -> None:
    """Build the PyTorch model and load its weights (in a worker process): a factory that does not import, weights
    that do not fit or a pickle without --trust-model fail here, before any artifact runs."""
    from edge_sdk.loaders.torch_weights import factory_model

    factory_model(model)


class ReferenceCache:
    """Float reference outputs of one model, computed once per data, preprocessing spec and sample subset, in a worker
    process like the artifacts (a crash there is an error naming the reference, not the end of the bench), and reused
    across calls of `bench` in the same process (REFERENCE_OUTPUTS; results record `reference.cache`). A failure is
    remembered, not retried per artifact."""

    def __init__(self, source: Path | TorchModelSpec, settings: Any, progress: Progress) -> None:
        self.source = source
        self.settings = settings
        self.progress = progress
        self._failures: dict[str, EdgeSdkError] = {}
        self.description: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        """How messages name the reference: the file's name, or the PyTorch factory."""
        return self.source.factory if isinstance(self.source, TorchModelSpec) else Path(self.source).name

    @property
    def source_text(self) -> str:
        """What results record as the reference's `path`: the file, or the PyTorch factory (`WEIGHTS (FACTORY)` with
        weights, so that reports naming a reference by its last path component show both)."""
        if isinstance(self.source, TorchModelSpec) and self.source.weights is not None:
            return f"{self.source.weights} ({self.source.factory})"
        return str(self.source)

    def check(self, artifacts: list[Path] | None = None) -> None:
        """Fail before any work on a reference that is missing, unreadable, carries code without --trust-model, or (a
        PyTorch model) does not build or take its weights, or is compared with an artifact whose manifest does not
        say how to feed it (`torch_feed`)."""
        if isinstance(self.source, TorchModelSpec):
            from edge_sdk.artifact import load_artifact

            for path in artifacts or []:
                try:
                    manifest = load_artifact(Path(path), verify=False).manifest
                except EdgeSdkError:
                    continue  # the artifact's own error is reported with its result
                torch_feed(self.source, manifest, Path(path).name)
            self._call("edge_sdk.reference_eval:check_torch_model", self.source, f"checking the PyTorch reference {self.name}")
            return
        from edge_sdk.models import detect_model_kind

        check_model_file(Path(self.source), detect_model_kind(Path(self.source)))

    def key(self, dataset: Dataset, indices: list[int] | None, model: Path | TorchReference) -> str:
        if isinstance(model, TorchReference):
            spec = model.model
            identity: Any = [spec.factory, content_hash(spec.weights) if spec.weights else None, spec.trust_model, model.input_shapes, model.nhwc_input]
        else:
            identity = content_hash(model)
        return json.dumps([identity, content_hash(dataset.path), dataset.spec.to_dict(), indices, self.settings.runner.to_dict(),
                           self.settings.batch_axes, self.settings.state_pairs], sort_keys=True, default=str)

    def outputs_for(self, dataset: Dataset, indices: list[int] | None, input_key: str | None = None, label_key: str | None = None,
                    manifest: Any = None, artifact: str = "the artifact") -> Any:
        """The reference's outputs on these samples: reused when this process computed them already. A PyTorch
        reference reads its input shapes and layout from the artifact's `manifest` (`torch_feed`)."""
        from dataclasses import replace

        model = torch_feed(self.source, manifest, artifact) if isinstance(self.source, TorchModelSpec) else Path(self.source)
        key = self.key(dataset, indices, model)
        if key in self._failures:
            raise self._failures[key]
        if key in REFERENCE_OUTPUTS:
            evaluation, self.description = REFERENCE_OUTPUTS[key]
            return replace(evaluation, cache="reused")
        request = MeasureRequest(model, dataset.path, dataset.spec, input_key, label_key, indices, self.settings, model_code_trusted())
        try:
            evaluation, self.description = self._call(EVALUATE_REFERENCE, request, f"computing the float reference {self.name}")
        except EdgeSdkError as error:
            self._failures[key] = error
            raise
        REFERENCE_OUTPUTS[key] = (evaluation, self.description)
        while len(REFERENCE_OUTPUTS) > REFERENCE_OUTPUTS_KEPT:
            REFERENCE_OUTPUTS.pop(next(iter(REFERENCE_OUTPUTS)))
        return evaluation

    def _call(self, target: str, payload: Any, doing: str) -> Any:
        """`target(payload)` in a worker process (or here, without isolation), its frameworks' output kept off stdout."""
        if self.settings.isolate:
            from edge_sdk.isolation import IsolationLimits, run_isolated

            self.progress.message(f"{doing} in a worker process ...")
            limits = IsolationLimits(self.settings.timeout_s, self.settings.memory_limit_bytes)
            return run_isolated(target, payload, label=f"reference {self.name}", limits=limits)
        from edge_sdk.quiet import framework_output

        module_name, _, function = target.partition(":")
        with framework_output(doing):
            return getattr(importlib.import_module(module_name), function)(payload, progress=self.progress)
