"""The float reference of a bench: its outputs on the bench's samples, computed once per preprocessing and sample
subset, in a worker process like the artifacts (edge_sdk.isolation), so that a reference that crashes the
interpreter becomes an error naming it while the artifacts' results are kept."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_sdk.data import Dataset, PreprocessSpec
from edge_sdk.errors import EdgeSdkError
from edge_sdk.fileio import sha256_of
from edge_sdk.model_safety import model_code_trusted
from edge_sdk.progress import Progress



# Float reference outputs of this process, by content: (model sha256, data sha256, preprocessing, samples, runner
# settings) -> (outputs, the runtime's description). A bench of many artifacts, or a pipeline benching every
# artifact of a model (and every student against the teacher), runs each float model over the data once.
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


class ReferenceCache:
    """Float reference outputs of one model, computed once per data, preprocessing spec and sample subset, in a worker
    process like the artifacts (a crash there is an error naming the reference, not the end of the bench), and reused
    across calls of `bench` in the same process (REFERENCE_OUTPUTS; results record `reference.cache`). A failure is
    remembered, not retried per artifact."""

    def __init__(self, path: Path, settings: Any, progress: Progress) -> None:
        self.path = path
        self.settings = settings
        self.progress = progress
        self._failures: dict[str, EdgeSdkError] = {}
        self.description: dict[str, Any] | None = None

    def key(self, dataset: Dataset, indices: list[int] | None) -> str:
        return json.dumps([content_hash(self.path), content_hash(dataset.path), dataset.spec.to_dict(), indices, self.settings.runner.to_dict(),
                           self.settings.batch_axes, self.settings.state_pairs], sort_keys=True, default=str)

    def outputs_for(self, dataset: Dataset, indices: list[int] | None, input_key: str | None = None, label_key: str | None = None) -> Any:
        """The reference's outputs on these samples: reused when this process computed them already."""
        from dataclasses import replace

        key = self.key(dataset, indices)
        if key in self._failures:
            raise self._failures[key]
        if key in REFERENCE_OUTPUTS:
            evaluation, self.description = REFERENCE_OUTPUTS[key]
            return replace(evaluation, cache="reused")
        request = ReferenceRequest(self.path, dataset.path, dataset.spec, input_key, label_key, indices, self.settings, model_code_trusted())
        try:
            if self.settings.isolate:
                from edge_sdk.isolation import IsolationLimits, run_isolated

                self.progress.message(f"running the reference {self.path.name} in a worker process ...")
                limits = IsolationLimits(self.settings.timeout_s, self.settings.memory_limit_bytes)
                evaluation, self.description = run_isolated(EVALUATE_REFERENCE, request, label=f"reference {self.path.name}", limits=limits)
            else:
                from edge_sdk.quiet import framework_output

                module_name, _, function = EVALUATE_REFERENCE.partition(":")
                with framework_output(f"computing the float reference {self.path.name}"):
                    evaluation, self.description = getattr(importlib.import_module(module_name), function)(request, progress=self.progress)
        except EdgeSdkError as error:
            self._failures[key] = error
            raise
        REFERENCE_OUTPUTS[key] = (evaluation, self.description)
        while len(REFERENCE_OUTPUTS) > REFERENCE_OUTPUTS_KEPT:
            REFERENCE_OUTPUTS.pop(next(iter(REFERENCE_OUTPUTS)))
        return evaluation


@dataclass
class ReferenceRequest:
    path: Path
    data_path: Path
    spec: PreprocessSpec
    input_key: str | None
    label_key: str | None
    indices: list[int] | None
    settings: Any
    trust_model: bool = False
