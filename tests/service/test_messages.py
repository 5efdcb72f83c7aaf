"""The JSON Schemas in spec/service/ are the message models' schemas, and the examples of
spec/service.md are valid messages."""

from __future__ import annotations

import json
import re

import jsonschema

from qbcallbacks.service.messages import SCHEMAS, schema_text
from support.paths import ROOT

SPEC = ROOT / "spec" / "service"


def test_every_schema_file_is_its_model_schema() -> None:
    files = {p.name.removesuffix(".json") for p in SPEC.glob("*.json")}
    assert files == set(SCHEMAS)
    for name, model in SCHEMAS.items():
        assert (SPEC / f"{name}.json").read_text(encoding="utf-8") == schema_text(model), (
            f"spec/service/{name}.json is stale: python -m qbcallbacks.service.messages")


def _examples() -> list[dict[str, object]]:
    text = (ROOT / "spec" / "service.md").read_text(encoding="utf-8")
    return [json.loads(m) for m in re.findall(r"^[<>] (\{.*\})$", text, re.MULTILINE)]


def test_the_spec_examples_are_valid_messages() -> None:
    examples = _examples()
    assert len(examples) >= 10
    request = json.loads((SPEC / "request.json").read_text())
    response = json.loads((SPEC / "response.json").read_text())
    event = json.loads((SPEC / "event.params.json").read_text())
    for message in examples:
        if "method" in message:
            jsonschema.validate(message, request)
            if message["method"] == "event" and message["params"]["type"] == "job":  # type: ignore[index]
                jsonschema.validate(message["params"], event)
        else:
            jsonschema.validate(message, response)


def test_an_event_without_seq_is_not_a_valid_event() -> None:
    event = json.loads((SPEC / "event.params.json").read_text())
    validator = jsonschema.Draft202012Validator(event)
    assert not validator.is_valid({"type": "job", "event": "complete", "job": 1})
    assert not validator.is_valid({"seq": 0, "type": "job", "job": 1})
    assert validator.is_valid({"seq": 1, "type": "job", "event": "complete", "job": 1})
