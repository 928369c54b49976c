"""Data files whose headers declare sizes they do not hold or should not be read whole: `.npy` headers with any
shape (negative, zero, huge), `.npz` members that inflate far beyond their compressed size (zip bombs), and label
arrays that declare more rows or wider rows than the samples. The property: a result or an EdgeSdkError, and the
memory the read allocates (tracemalloc sees numpy's buffers) stays far below what the header declares."""

from __future__ import annotations

import tempfile
import tracemalloc
import zipfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz.harness import FUZZ_EXAMPLES, fuzz_settings, sdk_outcome
from tests.fuzz.test_data_intake import read_dataset

# What a read may allocate, whatever is declared: a few chunks of rows and one sample (edge_sdk.npy_stream).
MEMORY_BUDGET_BYTES = 200 * 2**20
# How far a member inflates: 1 GiB in `make fuzz`, 256 MiB in `make test` (deflating zeros takes about 1 s per GiB).
BOMB_BYTES = 1 << 30 if FUZZ_EXAMPLES else 1 << 28

dims = st.sampled_from([-1, -(1 << 40), 0, 1, 2, 5, 64, 4096, 1 << 20, 1 << 31, 1 << 40])
shapes = st.lists(dims, min_size=0, max_size=4).map(tuple)
dtypes = st.sampled_from(["<f4", "|u1", "<i8", "<f8", "|b1"])


def npy_bytes(descr: str, shape: tuple[int, ...], body: bytes) -> bytes:
    header = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (descr, shape)
    header += " " * (-(len(header) + 11) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode("latin1") + body


def write_npz(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(f"{name}.npy", data)


def bounded_read(path: Path) -> None:
    tracemalloc.start()
    try:
        sdk_outcome(read_dataset, path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BUDGET_BYTES, f"reading {path.name} allocated {peak / 2**20:.0f} MiB"


@fuzz_settings(60)
@given(x_shape=shapes, y_shape=shapes, x_type=dtypes, y_type=dtypes, body=st.binary(max_size=64), suffix=st.sampled_from([".npy", ".npz"]))
def test_declared_shapes_never_allocate_what_they_declare(x_shape, y_shape, x_type, y_type, body, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"data{suffix}"
        if suffix == ".npy":
            path.write_bytes(npy_bytes(x_type, x_shape, body))
        else:
            write_npz(path, {"x": npy_bytes(x_type, x_shape, body), "y": npy_bytes(y_type, y_shape, body)})
        bounded_read(path)


@settings(parent=fuzz_settings(5), deadline=None)  # building a 1 GiB bomb is slow on a busy machine; the read has the watchdog
@given(rows=st.sampled_from([1, 2, 50, 4096]), row_bytes=st.sampled_from([4, 3136, 1 << 20, 1 << 28]), labels_rows=st.sampled_from([None, 1, 50, 1 << 26]),
       label_width=st.sampled_from([1, 10, 1 << 21]))
def test_inflating_members_are_refused_or_streamed(rows, row_bytes, labels_rows, label_width):
    """x (uint8 rows) and y (int8 labels) whose bytes are deflated zeros, up to BOMB_BYTES each once inflated."""
    x_total = min(rows * row_bytes, BOMB_BYTES)
    rows = max(1, x_total // row_bytes)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bomb.npz"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            members = {"x": npy_bytes("|u1", (rows, row_bytes), b"")}
            if labels_rows is not None:
                shape = (labels_rows,) if label_width == 1 else (labels_rows, label_width)
                members["y"] = npy_bytes("|i1", shape, b"")
            for name, header in members.items():
                declared = rows * row_bytes if name == "x" else labels_rows * label_width  # type: ignore[operator]
                declared = min(declared, BOMB_BYTES)
                with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                    member.write(header)
                    block = bytes(1 << 20)
                    for start in range(0, declared, len(block)):
                        member.write(block[: min(len(block), declared - start)])
        bounded_read(path)
