"""No pickle loading of untrusted files, and YAML through safe_load only: a scan of the source tree, and a .pt2
archive whose sample inputs carry a pickle payload.

The scan reads every .py file of the SDK, its targets, converters, tools and examples with `ast` (and Python code
kept in string constants, such as the cold-start child in edge_sdk/latency.py) and checks each loading call's
arguments.
"""

from __future__ import annotations

import ast
import pickle
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

SCANNED = ["edge_sdk", "targets", "converters", "tools", "examples"]
# Calls that unpickle whatever they are given, whatever their arguments.
ALWAYS_UNSAFE = {"pickle.load", "pickle.loads", "cPickle.load", "cPickle.loads", "joblib.load", "dill.load", "dill.loads",
                 "pandas.read_pickle", "pd.read_pickle", "shelve.open", "yaml.load", "yaml.unsafe_load", "yaml.full_load", "yaml.load_all",
                 "yaml.unsafe_load_all", "yaml.full_load_all", "marshal.loads", "marshal.load"}
# Pickle between this process and its own child (never a file a user gave): the isolation worker's request.
TRUSTED_IPC = {("edge_sdk/isolation.py", "pickle.load")}
# torch.export.load unpickles sample inputs (with a fallback to a full unpickle): only after refuse_pickles_in_pt2.
GUARDED = {"torch.export.load": "refuse_pickles_in_pt2"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def _keyword(call: ast.Call, name: str) -> object:
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value.value if isinstance(keyword.value, ast.Constant) else "<not a constant>"
    return "<missing>"


def _code_trees(path: Path) -> list[ast.AST]:
    tree = ast.parse(path.read_text(), str(path))
    trees: list[ast.AST] = [tree]
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and ".load" in node.value and "\n" in node.value:
            try:
                embedded = ast.parse(node.value)
            except SyntaxError:
                continue  # prose, not code
            ast.increment_lineno(embedded, node.lineno - 1)  # report lines of the file, not of the string
            trees.append(embedded)
    return trees


def unsafe_calls(path: Path) -> list[str]:
    """'file:line call(...)' for each loading call without its safe arguments."""
    problems = []
    for tree in _code_trees(path):
        functions = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for call in (node for node in ast.walk(tree) if isinstance(node, ast.Call)):
            name = _dotted(call.func)
            where = f"{path.relative_to(REPO)}:{call.lineno} {name}"
            if name in ("np.load", "numpy.load") and _keyword(call, "allow_pickle") is not False:
                problems.append(f"{where} without allow_pickle=False")
            elif name == "torch.load" and _keyword(call, "weights_only") is not True:
                problems.append(f"{where} without weights_only=True")
            elif name in ALWAYS_UNSAFE and (str(path.relative_to(REPO)), name) not in TRUSTED_IPC:
                problems.append(f"{where} unpickles (or constructs arbitrary objects)")
            elif name in GUARDED:
                enclosing = [f for f in functions if f.lineno <= call.lineno <= (f.end_lineno or f.lineno)]
                guarded = any(_dotted(inner.func).endswith(GUARDED[name]) for f in enclosing for inner in ast.walk(f) if isinstance(inner, ast.Call))
                if not guarded:
                    problems.append(f"{where} not preceded by {GUARDED[name]}(path)")
    return problems


def _sources() -> list[Path]:
    return [path for folder in SCANNED for path in sorted((REPO / folder).rglob("*.py")) if "__pycache__" not in path.parts]


def test_the_scan_sees_the_code():
    sources = _sources()
    assert len(sources) > 50 and REPO / "edge_sdk" / "data.py" in sources
    assert any("np.load" in path.read_text() for path in sources)  # the scan has calls to check


def test_the_scan_catches_unsafe_calls(tmp_path, monkeypatch):
    bad = tmp_path / "bad.py"
    bad.write_text("import numpy as np, pickle, torch, yaml\nnp.load(p)\ntorch.load(p)\npickle.loads(b)\nyaml.load(t)\ntorch.export.load(p)\n"
                   "CHILD = '''\nimport numpy as np\nwith np.load(f) as a:\n    pass\n'''\n")
    monkeypatch.setattr("tests.security.test_no_unsafe_loading.REPO", tmp_path)
    assert len(unsafe_calls(bad)) == 6


def test_no_loading_call_can_unpickle():
    problems = [problem for path in _sources() for problem in unsafe_calls(path)]
    assert not problems, "loading calls that could unpickle an untrusted file:\n" + "\n".join(problems)


def test_yaml_is_read_with_safe_load_only():
    readers = [f"{path.relative_to(REPO)}:{node.lineno} yaml.{node.attr}" for path in _sources() for tree in _code_trees(path)
               for node in ast.walk(tree) if isinstance(node, ast.Attribute) and _dotted(node.value) == "yaml" and "load" in node.attr]
    assert readers and all(reader.endswith("yaml.safe_load") for reader in readers), readers


class _Payload:
    """Unpickling this creates a file: proof that loading ran code from the archive."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture(scope="module")
def exported_pt2(tmp_path_factory):
    torch = pytest.importorskip("torch")

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(3, 2)

        def forward(self, x):
            return self.linear(x)

    path = tmp_path_factory.mktemp("pt2") / "tiny.pt2"
    torch.export.save(torch.export.export(Tiny().eval(), (torch.zeros(1, 3),)), path)
    return path


def _rewritten(source: Path, destination: Path, edit) -> Path:
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(destination, "w") as copy:
        for info in original.infolist():
            copy.writestr(info, edit(info.filename, original.read(info.filename)))
    return destination


def test_a_clean_pt2_loads(exported_pt2):
    from edge_sdk.loaders.to_onnx import torch_source

    assert torch_source(exported_pt2).kind == "pt2"


def test_a_pt2_with_a_pickle_payload_is_refused_before_it_runs(exported_pt2, tmp_path):
    from edge_sdk.errors import ModelFileError
    from edge_sdk.loaders.to_onnx import torch_source

    marker = tmp_path / "pwned"
    hostile = _rewritten(exported_pt2, tmp_path / "hostile.pt2", lambda name, data: pickle.dumps(_Payload(marker)) if "sample_inputs/" in name else data)
    with pytest.raises(ModelFileError, match="pickled Python objects") as refused:
        torch_source(hostile)
    assert "sample_inputs" in str(refused.value) and refused.value.exit_code == 3
    assert not marker.exists()


def test_a_pt2_whose_weights_say_use_pickle_is_refused(exported_pt2, tmp_path):
    from edge_sdk.errors import ModelFileError
    from edge_sdk.loaders.to_onnx import torch_source

    def pickled_weights(name: str, data: bytes) -> bytes:
        return data.replace(b'"use_pickle": false', b'"use_pickle": true') if name.endswith("_weights_config.json") else data

    with pytest.raises(ModelFileError, match="use_pickle=True"):
        torch_source(_rewritten(exported_pt2, tmp_path / "pickled-weights.pt2", pickled_weights))
