"""Scores a brand partner can trust and a creator can understand, from a creator's state.

Every score is a weighted sum of a few measured figures, each mapped onto
0-100 by a curve around the typical peer value (which scores 50). Thin data is
pulled toward that neutral 50 instead of being scored as bad, and every score
carries an explanation whose contributions add up to its value. The formulas
and the reasoning behind them are in docs/scoring.md; the numbers are in
`scoring.params`. Scores are computed as of the creator's event-time watermark,
never a clock, so a replay reproduces them exactly.

A worker scores a creator after every batch, and a batch usually moves a few
figures, so the state keeps the parts of its last card (`_Memo`): the running
totals say what moved, and only the scores, breakdowns and explanations whose
inputs moved are computed again. The arithmetic is that of the formulas, in the
same order, so a reused part is bit for bit what a recomputation gives.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from itertools import repeat
from operator import floordiv, itemgetter, mul, sub
from types import MappingProxyType
from typing import Any, Final, NamedTuple, TypeVar

from scoring.params import COMPONENT_SCORES, DEFAULT_SCORES, Params
from scoring.state import (
    _MOVED_DAYS,
    _MOVED_ORDERS,
    _MOVED_RECENT,
    DAY_MS,
    CreatorState,
    OrderFigures,
    PostFigures,
    WindowStats,
    net_usd,
)

SCORE_NAMES: Final = (
    "overall",
    "cooperation",
    "diligence",
    "influence",
    "reception",
    "sales",
    "consistency",
    "collaboration",
)
#: Region of a creator none of whose posts has been seen (CLDR's "unknown region").
UNKNOWN_REGION: Final = "ZZ"
PRIOR: Final = "neutral_prior"

SCORE_LABELS: Final = {
    "overall": "Overall",
    "cooperation": "Cooperation",
    "diligence": "Diligence",
    "influence": "Influence",
    "reception": "Reception",
    "sales": "Sales",
    "consistency": "Consistency",
    "collaboration": "Collaboration",
}
COMPONENT_LABELS: Final = {
    "collab_posts_per_week": "brand collaboration posts",
    "campaigns_answered": "campaigns answered",
    "distinct_brands": "brands worked with",
    "repeat_brands": "returning brands",
    "tagged_share": "share of posts with product tags",
    "shoppable_posts_per_week": "shoppable posts per week",
    "shoppable_posts_recent": "recent shoppable posts",
    "reach": "views per post",
    "engagement": "engagement per post",
    "weekly_views": "views per week",
    "engagement_rate": "engagement per view",
    "conversation_rate": "comments and shares per view",
    "net_sales_per_post": "net sales per post",
    "orders_per_post": "orders per post",
    "sales_per_1k_views": "sales per 1,000 views",
    "refund_rate": "refund rate",
    "active_days": "days with a post",
    "recent_active_days": "recent days with a post",
    "weekly_coverage": "weeks with a post",
    "evenness": "steadiness of daily posting",
    "brands": "partner brands",
    "brand_depth": "days per partner brand",
    "sustained_share": "lasting partnerships",
    "selling_share": "partnerships that sell",
    PRIOR: "neutral starting value",
}


@dataclass(frozen=True, slots=True)
class Contribution:
    """One input of a score: the figure used, the points it adds, and a sentence."""

    name: str
    value: float
    points: float
    text: str


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a score has its value; the contributions' points add up to it."""

    score: str
    value: float
    summary: str
    contributions: tuple[Contribution, ...]


@dataclass(frozen=True)
class ScoreCard:
    """All scores of one creator as of its event-time watermark, with explanations."""

    creator_id: str
    region: str
    model_version: str
    as_of_ms: int
    overall: float
    cooperation: float
    diligence: float
    influence: float
    reception: float
    sales: float
    consistency: float
    collaboration: float
    provisional: bool
    confidence: float
    influence_by_theme: Mapping[str, float]
    influence_by_content_type: Mapping[str, float]
    overall_by_theme: Mapping[str, float]
    overall_by_content_type: Mapping[str, float]
    explanations: Mapping[str, Explanation]

    def __reduce__(self) -> tuple[object, ...]:
        # Read-only mapping proxies do not pickle; the dict form does, exactly.
        return (ScoreCard.from_dict, (self.to_dict(),))

    def values(self) -> dict[str, float]:
        """The eight headline scores by name."""
        return {name: getattr(self, name) for name in SCORE_NAMES}

    def to_dict(self) -> dict[str, object]:
        """A JSON-able dict (plain str, int, float, bool, list and dict only)."""
        return {
            "creator_id": self.creator_id,
            "region": self.region,
            "model_version": self.model_version,
            "as_of_ms": self.as_of_ms,
            **self.values(),
            "provisional": self.provisional,
            "confidence": self.confidence,
            "influence_by_theme": dict(self.influence_by_theme),
            "influence_by_content_type": dict(self.influence_by_content_type),
            "overall_by_theme": dict(self.overall_by_theme),
            "overall_by_content_type": dict(self.overall_by_content_type),
            "explanations": explanation_dicts(self.explanations),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> ScoreCard:
        """Inverse of `to_dict`; ValueError naming the field on malformed input."""
        if not isinstance(d, Mapping):
            raise ValueError(f"a score card must be an object, got {type(d).__name__}")
        explanations_raw = _mapping(d, "explanations")
        explanations = {str(name): _explanation(name, e) for name, e in explanations_raw.items()}
        as_of = _field(d, "as_of_ms", int)
        return cls(
            creator_id=_field(d, "creator_id", str),
            region=_field(d, "region", str),
            model_version=_field(d, "model_version", str),
            as_of_ms=as_of,
            **{name: _number(d, name) for name in SCORE_NAMES},
            provisional=_field(d, "provisional", bool),
            confidence=_number(d, "confidence"),
            influence_by_theme=_float_map(d, "influence_by_theme"),
            influence_by_content_type=_float_map(d, "influence_by_content_type"),
            overall_by_theme=_float_map(d, "overall_by_theme"),
            overall_by_content_type=_float_map(d, "overall_by_content_type"),
            explanations=MappingProxyType(explanations),
        )


def explanation_summary(explanations: Mapping[str, Explanation], name: str) -> str:
    """The summary of score `name` ("" when the card has no explanation for it)."""
    if type(explanations) is _LazyExplanations and name in SCORE_NAMES:
        return explanations.summary(name)
    e = explanations.get(name)
    return "" if e is None else e.summary


def explanation_points(
    explanations: Mapping[str, Explanation], name: str
) -> list[tuple[str, float]] | None:
    """(input, points) of each contribution to score `name`; None when it is not explained.

    For a card fresh from `score` (or from `explanations_from_basis`) the points are
    computed from the figures without writing any sentence.
    """
    if type(explanations) is _LazyExplanations and name in SCORE_NAMES:
        return explanations.points(name)
    e = explanations.get(name)
    return None if e is None else [(c.name, c.points) for c in e.contributions]


def contribution_text(explanations: Mapping[str, Explanation], name: str, input_name: str) -> str:
    """The sentence about input `input_name` in the explanation of score `name` ("" if none)."""
    if type(explanations) is _LazyExplanations and name in SCORE_NAMES:
        return explanations.sentence(name, input_name)
    e = explanations.get(name)
    if e is None:
        return ""
    return next((c.text for c in e.contributions if c.name == input_name), "")


def explanation_dicts(explanations: Mapping[str, Explanation]) -> dict[str, dict[str, Any]]:
    """Explanations as plain dicts (the `to_dict` form), new on every call.

    For a card fresh from `score` this is built straight from the texts the explainer
    wrote, without creating the Explanation objects, which cost more than the dicts.
    """
    if type(explanations) is _LazyExplanations:
        return explanations.as_dicts()  # straight from the plain form, no objects built
    return {
        name: {
            "score": e.score,
            "value": e.value,
            "summary": e.summary,
            "contributions": [
                {"name": c.name, "value": c.value, "points": c.points, "text": c.text}
                for c in e.contributions
            ],
        }
        for name, e in explanations.items()
    }


#: Version of the `explanation_basis` layout; a reader refuses other versions.
BASIS_VERSION: Final = 1


def explanation_basis(explanations: Mapping[str, Explanation]) -> dict[str, Any] | None:
    """The figures a fresh card's explanations are written from, as JSON-able data.

    Writing the sentences costs more than computing the scores, and most cards are
    replaced before anyone reads why. A worker stores these figures (the creator's
    counts, each score's inputs and evidence, the values) instead of the texts;
    `explanations_from_basis` writes the very same texts from them when they are read.
    None for a card that did not come from `score` (e.g. one rebuilt by `from_dict`).
    """
    if type(explanations) is not _LazyExplanations:
        return None
    e = explanations._explainer
    return {
        "v": BASIS_VERSION,
        "facts": list(e.facts),
        "figures": {name: [list(xs), ev] for name, (xs, ev) in e.figures.items()},
        "values": [e.values[name] for name in COMPONENT_SCORES],
        "overall": e.overall,
        "provisional": e.provisional,
    }


def explanations_from_basis(basis: object, params: Params) -> Mapping[str, Explanation]:
    """The explanations `explanation_basis` was taken from, written out with `params`.

    The texts equal the card's own when `params` are the parameters it was scored with
    (the reader checks the model version). ValueError naming the part on malformed input.
    """
    if not isinstance(basis, Mapping):
        raise ValueError(f"explanation basis must be an object, got {type(basis).__name__}")
    if basis.get("v") != BASIS_VERSION:
        raise ValueError(f"explanation basis version {basis.get('v')!r}, expected {BASIS_VERSION}")
    facts = basis.get("facts")
    if not isinstance(facts, list) or len(facts) != len(_Facts._fields):
        raise ValueError(f"facts: expected a list of {len(_Facts._fields)} numbers")
    if not all(_is_number(x) for x in facts):
        raise ValueError("facts: expected numbers only")
    raw_figures = basis.get("figures")
    if not isinstance(raw_figures, Mapping):
        raise ValueError("figures: expected an object by score name")
    m = _model(params)
    figures: dict[str, tuple[tuple[float, ...], float]] = {}
    for name in COMPONENT_SCORES:
        entry = raw_figures.get(name)
        if (
            not isinstance(entry, list)
            or len(entry) != 2
            or not isinstance(entry[0], list)
            or len(entry[0]) != len(m.specs[name])
            or not all(_is_number(x) for x in entry[0])
            or not _is_number(entry[1])
        ):
            raise ValueError(f"figures.{name}: expected [[{len(m.specs[name])} numbers], number]")
        figures[name] = (tuple(entry[0]), entry[1])
    values = basis.get("values")
    if (
        not isinstance(values, list)
        or len(values) != len(COMPONENT_SCORES)
        or not all(_is_number(x) for x in values)
    ):
        raise ValueError(f"values: expected a list of {len(COMPONENT_SCORES)} numbers")
    overall, provisional = basis.get("overall"), basis.get("provisional")
    if not isinstance(overall, int | float) or not _is_number(overall):
        raise ValueError("overall: expected a number")
    if not isinstance(provisional, bool):
        raise ValueError("provisional: expected true or false")
    explainer = _Explainer(
        _Memo(m, None),
        _Facts(*facts),
        figures,
        dict(zip(COMPONENT_SCORES, values, strict=True)),
        overall,
        provisional,
    )
    return _LazyExplanations(explainer)


def _is_number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


_T = TypeVar("_T")


def _field(d: Mapping[str, object], key: str, typ: type[_T]) -> _T:
    v = d.get(key)
    if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
        raise ValueError(f"score card field {key!r} must be {typ.__name__}, got {v!r:.40}")
    return v


def _mapping(d: Mapping[str, object], key: str) -> Mapping[str, object]:
    v = d.get(key)
    if not isinstance(v, Mapping):
        raise ValueError(f"score card field {key!r} must be an object, got {v!r:.40}")
    return v


def _number(d: Mapping[str, object], key: str) -> float:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ValueError(f"score card field {key!r} must be a finite number, got {v!r:.40}")
    return float(v)


def _float_map(d: Mapping[str, object], key: str) -> Mapping[str, float]:
    raw = _mapping(d, key)
    return MappingProxyType({str(k): _number(raw, k) for k in raw})


def _explanation(name: object, e: object) -> Explanation:
    if not isinstance(e, Mapping):
        raise ValueError(f"explanation {name!r} must be an object")
    contributions = _field(e, "contributions", list)
    parts = []
    for c in contributions:
        if not isinstance(c, Mapping):
            raise ValueError(f"explanation {name!r} has a contribution that is not an object")
        parts.append(
            Contribution(
                name=_field(c, "name", str),
                value=_number(c, "value"),
                points=_number(c, "points"),
                text=_field(c, "text", str),
            )
        )
    return Explanation(
        score=_field(e, "score", str),
        value=_number(e, "value"),
        summary=_field(e, "summary", str),
        contributions=tuple(parts),
    )


# --- the model -------------------------------------------------------------------

# One component of a score, compiled: (name, weight share, curve kind, baseline, steepness).
_Spec = tuple[tuple[str, float, str, float, float], ...]
# The same for the hot path: (100 x weight share, kind code, baseline, steepness, -steepness,
# 1 - baseline). Kind codes: 0 ratio, 1 inverse, 2 share.
_Fast = tuple[tuple[float, int, float, float, float, float], ...]
_KIND_CODES: Final = {"ratio": 0, "inverse": 1, "share": 2}
_SLICED: Final = ("influence", "reception", "sales")


class _Model:
    """Params compiled for the hot path: component order fixed, weights normalised,
    and the fixed parts of the explanation sentences written once."""

    __slots__ = (
        "fast",
        "names",
        "params",
        "peer_default",
        "peers",
        "quotes",
        "shares",
        "sliced_weights",
        "specs",
        "typical",
        "weights",
        "words",
    )

    def __init__(self, params: Params) -> None:
        self.params = params
        self.specs: dict[str, _Spec] = {}
        self.fast: dict[str, _Fast] = {}
        for score_name, names in DEFAULT_SCORES.items():
            comps = params.scores[score_name]
            total = sum(comps[n].weight for n in names)
            spec: _Spec = tuple(
                (n, comps[n].weight / total, comps[n].kind, comps[n].baseline, comps[n].steepness)
                for n in names
            )
            self.specs[score_name] = spec
            self.fast[score_name] = tuple(
                (w * 100.0, _KIND_CODES[kind], b, s, -s, 1.0 - b) for _, w, kind, b, s in spec
            )
        wsum = sum(params.overall_weights[n] for n in COMPONENT_SCORES)
        self.weights = tuple(params.overall_weights[n] / wsum for n in COMPONENT_SCORES)
        w_infl, w_rec, w_sales = (self.weights[COMPONENT_SCORES.index(n)] for n in _SLICED)
        self.sliced_weights = (w_infl, w_rec, w_sales)
        self.peers = params.peer_table
        self.peer_default = self.peers["default"]
        # "(typical: ...)" endings per component, and "weighted 22%." per score.
        self.typical: dict[str, str] = {}
        for compiled in self.specs.values():
            for name, _, _, b, _ in compiled:
                self.typical[name] = _typical(name, b)
        # Per score: its input names, and each input's weight share (explanations).
        self.names = {name: tuple(c[0] for c in spec) for name, spec in self.specs.items()}
        self.shares = {name: tuple(c[1] for c in spec) for name, spec in self.specs.items()}
        self.quotes = {
            name: itemgetter(*(_Facts._fields.index(f) for f in fields))
            for name, fields in _QUOTES.items()
        }
        self.words = {
            name: f", weighted {w:.0%}."
            for name, w in zip(COMPONENT_SCORES, self.weights, strict=True)
        }


def _typical(name: str, b: float) -> str:
    if name in ("tagged_share", "refund_rate"):
        return f"{b:.0%}"
    if name in ("net_sales_per_post", "sales_per_1k_views"):
        return _usd(b)
    return f"{b:g}"


_MODELS: dict[int, _Model] = {}


def _model(params: Params) -> _Model:
    # A memo keyed by identity: Params are immutable, and workers hold one for long.
    m = _MODELS.get(id(params))
    if m is None or m.params is not params:
        if len(_MODELS) >= 64:
            _MODELS.clear()
        m = _MODELS[id(params)] = _Model(params)
    return m


def _blend_value(spec: _Fast, xs: tuple[float, ...], evidence: float) -> float:
    """The score of a set of figures: weighted curve points, blended with the neutral 50.

    The curve is `params.curve_points`, inlined (this runs for every theme and content
    type), with the same floating-point operations in the same order, so the points
    are bit-for-bit those of `curve_points`.
    """
    total = 0.0
    for (w100, kind, b, s, neg_s, one_minus_b), x in zip(spec, xs, strict=True):
        if kind == 0:
            if x <= 0.0:
                continue
            r = x / b
        elif kind == 1:
            if x <= 0.0:
                total += w100
                continue
            r = b / x
        else:
            if x <= 0.0:
                continue
            if x >= 1.0:
                total += w100
                continue
            r = (x * one_minus_b) / ((1.0 - x) * b)
        if r >= 1.0:
            total += w100 / (1.0 + float(r**neg_s))
        else:
            q = float(r**s)
            total += w100 * q / (1.0 + q)
    return 50.0 * (1.0 - evidence) + evidence * total


def _points(
    spec: _Fast, shares: tuple[float, ...], xs: tuple[float, ...], evidence: float
) -> list[float]:
    """The points each input adds (they sum to the blended value, less the
    50 x (1 - evidence) that comes from the neutral prior): evidence x weight share x
    `params.curve_points` of the input, the curve inlined with the same operations."""
    out = []
    for (_, kind, b, s, neg_s, one_minus_b), share, x in zip(spec, shares, xs, strict=True):
        if kind == 0:
            if x <= 0.0:
                out.append(evidence * share * 0.0)
                continue
            r = x / b
        elif kind == 1:
            if x <= 0.0:
                out.append(evidence * share * 100.0)
                continue
            r = b / x
        else:
            if x <= 0.0:
                out.append(evidence * share * 0.0)
                continue
            if x >= 1.0:
                out.append(evidence * share * 100.0)
                continue
            r = (x * one_minus_b) / ((1.0 - x) * b)
        if r >= 1.0:
            out.append(evidence * share * (100.0 / (1.0 + float(r**neg_s))))
        else:
            q = float(r**s)
            out.append(evidence * share * (100.0 * q / (1.0 + q)))
    return out


def _round2(x: float) -> float:
    """`round(x, 2)`, exactly, without its decimal-string conversion.

    `round(x, 2)` is the double nearest k / 100, k the integer nearest to 100x
    (ties to even). Unless 100x lies within a hair of a tie, rounding the double
    product gives the same k, and `k / 100` is a correctly rounded division, so it
    is that same double; near a tie (or for huge x) it falls back to `round`.
    """
    y = x * 100.0
    if -1e9 < y < 1e9:
        k = round(y)
        if -0.499999 < y - k < 0.499999:
            return k / 100.0
    return round(x, 2)


def _round4(x: float) -> float:
    """`round(x, 4)`, exactly (see `_round2`)."""
    y = x * 10000.0
    if -1e9 < y < 1e9:
        k = round(y)
        if -0.499999 < y - k < 0.499999:
            return k / 10000.0
    return round(x, 4)


def _evidence(count: float, full: float) -> float:
    return 1.0 if count >= full else count / full


def _share(num: float, den: float, baseline: float, prior: float) -> float:
    """A proportion with `prior` pseudo-observations at the peer baseline."""
    return (num + prior * baseline) / (den + prior)


def _clamp(x: float) -> float:
    return 0.0 if x < 0.0 else 100.0 if x > 100.0 else x


def _cv(daily: tuple[int, ...]) -> float:
    """Coefficient of variation of posts per day (0: the same every day)."""
    n = len(daily)
    total = sum(daily)
    if not total:
        return math.sqrt(n - 1) if n > 1 else 0.0
    mean = total / n
    var = sum(map(pow, map(sub, daily, repeat(mean)), repeat(2))) / n
    return math.sqrt(var) / mean


class _Facts(NamedTuple):
    """The creator's own numbers that the explanation sentences quote."""

    window: int
    recent: int
    posts: int
    views: int
    engagements: int
    conversation: int
    collab_posts: int
    shoppable: int
    shoppable_recent: int
    campaigns: int
    net_usd: float
    orders: int
    placed: int
    cancelled: int
    refunded: int
    active_days: int
    active_days_recent: int
    active_weeks: int
    weeks: int
    brands: int  # any footprint, orders included
    partners: int  # brands with collaboration posts or tags
    repeat: int  # content on two or more days
    depth: float  # mean content days per partner
    lasting: int  # content in both halves of the window
    selling: int  # partners with kept orders


# Figures of one set of posts: (posts, views, likes + comments + shares, comments + shares,
# Σ peer views per post, Σ peer engagements per post, Σ views x peer engagement rate,
# Σ views x peer conversation rate).
_PostSet = tuple[int, int, int, int, float, float, float, float]
# Orders of a slice: (orders, placed, refunded, net USD).
_OrderSet = tuple[int, int, int, float]
_NO_ORDERS: Final[_OrderSet] = (0, 0, 0, 0.0)

#: The facts each score's sentences quote (the key of its memoised explanation).
_QUOTES: Final = {
    "cooperation": ("window", "posts", "collab_posts", "campaigns", "partners", "repeat"),
    "diligence": ("window", "recent", "posts", "shoppable", "shoppable_recent"),
    "influence": ("window", "posts", "views", "engagements"),
    "reception": ("window", "views", "engagements", "conversation"),
    "sales": ("posts", "views", "net_usd", "orders", "placed", "cancelled", "refunded"),
    "consistency": (
        "window",
        "recent",
        "posts",
        "active_days",
        "active_days_recent",
        "active_weeks",
        "weeks",
    ),
    "collaboration": ("window", "posts", "brands", "partners", "depth", "lasting", "selling"),
}


class _Memo:
    """The parts of a creator's last card, each kept with what it was computed from.

    Kept on the state between scores. The running totals mark what moved since
    (content types, themes, orders, days), so a new score reads only those parts
    again; each score, breakdown and explanation is then recomputed only when its
    own inputs differ. Every part is a pure function of what it is kept with, so
    reusing it gives exactly what recomputing would.
    """

    __slots__ = (
        "brands",
        "collab_shop",
        "days",
        "last",
        "model",
        "objects",
        "orders",
        "parts",
        "posts",
        "shop_recent",
        "slices",
        "texts",
        "theme_orders",
        "theme_sets",
        "type_orders",
        "type_sets",
        "values",
        "window",
    )

    def __init__(self, model: _Model, window: object) -> None:
        self.model = model
        self.window = window  # the running totals the parts were read from
        self.last = -1  # the watermark's day when the day figures were computed
        self.posts: _PostSet = (0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0)
        self.collab_shop = (0, 0)
        self.type_sets: dict[str, _PostSet] = {}
        self.theme_sets: dict[str, _PostSet] = {}
        self.shop_recent = 0
        self.days: tuple[tuple[int, ...], int, int, int, float] | None = None
        self.brands: tuple[Any, ...] | None = None
        self.orders: tuple[int, int, int, int, float] = (0, 0, 0, 0, 0.0)
        self.theme_orders: dict[str, _OrderSet] = {}
        self.type_orders: dict[str, _OrderSet] = {}
        self.values: dict[str, tuple[tuple[float, ...], float, float]] = {}
        self.slices: dict[tuple[int, str], tuple[Any, ...]] = {}
        self.texts: dict[str, tuple[tuple[object, ...], _Plain]] = {}
        self.objects: dict[str, tuple[_Plain, Explanation]] = {}  # built from the plain form
        self.parts = 0  # slices held, to bound the memo


def score(state: CreatorState, params: Params) -> ScoreCard:
    """Score one creator as of its event-time watermark."""
    w = state._running(params)
    m = _model(params)
    memo = state._memo
    fresh = type(memo) is not _Memo or memo.model is not m or memo.window is not w
    if fresh:
        memo = state._memo = _Memo(m, w)
    assert isinstance(memo, _Memo)
    window, recent = w.window, w.recent
    last = state.watermark_ms // DAY_MS
    peers, peer_default = m.peers, m.peer_default
    fx = params.fx_scaled
    moved = w.moved

    # Posts: integer sums per content type, floats accumulated in content-type order.
    if fresh or w.moved_types:
        by_type = w.by_type
        n = v = li = co = sh = collab = shop = 0
        exp_views = exp_eng = exp_eng_v = exp_conv_v = 0.0
        type_sets: dict[str, _PostSet] = {}
        for ct in sorted(by_type):
            rn, rv, rl, rc, rs, rcollab, rshop = by_type[ct]
            pv, pe, er, cr = peers.get(ct, peer_default)
            n += rn
            v += rv
            li += rl
            co += rc
            sh += rs
            collab += rcollab
            shop += rshop
            ev_, ee, eev, ecv = rn * pv, rn * pe, rv * er, rv * cr
            exp_views += ev_
            exp_eng += ee
            exp_eng_v += eev
            exp_conv_v += ecv
            # Unchanged types keep their tuple (the breakdown memo compares by identity).
            old = memo.type_sets.get(ct)
            new = (rn, rv, rl + rc + rs, rc + rs, ev_, ee, eev, ecv)
            type_sets[ct] = old if old == new else new
        memo.type_sets = type_sets
        memo.posts = (n, v, li + co + sh, co + sh, exp_views, exp_eng, exp_eng_v, exp_conv_v)
        memo.collab_shop = (collab, shop)
    collab, shop = memo.collab_shop
    posts = memo.posts

    # Per theme: the (content type, theme) rows, in content-type order within a theme.
    if fresh:
        memo.theme_sets = _theme_sets(w, sorted(w.by_type_theme), peers, peer_default)
    elif w.moved_themes:
        types = sorted(w.by_type)
        theme_sets = memo.theme_sets
        for theme in w.moved_themes:
            keys = [(ct, theme) for ct in types if (ct, theme) in w.by_type_theme]
            theme_sets.pop(theme, None)
            theme_sets.update(_theme_sets(w, keys, peers, peer_default))

    if fresh or moved & _MOVED_RECENT:
        shoppable_recent = 0
        for row in w.recent_by_type.values():
            shoppable_recent += row[6]
        memo.shop_recent = shoppable_recent
    shoppable_recent = memo.shop_recent

    # Days with posts (the totals hold only days in the window).
    first, first_recent = w.first, w.first_recent
    if fresh or moved & _MOVED_DAYS or memo.last != last or memo.days is None:
        daily = w.daily
        daily_posts = tuple(map(daily.get, range(first, last + 1), repeat(0)))
        size = 7 if window >= 7 else window
        n_blocks = max(1, window // 7)
        # Week blocks counted back from the last day; a partial oldest block is dropped.
        blocks = set(map(floordiv, map(sub, repeat(last), daily), repeat(size)))
        memo.days = (
            daily_posts,
            sum(map(daily.__contains__, range(first_recent, last + 1))),
            len(blocks.intersection(range(n_blocks))),
            n_blocks,
            _cv(daily_posts),
        )
        memo.last = last
    daily_posts, active_recent, active_weeks, n_blocks, cv = memo.days
    active_days = len(w.daily)

    # Brands: content days per partner, and whether they span both halves of the window.
    half = first + window // 2
    brands = memo.brands
    if brands is None or brands[0] != w.brand_changes or brands[1] != half:
        partners = repeat_brands = content_days = lasting = selling = 0
        for info in w.brands.values():
            brand_days = info[4]
            if brand_days:
                partners += 1
                nd = len(brand_days)
                content_days += nd
                if nd >= 2:
                    repeat_brands += 1
                if min(brand_days) < half and max(brand_days) >= half:
                    lasting += 1
                if info[3]:
                    selling += 1
        depth = content_days / partners if partners else 0.0
        brands = memo.brands = (
            w.brand_changes,
            half,
            partners,
            repeat_brands,
            depth,
            lasting,
            selling,
        )
    _, _, partners, repeat_brands, depth, lasting, selling = brands

    # Orders: all of them, and per theme and per content type of the linked post.
    if fresh or moved & _MOVED_ORDERS:
        oacc = w.orders
        memo.orders = (oacc[0], oacc[1], oacc[2], oacc[3], net_usd(oacc, fx)[0])
    if fresh:
        memo.theme_orders = {t: _acc_set(acc, fx) for t, acc in w.orders_by_theme.items()}
        memo.type_orders = {ct: _acc_set(acc, fx) for ct, acc in w.orders_by_type.items()}
    else:
        for moved_keys, order_accs, order_sets in (
            (w.moved_order_themes, w.orders_by_theme, memo.theme_orders),
            (w.moved_order_types, w.orders_by_type, memo.type_orders),
        ):
            for name in moved_keys:
                order_acc = order_accs.get(name)
                if order_acc is None:
                    order_sets.pop(name, None)
                else:
                    new_set = _acc_set(order_acc, fx)
                    if order_sets.get(name) != new_set:  # equal: keep the object (memo by identity)
                        order_sets[name] = new_set
    orders, placed, cancelled, refunded, net = memo.orders
    # Everything that moved has been read: start marking afresh.
    w.moved_types.clear()
    w.moved_themes.clear()
    w.moved_order_themes.clear()
    w.moved_order_types.clear()
    w.moved = 0

    n, v, engagements, conversation = posts[0], posts[1], posts[2], posts[3]
    campaigns = len(w.campaigns)
    n_brands = len(w.brands)
    facts = _Facts(
        window, recent, n, v, engagements, conversation, collab, shop, shoppable_recent,
        campaigns, net, orders, placed, cancelled, refunded, active_days, active_recent,
        active_weeks, n_blocks, n_brands, partners, repeat_brands, depth, lasting, selling,
    )  # fmt: skip
    specs = m.specs
    k = params.share_prior
    weeks = window / 7.0
    ev_posts = 1.0 if n >= params.full_evidence_posts else n / params.full_evidence_posts
    ev_views = 1.0 if v >= params.full_evidence_views else v / params.full_evidence_views
    figures: dict[str, tuple[tuple[float, ...], float]] = {
        "cooperation": (
            (collab / weeks, float(campaigns), float(partners), float(repeat_brands)),
            ev_posts,
        ),
        "diligence": (
            (
                _share(shop, n, specs["diligence"][0][3], k),
                shop / weeks,
                float(shoppable_recent),
            ),
            ev_posts,
        ),
        "influence": (_influence_figures(posts, weeks, params), ev_posts),
        "reception": (_reception_figures(posts), ev_views),
        "sales": (
            _sales_figures(posts, (orders, placed, refunded, net), specs["sales"], params),
            1.0,
        ),
        "consistency": (
            (active_days / window, active_recent / recent, active_weeks / n_blocks, cv),
            ev_posts,
        ),
        "collaboration": (
            (
                float(n_brands),
                depth,
                _share(lasting, partners, specs["collaboration"][2][3], k),
                _share(selling, partners, specs["collaboration"][3][3], k),
            ),
            ev_posts,
        ),
    }
    return _card(
        state.creator_id,
        state.region,
        state.watermark_ms,
        params,
        memo,
        facts,
        figures,
        memo.theme_sets,
        memo.type_sets,
        memo.theme_orders,
        memo.type_orders,
    )


def _theme_sets(
    w: Any,
    keys: list[tuple[str, str]],
    peers: Mapping[str, tuple[float, float, float, float]],
    peer_default: tuple[float, float, float, float],
) -> dict[str, _PostSet]:
    """Post figures per theme from its (content type, theme) rows, `keys` sorted."""
    by_type_theme = w.by_type_theme
    theme_acc: dict[str, list[Any]] = {}
    for key in keys:
        ct, theme = key
        rn, rv, rl, rc, rs, _, _ = by_type_theme[key]
        pv, pe, er, cr = peers.get(ct, peer_default)
        acc = theme_acc.get(theme)
        if acc is None:
            theme_acc[theme] = [rn, rv, rl + rc + rs, rc + rs, rn * pv, rn * pe, rv * er, rv * cr]
        else:
            acc[0] += rn
            acc[1] += rv
            acc[2] += rl + rc + rs
            acc[3] += rc + rs
            acc[4] += rn * pv
            acc[5] += rn * pe
            acc[6] += rv * er
            acc[7] += rv * cr
    # The same eight figures as a _PostSet.
    return {theme: tuple(acc) for theme, acc in theme_acc.items()}


def _acc_set(acc: list[Any], fx: tuple[int, Mapping[str, int]]) -> _OrderSet:
    return (acc[0], acc[1], acc[3], net_usd(acc, fx)[0])


def _influence_figures(f: _PostSet, weeks: float, params: Params) -> tuple[float, ...]:
    """(reach, engagement, weekly views), each as a ratio to what peers get."""
    posts, views, engagements, _, exp_views, exp_eng, _, _ = f
    if not posts:
        return (1.0, 1.0, 1.0)
    peer_weekly = (exp_views / posts) * params.peer_posts_per_week
    return (views / exp_views, engagements / exp_eng, (views / weeks) / peer_weekly)


def _reception_figures(f: _PostSet) -> tuple[float, ...]:
    """(engagement rate, conversation rate), each as a ratio to peers at the same views."""
    _, views, engagements, conversation, _, _, exp_eng_v, exp_conv_v = f
    if not views:
        return (1.0, 1.0)
    return (engagements / exp_eng_v, conversation / exp_conv_v)


def _sales_figures(f: _PostSet, o: _OrderSet, spec: _Spec, params: Params) -> tuple[float, ...]:
    # Pseudo-observations at the peer baseline (instead of scaling by evidence)
    # keep the score monotone: another kept order can only raise it, a refund
    # can only lower it, and no data at all lands exactly on the neutral 50.
    k = params.sales_prior_posts
    kv = params.sales_prior_kviews
    ko = params.refund_prior_orders
    posts, views = f[0], f[1]
    orders, placed, refunded, net = o
    return (
        (net + k * spec[0][3]) / (posts + k),
        (placed + k * spec[1][3]) / (posts + k),
        (net + kv * spec[2][3]) / (views / 1000.0 + kv),
        (refunded + ko * spec[3][3]) / (orders + ko),
    )


_new = object.__new__


def _card(
    creator_id: str,
    region: str | None,
    as_of_ms: int,
    params: Params,
    memo: _Memo,
    facts: _Facts,
    figures: dict[str, tuple[tuple[float, ...], float]],
    theme_sets: Mapping[str, _PostSet],
    type_sets: Mapping[str, _PostSet],
    theme_orders: Mapping[str, _OrderSet],
    type_orders: Mapping[str, _OrderSet],
) -> ScoreCard:
    """The card from the figures: headline scores, breakdowns and lazy explanations."""
    m = memo.model
    fast = m.fast
    values: dict[str, float] = {}
    known = memo.values
    for name in COMPONENT_SCORES:
        xs, evidence = figures[name]
        hit = known.get(name)
        if hit is not None and hit[0] == xs and hit[1] == evidence:
            values[name] = hit[2]
        else:
            value = _round2(_clamp(_blend_value(fast[name], xs, evidence)))
            known[name] = (xs, evidence, value)
            values[name] = value
    weights = m.weights
    overall = _round2(
        _clamp(sum(w * values[n] for n, w in zip(COMPONENT_SCORES, weights, strict=True)))
    )

    # Per theme and per content type: influence, reception and sales of that slice
    # replace the creator-wide ones in the overall blend.
    rest = sum(
        w * values[n] for n, w in zip(COMPONENT_SCORES, weights, strict=True) if n not in _SLICED
    )
    w_infl, w_rec, w_sales = m.sliced_weights
    slices = memo.slices
    if memo.parts > 256:  # themes and types come and go: forget the old ones now and then
        slices.clear()
        memo.parts = 0
    infl_by: list[dict[str, float]] = []
    overall_by: list[dict[str, float]] = []
    for kind, sets, orders in ((0, theme_sets, theme_orders), (1, type_sets, type_orders)):
        infl_slice: dict[str, float] = {}
        overall_slice: dict[str, float] = {}
        for key in sorted(sets):
            f = sets[key]
            o = orders.get(key, _NO_ORDERS)
            seen = slices.get((kind, key))
            if (
                seen is not None
                and (seen[0] is f or seen[0] == f)
                and (seen[1] is o or seen[1] == o)
            ):
                infl, both = seen[2], seen[6]
                if seen[5] != rest:
                    both = _round2(
                        _clamp(rest + w_infl * infl + w_rec * seen[3] + w_sales * seen[4])
                    )
                    slices[kind, key] = (*seen[:5], rest, both)
            else:
                infl, rec, sal = _slice(m, params, f, o, facts.window / 7.0)
                both = _round2(_clamp(rest + w_infl * infl + w_rec * rec + w_sales * sal))
                if seen is None:
                    memo.parts += 1
                slices[kind, key] = (f, o, infl, rec, sal, rest, both)
            infl_slice[key] = infl
            overall_slice[key] = both
        infl_by.append(infl_slice)
        overall_by.append(overall_slice)

    ev_posts = figures["influence"][1]
    order_ev = _evidence(facts.orders, params.full_confidence_orders)
    cpw = params.confidence_post_weight
    confidence = round(cpw * ev_posts + (1.0 - cpw) * order_ev, 3)
    provisional = facts.posts < params.min_posts or facts.orders < params.min_orders

    explain = _Explainer(memo, facts, figures, values, overall, provisional)
    # A frozen dataclass's __init__ sets each of the 19 fields through
    # object.__setattr__; filling the instance dict at once builds the same card
    # (there is no __post_init__) for a fraction of the cost.
    card: ScoreCard = _new(ScoreCard)
    card.__dict__.update(
        creator_id=creator_id,
        region=region or UNKNOWN_REGION,
        model_version=params.model_version,
        as_of_ms=as_of_ms,
        overall=overall,
        cooperation=values["cooperation"],
        diligence=values["diligence"],
        influence=values["influence"],
        reception=values["reception"],
        sales=values["sales"],
        consistency=values["consistency"],
        collaboration=values["collaboration"],
        provisional=provisional,
        confidence=confidence,
        influence_by_theme=MappingProxyType(infl_by[0]),
        influence_by_content_type=MappingProxyType(infl_by[1]),
        overall_by_theme=MappingProxyType(overall_by[0]),
        overall_by_content_type=MappingProxyType(overall_by[1]),
        explanations=_LazyExplanations(explain),
    )
    return card


def _slice(
    m: _Model, params: Params, f: _PostSet, o: _OrderSet, weeks: float
) -> tuple[float, float, float]:
    """Influence, reception and sales of one theme or content type."""
    fast = m.fast
    full_posts, full_views = params.full_evidence_posts, params.full_evidence_views
    infl = _round2(
        _clamp(
            _blend_value(
                fast["influence"],
                _influence_figures(f, weeks, params),
                1.0 if f[0] >= full_posts else f[0] / full_posts,
            )
        )
    )
    rec = _round2(
        _clamp(
            _blend_value(
                fast["reception"],
                _reception_figures(f),
                1.0 if f[1] >= full_views else f[1] / full_views,
            )
        )
    )
    sal = _round2(
        _clamp(_blend_value(fast["sales"], _sales_figures(f, o, m.specs["sales"], params), 1.0))
    )
    return infl, rec, sal


def score_stats(s: WindowStats, params: Params) -> ScoreCard:
    """Score from window figures; gives the card `score` gives from the running totals.

    `score` reads the state's running totals directly; this reads the same figures
    through `WindowStats` and is kept as an independent route to the same card
    (tests compare the two).
    """
    m = _model(params)
    specs = m.specs
    window, recent = s.window_days, s.short_window_days
    weeks = window / 7.0
    p = s.posts
    blocks = s.week_blocks()
    content = [b for b in s.brands.values() if b.content_days]
    partners = len(content)
    o = s.orders
    facts = _Facts(
        window, recent, p.posts, p.views, p.engagements, p.conversation, p.collab_posts,
        p.shoppable_posts, s.posts_recent.shoppable_posts, s.campaigns, o.net_usd, o.orders,
        o.placed, o.cancelled, o.refunded, s.active_days, s.active_days_recent,
        sum(1 for b in blocks if b), len(blocks), len(s.brands), partners,
        sum(1 for b in content if b.content_days >= 2),
        sum(b.content_days for b in content) / partners if partners else 0.0,
        sum(1 for b in content if b.early and b.late),
        sum(1 for b in content if b.placed_orders),
    )  # fmt: skip
    k = params.share_prior
    ev_posts = _evidence(p.posts, params.full_evidence_posts)
    ev_views = _evidence(p.views, params.full_evidence_views)
    posts = _post_set(p)
    figures: dict[str, tuple[tuple[float, ...], float]] = {
        "cooperation": (
            (
                p.collab_posts / weeks,
                float(s.campaigns),
                float(facts.partners),
                float(facts.repeat),
            ),
            ev_posts,
        ),
        "diligence": (
            (
                _share(p.shoppable_posts, p.posts, specs["diligence"][0][3], k),
                p.shoppable_posts / weeks,
                float(s.posts_recent.shoppable_posts),
            ),
            ev_posts,
        ),
        "influence": (_influence_figures(posts, weeks, params), ev_posts),
        "reception": (_reception_figures(posts), ev_views),
        "sales": (_sales_figures(posts, _order_set(o), specs["sales"], params), 1.0),
        "consistency": (
            (
                s.active_days / window,
                s.active_days_recent / recent,
                facts.active_weeks / len(blocks),
                _cv(s.daily_posts),
            ),
            ev_posts,
        ),
        "collaboration": (
            (
                float(len(s.brands)),
                facts.depth,
                _share(facts.lasting, partners, specs["collaboration"][2][3], k),
                _share(facts.selling, partners, specs["collaboration"][3][3], k),
            ),
            ev_posts,
        ),
    }
    return _card(
        s.creator_id,
        s.region,
        s.as_of_ms,
        params,
        _Memo(m, None),
        facts,
        figures,
        {t: _post_set(f) for t, f in s.posts_by_theme.items()},
        {ct: _post_set(f) for ct, f in s.posts_by_content_type.items()},
        {t: _order_set(f) for t, f in s.orders_by_theme.items()},
        {ct: _order_set(f) for ct, f in s.orders_by_content_type.items()},
    )


def _post_set(f: PostFigures) -> _PostSet:
    return (
        f.posts,
        f.views,
        f.engagements,
        f.conversation,
        f.expected_views,
        f.expected_engagements,
        f.expected_engagements_at_views,
        f.expected_conversation_at_views,
    )


def _order_set(o: OrderFigures) -> _OrderSet:
    return (o.orders, o.placed, o.refunded, o.net_usd)


# --- explanations ----------------------------------------------------------------------

# An explanation before it becomes objects: (score, value, summary, contributions), each
# contribution (name, value, points, text).
_PlainContribution = tuple[str, float, float, str]
_Plain = tuple[str, float, str, list[_PlainContribution]]


class _LazyExplanations(Mapping[str, Explanation]):
    """The explanations of a card, written out on first use.

    Building the sentences costs more than computing the scores, and a worker
    that only compares cards never reads them; the content is fixed at scoring
    time either way (the builder holds the figures, not the state). `to_dict`
    reads the plain form and skips building the objects.
    """

    __slots__ = ("_built", "_explainer")

    def __init__(self, explainer: _Explainer) -> None:
        self._explainer = explainer
        self._built: dict[str, Explanation] | None = None

    def _one(self, name: str) -> Explanation:
        """One explanation as an object, built on first use (readers often need one or two)."""
        built = self._built
        if built is None:
            built = self._built = {}
        e = built.get(name)
        if e is None:
            plain = self._plain(name)
            # Explanations are immutable: one whose plain form was reused from the
            # creator's previous card is that card's object again.
            objects = self._explainer.memo.objects
            seen = objects.get(name)
            if seen is None or seen[0] is not plain:
                seen = objects[name] = (plain, _explanation_of(plain))
            e = built[name] = seen[1]
        return e

    def _get(self) -> dict[str, Explanation]:
        return {name: self._one(name) for name in SCORE_NAMES}

    def _plain(self, name: str) -> _Plain:
        return self._explainer.one(name)

    def summary(self, name: str) -> str:
        """The summary sentence of one score, without writing or building the rest."""
        return self._explainer.summary(name)

    def points(self, name: str) -> list[tuple[str, float]]:
        """(input, points) of one score's contributions, without writing their sentences."""
        return self._explainer.points(name)

    def sentence(self, name: str, input_name: str) -> str:
        """The sentence about one input of score `name`, without writing the others."""
        return self._explainer.sentence(name, input_name)

    def as_dicts(self) -> dict[str, dict[str, Any]]:
        """The `to_dict` form (fresh dicts and lists on every call)."""
        return {
            name: {
                "score": name,
                "value": value,
                "summary": summary,
                "contributions": [
                    {"name": c[0], "value": c[1], "points": c[2], "text": c[3]}
                    for c in contributions
                ],
            }
            for name, value, summary, contributions in self._explainer.plain()
        }

    def __getitem__(self, key: str) -> Explanation:
        if key not in SCORE_NAMES:
            raise KeyError(key)
        return self._one(key)

    def __iter__(self) -> Iterator[str]:
        return iter(SCORE_NAMES)

    def __len__(self) -> int:
        return len(SCORE_NAMES)

    def __contains__(self, key: object) -> bool:
        return key in SCORE_NAMES

    def __repr__(self) -> str:
        return repr(self._get())


_new_object = object.__new__
# The slots of the two frozen dataclasses, set directly: what their __init__ does
# through object.__setattr__, without a Python-level call per field.
_SET_CONTRIBUTION: Final = tuple(
    Contribution.__dict__[f].__set__ for f in ("name", "value", "points", "text")
)
_SET_EXPLANATION: Final = tuple(
    Explanation.__dict__[f].__set__ for f in ("score", "value", "summary", "contributions")
)


def _explanation_of(plain: _Plain) -> Explanation:
    """The Explanation (with its Contributions) of a plain form."""
    set_name, set_value, set_points, set_text = _SET_CONTRIBUTION
    contributions = []
    for name, value, points, text in plain[3]:
        c = _new_object(Contribution)
        set_name(c, name)
        set_value(c, value)
        set_points(c, points)
        set_text(c, text)
        contributions.append(c)
    e = _new_object(Explanation)
    set_score, set_value, set_summary, set_contributions = _SET_EXPLANATION
    set_score(e, plain[0])
    set_value(e, plain[1])
    set_summary(e, plain[2])
    set_contributions(e, tuple(contributions))
    return e


def _band(value: float) -> str:
    if value >= 80:
        return "excellent"
    if value >= 65:
        return "strong"
    if value >= 45:
        return "typical"
    if value >= 30:
        return "below typical"
    return "low"


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {plural or word + 's'}"


def _usd(x: float) -> str:
    return f"${x:,.2f}"


class _Explainer:
    """Writes the explanations of one card from the figures it was scored with."""

    __slots__ = ("facts", "figures", "memo", "model", "overall", "provisional", "values", "written")

    def __init__(
        self,
        memo: _Memo,
        facts: _Facts,
        figures: Mapping[str, tuple[tuple[float, ...], float]],
        values: Mapping[str, float],
        overall: float,
        provisional: bool,
    ) -> None:
        self.memo = memo
        self.model = memo.model
        self.facts = facts
        self.figures = figures
        self.values = values
        self.overall = overall
        self.provisional = provisional
        self.written: dict[str, _Plain] = {}

    def plain(self) -> list[_Plain]:
        """Every explanation, in SCORE_NAMES order."""
        return [self.one(name) for name in SCORE_NAMES]

    def one(self, name: str) -> _Plain:
        """The explanation of one score, written once (and reused from the creator's last
        card when its figures are the same)."""
        written = self.written
        plain = written.get(name)
        if plain is not None:
            return plain
        if name == "overall":
            plain = self.explain_overall()
        else:
            xs, evidence = self.figures[name]
            key = (xs, evidence, self.values[name], self.model.quotes[name](self.facts))
            texts = self.memo.texts
            hit = texts.get(name)
            if hit is not None and hit[0] == key:
                plain = hit[1]
            else:
                plain = self.explain(name)
                texts[name] = (key, plain)
        written[name] = plain
        return plain

    def summary(self, name: str) -> str:
        """The summary sentence of one score, without writing its contributions."""
        plain = self.written.get(name)
        if plain is not None or name == "overall":
            return (plain or self.one(name))[2]
        xs, evidence = self.figures[name]
        pts = _points(self.model.fast[name], self.model.shares[name], xs, evidence)
        return self._summary(name, pts, evidence)

    def points(self, name: str) -> list[tuple[str, float]]:
        """(input, points) of one score's contributions, as its explanation lists them."""
        plain = self.written.get(name)
        if plain is not None:
            return [(c[0], c[2]) for c in plain[3]]
        if name == "overall":
            values = self.values
            return [
                (n, _round2(w * values[n]))
                for n, w in zip(COMPONENT_SCORES, self.model.weights, strict=True)
            ]
        xs, evidence = self.figures[name]
        pts = _points(self.model.fast[name], self.model.shares[name], xs, evidence)
        out = [(n, _round2(p)) for n, p in zip(self.model.names[name], pts, strict=True)]
        prior = 50.0 * (1.0 - evidence)
        if prior > 0.0:
            out.append((PRIOR, _round2(prior)))
        return out

    def explain_overall(self) -> _Plain:
        values, overall = self.values, self.overall
        f = self.facts
        key = (tuple(values.values()), overall, self.provisional, f.posts, f.orders, f.window)
        hit = self.memo.texts.get("overall")
        if hit is not None and hit[0] == key:
            return hit[1]
        plain = self._explain_overall()
        self.memo.texts["overall"] = (key, plain)
        return plain

    def _explain_overall(self) -> _Plain:
        values, overall, words = self.values, self.overall, self.model.words
        contributions = [
            (
                name,
                values[name],
                _round2(w * values[name]),
                f"{SCORE_LABELS[name]} {values[name]:.0f}/100{words[name]}",
            )
            for name, w in zip(COMPONENT_SCORES, self.model.weights, strict=True)
        ]
        ranked = list(zip(map(values.__getitem__, COMPONENT_SCORES), COMPONENT_SCORES, strict=True))
        best = max(ranked)[1]
        worst = min(ranked)[1]
        summary = (
            f"Overall {overall:.0f}/100 ({_band(overall)}), a weighted blend of seven scores; "
            f"strongest: {SCORE_LABELS[best].lower()} ({values[best]:.0f}), "
            f"most room to grow: {SCORE_LABELS[worst].lower()} ({values[worst]:.0f})."
        )
        if self.provisional:
            f, p = self.facts, self.model.params
            summary += (
                f" Provisional: {_plural(f.posts, 'post')} and "
                f"{_plural(f.orders, 'order')} in the last {f.window} days "
                f"(scores firm up from {p.min_posts} posts and {p.min_orders} orders)."
            )
        return ("overall", overall, summary, contributions)

    def sentence(self, name: str, input_name: str) -> str:
        """The sentence about one input of score `name` ("" if it has no such input)."""
        plain = self.written.get(name)
        if plain is not None:
            return next((c[3] for c in plain[3] if c[0] == input_name), "")
        if name == "overall":
            if input_name not in COMPONENT_SCORES:
                return ""
            value = self.values[input_name]
            return f"{SCORE_LABELS[input_name]} {value:.0f}/100{self.model.words[input_name]}"
        xs, evidence = self.figures[name]
        if input_name == PRIOR:
            prior = 50.0 * (1.0 - evidence)
            return self.prior_text(name, prior) if prior > 0.0 else ""
        names = self.model.names[name]
        if input_name not in names:
            return ""
        return _TEXTS[name](self, xs)[names.index(input_name)]

    def explain(self, name: str) -> _Plain:
        spec = self.model.specs[name]
        xs, evidence = self.figures[name]
        pts = _points(self.model.fast[name], self.model.shares[name], xs, evidence)
        prior = 50.0 * (1.0 - evidence)
        texts = _TEXTS[name](self, xs)
        contributions = [
            (cname, _round4(x), _round2(p), text)
            for (cname, _, _, _, _), x, p, text in zip(spec, xs, pts, texts, strict=True)
        ]
        if prior > 0.0:
            contributions.append(
                (PRIOR, _round4(1.0 - evidence), _round2(prior), self.prior_text(name, prior))
            )
        return (name, self.values[name], self._summary(name, pts, evidence), contributions)

    def _summary(self, name: str, pts: list[float], evidence: float) -> str:
        value = self.values[name]
        prior = 50.0 * (1.0 - evidence)
        # The input holding the most points, and the one furthest below its full share
        # (ties go to the later name, as with a (points, name) key).
        names = self.model.names[name]
        best = max(zip(pts, names, strict=True))[1]
        full = evidence * 100.0
        below = map(sub, map(mul, repeat(full), self.model.shares[name]), pts)
        worst = max(zip(below, names, strict=True))[1]
        summary = (
            f"{SCORE_LABELS[name]} {value:.0f}/100 ({_band(value)}). "
            f"Biggest lift: {COMPONENT_LABELS[best]}; "
            f"most room to grow: {COMPONENT_LABELS[worst]}."
        )
        if prior > 0.0:
            summary += (
                f" Based on little data so far, so it is pulled toward 50 ({prior:.1f} points)."
            )
        return summary

    def prior_text(self, name: str, prior: float) -> str:
        f, p = self.facts, self.model.params
        if name == "reception":
            return (
                f"Only {f.views:,} views in the last {f.window} days, so {prior:.1f} "
                f"points come from the neutral 50 "
                f"(full weight from {p.full_evidence_views:,} views)."
            )
        return (
            f"Only {_plural(f.posts, 'post')} in the last {f.window} days, so "
            f"{prior:.1f} points come from the neutral 50 (full weight from "
            f"{p.full_evidence_posts} posts)."
        )

    # One method per score: the sentence of each of its inputs, in spec order.

    def cooperation(self, xs: tuple[float, ...]) -> list[str]:
        f, t = self.facts, self.model.typical
        return [
            f"{_plural(f.collab_posts, 'paid brand collaboration')} in the last {f.window} days, "
            f"{xs[0]:.1f} a week (typical: {t['collab_posts_per_week']} a week).",
            f"Answered {_plural(f.campaigns, 'brand campaign')} with product tags "
            f"(typical: {t['campaigns_answered']}).",
            f"Worked with {_plural(f.partners, 'brand')} through collaborations "
            f"or product tags (typical: {t['distinct_brands']}).",
            f"{_plural(f.repeat, 'brand')} came back on more than one day "
            f"(typical: {t['repeat_brands']}).",
        ]

    def diligence(self, xs: tuple[float, ...]) -> list[str]:
        f, t = self.facts, self.model.typical
        return [
            f"{f.shoppable:,} of your {_plural(f.posts, 'post')} carry shoppable "
            f"product tags, counted as {xs[0]:.0%} with a typical start "
            f"(typical: {t['tagged_share']}).",
            f"{xs[1]:.1f} shoppable posts a week (typical: {t['shoppable_posts_per_week']}).",
            f"{_plural(f.shoppable_recent, 'shoppable post')} in the last {f.recent} days "
            f"(typical: {t['shoppable_posts_recent']}).",
        ]

    def influence(self, xs: tuple[float, ...]) -> list[str]:
        f = self.facts
        avg_views = f.views / f.posts if f.posts else 0.0
        avg_eng = f.engagements / f.posts if f.posts else 0.0
        return [
            f"Your posts averaged {avg_views:,.0f} views, {xs[0]:.2f}x what similar creators get "
            f"for the same mix of content.",
            f"They drew {avg_eng:,.0f} likes, comments and shares each, {xs[1]:.2f}x similar "
            f"creators.",
            f"{f.views / (f.window / 7.0):,.0f} views a week in all, {xs[2]:.2f}x a typical "
            f"creator posting {self.model.params.peer_posts_per_week:g} times a week.",
        ]

    def reception(self, xs: tuple[float, ...]) -> list[str]:
        f = self.facts
        rate = f.engagements / f.views if f.views else 0.0
        talk = f.conversation / f.views if f.views else 0.0
        return [
            f"{rate:.2%} of views became a like, comment or share, {xs[0]:.2f}x the typical "
            f"rate for your content types.",
            f"{talk:.2%} of views led to a comment or share, {xs[1]:.2f}x typical.",
        ]

    def sales(self, xs: tuple[float, ...]) -> list[str]:
        f, t = self.facts, self.model.typical
        refunds = (
            f"{f.refunded:,} of {_plural(f.orders, 'order')} refunded, counted as {xs[3]:.1%} "
            f"with a typical start (typical: {t['refund_rate']}; lower is better)."
        )
        if f.cancelled:
            refunds += f" {_plural(f.cancelled, 'cancelled order')} not counted as sales."
        return [
            f"Net sales of {_usd(f.net_usd)} from {_plural(f.placed, 'kept order')} across "
            f"{_plural(f.posts, 'post')}: {_usd(xs[0])} per post with a typical start "
            f"(typical: {t['net_sales_per_post']}).",
            f"{xs[1]:.2f} kept orders per post with a typical start "
            f"(typical: {t['orders_per_post']}).",
            f"{_usd(xs[2])} of net sales per 1,000 views with a typical start, over "
            f"{f.views:,} views (typical: {t['sales_per_1k_views']}).",
            refunds,
        ]

    def consistency(self, xs: tuple[float, ...]) -> list[str]:
        f = self.facts
        spec = self.model.specs["consistency"]
        return [
            f"Posted on {f.active_days} of the last {f.window} days "
            f"(typical: {spec[0][3] * f.window:.0f}).",
            f"Posted on {f.active_days_recent} of the last {f.recent} days "
            f"(typical: {spec[1][3] * f.recent:.0f}).",
            f"Posted in {f.active_weeks} of the last {_plural(f.weeks, 'week')}.",
            f"Daily output varies by {xs[3]:.2f}x its average (lower is steadier; "
            f"typical: {self.model.typical['evenness']}).",
        ]

    def collaboration(self, xs: tuple[float, ...]) -> list[str]:
        f, t = self.facts, self.model.typical
        return [
            f"{_plural(f.brands, 'brand')} across collaborations, product tags and "
            f"orders (typical: {t['brands']}).",
            f"Each partner brand appeared on {f.depth:.1f} different days on average "
            f"(typical: {t['brand_depth']}).",
            f"{f.lasting} of {_plural(f.partners, 'partner brand')} stayed "
            f"through both halves of the last {f.window} days.",
            f"{f.selling} of {_plural(f.partners, 'partner brand')} also sold through you.",
        ]


_TEXTS: Final[dict[str, Callable[[_Explainer, tuple[float, ...]], list[str]]]] = {
    name: getattr(_Explainer, name) for name in COMPONENT_SCORES
}
