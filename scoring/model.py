"""The scoring formulas of docs/scoring.md, applied to many creators at once.

`score_totals` turns window figures (`scoring.window.Totals`) into every creator's
card: the seven component scores and overall, the per-theme and per-content-type
influence and overall, the provisional flag, the confidence, and the explanation
basis (the figures readers write the sentences from). The steps read like the
document:

1. figures: each score's inputs, e.g. views per post against what peers get;
2. curves: each input mapped onto 0..100 around its peer baseline (log-logistic,
   `scoring.params.curve_points`), weighted, and blended with the neutral 50 by
   the evidence (posts, or views for reception);
3. rounding to two decimals; overall as the weighted sum of the rounded scores.

Every operation is the formula's own, in the formula's order, so a card is bit for
bit what the one-creator form gives. The one place numpy may differ from Python is
`pow` (numpy's vectorised pow and the C library's can differ in the last bit), and a
score only uses it through a value rounded to two decimals: a value whose unrounded
form lies within a hair of a rounding tie is computed again with the C library's pow
(`_exact_value`), so the published numbers are exactly the one-creator form's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from scoring.columns import Ints
from scoring.names import COMPONENT_SCORES, SLICED_SCORES
from scoring.params import DEFAULT_SCORES, Params
from scoring.vocab import Vocabulary
from scoring.window import Floats, PostSet, Slices, Totals

Flags = npt.NDArray[np.bool_]

#: Version of the explanation basis layout (`basis`); readers refuse other versions.
BASIS_VERSION: Final = 1
#: Curve kinds as codes.
_RATIO, _INVERSE, _SHARE = 0, 1, 2
_KIND_CODES: Final = {"ratio": _RATIO, "inverse": _INVERSE, "share": _SHARE}
#: A value this close to a rounding tie (in hundredths) is computed again exactly.
_TIE_MARGIN: Final = 0.49999


@dataclass(frozen=True, slots=True)
class Curve:
    """One input of a score, compiled: weight share, curve kind, baseline, steepness."""

    name: str
    share: float  # weight / Σ weights of the score
    kind: int
    baseline: float
    steepness: float

    @property
    def w100(self) -> float:
        return self.share * 100.0


class Model:
    """`Params` compiled for scoring: inputs in a fixed order, weights normalised."""

    __slots__ = ("curves", "params", "sliced_weights", "weights")

    def __init__(self, params: Params) -> None:
        self.params = params
        self.curves: dict[str, tuple[Curve, ...]] = {}
        for score_name, names in DEFAULT_SCORES.items():
            comps = params.scores[score_name]
            total = sum(comps[n].weight for n in names)
            self.curves[score_name] = tuple(
                Curve(n, comps[n].weight / total, _KIND_CODES[comps[n].kind],
                      comps[n].baseline, comps[n].steepness)
                for n in names
            )  # fmt: skip
        wsum = sum(params.overall_weights[n] for n in COMPONENT_SCORES)
        self.weights = tuple(params.overall_weights[n] / wsum for n in COMPONENT_SCORES)
        self.sliced_weights = tuple(self.weights[COMPONENT_SCORES.index(n)] for n in SLICED_SCORES)

    def baseline(self, score_name: str, i: int) -> float:
        return self.curves[score_name][i].baseline


_MODELS: dict[int, Model] = {}


def model_of(params: Params) -> Model:
    """The compiled model of `params` (kept per Params object: they are immutable)."""
    m = _MODELS.get(id(params))
    if m is None or m.params is not params:
        if len(_MODELS) >= 64:
            _MODELS.clear()
        m = _MODELS[id(params)] = Model(params)
    return m


@dataclass(slots=True)
class Scores:
    """The cards of creators 0..n-1 (headline values, slices, flags) and their basis figures."""

    model: Model
    totals: Totals
    values: Floats  # (n, 7): the component scores, in COMPONENT_SCORES order
    overall: Floats
    provisional: Flags
    confidence: Floats
    #: Per component score: its inputs (n, k) and the evidence it is blended with (n,).
    inputs: dict[str, Floats]
    evidence: dict[str, Floats]
    influence_by_theme: Floats  # per totals.by_theme slice
    overall_by_theme: Floats
    influence_by_content_type: Floats  # per totals.by_content_type slice
    overall_by_content_type: Floats

    @property
    def active(self) -> Flags:
        """Per creator: its window holds a post, tag or order (else it is inactive: its card
        still has scores, from no data, but it stands on no leaderboard)."""
        active: Flags = self.totals.records > 0
        return active

    def by_theme(self, i: int, vocab: Vocabulary) -> tuple[dict[str, float], dict[str, float]]:
        """Creator i's influence and overall per theme, in theme name order."""
        return self._slices(self.totals.by_theme, i, vocab, self.influence_by_theme,
                            self.overall_by_theme)  # fmt: skip

    def by_content_type(
        self, i: int, vocab: Vocabulary
    ) -> tuple[dict[str, float], dict[str, float]]:
        """Creator i's influence and overall per content type, in name order."""
        return self._slices(
            self.totals.by_content_type,
            i,
            vocab,
            self.influence_by_content_type,
            self.overall_by_content_type,
        )

    @staticmethod
    def _slices(
        s: Slices, i: int, vocab: Vocabulary, influence: Floats, overall: Floats
    ) -> tuple[dict[str, float], dict[str, float]]:
        lo, hi = s.range(i)
        names = [vocab.name(k) for k in s.key[lo:hi].tolist()]
        return (
            dict(zip(names, influence[lo:hi].tolist(), strict=True)),
            dict(zip(names, overall[lo:hi].tolist(), strict=True)),
        )

    def facts(self, i: int) -> list[float | int]:
        """Creator i's own numbers that the explanation sentences quote (`_Facts` order)."""
        return [column[i] for column in self._lists().facts]

    def figures(self, i: int) -> dict[str, tuple[list[float], float]]:
        """Creator i's inputs and evidence per component score."""
        lists = self._lists()
        return {name: (lists.inputs[name][i], lists.evidence[name][i]) for name in COMPONENT_SCORES}

    def basis(self, i: int) -> dict[str, Any]:
        """Creator i's explanation basis: what `scoring.explain.explanations_from_basis` reads."""
        lists = self._lists()
        return {
            "v": BASIS_VERSION,
            "facts": [column[i] for column in lists.facts],
            "figures": {
                name: [lists.inputs[name][i], lists.evidence[name][i]] for name in COMPONENT_SCORES
            },
            "values": lists.values[i],
            "overall": lists.overall[i],
            "provisional": lists.provisional[i],
        }

    def _lists(self) -> _Lists:
        """The figures as Python lists, made once: readers take a few creators' parts each."""
        lists = self._as_lists
        if lists is None:
            lists = self._as_lists = _Lists.of(self)
        return lists

    _as_lists: _Lists | None = None


@dataclass(slots=True)
class _Lists:
    """`Scores` figures as Python values (ints stay ints, floats floats), column by column."""

    facts: list[list[Any]]
    inputs: dict[str, list[list[float]]]
    evidence: dict[str, list[float]]
    values: list[list[float]]
    overall: list[float]
    provisional: list[bool]

    @classmethod
    def of(cls, s: Scores) -> _Lists:
        t = s.totals
        n = len(s.overall)
        constant = [t.window] * n, [t.recent] * n, [t.weeks] * n
        facts = [
            constant[0], constant[1], t.posts.posts.tolist(), t.posts.views.tolist(),
            t.posts.engagements.tolist(), t.posts.conversation.tolist(), t.collab_posts.tolist(),
            t.shoppable.tolist(), t.shoppable_recent.tolist(), t.campaigns.tolist(),
            t.net_usd.tolist(), t.orders.tolist(), t.placed.tolist(), t.cancelled.tolist(),
            t.refunded.tolist(), t.active_days.tolist(), t.active_days_recent.tolist(),
            t.active_weeks.tolist(), constant[2], t.brands.tolist(), t.partners.tolist(),
            t.repeat_brands.tolist(), t.depth.tolist(), t.lasting.tolist(), t.selling.tolist(),
        ]  # fmt: skip
        return cls(
            facts=facts,
            inputs={name: s.inputs[name].tolist() for name in COMPONENT_SCORES},
            evidence={name: s.evidence[name].tolist() for name in COMPONENT_SCORES},
            values=s.values.tolist(),
            overall=s.overall.tolist(),
            provisional=s.provisional.tolist(),
        )


def score_totals(totals: Totals, params: Params) -> Scores:
    """Every score of every creator in `totals` (see the module docstring)."""
    m = model_of(params)
    p = params
    t = totals
    k = p.share_prior
    weeks = t.window / 7.0
    posts = t.posts
    n = posts.posts
    ev_posts = _evidence(n, p.full_evidence_posts)
    ev_views = _evidence(posts.views, p.full_evidence_views)
    ones = np.ones(len(n))
    with np.errstate(divide="ignore", invalid="ignore"):
        inputs: dict[str, Floats] = {
            "cooperation": _stack(
                t.collab_posts / weeks, t.campaigns * 1.0, t.partners * 1.0, t.repeat_brands * 1.0
            ),
            "diligence": _stack(
                _share(t.shoppable, n, m.baseline("diligence", 0), k),
                t.shoppable / weeks,
                t.shoppable_recent * 1.0,
            ),
            "influence": _influence(posts, weeks, p),
            "reception": _reception(posts),
            "sales": _sales(posts, t.placed, t.refunded, t.orders, t.net_usd, m),
            "consistency": _stack(
                t.active_days / t.window,
                t.active_days_recent / t.recent,
                t.active_weeks / t.weeks,
                t.evenness,
            ),
            "collaboration": _stack(
                t.brands * 1.0,
                t.depth,
                _share(t.lasting, t.partners, m.baseline("collaboration", 2), k),
                _share(t.selling, t.partners, m.baseline("collaboration", 3), k),
            ),
        }
    evidence = {
        "cooperation": ev_posts,
        "diligence": ev_posts,
        "influence": ev_posts,
        "reception": ev_views,
        "sales": ones,
        "consistency": ev_posts,
        "collaboration": ev_posts,
    }
    values = np.empty((len(n), len(COMPONENT_SCORES)))
    for j, name in enumerate(COMPONENT_SCORES):
        values[:, j] = _value(m.curves[name], inputs[name], evidence[name])
    overall = _round2(_clamp(_weighted(values, m.weights)))

    order_ev = _evidence(t.orders, p.full_confidence_orders)
    cpw = p.confidence_post_weight
    confidence = _round(cpw * ev_posts + (1.0 - cpw) * order_ev, 3)
    provisional = (n < p.min_posts) | (t.orders < p.min_orders)

    unsliced = [
        None if c in SLICED_SCORES else w for c, w in zip(COMPONENT_SCORES, m.weights, strict=True)
    ]
    rest = _weighted(values, unsliced)
    infl_t, overall_t = _slices(t.by_theme, rest, weeks, m)
    infl_c, overall_c = _slices(t.by_content_type, rest, weeks, m)
    return Scores(
        model=m,
        totals=t,
        values=values,
        overall=overall,
        provisional=provisional,
        confidence=confidence,
        inputs=inputs,
        evidence=evidence,
        influence_by_theme=infl_t,
        overall_by_theme=overall_t,
        influence_by_content_type=infl_c,
        overall_by_content_type=overall_c,
    )


# --- figures ------------------------------------------------------------------------


def _stack(*columns: npt.NDArray[np.floating[Any]]) -> Floats:
    return np.stack(columns, axis=1) if len(columns[0]) else np.zeros((0, len(columns)))


def _evidence(count: Ints, full: int) -> Floats:
    """min(1, count / full), as `count / full` only below full (where it is exact)."""
    return np.where(count >= full, 1.0, np.minimum(count, full) / full)


def _share(num: Ints, den: Ints, baseline: float, prior: float) -> Floats:
    """A proportion with `prior` pseudo-observations at the peer baseline."""
    return (num + prior * baseline) / (den + prior)


def _influence(f: PostSet, weeks: float, p: Params) -> Floats:
    """(reach, engagement, weekly views), each as a ratio to what peers get (1.0 without posts)."""
    peer_weekly = (f.expected_views / f.posts) * p.peer_posts_per_week
    none = f.posts == 0
    return _stack(
        np.where(none, 1.0, f.views / f.expected_views),
        np.where(none, 1.0, f.engagements / f.expected_engagements),
        np.where(none, 1.0, (f.views / weeks) / peer_weekly),
    )


def _reception(f: PostSet) -> Floats:
    """(engagement rate, conversation rate) against peers at the same views (1.0 without views)."""
    none = f.views == 0
    return _stack(
        np.where(none, 1.0, f.engagements / f.expected_engagements_at_views),
        np.where(none, 1.0, f.conversation / f.expected_conversation_at_views),
    )


def _sales(f: PostSet, placed: Ints, refunded: Ints, orders: Ints, net: Floats, m: Model) -> Floats:
    """Net sales and kept orders per post, sales per 1,000 views, refund rate, each with
    pseudo-observations at its baseline (so the score is monotone in sales)."""
    p = m.params
    k, kv, ko = p.sales_prior_posts, p.sales_prior_kviews, p.refund_prior_orders
    b = [c.baseline for c in m.curves["sales"]]
    return _stack(
        (net + k * b[0]) / (f.posts + k),
        (placed + k * b[1]) / (f.posts + k),
        (net + kv * b[2]) / (f.views / 1000.0 + kv),
        (refunded + ko * b[3]) / (orders + ko),
    )


# --- curves ------------------------------------------------------------------------


def _blend(curves: tuple[Curve, ...], xs: Floats, evidence: Floats) -> Floats:
    """Weighted curve points blended with the neutral 50 by `evidence` (unrounded)."""
    total = np.zeros(len(evidence))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for i, c in enumerate(curves):
            x = xs[:, i]
            w100 = c.w100
            if c.kind == _RATIO:
                r = x / c.baseline
                fixed = np.where(x <= 0.0, 0.0, np.nan)
            elif c.kind == _INVERSE:
                r = c.baseline / x
                fixed = np.where(x <= 0.0, w100, np.nan)
            else:
                r = (x * (1.0 - c.baseline)) / ((1.0 - x) * c.baseline)
                fixed = np.where(x <= 0.0, 0.0, np.where(x >= 1.0, w100, np.nan))
            high = r >= 1.0
            q = np.power(r, np.where(high, -c.steepness, c.steepness))
            points = np.where(high, w100 / (1.0 + q), w100 * q / (1.0 + q))
            total = total + np.where(np.isnan(fixed), points, fixed)
    return 50.0 * (1.0 - evidence) + evidence * total


def _value(curves: tuple[Curve, ...], xs: Floats, evidence: Floats) -> Floats:
    """The rounded score; values near a rounding tie are recomputed with the C library's pow."""
    raw = _clamp(_blend(curves, xs, evidence))
    out = _round2(raw)
    y = raw * 100.0
    near = np.abs(y - np.rint(y)) >= _TIE_MARGIN
    for i in np.flatnonzero(near).tolist():
        out[i] = _exact_value(curves, xs[i].tolist(), float(evidence[i]))
    return out


def _exact_value(curves: tuple[Curve, ...], xs: list[float], evidence: float) -> float:
    """One score, element by element with Python floats (the formula's reference form)."""
    total = 0.0
    for c, x in zip(curves, xs, strict=True):
        w100, b, s = c.w100, c.baseline, c.steepness
        if c.kind == _RATIO:
            if x <= 0.0:
                continue
            r = x / b
        elif c.kind == _INVERSE:
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
            r = (x * (1.0 - b)) / ((1.0 - x) * b)
        if r >= 1.0:
            total += w100 / (1.0 + float(r ** (-s)))
        else:
            q = float(r**s)
            total += w100 * q / (1.0 + q)
    v = 50.0 * (1.0 - evidence) + evidence * total
    return round2(0.0 if v < 0.0 else 100.0 if v > 100.0 else v)


def points(scores: Scores, name: str, rows: Ints) -> tuple[Floats, Floats]:
    """The points each input of component score `name` adds, rounded to two decimals, for
    the creators at `rows` of `scores`, and the points from the neutral prior (0: none).

    These are the contributions' points of the explanations (`scoring.explain`), computed
    for many creators at once: evidence x weight share x the input's curve, rounded; a
    value near a rounding tie is computed again with the C library's pow.
    """
    curves = scores.model.curves[name]
    xs = scores.inputs[name][rows]
    evidence = scores.evidence[name][rows]
    raw = np.empty((len(rows), len(curves)))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for i, c in enumerate(curves):
            raw[:, i] = (evidence * c.share) * _curve100(c, xs[:, i])
    y = raw * 100.0
    out: Floats = np.rint(y) / 100.0
    for r, i in zip(*np.nonzero(np.abs(y - np.rint(y)) >= _TIE_MARGIN), strict=True):
        c = curves[int(i)]
        out[r, i] = round2(float(evidence[r]) * c.share * _exact_curve100(c, float(xs[r, i])))
    prior = 50.0 * (1.0 - evidence)
    return out, np.where(prior > 0.0, _round(prior, 2), 0.0)


def _curve100(c: Curve, x: Floats) -> Floats:
    """`scoring.params.curve_points` of many inputs (0..100), the operations of the formula."""
    if c.kind == _RATIO:
        r = x / c.baseline
        fixed = np.where(x <= 0.0, 0.0, np.nan)
    elif c.kind == _INVERSE:
        r = c.baseline / x
        fixed = np.where(x <= 0.0, 100.0, np.nan)
    else:
        r = (x * (1.0 - c.baseline)) / ((1.0 - x) * c.baseline)
        fixed = np.where(x <= 0.0, 0.0, np.where(x >= 1.0, 100.0, np.nan))
    high = r >= 1.0
    q = np.power(r, np.where(high, -c.steepness, c.steepness))
    curve = np.where(high, 100.0 / (1.0 + q), 100.0 * q / (1.0 + q))
    out: Floats = np.where(np.isnan(fixed), curve, fixed)
    return out


def _exact_curve100(c: Curve, x: float) -> float:
    b, s = c.baseline, c.steepness
    if c.kind == _RATIO:
        if x <= 0.0:
            return 0.0
        r = x / b
    elif c.kind == _INVERSE:
        if x <= 0.0:
            return 100.0
        r = b / x
    else:
        if x <= 0.0:
            return 0.0
        if x >= 1.0:
            return 100.0
        r = (x * (1.0 - b)) / ((1.0 - x) * b)
    if r >= 1.0:
        return 100.0 / (1.0 + float(r ** (-s)))
    q = float(r**s)
    return 100.0 * q / (1.0 + q)


def _clamp(x: Floats) -> Floats:
    return np.minimum(np.maximum(x, 0.0), 100.0)


def _weighted(values: Floats, weights: Any) -> Floats:
    """Σ weight x value over the component scores, left to right (None: skipped)."""
    total = np.zeros(values.shape[0])
    for j, w in enumerate(weights):
        if w is not None:
            total = total + w * values[:, j]
    return total


def _round(x: Floats, places: int) -> Floats:
    """`round(x, places)` element by element, exactly (see `round2`)."""
    scale = 10.0**places
    y = x * scale
    k = np.rint(y)
    out: Floats = k / scale
    near = (np.abs(y - k) >= 0.499999) | (np.abs(y) >= 1e9)
    for i in np.flatnonzero(near).tolist():
        out[i] = round(float(x[i]), places)
    return out


def _round2(x: Floats) -> Floats:
    return _round(x, 2)


def round2(x: float) -> float:
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


# --- slices ------------------------------------------------------------------------


def _slices(s: Slices, rest: Floats, weeks: float, m: Model) -> tuple[Floats, Floats]:
    """Influence and overall of each slice: the slice's influence, reception and sales
    replace the creator's in the overall blend."""
    if not len(s):
        return np.zeros(0), np.zeros(0)
    p = m.params
    f, o = s.posts, s.orders
    with np.errstate(divide="ignore", invalid="ignore"):
        infl = _value(
            m.curves["influence"],
            _influence(f, weeks, p),
            _evidence(f.posts, p.full_evidence_posts),
        )
        rec = _value(
            m.curves["reception"], _reception(f), _evidence(f.views, p.full_evidence_views)
        )
        sal = _value(
            m.curves["sales"],
            _sales(f, o.placed, o.refunded, o.orders, o.net_usd, m),
            np.ones(len(s)),
        )
    w_infl, w_rec, w_sales = m.sliced_weights
    both = _round2(_clamp(rest[s.creator] + w_infl * infl + w_rec * rec + w_sales * sal))
    return infl, both


__all__ = ["BASIS_VERSION", "Model", "Scores", "model_of", "points", "round2", "score_totals"]
