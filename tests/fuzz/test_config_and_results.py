"""Pipeline YAML files and results JSON files, mutated as text and as documents (any node replaced or removed).

Config: load_config must end in a PipelineConfig or a UsageError. Results: load_results must end in a document
or a DataError, and a document it accepts must render as Markdown and HTML (the schema allows what reports draw).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import yaml
from hypothesis import given
from hypothesis import strategies as st

from edge_sdk.pipeline_config import load_config
from edge_sdk.report import render_report
from edge_sdk.results import load_results
from tests.fuzz.harness import edited, fuzz_settings, mutate, mutations, sdk_outcome

CORPUS = Path(__file__).parent / "corpus"
RESULTS_SEED = json.loads((CORPUS / "results.json").read_text())
CONFIG_SEED = {
    "version": 1,
    "output": "out",
    "data": {"evaluation": "test.npz", "calibration": "train.npz", "label_key": "y", "max_samples": 20},
    "preprocess": {"scale": 0.0625, "layout": "NHWC"},
    "models": {"student": {"path": "student.h5", "formats": {"tflite": ["fp32", "int8"]}, "teacher": "teacher"}, "teacher": {"path": "teacher.h5"}},
    "formats": {"tflite": ["fp32"], "onnx": ["fp32"]},
    "targets": {"desktop": {"kind": "desktop"}, "pi": {"kind": "ssh", "host": "pi@raspberrypi.local", "port": 22, "profile": "raspberry-pi-4"}},
    "bench": {"runs": 10, "warmup": 2, "threads": 1},
    "accuracy_budget": {"max_drop_points": 1.0},
}


def _config_folder(folder: Path) -> None:
    np.savez(folder / "test.npz", x=np.zeros((2, 8, 8), np.float32), y=np.zeros(2, np.int64))
    np.savez(folder / "train.npz", x=np.zeros((2, 8, 8), np.float32), y=np.zeros(2, np.int64))
    for name in ("student.h5", "teacher.h5"):
        (folder / name).write_bytes(b"not read by load_config")


def test_the_config_seed_loads(tmp_path):
    _config_folder(tmp_path)
    (tmp_path / "edge.yaml").write_text(yaml.safe_dump(CONFIG_SEED))
    assert [model.name for model in load_config(tmp_path / "edge.yaml").models] == ["student", "teacher"]


config_edits = st.data()


@fuzz_settings(120)
@given(data=st.data())
def test_edited_configs_load_or_raise_a_usage_error(data):
    document = edited(data, CONFIG_SEED)
    with tempfile.TemporaryDirectory() as folder:
        _config_folder(Path(folder))
        (Path(folder) / "edge.yaml").write_text(yaml.safe_dump(document, allow_unicode=True))
        sdk_outcome(load_config, Path(folder) / "edge.yaml")


@fuzz_settings(60)
@given(edits=mutations)
def test_mutated_yaml_text_loads_or_raises_a_usage_error(edits):
    text = yaml.safe_dump(CONFIG_SEED).encode()
    with tempfile.TemporaryDirectory() as folder:
        _config_folder(Path(folder))
        (Path(folder) / "edge.yaml").write_bytes(mutate(text, edits))
        sdk_outcome(load_config, Path(folder) / "edge.yaml")


def _load_and_render(path: Path, html: bool) -> None:
    load_results(path)
    render_report([path], "md")
    if html:
        render_report([path], "html")


@fuzz_settings(80)
@given(data=st.data())
def test_edited_results_load_and_render_or_raise_a_data_error(data):
    document = edited(data, RESULTS_SEED)
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "results.json").write_text(json.dumps(document))
        # HTML draws matplotlib plots (slow); Markdown covers the same report model on every example.
        sdk_outcome(_load_and_render, Path(folder) / "results.json", data.draw(st.integers(0, 7)) == 0)


@fuzz_settings(40)
@given(edits=mutations)
def test_mutated_results_text_loads_or_raises_a_data_error(edits):
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "results.json").write_bytes(mutate((CORPUS / "results.json").read_bytes(), edits))
        sdk_outcome(_load_and_render, Path(folder) / "results.json", False)


def test_deeply_nested_json_and_yaml_are_refused(tmp_path):
    (tmp_path / "results.json").write_text("[" * 100_000 + "]" * 100_000)
    sdk_outcome(load_results, tmp_path / "results.json")
    (tmp_path / "edge.yaml").write_text("[" * 100_000 + "]" * 100_000)
    sdk_outcome(load_config, tmp_path / "edge.yaml")
