"""The typed manifest: validation without jsonschema agrees with the JSON Schema, versions upgrade, bytes verify."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from edge_sdk.artifact import load_artifact
from edge_sdk.errors import ModelFileError
from edge_sdk.fileio import sha256_of
from edge_sdk.manifest import MANIFEST_VERSION, Manifest, TensorSpec, manifest_path_for, manifest_problems, read_manifest, write_manifest

SCHEMA = Path(__file__).resolve().parents[1] / "edge_sdk" / "schemas" / "manifest.schema.json"


def _manifest(artifact: Path) -> Manifest:
    return Manifest(
        format="tflite", mode="int8", sha256=sha256_of(artifact), size_bytes=artifact.stat().st_size,
        inputs=[TensorSpec("x", "int8", [None, 8, 8, 1], 0, {"scale": 0.0039, "zero_point": -128})],
        outputs=[TensorSpec("y", "int8", [None, 10], 0, {"scale": 0.0039, "zero_point": -128}, "class_scores")],
        source={"path": "m.keras", "kind": "keras", "sha256": "ab" * 32}, options={"mode": "int8"}, toolchain={"numpy": "2"},
    )


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "m.tflite"
    path.write_bytes(b"\x00\x00\x00\x00TFL3" + bytes(range(200)))
    write_manifest(path, _manifest(path))
    return path


def test_round_trip_and_verification(artifact: Path) -> None:
    loaded = load_artifact(artifact)
    assert loaded.verified is True
    assert loaded.manifest is not None and loaded.manifest.outputs[0].kind == "class_scores"
    assert loaded.manifest.inputs[0].shape == [None, 8, 8, 1]
    assert json.loads(manifest_path_for(artifact).read_text())["manifest_version"] == MANIFEST_VERSION


def test_swapped_artifact_is_refused_unless_unverified(artifact: Path) -> None:
    artifact.write_bytes(b"\x00\x00\x00\x00TFL3" + bytes(300))  # another model behind the same manifest
    with pytest.raises(ModelFileError, match="does not match its manifest") as caught:
        load_artifact(artifact)
    assert caught.value.exit_code == 3 and "int8" in str(caught.value)
    unverified = load_artifact(artifact, verify=False)
    assert unverified.verified is False and "does not match" in (unverified.verification_problem or "")


def test_version_1_upgrades(tmp_path: Path) -> None:
    path = tmp_path / "old.tflite"
    path.write_bytes(b"\x00\x00\x00\x00TFL3old")
    v1 = {
        "manifest_version": 1, "format": "tflite", "mode": "int8", "sha256": sha256_of(path), "size_bytes": 11,
        "signature": {"inputs": [{"name": "keras_in", "shape": [None, 8], "dtype": "float32"}], "outputs": []},
        "io": {"inputs": [{"name": "serving_x", "shape": [-1, 8], "dtype": "int8", "quantization": {"scale": 0.5, "zero_point": 0}}],
               "outputs": [{"name": "out", "shape": [1, 3], "dtype": "int8"}]},
        "weight_bytes": 12, "ops": {"FULLY_CONNECTED": 1}, "integer_op_share": 1.0, "preprocess": {"scale": 0.5},
    }
    manifest_path_for(path).write_text(json.dumps(v1))
    manifest = read_manifest(path)
    assert manifest is not None and manifest.manifest_version == MANIFEST_VERSION
    assert manifest.inputs[0].name == "serving_x" and manifest.inputs[0].shape == [None, 8]  # the artifact's I/O, not the source's
    assert manifest.inputs[0].quantization == {"scale": 0.5, "zero_point": 0}
    assert manifest.details["weight_bytes"] == 12 and manifest.integer_op_share == 1.0
    assert load_artifact(path).verified is True


@pytest.mark.parametrize("content, message", [
    ("not json{", "not valid JSON"),
    ("[1, 2]", "not a JSON object"),
    (json.dumps({"manifest_version": 99, "format": "tflite"}), "manifest version 99"),
    (json.dumps({"manifest_version": "two"}), "no valid manifest_version"),
    (json.dumps({"manifest_version": 2, "format": "tflite", "mode": "int8"}), "missing 'sha256'"),
])
def test_garbage_and_newer_manifests_are_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "m.tflite"
    path.write_bytes(b"\x00\x00\x00\x00TFL3")
    manifest_path_for(path).write_text(content)
    with pytest.raises(ModelFileError, match=message) as caught:
        load_artifact(path)
    assert caught.value.exit_code == 3


def _examples(artifact: Path) -> list[tuple[dict, bool]]:
    valid = _manifest(artifact).to_dict()
    broken = []
    for change in (
        lambda m: m.pop("sha256"), lambda m: m.update(size_bytes="12"), lambda m: m.update(size_bytes=True),
        lambda m: m["inputs"][0].update(shape=[1, "x"]), lambda m: m["outputs"][0].update(kind="banana"),
        lambda m: m["inputs"][0].pop("dtype"), lambda m: m.update(preprocess=[1]), lambda m: m.update(state_pairs=[["x"]]),
        lambda m: m.update(integer_op_share="all"), lambda m: m["inputs"][0].update(batch_axis=-1),
        lambda m: m.update(warnings="one"), lambda m: m.update(warnings=[1]), lambda m: m.update(validation={"status": "maybe"}),
    ):
        example = copy.deepcopy(valid)
        change(example)
        broken.append((example, False))
    with_state = copy.deepcopy(valid)
    with_state["state_pairs"] = [["x", "y"]]
    # An artifact kept by `convert --keep-failed`: validation status "failed"; a degenerate-calibration warning.
    kept_failed = copy.deepcopy(valid)
    kept_failed.update(validation={"status": "failed", "failures": ["y (values): SQNR 3.0 dB, needs >= 10 dB"]}, warnings=["calibration data is all zero"])
    return [(valid, True), (with_state, True), (kept_failed, True), *broken]


def test_dependency_free_check_agrees_with_the_json_schema(artifact: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    for example, expected in _examples(artifact):
        assert (not manifest_problems(example)) is expected, example
        assert validator.is_valid(example) is expected, example
