"""Calibration and evaluation data: `.npz`, `.npy` and image folders, streamed sample by sample.

A `Dataset` never holds all samples in memory: arrays are read row by row from the `.npy`
stream (also inside `.npz` archives), images are decoded one at a time. Every sample goes
through the declared `PreprocessSpec`, which is stored in each artifact's manifest so that
every runner feeds data the same way.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.errors import DataError, DataFileError, UsageError
from edge_sdk.npy_stream import MAX_SAMPLE_BYTES, ZIP_MEMBER_ERRORS, NpyStream, labels_from_rows, open_npz_member
from edge_sdk.preprocessing import LAYOUTS, PreprocessSpec, parse_floats, parse_scale  # noqa: F401 - re-exported

LABEL_KEYS = ("y", "y_test", "y_train", "y_val", "labels", "label", "targets")
# Optional .npz array: N integers naming the ordered sequence each sample belongs to (streaming evaluation).
SEQUENCE_KEY = "sequence"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def check_data_path(path: Path) -> None:
    """A data path that exists and is a file or a folder (reading a FIFO blocks forever, a device never ends)."""
    path = Path(path)
    if not path.exists():
        raise DataFileError(f"data file {path} does not exist", fix="check the --data / --calib path")
    if not path.is_dir() and not path.is_file():
        raise DataFileError(f"data {path} is not a regular file (a FIFO, socket or device)", fix="give a .npz, .npy or a folder of images")


@dataclass
class Sample:
    """One preprocessed sample: per-input arrays without a batch axis, and its label if known."""

    index: int
    inputs: dict[str, np.ndarray]
    label: int | None


class Dataset:
    """Samples from a `.npz`, `.npy` or image folder, preprocessed by `spec`, streamed."""

    def __init__(self, path: Path, spec: PreprocessSpec, *, input_key: str | None = None, label_key: str | None = None) -> None:
        self.path = Path(path)
        self.spec = spec
        self._arrays: dict[str, NpyStream] = {}
        self._labels: np.ndarray | None = None
        self.sequence_ids: np.ndarray | None = None
        self._images: list[tuple[Path, int | None]] = []
        self.class_names: list[str] | None = None
        check_data_path(self.path)
        if self.path.is_dir():
            self._open_image_folder()
        elif self.path.suffix == ".npz":
            self._open_npz(input_key, label_key)
        elif self.path.suffix == ".npy":
            self._arrays["x"] = NpyStream(str(self.path), lambda: open(self.path, "rb"))
        else:
            raise DataFileError(
                f"data {self.path} is not a .npz, .npy or a folder of images",
                fix="convert it with numpy.savez(path, x=inputs, y=labels)",
            )
        self.num_samples = self._count_samples()
        if self.num_samples == 0:
            raise DataFileError(f"data {self.path} contains 0 samples", fix="give a data file with at least one sample")

    # --- opening -----------------------------------------------------------------------------
    def _open_npz(self, input_key: str | None, label_key: str | None) -> None:
        try:
            archive = zipfile.ZipFile(self.path)
            members = {name[:-4]: name for name in archive.namelist() if name.endswith(".npy")}
            archive.close()
        except ZIP_MEMBER_ERRORS as error:
            raise DataFileError(f"{self.path} is not a readable .npz archive: {type(error).__name__}: {error}", fix="save it with numpy.savez") from error
        if not members:
            raise DataFileError(f"{self.path} holds no arrays")
        label_name = label_key or next((key for key in LABEL_KEYS if key in members), None)
        if label_key and label_key not in members:
            raise DataFileError(f"{self.path} has no array {label_key!r} (has: {', '.join(sorted(members))})")
        input_names = [input_key] if input_key else [key for key in members if key not in (label_name, SEQUENCE_KEY)]
        if not input_names:
            raise DataFileError(f"{self.path} holds only the labels {label_name!r}, no input array", fix="save the inputs too: numpy.savez(path, x=inputs, y=labels)")
        for name in input_names:
            if name not in members:
                raise DataFileError(f"{self.path} has no array {name!r} (has: {', '.join(sorted(members))})")
            member = members[name]
            self._arrays[name] = NpyStream(f"{self.path}:{name}", lambda member=member: open_npz_member(self.path, member))
        if label_name is not None:
            label_stream = NpyStream(f"{self.path}:{label_name}", lambda: open_npz_member(self.path, members[label_name]))
            sample_rows = next(iter(self._arrays.values())).num_rows  # compared before any label is read
            self._labels = labels_from_rows(label_stream, f"{self.path}:{label_name}", expected_rows=sample_rows)
        if SEQUENCE_KEY in members and SEQUENCE_KEY not in input_names:
            sequence_member = members[SEQUENCE_KEY]
            sequence_stream = NpyStream(f"{self.path}:{SEQUENCE_KEY}", lambda: open_npz_member(self.path, sequence_member))
            self.sequence_ids = labels_from_rows(sequence_stream, f"{self.path}:{SEQUENCE_KEY}", expected_rows=next(iter(self._arrays.values())).num_rows)

    def _open_image_folder(self) -> None:
        files = sorted(p for p in self.path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        classes = sorted(p.name for p in self.path.iterdir() if p.is_dir() and not p.name.startswith("."))
        if files and classes:
            raise DataFileError(f"{self.path} mixes images and class sub-folders", fix="put every image in its class folder")
        if classes:
            self.class_names = classes
            for label, name in enumerate(classes):
                for image in sorted((self.path / name).iterdir()):
                    if image.is_file() and image.suffix.lower() in IMAGE_SUFFIXES:
                        self._images.append((image, label))
        else:
            self._images = [(image, None) for image in files]

    def _count_samples(self) -> int:
        if self._images or self.path.is_dir():
            return len(self._images)
        counts = {name: stream.num_rows for name, stream in self._arrays.items()}
        if len(set(counts.values())) > 1:
            raise DataFileError(f"arrays in {self.path} have different sample counts: {counts}")
        count = next(iter(counts.values()))
        if self._labels is not None and len(self._labels) != count:
            raise DataFileError(
                f"{self.path} has {count} samples but {len(self._labels)} labels",
                fix="give exactly one label per sample",
            )
        if self.sequence_ids is not None and len(self.sequence_ids) != count:
            raise DataError(f"{self.path} has {count} samples but {len(self.sequence_ids)} sequence ids", fix="give one sequence id per sample")
        for name, stream in self._arrays.items():
            if stream.dtype.kind not in "biuf":
                raise DataFileError(f"{self.path}:{name} has dtype {stream.dtype}, not a numeric type", fix="store numbers (int or float)")
        return count

    # --- reading -----------------------------------------------------------------------------
    @property
    def input_names(self) -> list[str]:
        return ["image"] if self.path.is_dir() else list(self._arrays)

    @property
    def has_labels(self) -> bool:
        if self.path.is_dir():
            return bool(self._images) and self._images[0][1] is not None
        return self._labels is not None

    def label_of(self, index: int) -> int | None:
        if self.path.is_dir():
            return self._images[index][1]
        return None if self._labels is None else int(self._labels[index])

    def subset(self, count: int | None, seed: int = 0) -> list[int] | None:
        """A deterministic, sorted subset of `count` sample indices (None: every sample)."""
        if count is not None and count <= 0:
            raise UsageError(f"sample count {count} must be positive")
        if seed < 0:
            raise UsageError(f"--seed {seed} must be 0 or more")
        if count is None or count >= self.num_samples:
            return None
        chosen = np.random.default_rng(seed).choice(self.num_samples, size=count, replace=False)
        return sorted(int(i) for i in chosen)

    def samples(self, indices: Sequence[int] | None = None) -> Iterator[Sample]:
        """Yield preprocessed samples in index order, checking each for NaN/Inf."""
        if self.path.is_dir():
            for index in range(self.num_samples) if indices is None else indices:
                image, label = self._images[index]
                yield Sample(index, {"image": self._checked(self._load_image(image), f"{image}")}, label)
            return
        streams = {name: stream.rows(indices) for name, stream in self._arrays.items()}
        while True:
            inputs: dict[str, np.ndarray] = {}
            index = -1
            for name, rows in streams.items():
                try:
                    index, row = next(rows)
                except StopIteration:
                    return
                inputs[name] = self._checked(self.spec.apply(row), f"{self.path}:{name}[{index}]")
            yield Sample(index, inputs, self.label_of(index))

    def _checked(self, array: np.ndarray, where: str) -> np.ndarray:
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise DataFileError(f"sample {where} contains NaN or Inf values", fix="clean the data set before calibrating or evaluating")
        return array

    def _load_image(self, image: Path) -> np.ndarray:
        from edge_sdk._lazy import require

        pil_image = require("PIL.Image", "image folders")
        try:
            with pil_image.open(image) as opened:
                width, height = opened.size
                declared = width * height * 3 * 4  # decoded as RGB, then float32
                if declared > MAX_SAMPLE_BYTES:
                    raise DataFileError(f"image {image} declares {width}x{height} pixels ({declared / 2**30:.3g} GiB as float32), "
                                        f"over the limit of {MAX_SAMPLE_BYTES // 2**20} MiB per sample",
                                        fix="resize the images before benchmarking (--resize scales them after decoding)")
                mode = "L" if self.spec.color == "grayscale" else "RGB"
                converted = opened.convert(mode)
                if self.spec.resize:
                    height, width = self.spec.resize
                    converted = converted.resize((width, height), pil_image.BILINEAR)
                array = np.asarray(converted)
        except pil_image.DecompressionBombError as error:
            raise DataFileError(f"image {image} declares too many pixels to decode: {error}",
                                fix="resize the images before benchmarking (--resize scales them after decoding)") from error
        except (OSError, ValueError, SyntaxError) as error:
            raise DataFileError(f"image {image} cannot be read: {type(error).__name__}: {error}", fix="remove or replace the file") from error
        return self.spec.apply(array)

    def describe(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "samples": self.num_samples,
            "inputs": self.input_names,
            "labels": self.has_labels,
            **({"sequences": int(len(np.unique(self.sequence_ids)))} if self.sequence_ids is not None else {}),
            "preprocess": self.spec.to_dict(),
        }


# What zipfile raises for a damaged archive member: a bad header or CRC, broken deflate data, a cut-off stream,
# an unsupported compression method or an encrypted member.
@dataclass
class InputBinding:
    """Maps a dataset's arrays onto a model's inputs and fits each sample to its input (edge_sdk.io_model):
    the batch axis goes where the model has it (given in `batch_axes`, else found from the first sample's shape),
    dynamic dims take the data's size."""

    model_inputs: list[tuple[str, tuple[int | None, ...]]]
    data_names: dict[str, str] = field(default_factory=dict)
    batch_axes: dict[str, int | None] = field(default_factory=dict)

    @classmethod
    def bind(cls, dataset: Dataset, model_inputs: Sequence[tuple[str, Sequence[int | None]]], batch_axes: dict[str, int | None] | None = None) -> InputBinding:
        """`model_inputs`: (name, full shape with its batch axis, None or -1 for a dynamic dim) per model input."""
        shapes = [(name, tuple(None if d is None or d < 0 else int(d) for d in shape)) for name, shape in model_inputs]
        names = dataset.input_names
        if len(shapes) == 1 and len(names) == 1:
            mapping = {shapes[0][0]: names[0]}
        else:
            missing = [name for name, _ in shapes if name not in names]
            if missing:
                raise DataError(
                    f"the model has inputs {[n for n, _ in shapes]} but {dataset.path} has arrays {names}",
                    fix="name the .npz arrays after the model inputs (np.savez(path, **{input_name: array}))",
                )
            mapping = {name: name for name, _ in shapes}
        known = {name for name, _ in shapes}
        unknown = sorted(set(batch_axes or {}) - known)
        if unknown:
            raise UsageError(f"--batch-axis names unknown inputs {unknown}; the model's inputs are {sorted(known)}")
        for name, shape in shapes:
            axis = (batch_axes or {}).get(name, 0)
            if axis is not None and axis > len(shape) - 1 and name in (batch_axes or {}):
                raise UsageError(f"--batch-axis {name}:{axis} is outside the input's {len(shape)} axes")
        return cls(model_inputs=shapes, data_names=mapping, batch_axes=dict(batch_axes or {}))

    def fit(self, sample: Sample, where: str) -> dict[str, np.ndarray]:
        """Per-input arrays shaped like the model input, with a batch axis of 1 where the model has one."""
        from edge_sdk.io_model import fit_input, infer_batch_axis

        fitted = {}
        for name, shape in self.model_inputs:
            array = sample.inputs[self.data_names[name]]
            if name not in self.batch_axes:
                try:
                    self.batch_axes[name] = infer_batch_axis(shape, tuple(array.shape))
                except DataError:
                    self.batch_axes[name] = 0  # fit_input below reshapes, or says what does not fit
            fitted[name] = fit_input(array, shape, self.batch_axes[name], f"{where} sample {sample.index} for input {name!r}")
        return fitted


def fit_to_shape(array: np.ndarray, shape: tuple[int, ...], where: str) -> np.ndarray:
    """Reshape `array` to `shape` when they differ only by axes of size 1; else a DataError."""
    if tuple(array.shape) == tuple(shape):
        return array
    squeezed = tuple(d for d in array.shape if d != 1)
    wanted = tuple(d for d in shape if d != 1)
    if squeezed == wanted:
        return array.reshape(shape)
    raise DataError(
        f"{where} has shape {tuple(array.shape)} after preprocessing, the model expects {tuple(shape)}",
        fix="check the data file, or set --layout NHWC|NCHW, --resize H,W or --input-shape to match the model",
    )
