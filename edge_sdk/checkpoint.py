"""Partial results of an unfinished bench, so that an interruption loses nothing that finished.

`edge-sdk bench ... -o results.json` writes `results.json.partial` (atomically, a normal results document plus a
`resume` section) after every artifact, and renames the finished document to `results.json` at the end. The
`resume` section keeps, for each result, a key: the sha256 of the artifact, the data, the reference, the
preprocessing and the measurement settings. Running the same command again (Ctrl-C, a killed process, a full
disk, a crash of the machine) finds the partial file and takes every finished result ('ok') whose key still
matches instead of measuring it again; failed artifacts are measured again. A partial file holding a result
that the new command would not reuse is never discarded silently: the command stops unless `--overwrite` is
given, which starts from scratch.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from edge_sdk.errors import DataError, OutputExistsError
from edge_sdk.fileio import sha256_of, write_json_atomic

PARTIAL_SUFFIX = ".partial"


def partial_path_for(output: Path) -> Path:
    """Where the partial results of a bench writing `output` live."""
    return Path(output).with_name(Path(output).name + PARTIAL_SUFFIX)


def result_key(artifact: Path, data: Path, reference: Any, settings: dict[str, Any], preprocess: dict[str, Any],
               input_key: str | None, label_key: str | None, target: str) -> str:
    """What a finished result depends on: a re-run reuses it only when all of it is unchanged (the artifact's
    path too: two copies of one file are two results)."""
    from edge_sdk.version import __version__

    payload = {
        "artifact": str(Path(artifact).resolve()), "artifact_sha256": _digest(artifact), "data": _digest(data), "reference": _digest(reference),
        "settings": settings, "preprocess": preprocess, "input_key": input_key, "label_key": label_key, "target": target,
        "edge_sdk": __version__,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _digest(path: Any) -> Any:
    """sha256 of a file or folder; a PyTorch reference (TorchModelSpec): its factory, its weights' sha256 and the trust flag."""
    if hasattr(path, "factory"):
        return [path.factory, _digest(path.weights), path.trust_model]
    return sha256_of(Path(path)) if path is not None and Path(path).exists() else None


class BenchCheckpoint:
    """The partial results file of one bench: read once, rewritten after every artifact."""

    def __init__(self, path: Path, *, fresh: bool = False) -> None:
        self.path = Path(path)
        self._entries: dict[str, dict[str, Any]] = {}  # key -> result record, in the order finished
        self.reused: list[str] = []  # artifacts taken from the partial file instead of measured again
        if fresh or not self.path.exists():
            return
        try:
            document = json.loads(self.path.read_text())
            keys, results = document["resume"]["keys"], document["results"]
            if len(keys) != len(results):
                raise ValueError(f"{len(keys)} resume keys for {len(results)} results")
            self._entries = dict(zip(keys, results))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise DataError(f"partial results file {self.path} is not readable: {error}",
                            fix="delete it, or pass --overwrite to start the bench from scratch") from error

    def check_all_reusable(self, keys: list[str]) -> None:
        """Refuse to go on when the partial file holds results this run would drop (another bench's)."""
        stale = [record for key, record in self._entries.items() if key not in keys]
        if stale:
            names = ", ".join(sorted({record.get("artifact", {}).get("name", "?") for record in stale}))
            raise OutputExistsError(
                f"{self.path} holds {len(stale)} finished result(s) of a different bench ({names}: other files or settings); "
                "they would be lost", fix="re-run that bench to finish it, or pass --overwrite to discard them",
            )

    def finished(self, key: str) -> dict[str, Any] | None:
        """The finished ('ok') result recorded under `key`, or None."""
        record = self._entries.get(key)
        if record is None or record.get("status") != "ok":
            return None
        self.reused.append(record.get("artifact", {}).get("name", "?"))
        return record

    def record(self, key: str, result: dict[str, Any]) -> None:
        """Add one result and rewrite the partial file atomically (an OutputWriteError keeps the previous one)."""
        from edge_sdk.results import results_document

        self._entries.pop(key, None)
        self._entries[key] = result
        document = results_document([])
        document["results"] = list(self._entries.values())
        document["resume"] = {"keys": list(self._entries)}
        write_json_atomic(self.path, document)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
