"""The float reference of a bench: its outputs on the bench's samples, computed once per preprocessing and sample
subset, in a worker process like the artifacts (edge_sdk.isolation), so that a reference that crashes the
interpreter becomes an error naming it while the artifacts' results are kept."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_sdk.data import Dataset, PreprocessSpec
from edge_sdk.errors import EdgeSdkError
from edge_sdk.model_safety import model_code_trusted, trusting_model_code
from edge_sdk.progress import Progress

if TYPE_CHECKING:
    from edge_sdk.bench import BenchSettings, Evaluation


class ReferenceCache:
    """Float reference outputs, computed once per preprocessing spec and sample subset."""

    def __init__(self, path: Path, settings: BenchSettings, progress: Progress) -> None:
        self.path = path
        self.settings = settings
        self.progress = progress
        self._cache: dict[str, Any] = {}  # (Evaluation, description) or the error it ended with
        self.description: dict[str, Any] | None = None

    def outputs_for(self, dataset: Dataset, indices: list[int] | None, input_key: str | None = None, label_key: str | None = None) -> Evaluation:
        """The reference's outputs, computed in a worker process like the artifacts' (a crash there is an error
        naming the reference, not the end of the bench); a failure is remembered, not retried per artifact."""
        key = json.dumps([dataset.spec.to_dict(), indices])
        if key not in self._cache:
            request = ReferenceRequest(self.path, dataset.path, dataset.spec, input_key, label_key, indices, self.settings, model_code_trusted())
            try:
                if self.settings.isolate:
                    from edge_sdk.isolation import IsolationLimits, run_isolated

                    self.progress.message(f"running the reference {self.path.name} in a worker process ...")
                    limits = IsolationLimits(self.settings.timeout_s, self.settings.memory_limit_bytes)
                    self._cache[key] = run_isolated("edge_sdk.reference_eval:evaluate_reference", request, label=f"reference {self.path.name}", limits=limits)
                else:
                    self._cache[key] = evaluate_reference(request, progress=self.progress)
            except EdgeSdkError as error:
                self._cache[key] = error
        outcome = self._cache[key]
        if isinstance(outcome, EdgeSdkError):
            raise outcome
        evaluation, self.description = outcome
        return evaluation


@dataclass
class ReferenceRequest:
    path: Path
    data_path: Path
    spec: PreprocessSpec
    input_key: str | None
    label_key: str | None
    indices: list[int] | None
    settings: BenchSettings
    trust_model: bool = False


def evaluate_reference(request: ReferenceRequest, phase: Any = None, progress: Progress | None = None) -> tuple[Evaluation, dict[str, Any]]:
    """Run the float reference on the selected samples (in the worker process); its outputs and description."""
    from edge_sdk.bench import evaluate
    from targets.runners import runner_for

    phase = phase or (lambda name: None)
    dataset = Dataset(request.data_path, request.spec, input_key=request.input_key, label_key=request.label_key)
    with trusting_model_code(request.trust_model):
        runner = runner_for(request.path, request.settings.runner)
        phase("loading")
        with runner:
            phase("running")
            evaluation = evaluate(runner, dataset, request.indices, progress or Progress(enabled=False), f"reference {request.path.name}")
            return evaluation, runner.describe()
