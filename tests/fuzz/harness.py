"""What every fuzz test shares: the example budget, byte mutations, and the property itself.

The property: an input ends in a result or an `EdgeSdkError`, within a time limit. Any other exception fails
the test (hypothesis then shrinks the input and prints it); a hang is stopped by SIGALRM and fails the same way.

`make test` runs a small, derandomized budget (seconds); `make fuzz` sets EDGE_SDK_FUZZ_EXAMPLES (and a
random seed) for a longer search.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from edge_sdk.errors import EdgeSdkError

T = TypeVar("T")
FUZZ_EXAMPLES = int(os.environ.get("EDGE_SDK_FUZZ_EXAMPLES", "0"))
# No single input may take longer than this: long enough for a slow CI machine, short enough to call it a hang.
HANG_LIMIT_S = float(os.environ.get("EDGE_SDK_FUZZ_HANG_S", "20"))


def fuzz_settings(default_examples: int) -> settings:
    """`default_examples` in `make test` (the same inputs every run), EDGE_SDK_FUZZ_EXAMPLES in `make fuzz`."""
    return settings(
        max_examples=FUZZ_EXAMPLES or default_examples,
        deadline=timedelta(seconds=HANG_LIMIT_S),
        derandomize=not FUZZ_EXAMPLES,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
        print_blob=True,
    )


class Hung(BaseException):
    """Raised by the watchdog; a BaseException so that no `except Exception` in the code under test swallows it."""


@contextlib.contextmanager
def watchdog(seconds: float = HANG_LIMIT_S) -> Iterator[None]:
    def expire(signum: int, frame: Any) -> None:
        raise Hung(f"no result or error within {seconds:g} s: the input hangs the intake")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def sdk_outcome(call: Callable[..., T], *args: Any, **kwargs: Any) -> T | EdgeSdkError:
    """`call(...)`'s result, or the EdgeSdkError it raised; anything else propagates and fails the test."""
    with watchdog():
        try:
            return call(*args, **kwargs)
        except EdgeSdkError as error:
            assert str(error).strip(), f"{type(error).__name__} with an empty message"
            return error


# One edit of a byte string; positions are taken modulo its length, so any integer is a valid position.
# "word" overwrites 4 bytes with an extreme little-endian int32: what breaks flatbuffer offsets and protobuf lengths.
_EDGE_WORDS = [0, 1, -1, 0x7FFFFFFF, -0x80000000, 0x00FFFFFF, 0x10000]
mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 30), st.integers(0, 7)),
    st.tuples(st.just("byte"), st.integers(0, 1 << 30), st.integers(0, 255)),
    st.tuples(st.just("word"), st.integers(0, 1 << 30), st.sampled_from(_EDGE_WORDS)),
    st.tuples(st.just("truncate"), st.integers(0, 1 << 30), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 30), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 1 << 30), st.integers(1, 64)),
)
mutations = st.lists(mutation, min_size=1, max_size=6)


def mutate(data: bytes, edits: list[tuple[str, int, Any]]) -> bytes:
    """Apply `edits` (from the `mutations` strategy) to `data`."""
    buffer = bytearray(data)
    for kind, position, value in edits:
        if not buffer:
            break
        at = position % len(buffer)
        if kind == "flip":
            buffer[at] ^= 1 << value
        elif kind == "byte":
            buffer[at] = value
        elif kind == "word":
            at -= at % 4
            buffer[at:at + 4] = (value & 0xFFFFFFFF).to_bytes(4, "little")
        elif kind == "truncate":
            del buffer[at:]
        elif kind == "insert":
            buffer[at:at] = value
        elif kind == "delete":
            del buffer[at:at + value]
    return bytes(buffer)


# JSON/YAML-like values to drop into a parsed document in place of any node.
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(1 << 70), 1 << 70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["", "ok", "error", "1.0", "2.0", "tflite", "int8", "NHWC", "ssh", "desktop", "../../etc/passwd", "\x00"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.one_of(st.text(max_size=6), st.integers(0, 3)), inner, max_size=3)), max_leaves=8)


def node_paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path (keys / indices) to a node of a nested dict/list document, the root included."""
    paths = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            paths += node_paths(value, prefix + (key,))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            paths += node_paths(value, prefix + (index,))
    return paths


def replaced(document: Any, path: tuple[Any, ...], value: Any, delete: bool = False) -> Any:
    """A copy of `document` with the node at `path` replaced by `value` (or removed from its parent)."""
    if not path:
        return value
    import copy

    copied = copy.deepcopy(document)
    parent = copied
    for part in path[:-1]:
        parent = parent[part]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return copied


def edited(data: Any, document: Any) -> Any:
    """`document` after one to three random edits drawn from `data` (hypothesis's st.data()): each replaces a node
    with a drawn value, or removes it from its parent."""
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(node_paths(document)))
        document = replaced(document, path, data.draw(values), delete=bool(path) and data.draw(st.booleans()))
    return document
