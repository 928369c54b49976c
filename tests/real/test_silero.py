"""silero-vad from its wheel: the shipped model with input / state / sr arrays, and the sequence model's
dynamic-range artifact compared on every output, per step and streaming."""

from __future__ import annotations

import numpy as np
import pytest

import edge_sdk
from edge_sdk.api import convert
from edge_sdk.bench import BenchSettings
from edge_sdk.errors import ConversionError
from edge_sdk.formats import FORMATS
from tests.real.conftest import run_streaming

pytestmark = pytest.mark.slow


def _session(path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_silero_vad_as_shipped_benches_with_input_state_and_sr(silero_vad, speech, tmp_path):
    chunks, sequence = speech
    sr = np.array(16000, np.int64)
    probabilities, states = run_streaming(_session(silero_vad), chunks, sequence, {"input": "input", "extra": {"sr": sr}, "initial": {"state": (2, 1, 128)}},
                                          [("state", "stateN")])
    assert np.mean(probabilities > 0.5) >= 0.2  # real speech: at least 20 % of the chunks by the float model
    assert np.mean(probabilities > 0.5) <= 0.9  # and real pauses
    # The data format: one array per input with a leading sample axis; state stored without its batch axis.
    data = tmp_path / "vad.npz"
    np.savez(data, input=chunks, state=np.stack([s["state"][:, 0] for s in states]), sr=np.full(len(chunks), 16000, np.int64), sequence=sequence)
    result = edge_sdk.benchmark([silero_vad], data, reference=silero_vad, settings=BenchSettings(runs=3, warmup=1))[0]
    assert result.status == "ok", result.error
    assert result.reference["state_pairs"] == [["state", "stateN"]]  # found from the names
    output = result.reference["outputs"]["output"]
    assert output["kind"] == "values" and "top1_agreement" not in output
    assert result.reference["fidelity"]["top1_agreement"] is None  # never "100 %" over one value
    assert output["reference_positive_share"] == pytest.approx(np.mean(probabilities > 0.5))
    assert result.reference["outputs"]["stateN"]["kind"] == "state"
    streaming = result.reference["streaming"]["outputs"]["output"]
    assert streaming["reference_positive_share"] == pytest.approx(np.mean(probabilities > 0.5))


def test_sequence_model_dynamic_range_is_compared_on_every_output_and_streaming(silero_vad_sequence, speech, tmp_path):
    chunks, sequence = speech
    names = {"input": "input", "extra": {}, "initial": {"h": (1, 1, 128), "c": (1, 1, 128)}}
    pairs = [("h", "hn"), ("c", "cn")]
    reference_probs, states = run_streaming(_session(silero_vad_sequence), chunks, sequence, names, pairs)
    data = tmp_path / "sequence.npz"
    np.savez(data, input=chunks, h=np.stack([s["h"][0] for s in states]), c=np.stack([s["c"][0] for s in states]), sequence=sequence)
    # The conversion gate (the format table's tolerances) covers every output by its kind: the speech probability
    # (one value per sample: cosine says nothing, its SQNR does) and the state outputs; dynamic-range quantization
    # moves them too far, so validation refuses the model and names each output, its kind and figure.
    floor = FORMATS["onnx"].tolerance("dynamic").min_sqnr_db
    with pytest.raises(ConversionError, match=rf"the dynamic onnx model does not behave like .* on output speech_probs \(values\): "
                                              rf"SQNR [\d.]+ dB, needs >= {floor:g} dB; on output hn \(state\): mean cosine"):
        convert(silero_vad_sequence, tmp_path / "vad_dynamic.onnx", to="onnx", mode="dynamic", validation_data=data)
    assert not (tmp_path / "vad_dynamic.onnx").exists()
    # Without validation data the artifact is written (validation skipped) and the bench measures every output.
    artifact = convert(silero_vad_sequence, tmp_path / "vad_dynamic.onnx", to="onnx", mode="dynamic")
    assert artifact.manifest.validation["status"] == "skipped"
    result = edge_sdk.benchmark([artifact.path], data, reference=silero_vad_sequence, settings=BenchSettings(runs=3, warmup=1))[0]
    assert result.status == "ok", result.error
    outputs = result.reference["outputs"]
    assert set(outputs) == {"speech_probs", "hn", "cn"}  # every output compared
    assert outputs["speech_probs"]["kind"] == "values" and outputs["hn"]["kind"] == "state"
    assert result.reference["fidelity"]["top1_agreement"] is None
    # Per step (each model gets the reference's recorded state), recomputed with bare ORT.
    session = _session(artifact.path)
    per_step = np.array([session.run(None, {"input": chunk[None], "h": state["h"], "c": state["c"]})[0][0] for chunk, state in zip(chunks, states)])
    assert outputs["speech_probs"]["decision_agreement"] == pytest.approx(np.mean((per_step > 0.5) == (reference_probs > 0.5)))
    assert outputs["speech_probs"]["decision_agreement"] < 1.0  # not reported perfect
    # Streaming (each carries its own state), recomputed with bare ORT.
    artifact_probs, _ = run_streaming(session, chunks, sequence, names, pairs)
    streaming = result.reference["streaming"]["outputs"]["speech_probs"]
    assert streaming["decision_agreement"] == pytest.approx(np.mean((artifact_probs > 0.5) == (reference_probs > 0.5)))
    assert streaming["decision_agreement"] < outputs["speech_probs"]["decision_agreement"]
