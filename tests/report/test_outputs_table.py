"""The reports' per-output table: every output of every artifact, its kind and headline figure, per step and
streaming, from a results file written by a real bench of a small stateful 2-output model; names escaped."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pytest

import edge_sdk
from edge_sdk.bench import BenchSettings
from edge_sdk.fidelity import headline
from edge_sdk.report import render_report
from edge_sdk.report.markdown import md_escape
from edge_sdk.report.outputs import figure_text
from edge_sdk.results import save_results

ODD_NAME = "y<b>&|*"  # HTML and Markdown specials in an output name


def _stateful(path, gain: float) -> None:
    """y = gain * x + h, hn = y: two outputs; the state h -> hn carries a running sum through a sequence."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "gain"], ["scaled"]), helper.make_node("Add", ["scaled", "h"], [ODD_NAME]), helper.make_node("Identity", [ODD_NAME], ["hn"])],
        "acc", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2]), helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info(ODD_NAME, TensorProto.FLOAT, [1, 2]), helper.make_tensor_value_info("hn", TensorProto.FLOAT, [1, 2])],
        [numpy_helper.from_array(np.full((1, 2), gain, np.float32), "gain")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


@pytest.fixture(scope="module")
def multi_output_results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("outputs_report")
    _stateful(folder / "reference.onnx", 1.0)
    _stateful(folder / "drifted.onnx", 1.05)
    rng = np.random.default_rng(0)
    np.savez(folder / "data.npz", x=rng.normal(size=(24, 2)).astype(np.float32), h=rng.normal(size=(24, 2)).astype(np.float32), sequence=np.repeat(np.arange(4), 6))
    results = edge_sdk.benchmark([folder / "drifted.onnx"], folder / "data.npz", reference=folder / "reference.onnx",
                                 settings=BenchSettings(runs=2, warmup=0, isolate=False, state_pairs=[("h", "hn")]))
    assert results[0].status == "ok", results[0].error
    path = folder / "results.json"
    save_results(path, results)
    return path, json.loads(path.read_text())["results"][0]


def test_html_report_lists_every_output_per_step_and_streaming_with_names_escaped(multi_output_results):
    path, result = multi_output_results
    reference = result["reference"]
    assert set(reference["outputs"]) == set(reference["streaming"]["outputs"]) == {ODD_NAME, "hn"}
    page = render_report([path], "html")
    assert ODD_NAME not in page and html.escape(ODD_NAME) in page  # escaped, never raw
    table = re.search(r'<table class="outputs">.*?</table>', page, flags=re.S).group(0)
    rows = re.findall(r"<tr><td.*?</tr>", table, flags=re.S)
    assert len(rows) == 2
    for name in (ODD_NAME, "hn"):
        step, streaming = reference["outputs"][name], reference["streaming"]["outputs"][name]
        expected = [html.escape(name), html.escape(step["kind"]), html.escape(figure_text(step)), html.escape(figure_text(streaming))]
        row = next(row for row in rows if f"<td>{html.escape(name)}</td>" in row)
        assert re.findall(r"<td[^>]*>(.*?)</td>", row)[2:] == expected
        # the figure shown is the recorded headline, as recorded
        key, value = headline(step)
        assert value is not None and (f"{value:.1f} dB" in figure_text(step) or f"{100 * value:.1f} %" in figure_text(step))
    # streaming differs from per step here: the drift accumulates through each sequence
    assert figure_text(reference["outputs"]["hn"]) != figure_text(reference["streaming"]["outputs"]["hn"])


def test_markdown_report_has_the_same_output_table(multi_output_results):
    path, result = multi_output_results
    markdown = render_report([path], "md")
    section = markdown.split("### Outputs against the float reference", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("| ")][1:]  # without the header
    assert len(lines) == 2
    assert any(f"| {md_escape(ODD_NAME)} |" in line for line in lines) and ODD_NAME not in markdown
    assert md_escape(ODD_NAME) == "y&lt;b&gt;&amp;\\|\\*"
    step = result["reference"]["outputs"]["hn"]
    hn_line = next(line for line in lines if "| hn |" in line)
    assert f"| {md_escape(step['kind'])} | {md_escape(figure_text(step))} |" in hn_line
