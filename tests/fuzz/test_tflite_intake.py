"""Mutated and truncated .tflite flatbuffers through detect_model_kind, analyze_tflite and inspect_artifact.

Pure-Python intake only (the flatbuffers schema reader): loading into the native TFLite interpreter is covered by
the crash-isolation tests, which run it in a child process.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_sdk.inspection import analyze_tflite, inspect_artifact
from edge_sdk.models import detect_model_kind
from tests.conftest import SHARED_DATA
from tests.fuzz.harness import fuzz_settings, mutate, mutations, sdk_outcome

SEEDS = sorted((SHARED_DATA / "tflite_micro").glob("**/*.tflite"))
pytestmark = pytest.mark.skipif(not SEEDS, reason=f"no .tflite seeds under {SHARED_DATA / 'tflite_micro'}")
SEED_BYTES = {path.name: path.read_bytes() for path in SEEDS}


def test_the_seeds_parse():
    for name, data in SEED_BYTES.items():
        assert analyze_tflite(data, name)["op_count"] > 0


@fuzz_settings(60)
@given(seed=st.sampled_from(sorted(SEED_BYTES)), edits=mutations)
def test_mutated_flatbuffers_parse_or_raise_an_sdk_error(seed, edits):
    data = mutate(SEED_BYTES[seed], edits)
    outcome = sdk_outcome(analyze_tflite, data, seed)
    if isinstance(outcome, dict):
        assert outcome["op_count"] >= 0 and 0.0 <= outcome["integer_op_share"] <= 1.0


@fuzz_settings(15)
@given(seed=st.sampled_from(sorted(SEED_BYTES)), edits=mutations)
def test_mutated_files_through_inspect(seed, edits):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / seed
        path.write_bytes(mutate(SEED_BYTES[seed], edits))
        outcome = sdk_outcome(detect_model_kind, path)
        if outcome == "tflite":
            sdk_outcome(inspect_artifact, path)


def test_every_truncation_of_a_small_model():
    data = SEED_BYTES["hello_world_int8.tflite"] if "hello_world_int8.tflite" in SEED_BYTES else next(iter(SEED_BYTES.values()))
    for length in range(0, len(data), 5):
        sdk_outcome(analyze_tflite, data[:length], f"truncated to {length} bytes")
