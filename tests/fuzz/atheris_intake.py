"""Coverage-guided fuzzing of the pure-Python intake with atheris (`make fuzz`; not collected by pytest).

    python tests/fuzz/atheris_intake.py tflite|npz|results|npy|h5config|pipeline|manifest -max_total_time=60

Each input must end in a result or an EdgeSdkError; anything else is reported by atheris with the input saved.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from edge_sdk.artifact import load_artifact
    from edge_sdk.data import Dataset, PreprocessSpec
    from edge_sdk.errors import EdgeSdkError
    from edge_sdk.inspection import analyze_tflite
    from edge_sdk.model_safety import check_h5_model
    from edge_sdk.pipeline_config import load_config
    from edge_sdk.results import load_results

FOLDER = Path(tempfile.mkdtemp(prefix="edge-sdk-atheris-"))


def tflite(data: bytes) -> None:
    analyze_tflite(data, "fuzz.tflite")


def npz(data: bytes) -> None:
    (FOLDER / "fuzz.npz").write_bytes(data)
    dataset = Dataset(FOLDER / "fuzz.npz", PreprocessSpec())
    for _ in zip(range(64), dataset.samples()):
        pass


def results(data: bytes) -> None:
    (FOLDER / "results.json").write_bytes(data)
    load_results(FOLDER / "results.json")


def npy(data: bytes) -> None:
    """A .npy header and body as given: the declared shape decides what is read (never allocated whole)."""
    (FOLDER / "fuzz.npy").write_bytes(b"\x93NUMPY\x01\x00" + data)
    dataset = Dataset(FOLDER / "fuzz.npy", PreprocessSpec())
    for _ in zip(range(8), dataset.samples()):
        pass


def h5config(data: bytes) -> None:
    """Any text as an .h5's model_config (tf_keras's JSON), checked structurally before a framework would load it."""
    import h5py

    with h5py.File(FOLDER / "fuzz.h5", "w") as handle:
        handle.attrs["keras_version"] = "2.21.0"
        handle.attrs["model_config"] = data.decode("utf-8", "replace").replace("\x00", "")  # HDF5 strings hold no NUL
    check_h5_model(FOLDER / "fuzz.h5")


def pipeline(data: bytes) -> None:
    for name in ("test.npz", "train.npz", "student.h5", "teacher.h5"):
        if not (FOLDER / name).exists():
            (FOLDER / name).write_bytes(b"")
    (FOLDER / "edge.yaml").write_bytes(data)
    load_config(FOLDER / "edge.yaml")


def manifest(data: bytes) -> None:
    (FOLDER / "m.tflite").write_bytes(b"\x1c\x00\x00\x00TFL3")
    (FOLDER / "m.tflite.manifest.json").write_bytes(data)
    load_artifact(FOLDER / "m.tflite", verify=False)


def main() -> None:
    target = {"tflite": tflite, "npz": npz, "results": results, "npy": npy, "h5config": h5config, "pipeline": pipeline, "manifest": manifest}[sys.argv.pop(1)]

    def one_input(data: bytes) -> None:
        try:
            target(data)
        except EdgeSdkError:
            pass

    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
