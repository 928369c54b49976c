"""The HTTP routes of `edge-sdk serve` (Starlette): the Open Inference Protocol, /metrics and the bearer token.

Every failure is an answer, never a crash: a bad request is a 4xx with {"error": message}, a full queue a 503 with
Retry-After, a request not answered within the timeout a 504, a runtime fault inside the model a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from edge_sdk import __version__
from edge_sdk.errors import MissingDependencyError
from edge_sdk.serve.batching import Job, ModelFault
from edge_sdk.serve.metrics import ServerMetrics
from edge_sdk.serve.protocol import HEADER_LENGTH, RequestError, encode_infer_response, error_body, json_body, parse_infer_request
from edge_sdk.serve.registry import ModelRegistry
from edge_sdk.serve.state import SequenceControl

log = logging.getLogger("edge_sdk.serve")
LARGE_BODY_BYTES = 256 * 1024
EXTENSIONS = ["binary_tensor_data", "model_repository", "sequence", "statistics_metrics"]


def _starlette() -> Any:
    try:
        import starlette.applications
        import starlette.responses
        import starlette.routing
    except ImportError as error:
        raise MissingDependencyError(f"starlette not installed: {error}", fix="pip install 'edge-sdk[serve]'") from error
    return starlette


class ServerApp:
    """Routes bound to one registry; `.asgi` is the ASGI application."""

    def __init__(self, registry: ModelRegistry, metrics: ServerMetrics, *, token: str | None = None) -> None:
        self.registry = registry
        self.metrics = metrics
        self.token = token
        self.draining = False
        self.answered = {"ok": 0, "all": 0}  # inference answers, logged when the server stops
        starlette = _starlette()
        self._response = starlette.responses.Response
        route = starlette.routing.Route
        routes = [
            route("/v2", self._guard(self.server_metadata)),
            route("/v2/health/live", self._guard(self.live)),
            route("/v2/health/ready", self._guard(self.ready)),
            route("/v2/repository/index", self._guard(self.repository_index), methods=["POST"]),
            route("/v2/models/{name}", self._guard(self.model_metadata)),
            route("/v2/models/{name}/versions/{version}", self._guard(self.model_metadata)),
            route("/v2/models/{name}/ready", self._guard(self.model_ready)),
            route("/v2/models/{name}/versions/{version}/ready", self._guard(self.model_ready)),
            route("/v2/models/{name}/infer", self._guard(self.infer), methods=["POST"]),
            route("/v2/models/{name}/versions/{version}/infer", self._guard(self.infer), methods=["POST"]),
            route("/metrics", self._guard(self.metrics_endpoint)),
        ]
        self.asgi = starlette.applications.Starlette(routes=routes, lifespan=self._lifespan)

    def _json(self, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Any:
        return self._response(json_body(payload), status_code=status, headers=headers, media_type="application/json")

    def _guard(self, handler: Callable[[Any], Awaitable[Any]]) -> Callable[[Any], Awaitable[Any]]:
        """The bearer token, then the handler; a RequestError becomes its status with {"error": message}."""

        async def guarded(request: Any) -> Any:
            try:
                if self.token is not None:
                    given = request.headers.get("authorization", "")
                    if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                        raise RequestError("missing or wrong bearer token (send 'Authorization: Bearer TOKEN')", 401, headers={"WWW-Authenticate": "Bearer"})
                return await handler(request)
            except RequestError as error:
                return self._response(error_body(error.message), status_code=error.status, headers=error.headers, media_type="application/json")

        return guarded

    # --- health and metadata ------------------------------------------------------------------------
    async def server_metadata(self, request: Any) -> Any:
        return self._json({"name": "edge-sdk", "version": __version__, "extensions": EXTENSIONS})

    async def live(self, request: Any) -> Any:
        return self._json({"live": True})

    async def ready(self, request: Any) -> Any:
        ready = not self.draining
        return self._json({"ready": ready}, 200 if ready else 503)

    async def repository_index(self, request: Any) -> Any:
        return self._json(self.registry.index())

    def _executor(self, request: Any) -> Any:
        name = request.path_params["name"]
        executor = self.registry.get(name)
        if executor is None:
            raise RequestError(f"no model named {name!r}; this server serves {self.registry.names()}", 404)
        version = request.path_params.get("version")
        if version is not None and version != executor.model.version:
            raise RequestError(f"model {name!r} has version {executor.model.version} only, not {version!r}", 404)
        return executor

    async def model_metadata(self, request: Any) -> Any:
        return self._json(self._executor(request).model.metadata())

    async def model_ready(self, request: Any) -> Any:
        self._executor(request)
        return self._json({"name": request.path_params["name"], "ready": not self.draining}, 200 if not self.draining else 503)

    async def metrics_endpoint(self, request: Any) -> Any:
        body, content_type = self.metrics.exposition()
        return self._response(body, media_type=content_type)

    # --- inference ------------------------------------------------------------------------------------
    async def infer(self, request: Any) -> Any:
        started = time.perf_counter()
        name = request.path_params["name"]
        known = self.registry.get(name) is not None
        label = name if known else "(unknown)"  # unknown names must not grow the metrics without bound
        self.metrics.in_flight.labels(label).inc()
        status = 500
        try:
            response = await self._infer(request)
            status = response.status_code
            return response
        except RequestError as error:
            status = error.status
            raise
        except ModelFault as error:
            return self._response(error_body(str(error)), status_code=500, media_type="application/json")
        except Exception as error:  # noqa: BLE001 - never a crash: log it and answer 500
            log.exception("model %s: unexpected error", name)
            return self._response(error_body(f"internal error: {type(error).__name__}: {error}"), status_code=500, media_type="application/json")
        finally:
            self.metrics.in_flight.labels(label).dec()
            self.answered["all"] += 1
            self.answered["ok"] += status == 200
            self.metrics.requests.labels(label, str(status)).inc()
            if known:
                self.metrics.request_seconds.labels(label).observe(time.perf_counter() - started)

    async def _infer(self, request: Any) -> Any:
        executor = self._executor(request)
        body = await self._read_body(request, executor.model.options.max_body_bytes)
        header_length = request.headers.get(HEADER_LENGTH)
        if len(body) > LARGE_BODY_BYTES:  # decoding megabytes of JSON would stall every other connection
            parsed = await asyncio.get_running_loop().run_in_executor(None, parse_infer_request, body, header_length)
        else:
            parsed = parse_infer_request(body, header_length)
        for attempt in range(2):  # a model swapped in meanwhile: the new version takes the request
            model = executor.model
            model.check_requested_outputs(parsed)
            inputs, batch = model.prepare(parsed)
            sequence = SequenceControl.from_parameters(model.name, parsed.parameters) if model.is_stateful else None
            try:
                future = executor.submit(Job(inputs, batch, sequence))
                break
            except RequestError as error:
                replaced = self.registry.get(model.name)
                if error.status != 503 or attempt or replaced is executor or replaced is None:
                    raise
                executor = replaced
        timeout = model.options.request_timeout_s
        try:
            outputs = await asyncio.wait_for(asyncio.wrap_future(future), timeout or None)
        except asyncio.TimeoutError:
            raise RequestError(f"model {model.name!r} did not answer within {timeout:g} s (--request-timeout)", 504) from None
        content, headers = encode_infer_response(model.name, model.version, parsed, model.finish(outputs, parsed))
        return self._response(content, headers=headers)

    @staticmethod
    async def _read_body(request: Any, limit: int) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise RequestError(f"the request body of {int(declared)} bytes is over the limit of {limit} bytes (--max-body-mb)", 413)
        chunks = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise RequestError(f"the request body is over the limit of {limit} bytes (--max-body-mb)", 413)
            chunks.append(chunk)
        return b"".join(chunks)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Any) -> AsyncIterator[None]:
        yield
        # At shutdown uvicorn has answered every request in flight; closing drains what is still queued.
        self.draining = True
        await asyncio.get_running_loop().run_in_executor(None, self.registry.close)
        log.info("drained: answered %d inference requests successfully (%d in all)", self.answered["ok"], self.answered["all"])
