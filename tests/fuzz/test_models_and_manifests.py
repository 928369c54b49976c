"""Model descriptions and manifests, fuzzed: `.h5` files whose `model_config` is edited anywhere (edge_sdk.model_safety
must end in a pass or a ModelFileError, and must refuse a code-carrying layer wherever it is put), pipeline YAML
whose model names, paths and teachers are hostile, and manifests mutated as documents and as text beside a real
artifact (load_artifact and inspect end in a result or an EdgeSdkError)."""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
from pathlib import Path

import h5py
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from edge_sdk.errors import ModelFileError
from edge_sdk.model_safety import check_h5_model
from edge_sdk.pipeline_config import load_config
from tests.conftest import SHARED_DATA
from tests.fuzz.harness import edited, fuzz_settings, mutate, mutations, node_paths, replaced, sdk_outcome
from tests.fuzz.test_config_and_results import CONFIG_SEED, _config_folder

H5_CONFIG_SEED = {
    "class_name": "Functional",
    "config": {
        "name": "model", "trainable": True,
        "layers": [
            {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4], "dtype": "float32", "name": "input_1"}, "name": "input_1", "inbound_nodes": []},
            {"class_name": "Dense", "config": {"name": "dense", "units": 3, "activation": "relu"}, "name": "dense", "inbound_nodes": [[["input_1", 0, 0, {}]]]},
            {"class_name": "Sequential", "config": {"name": "inner", "layers": [{"class_name": "Dropout", "config": {"name": "drop", "rate": 0.1}}]}, "name": "inner", "inbound_nodes": [[["dense", 0, 0, {}]]]},
        ],
        "input_layers": [["input_1", 0, 0]], "output_layers": [["inner", 0, 0]],
    },
}
LAMBDA_LAYER = {"class_name": "Lambda", "config": {"name": "evil", "function": ["4wEAAAAAAAAA", None, None], "function_type": "lambda"}, "name": "evil"}


def write_h5(path: Path, config: object, keras_version: str = "2.21.0") -> None:
    with h5py.File(path, "w") as handle:
        handle.attrs["keras_version"] = keras_version
        handle.attrs["backend"] = "tensorflow"
        handle.attrs["model_config"] = json.dumps(config)


HANGING_H5_EDITS = [("flip", 753872839, 1), ("word", 309776128, -1), ("byte", 340127141, 82), ("insert", 278921257, b"\xaa")]


def test_an_h5_that_hangs_the_hdf5_library_is_refused_in_time(tmp_path, monkeypatch):
    """Found by this file's fuzzing: these edits of the seed send h5py into a loop no signal interrupts."""
    import time

    from edge_sdk import model_safety

    seed = tmp_path / "seed.h5"
    write_h5(seed, H5_CONFIG_SEED)
    hanging = tmp_path / "hangs.h5"
    hanging.write_bytes(mutate(seed.read_bytes(), HANGING_H5_EDITS))
    monkeypatch.setattr(model_safety, "H5_READ_TIMEOUT_S", 5.0)
    started = time.monotonic()
    with pytest.raises(ModelFileError, match=r"hangs.h5: reading its HDF5 metadata did not finish within 5 s; the file is damaged"):
        check_h5_model(hanging)
    assert time.monotonic() - started < 30


def test_the_h5_seed_passes_and_its_lambda_variant_is_refused(tmp_path):
    write_h5(tmp_path / "m.h5", H5_CONFIG_SEED)
    check_h5_model(tmp_path / "m.h5")
    with_lambda = copy.deepcopy(H5_CONFIG_SEED)
    with_lambda["config"]["layers"].append(LAMBDA_LAYER)
    write_h5(tmp_path / "l.h5", with_lambda)
    with pytest.raises(ModelFileError, match="layer 'evil' \\(Lambda\\) carries Python code"):
        check_h5_model(tmp_path / "l.h5")


@fuzz_settings(25)  # each check reads the file in a child process (edge_sdk.model_safety): fewer, slower examples
@given(data=st.data())
def test_edited_h5_configs_pass_or_raise_and_a_planted_lambda_is_always_refused(data):
    document = edited(data, H5_CONFIG_SEED)
    with tempfile.TemporaryDirectory() as folder:
        plain, planted = Path(folder) / "plain.h5", Path(folder) / "planted.h5"
        write_h5(plain, document, data.draw(st.sampled_from(["2.21.0", "2.15.0", "3.15.1", "", "x"])))
        sdk_outcome(check_h5_model, plain)
        where = data.draw(st.sampled_from(node_paths(document)))
        write_h5(planted, replaced(document, where, copy.deepcopy(LAMBDA_LAYER)))
        assert isinstance(sdk_outcome(check_h5_model, planted), ModelFileError), f"a Lambda planted at {where} was not refused"


@fuzz_settings(15)
@given(edits=mutations)
def test_mutated_h5_files_pass_or_raise(edits):
    with tempfile.TemporaryDirectory() as folder:
        seed = Path(folder) / "seed.h5"
        write_h5(seed, H5_CONFIG_SEED)
        mutated = Path(folder) / "mutated.h5"
        mutated.write_bytes(mutate(seed.read_bytes(), edits))
        sdk_outcome(check_h5_model, mutated)


hostile_names = st.one_of(st.sampled_from(["../../x", "..", ".", "a/b", "/abs", "a\x00b", "", " ", "-rf", "cnn", "ok.name", "x" * 300, "é"]), st.text(max_size=8), st.integers(-3, 3))
hostile_paths = st.sampled_from(["student.h5", "../student.h5", "/dev/null", "/etc/passwd", "", ".", "student.h5/..", "missing.h5", "\x00"])


@fuzz_settings(80)
@given(names=st.lists(hostile_names, min_size=1, max_size=3, unique_by=str), data=st.data())
def test_hostile_model_names_paths_and_teachers_never_escape_the_output(names, data):
    document = copy.deepcopy(CONFIG_SEED)
    document["models"] = {}
    for name in names:
        entry = {"path": data.draw(hostile_paths)}
        if data.draw(st.booleans()):
            entry["teacher"] = data.draw(st.one_of(st.sampled_from(names), hostile_names))
        document["models"][name] = entry
    with tempfile.TemporaryDirectory() as folder:
        _config_folder(Path(folder))
        (Path(folder) / "edge.yaml").write_text(yaml.safe_dump(document, allow_unicode=True))
        config = sdk_outcome(load_config, Path(folder) / "edge.yaml")
        if isinstance(config, Exception):
            return
        artifacts = (config.output / "artifacts").resolve()
        for model in config.models:
            assert (artifacts / f"{model.name}_fp32.tflite").resolve().parent == artifacts, model.name
            chain, teacher = {model.name}, model.teacher
            while teacher is not None:  # teachers end: no loop got through
                assert teacher not in chain
                chain.add(teacher)
                teacher = next(m.teacher for m in config.models if m.name == teacher)


def _artifact_folder(folder: Path) -> Path:
    source = SHARED_DATA / "tflite_micro" / "hello_world" / "hello_world_float.tflite"
    if not source.exists():
        pytest.skip(f"shared data {source} is not present")
    artifact = folder / "m.tflite"
    shutil.copyfile(source, artifact)
    return artifact


MANIFEST_SEED = {
    "manifest_version": 1, "format": "tflite", "mode": "fp32", "sha256": "0" * 64, "size_bytes": 3164,
    "source": {"path": "m.keras", "sha256": "1" * 64, "kind": "keras"}, "preprocess": {"scale": 0.5, "layout": "NHWC"},
    "signature": {"inputs": [{"name": "x", "shape": [1, 1], "dtype": "float32"}], "outputs": [{"name": "y", "shape": [1, 1], "dtype": "float32"}]},
    "validation": {"status": "passed", "cosine_mean": 1.0, "top1_agreement": 1.0}, "ops": {"FULLY_CONNECTED": 3}, "integer_op_share": 0.0,
    "external_data": [], "conversion_seconds": 1.0,
}


def _load_and_inspect(artifact: Path) -> None:
    from edge_sdk.api import inspect_artifact
    from edge_sdk.artifact import load_artifact

    load_artifact(artifact, verify=False)  # the seed's sha256 is made up: reach what comes after the check
    inspect_artifact(artifact)


@fuzz_settings(60)
@given(data=st.data())
def test_edited_manifests_load_or_raise(data):
    document = edited(data, MANIFEST_SEED)
    with tempfile.TemporaryDirectory() as folder:
        artifact = _artifact_folder(Path(folder))
        (Path(folder) / "m.tflite.manifest.json").write_text(json.dumps(document))
        sdk_outcome(_load_and_inspect, artifact)


@fuzz_settings(40)
@given(edits=mutations)
def test_mutated_manifest_text_loads_or_raises(edits):
    with tempfile.TemporaryDirectory() as folder:
        artifact = _artifact_folder(Path(folder))
        (Path(folder) / "m.tflite.manifest.json").write_bytes(mutate(json.dumps(MANIFEST_SEED).encode(), edits))
        sdk_outcome(_load_and_inspect, artifact)
