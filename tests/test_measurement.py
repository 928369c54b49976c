"""edge_sdk/measurement.py: one measurement group for bench, run, the slim runner and the pipeline, and its JSON form."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge_sdk.errors import UsageError
from edge_sdk.measurement import (SETTINGS_VERSION, add_measurement_args, check_settings, settings_from_args, settings_from_mapping,
                                  settings_json_schema, settings_to_json)
from tests.conftest import REPO

SCHEMA_FILE = REPO / "edge_sdk" / "schemas" / "settings.schema.json"

VALID = [
    {"settings_version": 1},
    {"settings_version": 1, "runs": 3, "warmup": 0, "target": "raspberry-pi-4"},
    {"settings_version": 1, "runs": 3.0, "max_samples": None, "seed": 7, "latency_target": 0.01, "time_budget_s": 2, "cold_start": True, "max_drop_points": 0},
    {"settings_version": 1, "runner": {}},
    {"settings_version": 1, "runner": {"threads": None, "xnnpack": False, "kernels": "reference", "reset_state": True, "providers": ["CUDA", "CPU"], "graph_optimization": "basic"}},
    {"settings_version": 1, "runner": {"threads": 4, "providers": []}},
    {"settings_version": 1, "batch_axes": {"state": 1, "sr": None}, "runner": {"input_shapes": {"x": [1, 3, 48, 192], "": [1, 4]}}},
]
# (document, the key the message must name)
INVALID = [
    ({}, "settings_version"),
    ([], "JSON object"),
    ("runs", "JSON object"),
    ({"settings_version": 2}, "settings_version"),
    ({"settings_version": 1, "runs": 0}, "runs"),
    ({"settings_version": 1, "runs": 2.5}, "runs"),
    ({"settings_version": 1, "runs": "100"}, "runs"),
    ({"settings_version": 1, "runs": True}, "runs"),
    ({"settings_version": 1, "runs": None}, "runs"),
    ({"settings_version": 1, "warmup": -1}, "warmup"),
    ({"settings_version": 1, "seed": -3}, "seed"),
    ({"settings_version": 1, "max_samples": 0}, "max_samples"),
    ({"settings_version": 1, "target": ""}, "target"),
    ({"settings_version": 1, "target": 4}, "target"),
    ({"settings_version": 1, "latency_target": 0}, "latency_target"),
    ({"settings_version": 1, "cold_start": "yes"}, "cold_start"),
    ({"settings_version": 1, "runz": 3}, "runz"),
    ({"settings_version": 1, "runner": []}, "runner"),
    ({"settings_version": 1, "runner": {"threads": 0}}, "runner.threads"),
    ({"settings_version": 1, "runner": {"xnnpack": 1}}, "runner.xnnpack"),
    ({"settings_version": 1, "runner": {"kernels": "fast"}}, "runner.kernels"),
    ({"settings_version": 1, "runner": {"providers": "CPU"}}, "runner.providers"),
    ({"settings_version": 1, "runner": {"providers": ["CPU", 3]}}, "runner.providers[1]"),
    ({"settings_version": 1, "runner": {"graph_optimization": "max"}}, "runner.graph_optimization"),
    ({"settings_version": 1, "runner": {"delegate": "gpu"}}, "runner.delegate"),
    ({"settings_version": 1, "batch_axes": [1]}, "batch_axes"),
    ({"settings_version": 1, "batch_axes": {"state": -1}}, "batch_axes.state"),
    ({"settings_version": 1, "batch_axes": {"state": "1"}}, "batch_axes.state"),
    ({"settings_version": 1, "runner": {"input_shapes": {"x": [1, 0]}}}, "runner.input_shapes.x[1]"),
    ({"settings_version": 1, "runner": {"input_shapes": {"x": "1,3"}}}, "runner.input_shapes.x"),
]


def test_the_shipped_json_schema_is_the_table():
    assert json.loads(SCHEMA_FILE.read_text()) == settings_json_schema()


@pytest.mark.parametrize("document", VALID)
def test_valid_settings_pass_both_checks(document):
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text())).validate(document)
    check_settings(document, "s.json")


@pytest.mark.parametrize(("document", "key"), INVALID)
def test_invalid_settings_fail_both_checks_and_the_message_names_the_key(document, key):
    jsonschema = pytest.importorskip("jsonschema")
    assert list(jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text())).iter_errors(document)), "the JSON Schema accepts it"
    with pytest.raises(UsageError, match="s.json") as raised:
        check_settings(document, "s.json")
    assert key in raised.value.message and raised.value.exit_code == 2


def test_json_round_trip_keeps_every_measured_setting():
    settings = settings_from_mapping({"settings_version": SETTINGS_VERSION, "runs": 7, "warmup": 2, "target": "jetson-orin-nano", "seed": 3,
                                      "latency_target": 0.02, "runner": {"threads": 2, "xnnpack": False, "kernels": "reference", "providers": ["CPU"]}})
    document = json.loads(json.dumps(settings_to_json(settings)))
    check_settings(document)
    again = settings_from_mapping(document)
    assert again.to_dict() == settings.to_dict() and again.target == "jetson-orin-nano"


def _parse(argv: list[str], with_settings_file: bool = False) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_measurement_args(parser)
    if with_settings_file:
        parser.add_argument("--settings", type=Path)
    return parser.parse_args(argv)


def test_defaults_come_from_bench_settings_and_flags_parse():
    from edge_sdk.bench import BenchSettings

    assert settings_from_args(_parse([])).to_dict() == BenchSettings().to_dict()
    settings = settings_from_args(_parse(["--runs", "5", "--threads", "2", "--no-xnnpack", "--providers", "CUDA, CPU", "--kernels", "reference",
                                          "--reset-state", "--graph-optimization", "basic", "--target", "raspberry-pi-4"]), seed=9)
    assert (settings.runs, settings.warmup, settings.seed, settings.target) == (5, 10, 9, "raspberry-pi-4")
    assert settings.runner.to_dict() == {"threads": 2, "xnnpack": False, "kernels": "reference", "reset_state": True,
                                         "providers": ["CUDA", "CPU"], "graph_optimization": "basic"}


def test_flags_override_a_settings_file(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"settings_version": 1, "runs": 9, "warmup": 4, "runner": {"threads": 3, "kernels": "reference"}}))
    settings = settings_from_args(_parse(["--settings", str(path), "--runs", "2", "--threads", "1"], with_settings_file=True))
    assert (settings.runs, settings.warmup, settings.runner.threads, settings.runner.kernels) == (2, 4, 1, "reference")


def test_a_bad_flag_value_names_the_setting():
    with pytest.raises(UsageError, match="'runs' must be at least 1"):
        settings_from_args(_parse(["--runs", "0"]))


@pytest.mark.parametrize(("content", "named"), [("{not json", "not JSON"), ('{"settings_version": 1, "warmup": -2}', "'warmup'"),
                                                 ('{"settings_version": 1, "runner": {"threads": "four"}}', "'runner.threads'")])
def test_the_runner_refuses_bad_settings_json_with_exit_2_naming_the_key(tmp_path, content, named):
    settings = tmp_path / "settings.json"
    settings.write_text(content)
    result = subprocess.run([sys.executable, "-m", "edge_sdk.runner", "model.tflite", "--inputs", "in.npz", "--output", str(tmp_path / "r.json"),
                             "--settings", str(settings)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 2, result.stderr
    assert named in result.stderr and str(settings) in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "r.json").exists()


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings} | {
        action.dest for action in parser._actions if not action.option_strings}


def test_edge_sdk_run_and_the_runner_module_take_the_same_options():
    from edge_sdk.cli import build_parser
    from edge_sdk.runner import build_parser as runner_parser

    subparsers = next(action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction))
    run, runner = _option_strings(subparsers.choices["run"]), _option_strings(runner_parser())
    assert run == runner
    assert {"-o", "--output", "--settings", "--runs", "--threads", "--target"} <= runner


def test_bench_takes_the_measurement_group():
    from edge_sdk.cli import build_parser

    subparsers = next(action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction))
    group = argparse.ArgumentParser()
    add_measurement_args(group)
    assert _option_strings(group) - {"help"} <= _option_strings(subparsers.choices["bench"])


def test_host_only_values_are_checked_on_the_host_too():
    """What the device would refuse in settings.json is refused on the host first (exit 2, naming the key)."""
    with pytest.raises(UsageError, match="'latency_target' must be more than 0"):
        settings_from_args(_parse([]), latency_target=0.0)
    assert settings_from_args(_parse([]), seed=4, max_samples=None, timeout_s=30.0, memory_limit_bytes=None).timeout_s == 30.0


def test_the_io_model_travels_in_the_settings_json():
    """--batch-axis and --input-shape (issue 13) reach a device's runner in settings.json; output kinds and state
    pairs stay on the host, where fidelity is computed."""
    from edge_sdk.fidelity import parse_output_kinds

    parser = argparse.ArgumentParser()
    add_measurement_args(parser, io=True)
    settings = settings_from_args(parser.parse_args(["--batch-axis", "state:1", "--batch-axis", "sr:none", "--input-shape", "x:1,3,48,192"]),
                                  output_kinds=parse_output_kinds(["p:values"]), state_pairs=[("state", "stateN")])
    assert settings.batch_axes == {"state": 1, "sr": None} and settings.runner.input_shapes == {"x": [1, 3, 48, 192]}
    document = json.loads(json.dumps(settings_to_json(settings)))
    assert "output_kinds" not in document and "state_pairs" not in document
    again = settings_from_mapping(document)
    assert again.batch_axes == settings.batch_axes and again.runner.input_shapes == settings.runner.input_shapes
