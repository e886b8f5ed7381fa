"""Reads scores back from Redis for people: the `top` and `show` commands and the dashboard.

The worker writes each creator's hash (`{prefix}creator:{id}`) and the sorted-set
leaderboards; this module only reads them, through `streams.keys`, and turns
their string fields into typed values. A field the worker wrote in an
unexpected shape is reported next to the value, never a crash: the readers are
what an operator reaches for when something already looks wrong.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, cast

import orjson
import redis
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from scoring.explain import Explanation, explanations_from_basis
from scoring.labels import normalise
from scoring.names import REGION_ALIASES, SCORE_NAMES, UNKNOWN_REGION
from scoring.params import Params
from streams.keys import BOARD_SCORES, BREAKDOWN_SCORES, GLOBAL_REGION, BoardRef, Keys

#: Sub-scores in the order `show` lists them, after the overall score.
SUB_SCORES: Final = tuple(name for name in SCORE_NAMES if name != "overall")
#: The legend of a board that shows a creator the worker has seen no post of (yet).
UNKNOWN_REGION_NOTE: Final = f"{UNKNOWN_REGION}: region not known yet (no post seen)"


class ReaderError(ValueError):
    """A request the readers cannot answer as asked (unknown score, conflicting filters).

    `param` names the parameter at fault and `valid` lists the values it may take, where
    there is such a list (for the read API's errors).
    """

    def __init__(self, message: str, *, param: str | None = None, valid: Sequence[str] = ()):
        super().__init__(message)
        self.param = param
        self.valid = tuple(valid)


@dataclass(frozen=True)
class BoardEntry:
    rank: int
    creator_id: str
    score: float
    provisional: bool | None  # None: the creator hash is missing or unreadable
    region: str | None


@dataclass(frozen=True)
class ContributionView:
    name: str
    value: float | None
    points: float | None
    text: str


@dataclass(frozen=True)
class ExplanationView:
    score: str
    value: float | None
    summary: str
    contributions: tuple[ContributionView, ...]


@dataclass(frozen=True)
class CreatorView:
    """A creator hash with typed fields; `problems` lists fields that did not parse."""

    creator_id: str
    scores: dict[str, float]
    provisional: bool | None
    confidence: float | None
    region: str | None
    event_time_ms: int | None
    updated_at_ms: int | None
    model_version: str | None
    explanations: dict[str, ExplanationView]
    extra: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    #: False: nothing in the creator's window, it is on no leaderboard (a hash written
    #: before the field existed counts as active).
    active: bool = True

    def to_dict(self) -> dict[str, object]:
        return {
            "creator_id": self.creator_id,
            "scores": self.scores,
            "provisional": self.provisional,
            "confidence": self.confidence,
            "region": self.region,
            "event_time_ms": self.event_time_ms,
            "event_time": _iso(self.event_time_ms),
            "updated_at_ms": self.updated_at_ms,
            "updated_at": _iso(self.updated_at_ms),
            "model_version": self.model_version,
            "active": self.active,
            "explain": {
                name: {
                    "value": e.value,
                    "summary": e.summary,
                    "contributions": [
                        {"name": c.name, "value": c.value, "points": c.points, "text": c.text}
                        for c in e.contributions
                    ],
                }
                for name, e in self.explanations.items()
            },
            "extra": self.extra,
            "problems": list(self.problems),
        }


# --------------------------------------------------------------------------- reading


def board_key(
    keys: Keys,
    *,
    score: str = "overall",
    region: str = GLOBAL_REGION,
    theme: str | None = None,
    content_type: str | None = None,
    taxonomy: Params | None = None,
) -> str:
    """The leaderboard key for a request; ReaderError explains a request with no board
    (see `board_ref`)."""
    ref = board_ref(
        score=score, region=region, theme=theme, content_type=content_type, taxonomy=taxonomy
    )
    return ref.key(keys)


def board_ref(
    *,
    score: str = "overall",
    region: str = GLOBAL_REGION,
    theme: str | None = None,
    content_type: str | None = None,
    taxonomy: Params | None = None,
) -> BoardRef:
    """The leaderboard a request names; ReaderError explains a request with no board.

    A theme or content type is normalised as the worker normalises labels (`Beauty`
    reads the `beauty` board). With `taxonomy` (the worker's parameters), a label outside
    it, which never has a board (the worker files it under `other`), is an error that
    lists the labels there are; so is a region that is not ALL or a two-letter code.
    """
    if score not in BOARD_SCORES:
        raise ReaderError(
            f"unknown score {score!r}; choose one of {', '.join(BOARD_SCORES)}",
            param="score", valid=BOARD_SCORES,
        )  # fmt: skip
    region = valid_region(region)
    if theme is not None and content_type is not None:
        raise ReaderError(
            "choose a theme or a content type, not both: no board has both", param="theme"
        )
    if (theme is not None or content_type is not None) and score not in BREAKDOWN_SCORES:
        raise ReaderError(
            f"per-theme and per-content-type boards exist for {', '.join(BREAKDOWN_SCORES)} "
            f"only, not {score!r}",
            param="score", valid=BREAKDOWN_SCORES,
        )  # fmt: skip
    if theme is not None:
        return BoardRef(score, region, theme=valid_label("theme", theme, taxonomy))
    if content_type is not None:
        label = valid_label("content_type", content_type, taxonomy)
        return BoardRef(score, region, content_type=label)
    return BoardRef(score, region)


def valid_region(region: str) -> str:
    """`region` as boards name it (`region_code`); ReaderError unless ALL or two letters."""
    if not region.strip():
        raise ReaderError("region must not be empty (ALL for the global board)", param="region")
    code = region_code(region)
    if code != GLOBAL_REGION and not (len(code) == 2 and code.isascii() and code.isalpha()):
        raise ReaderError(
            f"region {code!r} is not ALL or a two-letter code such as US, GB, ID, MY, VN, PH",
            param="region",
        )
    return code


def valid_label(kind: str, label: str, taxonomy: Params | None) -> str:
    """A theme (`kind` "theme") or content type ("content_type") normalised as the worker
    normalises it; with `taxonomy`, ReaderError for one outside it (it has no board)."""
    words = kind.replace("_", " ")
    if not label.strip():
        raise ReaderError(f"{words} must not be empty", param=kind)
    normal = normalise(label)
    if taxonomy is not None:
        labels = taxonomy.theme_set if kind == "theme" else taxonomy.content_type_set
        if normal not in labels:
            plural = "themes" if kind == "theme" else "content types"
            raise ReaderError(
                f"no board for {words} {label!r}; the {plural} are: {', '.join(sorted(labels))}",
                param=kind, valid=sorted(labels),
            )  # fmt: skip
    return normal


def region_code(region: str) -> str:
    """A region as boards name it: upper case, `UK` as `GB` (as the worker files events),
    `ALL` for the global board."""
    upper = region.strip().upper()
    return REGION_ALIASES.get(upper, upper)


def connect(url: str) -> redis.Redis:
    """A client for the readers: text replies, short timeouts (people are waiting)."""
    return redis.Redis.from_url(
        url, decode_responses=True, socket_timeout=5.0, socket_connect_timeout=3.0
    )


def read_top(client: redis.Redis, keys: Keys, board: str, n: int = 10) -> list[BoardEntry]:
    """The best `n` of a board, with each creator's provisional flag and region.

    Two round trips whatever `n` is: the board range, then one pipeline of
    HMGETs on the creator hashes.
    """
    if n < 1:
        raise ReaderError(f"n must be at least 1, got {n}")
    # The client decodes replies (see `connect`), so members come back as text.
    members = cast("list[tuple[str, float]]", client.zrevrange(board, 0, n - 1, withscores=True))
    if not members:
        return []
    pipe = client.pipeline(transaction=False)
    for creator_id, _ in members:
        pipe.hmget(keys.creator(creator_id), ["provisional", "region"])
    details = cast("list[list[str | bytes | None]]", pipe.execute())
    entries = []
    for rank, ((creator_id, score), (provisional, region)) in enumerate(
        zip(members, details, strict=True), start=1
    ):
        entries.append(
            BoardEntry(
                rank,
                creator_id,
                score,
                _parse_bool(text(provisional) if provisional is not None else None),
                text(region) if region else None,
            )
        )
    return entries


def regions_with_boards(client: redis.Redis, keys: Keys) -> list[str]:
    """The regions with an overall board under the prefix (not ALL), sorted: what `top` lists
    when asked for a region without creators.

    One SCAN of the keyspace (COUNT 1000): cheap enough for that error path, not for a
    request served on every call.
    """
    pattern = _glob_escape(keys.board("overall", "")) + "*"
    regions = set()
    for key in client.scan_iter(match=pattern, count=1000):
        ref = keys.parse_board(text(key))
        if ref is None or ref.theme is not None or ref.content_type is not None:
            continue  # a theme or content-type board (parts after the region)
        if ref.score == "overall" and ref.region != GLOBAL_REGION:
            regions.add(ref.region)
    return sorted(regions)


def _glob_escape(literal: str) -> str:
    """`literal` as a SCAN MATCH pattern that matches it alone (a prefix may hold `*`; the
    keys found are checked anyway, this only keeps others from being sent)."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in literal)


def board_size(client: redis.Redis, board: str) -> int:
    return int(client.zcard(board))


def read_creator(
    client: redis.Redis, keys: Keys, creator_id: str, params: Params | None = None
) -> CreatorView | None:
    """A creator's hash as typed values; None if Redis has no scores for that creator.

    `params`: the scoring model's parameters, to write the explanations from the hash's
    `basis` (without them, or for another model version, `problems` says so).
    """
    reply = client.hgetall(keys.creator(creator_id))
    if not reply:
        return None
    return parse_creator(creator_id, {text(k): text(v) for k, v in reply.items()}, params)


def text(value: str | bytes) -> str:
    """A reply as text, whether or not the client was made with decode_responses."""
    return value.decode() if isinstance(value, bytes) else value


def parse_creator(
    creator_id: str, raw: Mapping[str, str], params: Params | None = None
) -> CreatorView:
    """Typed view of a creator hash; unparseable fields land in `problems`, not exceptions.

    Explanations come from `basis` (written out with `params`), or from `explain` (the
    texts themselves, as workers before explanation bases wrote them).
    """
    problems: list[str] = []
    scores: dict[str, float] = {}
    for name in SCORE_NAMES:
        if name in raw:
            value = _parse_float(raw[name])
            if value is None:
                problems.append(f"{name}: not a number ({raw[name]!r})")
            else:
                scores[name] = value
    provisional = _parse_bool(raw.get("provisional"))
    if "provisional" in raw and provisional is None:
        problems.append(f"provisional: not a flag ({raw['provisional']!r})")
    confidence = _parse_float(raw.get("confidence"))
    if "confidence" in raw and confidence is None:
        problems.append(f"confidence: not a number ({raw['confidence']!r})")
    event_time = _parse_int(raw.get("event_time"))
    if "event_time" in raw and event_time is None:
        problems.append(f"event_time: not epoch milliseconds ({raw['event_time']!r})")
    updated_at = _parse_int(raw.get("updated_at"))
    if "updated_at" in raw and updated_at is None:
        problems.append(f"updated_at: not epoch milliseconds ({raw['updated_at']!r})")
    explanations: dict[str, ExplanationView] = {}
    if "basis" in raw:
        try:
            explanations = _render_basis(raw["basis"], raw.get("model_version"), params)
        except ValueError as exc:
            problems.append(f"basis: {exc}")
    elif "explain" in raw:
        try:
            explanations = _parse_explain(raw["explain"])
        except ValueError as exc:
            problems.append(f"explain: {exc}")
    active = _parse_bool(raw.get("active", "1"))
    if active is None:
        problems.append(f"active: not a flag ({raw['active']!r})")
    known = {*SCORE_NAMES, "provisional", "confidence", "region", "event_time", "updated_at"}
    known |= {"model_version", "explain", "basis", "active"}
    return CreatorView(
        creator_id=creator_id,
        scores=scores,
        provisional=provisional,
        confidence=confidence,
        region=raw.get("region") or None,
        event_time_ms=event_time,
        updated_at_ms=updated_at,
        model_version=raw.get("model_version") or None,
        explanations=explanations,
        extra={k: v for k, v in raw.items() if k not in known},
        problems=tuple(problems),
        active=active is not False,
    )


def _render_basis(
    text: str, model_version: str | None, params: Params | None
) -> dict[str, ExplanationView]:
    if params is None:
        raise ValueError("no model parameters given to write the explanations with")
    if model_version != params.model_version:
        raise ValueError(
            f"scored with model {model_version!r}; this reader has {params.model_version!r}"
        )
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    return {name: _view(e) for name, e in explanations_from_basis(doc, params).items()}


def _view(e: Explanation) -> ExplanationView:
    return ExplanationView(
        score=e.score,
        value=e.value,
        summary=e.summary,
        contributions=tuple(
            ContributionView(name=c.name, value=c.value, points=c.points, text=c.text)
            for c in e.contributions
        ),
    )


def _parse_explain(text: str) -> dict[str, ExplanationView]:
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"expected an object by score name, got {type(doc).__name__}")
    out: dict[str, ExplanationView] = {}
    for name, entry in doc.items():
        if not isinstance(entry, dict):
            raise ValueError(f"{name}: expected an object, got {type(entry).__name__}")
        contributions = []
        for item in entry.get("contributions") or []:
            if not isinstance(item, dict):
                raise ValueError(f"{name}: a contribution is not an object")
            contributions.append(
                ContributionView(
                    name=str(item.get("name", "")),
                    value=_parse_float(item.get("value")),
                    points=_parse_float(item.get("points")),
                    text=str(item.get("text", "")),
                )
            )
        out[str(name)] = ExplanationView(
            score=str(name),
            value=_parse_float(entry.get("value")),
            summary=str(entry.get("summary", "")),
            contributions=tuple(contributions),
        )
    return out


def _parse_float(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _parse_int(value: object) -> int | None:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _parse_bool(value: str | None) -> bool | None:
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    return None


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    try:
        return (
            dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
            .isoformat(timespec="seconds")
            .replace("+00:00", "Z")
        )
    except (OverflowError, OSError, ValueError):
        return None


# --------------------------------------------------------------------------- rendering


def _flag(provisional: bool | None) -> str:
    return {True: "provisional", False: "", None: "?"}[provisional]


def top_table(entries: Sequence[BoardEntry], title: str) -> RenderableType:
    """The board as a table, and under it the legend of region ZZ when a creator shows it."""
    # Redis data is shown as plain Text: rich would read "[..]" as markup, ":ID:" as an emoji.
    table = Table(title=Text(title), title_justify="left", expand=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("creator")
    table.add_column("score", justify="right")
    table.add_column("region")
    table.add_column("", style="yellow")
    for e in entries:
        table.add_row(
            str(e.rank),
            Text(e.creator_id),
            f"{e.score:.2f}",
            Text(e.region or "?"),
            _flag(e.provisional),
        )
    if any(e.region == UNKNOWN_REGION for e in entries):
        return Group(table, Text(UNKNOWN_REGION_NOTE, style="dim"))
    return table


def top_json(entries: Sequence[BoardEntry], board: str) -> str:
    rows = [
        {
            "rank": e.rank,
            "creator_id": e.creator_id,
            "score": e.score,
            "provisional": e.provisional,
            "region": e.region,
        }
        for e in entries
    ]
    return orjson.dumps({"board": board, "entries": rows}, option=orjson.OPT_INDENT_2).decode()


def _num(value: float | None, digits: int = 2) -> str:
    return "?" if value is None else f"{value:.{digits}f}"


def creator_renderable(view: CreatorView) -> RenderableType:
    """The creator's scores, then one table of contributions per explained score."""
    head = Text()
    head.append(view.creator_id, style="bold")
    head.append(f"  region {view.region or '?'}")
    if not view.active:
        head.append("  inactive: nothing in its window, on no leaderboard", style="red")
    if view.provisional:
        head.append("  provisional", style="yellow")
    head.append(f"  confidence {_num(view.confidence)}")
    head.append(f"\nscores as of {_iso(view.event_time_ms) or '?'} (window end), ")
    head.append(f"written {_iso(view.updated_at_ms) or '?'}, model {view.model_version or '?'}")

    scores = Table(show_header=True, expand=False)
    scores.add_column("score")
    scores.add_column("value", justify="right")
    scores.add_column("why")
    for name in ("overall", *SUB_SCORES):
        explanation = view.explanations.get(name)
        value = view.scores.get(name)
        scores.add_row(
            Text(name, style="bold" if name == "overall" else ""),
            _num(value),
            Text(explanation.summary if explanation else ""),
        )
    parts: list[RenderableType] = [head, scores]
    for name in ("overall", *SUB_SCORES):
        explanation = view.explanations.get(name)
        if explanation is None or not explanation.contributions:
            continue
        table = Table(title=Text(f"{name} {_num(explanation.value)}"), title_justify="left")
        table.add_column("input")
        table.add_column("value", justify="right")
        table.add_column("points", justify="right")
        table.add_column("")
        for c in explanation.contributions:
            table.add_row(Text(c.name), _num(c.value, 3), _num(c.points), Text(c.text))
        parts.append(table)
    if view.extra:
        parts.append(Text("other fields: " + ", ".join(f"{k}={v}" for k, v in view.extra.items())))
    for problem in view.problems:
        parts.append(Text(f"unreadable field - {problem}", style="red"))
    return Group(*parts)


def creator_json(view: CreatorView) -> str:
    return orjson.dumps(view.to_dict(), option=orjson.OPT_INDENT_2).decode()
