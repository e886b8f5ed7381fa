"""Scores a brand partner can trust and a creator can understand, from a creator's state.

Every score is a weighted sum of a few measured figures, each mapped onto
0-100 by a curve around the typical peer value (which scores 50). Thin data is
pulled toward that neutral 50 instead of being scored as bad, and every score
carries an explanation whose contributions add up to its value. The formulas
and the reasoning behind them are in docs/scoring.md; the numbers are in
`scoring.params`. Scores are computed as of the creator's event-time watermark,
never a clock, so a replay reproduces them exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, TypeVar

from scoring.params import COMPONENT_SCORES, DEFAULT_SCORES, Params, curve_points
from scoring.state import CreatorState, OrderFigures, PostFigures, WindowStats

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
            "explanations": {
                name: {
                    "score": e.score,
                    "value": e.value,
                    "summary": e.summary,
                    "contributions": [
                        {"name": c.name, "value": c.value, "points": c.points, "text": c.text}
                        for c in e.contributions
                    ],
                }
                for name, e in self.explanations.items()
            },
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


class _Model:
    """Params compiled for the hot path: component order fixed, weights normalised."""

    __slots__ = ("params", "specs", "weights")

    def __init__(self, params: Params) -> None:
        self.params = params
        self.specs: dict[str, _Spec] = {}
        for score_name, names in DEFAULT_SCORES.items():
            comps = params.scores[score_name]
            total = sum(comps[n].weight for n in names)
            self.specs[score_name] = tuple(
                (n, comps[n].weight / total, comps[n].kind, comps[n].baseline, comps[n].steepness)
                for n in names
            )
        wsum = sum(params.overall_weights[n] for n in COMPONENT_SCORES)
        self.weights = tuple(params.overall_weights[n] / wsum for n in COMPONENT_SCORES)


_MODELS: dict[int, _Model] = {}


def _model(params: Params) -> _Model:
    # A memo keyed by identity: Params are immutable, and workers hold one for long.
    m = _MODELS.get(id(params))
    if m is None or m.params is not params:
        if len(_MODELS) >= 64:
            _MODELS.clear()
        m = _MODELS[id(params)] = _Model(params)
    return m


def _blend(spec: _Spec, xs: tuple[float, ...], evidence: float) -> tuple[float, list[float]]:
    """The blended value and the points each input adds (they sum to the value, less
    the 50 x (1 - evidence) that comes from the neutral prior)."""
    points = [
        evidence * w * curve_points(kind, b, s, x)
        for (_, w, kind, b, s), x in zip(spec, xs, strict=True)
    ]
    return _blend_value(spec, xs, evidence), points


def _blend_value(spec: _Spec, xs: tuple[float, ...], evidence: float) -> float:
    """`_blend` without the per-input points (the breakdowns need only the value).

    The curve is `curve_points`, inlined: this runs for every theme and content type.
    """
    total = 0.0
    for (_, w, kind, b, s), x in zip(spec, xs, strict=True):
        if kind == "ratio":
            if x <= 0.0:
                continue
            r = x / b
        elif kind == "inverse":
            if x <= 0.0:
                total += w * 100.0
                continue
            r = b / x
        else:
            if x <= 0.0:
                continue
            if x >= 1.0:
                total += w * 100.0
                continue
            r = (x * (1.0 - b)) / ((1.0 - x) * b)
        if r >= 1.0:
            total += w * 100.0 / (1.0 + float(r ** (-s)))
        else:
            q = float(r**s)
            total += w * 100.0 * q / (1.0 + q)
    return 50.0 * (1.0 - evidence) + evidence * total


def _evidence(count: float, full: float) -> float:
    return 1.0 if count >= full else count / full


def _share(num: float, den: float, baseline: float, prior: float) -> float:
    """A proportion with `prior` pseudo-observations at the peer baseline."""
    return (num + prior * baseline) / (den + prior)


def _influence_figures(f: PostFigures, weeks: float, params: Params) -> tuple[float, ...]:
    """(reach, engagement, weekly views), each as a ratio to what peers get."""
    if not f.posts:
        return (1.0, 1.0, 1.0)
    peer_weekly = (f.expected_views / f.posts) * params.peer_posts_per_week
    return (
        f.views / f.expected_views,
        f.engagements / f.expected_engagements,
        (f.views / weeks) / peer_weekly,
    )


def _reception_figures(f: PostFigures) -> tuple[float, ...]:
    """(engagement rate, conversation rate), each as a ratio to peers at the same views."""
    if not f.views:
        return (1.0, 1.0)
    return (
        f.engagements / f.expected_engagements_at_views,
        f.conversation / f.expected_conversation_at_views,
    )


def _sales_figures(
    f: PostFigures, o: OrderFigures, spec: _Spec, params: Params
) -> tuple[float, ...]:
    # Pseudo-observations at the peer baseline (instead of scaling by evidence)
    # keep the score monotone: another kept order can only raise it, a refund
    # can only lower it, and no data at all lands exactly on the neutral 50.
    k = params.sales_prior_posts
    kv = params.sales_prior_kviews
    ko = params.refund_prior_orders
    return (
        (o.net_usd + k * spec[0][3]) / (f.posts + k),
        (o.placed + k * spec[1][3]) / (f.posts + k),
        (o.net_usd + kv * spec[2][3]) / (f.views / 1000.0 + kv),
        (o.refunded + ko * spec[3][3]) / (o.orders + ko),
    )


_NO_ORDERS: Final = OrderFigures(0, 0, 0, 0, 0, 0.0, 0)


@dataclass(frozen=True, slots=True)
class _Brands:
    total: int  # any footprint, orders included
    content: int  # with collaboration posts or tags
    repeat: int  # content on two or more days
    depth: float  # mean content days per content brand
    lasting: int  # content in both halves of the window
    selling: int  # content brands with kept orders


def _brands(s: WindowStats) -> _Brands:
    content = [b for b in s.brands.values() if b.content_days]
    n = len(content)
    return _Brands(
        total=len(s.brands),
        content=n,
        repeat=sum(1 for b in content if b.content_days >= 2),
        depth=sum(b.content_days for b in content) / n if n else 0.0,
        lasting=sum(1 for b in content if b.early and b.late),
        selling=sum(1 for b in content if b.placed_orders),
    )


def _cv(daily: tuple[int, ...]) -> float:
    """Coefficient of variation of posts per day (0: the same every day)."""
    n = len(daily)
    total = sum(daily)
    if not total:
        return math.sqrt(n - 1) if n > 1 else 0.0
    mean = total / n
    var = sum((x - mean) ** 2 for x in daily) / n
    return math.sqrt(var) / mean


def score(state: CreatorState, params: Params) -> ScoreCard:
    """Score one creator as of its event-time watermark."""
    return score_stats(state.stats(params), params)


def score_stats(s: WindowStats, params: Params) -> ScoreCard:
    """Score from already computed window figures (what `score` does after `stats`)."""
    model = _model(params)
    specs = model.specs
    window, recent = s.window_days, s.short_window_days
    weeks = window / 7.0
    posts = s.posts
    ev_posts = _evidence(posts.posts, params.full_evidence_posts)
    ev_views = _evidence(posts.views, params.full_evidence_views)
    brands = _brands(s)
    blocks = s.week_blocks()
    k = params.share_prior

    figures: dict[str, tuple[tuple[float, ...], float]] = {
        "cooperation": (
            (
                posts.collab_posts / weeks,
                float(s.campaigns),
                float(brands.content),
                float(brands.repeat),
            ),
            ev_posts,
        ),
        "diligence": (
            (
                _share(posts.shoppable_posts, posts.posts, specs["diligence"][0][3], k),
                posts.shoppable_posts / weeks,
                float(s.posts_recent.shoppable_posts),
            ),
            ev_posts,
        ),
        "influence": (_influence_figures(posts, weeks, params), ev_posts),
        "reception": (_reception_figures(posts), ev_views),
        "sales": (_sales_figures(posts, s.orders, specs["sales"], params), 1.0),
        "consistency": (
            (
                s.active_days / window,
                s.active_days_recent / recent,
                sum(1 for b in blocks if b) / len(blocks),
                _cv(s.daily_posts),
            ),
            ev_posts,
        ),
        "collaboration": (
            (
                float(brands.total),
                brands.depth,
                _share(brands.lasting, brands.content, specs["collaboration"][2][3], k),
                _share(brands.selling, brands.content, specs["collaboration"][3][3], k),
            ),
            ev_posts,
        ),
    }
    points: dict[str, list[float]] = {}
    values: dict[str, float] = {}
    for name in COMPONENT_SCORES:
        xs, evidence = figures[name]
        value, points[name] = _blend(specs[name], xs, evidence)
        values[name] = round(_clamp(value), 2)
    weights = model.weights
    overall = round(
        _clamp(sum(w * values[n] for n, w in zip(COMPONENT_SCORES, weights, strict=True))), 2
    )

    # Per theme and per content type: influence, reception and sales of that slice
    # replace the creator-wide ones in the overall blend.
    infl_spec, rec_spec, sales_spec = specs["influence"], specs["reception"], specs["sales"]
    full_posts, full_views = params.full_evidence_posts, params.full_evidence_views
    rest = sum(
        w * values[n]
        for n, w in zip(COMPONENT_SCORES, weights, strict=True)
        if n not in ("influence", "reception", "sales")
    )
    w_infl, w_rec, w_sales = (weights[COMPONENT_SCORES.index(n)] for n in _SLICED)

    def slice_scores(f: PostFigures, o: OrderFigures) -> tuple[float, float]:
        infl = round(
            _clamp(
                _blend_value(
                    infl_spec, _influence_figures(f, weeks, params), _evidence(f.posts, full_posts)
                )
            ),
            2,
        )
        rec = round(
            _clamp(_blend_value(rec_spec, _reception_figures(f), _evidence(f.views, full_views))),
            2,
        )
        sal = round(
            _clamp(_blend_value(sales_spec, _sales_figures(f, o, sales_spec, params), 1.0)), 2
        )
        return infl, round(_clamp(rest + w_infl * infl + w_rec * rec + w_sales * sal), 2)

    infl_theme: dict[str, float] = {}
    overall_theme: dict[str, float] = {}
    for theme, f in s.posts_by_theme.items():
        infl_theme[theme], overall_theme[theme] = slice_scores(
            f, s.orders_by_theme.get(theme, _NO_ORDERS)
        )
    infl_type: dict[str, float] = {}
    overall_type: dict[str, float] = {}
    for ct, f in s.posts_by_content_type.items():
        infl_type[ct], overall_type[ct] = slice_scores(
            f, s.orders_by_content_type.get(ct, _NO_ORDERS)
        )

    order_ev = _evidence(s.orders.orders, params.full_confidence_orders)
    cpw = params.confidence_post_weight
    confidence = round(cpw * ev_posts + (1.0 - cpw) * order_ev, 3)
    provisional = posts.posts < params.min_posts or s.orders.orders < params.min_orders

    explain = _Explainer(
        s, params, model, brands, blocks, figures, points, values, overall, provisional
    )
    return ScoreCard(
        creator_id=s.creator_id,
        region=s.region or UNKNOWN_REGION,
        model_version=params.model_version,
        as_of_ms=s.as_of_ms,
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
        influence_by_theme=MappingProxyType(infl_theme),
        influence_by_content_type=MappingProxyType(infl_type),
        overall_by_theme=MappingProxyType(overall_theme),
        overall_by_content_type=MappingProxyType(overall_type),
        explanations=_LazyExplanations(explain),
    )


_SLICED: Final = ("influence", "reception", "sales")


def _clamp(x: float) -> float:
    return 0.0 if x < 0.0 else 100.0 if x > 100.0 else x


class _LazyExplanations(Mapping[str, Explanation]):
    """The explanations of a card, written out on first use.

    Building the sentences costs more than computing the scores, and a worker
    that only compares cards never reads them; the content is fixed at scoring
    time either way (the builder holds the figures, not the state).
    """

    __slots__ = ("_built", "_make")

    def __init__(self, make: Callable[[], dict[str, Explanation]]) -> None:
        self._make: Callable[[], dict[str, Explanation]] | None = make
        self._built: dict[str, Explanation] | None = None

    def _get(self) -> dict[str, Explanation]:
        if self._built is None:
            assert self._make is not None
            self._built = self._make()
            self._make = None
        return self._built

    def __getitem__(self, key: str) -> Explanation:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(SCORE_NAMES)

    def __len__(self) -> int:
        return len(SCORE_NAMES)

    def __contains__(self, key: object) -> bool:
        return key in SCORE_NAMES

    def __repr__(self) -> str:
        return repr(self._get())


# --- explanations ----------------------------------------------------------------------


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

    __slots__ = (
        "blocks",
        "brands",
        "figures",
        "model",
        "overall",
        "params",
        "points",
        "provisional",
        "s",
        "values",
    )

    def __init__(
        self,
        s: WindowStats,
        params: Params,
        model: _Model,
        brands: _Brands,
        blocks: tuple[int, ...],
        figures: Mapping[str, tuple[tuple[float, ...], float]],
        points: Mapping[str, list[float]],
        values: Mapping[str, float],
        overall: float,
        provisional: bool,
    ) -> None:
        self.s = s
        self.params = params
        self.model = model
        self.brands = brands
        self.blocks = blocks
        self.figures = figures
        self.points = points
        self.values = values
        self.overall = overall
        self.provisional = provisional

    def __call__(self) -> dict[str, Explanation]:
        out = {"overall": self.explain_overall()}
        for name in COMPONENT_SCORES:
            out[name] = self.explain(name)
        return out

    def explain_overall(self) -> Explanation:
        values, overall = self.values, self.overall
        contributions = tuple(
            Contribution(
                name=name,
                value=values[name],
                points=round(w * values[name], 2),
                text=f"{SCORE_LABELS[name]} {values[name]:.0f}/100, weighted {w:.0%}.",
            )
            for name, w in zip(COMPONENT_SCORES, self.model.weights, strict=True)
        )
        best = max(COMPONENT_SCORES, key=lambda n: (values[n], n))
        worst = min(COMPONENT_SCORES, key=lambda n: (values[n], n))
        summary = (
            f"Overall {overall:.0f}/100 ({_band(overall)}), a weighted blend of seven scores; "
            f"strongest: {SCORE_LABELS[best].lower()} ({values[best]:.0f}), "
            f"most room to grow: {SCORE_LABELS[worst].lower()} ({values[worst]:.0f})."
        )
        if self.provisional:
            summary += " " + self.provisional_note()
        return Explanation("overall", overall, summary, contributions)

    def provisional_note(self) -> str:
        s, p = self.s, self.params
        return (
            f"Provisional: {_plural(s.posts.posts, 'post')} and "
            f"{_plural(s.orders.orders, 'order')} in the last {s.window_days} days "
            f"(scores firm up from {p.min_posts} posts and {p.min_orders} orders)."
        )

    def explain(self, name: str) -> Explanation:
        spec = self.model.specs[name]
        xs, evidence = self.figures[name]
        pts = self.points[name]
        value = self.values[name]
        prior = 50.0 * (1.0 - evidence)
        contributions = [
            Contribution(
                name=cname,
                value=round(x, 4),
                points=round(p, 2),
                text=self.text(cname, x, baseline),
            )
            for (cname, _, _, baseline, _), x, p in zip(spec, xs, pts, strict=True)
        ]
        if prior > 0.0:
            contributions.append(
                Contribution(
                    PRIOR, round(1.0 - evidence, 4), round(prior, 2), self.prior_text(name, prior)
                )
            )
        # The input holding the most points, and the one furthest below its full share.
        best = max(range(len(spec)), key=lambda i: (pts[i], spec[i][0]))
        worst = max(
            range(len(spec)), key=lambda i: (evidence * 100.0 * spec[i][1] - pts[i], spec[i][0])
        )
        summary = (
            f"{SCORE_LABELS[name]} {value:.0f}/100 ({_band(value)}). "
            f"Biggest lift: {COMPONENT_LABELS[spec[best][0]]}; "
            f"most room to grow: {COMPONENT_LABELS[spec[worst][0]]}."
        )
        if prior > 0.0:
            summary += (
                f" Based on little data so far, so it is pulled toward 50 ({prior:.1f} points)."
            )
        return Explanation(name, value, summary, tuple(contributions))

    def prior_text(self, name: str, prior: float) -> str:
        s, p = self.s, self.params
        if name == "reception":
            return (
                f"Only {s.posts.views:,} views in the last {s.window_days} days, so {prior:.1f} "
                f"points come from the neutral 50 "
                f"(full weight from {p.full_evidence_views:,} views)."
            )
        return (
            f"Only {_plural(s.posts.posts, 'post')} in the last {s.window_days} days, so "
            f"{prior:.1f} points come from the neutral 50 (full weight from "
            f"{p.full_evidence_posts} posts)."
        )

    def text(self, name: str, x: float, b: float) -> str:
        s, p = self.s, self.params
        posts = s.posts
        w, r = s.window_days, s.short_window_days
        if name == "collab_posts_per_week":
            return (
                f"{_plural(posts.collab_posts, 'paid brand collaboration')} in the last {w} days, "
                f"{x:.1f} a week (typical: {b:g} a week)."
            )
        if name == "campaigns_answered":
            return (
                f"Answered {_plural(s.campaigns, 'brand campaign')} with product tags "
                f"(typical: {b:g})."
            )
        if name == "distinct_brands":
            return (
                f"Worked with {_plural(self.brands.content, 'brand')} through collaborations "
                f"or product tags (typical: {b:g})."
            )
        if name == "repeat_brands":
            return (
                f"{_plural(self.brands.repeat, 'brand')} came back on more than one day "
                f"(typical: {b:g})."
            )
        if name == "tagged_share":
            return (
                f"{posts.shoppable_posts:,} of your {_plural(posts.posts, 'post')} carry shoppable "
                f"product tags, counted as {x:.0%} with a typical start (typical: {b:.0%})."
            )
        if name == "shoppable_posts_per_week":
            return f"{x:.1f} shoppable posts a week (typical: {b:g})."
        if name == "shoppable_posts_recent":
            return (
                f"{_plural(s.posts_recent.shoppable_posts, 'shoppable post')} in the last {r} days "
                f"(typical: {b:g})."
            )
        if name == "reach":
            avg = posts.views / posts.posts if posts.posts else 0.0
            return (
                f"Your posts averaged {avg:,.0f} views, {x:.2f}x what similar creators get "
                f"for the same mix of content."
            )
        if name == "engagement":
            avg = posts.engagements / posts.posts if posts.posts else 0.0
            return (
                f"They drew {avg:,.0f} likes, comments and shares each, {x:.2f}x similar creators."
            )
        if name == "weekly_views":
            return (
                f"{posts.views / (w / 7.0):,.0f} views a week in all, {x:.2f}x a typical creator "
                f"posting {p.peer_posts_per_week:g} times a week."
            )
        if name == "engagement_rate":
            rate = posts.engagements / posts.views if posts.views else 0.0
            return (
                f"{rate:.2%} of views became a like, comment or share, {x:.2f}x the typical "
                f"rate for your content types."
            )
        if name == "conversation_rate":
            rate = posts.conversation / posts.views if posts.views else 0.0
            return f"{rate:.2%} of views led to a comment or share, {x:.2f}x typical."
        o = s.orders
        if name == "net_sales_per_post":
            return (
                f"Net sales of {_usd(o.net_usd)} from {_plural(o.placed, 'kept order')} across "
                f"{_plural(posts.posts, 'post')}: {_usd(x)} per post with a typical start "
                f"(typical: {_usd(b)})."
            )
        if name == "orders_per_post":
            return f"{x:.2f} kept orders per post with a typical start (typical: {b:g})."
        if name == "sales_per_1k_views":
            return (
                f"{_usd(x)} of net sales per 1,000 views with a typical start, over "
                f"{posts.views:,} views (typical: {_usd(b)})."
            )
        if name == "refund_rate":
            text = (
                f"{o.refunded:,} of {_plural(o.orders, 'order')} refunded, counted as {x:.1%} "
                f"with a typical start (typical: {b:.0%}; lower is better)."
            )
            if o.cancelled:
                text += f" {_plural(o.cancelled, 'cancelled order')} not counted as sales."
            return text
        if name == "active_days":
            return f"Posted on {s.active_days} of the last {w} days (typical: {b * w:.0f})."
        if name == "recent_active_days":
            return f"Posted on {s.active_days_recent} of the last {r} days (typical: {b * r:.0f})."
        if name == "weekly_coverage":
            active = sum(1 for n in self.blocks if n)
            return f"Posted in {active} of the last {_plural(len(self.blocks), 'week')}."
        if name == "evenness":
            return (
                f"Daily output varies by {x:.2f}x its average (lower is steadier; typical: {b:g})."
            )
        if name == "brands":
            return (
                f"{_plural(self.brands.total, 'brand')} across collaborations, product tags and "
                f"orders (typical: {b:g})."
            )
        if name == "brand_depth":
            return (
                f"Each partner brand appeared on {self.brands.depth:.1f} different days on average "
                f"(typical: {b:g})."
            )
        if name == "sustained_share":
            return (
                f"{self.brands.lasting} of {_plural(self.brands.content, 'partner brand')} stayed "
                f"through both halves of the last {w} days."
            )
        if name == "selling_share":
            return (
                f"{self.brands.selling} of {_plural(self.brands.content, 'partner brand')} "
                f"also sold through you."
            )
        raise KeyError(name)  # pragma: no cover - every component has a text
