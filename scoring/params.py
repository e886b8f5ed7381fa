"""Every number the scoring model depends on, in one immutable, versioned object.

Scores are only comparable when they were computed with the same weights,
windows, peer baselines and exchange rates, so all of them live here under a
single `model_version` (and the rate table under its own `fx_version`). Operators
override the defaults with a TOML file (`load_params`); anything the file does
not mention keeps its default, and a bad file fails loudly with a message that
names the offending key instead of silently scoring with half-read settings.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from decimal import Decimal, InvalidOperation
from functools import cached_property
from types import MappingProxyType
from typing import Literal, cast

from scoring.labels import DEFAULT_CONTENT_TYPES, DEFAULT_THEMES, OTHER, is_normal, normalise
from scoring.names import COMPONENT_SCORES

CurveKind = Literal["ratio", "inverse", "share"]
CURVE_KINDS: tuple[CurveKind, ...] = ("ratio", "inverse", "share")


#: Currencies every rate table must cover (the markets the product launches in).
REQUIRED_CURRENCIES = ("USD", "GBP", "IDR", "MYR", "VND", "PHP")


@dataclass(frozen=True, slots=True)
class Component:
    """One measured figure inside a score: its weight and how it maps to 0-100.

    `baseline` is the typical peer value; it scores exactly 50. `ratio` curves
    reward more (views, sales), `inverse` curves reward less (refund rate,
    irregularity), `share` curves work on proportions in 0..1 through their odds
    so that 100 % really reaches 100. `steepness` says how fast points move away
    from 50 as the figure moves away from the baseline.
    """

    weight: float
    kind: CurveKind
    baseline: float
    steepness: float = 1.0

    def points(self, x: float) -> float:
        """Map a figure onto 0..100 (log-logistic around the baseline)."""
        return curve_points(self.kind, self.baseline, self.steepness, x)


def curve_points(kind: str, baseline: float, steepness: float, x: float) -> float:
    """The 0..100 curve of a component: 50 at the baseline, see `Component`."""
    if kind == "ratio":
        if x <= 0.0:
            return 0.0
        r = x / baseline
    elif kind == "inverse":
        if x <= 0.0:
            return 100.0
        r = baseline / x
    else:
        if x <= 0.0:
            return 0.0
        if x >= 1.0:
            return 100.0
        r = (x * (1.0 - baseline)) / ((1.0 - x) * baseline)
    # Both branches keep the power <= 1, so huge or tiny ratios cannot overflow.
    if r >= 1.0:
        return 100.0 / (1.0 + float(r ** (-steepness)))
    p = float(r**steepness)
    return 100.0 * p / (1.0 + p)


@dataclass(frozen=True, slots=True)
class PeerBaseline:
    """What a typical creator's post of one content type gets (per post, per view)."""

    views_per_post: float
    engagement_rate: float  # (likes + comments + shares) / views
    conversation_rate: float  # (comments + shares) / views

    @property
    def engagements_per_post(self) -> float:
        return self.views_per_post * self.engagement_rate


def _c(weight: float, kind: CurveKind, baseline: float, steepness: float = 1.0) -> Component:
    return Component(weight=weight, kind=kind, baseline=baseline, steepness=steepness)


#: Component names per score; the formulas in `scoring.model` read exactly these.
DEFAULT_SCORES: Mapping[str, Mapping[str, Component]] = {
    "cooperation": {
        "collab_posts_per_week": _c(0.35, "ratio", 1.0, 1.2),
        "campaigns_answered": _c(0.30, "ratio", 1.0, 1.0),
        "distinct_brands": _c(0.20, "ratio", 3.0, 1.2),
        "repeat_brands": _c(0.15, "ratio", 1.0, 1.0),
    },
    "diligence": {
        "tagged_share": _c(0.50, "share", 0.4, 1.2),
        "shoppable_posts_per_week": _c(0.30, "ratio", 2.0, 1.2),
        "shoppable_posts_recent": _c(0.20, "ratio", 2.0, 1.0),
    },
    "influence": {
        "reach": _c(0.40, "ratio", 1.0, 1.0),
        "engagement": _c(0.35, "ratio", 1.0, 1.0),
        "weekly_views": _c(0.25, "ratio", 1.0, 0.8),
    },
    "reception": {
        "engagement_rate": _c(0.70, "ratio", 1.0, 1.5),
        "conversation_rate": _c(0.30, "ratio", 1.0, 1.2),
    },
    "sales": {
        "net_sales_per_post": _c(0.35, "ratio", 15.0, 1.0),
        "orders_per_post": _c(0.20, "ratio", 0.5, 1.0),
        "sales_per_1k_views": _c(0.25, "ratio", 2.0, 1.0),
        "refund_rate": _c(0.20, "inverse", 0.05, 1.2),
    },
    "consistency": {
        "active_days": _c(0.35, "share", 0.35, 1.2),
        "recent_active_days": _c(0.15, "share", 0.35, 1.0),
        "weekly_coverage": _c(0.20, "share", 0.75, 1.0),
        "evenness": _c(0.30, "inverse", 1.5, 1.5),
    },
    "collaboration": {
        "brands": _c(0.35, "ratio", 3.0, 1.0),
        "brand_depth": _c(0.35, "ratio", 2.0, 1.2),
        "sustained_share": _c(0.15, "share", 0.3, 1.0),
        "selling_share": _c(0.15, "share", 0.3, 1.0),
    },
}

DEFAULT_OVERALL_WEIGHTS: Mapping[str, float] = {
    "cooperation": 0.12,
    "diligence": 0.12,
    "influence": 0.22,
    "reception": 0.14,
    "sales": 0.22,
    "consistency": 0.10,
    "collaboration": 0.08,
}

DEFAULT_PEER_BASELINES: Mapping[str, PeerBaseline] = {
    "video": PeerBaseline(views_per_post=8000.0, engagement_rate=0.06, conversation_rate=0.008),
    "live": PeerBaseline(views_per_post=3000.0, engagement_rate=0.09, conversation_rate=0.03),
    "photo": PeerBaseline(views_per_post=3000.0, engagement_rate=0.05, conversation_rate=0.004),
    "default": PeerBaseline(views_per_post=5000.0, engagement_rate=0.06, conversation_rate=0.008),
}

DEFAULT_FX_USD_PER_UNIT: Mapping[str, Decimal] = {
    "USD": Decimal("1"),
    "EUR": Decimal("1.15"),
    "GBP": Decimal("1.31"),
    "IDR": Decimal("0.00006"),
    "MYR": Decimal("0.24"),
    "PHP": Decimal("0.017"),
    "SGD": Decimal("0.77"),
    "THB": Decimal("0.031"),
    "VND": Decimal("0.000038"),
}


@dataclass(frozen=True, kw_only=True)
class Params:
    """The scoring model's parameters; see docs/scoring.md for what each one does."""

    model_version: str
    window_days: int = 28
    short_window_days: int = 7
    #: The ids of records that left the window are recognised for this many more days:
    #: an event with such an id (a replay with another event time) is a duplicate, not
    #: a new record (0: forget them with their records).
    seen_days: int = 28
    future_margin_ms: int = 300_000
    #: Timestamps before this are rejected: almost always epoch seconds sent as ms.
    earliest_event_ms: int = 946_684_800_000  # 2000-01-01T00:00:00Z
    max_id_length: int = 128
    max_name_length: int = 64
    max_themes: int = 16
    #: The taxonomy: the themes and content types kept as themselves (in normal form);
    #: any other label is recorded as `other` (scoring.labels). Boards exist per label.
    themes: tuple[str, ...] = DEFAULT_THEMES
    content_types: tuple[str, ...] = DEFAULT_CONTENT_TYPES
    max_count: int = 2**53 - 1
    max_quantity: int = 1_000_000
    max_amount: Decimal = Decimal("1000000000000")
    max_amount_decimals: int = 6
    fx_version: str
    fx_usd_per_unit: Mapping[str, Decimal]
    peer_baselines: Mapping[str, PeerBaseline]
    #: Peer posting rate, turning peer views per post into peer views per week.
    peer_posts_per_week: float = 4.0
    overall_weights: Mapping[str, float]
    scores: Mapping[str, Mapping[str, Component]]
    #: Post-driven scores reach full weight at this many posts in the window;
    #: below it they are blended toward the neutral 50 in proportion.
    full_evidence_posts: int = 8
    #: Reception is a per-view rate, so its evidence is views rather than posts.
    full_evidence_views: int = 20_000
    #: Pseudo-observations at the peer baseline for shares with small denominators.
    share_prior: float = 2.0
    #: Pseudo-posts, pseudo-thousand-views and pseudo-orders at the peer baseline for sales.
    sales_prior_posts: float = 3.0
    sales_prior_kviews: float = 20.0
    refund_prior_orders: float = 5.0
    #: A card is provisional with fewer posts or orders (any status) than these.
    min_posts: int = 4
    min_orders: int = 2
    #: Card confidence = post_weight * min(1, posts / full_evidence_posts)
    #:                 + (1 - post_weight) * min(1, orders / full_confidence_orders).
    confidence_post_weight: float = 0.6
    full_confidence_orders: int = 5

    def __post_init__(self) -> None:
        for name in ("themes", "content_types"):  # any sequence of labels, stored as a tuple
            labels = getattr(self, name)
            if isinstance(labels, list):
                object.__setattr__(self, name, tuple(labels))
        problems = _problems(self)
        if problems:
            raise ValueError("invalid scoring parameters: " + "; ".join(problems))
        # Freeze the mappings so a shared Params cannot be edited behind a worker's back.
        object.__setattr__(self, "fx_usd_per_unit", MappingProxyType(dict(self.fx_usd_per_unit)))
        object.__setattr__(self, "peer_baselines", MappingProxyType(dict(self.peer_baselines)))
        object.__setattr__(self, "overall_weights", MappingProxyType(dict(self.overall_weights)))
        object.__setattr__(
            self,
            "scores",
            MappingProxyType({k: MappingProxyType(dict(v)) for k, v in self.scores.items()}),
        )

    def __reduce__(self) -> tuple[object, ...]:
        # Read-only mapping proxies do not pickle; rebuild from plain dicts.
        state = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in _MAPPING_FIELDS:
            state[name] = {k: dict(v) if isinstance(v, Mapping) else v
                           for k, v in state[name].items()}  # fmt: skip
        return (_rebuild_params, (state,))

    @cached_property
    def theme_set(self) -> frozenset[str]:
        """The themes kept as themselves: the taxonomy's and `other`."""
        return frozenset((*self.themes, OTHER))

    @cached_property
    def content_type_set(self) -> frozenset[str]:
        """The content types kept as themselves: the taxonomy's and `other`."""
        return frozenset((*self.content_types, OTHER))

    @cached_property
    def fx_scaled(self) -> tuple[int, Mapping[str, int]]:
        """The rate table as integers: USD = Σ millionths × rate / scale, exactly.

        Every rate is a finite decimal, so multiplying all of them by one power
        of ten makes them integers; sums of amounts then stay exact integers and
        a single division yields dollars, the same whatever the summation order.
        """
        places = max(max(0, -int(r.as_tuple().exponent)) for r in self.fx_usd_per_unit.values())
        rates = {c: int(r.scaleb(places)) for c, r in self.fx_usd_per_unit.items()}
        return 10 ** (places + 6), MappingProxyType(rates)

    @cached_property
    def peer_table(self) -> Mapping[str, tuple[float, float, float, float]]:
        """Per content type: peer views, engagements per post, engagement and conversation rates."""
        return MappingProxyType(
            {
                ct: (
                    b.views_per_post,
                    b.engagements_per_post,
                    b.engagement_rate,
                    b.conversation_rate,
                )
                for ct, b in self.peer_baselines.items()
            }
        )

    def peer(self, content_type: str) -> PeerBaseline:
        """The peer baseline for a content type, falling back to `default`."""
        baseline = self.peer_baselines.get(content_type)
        return baseline if baseline is not None else self.peer_baselines["default"]


def _rebuild_params(state: dict[str, object]) -> Params:
    return Params(**state)  # type: ignore[arg-type]


def _finite_positive(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def _problems(p: Params) -> list[str]:
    out: list[str] = []
    if not isinstance(p.model_version, str) or not p.model_version.strip():
        out.append("model_version must be a non-empty string")
    if not isinstance(p.fx_version, str) or not p.fx_version.strip():
        out.append("fx_version must be a non-empty string")
    ints = {
        "window_days": (1, 200),
        "short_window_days": (1, 200),
        "seen_days": (0, 400),
        "future_margin_ms": (0, 10**12),
        "earliest_event_ms": (0, 253_402_300_799_999),
        "max_id_length": (1, 10_000),
        "max_name_length": (1, 10_000),
        "max_themes": (1, 1_000),
        "max_count": (1, 2**63 - 1),
        "max_quantity": (1, 2**31 - 1),
        "max_amount_decimals": (0, 6),
        "full_evidence_posts": (1, 10_000),
        "full_evidence_views": (1, 10**12),
        "min_posts": (0, 10_000),
        "min_orders": (0, 10_000),
        "full_confidence_orders": (1, 10_000),
    }
    for name, (lo, hi) in ints.items():
        v = getattr(p, name)
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            out.append(f"{name} must be an integer in [{lo}, {hi}], got {v!r}")
    if (
        isinstance(p.short_window_days, int)
        and isinstance(p.window_days, int)
        and p.short_window_days > p.window_days
    ):
        out.append("short_window_days must not exceed window_days")
    for name in ("peer_posts_per_week", "share_prior", "sales_prior_posts"):
        if not _finite_positive(getattr(p, name)):
            out.append(f"{name} must be a positive number")
    for name in ("sales_prior_kviews", "refund_prior_orders"):
        if not _finite_positive(getattr(p, name)):
            out.append(f"{name} must be a positive number")
    cpw = p.confidence_post_weight
    if not isinstance(cpw, int | float) or isinstance(cpw, bool) or not 0.0 <= cpw <= 1.0:
        out.append("confidence_post_weight must be a number in [0, 1]")
    if not isinstance(p.max_amount, Decimal) or not p.max_amount.is_finite() or p.max_amount <= 0:
        out.append("max_amount must be a positive finite Decimal")
    out.extend(_taxonomy_problems("themes", p.themes))
    out.extend(_taxonomy_problems("content_types", p.content_types))
    out.extend(_fx_problems(p.fx_usd_per_unit))
    out.extend(_peer_problems(p.peer_baselines))
    out.extend(_weight_problems(p.overall_weights))
    out.extend(_score_problems(p.scores))
    return out


#: The most labels a taxonomy may list: each one can become a board per region and score.
MAX_TAXONOMY = 1_000


def _taxonomy_problems(name: str, labels: object) -> list[str]:
    if not isinstance(labels, tuple):
        return [f"{name} must be a list of strings"]
    if len(labels) > MAX_TAXONOMY:
        return [f"{name} lists {len(labels)} labels; the limit is {MAX_TAXONOMY}"]
    out: list[str] = []
    seen: set[str] = set()
    for i, label in enumerate(labels):
        where = f"{name}[{i}]"
        if not isinstance(label, str) or not label or not label.isprintable():
            out.append(f"{where} must be a non-empty printable string, got {label!r}")
        elif not is_normal(label):
            out.append(
                f"{where} {label!r} is not in normal form (lower case, single spaces): "
                f"write {normalise(label)!r}"
            )
        elif label in seen:
            out.append(f"{where} {label!r} is listed twice")
        else:
            seen.add(label)
    return out


def _fx_problems(fx: Mapping[str, Decimal]) -> list[str]:
    out: list[str] = []
    if not isinstance(fx, Mapping):
        return ["fx_usd_per_unit must be a table"]
    for code, rate in fx.items():
        if not (isinstance(code, str) and len(code) == 3 and code.isascii() and code.isupper()):
            out.append(f"fx_usd_per_unit: {code!r} is not an upper-case ISO 4217 code")
        if not isinstance(rate, Decimal) or not rate.is_finite() or rate <= 0:
            out.append(f"fx_usd_per_unit.{code}: rate must be a positive decimal, got {rate!r}")
    missing = [c for c in REQUIRED_CURRENCIES if c not in fx]
    if missing:
        out.append(f"fx_usd_per_unit lacks required currencies {', '.join(missing)}")
    return out


def _peer_problems(peers: Mapping[str, PeerBaseline]) -> list[str]:
    out: list[str] = []
    if not isinstance(peers, Mapping) or "default" not in peers:
        return ["peer_baselines must be a table with a 'default' entry"]
    for ct, b in peers.items():
        if not isinstance(b, PeerBaseline):
            out.append(f"peer_baselines.{ct} must be a PeerBaseline")
            continue
        for f in ("views_per_post", "engagement_rate", "conversation_rate"):
            if not _finite_positive(getattr(b, f)):
                out.append(f"peer_baselines.{ct}.{f} must be a positive number")
    return out


def _weight_problems(weights: Mapping[str, float]) -> list[str]:
    if not isinstance(weights, Mapping) or set(weights) != set(COMPONENT_SCORES):
        return [f"overall_weights must have exactly the keys {', '.join(COMPONENT_SCORES)}"]
    out = [
        f"overall_weights.{k} must be a non-negative number"
        for k, w in weights.items()
        if not isinstance(w, int | float) or isinstance(w, bool) or not math.isfinite(w) or w < 0
    ]
    if not out and sum(weights.values()) <= 0:
        out.append("overall_weights must not all be zero")
    return out


def _score_problems(scores: Mapping[str, Mapping[str, Component]]) -> list[str]:
    if not isinstance(scores, Mapping) or set(scores) != set(DEFAULT_SCORES):
        return [f"scores must have exactly the keys {', '.join(DEFAULT_SCORES)}"]
    out: list[str] = []
    for name, comps in scores.items():
        expected = set(DEFAULT_SCORES[name])
        if not isinstance(comps, Mapping) or set(comps) != expected:
            out.append(f"scores.{name} must have exactly the components {', '.join(expected)}")
            continue
        total = 0.0
        for cname, c in comps.items():
            where = f"scores.{name}.{cname}"
            if not isinstance(c, Component):
                out.append(f"{where} must be a Component")
                continue
            if c.kind not in CURVE_KINDS:
                out.append(f"{where}.kind must be one of {', '.join(CURVE_KINDS)}")
            if not isinstance(c.weight, int | float) or not math.isfinite(c.weight) or c.weight < 0:
                out.append(f"{where}.weight must be a non-negative number")
            else:
                total += c.weight
            if not _finite_positive(c.baseline) or (c.kind == "share" and c.baseline >= 1):
                out.append(f"{where}.baseline must be positive (and below 1 for a share)")
            if not _finite_positive(c.steepness) or c.steepness > 10:
                out.append(f"{where}.steepness must be in (0, 10]")
        if total <= 0:
            out.append(f"scores.{name}: component weights must not all be zero")
    return out


DEFAULT_PARAMS = Params(
    model_version="creator-scores-1.0",
    fx_version="static-2025-11",
    fx_usd_per_unit=DEFAULT_FX_USD_PER_UNIT,
    peer_baselines=DEFAULT_PEER_BASELINES,
    overall_weights=DEFAULT_OVERALL_WEIGHTS,
    scores=DEFAULT_SCORES,
)

# --- loading from TOML -------------------------------------------------------

_MAPPING_FIELDS = ("fx_usd_per_unit", "peer_baselines", "overall_weights", "scores")


def load_params(path: str | os.PathLike[str], base: Params | None = None) -> Params:
    """Read a TOML parameters file; keys it sets override `base` (the defaults).

    Tables merge key by key (a file may change one weight or add one currency).
    Raises ValueError naming the file and the offending key on any problem.
    """
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ValueError(f"{os.fspath(path)}: cannot read parameters file: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{os.fspath(path)}: not valid TOML: {exc}") from exc
    try:
        return params_from_mapping(data, base)
    except ValueError as exc:
        raise ValueError(f"{os.fspath(path)}: {exc}") from exc


def params_from_mapping(data: Mapping[str, object], base: Params | None = None) -> Params:
    """Apply a decoded TOML document (or any mapping of the same shape) to `base`."""
    base = DEFAULT_PARAMS if base is None else base
    known = {f.name: f for f in fields(Params)}
    changes: dict[str, object] = {}
    for key, value in data.items():
        if key not in known:
            raise ValueError(f"unknown parameter {key!r}")
        if key in _MAPPING_FIELDS:
            if not isinstance(value, Mapping):
                raise ValueError(f"{key} must be a table")
            changes[key] = _merge_mapping(key, getattr(base, key), value)
        else:
            changes[key] = _scalar(key, getattr(base, key), value)
    return replace(base, **changes)  # type: ignore[arg-type]


def _scalar(key: str, current: object, value: object) -> object:
    if isinstance(current, bool) or isinstance(value, bool):
        raise ValueError(f"{key} must not be a boolean")
    if isinstance(current, str):
        if not isinstance(value, str):
            raise ValueError(f"{key} must be a string, got {type(value).__name__}")
        return value
    if isinstance(current, int):
        if not isinstance(value, int):
            raise ValueError(f"{key} must be an integer, got {type(value).__name__}")
        return value
    if isinstance(current, float):
        if not isinstance(value, int | float):
            raise ValueError(f"{key} must be a number, got {type(value).__name__}")
        return float(value)
    if isinstance(current, Decimal):
        return _decimal(key, value)
    if isinstance(current, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{key} must be a list of strings")
        return tuple(value)
    raise ValueError(f"{key} cannot be set from a file")  # pragma: no cover - all fields covered


def _decimal(key: str, value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{key} must be a decimal number or string")
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"{key} must be a decimal number, got {value!r}") from exc


def _number(key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} must be a number, got {type(value).__name__}")
    return float(value)


def _merge_mapping(key: str, current: Mapping[str, object], value: Mapping[str, object]) -> object:
    merged: dict[str, object] = dict(current)
    for sub, v in value.items():
        where = f"{key}.{sub}"
        if key == "fx_usd_per_unit":
            merged[sub] = _decimal(where, v)
        elif key == "overall_weights":
            merged[sub] = _number(where, v)
        elif key == "peer_baselines":
            merged[sub] = _merge_dataclass(where, cast(PeerBaseline | None, merged.get(sub)), v)
        else:
            if sub not in merged:
                raise ValueError(f"unknown score {where!r}")
            if not isinstance(v, Mapping):
                raise ValueError(f"{where} must be a table")
            comps: dict[str, object] = dict(cast(Mapping[str, object], merged[sub]))
            for cname, cv in v.items():
                cwhere = f"{where}.{cname}"
                if cname not in comps:
                    raise ValueError(f"unknown component {cwhere!r}")
                comps[cname] = _merge_dataclass(cwhere, cast(Component, comps[cname]), cv)
            merged[sub] = comps
    return merged


def _merge_dataclass(
    where: str, current: PeerBaseline | Component | None, value: object
) -> PeerBaseline | Component:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} must be a table")
    cls: type[PeerBaseline] | type[Component] = (
        type(current) if current is not None else PeerBaseline
    )
    names = [f.name for f in fields(cls)]
    values: dict[str, object] = {n: getattr(current, n) for n in names} if current else {}
    for k, v in value.items():
        if k not in names:
            raise ValueError(f"unknown key {where}.{k} (expected {', '.join(names)})")
        if k == "kind":
            if v not in CURVE_KINDS:
                raise ValueError(f"{where}.kind must be one of {', '.join(CURVE_KINDS)}")
            values[k] = v
        else:
            values[k] = _number(f"{where}.{k}", v)
    missing = [n for n in names if n not in values]
    if missing:
        raise ValueError(f"{where} needs {', '.join(missing)}")
    return cls(**values)  # type: ignore[arg-type]
