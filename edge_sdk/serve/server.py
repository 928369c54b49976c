"""Start `edge-sdk serve`: load the artifacts, bind (127.0.0.1 unless told otherwise), serve until SIGTERM or Ctrl-C.

On SIGTERM/SIGINT uvicorn stops accepting connections and answers every request in flight; the app's shutdown then
drains what is still queued and unloads the models, and `serve_artifacts` returns 0.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge_sdk.errors import MissingDependencyError, UsageError
from edge_sdk.serve.app import ServerApp
from edge_sdk.serve.metrics import ServerMetrics
from edge_sdk.serve.model import ServeOptions
from edge_sdk.serve.registry import ModelRegistry, model_names
from edge_sdk.serve.state import SequenceStore

log = logging.getLogger("edge_sdk.serve")
GRACEFUL_SHUTDOWN_S = 30


@dataclass
class ListenOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    token_file: Path | None = None
    reload_interval_s: float = 2.0  # 0: never look for replaced artifacts
    access_log: bool = False


def read_token(path: Path | None) -> str | None:
    """The bearer token from its file (first line, stripped); UsageError when unreadable or empty."""
    if path is None:
        return None
    try:
        lines = Path(path).read_text().strip().splitlines()
    except OSError as error:
        raise UsageError(f"--token-file {path} cannot be read: {error}") from error
    token = lines[0].strip() if lines else ""
    if not token:
        raise UsageError(f"--token-file {path} is empty", fix="write the token on its first line, e.g. `openssl rand -hex 32 > token`")
    return token


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on such sockets, and without it Nagle's algorithm
    # and the client's delayed ACK add ~40 ms to every answer on a keep-alive connection.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror}", fix="choose another --port, or stop what uses it") from error
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve_artifacts(artifacts: list[Path], *, names: list[str] | None = None, options: ServeOptions | None = None,
                    listen: ListenOptions | None = None, on_ready: Callable[[str], None] | None = None) -> int:
    """Serve `artifacts` until SIGTERM or SIGINT; returns 0 after a clean drain."""
    try:
        import uvicorn
    except ImportError as error:
        raise MissingDependencyError(f"uvicorn not installed: {error}", fix="pip install 'edge-sdk[serve]'") from error
    options = options or ServeOptions()
    listen = listen or ListenOptions()
    _configure_logging()
    token = read_token(listen.token_file)
    chosen = model_names(artifacts, names)
    sequences = SequenceStore(options.sequence_idle_s)
    metrics = ServerMetrics(sequences=lambda: len(sequences))
    registry = ModelRegistry(chosen, options, metrics, sequences)
    try:
        sock = _bind(listen.host, listen.port)
    except BaseException:
        registry.close()
        raise
    app = ServerApp(registry, metrics, token=token)
    registry.watch(listen.reload_interval_s)
    host, port = sock.getsockname()[:2]
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    config = uvicorn.Config(app.asgi, log_level="warning", access_log=listen.access_log, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, lifespan="on")
    server = uvicorn.Server(config)
    log.info("listening on %s (models: %s); SIGTERM or Ctrl-C drains and stops", url, ", ".join(registry.names()))
    if token is None and not _is_loopback(str(host)):
        log.warning("%s is reachable from the network and needs no token: anyone there can use the models (give --token-file)", url)
    if on_ready:
        on_ready(url)
    # uvicorn re-raises the signal it caught once it has drained; a no-op handler makes that a clean exit 0.
    previous = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
        if not app.draining:  # the lifespan shutdown did not run (start failed): unload here
            registry.close()
    log.info("stopped")
    return 0


def _is_loopback(host: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _ignore(signum: int, frame: object) -> None:
    pass


def _configure_logging() -> None:
    logger = logging.getLogger("edge_sdk.serve")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s edge-sdk serve %(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
