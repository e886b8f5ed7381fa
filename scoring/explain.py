"""Score cards and their explanations: the sentences a brand partner and a creator read.

A worker stores each card's explanation *basis* (the creator's counts, each score's
inputs and evidence, the values: `scoring.model.Scores.basis`), not its sentences:
writing them costs more than scoring, and most cards are replaced before anyone
reads why. `explanations_from_basis` writes the sentences from a basis when they are
read (`creator-scores show`, the readers), one score at a time, and `diff_scores`
reads only the points, the summaries and the one sentence it quotes.

Every explanation has a summary (value, band, the input that lifts it most and the
one with most room to grow) and one contribution per input: the figure used, the
points it adds and a sentence with the creator's own numbers. Points add up to the
score (to rounding); when thin data is pulled toward 50, a `neutral_prior`
contribution says how many points come from there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter, mul, sub
from types import MappingProxyType
from typing import Any, Final, NamedTuple, TypeVar

from scoring.model import BASIS_VERSION, Scores, model_of, round2
from scoring.names import (
    COMPONENT_LABELS,
    COMPONENT_SCORES,
    PRIOR,
    SCORE_LABELS,
    SCORE_NAMES,
    UNKNOWN_REGION,
)
from scoring.params import Params
from scoring.vocab import Vocabulary


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
    #: False when the window holds no post, tag or order: the creator has gone quiet for
    #: the whole window and stands on no leaderboard (its scores are those of no data).
    active: bool = True

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
            "active": self.active,
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
            active=_field(d, "active", bool) if "active" in d else True,
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
    m = text_model(params)
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
        m,
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


#: The facts each score's sentences quote.
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


def _round4(x: float) -> float:
    """`round(x, 4)`, exactly (see `round2`)."""
    y = x * 10000.0
    if -1e9 < y < 1e9:
        k = round(y)
        if -0.499999 < y - k < 0.499999:
            return k / 10000.0
    return round(x, 4)


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
            e = built[name] = _explanation_of(self._plain(name))
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

    __slots__ = ("facts", "figures", "model", "overall", "provisional", "values", "written")

    def __init__(
        self,
        model: TextModel,
        facts: _Facts,
        figures: Mapping[str, tuple[tuple[float, ...], float]],
        values: Mapping[str, float],
        overall: float,
        provisional: bool,
    ) -> None:
        self.model = model
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
        """The explanation of one score, written once."""
        written = self.written
        plain = written.get(name)
        if plain is None:
            plain = written[name] = (
                self.explain_overall() if name == "overall" else self.explain(name)
            )
        return plain

    def summary(self, name: str) -> str:
        """The summary sentence of one score, without writing its contributions."""
        plain = self.written.get(name)
        if plain is not None:
            return plain[2]
        if name == "overall":
            return self.overall_summary()
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
                (n, round2(w * values[n]))
                for n, w in zip(COMPONENT_SCORES, self.model.weights, strict=True)
            ]
        xs, evidence = self.figures[name]
        pts = _points(self.model.fast[name], self.model.shares[name], xs, evidence)
        out = [(n, round2(p)) for n, p in zip(self.model.names[name], pts, strict=True)]
        prior = 50.0 * (1.0 - evidence)
        if prior > 0.0:
            out.append((PRIOR, round2(prior)))
        return out

    def explain_overall(self) -> _Plain:
        values, overall, words = self.values, self.overall, self.model.words
        contributions = [
            (
                name,
                values[name],
                round2(w * values[name]),
                f"{SCORE_LABELS[name]} {values[name]:.0f}/100{words[name]}",
            )
            for name, w in zip(COMPONENT_SCORES, self.model.weights, strict=True)
        ]
        return ("overall", overall, self.overall_summary(), contributions)

    def overall_summary(self) -> str:
        """The overall explanation's summary, without writing its contributions."""
        values, overall = self.values, self.overall
        ranked = list(zip(map(values.__getitem__, COMPONENT_SCORES), COMPONENT_SCORES, strict=True))
        best = max(ranked)[1]
        worst = min(ranked)[1]
        if f"{values[best]:.0f}" == f"{values[worst]:.0f}":
            # No score stands out (a creator with no data has all seven at the neutral 50):
            # naming one "strongest" and another "room to grow" would invent a difference.
            summary = (
                f"Overall {overall:.0f}/100 ({_band(overall)}), a weighted blend of seven "
                f"scores, all {values[best]:.0f}."
            )
        else:
            summary = (
                f"Overall {overall:.0f}/100 ({_band(overall)}), a weighted blend of seven "
                f"scores; strongest: {SCORE_LABELS[best].lower()} ({values[best]:.0f}), "
                f"most room to grow: {SCORE_LABELS[worst].lower()} ({values[worst]:.0f})."
            )
        if self.provisional:
            f, p = self.facts, self.model.params
            summary += (
                f" Provisional: {_plural(f.posts, 'post')} and "
                f"{_plural(f.orders, 'order')} in the last {f.window} days "
                f"(scores firm up from {p.min_posts} posts and {p.min_orders} orders)."
            )
        return summary

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
            (cname, _round4(x), round2(p), text)
            for (cname, _, _, _, _), x, p, text in zip(spec, xs, pts, texts, strict=True)
        ]
        if prior > 0.0:
            contributions.append(
                (PRIOR, _round4(1.0 - evidence), round2(prior), self.prior_text(name, prior))
            )
        return (name, self.values[name], self._summary(name, pts, evidence), contributions)

    def _summary(self, name: str, pts: list[float], evidence: float) -> str:
        value = self.values[name]
        prior = 50.0 * (1.0 - evidence)
        head = f"{SCORE_LABELS[name]} {value:.0f}/100 ({_band(value)}). "
        f = self.facts
        if name == "sales" and not f.orders:
            summary = head + f"No orders in the last {f.window} days."
        elif max(pts) <= 0.0:
            summary = head + "No input lifts it yet."
        else:
            # The input holding the most points, and the one furthest below its full share
            # (ties go to the later name, as with a (points, name) key); never the same one.
            names = self.model.names[name]
            best = max(zip(pts, names, strict=True))[1]
            full = evidence * 100.0
            below = map(sub, map(mul, repeat(full), self.model.shares[name]), pts)
            others = [(gap, n) for gap, n in zip(below, names, strict=True) if n != best]
            summary = head + f"Biggest lift: {COMPONENT_LABELS[best]}"
            summary += (
                f"; most room to grow: {COMPONENT_LABELS[max(others)[1]]}." if others else "."
            )
        if prior > 0.0:
            few = "views" if name == "reception" else "posts"
            summary += (
                f" Based on few {few} so far, so it is pulled toward 50 ({prior:.1f} points)."
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
            f"product tags, counted as {xs[0]:.0%}, evened out toward typical while posts are "
            f"few (typical: {t['tagged_share']}).",
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
            f"(evened out toward typical while orders are few; typical: {t['refund_rate']}; "
            f"lower is better)."
        )
        if f.cancelled:
            refunds += f" {_plural(f.cancelled, 'cancelled order')} not counted as sales."
        return [
            f"Net sales of {_usd(f.net_usd)} from {_plural(f.placed, 'kept order')} across "
            f"{_plural(f.posts, 'post')}: {_usd(xs[0])} per post, evened out toward typical "
            f"while posts are few (typical: {t['net_sales_per_post']}).",
            f"{xs[1]:.2f} kept orders per post, evened out the same way "
            f"(typical: {t['orders_per_post']}).",
            f"{_usd(xs[2])} of net sales per 1,000 views, evened out toward typical, over "
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


# --- the compiled texts ----------------------------------------------------------------

# The inputs of one score for `_points`: (100 x weight share, kind code, baseline,
# steepness, -steepness, 1 - baseline). Kind codes: 0 ratio, 1 inverse, 2 share.
_Fast = tuple[tuple[float, int, float, float, float, float], ...]


class TextModel:
    """Params compiled for writing explanations: input order, weight shares, and the fixed
    parts of the sentences ("(typical: ...)", "weighted 22%.") written once."""

    __slots__ = ("fast", "names", "params", "quotes", "shares", "specs", "typical", "weights",
                 "words")  # fmt: skip

    def __init__(self, params: Params) -> None:
        m = model_of(params)
        self.params = params
        self.specs = {
            name: tuple((c.name, c.share, c.kind, c.baseline, c.steepness) for c in curves)
            for name, curves in m.curves.items()
        }
        self.fast: dict[str, _Fast] = {
            name: tuple(
                (c.w100, c.kind, c.baseline, c.steepness, -c.steepness, 1.0 - c.baseline)
                for c in curves
            )
            for name, curves in m.curves.items()
        }
        self.weights = m.weights
        self.typical = {
            c.name: _typical(c.name, c.baseline) for cs in m.curves.values() for c in cs
        }
        self.names = {name: tuple(c.name for c in cs) for name, cs in m.curves.items()}
        self.shares = {name: tuple(c.share for c in cs) for name, cs in m.curves.items()}
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


_TEXT_MODELS: dict[int, TextModel] = {}


def text_model(params: Params) -> TextModel:
    """The compiled texts of `params` (kept per Params object: they are immutable)."""
    m = _TEXT_MODELS.get(id(params))
    if m is None or m.params is not params:
        if len(_TEXT_MODELS) >= 64:
            _TEXT_MODELS.clear()
        m = _TEXT_MODELS[id(params)] = TextModel(params)
    return m


def lazy_explanations(basis: Mapping[str, Any], params: Params) -> Mapping[str, Explanation]:
    """The explanations of a basis this process computed (`Scores.basis`), unchecked:
    `explanations_from_basis` is for a basis read from outside."""
    return _LazyExplanations(
        _Explainer(
            text_model(params),
            _Facts(*basis["facts"]),
            {name: (tuple(xs), ev) for name, (xs, ev) in basis["figures"].items()},
            dict(zip(COMPONENT_SCORES, basis["values"], strict=True)),
            basis["overall"],
            basis["provisional"],
        )
    )


def explanations_of(scores: Scores, i: int) -> Mapping[str, Explanation]:
    """The explanations of creator i's card in `scores`, written on first use (no basis
    dict built: for readers of a few parts, such as the change records)."""
    return _LazyExplanations(
        _Explainer(
            text_model(scores.model.params),
            _Facts._make(scores.facts(i)),
            {name: (tuple(xs), ev) for name, (xs, ev) in scores.figures(i).items()},
            dict(zip(COMPONENT_SCORES, scores.values[i].tolist(), strict=True)),
            float(scores.overall[i]),
            bool(scores.provisional[i]),
        )
    )


def card_of(
    scores: Scores, i: int, creator_id: str, region: str | None, as_of_ms: int, vocab: Vocabulary
) -> ScoreCard:
    """Creator i's card in `scores`, with explanations written from its basis on first use."""
    params = scores.model.params
    values = scores.values[i].tolist()
    infl_t, overall_t = scores.by_theme(i, vocab)
    infl_c, overall_c = scores.by_content_type(i, vocab)
    card: ScoreCard = _new(ScoreCard)
    # A frozen dataclass's __init__ sets each field through object.__setattr__; filling the
    # instance dict at once builds the same card (there is no __post_init__).
    card.__dict__.update(
        creator_id=creator_id,
        region=region or UNKNOWN_REGION,
        model_version=params.model_version,
        as_of_ms=as_of_ms,
        overall=float(scores.overall[i]),
        **dict(zip(COMPONENT_SCORES, values, strict=True)),
        provisional=bool(scores.provisional[i]),
        confidence=float(scores.confidence[i]),
        influence_by_theme=MappingProxyType(infl_t),
        influence_by_content_type=MappingProxyType(infl_c),
        overall_by_theme=MappingProxyType(overall_t),
        overall_by_content_type=MappingProxyType(overall_c),
        explanations=lazy_explanations(scores.basis(i), params),
        active=bool(scores.active[i]),
    )
    return card


_new = object.__new__
