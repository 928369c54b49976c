"""The queue in front of a served model and the workers behind it.

Each worker thread owns one runner (its own interpreter), so `--workers N` runs N requests at once on a batch-1
model. With `--max-batch B > 1`, a model with a batch axis is batched dynamically: a worker takes the first waiting
request, then up to `--batch-timeout-ms` more until B samples, runs them in one runner call and splits the answer.
The queue is bounded: a full queue answers 503 with Retry-After instead of letting latency grow without limit.
A runtime fault fails only its own request: a failed batch is re-run one request at a time to find it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge_sdk.serve.metrics import ServerMetrics
from edge_sdk.serve.model import ServedModel
from edge_sdk.serve.protocol import RequestError
from edge_sdk.serve.state import SequenceControl, SequenceStore
from targets.runners.base import BaseRunner

log = logging.getLogger("edge_sdk.serve")
RETRY_AFTER_S = 1
_STOP = object()


class ModelFault(Exception):
    """The runtime failed on a request (HTTP 500); the server keeps serving."""


@dataclass
class Job:
    inputs: dict[str, np.ndarray]
    batch: int
    sequence: SequenceControl | None = None
    future: Future = field(default_factory=Future)
    enqueued: float = field(default_factory=time.perf_counter)


class ModelExecutor:
    """Workers for one ServedModel; `submit` queues a job, `close` drains the queue and stops them."""

    def __init__(self, model: ServedModel, metrics: ServerMetrics, sequences: SequenceStore) -> None:
        self.model = model
        self.metrics = metrics
        self.sequences = sequences
        self.max_batch = model.options.max_batch if model.has_batch_axis else 1
        self.batch_timeout_s = model.options.batch_timeout_ms / 1000.0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=model.options.queue_size)
        self._closing = False
        self._outstanding = 0  # submitted and not yet answered: no point waiting for a batch when none is on its way
        self._outstanding_lock = threading.Lock()
        self._threads = [threading.Thread(target=self._work, args=(runner,), name=f"serve-{model.name}-{index}", daemon=True)
                         for index, runner in enumerate(model.runners)]
        for thread in self._threads:
            thread.start()

    def submit(self, job: Job) -> Future:
        if self._closing:
            raise RequestError(f"model {self.model.name!r} is being replaced or the server is stopping; retry", 503, headers={"Retry-After": str(RETRY_AFTER_S)})
        with self._outstanding_lock:
            self._outstanding += 1
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self._answered(job.future)
            raise RequestError(f"model {self.model.name!r} has {self._queue.maxsize} requests waiting; retry later", 503,
                               headers={"Retry-After": str(RETRY_AFTER_S)}) from None
        job.future.add_done_callback(self._answered)
        return job.future

    def _answered(self, _: Future) -> None:
        with self._outstanding_lock:
            self._outstanding -= 1

    def close(self) -> None:
        """Answer every queued job, then stop the workers and unload the model."""
        self._closing = True
        for _ in self._threads:
            self._queue.put(_STOP)  # after every job already queued: FIFO drains them first
        for thread in self._threads:
            thread.join()
        self.model.close()

    # --- worker side ------------------------------------------------------------------------------
    def _work(self, runner: BaseRunner) -> None:
        carried: Job | None = None
        while True:
            first = carried or self._queue.get()
            carried = None
            if first is _STOP:
                return
            jobs, stop, carried = self._collect(first)
            # A job whose request timed out while queued is cancelled: skip it.
            self._run(runner, [job for job in jobs if job.future.set_running_or_notify_cancel()])
            if stop:  # this worker's stop marker came while a batch was being collected
                return

    def _collect(self, first: Job) -> tuple[list[Job], bool, Job | None]:
        """The first job plus those that fit in one batch within the timeout: (jobs, stop seen, job for next time)."""
        jobs = [first]
        if self.max_batch <= 1 or first.sequence is not None:
            return jobs, False, None
        samples = first.batch
        deadline = time.perf_counter() + self.batch_timeout_s
        while samples < self.max_batch:
            # Wait only while more requests are in the server than this batch holds (one alone is not kept waiting).
            remaining = deadline - time.perf_counter() if self._outstanding > len(jobs) else 0
            try:
                job = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is _STOP:
                return jobs, True, None
            if samples + job.batch > self.max_batch:
                return jobs, False, job
            jobs.append(job)
            samples += job.batch
        return jobs, False, None

    def _run(self, runner: BaseRunner, jobs: list[Job]) -> None:
        if not jobs:
            return
        started = time.perf_counter()
        for job in jobs:
            self.metrics.queue_seconds.labels(self.model.name).observe(started - job.enqueued)
        if len(jobs) == 1:
            self._run_one(runner, jobs[0])
            return
        names = list(jobs[0].inputs)
        batched = {name: np.concatenate([job.inputs[name] for job in jobs]) for name in names}
        try:
            outputs = self._infer(runner, batched)
        except Exception:  # noqa: BLE001 - re-run one by one so that only the faulty request fails
            for job in jobs:
                self._run_one(runner, job)
            return
        offset = 0
        for job in jobs:
            job.future.set_result({name: array[offset : offset + job.batch] for name, array in outputs.items()})
            offset += job.batch

    def _run_one(self, runner: BaseRunner, job: Job) -> None:
        try:
            if job.sequence is None:
                job.future.set_result(self._infer(runner, job.inputs))
                return
            initial = {name: np.zeros(spec.shape, np.float32 if spec.quantized else spec.dtype) for name, spec in self.model.state_specs.items()}
            with self.sequences.use(self.model.name, job.sequence, initial) as sequence:
                outputs = self._infer(runner, {**job.inputs, **sequence.state})
                sequence.state = {state_in: outputs[state_out].reshape(self.model.state_specs[state_in].shape)
                                  for state_in, state_out in self.model.state_pairs}
            job.future.set_result(outputs)
        except RequestError as error:
            job.future.set_exception(error)
        except Exception as error:  # noqa: BLE001 - any runtime's own error: answer 500, keep serving
            log.error("model %s: the runtime failed on a request: %s", self.model.name, error)
            job.future.set_exception(ModelFault(f"the runtime failed on this request: {type(error).__name__}: {error}"))

    def _infer(self, runner: BaseRunner, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = runner.infer(inputs)
        self.metrics.inference_seconds.labels(self.model.name).observe(runner.inference_time_s or 0.0)
        self.metrics.batch_size.labels(self.model.name).observe(next(iter(inputs.values())).shape[0] if inputs else 1)
        return outputs
