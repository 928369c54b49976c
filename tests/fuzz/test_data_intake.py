"""Mutated .npz / .npy data files and hand-written .npy headers through Dataset(...) and its sample stream."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from edge_sdk.data import Dataset, PreprocessSpec
from tests.fuzz.harness import fuzz_settings, mutate, mutations, sdk_outcome

# Enough samples and sample reads to exercise streaming without making each example slow.
MAX_SAMPLES_READ = 64


def _npz_bytes(compressed: bool) -> bytes:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, x=rng.random((6, 4, 4), dtype=np.float32), y=np.arange(6) % 3)
    return buffer.getvalue()


def _npy_bytes(fortran: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asfortranarray(np.arange(24, dtype=np.int16).reshape(6, 2, 2)) if fortran else np.arange(24, dtype=np.float64).reshape(6, 4))
    return buffer.getvalue()


SEEDS = {"plain.npz": _npz_bytes(False), "compressed.npz": _npz_bytes(True), "rows.npy": _npy_bytes(), "fortran.npy": _npy_bytes(True)}


def read_dataset(path: Path) -> int:
    """Open the file as a Dataset and read (at most MAX_SAMPLES_READ) samples; returns how many were read."""
    dataset = Dataset(path, PreprocessSpec(scale=0.5))
    read = 0
    for sample in dataset.samples(dataset.subset(MAX_SAMPLES_READ)):
        assert all(isinstance(array, np.ndarray) for array in sample.inputs.values())
        read += 1
    return read


def test_the_seeds_read():
    with tempfile.TemporaryDirectory() as folder:
        for name, data in SEEDS.items():
            (Path(folder) / name).write_bytes(data)
            assert read_dataset(Path(folder) / name) == 6


@fuzz_settings(80)
@given(seed=st.sampled_from(sorted(SEEDS)), edits=mutations)
def test_mutated_data_files_read_or_raise_an_sdk_error(seed, edits):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / seed
        path.write_bytes(mutate(SEEDS[seed], edits))
        sdk_outcome(read_dataset, path)


# Any header numpy's writer could put in a .npy: dtypes (object and structured included), shapes (empty, huge,
# zero-sized), either order, followed by too few, enough or too many bytes.
dtypes = st.sampled_from(["<f4", "<f8", "|u1", "<i8", "|b1", "<c8", "|O", "<U3", "|S2", "|V4", "[('a', '<i4')]", "<M8[s]", ">f4"])
shapes = st.lists(st.sampled_from([0, 1, 2, 3, 7, 1 << 20, 1 << 40, (1 << 62) + 1]), max_size=4).map(tuple)


@fuzz_settings(60)
@given(descr=dtypes, shape=shapes, fortran=st.booleans(), payload=st.binary(max_size=256), suffix=st.sampled_from([".npy", ".npz"]))
def test_hand_written_npy_headers(descr, shape, fortran, payload, suffix):
    header = "{'descr': %s, 'fortran_order': %s, 'shape': %r, }" % (descr if descr.startswith("[") else repr(descr), fortran, shape)
    header += " " * (-(len(header) + 11) % 64) + "\n"
    npy = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode("latin1") + payload
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"data{suffix}"
        if suffix == ".npz":
            import zipfile

            with zipfile.ZipFile(path, "w") as archive:
                archive.writestr("x.npy", npy)
        else:
            path.write_bytes(npy)
        sdk_outcome(read_dataset, path)
