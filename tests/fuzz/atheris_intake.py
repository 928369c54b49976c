"""Coverage-guided fuzzing of the pure-Python intake with atheris (`make fuzz`; not collected by pytest).

    python tests/fuzz/atheris_intake.py tflite|npz|results -max_total_time=60

Each input must end in a result or an EdgeSdkError; anything else is reported by atheris with the input saved.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from edge_sdk.data import Dataset, PreprocessSpec
    from edge_sdk.errors import EdgeSdkError
    from edge_sdk.inspection import analyze_tflite
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


def main() -> None:
    target = {"tflite": tflite, "npz": npz, "results": results}[sys.argv.pop(1)]

    def one_input(data: bytes) -> None:
        try:
            target(data)
        except EdgeSdkError:
            pass

    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
