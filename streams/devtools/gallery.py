"""The explanation gallery (docs/explanations.md): real cards of typical creators, as a brand
manager reads them.

The simulator's population has six kinds of creators (`simulate.HABITS`). This takes the
simulated stream of a small population, scores each creator with the model (every valid
event applied, the window ending at the stream time, as the worker does), and writes one
card per kind: the creator whose overall score is the median of its kind, with every
score's summary and the sentences of its inputs. A last card shows a creator that went
quiet (the same stream, read 30 days later). It also draws the README's picture
(docs/leaderboard.svg): the dashboard's leaderboard of the same population. Both are
generated, never edited: a unit test checks that the committed files are what this writes.

    python -m streams.devtools.gallery            # rewrites docs/explanations.md
    python -m streams.devtools.gallery --check    # exit 1 if the file is stale
"""

from __future__ import annotations

import argparse
import io
import sys
from collections import defaultdict
from pathlib import Path
from typing import Final

import orjson
from rich.console import Console

from scoring.columns import DAY_MS
from scoring.explain import ScoreCard
from scoring.names import SCORE_LABELS, SCORE_NAMES
from scoring.params import DEFAULT_PARAMS, Params
from scoring.state import CreatorState, score
from scoring.validate import ValidationError, validate
from streams.devtools.dashboard import REGION_N, TOP_N, Leaders, leaders_view
from streams.devtools.simulate import REGIONS, SimConfig, SimTopics, Simulator
from streams.readers import BoardEntry

#: The stream ends here (2026-11-30T00:00:00Z): fixed, so the gallery never changes by
#: itself.
END_MS: Final = 1_796_000_000_000 // DAY_MS * DAY_MS
SEED: Final = 7
CREATORS: Final = 120
EVENTS: Final = 24_000
OUT: Final = Path(__file__).resolve().parents[2] / "docs" / "explanations.md"
#: The README's picture: the dashboard's leaderboard of the same population.
PICTURE: Final = OUT.with_name("leaderboard.svg")


def cards(params: Params = DEFAULT_PARAMS) -> tuple[dict[str, list[ScoreCard]], ScoreCard]:
    """Every simulated creator's card by kind, and one creator's card 30 days later."""
    config = SimConfig(end_ms=END_MS, events=EVENTS, creators=CREATORS, seed=SEED,
                       malformed_share=0.0, mis_keyed_share=0.0, duplicate_share=0.0)  # fmt: skip
    sim = Simulator(config)
    kinds = {c.creator_id: c.habit.name for c in sim.population.creators}
    topics = SimTopics()
    kind_of_topic = {topics.posts: "post", topics.tags: "tag", topics.orders: "order"}
    states: dict[str, CreatorState] = {}
    for event in sim:
        kind = kind_of_topic[event.topic]
        parsed = validate(kind, orjson.loads(event.value), now_ms=END_MS, params=params)  # type: ignore[arg-type]
        if isinstance(parsed, ValidationError):
            continue
        state = states.setdefault(parsed.creator_id, CreatorState.new(parsed.creator_id))
        state.apply(parsed, params)
    stream_ms = max(state.watermark_ms for state in states.values())
    by_kind: dict[str, list[ScoreCard]] = defaultdict(list)
    for creator_id, state in sorted(states.items()):
        state.roll(stream_ms, params)
        by_kind[kinds[creator_id]].append(score(state, params))
    quiet_id = sorted(states)[0]
    quiet = states[quiet_id]
    quiet.roll(stream_ms + (params.window_days + 2) * DAY_MS, params)
    return dict(by_kind), score(quiet, params)


def median_card(cards: list[ScoreCard]) -> ScoreCard:
    ranked = sorted(cards, key=lambda c: (c.overall, c.creator_id))
    return ranked[len(ranked) // 2]


def _date(ms: int) -> str:
    import numpy as np

    return str(np.datetime64(ms // DAY_MS, "D"))


def render_card(card: ScoreCard, title: str) -> list[str]:
    lines = [f"## {title}", ""]
    flags = []
    if not card.active:
        flags.append("**inactive** (nothing in the window: on no leaderboard)")
    if card.provisional:
        flags.append("**provisional**")
    lines.append(
        f"`{card.creator_id}`, region {card.region}, as of {_date(card.as_of_ms)}, "
        f"confidence {card.confidence:.2f}" + (", " + ", ".join(flags) if flags else "") + "."
    )
    lines += ["", "| score | value | summary |", "|---|---|---|"]
    for name in SCORE_NAMES:
        e = card.explanations[name]
        lines.append(f"| {SCORE_LABELS[name]} | {e.value:.0f} | {e.summary} |")
    lines.append("")
    for name in SCORE_NAMES[1:]:
        e = card.explanations[name]
        lines.append(f"**{SCORE_LABELS[name]} {e.value:.0f}**")
        lines.append("")
        for c in e.contributions:
            lines.append(f"- **{c.points:+.1f}** {c.text}")
        lines.append("")
    return lines


def picture(by_kind: dict[str, list[ScoreCard]]) -> str:
    """The dashboard's leaderboard (`dashboard.leaders_view`) of the population, as SVG."""
    active = [c for kind in by_kind.values() for c in kind if c.active]
    ranked = sorted(active, key=lambda c: (-c.overall, c.creator_id))

    def entries(chosen: list[ScoreCard], n: int) -> list[BoardEntry]:
        return [BoardEntry(i, c.creator_id, c.overall, c.provisional, c.region)
                for i, c in enumerate(chosen[:n], start=1)]  # fmt: skip

    leaders = Leaders(
        top=entries(ranked, TOP_N),
        by_region={r: entries([c for c in ranked if c.region == r], REGION_N) for r in REGIONS},
        ranked=len(ranked),
        newest_update_ms=None,
    )
    console = Console(record=True, width=96, file=io.StringIO(), color_system="truecolor")
    console.print(leaders_view(leaders, 0.0))
    return console.export_svg(title="creator-scores dashboard", unique_id="leaderboard")


def render(
    by_kind: dict[str, list[ScoreCard]], quiet: ScoreCard, params: Params = DEFAULT_PARAMS
) -> str:
    """docs/explanations.md from the cards of `cards()`."""
    lines = [
        "# What a brand manager sees: explanation gallery",
        "",
        "Generated by `python -m streams.devtools.gallery` (never edited by hand; a unit "
        "test checks it is current). The simulator's population of "
        f"{CREATORS} creators (seed {SEED}, {EVENTS:,} events over 28 days) is scored by "
        f"the model `{params.model_version}`; for each kind of creator, the one whose "
        "overall score is the median of its kind is shown, with every score's summary and "
        "the sentence of each input. Points add up to the score (to rounding); for overall "
        "they are weight x score. How the scores are computed is in "
        "[docs/scoring.md](scoring.md).",
        "",
    ]
    for kind in sorted(by_kind):
        card = median_card(by_kind[kind])
        lines += render_card(card, f"{kind.replace('_', ' ').capitalize()} "
                                   f"({len(by_kind[kind])} creators of this kind)")  # fmt: skip
    lines += render_card(quiet, "A creator that went quiet (the same stream, 30 days later)")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streams.devtools.gallery",
                                     description=__doc__.splitlines()[0])  # fmt: skip
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    by_kind, quiet = cards()
    text = render(by_kind, quiet)
    svg = picture(by_kind)
    outputs = ((args.out, text), (args.out.with_name(PICTURE.name), svg))
    if args.check:
        stale = [p for p, t in outputs if not p.exists() or p.read_text(encoding="utf-8") != t]
        for path in stale:
            print(f"{path} is stale: run python -m streams.devtools.gallery", file=sys.stderr)
        return 1 if stale else 0
    for path, content in outputs:
        path.write_text(content, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
