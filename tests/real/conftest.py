"""Fixtures for the real-model tests: public models from PyPI wheels and real, sized data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.real import data
from tests.real.wheels import ppocr_cls, ppocr_det, silero_vad, silero_vad_sequence  # noqa: F401 - fixtures


def run_streaming(session, chunks: np.ndarray, sequence: np.ndarray, feeds, state_names: list[tuple[str, str]]) -> tuple[np.ndarray, list[dict[str, np.ndarray]]]:
    """Bare ONNX Runtime: (probabilities, the state fed at every step), carrying the model's own state per sequence."""
    probabilities, states = [], []
    outputs = [o.name for o in session.get_outputs()]
    for recording in np.unique(sequence):
        state = {name: np.zeros(shape, np.float32) for name, shape in feeds["initial"].items()}
        for chunk in chunks[sequence == recording]:
            states.append({name: value.copy() for name, value in state.items()})
            result = dict(zip(outputs, session.run(None, {**feeds["extra"], feeds["input"]: chunk[None], **state})))
            probabilities.append(float(np.asarray(result[outputs[0]]).reshape(-1)[0]))
            state = {state_input: result[state_output] for state_input, state_output in state_names}
    return np.asarray(probabilities), states


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, np.ndarray]:
    """(chunks (N, 576), sequence (N,)) of two espeak-ng recordings with pauses between phrases."""
    return data.speech_chunks(tmp_path_factory.mktemp("speech"), count=2)


@pytest.fixture(scope="session")
def text_lines_npz(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(evaluation .npz with 300 lines, calibration .npz with 64 other lines): x (N,3,48,192), y 0 upright / 1 flipped."""
    folder = tmp_path_factory.mktemp("lines")
    x, y = data.text_lines(300, seed=0)
    np.savez(folder / "lines.npz", x=x, y=y)
    x, y = data.text_lines(64, seed=1)
    np.savez(folder / "calib.npz", x=x, y=y)
    return folder / "lines.npz", folder / "calib.npz"
