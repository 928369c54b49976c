"""The served models by name, and the watcher that swaps in an artifact replaced on disk.

A replaced artifact is loaded beside the old one (new runners, one call on zeros), checked against the sha256 in
its manifest, and only then swapped in; the old version answers every request it has queued and is unloaded.
A new file that fails any check is logged and ignored until it changes again; the old version keeps serving.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_sdk.errors import EdgeSdkError, UsageError
from edge_sdk.serve.batching import ModelExecutor
from edge_sdk.serve.metrics import ServerMetrics
from edge_sdk.serve.model import ServeOptions, load_model
from edge_sdk.serve.state import SequenceStore

log = logging.getLogger("edge_sdk.serve")


def model_names(paths: list[Path], names: list[str] | None) -> list[tuple[Path, str]]:
    """(path, name) per artifact: the file name without its suffix, or --name in order; duplicates refused."""
    names = list(names or [])
    if len(names) > len(paths):
        raise UsageError(f"{len(names)} --name values for {len(paths)} artifacts", fix="give at most one --name per artifact, in order")
    chosen = [(Path(path), names[index] if index < len(names) else Path(path).stem) for index, path in enumerate(paths)]
    seen: dict[str, Path] = {}
    for path, name in chosen:
        if not name or "/" in name:
            raise UsageError(f"model name {name!r} (for {path}) must be non-empty and contain no '/'")
        if name in seen:
            raise UsageError(f"two artifacts would be served as {name!r}: {seen[name]} and {path}", fix="give each a distinct --name, in the order of the artifacts")
        seen[name] = path
    return chosen


def _file_signature(path: Path) -> tuple[Any, ...]:
    """What changes when a file is replaced or rewritten (the manifest beside it too)."""
    from edge_sdk.artifact import manifest_path_for

    parts: list[Any] = []
    for file in (path, manifest_path_for(path)):
        try:
            stat = os.stat(file)
            parts.append((stat.st_ino, stat.st_size, stat.st_mtime_ns))
        except OSError:
            parts.append(None)
    return tuple(parts)


@dataclass
class _Entry:
    path: Path
    executor: ModelExecutor
    signature: tuple[Any, ...]
    version: int = 1
    pending: tuple[Any, ...] | None = None  # a changed signature seen once; reloaded when it holds still
    rejected: tuple[Any, ...] | None = None


class ModelRegistry:
    """Loads every artifact at start (a model that does not load stops the start), then serves them by name."""

    def __init__(self, artifacts: list[tuple[Path, str]], options: ServeOptions, metrics: ServerMetrics, sequences: SequenceStore) -> None:
        self.options = options
        self.metrics = metrics
        self.sequences = sequences
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        try:
            for path, name in artifacts:
                signature = _file_signature(path)
                model = load_model(path, name, options)
                metrics.load_seconds.labels(name).set(model.load_time_s)
                self._entries[name] = _Entry(path, ModelExecutor(model, metrics, sequences), signature)
                log.info("serving %s as %r (%s, %d worker(s), load %.1f ms)", path, name, model.runners[0].runtime_name, options.workers, 1000 * model.load_time_s)
        except BaseException:
            self.close()
            raise

    def get(self, name: str) -> ModelExecutor | None:
        with self._lock:
            entry = self._entries.get(name)
            return entry.executor if entry else None

    def names(self) -> list[str]:
        return list(self._entries)

    def index(self) -> list[dict[str, Any]]:
        """POST /v2/repository/index: every model, its version and state."""
        with self._lock:
            return [{"name": name, "version": str(entry.version), "state": "READY", "reason": ""} for name, entry in self._entries.items()]

    # --- reloading --------------------------------------------------------------------------------
    def watch(self, interval_s: float) -> None:
        """Poll the artifacts every interval_s seconds in a thread (0: never)."""
        if interval_s > 0:
            self._watcher = threading.Thread(target=self._watch, args=(interval_s,), name="serve-reload", daemon=True)
            self._watcher.start()

    def _watch(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            for name in list(self._entries):
                self.check_for_update(name)
            self.sequences.expire()

    def check_for_update(self, name: str) -> str | None:
        """Reload `name` if its file changed and then held still for one poll; returns 'swapped', 'rejected' or None."""
        entry = self._entries[name]
        signature = _file_signature(entry.path)
        if signature == entry.signature or signature == entry.rejected:
            entry.pending = None
            return None
        if signature != entry.pending:
            entry.pending = signature  # still being written, perhaps: wait for one more poll
            return None
        entry.pending = None
        try:
            model = load_model(entry.path, name, self.options, version=str(entry.version + 1))
        except EdgeSdkError as error:
            entry.rejected = signature
            self.metrics.reloads.labels(name, "rejected").inc()
            log.error("model %s: the replaced %s is ignored, version %d keeps serving: %s", name, entry.path, entry.version, error)
            return "rejected"
        new = ModelExecutor(model, self.metrics, self.sequences)
        with self._lock:
            old = entry.executor
            entry.executor, entry.signature, entry.version, entry.rejected = new, signature, entry.version + 1, None
        self.metrics.load_seconds.labels(name).set(model.load_time_s)
        self.metrics.reloads.labels(name, "swapped").inc()
        log.info("model %s: swapped in version %d from %s (load %.1f ms)", name, entry.version, entry.path, 1000 * model.load_time_s)
        threading.Thread(target=old.close, name=f"serve-unload-{name}", daemon=True).start()
        return "swapped"

    def close(self) -> None:
        """Stop watching, answer every queued request, unload every model."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join()
        for entry in self._entries.values():
            entry.executor.close()
