"""The published JSON Schemas agree with the validator on structure."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from test_scoring_validate import NOW, good_order, good_post, good_tag

from scoring.params import DEFAULT_PARAMS
from scoring.validate import ValidationError, validate

SCHEMAS = Path(__file__).resolve().parents[3] / "scoring" / "schemas"
FILES = {"post": "posts.schema.json", "tag": "shoppable-tags.schema.json",
         "order": "orders.schema.json"}  # fmt: skip
# The schemas list canonical spellings; the validator also accepts other letter cases.
GOOD = {"post": good_post, "tag": good_tag, "order": lambda: good_order(status="placed")}


def schema(kind: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SCHEMAS / FILES[kind]).read_text(encoding="utf-8"))
    return doc


def schema_ok(kind: str, payload: object) -> bool:
    v = Draft202012Validator(schema(kind), format_checker=FormatChecker())
    return not list(v.iter_errors(payload))


def validator_ok(kind: str, payload: object) -> bool:
    result = validate(kind, payload, now_ms=NOW, params=DEFAULT_PARAMS)  # type: ignore[arg-type]
    return not isinstance(result, ValidationError)


@pytest.mark.parametrize("kind", list(FILES))
def test_schema_is_valid_draft_2020_12(kind: str) -> None:
    doc = schema(kind)
    Draft202012Validator.check_schema(doc)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("kind", list(FILES))
def test_required_fields_match_the_validator(kind: str) -> None:
    good = GOOD[kind]()
    assert schema_ok(kind, good) and validator_ok(kind, good)
    required = set()
    for field in good:
        payload = {k: v for k, v in good.items() if k != field}
        result = validate(kind, payload, now_ms=NOW, params=DEFAULT_PARAMS)  # type: ignore[arg-type]
        if isinstance(result, ValidationError) and result.problem == "missing":
            required.add(field)
    assert set(schema(kind)["required"]) == required


@pytest.mark.parametrize("kind", list(FILES))
def test_every_field_is_documented(kind: str) -> None:
    props = schema(kind)["properties"]
    fields = {"post": ["brand_id", "observed_at"], "tag": ["campaign_id"], "order": ["post_id"]}
    assert set(GOOD[kind]()) | set(fields[kind]) == set(props)
    assert all(p.get("description") for p in props.values())


BROKEN = [
    ("post", "views", -1),
    ("post", "views", "12"),
    ("post", "themes", "beauty"),
    ("post", "themes", [""]),
    ("post", "posted_at", "2025-11-24 16:00"),
    ("post", "region", "IDN"),
    ("post", "post_id", ""),
    ("post", "post_id", "x" * 129),
    ("tag", "tagged_at", -5),
    ("tag", "brand_id", None),
    ("tag", "campaign_id", 7),
    ("order", "quantity", 0),
    ("order", "amount", "-1"),
    ("order", "amount", "1.0000001"),
    ("order", "status", "shipped"),
    ("order", "currency", "dollars"),
    ("order", "ordered_at", True),
]


@pytest.mark.parametrize(("kind", "field", "value"), BROKEN)
def test_schema_and_validator_both_reject(kind: str, field: str, value: object) -> None:
    payload = copy.deepcopy(GOOD[kind]())
    payload[field] = value
    assert not schema_ok(kind, payload)
    assert not validator_ok(kind, payload)
