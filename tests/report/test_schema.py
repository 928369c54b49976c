"""Results files are validated against the published schema on load; older schema versions are upgraded."""

from __future__ import annotations

import json

import pytest

from edge_sdk import results as results_module
from edge_sdk.errors import DataError
from edge_sdk.results import SCHEMA_VERSION, load_results, results_schema
from tests.report.conftest import edited_copy


def test_the_schema_is_a_valid_json_schema_and_packaged():
    import jsonschema

    schema = results_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert "results" in schema["required"]


def test_a_real_results_file_validates(results_json):
    document = load_results(results_json)
    assert document["schema_version"] == SCHEMA_VERSION and len(document["results"]) == 2


def test_a_wrong_field_is_named_with_the_file(results_json, tmp_path):
    def break_latency(document):
        document["results"][1]["timing"]["latency"]["p50_ms"] = "fast"

    broken = edited_copy(results_json, tmp_path / "broken.json", break_latency)
    with pytest.raises(DataError) as error:
        load_results(broken)
    message = str(error.value)
    assert str(broken) in message and "results[1].timing.latency.p50_ms" in message and "'fast' is not of type 'number'" in message


def test_the_first_offending_field_in_document_order_is_reported(results_json, tmp_path):
    def break_two(document):
        del document["results"][0]["artifact"]["name"]
        document["results"][1]["accuracy"]["top1"] = 1.5

    broken = edited_copy(results_json, tmp_path / "broken.json", break_two)
    with pytest.raises(DataError, match=r"field results\[0\]\.artifact: 'name' is a required property \(and 1 more problem\)"):
        load_results(broken)


def test_an_ok_result_without_timing_is_refused(results_json, tmp_path):
    broken = edited_copy(results_json, tmp_path / "no-timing.json", lambda d: d["results"][0].update(timing=None))
    with pytest.raises(DataError, match=r"results\[0\]\.timing"):
        load_results(broken)


def test_a_newer_major_version_is_refused_and_a_newer_minor_is_read(results_json, tmp_path):
    newer_major = edited_copy(results_json, tmp_path / "v2.json", lambda d: d.update(schema_version="2.0"))
    with pytest.raises(DataError, match=r"(?s)schema_version .2\.0.*upgrade edge-sdk"):
        load_results(newer_major)

    def newer_minor(document):
        document["schema_version"] = "1.7"
        document["results"][0]["a_field_from_the_future"] = {"x": 1}

    assert load_results(edited_copy(results_json, tmp_path / "v1.7.json", newer_minor))["schema_version"] == "1.7"


def test_an_older_version_goes_through_its_upgrade(results_json, tmp_path, monkeypatch):
    """The upgrade chain: a (made-up) 0.9 that called the artifact's size `bytes` is renamed on load."""

    def older(document):
        document["schema_version"] = "0.9"
        for result in document["results"]:
            result["schema_version"] = "0.9"
            result["artifact"]["bytes"] = result["artifact"].pop("size_bytes")

    def upgrade_0_9(document):
        for result in document["results"]:
            result["artifact"]["size_bytes"] = result["artifact"].pop("bytes")
        return document

    old = edited_copy(results_json, tmp_path / "v0.9.json", older)
    with pytest.raises(DataError, match="schema_version '0.9'"):
        load_results(old)
    monkeypatch.setitem(results_module.UPGRADES, "0.9", (SCHEMA_VERSION, upgrade_0_9))
    document = load_results(old)
    assert document["schema_version"] == SCHEMA_VERSION
    assert all(r["schema_version"] == SCHEMA_VERSION and r["artifact"]["size_bytes"] > 0 for r in document["results"])


def test_not_json_is_still_a_clear_error(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        load_results(path)
    path.write_text(json.dumps({"hello": 1}))
    with pytest.raises(DataError, match="not an edge-sdk results file"):
        load_results(path)
