"""Runner registry: one runner per runtime, looked up by name or by the model file's kind.

Entries are 'module:Class' strings so that nothing heavy is imported until a runner is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from pathlib import Path

from targets.runners.base import BaseRunner, RunnerOptions

RUNNERS: dict[str, str] = {
    "litert": "targets.runners.litert:LiteRTRunner",
    "reference": "targets.runners.reference:ReferenceRunner",
    "onnxruntime": "targets.runners.onnxruntime:OnnxRuntimeRunner",
    "tensorrt": "targets.runners.tensorrt:TensorRTRunner",
}



class _RunnerForKind(Mapping[str, str]):
    """Which runner runs a model of each kind (edge_sdk.models.detect_model_kind), read from the format table
    (each format's first runtime) and its reference kinds, so that a new format row is seen at once."""

    def _table(self) -> dict[str, str]:
        from edge_sdk.formats import FORMATS, REFERENCE_KINDS, REFERENCE_RUNNER

        return {**{name: spec.runner for name, spec in FORMATS.items()}, **{kind: REFERENCE_RUNNER for kind in REFERENCE_KINDS}}

    def __getitem__(self, kind: str) -> str:
        return self._table()[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())


RUNNER_FOR_KIND: Mapping[str, str] = _RunnerForKind()


def runner_class(name: str) -> type[BaseRunner]:
    from edge_sdk.errors import UsageError

    if name not in RUNNERS:
        raise UsageError(f"unknown runner {name!r}; known runners: {', '.join(RUNNERS)}")
    module_name, class_name = RUNNERS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)  # type: ignore[no-any-return]


def runner_for(path: Path, options: RunnerOptions | None = None) -> BaseRunner:
    """The runner for a model file, chosen from its content."""
    from edge_sdk.errors import ModelFileError
    from edge_sdk.models import detect_model_kind

    kind = detect_model_kind(Path(path))
    if kind not in RUNNER_FOR_KIND:
        raise ModelFileError(f"no runner for {kind} models yet ({path})")
    return runner_class(RUNNER_FOR_KIND[kind])(Path(path), options)
