"""The usual-form fast paths of `validate` agree with the field-by-field path they shortcut.

`validate` accepts the common clean payload in one pass and leaves everything else
to the field-by-field path, which is the reference. A fast path may decline (return
None) whenever it likes, but whatever it accepts must be exactly what the reference
builds: same type, same values, same Decimal exponent. These properties throw
near-valid payloads, timestamps and amounts at both and compare. A non-dict Mapping
takes the reference path through the public `validate`, so whole payloads are
compared through it too.
"""

from __future__ import annotations

import dataclasses
import pickle
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from scoring import validate as v
from scoring.params import DEFAULT_PARAMS, Params

NOW = 1_764_000_000_000  # 2025-11-24T16:00:00Z

#: Tight limits, so that every limit is reached by the generated values.
TIGHT = dataclasses.replace(
    DEFAULT_PARAMS,
    future_margin_ms=0,
    earliest_event_ms=1_700_000_000_000,
    max_id_length=4,
    max_name_length=3,
    max_themes=2,
    max_count=1000,
    max_quantity=5,
    max_amount=Decimal("99.5"),
    max_amount_decimals=1,
)
#: A taxonomy that keeps some of the generated names, so both sides of the mapping are taken.
LABELLED = dataclasses.replace(
    DEFAULT_PARAMS, themes=("a", "home decor", "ct:video", "é"), content_types=("vid", "a")
)
PARAMS = st.sampled_from([DEFAULT_PARAMS, TIGHT, LABELLED])


def strict(x: object) -> object:
    """A value whose equality also sees types and Decimal exponents (1.5 != 1.50)."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return (type(x).__name__, [strict(getattr(x, f.name)) for f in dataclasses.fields(x)])
    if isinstance(x, tuple):
        return ("tuple", [strict(i) for i in x])
    return (type(x).__name__, repr(x))


def reference(kind: str, payload: dict[str, Any], params: Params) -> object:
    return v.validate(kind, MappingProxyType(payload), now_ms=NOW, params=params)  # type: ignore[arg-type]


# --- timestamps -----------------------------------------------------------------------------

_FRACTION = st.one_of(st.just(""), st.integers(1, 9).map(lambda n: "." + "7" * n))
_ZONE = st.one_of(
    st.sampled_from(["Z", "z"]),
    st.tuples(st.sampled_from("+-"), st.integers(0, 23), st.integers(0, 59)).map(
        lambda t: f"{t[0]}{t[1]:02d}:{t[2]:02d}"
    ),
)
#: Out-of-range or malformed stand-ins for each piece of a timestamp.
_BROKEN = {
    "year": ["202", "20255", "２０２５", "-001"],
    "month": ["00", "13", "1", "001", "٠١"],
    "day": ["00", "32", "30", "31", "1", "1a"],
    "sep": ["_", "", "TT", "x", "\n"],
    "hour": ["24", "25", "1", "99", "２"],
    "minute": ["60", "61", "5", "9x"],
    "second": ["61", "62", "6", "٣"],
    "fraction": [".", ".1234567890", ".12345678901", ".x", ".٣"],
    "zone": ["", "+0700", "+07", "+24:00", "-00:60", "Zz", " Z", "+7:00", "+07:00Z"],
}


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    """RFC 3339 text in every accepted shape, often with one piece broken or one character
    changed, dropped or added (a valid time with day 31 or :60 is still often drawn)."""
    pieces = {
        "year": draw(st.integers(0, 9999).map("{:04d}".format)),
        "month": draw(st.integers(1, 12).map("{:02d}".format)),
        "day": draw(st.integers(1, 31).map("{:02d}".format)),
        "sep": draw(st.sampled_from("Tt ")),
        "hour": draw(st.integers(0, 23).map("{:02d}".format)),
        "minute": draw(st.integers(0, 59).map("{:02d}".format)),
        "second": draw(st.integers(0, 60).map("{:02d}".format)),
        "fraction": draw(_FRACTION),
        "zone": draw(_ZONE),
    }
    broken = draw(st.sampled_from([None, None, *_BROKEN]))
    if broken is not None:
        pieces[broken] = draw(st.sampled_from(_BROKEN[broken]))
    p = pieces
    text = (
        f"{p['year']}-{p['month']}-{p['day']}{p['sep']}{p['hour']}:{p['minute']}:{p['second']}"
        f"{p['fraction']}{p['zone']}"
    )
    if draw(st.integers(0, 4)) == 0:
        at = draw(st.integers(0, len(text)))
        char = draw(st.sampled_from(["", "0", "9", ":", "-", ".", "T", " ", "x", "٣", "\n"]))
        text = text[:at] + char + text[at + draw(st.integers(0, 1)) :]
    return text


EDGES = [
    "2024-02-29T23:59:60Z", "2025-02-29T00:00:00Z", "2025-12-31T23:59:60.999999999-23:59",
    "0000-01-01T00:00:00Z", "0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59.999Z",
    "2025-11-24t16:00:00z", "2025-11-24 16:00:00.1+07:00", "2025-11-24T16:00:00.1234567890Z",
    "2025-11-24T16:00:00.Z", "2025-11-24T16:00:00+24:00", "2025-11-24T16:00:00-00:60",
    "2025-11-24T24:00:00Z", "2025-11-24T23:60:00Z", "2025-11-24T23:59:61Z", "2025-11-24T16:00:00",
    "2025-11-24T16:00Z", "2025-11-24T16:00:00+07:00 ", "２０２５-11-24T16:00:00Z", "",
    "2025-11-24_16:00:00Z", "2025-11-24T16:00:00.123+0700", "2025-11-24T16:00:00.123456+07:00",
]  # fmt: skip


@settings(max_examples=3000, deadline=None)
@given(text=timestamps())
def test_fast_timestamps_agree_with_the_regular_expression(text: str) -> None:
    want = v._parse_rfc3339_ms(text)
    for _ in range(2):  # the second time the date and tail come from the memos
        fast = v._fast_rfc3339(text)
        assert fast is None or fast == want, text
        assert v.parse_rfc3339_ms(text) == want, text


def test_fast_timestamps_take_the_edge_cases_right() -> None:
    for text in EDGES:
        for _ in range(2):
            assert v.parse_rfc3339_ms(text) == v._parse_rfc3339_ms(text), text


def test_the_usual_timestamp_shapes_take_the_fast_path() -> None:
    for text in ("2025-11-24T16:00:00Z", "2025-11-24T23:00:00.123+07:00", "2025-11-24t16:00:00z"):
        assert v._fast_rfc3339(text) == v._parse_rfc3339_ms(text) is not None


@settings(max_examples=2000, deadline=None)
@given(
    value=st.one_of(
        timestamps(),
        st.integers(-(2**64), 2**64),
        st.integers(TIGHT.earliest_event_ms - 5, NOW + DEFAULT_PARAMS.future_margin_ms + 5),
        st.integers(v._LATEST_MS - 5, v._LATEST_MS + 5),
        st.floats(allow_nan=True),
        st.booleans(),
        st.none(),
    ),
    params=PARAMS,
    now=st.sampled_from([NOW, v._LATEST_MS - 2]),
)
@example(value=v._LATEST_MS + 1, params=DEFAULT_PARAMS, now=v._LATEST_MS - 2)
@example(value="9999-12-31T23:59:60Z", params=DEFAULT_PARAMS, now=v._LATEST_MS - 2)
@example(value=NOW + 1, params=TIGHT, now=NOW)
@example(value=True, params=DEFAULT_PARAMS, now=NOW)
def test_usual_times_are_the_checked_times(value: object, params: Params, now: int) -> None:
    usual = v._usual_ms(value, params.earliest_event_ms, now + params.future_margin_ms)
    if usual is not None:
        assert v._checked_time("t", value, now, params) == usual
        assert type(usual) is int


# --- amounts --------------------------------------------------------------------------------

_DIGIT_RUNS = st.text(alphabet="0123456789", min_size=0, max_size=16)
_AMOUNT_TEXT = st.one_of(
    st.tuples(_DIGIT_RUNS, st.sampled_from(["", "."]), _DIGIT_RUNS).map("".join),
    st.tuples(st.sampled_from(["-", "+", " ", "", "0", "٣", "1_", "1e", "."]), _DIGIT_RUNS).map(
        "".join
    ),
    st.sampled_from(["NaN", "Infinity", "-0", "0.0", "1.", ".5", "1..0", "1.0e2", "1" * 70, "00"]),
    st.sampled_from(["²", "1.²", "①", "٣.٣", "１２"]),
    st.text(max_size=8),
)


@settings(max_examples=3000, deadline=None)
@given(amount=st.one_of(_AMOUNT_TEXT, st.integers(), st.floats(), st.booleans()), params=PARAMS)
@example(amount="99.5", params=TIGHT)
@example(amount="99.50", params=TIGHT)
@example(amount="1000000000000.000000", params=DEFAULT_PARAMS)
@example(amount="1" * 64, params=DEFAULT_PARAMS)
def test_usual_amounts_are_the_checked_amounts(amount: object, params: Params) -> None:
    usual = v._usual_amount(amount, params)
    if usual is not None:
        assert strict(v._amount({"amount": amount}, params)) == strict(usual)


# --- whole payloads -------------------------------------------------------------------------

NAMES = st.sampled_from(
    ["a", "ab", "abcd", "abcde", "Home", " home ", "HOME", "", " ", "\t", "a\nb", "\u00a0a",
     "İ", "ß", "ǅ", "é", "x" * 65, "x" * 129, "١", "Home  Decor", "ct:Video", "Other", "VID"]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 2**54), st.floats(), st.sampled_from([0, 1, 5, 6]),
    NAMES, st.sampled_from([[], {}, ["a"]]),
)  # fmt: skip
TIMES = st.one_of(
    timestamps(), st.integers(TIGHT.earliest_event_ms - 5, NOW + 400_000), st.just(float(NOW))
)
AMOUNTS = st.one_of(_AMOUNT_TEXT, st.sampled_from(["12.5", "12.50", "99.5", "100", 12, 1.5]))
FIELDS: dict[str, st.SearchStrategy[object]] = {
    "region": st.sampled_from(["ID", "id", "Id", "I1", "IDN", "ÿÿ", " I", "  "]),
    "themes": st.lists(NAMES, max_size=3) | st.just(["a", "A", " a"]) | NAMES,
    "views": SCALARS, "likes": SCALARS, "comments": SCALARS, "shares": SCALARS,
    "quantity": SCALARS,
    "amount": AMOUNTS,
    "currency": st.sampled_from(["USD", "usd", "IDR", " USD", "XYZ", "US"]),
    "status": st.sampled_from(["placed", "cancelled", "refunded", "Placed", "lost", " placed"]),
    "posted_at": TIMES, "observed_at": TIMES, "tagged_at": TIMES, "ordered_at": TIMES,
}  # fmt: skip
BASE: dict[str, dict[str, object]] = {
    "post": {
        "post_id": "p1", "creator_id": "c1", "region": "ID", "content_type": "vid",
        "themes": ["a", "b"], "posted_at": "2025-11-24T22:59:59.123+07:00", "views": 10,
        "likes": 1, "comments": 0, "shares": 0, "brand_id": "b1", "observed_at": NOW - 5,
    },
    "tag": {
        "tag_id": "t1", "post_id": "p1", "creator_id": "c1", "product_id": "s1",
        "brand_id": "b1", "theme": "hom", "tagged_at": "2025-11-24T15:59:59.999Z",
        "campaign_id": "k1",
    },
    "order": {
        "order_id": "o1", "creator_id": "c1", "post_id": None, "product_id": "s1",
        "brand_id": "b1", "theme": "hom", "quantity": 2, "amount": "12.5", "currency": "USD",
        "status": "placed", "ordered_at": NOW - 1,
    },
}  # fmt: skip
USUAL = {"post": v._usual_post, "tag": v._usual_tag, "order": v._usual_order}


@st.composite
def payloads(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A clean payload of some kind with a few of its fields changed, dropped or nulled."""
    kind = draw(st.sampled_from(sorted(BASE)))
    payload = dict(BASE[kind])
    for field in draw(st.lists(st.sampled_from(sorted(BASE[kind])), max_size=3)):
        how = draw(st.integers(0, 9))
        if how == 0:
            payload.pop(field, None)
        elif how == 1:
            payload[field] = None
        else:
            payload[field] = draw(FIELDS.get(field, NAMES))
    return kind, payload


@settings(max_examples=4000, deadline=None)
@given(case=payloads(), params=PARAMS)
def test_usual_payloads_build_the_reference_event(
    case: tuple[str, dict[str, Any]], params: Params
) -> None:
    kind, payload = case
    usual = USUAL[kind](payload, NOW, params)
    want = reference(kind, payload, params)
    if usual is not None:
        assert strict(usual) == strict(want)
    got = v.validate(kind, payload, now_ms=NOW, params=params)  # type: ignore[arg-type]
    assert strict(got) == strict(want)


def test_clean_payloads_take_the_usual_path() -> None:
    for kind, payload in BASE.items():
        usual = USUAL[kind](payload, NOW, DEFAULT_PARAMS)
        assert usual is not None, kind
        assert strict(usual) == strict(reference(kind, payload, DEFAULT_PARAMS))


def test_usual_events_are_ordinary_frozen_events() -> None:
    # The usual path builds events without their __init__ (see validate.py); they must not
    # differ from constructed ones in any way.
    for kind, payload in BASE.items():
        event = USUAL[kind](payload, NOW, DEFAULT_PARAMS)
        want = reference(kind, payload, DEFAULT_PARAMS)
        assert type(event) is type(want)
        assert event == want and hash(event) == hash(want) and repr(event) == repr(want)
        assert dataclasses.asdict(event) == dataclasses.asdict(want)  # type: ignore[arg-type]
        assert pickle.loads(pickle.dumps(event)) == want
        assert not hasattr(event, "__dict__")
        with pytest.raises(dataclasses.FrozenInstanceError):
            event.creator_id = "other"  # type: ignore[union-attr, misc]
