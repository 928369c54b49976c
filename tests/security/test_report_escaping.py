"""Hostile names in a results file (artifact names and paths, target names, hosts, errors, packages) never reach
the HTML report unescaped: not in the tables, not in the provenance, not in the SVG plot labels."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from edge_sdk.report import render_report

pytest.importorskip("matplotlib")
SCRIPT = "<script>alert(1)</script>"
IMAGE = '"><img src=x onerror=alert(1)>'
SEED = json.loads((Path(__file__).parents[1] / "fuzz" / "corpus" / "results.json").read_text())


@pytest.fixture(scope="module")
def hostile_html(tmp_path_factory) -> str:
    document = copy.deepcopy(SEED)
    for index, result in enumerate(document["results"]):
        hostile = SCRIPT if index == 0 else IMAGE
        result["artifact"].update(name=f"{hostile}.tflite", path=f"/models/{hostile}/{IMAGE}.tflite", mode=hostile)
        result["target"].update(name=f"pi {hostile}", host=f"ssh://{IMAGE}@host", transport=hostile)
        result["data"]["path"] = f"/data/{hostile}.npz"
        result["environment"].update(hostname=hostile, cpu=IMAGE, os=SCRIPT)
        result["environment"]["packages"][SCRIPT] = IMAGE
        result["reference"]["path"] = f"/ref/{IMAGE}.keras"
    failed = copy.deepcopy(document["results"][0])
    failed.update(status="error", error=f"{SCRIPT} crashed\n{IMAGE}", timing=None, accuracy=None, reference=None)
    failed["artifact"]["name"] = f"{IMAGE}-failed.onnx"
    document["results"].append(failed)
    path = tmp_path_factory.mktemp("hostile") / f"{IMAGE[:2]}results.json"
    path.write_text(json.dumps(document))
    return render_report([path], "html")


def test_no_hostile_markup_survives(hostile_html):
    assert SCRIPT not in hostile_html and IMAGE not in hostile_html
    # The page has no script element and no image element of its own, so any would be injected.
    assert not re.search(r"<\s*script", hostile_html, re.I) and not re.search(r"<\s*img", hostile_html, re.I)
    assert "onerror=alert(1)>" not in hostile_html
    assert "Content-Security-Policy" in hostile_html


def test_the_names_are_shown_escaped_in_tables_and_plots(hostile_html):
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile_html
    svgs = re.findall(r"<svg.*?</svg>", hostile_html, re.S)
    assert svgs, "the report drew no plots"
    labels = " ".join(svgs)
    assert "&lt;script&gt;" in labels and SCRIPT not in labels and IMAGE not in labels
    for attribute in re.findall(r'\s[\w:-]+="([^"]*)"', hostile_html):
        assert "<" not in attribute, f"an attribute value holds raw markup: {attribute[:80]}"
