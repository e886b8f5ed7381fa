"""Validation: typed events for good payloads, one precise error for each kind of bad field."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.events import OrderEvent, PostEvent, TagEvent
from scoring.params import DEFAULT_PARAMS
from scoring.validate import PROBLEMS, ValidationError, format_ms, parse_rfc3339_ms, validate

P = DEFAULT_PARAMS
NOW = 1_764_000_000_000  # 2025-11-24T16:00:00Z


def good_post(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "post_id": "p1", "creator_id": "c1", "region": "id", "content_type": "Video",
        "themes": ["Beauty", "fashion", "beauty "], "posted_at": "2025-11-24T22:00:00+07:00",
        "views": 1200, "likes": 80, "comments": 7, "shares": 3,
    }  # fmt: skip
    d.update(over)
    return d


def good_tag(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "tag_id": "t1", "post_id": "p1", "creator_id": "c1", "product_id": "sku-9",
        "brand_id": "b1", "theme": "Home", "tagged_at": NOW - 1000, "campaign_id": None,
    }  # fmt: skip
    d.update(over)
    return d


def good_order(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "order_id": "o1", "creator_id": "c1", "product_id": "sku-9", "brand_id": "b1",
        "theme": "home", "quantity": 2, "amount": "149000.50", "currency": "idr",
        "status": "Placed", "ordered_at": "2025-11-24T15:59:59.999Z",
    }  # fmt: skip
    d.update(over)
    return d


GOOD = {"post": good_post, "tag": good_tag, "order": good_order}


def check(kind: str, payload: object, params: Any = P) -> Any:
    return validate(kind, payload, now_ms=NOW, params=params)  # type: ignore[arg-type]


def test_valid_post_is_typed_and_normalised() -> None:
    ev = check("post", good_post(brand_id="b7", observed_at=NOW))
    assert isinstance(ev, PostEvent)
    assert ev.region == "ID" and ev.content_type == "video"
    assert ev.themes == ("beauty", "fashion")  # lower-cased, trimmed, de-duplicated, sorted
    assert ev.posted_at_ms == NOW - 3_600_000  # 22:00+07:00 is 15:00Z
    assert (ev.views, ev.likes, ev.comments, ev.shares) == (1200, 80, 7, 3)
    assert ev.brand_id == "b7" and ev.observed_at_ms == NOW
    assert (ev.kind, ev.event_id, ev.event_time_ms) == ("post", "p1", ev.posted_at_ms)


@pytest.mark.parametrize("written", ["UK", "uk", " Uk ", "GB", "gb"])
def test_uk_is_gb_on_every_validation_path(written: str) -> None:
    # The fast path takes two-letter strings as they are; the field-by-field path trims.
    ev = check("post", good_post(region=written))
    assert isinstance(ev, PostEvent) and ev.region == "GB"


def test_valid_tag_and_order() -> None:
    t = check("tag", good_tag(campaign_id="camp-3"))
    assert isinstance(t, TagEvent)
    assert (t.theme, t.campaign_id, t.tagged_at_ms, t.kind, t.event_id) == (
        "home", "camp-3", NOW - 1000, "tag", "t1"
    )  # fmt: skip
    o = check("order", good_order(post_id="p1"))
    assert isinstance(o, OrderEvent)
    assert o.amount == Decimal("149000.50") and o.currency == "IDR" and o.status == "placed"
    assert o.ordered_at_ms == NOW - 1 and o.post_id == "p1" and o.quantity == 2
    assert (o.kind, o.event_id, o.event_time_ms) == ("order", "o1", NOW - 1)


def test_optional_fields_may_be_absent_or_null() -> None:
    ev = check("post", good_post(brand_id=None))
    assert isinstance(ev, PostEvent) and ev.brand_id is None and ev.observed_at_ms is None
    o = check("order", good_order())
    assert isinstance(o, OrderEvent) and o.post_id is None


def test_numbers_that_are_whole_floats_are_accepted() -> None:
    ev = check("post", good_post(views=1.2e3, posted_at=float(NOW)))
    assert isinstance(ev, PostEvent) and ev.views == 1200 and ev.posted_at_ms == NOW
    o = check("order", good_order(amount=19.99))
    assert isinstance(o, OrderEvent) and o.amount == Decimal("19.99")


def test_extra_fields_are_ignored() -> None:
    assert isinstance(check("tag", good_tag(source="app", nested={"a": 1})), TagEvent)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("2025-11-24T16:00:00Z", NOW),
        ("2025-11-24t16:00:00z", NOW),
        ("2025-11-24 16:00:00Z", NOW),
        ("2025-11-24T16:00:00.5Z", NOW + 500),
        ("2025-11-24T16:00:00.123456789Z", NOW + 123),
        ("2025-11-24T23:00:00+07:00", NOW),
        ("2025-11-24T10:30:00-05:30", NOW),
        ("2025-11-24T15:59:60Z", NOW),  # leap second counts as the next second
        ("2024-02-29T00:00:00Z", 1_709_164_800_000),
        ("2025-11-24T16:00:00", None),  # no offset
        ("2025-11-24", None),
        ("2025-02-29T00:00:00Z", None),
        ("2025-13-01T00:00:00Z", None),
        ("2025-11-24T24:00:00Z", None),
        ("2025-11-24T16:60:00Z", None),
        ("2025-11-24T16:00:00+24:00", None),
        ("2025-11-24T16:00:00+0700", None),
        ("20251124T160000Z", None),
        ("yesterday", None),
        ("", None),
    ],
)
def test_rfc3339_parsing(text: str, expected: int | None) -> None:
    assert parse_rfc3339_ms(text) == expected


def test_format_ms_round_trips() -> None:
    for ms in (0, NOW, NOW + 7, 253_402_300_799_999):
        assert parse_rfc3339_ms(format_ms(ms)) == ms


# One case per (kind, field, problem); every problem code must appear at least once.
CASES: list[tuple[str, dict[str, Any] | object, str, str, str]] = [
    ("post", [1, 2], "$", "not_an_object", "must be a JSON object, got array"),
    ("post", "{}", "$", "not_an_object", "got string"),
    ("tag", None, "$", "not_an_object", "got null"),
    ("post", good_post(post_id=None), "post_id", "missing", "post_id is required (got null)"),
    (
        "tag",
        {k: v for k, v in good_tag().items() if k != "brand_id"},
        "brand_id",
        "missing",
        "brand_id is required",
    ),
    (
        "order",
        {k: v for k, v in good_order().items() if k != "amount"},
        "amount",
        "missing",
        "amount is required",
    ),
    ("post", good_post(creator_id=42), "creator_id", "wrong_type", "must be a string, got number"),
    ("post", good_post(themes="beauty"), "themes", "wrong_type", "must be an array, got string"),
    ("post", good_post(themes=["a", 3]), "themes[1]", "wrong_type", "must be a string"),
    ("post", good_post(views="12"), "views", "wrong_type", "must be a whole number, got string"),
    ("post", good_post(likes=True), "likes", "wrong_type", "got boolean"),
    ("post", good_post(shares=1.5), "shares", "wrong_type", "must be a whole number, got 1.5"),
    ("post", good_post(posted_at=[1]), "posted_at", "wrong_type", "RFC 3339 string or integer"),
    ("order", good_order(amount={"v": 1}), "amount", "wrong_type", "decimal string or number"),
    ("order", good_order(amount=True), "amount", "wrong_type", "got boolean"),
    ("order", good_order(status=1), "status", "wrong_type", "must be a string"),
    ("tag", good_tag(campaign_id=7), "campaign_id", "wrong_type", "must be a string"),
    ("post", good_post(post_id=""), "post_id", "empty", "post_id must not be empty"),
    ("tag", good_tag(theme="   "), "theme", "empty", "theme must not be empty"),
    ("post", good_post(themes=["ok", ""]), "themes[1]", "empty", "must not be empty"),
    ("post", good_post(views=-1), "views", "negative", "views must not be negative, got -1"),
    ("post", good_post(comments=-3.0), "comments", "negative", "must not be negative"),
    ("order", good_order(quantity=-2), "quantity", "negative", "must not be negative"),
    ("order", good_order(amount="-0.01"), "amount", "negative", "amount must not be negative"),
    ("tag", good_tag(tagged_at=-5), "tagged_at", "negative", "must not be negative"),
    ("order", good_order(currency="XYZ"), "currency", "unknown_currency", "'XYZ' is not in rate"),
    ("order", good_order(currency="dollars"), "currency", "unknown_currency", "'DOLLARS'"),
    ("order", good_order(status="shipped"), "status", "unknown_status", "'shipped' is not one of"),
    (
        "post",
        good_post(posted_at="2025-11-24 16:00"),
        "posted_at",
        "bad_timestamp",
        "is not an RFC 3339 time with an offset",
    ),
    (
        "post",
        good_post(observed_at="2025-11-24T16:00:00"),
        "observed_at",
        "bad_timestamp",
        "with an offset",
    ),
    (
        "tag",
        good_tag(tagged_at=1_764_000_000),
        "tagged_at",
        "bad_timestamp",
        "epoch seconds sent instead of milliseconds?",
    ),
    (
        "order",
        good_order(ordered_at="10000-01-01T00:00:00Z"),
        "ordered_at",
        "bad_timestamp",
        "not an RFC 3339",
    ),
    (
        "post",
        good_post(posted_at=NOW + 300_001),
        "posted_at",
        "future",
        "300.0 s ahead of the processing clock (allowed: 300 s)",
    ),
    ("post", good_post(observed_at=NOW + 3_600_000), "observed_at", "future", "3600.0 s ahead"),
    ("order", good_order(ordered_at="2025-11-24T17:00:00Z"), "ordered_at", "future", "ahead"),
    ("post", good_post(post_id="x" * 129), "post_id", "too_long", "129 characters long"),
    ("post", good_post(themes=["t"] * 17), "themes", "too_long", "17 entries; the limit is 16"),
    ("order", good_order(amount="1" * 65), "amount", "too_long", "65 characters"),
    ("post", good_post(region="Republic of Indonesia"), "region", "too_long", "the limit is 16"),
    ("post", good_post(region="Indonesia"), "region", "invalid", "not an ISO 3166-1 alpha-2 code"),
    ("post", good_post(region="1D"), "region", "invalid", "alpha-2"),
    ("post", good_post(post_id="p\n1"), "post_id", "invalid", "contains control characters"),
    ("post", good_post(views=2**60), "views", "invalid", "exceeds the maximum"),
    ("order", good_order(quantity=0), "quantity", "invalid", "quantity must be at least 1"),
    ("order", good_order(amount="12,50"), "amount", "invalid", "is not a decimal number"),
    ("order", good_order(amount="NaN"), "amount", "invalid", "not a finite number"),
    ("order", good_order(amount=float("inf")), "amount", "invalid", "not a finite number"),
    ("order", good_order(amount="1.0000001"), "amount", "invalid", "more than 6 decimal places"),
    ("order", good_order(amount="2e12"), "amount", "invalid", "exceeds the maximum"),
]


@pytest.mark.parametrize(
    ("kind", "payload", "field", "problem", "needle"),
    CASES,
    ids=[f"{c[0]}-{c[2]}-{c[3]}" for c in CASES],
)
def test_each_problem_is_reported_precisely(
    kind: str, payload: object, field: str, problem: str, needle: str
) -> None:
    err = check(kind, payload)
    assert isinstance(err, ValidationError)
    assert (err.kind, err.field, err.problem) == (kind, field, problem)
    assert needle in err.message
    if field != "$":
        assert err.message.startswith(f"{kind}.{field.split('[')[0]}")


def test_every_problem_code_is_tested() -> None:
    assert {c[3] for c in CASES} | {"invalid"} == set(PROBLEMS)


def test_unknown_kind() -> None:
    err = check("like", {})
    assert isinstance(err, ValidationError)
    assert (err.field, err.problem) == ("kind", "invalid")


def test_first_bad_field_in_contract_order_is_reported() -> None:
    err = check("post", good_post(post_id="", views=-1))
    assert isinstance(err, ValidationError) and err.field == "post_id"


def test_future_margin_is_configurable() -> None:
    strict = dataclasses.replace(P, future_margin_ms=0)
    assert isinstance(check("tag", good_tag(tagged_at=NOW + 1)), TagEvent)
    err = check("tag", good_tag(tagged_at=NOW + 1), strict)
    assert isinstance(err, ValidationError) and err.problem == "future"


def test_currency_list_follows_the_rate_table() -> None:
    fx = {**P.fx_usd_per_unit, "KRW": Decimal("0.00072")}
    wider = dataclasses.replace(P, fx_usd_per_unit=fx)
    assert isinstance(check("order", good_order(currency="KRW")), ValidationError)
    assert isinstance(check("order", good_order(currency="KRW"), wider), OrderEvent)


json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30)
)  # fmt: skip
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(["post", "tag", "order"]), payload=json_values)
def test_never_raises_on_arbitrary_json(kind: str, payload: object) -> None:
    result = check(kind, payload)
    assert isinstance(result, PostEvent | TagEvent | OrderEvent | ValidationError)
    if isinstance(result, ValidationError):
        assert result.problem in PROBLEMS and "could not be validated" not in result.message


@settings(max_examples=400, deadline=None)
@given(
    kind=st.sampled_from(["post", "tag", "order"]),
    data=st.data(),
    value=json_values,
)
def test_never_raises_when_one_field_is_broken(
    kind: str, data: st.DataObject, value: object
) -> None:
    payload = GOOD[kind]()
    field = data.draw(st.sampled_from(sorted(payload)))
    payload[field] = value
    result = check(kind, payload)
    assert isinstance(result, PostEvent | TagEvent | OrderEvent | ValidationError)
    if isinstance(result, ValidationError):
        assert result.field.split("[")[0] == field
        assert result.problem in PROBLEMS and "could not be validated" not in result.message


# --- the fast timestamp path agrees with the regular expression ---------------------------

_PIECES = st.sampled_from(
    ["2025", "2024", "0000", "9999", "1999", "-", "11", "02", "29", "30", "31", "13", "00",
     "T", "t", " ", "x", ":", "23", "24", "59", "60", "61", ".", "1", "250", "123456789",
     "1234567890", "Z", "z", "+", "-", "07:00", "23:59", "24:00", "00:60", "+0700", "２", "٣"]
)  # fmt: skip


@settings(max_examples=3000, deadline=None)
@given(
    date=st.sampled_from(["2025-11-24", "2024-02-29", "2025-02-29", "0001-01-01", "9999-12-31"]),
    sep=st.sampled_from(["T", "t", " ", "_"]),
    clock=st.sampled_from(["00:00:00", "23:59:60", "24:00:00", "12:60:00", "1a:00:00"]),
    tail=st.lists(_PIECES, max_size=5).map("".join),
)
def test_fast_timestamps_match_the_regular_expression(
    date: str, sep: str, clock: str, tail: str
) -> None:
    from scoring.validate import _fast_rfc3339, _parse_rfc3339_ms

    text = f"{date}{sep}{clock}{tail}"
    fast = _fast_rfc3339(text)
    assert fast is None or fast == _parse_rfc3339_ms(text), text
    assert parse_rfc3339_ms(text) == _parse_rfc3339_ms(text), text


@settings(max_examples=2000, deadline=None)
@given(text=st.lists(_PIECES, max_size=12).map("".join))
def test_fast_timestamps_never_accept_what_the_expression_refuses(text: str) -> None:
    from scoring.validate import _fast_rfc3339, _parse_rfc3339_ms

    fast = _fast_rfc3339(text)
    assert fast is None or fast == _parse_rfc3339_ms(text), text
