"""Turn decoded JSON into typed events, or into an error that names the field and the problem.

Bad input is normal in a stream fed by many producers, so validation never
raises: it returns either an event or a `ValidationError` whose `problem` is a
short stable code (safe as a metrics label) and whose `message` tells a human
exactly what to fix. Names are normalised here (themes and content types
lower-case, region and currency upper-case, themes sorted and de-duplicated) so
that equal facts always compare equal further down.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final, cast

from scoring.events import (
    EVENT_KINDS,
    ORDER_STATUSES,
    Event,
    EventKind,
    OrderEvent,
    OrderStatus,
    PostEvent,
    TagEvent,
)
from scoring.params import Params

#: Every `problem` code `validate` can return (stable: used as metrics labels).
PROBLEMS: Final = (
    "not_an_object",
    "missing",
    "wrong_type",
    "empty",
    "negative",
    "unknown_currency",
    "unknown_status",
    "bad_timestamp",
    "future",
    "too_long",
    "invalid",
)

_LATEST_MS: Final = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
_EPOCH_ORDINAL: Final = _dt.date(1970, 1, 1).toordinal()
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:[Zz]|([+-])(\d{2}):(\d{2}))"
)
_MISSING: Final = object()


@dataclass(frozen=True)
class ValidationError:
    """Why a payload was rejected: which kind, which field, which problem, in words."""

    kind: str
    field: str
    problem: str
    message: str


class _Invalid(Exception):
    """Internal signal carrying one field problem; never leaves this module."""

    def __init__(self, field: str, problem: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.problem = problem
        self.message = message


def validate(
    kind: EventKind, payload: object, *, now_ms: int, params: Params
) -> Event | ValidationError:
    """Check one decoded JSON payload of the given kind; never raises.

    `now_ms` is the processing clock, used only to reject timestamps more than
    `params.future_margin_ms` ahead of it (the model itself never reads a clock).
    """
    kind_name = kind if isinstance(kind, str) else repr(kind)
    if kind not in EVENT_KINDS:
        return ValidationError(
            kind_name,
            "kind",
            "invalid",
            f"unknown event kind {kind_name!r}; expected post, tag or order",
        )
    if not isinstance(payload, Mapping):
        return ValidationError(
            kind_name,
            "$",
            "not_an_object",
            f"a {kind} must be a JSON object, got {_tname(payload)}",
        )
    p = cast(Mapping[str, object], payload)
    try:
        if kind == "post":
            return _post(p, now_ms, params)
        if kind == "tag":
            return _tag(p, now_ms, params)
        return _order(p, now_ms, params)
    except _Invalid as bad:
        return ValidationError(kind_name, bad.field, bad.problem, f"{kind}.{bad.message}")
    except Exception as exc:  # the contract is "never raises"
        return ValidationError(
            kind_name, "$", "invalid", f"{kind} could not be validated ({type(exc).__name__})"
        )


# --- kinds -------------------------------------------------------------------


def _post(p: Mapping[str, object], now_ms: int, params: Params) -> PostEvent:
    ids = params.max_id_length
    return PostEvent(
        post_id=_id(p, "post_id", ids),
        creator_id=_id(p, "creator_id", ids),
        region=_region(p),
        content_type=_name(p, "content_type", params.max_name_length),
        themes=_themes(p, params),
        posted_at_ms=_time(p, "posted_at", now_ms, params),
        views=_count(p, "views", params.max_count),
        likes=_count(p, "likes", params.max_count),
        comments=_count(p, "comments", params.max_count),
        shares=_count(p, "shares", params.max_count),
        brand_id=_optional_id(p, "brand_id", ids),
        observed_at_ms=_optional_time(p, "observed_at", now_ms, params),
    )


def _tag(p: Mapping[str, object], now_ms: int, params: Params) -> TagEvent:
    ids = params.max_id_length
    return TagEvent(
        tag_id=_id(p, "tag_id", ids),
        post_id=_id(p, "post_id", ids),
        creator_id=_id(p, "creator_id", ids),
        product_id=_id(p, "product_id", ids),
        brand_id=_id(p, "brand_id", ids),
        theme=_name(p, "theme", params.max_name_length),
        tagged_at_ms=_time(p, "tagged_at", now_ms, params),
        campaign_id=_optional_id(p, "campaign_id", ids),
    )


def _order(p: Mapping[str, object], now_ms: int, params: Params) -> OrderEvent:
    ids = params.max_id_length
    return OrderEvent(
        order_id=_id(p, "order_id", ids),
        creator_id=_id(p, "creator_id", ids),
        post_id=_optional_id(p, "post_id", ids),
        product_id=_id(p, "product_id", ids),
        brand_id=_id(p, "brand_id", ids),
        theme=_name(p, "theme", params.max_name_length),
        quantity=_quantity(p, params),
        amount=_amount(p, params),
        currency=_currency(p, params),
        status=_status(p),
        ordered_at_ms=_time(p, "ordered_at", now_ms, params),
    )


# --- fields ------------------------------------------------------------------


def _tname(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list | tuple):
        return "array"
    if isinstance(v, Mapping):
        return "object"
    return type(v).__name__


def _get(p: Mapping[str, object], key: str) -> object:
    v = p.get(key, _MISSING)
    if v is _MISSING:
        raise _Invalid(key, "missing", f"{key} is required")
    if v is None:
        raise _Invalid(key, "missing", f"{key} is required (got null)")
    return v


def _text(key: str, v: object, limit: int) -> str:
    if not isinstance(v, str):
        raise _Invalid(key, "wrong_type", f"{key} must be a string, got {_tname(v)}")
    if not v.strip():
        raise _Invalid(key, "empty", f"{key} must not be empty")
    if len(v) > limit:
        raise _Invalid(key, "too_long", f"{key} is {len(v)} characters long; the limit is {limit}")
    if not v.isprintable():
        raise _Invalid(key, "invalid", f"{key} contains control characters")
    return v


# The fast paths below accept the common valid value in one expression and leave
# everything else to the slow path, which finds the precise problem.


def _id(p: Mapping[str, object], key: str, limit: int) -> str:
    # Identifiers are kept verbatim: trimming them could merge two distinct ids.
    v = p.get(key)
    if type(v) is str and 0 < len(v) <= limit and v.isprintable() and not v.isspace():
        return v
    return _text(key, _get(p, key), limit)


def _optional_id(p: Mapping[str, object], key: str, limit: int) -> str | None:
    v = p.get(key)
    if v is None:
        return None
    if type(v) is str and 0 < len(v) <= limit and v.isprintable() and not v.isspace():
        return v
    return _text(key, v, limit)


def _name(p: Mapping[str, object], key: str, limit: int) -> str:
    v = p.get(key)
    if type(v) is str and 0 < len(v) <= limit and v.isprintable() and not v.isspace():
        return v.strip().lower()
    return _text(key, _get(p, key), limit).strip().lower()


def _region(p: Mapping[str, object]) -> str:
    v = _text("region", _get(p, "region"), 16).strip().upper()
    if len(v) != 2 or not (v.isascii() and v.isalpha()):
        raise _Invalid(
            "region", "invalid", f"region {v!r} is not an ISO 3166-1 alpha-2 code such as US or ID"
        )
    return v


def _themes(p: Mapping[str, object], params: Params) -> tuple[str, ...]:
    v = _get(p, "themes")
    if not isinstance(v, list | tuple):
        raise _Invalid("themes", "wrong_type", f"themes must be an array, got {_tname(v)}")
    if len(v) > params.max_themes:
        raise _Invalid(
            "themes", "too_long", f"themes has {len(v)} entries; the limit is {params.max_themes}"
        )
    names = {
        _text(f"themes[{i}]", t, params.max_name_length).strip().lower() for i, t in enumerate(v)
    }
    return tuple(sorted(names))


def _whole(key: str, v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _Invalid(key, "wrong_type", f"{key} must be a whole number, got {_tname(v)}")
    if isinstance(v, float):
        if not math.isfinite(v) or not v.is_integer():
            raise _Invalid(key, "wrong_type", f"{key} must be a whole number, got {v!r}")
        return int(v)
    return v


def _count(p: Mapping[str, object], key: str, limit: int) -> int:
    v = p.get(key)
    if type(v) is int and 0 <= v <= limit:
        return v
    n = _whole(key, _get(p, key))
    if n < 0:
        raise _Invalid(key, "negative", f"{key} must not be negative, got {n}")
    if n > limit:
        raise _Invalid(key, "invalid", f"{key} {n} exceeds the maximum {limit}")
    return n


def _quantity(p: Mapping[str, object], params: Params) -> int:
    n = _count(p, "quantity", params.max_quantity)
    if n == 0:
        raise _Invalid("quantity", "invalid", "quantity must be at least 1")
    return n


def _amount(p: Mapping[str, object], params: Params) -> Decimal:
    v = _get(p, "amount")
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        raise _Invalid(
            "amount", "wrong_type", f"amount must be a decimal string or number, got {_tname(v)}"
        )
    if isinstance(v, str) and len(v) > 64:
        raise _Invalid("amount", "too_long", f"amount is {len(v)} characters long; the limit is 64")
    try:
        d = Decimal(repr(v) if isinstance(v, float) else v)
    except (InvalidOperation, ValueError):
        raise _Invalid("amount", "invalid", f"amount {v!r} is not a decimal number") from None
    if not d.is_finite():
        raise _Invalid("amount", "invalid", f"amount {v!r} is not a finite number")
    if d < 0:
        raise _Invalid("amount", "negative", f"amount must not be negative, got {v!r}")
    if d > params.max_amount:
        raise _Invalid("amount", "invalid", f"amount {v!r} exceeds the maximum {params.max_amount}")
    places = params.max_amount_decimals
    if d != d.quantize(Decimal(1).scaleb(-places)):
        raise _Invalid("amount", "invalid", f"amount {v!r} has more than {places} decimal places")
    return d


def _currency(p: Mapping[str, object], params: Params) -> str:
    code = _text("currency", _get(p, "currency"), 16).strip().upper()
    if code not in params.fx_usd_per_unit:
        known = ", ".join(sorted(params.fx_usd_per_unit))
        raise _Invalid(
            "currency",
            "unknown_currency",
            f"currency {code!r} is not in rate table {params.fx_version} ({known})",
        )
    return code


def _status(p: Mapping[str, object]) -> OrderStatus:
    s = _text("status", _get(p, "status"), 32).strip().lower()
    if s not in ORDER_STATUSES:
        raise _Invalid(
            "status", "unknown_status", f"status {s!r} is not one of {', '.join(ORDER_STATUSES)}"
        )
    return s


def _time(p: Mapping[str, object], key: str, now_ms: int, params: Params) -> int:
    v = p.get(key)
    if (
        type(v) is int
        and params.earliest_event_ms <= v <= now_ms + params.future_margin_ms
        and v <= _LATEST_MS
    ):
        return v
    return _checked_time(key, _get(p, key), now_ms, params)


def _optional_time(p: Mapping[str, object], key: str, now_ms: int, params: Params) -> int | None:
    v = p.get(key)
    return None if v is None else _checked_time(key, v, now_ms, params)


def _checked_time(key: str, v: object, now_ms: int, params: Params) -> int:
    if isinstance(v, str):
        ms = parse_rfc3339_ms(v)
        if ms is None:
            raise _Invalid(
                key,
                "bad_timestamp",
                f"{key} {v[:40]!r} is not an RFC 3339 time with an offset "
                "(e.g. 2025-11-26T04:30:00Z) nor epoch milliseconds",
            )
    elif isinstance(v, bool) or not isinstance(v, int | float):
        raise _Invalid(
            key,
            "wrong_type",
            f"{key} must be an RFC 3339 string or integer epoch milliseconds, got {_tname(v)}",
        )
    else:
        ms = _whole(key, v)
        if ms < 0:
            raise _Invalid(key, "negative", f"{key} must not be negative, got {ms}")
    if ms < params.earliest_event_ms:
        raise _Invalid(
            key,
            "bad_timestamp",
            f"{key} is before {format_ms(params.earliest_event_ms)} "
            "(epoch seconds sent instead of milliseconds?)",
        )
    if ms > _LATEST_MS:
        raise _Invalid(key, "bad_timestamp", f"{key} is after the year 9999")
    ahead = ms - now_ms
    if ahead > params.future_margin_ms:
        raise _Invalid(
            key,
            "future",
            f"{key} is {ahead / 1000:.1f} s ahead of the processing clock "
            f"(allowed: {params.future_margin_ms / 1000:.0f} s)",
        )
    return ms


def parse_rfc3339_ms(text: str) -> int | None:
    """Epoch milliseconds of an RFC 3339 date-time with an offset; None if not one.

    Integer arithmetic throughout (no float seconds), so `…:00.001Z` is exactly 1 ms.
    Fractions finer than a millisecond are truncated.
    """
    m = _RFC3339.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second, frac, sign, oh, om = m.groups()
    try:
        ordinal = _dt.date(int(year), int(month), int(day)).toordinal()
    except ValueError:
        return None
    h, mi, s = int(hour), int(minute), int(second)
    # RFC 3339 allows a leap second (:60); it is counted as the next second.
    if h > 23 or mi > 59 or s > 60:
        return None
    offset_min = 0
    if sign is not None:
        ohi, omi = int(oh), int(om)
        if ohi > 23 or omi > 59:
            return None
        offset_min = ohi * 60 + omi
        if sign == "-":
            offset_min = -offset_min
    ms = int((frac or "0")[:3].ljust(3, "0"))
    seconds = (((ordinal - _EPOCH_ORDINAL) * 24 + h) * 60 + mi - offset_min) * 60 + s
    return seconds * 1000 + ms


def format_ms(ms: int) -> str:
    """RFC 3339 (UTC, millisecond) rendering of epoch milliseconds, for messages and docs."""
    days, rem = divmod(ms, 86_400_000)
    date = _dt.date.fromordinal(_EPOCH_ORDINAL + days)
    secs, milli = divmod(rem, 1000)
    h, rest = divmod(secs, 3600)
    mi, s = divmod(rest, 60)
    return f"{date.isoformat()}T{h:02d}:{mi:02d}:{s:02d}.{milli:03d}Z"
