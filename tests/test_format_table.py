"""edge_sdk/formats.py is the spine: every row resolves, mode names live only there, and a new row is seen by the
CLI, the pipeline's validation, `runner_for`, target profiles and `inspect` without touching them."""

import ast
import dataclasses
import json
import textwrap

import numpy as np
import pytest

from converters.base import Builder
from edge_sdk.errors import UsageError
from edge_sdk.formats import FORMATS, FormatSpec, Tolerance, resolve
from targets.runners import RUNNERS, runner_class
from tests.conftest import REPO

MODE_LITERALS = {"fp32", "fp16", "dynamic", "int8", "int16x8"}
PACKAGE_DIRS = ("edge_sdk", "converters", "targets")
# Where a mode literal is not a mode (or cannot import the table), and why.
LITERAL_EXCEPTIONS = {
    "edge_sdk/formats.py": "the format table itself",
    # Pushed alone to a device and run with its python3 (standard library only): it cannot import the table;
    # test_device_builder_modes_match_the_table keeps its copy in step.
    "targets/tensorrt_build.py": "device-side script",
}
NAMES_THAT_ARE_DTYPES = {("edge_sdk/loaders/onnx_intake.py", "ELEMENT_TYPES")}  # numpy dtype names, not modes


@pytest.mark.parametrize("name", list(FORMATS))
def test_every_row_resolves(name):
    spec = FORMATS[name]
    assert spec.suffixes and all(suffix.startswith(".") for suffix in spec.suffixes)
    assert isinstance(spec.converter().BUILDER, Builder)
    options_type = spec.options_type()
    assert dataclasses.is_dataclass(options_type) and "mode" in {f.name for f in dataclasses.fields(options_type)}
    group = spec.argument_group()
    for mode in spec.modes:
        options = options_type(mode=mode)
        assert isinstance(spec.tolerance(mode), Tolerance)
        assert group.to_flags(options)[:2] == ["--quant", mode]
    assert set(spec.tolerances) == set(spec.modes) and set(spec.calibrated_modes) <= set(spec.modes)
    assert spec.runner in RUNNERS and runner_class(spec.runner).__name__.endswith("Runner")
    assert spec.source_kinds
    if spec.inspector:
        assert callable(resolve(spec.inspector))


@pytest.mark.parametrize("name", list(FORMATS))
def test_argument_group_writes_back_what_it_parses(name):
    """parse(to_flags(options)) gives the options back (Polygraphy's add_to_script idea)."""
    from converters.options import options_from_settings
    from edge_sdk.cli import build_parser

    spec = FORMATS[name]
    non_default = {"tflite": {"allow_float_fallback": True}, "onnx": {"per_channel": False, "quant_types": "u8s8", "exclude_nodes": ["a", "b"]},
                   "tensorrt": {"workspace_mb": 64, "host": "ssh://u@jetson", "fetch_engine": True}}.get(name, {})
    options = spec.options_type()(mode=spec.modes[-1], **non_default)
    args = build_parser().parse_args(["convert", "model.onnx", "-o", f"x{spec.suffix}", "--to", name, *spec.argument_group().to_flags(options)])
    rebuilt, _ = options_from_settings(name, {"mode": args.quant, **spec.argument_group().parse(args)})
    assert rebuilt == options


def _package_files():
    for folder in PACKAGE_DIRS:
        yield from sorted((REPO / folder).rglob("*.py"))


def _docstring_nodes(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                yield first.value


def test_no_mode_literal_outside_the_format_table():
    found = []
    for path in _package_files():
        relative = path.relative_to(REPO).as_posix()
        if relative in LITERAL_EXCEPTIONS:
            continue
        tree = ast.parse(path.read_text(), relative)
        skipped = {id(node) for node in _docstring_nodes(tree)}
        for top in tree.body:
            names = {target.id for target in getattr(top, "targets", []) if isinstance(target, ast.Name)}
            if any((relative, name) in NAMES_THAT_ARE_DTYPES for name in names):
                skipped |= {id(node) for node in ast.walk(top)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in MODE_LITERALS and id(node) not in skipped:
                found.append(f"{relative}:{node.lineno}: {node.value!r}")
    assert not found, "mode literals outside edge_sdk/formats.py (use its constants or the row's fields):\n" + "\n".join(found)


def test_device_builder_modes_match_the_table():
    from targets import tensorrt_build

    assert tensorrt_build.MODES == FORMATS["tensorrt"].modes


DUMMY_MODULE = '''
"""A format made of one module (converter, options, flags, runner, inspector) for tests/test_format_table.py."""
import argparse
import json
from dataclasses import asdict, dataclass

import numpy as np

from converters.base import Builder
from edge_sdk.formats import FP32, FP16
from targets.runners.base import BaseRunner, IOSpec


@dataclass
class DummyOptions:
    mode: str = FP32
    level: int = 1


class DummyArguments:
    def add(self, parser):
        parser.add_argument_group("dummy (--to dummy)").add_argument("--dummy-level", type=int)

    def parse(self, args):
        return {} if args.dummy_level is None else {"level": args.dummy_level}

    def to_flags(self, options):
        return ["--quant", options.mode, "--dummy-level", str(options.level)]


class DummyBuilder(Builder):
    def load(self, conversion):
        conversion.shapes = [("x", [1, 4])]
        return None

    def build(self, conversion):
        conversion.staged.write_text(json.dumps({"scale": 2.0 if conversion.mode == FP32 else 1.5, "level": conversion.options.level}))

    def manifest(self, conversion, validation):
        return {"format": "dummy", "mode": conversion.mode, "options": asdict(conversion.options), "validation": validation}


BUILDER = DummyBuilder()


class DummyRunner(BaseRunner):
    runtime_name = "dummyrt"

    def activate_impl(self):
        self.scale = json.loads(self.path.read_text())["scale"]
        self.inputs = [IOSpec("x", (1, 4), np.dtype(np.float32))]
        self.outputs = [IOSpec("y", (1, 4), np.dtype(np.float32))]

    def infer_impl(self, inputs):
        return {"y": inputs["x"] * self.scale}


def inspect_dummy(path):
    return {"content": json.loads(path.read_text())}
'''


@pytest.fixture
def dummy_format(tmp_path, monkeypatch):
    (tmp_path / "dummy_format.py").write_text(textwrap.dedent(DUMMY_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    from edge_sdk.formats import FP16, FP32

    spec = FormatSpec("dummy", (".dummy",), ("dummyrt",), (FP32, FP16), False, "dummy_format", "dummy_format:DummyOptions", "dummy_format:DummyArguments",
                      tolerances={FP32: Tolerance(0.99), FP16: Tolerance(0.9)}, calibrated_modes=(FP16,), source_kinds=("keras",),
                      inspector="dummy_format:inspect_dummy")
    monkeypatch.setitem(FORMATS, "dummy", spec)
    monkeypatch.setitem(RUNNERS, "dummyrt", "dummy_format:DummyRunner")
    return spec


def test_a_new_row_is_seen_by_the_cli_pipeline_runner_for_profiles_and_inspect(dummy_format, tmp_path, capsys):
    from edge_sdk.cli import build_parser, main
    from edge_sdk.inspection import inspect_artifact
    from edge_sdk.pipeline_config import load_config
    from targets.profiles import TargetProfile
    from targets.runners import RUNNER_FOR_KIND, runner_for

    parser = build_parser()
    args = parser.parse_args(["convert", "m.keras", "--to", "dummy", "--dummy-level", "3", "-o", "m.dummy"])
    assert args.to == "dummy" and "dummy" in parser.format_help() + _convert_help(parser)

    # The CLI converts through the template with the row's builder and flags.
    source = tmp_path / "source.keras"
    source.write_bytes(b"not read by the dummy builder")
    output = tmp_path / "m.dummy"
    assert main(["convert", str(source), "--to", "dummy", "--dummy-level", "3", "-o", str(output), "--quiet"]) == 0
    assert json.loads(output.read_text())["level"] == 3
    assert json.loads((tmp_path / "m.dummy.manifest.json").read_text())["options"] == {"mode": "fp32", "level": 3}
    # A flag of another format is refused, naming the format it belongs to.
    assert main(["convert", str(source), "--to", "dummy", "--per-channel", "-o", str(tmp_path / "n.dummy")]) == 2
    assert "apply to --to onnx only, not dummy" in capsys.readouterr().err

    # runner_for picks the row's first runtime from the file's suffix; inspect uses the row's inspector.
    assert RUNNER_FOR_KIND["dummy"] == "dummyrt"
    with runner_for(output) as runner:
        assert np.allclose(runner.infer({"x": np.ones((1, 4), np.float32)})["y"], 2.0)
    assert inspect_artifact(output)["dummy"] == {"content": {"scale": 2.0, "level": 3}}
    profile = TargetProfile("box", "a box", "x86_64", ("dummy",), ("dummyrt",), "local")
    assert profile.runtime_for("dummy") == "dummyrt"

    # The pipeline file accepts the new format and its modes, and refuses a mode the row does not list.
    (tmp_path / "eval.npz").write_bytes(b"")
    config = tmp_path / "edge.yaml"
    config.write_text(f"data: {{evaluation: eval.npz}}\nmodels: {{m: {{path: {source.name}}}}}\nformats: {{dummy: [fp32]}}\n")
    assert load_config(config).models[0].formats == {"dummy": ["fp32"]}
    config.write_text(f"data: {{evaluation: eval.npz}}\nmodels: {{m: {{path: {source.name}}}}}\nformats: {{dummy: [int8]}}\n")
    with pytest.raises(UsageError, match=r"unknown mode\(s\) \['int8'\]"):
        load_config(config)


def _convert_help(parser):
    import argparse

    subparsers = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return subparsers.choices["convert"].format_help()


def test_a_new_row_validates_against_its_source_with_its_tolerance(dummy_format, tmp_path):
    """The template validates through the row's tolerance: the dummy fp16 'artifact' scales by 1.5, its source by 2."""
    import dummy_format as module

    from edge_sdk.api import convert

    class Validated(module.DummyBuilder):
        def artifact_runner(self, conversion):
            return module.DummyRunner(conversion.staged)

        def source_outputs(self, conversion, samples):
            return [np.concatenate([sample["x"] * 2.0 for sample in samples])]

    module.BUILDER = Validated()
    data = tmp_path / "calib.npz"
    np.savez(data, x=np.random.default_rng(0).random((8, 4), np.float32) + 0.1)
    fp32 = convert(tmp_path / "s.keras", tmp_path / "a.dummy", module.DummyOptions(mode="fp32"), data=_data(calibration=data))
    assert fp32.manifest.validation["status"] == "passed" and fp32.manifest.validation["min_cosine"] == 0.99
    fp16 = convert(tmp_path / "s.keras", tmp_path / "b.dummy", module.DummyOptions(mode="fp16"), data=_data(calibration=data))
    # Same direction: cosine 1 passes the cosine gate although the values differ (the row gives fp16 no atol).
    assert fp16.manifest.validation["status"] == "passed" and fp16.manifest.validation["max_abs_error"] > 0.04


def _data(**settings):
    from converters.options import DataSettings

    return DataSettings(**settings)


def test_a_keyword_of_another_format_is_refused_naming_its_format(tmp_path):
    from edge_sdk.api import convert

    with pytest.raises(UsageError, match="per_channel apply to --to onnx only, not tflite") as caught:
        convert(tmp_path / "m.keras", tmp_path / "m.tflite", to="tflite", per_channel=True)
    assert caught.value.exit_code == 2
    with pytest.raises(UsageError, match="unknown conversion setting"):
        convert(tmp_path / "m.keras", tmp_path / "m.tflite", to="tflite", bogus=1)
    assert list(tmp_path.iterdir()) == []


def test_a_pytorch_source_is_refused_by_formats_whose_row_does_not_take_it(tmp_path):
    from edge_sdk.api import convert

    for format_name, suffix in (("tensorrt", ".engine"),):  # tflite and onnx take PyTorch sources (issue 14)
        with pytest.raises(UsageError, match=f"converts with --to tflite or onnx, not {format_name}"):
            convert("my_package.models:build_net", tmp_path / f"m{suffix}", to=format_name)
    assert list(tmp_path.iterdir()) == []
