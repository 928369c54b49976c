"""Per-sequence state of stateful models, keyed by the protocol's `sequence_id` request parameter.

A request with `sequence_start` begins a sequence with zero state; each answer stores the model's state outputs as
the next request's state inputs; `sequence_end` forgets it after answering. A sequence idle longer than
`idle_s` is forgotten (its next request without `sequence_start` is refused with a message saying so).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge_sdk.serve.protocol import RequestError


@dataclass
class Sequence:
    state: dict[str, np.ndarray]
    last_used: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class SequenceControl:
    """The sequence parameters of one request."""

    sequence_id: Any
    start: bool = False
    end: bool = False

    @classmethod
    def from_parameters(cls, model_name: str, parameters: dict[str, Any]) -> SequenceControl:
        sequence_id = parameters.get("sequence_id")
        # Triton's convention: sequence_id 0 (or "") means "no sequence".
        if sequence_id in (None, 0, "") or isinstance(sequence_id, (bool, float, list, dict)):
            raise RequestError(f"model {model_name!r} is stateful: each request needs parameters.sequence_id (a non-zero integer or a string), "
                               "sequence_start on the first and sequence_end on the last")
        return cls(sequence_id, bool(parameters.get("sequence_start")), bool(parameters.get("sequence_end")))


class SequenceStore:
    """State per (model, sequence_id), with idle expiry."""

    def __init__(self, idle_s: float) -> None:
        self.idle_s = idle_s
        self._sequences: dict[tuple[str, Any], Sequence] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sequences)

    @contextmanager
    def use(self, model_name: str, control: SequenceControl, initial: dict[str, np.ndarray]) -> Iterator[Sequence]:
        """The sequence's state, locked for one call; the caller replaces `sequence.state` when the call succeeds."""
        self.expire()
        key = (model_name, control.sequence_id)
        with self._lock:
            sequence = self._sequences.get(key)
            if control.start:
                sequence = Sequence({name: array.copy() for name, array in initial.items()})
                self._sequences[key] = sequence
            elif sequence is None:
                raise RequestError(f"model {model_name!r}: sequence {control.sequence_id!r} is not open (never started, ended, or idle "
                                   f"for more than {self.idle_s:g} s); send sequence_start to begin it")
        with sequence.lock:
            try:
                yield sequence
            finally:
                sequence.last_used = time.monotonic()
        if control.end:
            with self._lock:
                if self._sequences.get(key) is sequence:
                    del self._sequences[key]

    def expire(self) -> int:
        """Forget sequences idle for longer than idle_s; returns how many."""
        cutoff = time.monotonic() - self.idle_s
        with self._lock:
            stale = [key for key, sequence in self._sequences.items() if sequence.last_used < cutoff and not sequence.lock.locked()]
            for key in stale:
                del self._sequences[key]
        return len(stale)
