"""Turn decoded JSON into typed events, or into an error that names the field and the problem.

Bad input is normal in a stream fed by many producers, so validation never
raises: it returns either an event or a `ValidationError` whose `problem` is a
short stable code (safe as a metrics label) and whose `message` tells a human
exactly what to fix. Names are normalised here (themes and content types
lower-case with single spaces, region and currency upper-case, themes sorted and
de-duplicated) so that equal facts always compare equal further down, and themes
and content types outside the taxonomy become `other` (`scoring.labels`), listed in
the event's `unmapped`.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from operator import itemgetter
from typing import Any, Final, TypeGuard, cast

from scoring.events import (
    EVENT_KINDS,
    NO_UNMAPPED,
    ORDER_STATUSES,
    Event,
    EventKind,
    LabelKind,
    OrderEvent,
    OrderStatus,
    PostEvent,
    TagEvent,
    UnmappedLabel,
)
from scoring.labels import OTHER, normalise
from scoring.names import REGION_ALIASES
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
    if type(payload) is dict:
        try:
            if kind == "post":
                usual: Event | None = _usual_post(payload, now_ms, params)
            elif kind == "tag":
                usual = _usual_tag(payload, now_ms, params)
            elif kind == "order":
                usual = _usual_order(payload, now_ms, params)
            else:
                usual = None
        except Exception:  # a surprise here is the field-by-field path's to report
            usual = None
        if usual is not None:
            return usual
    kind_name = kind if isinstance(kind, str) else repr(kind)
    if kind not in EVENT_KINDS:
        return ValidationError(
            kind_name,
            "kind",
            "invalid",
            f"unknown event kind {kind_name!r}; expected post, tag or order",
        )
    if type(payload) is not dict and not isinstance(payload, Mapping):  # (ABC check is slow)
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


# --- kinds, field by field ----------------------------------------------------
# The reference: each field checked in contract order, so the first problem is the
# one reported. Payloads in the usual clean form never get here (see below).


def _post(p: Mapping[str, object], now_ms: int, params: Params) -> PostEvent:
    ids = params.max_id_length
    post_id = _id(p, "post_id", ids)
    creator_id = _id(p, "creator_id", ids)
    region = _region(p)
    content_type, ct_away = _label(
        _name(p, "content_type", params.max_name_length), params.content_type_set, "content_type"
    )
    themes, themes_away = _themes(p, params)
    return PostEvent(
        post_id=post_id,
        creator_id=creator_id,
        region=region,
        content_type=content_type,
        themes=themes,
        posted_at_ms=_time(p, "posted_at", now_ms, params),
        views=_count(p, "views", params.max_count),
        likes=_count(p, "likes", params.max_count),
        comments=_count(p, "comments", params.max_count),
        shares=_count(p, "shares", params.max_count),
        brand_id=_optional_id(p, "brand_id", ids),
        observed_at_ms=_optional_time(p, "observed_at", now_ms, params),
        unmapped=ct_away + themes_away,
    )


def _tag(p: Mapping[str, object], now_ms: int, params: Params) -> TagEvent:
    ids = params.max_id_length
    tag_id = _id(p, "tag_id", ids)
    post_id = _id(p, "post_id", ids)
    creator_id = _id(p, "creator_id", ids)
    product_id = _id(p, "product_id", ids)
    brand_id = _id(p, "brand_id", ids)
    theme, away = _label(_name(p, "theme", params.max_name_length), params.theme_set, "theme")
    return TagEvent(
        tag_id=tag_id,
        post_id=post_id,
        creator_id=creator_id,
        product_id=product_id,
        brand_id=brand_id,
        theme=theme,
        tagged_at_ms=_time(p, "tagged_at", now_ms, params),
        campaign_id=_optional_id(p, "campaign_id", ids),
        unmapped=away,
    )


def _order(p: Mapping[str, object], now_ms: int, params: Params) -> OrderEvent:
    ids = params.max_id_length
    order_id = _id(p, "order_id", ids)
    creator_id = _id(p, "creator_id", ids)
    post_id = _optional_id(p, "post_id", ids)
    product_id = _id(p, "product_id", ids)
    brand_id = _id(p, "brand_id", ids)
    theme, away = _label(_name(p, "theme", params.max_name_length), params.theme_set, "theme")
    return OrderEvent(
        order_id=order_id,
        creator_id=creator_id,
        post_id=post_id,
        product_id=product_id,
        brand_id=brand_id,
        theme=theme,
        quantity=_quantity(p, params),
        amount=_amount(p, params),
        currency=_currency(p, params),
        status=_status(p),
        ordered_at_ms=_time(p, "ordered_at", now_ms, params),
        unmapped=away,
    )


# --- kinds, the usual clean form in one pass ------------------------------------------
# Nearly every payload is already clean: ids and names printable and within their
# limits, names and codes already in their normal case, timestamps in one of a few
# shapes. These functions accept exactly that form and build the same event the
# field-by-field path would; for anything else they return None and leave the
# verdict (and the precise message) to it. tests/unit/scoring/test_scoring_usual.py
# compares the two on generated payloads.

# The required fields of each kind, fetched in one call (KeyError if one is missing).
_POST_FIELDS: Final = itemgetter("post_id", "creator_id", "region", "content_type", "themes",
                                 "posted_at", "views", "likes", "comments", "shares")  # fmt: skip
_TAG_FIELDS: Final = itemgetter("tag_id", "post_id", "creator_id", "product_id", "brand_id",
                                "theme", "tagged_at")  # fmt: skip
_ORDER_FIELDS: Final = itemgetter("order_id", "creator_id", "product_id", "brand_id", "theme",
                                  "quantity", "amount", "currency", "status",
                                  "ordered_at")  # fmt: skip


def _clean(v: object, limit: int) -> TypeGuard[str]:
    """A string id or name in its usual form (the checks of `_text`, all passing)."""
    return type(v) is str and 0 < len(v) <= limit and v.isprintable() and not v.isspace()


def _usual_post(p: dict[str, object], now_ms: int, params: Params) -> PostEvent | None:
    try:
        (post_id, creator_id, region, content_type, themes, posted, views, likes, comments,
         shares) = _POST_FIELDS(p)  # fmt: skip
    except KeyError:
        return None
    brand, observed = p.get("brand_id"), p.get("observed_at")
    ids, top = params.max_id_length, params.max_count
    if not (
        _clean(post_id, ids)
        and _clean(creator_id, ids)
        and type(region) is str
        and len(region) == 2
        and region.isascii()
        and region.isalpha()
        and _clean(content_type, params.max_name_length)
        and type(views) is int
        and 0 <= views <= top
        and type(likes) is int
        and 0 <= likes <= top
        and type(comments) is int
        and 0 <= comments <= top
        and type(shares) is int
        and 0 <= shares <= top
        and (brand is None or _clean(brand, ids))
    ):
        return None
    mapped = _usual_themes(themes, params)
    earliest, latest = params.earliest_event_ms, now_ms + params.future_margin_ms
    posted_ms = _usual_ms(posted, earliest, latest)
    if observed is None:
        observed_ms = None
    else:
        observed_ms = _usual_ms(observed, earliest, latest)
        if observed_ms is None:
            return None
    if mapped is None or posted_ms is None:
        return None
    theme_names, unmapped = mapped
    if content_type not in params.content_type_set:
        content_type, ct_away = _label(normalise(content_type), params.content_type_set,
                                       "content_type")  # fmt: skip
        unmapped = ct_away + unmapped
    ev = _UnfrozenPost()
    ev.post_id = post_id
    ev.creator_id = creator_id
    upper = region.upper()
    ev.region = REGION_ALIASES.get(upper, upper)
    ev.content_type = content_type
    ev.themes = theme_names
    ev.posted_at_ms = posted_ms
    ev.views = views
    ev.likes = likes
    ev.comments = comments
    ev.shares = shares
    ev.brand_id = brand
    ev.observed_at_ms = observed_ms
    ev.unmapped = unmapped
    ev.__class__ = PostEvent
    return cast(PostEvent, ev)


def _usual_tag(p: dict[str, object], now_ms: int, params: Params) -> TagEvent | None:
    try:
        tag_id, post_id, creator_id, product_id, brand, theme, tagged = _TAG_FIELDS(p)
    except KeyError:
        return None
    campaign = p.get("campaign_id")
    ids = params.max_id_length
    if not (
        _clean(tag_id, ids)
        and _clean(post_id, ids)
        and _clean(creator_id, ids)
        and _clean(product_id, ids)
        and _clean(brand, ids)
        and _clean(theme, params.max_name_length)
        and (campaign is None or _clean(campaign, ids))
    ):
        return None
    tagged_ms = _usual_ms(tagged, params.earliest_event_ms, now_ms + params.future_margin_ms)
    if tagged_ms is None:
        return None
    ev = _UnfrozenTag()
    ev.tag_id = tag_id
    ev.post_id = post_id
    ev.creator_id = creator_id
    ev.product_id = product_id
    ev.brand_id = brand
    if theme in params.theme_set:
        ev.theme, ev.unmapped = theme, NO_UNMAPPED
    else:
        ev.theme, ev.unmapped = _label(normalise(theme), params.theme_set, "theme")
    ev.tagged_at_ms = tagged_ms
    ev.campaign_id = campaign
    ev.__class__ = TagEvent
    return cast(TagEvent, ev)


def _usual_order(p: dict[str, object], now_ms: int, params: Params) -> OrderEvent | None:
    try:
        (order_id, creator_id, product_id, brand, theme, quantity, amount, currency, status,
         ordered) = _ORDER_FIELDS(p)  # fmt: skip
    except KeyError:
        return None
    post_id = p.get("post_id")
    ids = params.max_id_length
    if not (
        _clean(order_id, ids)
        and _clean(creator_id, ids)
        and (post_id is None or _clean(post_id, ids))
        and _clean(product_id, ids)
        and _clean(brand, ids)
        and _clean(theme, params.max_name_length)
        and type(quantity) is int
        and 1 <= quantity <= params.max_quantity
        and type(currency) is str
        and currency in params.fx_usd_per_unit
        and (status == "placed" or status == "cancelled" or status == "refunded")
    ):
        return None
    value = _usual_amount(amount, params)
    ordered_ms = _usual_ms(ordered, params.earliest_event_ms, now_ms + params.future_margin_ms)
    if value is None or ordered_ms is None:
        return None
    ev = _UnfrozenOrder()
    ev.order_id = order_id
    ev.creator_id = creator_id
    ev.post_id = post_id
    ev.product_id = product_id
    ev.brand_id = brand
    if theme in params.theme_set:
        ev.theme, ev.unmapped = theme, NO_UNMAPPED
    else:
        ev.theme, ev.unmapped = _label(normalise(theme), params.theme_set, "theme")
    ev.quantity = quantity
    ev.amount = value
    ev.currency = currency
    ev.status = status
    ev.ordered_at_ms = ordered_ms
    ev.__class__ = OrderEvent
    return cast(OrderEvent, ev)


# A frozen dataclass's __init__ stores each field through object.__setattr__, slow next to
# a plain store. So the usual path stores the fields into a plain class with the event's
# exact slots and then gives the object the event's class (Python allows assigning
# __class__ between classes of the same layout): the result is an ordinary frozen event,
# equal to one the constructor builds (test_scoring_usual compares them field by field).


def _unfrozen(cls: type[Event]) -> Any:
    """A plain class with the slots of the frozen, slotted dataclass `cls`."""
    return type(f"_Unfrozen{cls.__name__}", (), {"__slots__": cls.__slots__})


_UnfrozenPost: Final = _unfrozen(PostEvent)
_UnfrozenTag: Final = _unfrozen(TagEvent)
_UnfrozenOrder: Final = _unfrozen(OrderEvent)


def _usual_themes(
    v: object, params: Params
) -> tuple[tuple[str, ...], tuple[UnmappedLabel, ...]] | None:
    if type(v) is not list or len(v) > params.max_themes:
        return None
    limit = params.max_name_length
    known = params.theme_set
    if len(v) == 1:  # the usual number of themes
        t = v[0]
        if not _clean(t, limit):
            return None
        if t in known:
            return (t,), NO_UNMAPPED
        label, away = _label(normalise(t), known, "theme")
        return (label,), away
    names = set()
    for t in v:
        if not _clean(t, limit):
            return None
        names.add(t if t in known else normalise(t))
    return _map_themes(names, known)


def _usual_amount(v: object, params: Params) -> Decimal | None:
    """A plain ASCII decimal string ("12", "12.50") within the limits, as its Decimal."""
    if type(v) is not str:
        return None
    whole, point, fraction = v.partition(".")
    if not (
        whole.isdigit()
        and v.isascii()
        and len(v) <= 64
        and (not point or (fraction.isdigit() and len(fraction) <= params.max_amount_decimals))
    ):
        return None
    # Only digits and at most one point: a finite, non-negative Decimal whose exponent is
    # minus the number of decimals written (so 1.50 keeps its two places, as before).
    d = Decimal(v)
    return d if d <= params.max_amount else None


def _usual_ms(v: object, earliest: int, latest: int) -> int | None:
    """Epoch milliseconds of an int or RFC 3339 time within [earliest, latest] (and before
    the year 10000); None otherwise."""
    if type(v) is int:
        ms: int | None = v
    elif type(v) is str:
        ms = _fast_rfc3339(v)
        if ms is None:
            ms = _parse_rfc3339_ms(v)
    else:
        return None
    return ms if ms is not None and earliest <= ms <= latest and ms <= _LATEST_MS else None


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
        return normalise(v)
    return normalise(_text(key, _get(p, key), limit))


def _label(
    label: str, known: frozenset[str], kind: LabelKind
) -> tuple[str, tuple[UnmappedLabel, ...]]:
    """A normalised label as the taxonomy keeps it: itself, or `other` and a record of it."""
    if label in known:
        return label, NO_UNMAPPED
    return OTHER, (UnmappedLabel(kind, label),)


def _map_themes(
    names: set[str], known: frozenset[str]
) -> tuple[tuple[str, ...], tuple[UnmappedLabel, ...]]:
    """A post's distinct normalised themes, sorted, those outside the taxonomy as `other`."""
    away = names - known
    if not away:
        return tuple(sorted(names)), NO_UNMAPPED
    kept = names & known
    kept.add(OTHER)
    return tuple(sorted(kept)), tuple(UnmappedLabel("theme", t) for t in sorted(away))


def _region(p: Mapping[str, object]) -> str:
    v = p.get("region")
    if type(v) is str and len(v) == 2 and v.isascii() and v.isalpha():
        upper = v.upper()
        return REGION_ALIASES.get(upper, upper)
    v = _text("region", _get(p, "region"), 16).strip().upper()
    if len(v) != 2 or not (v.isascii() and v.isalpha()):
        raise _Invalid(
            "region", "invalid", f"region {v!r} is not an ISO 3166-1 alpha-2 code such as US or ID"
        )
    return REGION_ALIASES.get(v, v)


def _themes(
    p: Mapping[str, object], params: Params
) -> tuple[tuple[str, ...], tuple[UnmappedLabel, ...]]:
    v = p.get("themes")
    if type(v) is list and len(v) <= params.max_themes:
        limit = params.max_name_length
        names = set()
        for t in v:
            if not (type(t) is str and 0 < len(t) <= limit and t.isprintable() and not t.isspace()):
                break  # the slow path below names the problem
            names.add(normalise(t))
        else:
            return _map_themes(names, params.theme_set)
    v = _get(p, "themes")
    if not isinstance(v, list | tuple):
        raise _Invalid("themes", "wrong_type", f"themes must be an array, got {_tname(v)}")
    if len(v) > params.max_themes:
        raise _Invalid(
            "themes", "too_long", f"themes has {len(v)} entries; the limit is {params.max_themes}"
        )
    names = {normalise(_text(f"themes[{i}]", t, params.max_name_length)) for i, t in enumerate(v)}
    return _map_themes(names, params.theme_set)


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
    v = p.get("amount")
    if type(v) is str and 0 < len(v) <= 64:
        try:
            d = Decimal(v)
        except InvalidOperation:
            pass  # the slow path below names the problem
        else:
            exponent = d.as_tuple().exponent
            # A finite, non-negative amount within the maximum whose written form
            # already has few enough decimals (1.5000000 still gets the exact check).
            if (
                type(exponent) is int
                and exponent >= -params.max_amount_decimals
                and not d.is_signed()
                and d <= params.max_amount
            ):
                return d
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
    code = p.get("currency")
    if type(code) is str and code in params.fx_usd_per_unit:  # already normalised
        return code
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
    v = p.get("status")
    if v == "placed" or v == "cancelled" or v == "refunded":  # already normalised
        return v
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
    ms = _fast_rfc3339(text)
    return ms if ms is not None else _parse_rfc3339_ms(text)


def _parse_rfc3339_ms(text: str) -> int | None:
    """`parse_rfc3339_ms` by the regular expression: every form, every rejection."""
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


# The usual timestamp is read in four parts, each looked up in a small table: the date
# (days since 1970), the hour and minute, the seconds, and the tail (milliseconds and
# UTC offset). Every "HH:MM" and ":SS" of a day is in its table from the start; dates
# and tails are validated once, when first seen (a stream's timestamps share few of
# either), and remembered. Parsing is then four lookups and some arithmetic.
_HOURS_MINUTES: Final = {
    f"{h:02d}:{m:02d}": (h * 60 + m) * 60 for h in range(24) for m in range(60)
}
_SECONDS: Final = {f":{s:02d}": s for s in range(61)}  # :60, a leap second, is the next one
_DAYS: dict[str, int] = {}
_TAILS: dict[str, int] = {}  # tail -> milliseconds minus the offset in milliseconds
_DIGITS: Final = frozenset("0123456789")
_MEMO_LIMIT: Final = 100_000


def _fast_rfc3339(text: str) -> int | None:
    """`parse_rfc3339_ms` for the usual ASCII forms; None means "not decided here".

    Accepts exactly what the regular expression accepts for ASCII text shaped
    YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM); anything else, including every
    malformed string, is left to the regular expression.
    """
    days = _DAYS.get(text[:10])
    minutes = _HOURS_MINUTES.get(text[11:16])
    seconds = _SECONDS.get(text[16:19])
    rest = _TAILS.get(text[19:])
    if days is None or rest is None:
        if len(text) < 20:
            return None
        if days is None:
            days = _memo(_DAYS, text[:10], _day_number(text[:10]))
        if rest is None:
            rest = _memo(_TAILS, text[19:], _tail_ms(text[19:]))
        if days is None or rest is None:
            return None
    # A known date and a known tail mean the text is at least 20 characters long.
    if minutes is None or seconds is None or text[10] not in "Tt ":
        return None
    return (days * 86_400 + minutes + seconds) * 1000 + rest


def _memo(memo: dict[str, int], key: str, value: int | None) -> int | None:
    if value is not None:
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        memo[key] = value
    return value


def _day_number(date: str) -> int | None:
    """Days since 1970 of "YYYY-MM-DD" (ASCII digits, a real date); None otherwise."""
    if date[4] != "-" or date[7] != "-" or not _DIGITS.issuperset(date[:4] + date[5:7] + date[8:]):
        return None
    try:
        return _dt.date(int(date[:4]), int(date[5:7]), int(date[8:])).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        return None


def _tail_ms(tail: str) -> int | None:
    """Milliseconds of "[.fraction](Z|±HH:MM)" minus the UTC offset; None if not that."""
    ms = 0
    zone = tail
    if tail[0] == ".":
        zone = tail[1:].lstrip("0123456789")
        digits = len(tail) - 1 - len(zone)
        if not 1 <= digits <= 9:
            return None
        ms = int(tail[1 : 1 + min(digits, 3)].ljust(3, "0"))
    if zone == "Z" or zone == "z":
        return ms
    if len(zone) != 6 or zone[0] not in "+-" or zone[3] != ":":
        return None
    if not _DIGITS.issuperset(zone[1:3] + zone[4:6]):
        return None
    ohi, omi = int(zone[1:3]), int(zone[4:6])
    if ohi > 23 or omi > 59:
        return None
    offset_ms = (ohi * 60 + omi) * 60_000
    return ms - offset_ms if zone[0] == "+" else ms + offset_ms


def format_ms(ms: int) -> str:
    """RFC 3339 (UTC, millisecond) rendering of epoch milliseconds, for messages and docs."""
    days, rem = divmod(ms, 86_400_000)
    date = _dt.date.fromordinal(_EPOCH_ORDINAL + days)
    secs, milli = divmod(rem, 1000)
    h, rest = divmod(secs, 3600)
    mi, s = divmod(rest, 60)
    return f"{date.isoformat()}T{h:02d}:{mi:02d}:{s:02d}.{milli:03d}Z"
