"""One served artifact: its runners (one per worker), its public I/O signature and the conversions around a call.

By default a model takes and returns FP32 tensors and the runner quantizes with the artifact's scale and zero
point, exactly as `edge-sdk run` does. With `raw_io` the model's own integer tensors are exposed: they are
dequantized before the runner and re-quantized after it, which is exact (q -> (q - zp) * s -> round(. / s) + zp = q),
so the runners stay the single place that feeds a runtime.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.errors import EdgeSdkError, ModelFileError, UsageError
from edge_sdk.serve.protocol import InferRequest, RequestError, v2_datatype
from targets.runners.base import BaseRunner, IOSpec, RunnerOptions, dequantize, quantize

log = logging.getLogger("edge_sdk.serve")


@dataclass
class ServeOptions:
    """How every artifact of one server is served (flags of `edge-sdk serve`)."""

    raw_io: bool = False
    preprocess: bool = False  # apply the manifest's preprocessing to every request, not only when asked
    max_batch: int = 1  # > 1: dynamic batching for models with a batch axis
    batch_timeout_ms: float = 2.0
    workers: int = 1  # runners (each with its own interpreter) per model
    queue_size: int = 64  # requests waiting per model before 503
    request_timeout_s: float = 30.0
    max_body_bytes: int = 16 * 2**20
    sequence_idle_s: float = 60.0
    state_pairs: list[tuple[str, str]] = field(default_factory=list)  # --state IN:OUT, when the manifest has none
    runtime: str | None = None
    runner: RunnerOptions = field(default_factory=RunnerOptions)

    def __post_init__(self) -> None:
        for name in ("max_batch", "workers", "queue_size"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name in ("batch_timeout_ms", "request_timeout_s", "sequence_idle_s"):
            if getattr(self, name) < 0:
                raise UsageError(f"--{name.replace('_', '-')} must not be negative")


@dataclass
class ManifestFacts:
    """What the server needs from an artifact's manifest."""

    sha256: str | None = None
    preprocess: dict[str, Any] | None = None
    state_pairs: list[tuple[str, str]] = field(default_factory=list)
    batch_axes: dict[str, int | None] = field(default_factory=dict)  # input name -> batch axis (None: none)
    external_data: list[str] = field(default_factory=list)  # files beside the artifact that it needs (ONNX)


def manifest_facts(path: Path) -> ManifestFacts:
    """The one place the server reads a manifest (edge_sdk.manifest: validated, older versions upgraded)."""
    from edge_sdk.manifest import read_manifest

    manifest = read_manifest(Path(path))
    if manifest is None:
        return ManifestFacts()
    return ManifestFacts(
        sha256=manifest.sha256 or None,
        preprocess=manifest.preprocess or None,
        state_pairs=[(str(pair[0]), str(pair[1])) for pair in manifest.state_pairs],
        batch_axes={tensor.name: tensor.batch_axis for tensor in manifest.inputs},
        external_data=[str(entry["path"]) for entry in manifest.external_data if entry.get("path")],
    )


def snapshot_artifact(source: Path, folder: Path) -> tuple[Path, ManifestFacts]:
    """Copy the artifact, its manifest and external data into `folder` and check the copy against the manifest's sha256.

    Runtimes map model files into memory: a file overwritten in place under a running interpreter crashes the
    process (SIGBUS, DEVELOPERS.md). Serving a private copy keeps the running version safe whatever happens to the
    file on disk, and the sha256 is checked on exactly the bytes that are loaded.
    """
    import shutil

    from edge_sdk.manifest import manifest_path_for, read_manifest, verify_artifact

    copy = folder / source.name
    try:
        shutil.copyfile(source, copy)
        if manifest_path_for(source).exists():
            shutil.copyfile(manifest_path_for(source), manifest_path_for(copy))
        facts = manifest_facts(copy)
        for name in facts.external_data:
            if Path(name).name == name:  # a plain file name beside the artifact, never a path elsewhere
                shutil.copyfile(source.parent / name, folder / name)
    except OSError as error:
        raise ModelFileError(f"cannot read {source} (or a file beside it): {error}", fix="check the path and permissions") from error
    manifest = read_manifest(copy)
    mismatch = verify_artifact(copy, manifest) if manifest is not None and manifest.sha256 else None
    if mismatch:
        raise ModelFileError(f"{source} does not match the sha256 in its manifest ({mismatch.replace(str(folder), str(source.parent))})",
                             fix="copy the artifact and its manifest again, together")
    return copy, facts


@dataclass
class PublicTensor:
    """An input or output as clients see it."""

    name: str
    datatype: str
    shape: list[int]  # -1 on the batch axis
    spec: IOSpec  # what the runner takes or returns

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": self.shape}


def _public_dtype(spec: IOSpec, raw_io: bool) -> np.dtype:
    if raw_io or not (spec.quantized or spec.dtype.kind == "f"):
        return spec.dtype  # integer indices, masks... are passed as they are
    return np.dtype(np.float32)


class ServedModel:
    """An artifact loaded with `options.workers` runners; `prepare` and `finish` wrap each call."""

    def __init__(self, source: Path, name: str, options: ServeOptions, version: str = "1") -> None:
        import tempfile

        self.source = Path(source)
        self.name = name
        self.version = version
        self.options = options
        self.runners: list[BaseRunner] = []
        self._folder = Path(tempfile.mkdtemp(prefix=f"edge-sdk-serve-{name}-"))
        try:
            self.path, self.facts = snapshot_artifact(self.source, self._folder)
            start = time.perf_counter()
            for _ in range(options.workers):
                self.runners.append(self._new_runner())
        except BaseException:
            self.close()
            raise
        self.load_time_s = time.perf_counter() - start
        first = self.runners[0]
        state_pairs = self.facts.state_pairs or options.state_pairs
        input_names = {spec.name for spec in first.inputs}
        output_names = {spec.name for spec in first.outputs}
        self.state_pairs = [(i, o) for i, o in state_pairs if i in input_names and o in output_names]
        if state_pairs and not self.state_pairs:
            log.warning("model %s: state pairs %s name no input/output pair of it; served without state", name, state_pairs)
        state_inputs = {i for i, _ in self.state_pairs}
        state_outputs = {o for _, o in self.state_pairs}
        self.state_specs = {spec.name: spec for spec in first.inputs if spec.name in state_inputs}
        batch_axis = {spec.name: self.facts.batch_axes.get(spec.name, 0) for spec in first.inputs}
        self.has_batch_axis = all(axis == 0 for axis in batch_axis.values()) and not self.state_pairs
        self.inputs = [self._public(spec) for spec in first.inputs if spec.name not in state_inputs]
        self.outputs = [self._public(spec) for spec in first.outputs if spec.name not in state_outputs]
        self.preprocess_spec = self._preprocess_spec()

    # --- loading ---------------------------------------------------------------------------------
    def _new_runner(self) -> BaseRunner:
        from targets.runners import runner_class, runner_for

        runner = runner_class(self.options.runtime)(self.path, self.options.runner) if self.options.runtime else runner_for(self.path, self.options.runner)
        runner.activate()
        return runner

    def _public(self, spec: IOSpec) -> PublicTensor:
        shape = [int(d) for d in spec.shape]
        if self.has_batch_axis and shape:
            shape[0] = -1
        return PublicTensor(spec.name, v2_datatype(_public_dtype(spec, self.options.raw_io)), shape, spec)

    def _preprocess_spec(self) -> Any:
        if not self.facts.preprocess:
            return None
        from edge_sdk.data import PreprocessSpec

        return PreprocessSpec.from_dict(self.facts.preprocess)

    @property
    def is_stateful(self) -> bool:
        return bool(self.state_pairs)

    def metadata(self) -> dict[str, Any]:
        """GET /v2/models/{name}: the protocol's model metadata."""
        return {"name": self.name, "versions": [self.version], "platform": f"edge-sdk_{self.runners[0].runtime_name}",
                "inputs": [t.to_dict() for t in self.inputs], "outputs": [t.to_dict() for t in self.outputs]}

    def warm_up(self) -> None:
        """One call on zeros per runner: a model that cannot run is refused before it serves."""
        for runner in self.runners:
            runner.infer({spec.name: np.zeros(spec.shape, np.float32 if spec.quantized else spec.dtype) for spec in runner.inputs})

    def close(self) -> None:
        import shutil

        for runner in self.runners:
            runner.deactivate()
        shutil.rmtree(self._folder, ignore_errors=True)

    # --- per request -----------------------------------------------------------------------------
    def prepare(self, request: InferRequest) -> tuple[dict[str, np.ndarray], int]:
        """The runner's inputs (float where quantized) and the batch size; RequestError for a bad request."""
        expected = [t.name for t in self.inputs]
        if sorted(request.inputs) != sorted(expected):
            raise RequestError(f"model {self.name!r} takes inputs {expected}, got {sorted(request.inputs)}")
        preprocess = self.preprocess_spec is not None and (self.options.preprocess or bool(request.parameters.get("preprocess")))
        if request.parameters.get("preprocess") and self.preprocess_spec is None:
            raise RequestError(f"model {self.name!r} has no preprocessing in its manifest; send model-ready inputs")
        prepared: dict[str, np.ndarray] = {}
        for tensor in self.inputs:
            array = request.inputs[tensor.name]
            if preprocess:
                if array.ndim < 1 or array.dtype.kind not in "uif":
                    raise RequestError(f"input {tensor.name!r}: preprocessing takes a batch of numeric samples, got shape {list(array.shape)} {array.dtype}")
                array = np.stack([self.preprocess_spec.apply(sample) for sample in array]) if len(array) else array
                array = array.astype(np.float32, copy=False)
            elif v2_datatype(array.dtype) != tensor.datatype:
                raise RequestError(f"input {tensor.name!r} of model {self.name!r} is {tensor.datatype}, got {v2_datatype(array.dtype)}")
            self._check_shape(tensor, array)
            if self.options.raw_io and tensor.spec.quantized and not preprocess:
                array = dequantize(array, tensor.spec)
            prepared[tensor.name] = array
        batch_sizes = {array.shape[0] for array in prepared.values()} if self.has_batch_axis else {1}
        if len(batch_sizes) != 1 or 0 in batch_sizes:
            raise RequestError(f"inputs of model {self.name!r} must share one batch size of at least 1, got {sorted(batch_sizes)}")
        return prepared, batch_sizes.pop()

    def _check_shape(self, tensor: PublicTensor, array: np.ndarray) -> None:
        want = tensor.shape
        ok = array.ndim == len(want) and all(w == -1 or w == g for w, g in zip(want, array.shape))
        if not ok:
            raise RequestError(f"input {tensor.name!r} of model {self.name!r} has shape {want} (-1: any batch), got {list(array.shape)}")

    def check_requested_outputs(self, request: InferRequest) -> None:
        known = [t.name for t in self.outputs]
        unknown = [name for name in request.requested_outputs or [] if name not in known]
        if unknown:
            raise RequestError(f"model {self.name!r} has no output {unknown[0]!r}; its outputs are {known}")

    def finish(self, outputs: dict[str, np.ndarray], request: InferRequest) -> dict[str, np.ndarray]:
        """The outputs the request asked for, in the public types."""
        public = {t.name: t for t in self.outputs}
        self.check_requested_outputs(request)
        names = request.requested_outputs if request.requested_outputs is not None else list(public)
        result = {}
        for name in names:
            tensor = public[name]
            array = outputs[name]
            if self.options.raw_io and tensor.spec.quantized:
                array = quantize(array, tensor.spec)
            else:
                array = array.astype(np.dtype(_public_dtype(tensor.spec, self.options.raw_io)), copy=False)
            result[name] = array
        return result


def load_model(path: Path, name: str, options: ServeOptions, version: str = "1") -> ServedModel:
    """Load, then run once on zeros; ModelFileError when the artifact does not load or run."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"artifact {path} does not exist", fix="check the path")
    try:
        model = ServedModel(path, name, options, version)
    except EdgeSdkError as error:
        raise type(error)(f"{path}: {error.message}", fix=error.fix) from error  # the message names the private copy
    try:
        model.warm_up()
    except Exception as error:  # noqa: BLE001 - any runtime's own error class: the model cannot serve
        model.close()
        raise ModelFileError(f"{path} loads but does not run: {error}", fix="convert it again, or check the runtime") from error
    return model
