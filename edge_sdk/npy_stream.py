"""Streaming reader for `.npy` arrays, on disk or inside `.npz` archives: rows are read in order, a chunk at a
time, so a data set is never held in memory whole. Object arrays are refused (they would need pickle)."""

from __future__ import annotations

import math
import os
import tokenize
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

import numpy as np

from edge_sdk.errors import DataFileError


# Largest sample (one row, as float32 after preprocessing) the SDK reads; a 4096x4096 RGB image is 192 MiB.
MAX_SAMPLE_BYTES = 256 * 2**20
CHUNK_BYTES = 16 * 2**20  # rows are read this much at a time
# One-hot label rows wider than this are not labels (the largest common label sets have ~22,000 classes).
MAX_LABEL_ROW = 1 << 20


def _size_text(count: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= size:
            return f"{count / size:.3g} {unit} ({count} bytes)"
    return f"{count} bytes"


class NpyStream:
    """Reads rows of one `.npy` array sequentially from a file object, a chunk at a time."""

    def __init__(self, source: str, opener: Callable[[], IO[bytes]]) -> None:
        self.source = source
        self._opener = opener
        with opener() as handle:
            self.shape, self.fortran_order, self.dtype, self._header_size = _read_npy_header(handle, source)
            stored_bytes = _stream_size(handle) - self._header_size
        if self.dtype.hasobject:
            raise DataFileError(
                f"{source} holds Python objects, which would need pickle to load",
                fix="save plain numeric arrays (np.savez with numeric dtypes)",
            )
        if not self.shape:
            raise DataFileError(f"{source} is a scalar, not an array of samples")
        if any(dim < 0 for dim in self.shape):
            raise DataFileError(f"{source} has a damaged header: shape {self.shape} has a negative size", fix="save the data again with numpy.save / numpy.savez")
        self.num_rows = int(self.shape[0])
        self.row_shape = tuple(int(d) for d in self.shape[1:])
        if 0 in self.row_shape:
            raise DataFileError(f"{source} has shape {self.shape}: every sample is empty", fix="save arrays whose samples hold at least one value")
        # Checked against the file before anything is read: a damaged header can declare petabytes.
        self._row_bytes = math.prod(self.row_shape) * self.dtype.itemsize
        # ... and against a sane sample size: a zip member of a few KB can inflate to any size it declares.
        sample_bytes = math.prod(self.row_shape) * max(self.dtype.itemsize, 4)  # preprocessing makes float32
        if sample_bytes > MAX_SAMPLE_BYTES:
            raise DataFileError(
                f"{source} declares samples of shape {self.row_shape} ({_size_text(sample_bytes)} each as float32, "
                f"{_size_text(self.num_rows * self._row_bytes)} in all), over the limit of {_size_text(MAX_SAMPLE_BYTES)} per sample",
                fix="check the array (one row per sample), or resize the samples before saving them",
            )
        if self.num_rows * self._row_bytes > stored_bytes:
            raise DataFileError(
                f"{source} is truncated or its header is damaged: shape {self.shape} of {self.dtype} needs {self.num_rows * self._row_bytes} bytes, the file holds {stored_bytes}",
                fix="save the data again with numpy.save / numpy.savez",
            )

    def rows(self, indices: Sequence[int] | None, chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (index, row) for sorted `indices` (all rows when None), reading in order, about `chunk_bytes` at a time."""
        wanted = range(self.num_rows) if indices is None else indices
        row_bytes = self._row_bytes
        chunk_rows = max(1, chunk_bytes // max(row_bytes, 1))
        if self.fortran_order and len(self.shape) > 1:
            # Rows are not contiguous in Fortran order; this is the one case read whole.
            with self._opener() as handle:
                handle.read(self._header_size)
                array = np.frombuffer(handle.read(self.num_rows * row_bytes), dtype=self.dtype).reshape(self.shape, order="F")
            for index in wanted:
                yield index, np.ascontiguousarray(array[index])
            return
        with self._opener() as handle:
            handle.read(self._header_size)
            position = 0
            wanted_list = list(wanted)
            cursor = 0
            while cursor < len(wanted_list):
                start = wanted_list[cursor]
                if start < position or start >= self.num_rows:
                    raise DataFileError(f"{self.source}: sample index {start} out of order or out of range")
                _skip(handle, (start - position) * row_bytes)
                position = start
                stop = min(start + chunk_rows, self.num_rows)
                block = handle.read((stop - start) * row_bytes)
                if len(block) < (stop - start) * row_bytes:
                    raise DataFileError(f"{self.source} is truncated: expected {self.num_rows} rows of {self.row_shape}")
                chunk = np.frombuffer(block, dtype=self.dtype).reshape((stop - start, *self.row_shape))
                position = stop
                while cursor < len(wanted_list) and wanted_list[cursor] < stop:
                    yield wanted_list[cursor], chunk[wanted_list[cursor] - start].copy()
                    cursor += 1


def _stream_size(handle: IO[bytes]) -> int:
    """Bytes in a plain file or a zip member, header included."""
    if isinstance(handle, _ArchiveMember):
        return handle.size_bytes
    return os.fstat(handle.fileno()).st_size


def _skip(handle: IO[bytes], count: int) -> None:
    while count > 0:
        block = handle.read(min(count, 1 << 20))
        if not block:
            return
        count -= len(block)


def _read_npy_header(handle: IO[bytes], source: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    from numpy.lib import format as npy_format

    try:
        version = npy_format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(handle)
        else:
            shape, fortran, dtype = npy_format.read_array_header_2_0(handle)
    except (ValueError, OSError, EOFError, SyntaxError, TypeError, tokenize.TokenError) as error:
        # numpy tokenizes and literal-evals the header (never pickle): a damaged one fails in either step.
        raise DataFileError(f"{source} is not a valid .npy array: {type(error).__name__}: {error}", fix="save the data with numpy.save / numpy.savez") from error
    header_size = handle.tell() if hasattr(handle, "tell") else 0
    return tuple(shape), bool(fortran), np.dtype(dtype), header_size


ZIP_MEMBER_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError, ValueError)


def damaged_member(path: Path, member: str, error: BaseException) -> DataFileError:
    return DataFileError(f"{path}: array {member} cannot be read, the archive is damaged: {type(error).__name__}: {error}", fix="save the data again with numpy.savez")


def open_npz_member(path: Path, member: str) -> IO[bytes]:
    try:
        archive = zipfile.ZipFile(path)
    except ZIP_MEMBER_ERRORS as error:
        raise damaged_member(path, member, error) from error
    try:
        handle = archive.open(member)
    except ZIP_MEMBER_ERRORS as error:
        archive.close()
        raise damaged_member(path, member, error) from error
    return _ArchiveMember(archive, handle, path, member)


class _ArchiveMember:
    """A zip member that closes its archive with it and can report how far it has read."""

    def __init__(self, archive: zipfile.ZipFile, handle: IO[bytes], path: Path, member: str) -> None:
        self._archive = archive
        self._handle = handle
        self._path = path
        self._member = member
        self._position = 0
        self.size_bytes = archive.getinfo(member).file_size

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._handle.read(size)
        except ZIP_MEMBER_ERRORS as error:
            raise damaged_member(self._path, self._member, error) from error
        self._position += len(data)
        return data

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        self._handle.close()
        self._archive.close()

    def __enter__(self) -> _ArchiveMember:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def labels_from_rows(stream: NpyStream, source: str, expected_rows: int | None = None) -> np.ndarray:
    """One class index per sample, streamed (one-hot rows become indices); the declared size is checked first."""
    if expected_rows is not None and stream.num_rows != expected_rows:
        raise DataFileError(
            f"{source.rpartition(':')[0] or source} has {expected_rows} samples but {stream.num_rows} labels "
            f"({source} declares shape {stream.shape}, {_size_text(stream.num_rows * stream._row_bytes)})",
            fix="give exactly one label per sample",
        )
    if len(stream.row_shape) > 1 or math.prod(stream.row_shape) > MAX_LABEL_ROW:
        raise DataFileError(f"labels {source} must be one class index per sample (or one-hot rows), got shape {stream.shape}")
    if stream.dtype.kind not in "biuf":
        raise DataFileError(f"labels {source} have dtype {stream.dtype}, not numbers", fix="store class indices (int)")
    labels = np.empty(stream.num_rows, dtype=np.int64)
    for index, row in stream.rows(None):
        value = row.argmax() if row.ndim == 1 else row
        if stream.dtype.kind == "f" and (not np.isfinite(value) or value % 1 != 0):
            raise DataFileError(f"labels {source} are not whole class indices")
        labels[index] = int(value)
    return labels
