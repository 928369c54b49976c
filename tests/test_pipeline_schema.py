"""The pipeline file's JSON Schema (edge_sdk/pipeline_schema.py, shipped as edge_sdk/schemas/edge.schema.json): the
shipped file is the generated one, it agrees with the reader's tables, the example validates, and bad files are
refused by it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from edge_sdk.errors import UsageError
from edge_sdk.pipeline_config import PREPROCESS_KEYS, TARGET_KEYS, TOP_LEVEL_KEYS
from edge_sdk.pipeline_schema import SCHEMA_FILE, pipeline_schema, schema_text, validate_pipeline_document

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "edge.yaml"


def test_the_shipped_schema_is_the_generated_one_and_a_valid_schema():
    assert SCHEMA_FILE.read_text() == schema_text(), "regenerate: python -c 'from edge_sdk.pipeline_schema import *; SCHEMA_FILE.write_text(schema_text())'"
    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA_FILE.read_text()))


def test_the_schema_names_the_keys_the_reader_takes():
    schema = pipeline_schema()
    assert set(schema["properties"]) == TOP_LEVEL_KEYS
    assert set(schema["properties"]["preprocess"]["properties"]) == PREPROCESS_KEYS
    assert set(schema["properties"]["targets"]["additionalProperties"]["properties"]) == TARGET_KEYS


def test_the_example_validates_and_points_editors_at_the_schema():
    text = EXAMPLE.read_text()
    assert text.splitlines()[0] == "# yaml-language-server: $schema=../edge_sdk/schemas/edge.schema.json"
    assert (EXAMPLE.parent / "../edge_sdk/schemas/edge.schema.json").resolve() == SCHEMA_FILE
    validate_pipeline_document(yaml.safe_load(text), EXAMPLE)


@pytest.mark.parametrize("edit, where", [
    (lambda d: d.update(formats={"tflite": ["int4"]}), "formats.tflite.0"),
    (lambda d: d["models"]["teacher"].update(pathh="x"), "models.teacher"),
    (lambda d: d["targets"].update(pi={"kind": "ssh"}), "targets.pi"),
    (lambda d: d.update(bench={"runs": 0}), "bench.runs"),
])
def test_bad_documents_are_refused_naming_the_key(edit, where):
    document = yaml.safe_load(EXAMPLE.read_text())
    edit(document)
    with pytest.raises(UsageError, match=rf"edge.yaml: {where.replace('.', chr(92) + '.')}"):
        validate_pipeline_document(document, EXAMPLE)
