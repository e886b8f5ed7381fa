"""A live terminal leaderboard: who leads, per region, and how fast events are being scored.

Scores come from Redis (the same keys `top` reads). Pipeline figures (events
consumed and scored per second, dead letters, consumer lag) come from the
worker's Prometheus endpoint when it answers; rates are averaged over the last
`RATE_WINDOW_S` of scrapes (a worker's counters move once per flush, so the rate
between two one-second scrapes jumps between 0 and tens of thousands). Off a
terminal (`make demo | tee demo.log`) the view prints a plain frame every few
seconds instead of redrawing in place. Without an endpoint the dashboard shows what Redis alone can
tell: how many creators are ranked and how recently a leader was rewritten. A creator
shown in region `ZZ` (no post of it seen yet) gets a legend that says so.
Every frame is built from fresh reads, so a service going away or coming back
shows up in the next frame rather than ending the view.
"""

from __future__ import annotations

import contextlib
import signal
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final, cast

import redis
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from scoring.names import UNKNOWN_REGION
from streams.devtools.simulate import REGIONS
from streams.keys import GLOBAL_REGION, Keys
from streams.readers import UNKNOWN_REGION_NOTE, BoardEntry, connect, text
from streams.settings import Settings

TOP_N: Final = 10
REGION_N: Final = 3
#: Rates are taken over this many seconds of scrapes.
RATE_WINDOW_S: Final = 10.0
#: Off a terminal, a frame is printed this often (seconds).
PLAIN_EVERY_S: Final = 5.0

#: Worker metrics summed over their labels: (family name, sample suffix).
_COUNTERS: Final = {
    "consumed": "creator_scores_events_consumed",
    "scored": "creator_scores_events_scored",
    "dead_letters": "creator_scores_dead_letters",
    "score_changes": "creator_scores_score_changes",
    "rerouted": "creator_scores_events_rerouted",
}
#: How long a failed scrape may be covered by the last good one, seconds.
STALE_S: Final = 15.0
_GAUGES: Final = {
    "creators_in_state": "creator_scores_creators_in_state",
    "lag": "kafka_consumergroup_group_sum_lag",
}


@dataclass(frozen=True)
class Scrape:
    at: float  # monotonic seconds
    values: dict[str, float]


def parse_metrics(body: str) -> dict[str, float]:
    """The dashboard's figures from a Prometheus text exposition (sums over labels)."""
    wanted = {v: k for k, v in _COUNTERS.items()}
    gauges = {v: k for k, v in _GAUGES.items()}
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(body):
        name = family.name
        if name in wanted:
            total = sum(s.value for s in family.samples if s.name == f"{name}_total")
            out[wanted[name]] = out.get(wanted[name], 0.0) + total
        elif name in gauges:
            total = sum(s.value for s in family.samples if s.name == name)
            out[gauges[name]] = out.get(gauges[name], 0.0) + total
    return out


def scrape(url: str, timeout_s: float = 0.5) -> Scrape | str:
    """One scrape of the worker endpoint, or a short reason why there is none."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            body = response.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"no worker metrics at {url} ({reason})"
    try:
        return Scrape(time.monotonic(), parse_metrics(body))
    except ValueError as exc:  # not a Prometheus exposition
        return f"unreadable metrics at {url} ({exc})"


@dataclass
class Leaders:
    top: list[BoardEntry]
    by_region: dict[str, list[BoardEntry]]
    ranked: int
    newest_update_ms: int | None


def read_leaders(client: redis.Redis, keys: Keys, regions: Sequence[str] = REGIONS) -> Leaders:
    """The global top and each region's leaders in two round trips."""
    pipe = client.pipeline(transaction=False)
    pipe.zrevrange(keys.board("overall", GLOBAL_REGION), 0, TOP_N - 1, withscores=True)
    pipe.zcard(keys.board("overall", GLOBAL_REGION))
    for region in regions:
        pipe.zrevrange(keys.board("overall", region), 0, REGION_N - 1, withscores=True)
    replies = pipe.execute()
    boards = [
        [(text(m), float(s)) for m, s in cast("list[tuple[str | bytes, float]]", reply)]
        for reply in [replies[0], *replies[2:]]
    ]
    ranked = int(replies[1])
    creators = sorted({c for board in boards for c, _ in board})
    details: dict[str, tuple[bool | None, str | None, int | None]] = {}
    if creators:
        pipe = client.pipeline(transaction=False)
        for creator_id in creators:
            pipe.hmget(keys.creator(creator_id), ["provisional", "region", "updated_at"])
        for creator_id, (prov, where, updated) in zip(
            creators, cast("list[list[str | bytes | None]]", pipe.execute()), strict=True
        ):
            flag = None if prov is None else text(prov) in ("1", "true", "True")
            stamp = text(updated) if updated is not None else ""
            details[creator_id] = (
                flag,
                text(where) if where else None,
                int(stamp) if stamp.isdigit() else None,
            )

    def entries(board: list[tuple[str, float]]) -> list[BoardEntry]:
        out = []
        for rank, (creator_id, score) in enumerate(board, start=1):
            flag, region, _ = details.get(creator_id, (None, None, None))
            out.append(BoardEntry(rank, creator_id, score, flag, region))
        return out

    stamps = [d[2] for d in details.values() if d[2] is not None]
    return Leaders(
        top=entries(boards[0]),
        by_region={r: entries(b) for r, b in zip(regions, boards[1:], strict=True)},
        ranked=ranked,
        newest_update_ms=max(stamps) if stamps else None,
    )


@dataclass
class Dashboard:
    """Builds frames; keeps the scrapes of the last `RATE_WINDOW_S` for the rates."""

    client: redis.Redis
    keys: Keys
    metrics_url: str
    regions: Sequence[str] = REGIONS
    window_s: float = RATE_WINDOW_S
    scrapes: deque[Scrape] = field(default_factory=deque)
    #: The live ranking widget's page (the demo's read API), shown above the boards.
    widget_url: str | None = None

    def frame(self) -> RenderableType:
        parts: list[RenderableType] = [self._pipeline_panel()]
        if self.widget_url:
            parts.append(widget_panel(self.widget_url))
        try:
            leaders = read_leaders(self.client, self.keys, self.regions)
        except (redis.RedisError, OSError) as exc:
            parts.append(Panel(Text(f"Redis unavailable: {exc}", style="red"), title="scores"))
            return Group(*parts)
        parts.append(self._leaders_view(leaders))
        return Group(*parts)

    def _pipeline_panel(self) -> Panel:
        return self.pipeline_panel(scrape(self.metrics_url))

    def pipeline_panel(self, result: Scrape | str) -> Panel:
        """The pipeline line from a scrape. A worker busy with a batch can answer late: a
        failed scrape then shows the last good figures, with their age, for up to
        `STALE_S` seconds, instead of flickering to "no worker metrics" between two
        good ones."""
        line = Text()
        stale = ""
        if isinstance(result, str):
            last = self.scrapes[-1] if self.scrapes else None
            age = time.monotonic() - last.at if last is not None else None
            if last is None or age is None or age > STALE_S:
                line.append(result, style="dim")
                self.scrapes.clear()
                return Panel(line, title="pipeline")
            values = last.values
            rate = self._rates_between(self.scrapes[0], last)
            stale = f"   (figures {age:.0f}s old: the worker is slow to answer)"
        else:
            values = result.values
            rate = self.rates(result)

        line.append(f"consumed {values.get('consumed', 0):,.0f} ({rate('consumed')})   ")
        line.append(f"scored {values.get('scored', 0):,.0f} ({rate('scored')})   ")
        dead = values.get("dead_letters", 0)
        line.append(
            f"dead letters {dead:,.0f} ({rate('dead_letters')})   ",
            style="red" if dead else "",
        )
        line.append(f"score changes {rate('score_changes')}   ")
        if "lag" in values:
            line.append(f"lag {values['lag']:,.0f}   ")
        if "creators_in_state" in values:
            line.append(f"creators in state {values['creators_in_state']:,.0f}")
        if stale:
            line.append(stale, style="dim")
        return Panel(line, title=Text(f"pipeline ({self.metrics_url})"))

    def rates(self, latest: Scrape) -> Callable[[str], str]:
        """Per-second rates from the oldest scrape of the window to `latest` (which joins it)."""
        window = self.scrapes
        window.append(latest)
        while len(window) > 2 and latest.at - window[1].at >= self.window_s:
            window.popleft()
        return self._rates_between(window[0], latest)

    @staticmethod
    def _rates_between(oldest: Scrape, latest: Scrape) -> Callable[[str], str]:
        dt = latest.at - oldest.at
        values = latest.values

        def rate(name: str) -> str:
            if dt <= 0 or name not in values:
                return "-"
            return f"{max(0.0, values[name] - oldest.values.get(name, 0.0)) / dt:,.0f}/s"

        return rate

    def _leaders_view(self, leaders: Leaders) -> RenderableType:
        return leaders_view(leaders, time.time())


def leaders_view(leaders: Leaders, now_s: float) -> RenderableType:
    """The global top and each region's leaders (the dashboard's lower half; the README's
    picture, `streams.devtools.gallery`)."""
    if not leaders.top:
        return Panel(
            Text("no scores yet: is a worker running and fed (creator-scores simulate)?"),
            title="leaderboard",
        )
    age = ""
    if leaders.newest_update_ms is not None:
        seconds = max(0.0, now_s - leaders.newest_update_ms / 1000)
        age = f", a leader rewritten {seconds:,.0f}s ago"
    top = Table(
        title=f"top {TOP_N} overall, all regions ({leaders.ranked:,} ranked{age})",
        title_justify="left",
    )
    top.add_column("#", justify="right", style="dim")
    top.add_column("creator")
    top.add_column("score", justify="right")
    top.add_column("region")
    top.add_column("", style="yellow")
    for e in leaders.top:
        top.add_row(
            str(e.rank),
            Text(e.creator_id),
            f"{e.score:.2f}",
            Text(e.region or "?"),
            "provisional" if e.provisional else "",
        )
    regional = Table(title="leaders by region", title_justify="left")
    regional.add_column("region")
    for rank in range(1, REGION_N + 1):
        regional.add_column(f"#{rank}")
    for region, entries in leaders.by_region.items():
        cells = [
            Text(f"{e.creator_id} {e.score:.1f}" + ("*" if e.provisional else "")) for e in entries
        ]
        cells += [Text("")] * (REGION_N - len(cells))
        regional.add_row(Text(region), *cells)
    legend = "* provisional (thin data)"
    shown = [*leaders.top, *(e for entries in leaders.by_region.values() for e in entries)]
    if any(e.region == UNKNOWN_REGION for e in shown):
        legend += f"   {UNKNOWN_REGION_NOTE}"
    return Group(top, regional, Text(legend, style="dim"))


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM ends the view like Ctrl-C does: the terminal is restored, exit status 0."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def widget_panel(url: str) -> Panel:
    """Where the same scores are live in a browser: the widget's page, clickable where the
    terminal allows."""
    text = Text(url, style=f"link {url}", overflow="fold")
    return Panel(text, title="live ranking widget (open in a browser)", title_align="left")


def default_metrics_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.metrics_port}/metrics"


def run_dashboard(
    settings: Settings,
    *,
    once: bool = False,
    seconds: float | None = None,
    refresh_s: float = 1.0,
    metrics_url: str | None = None,
    console: Console | None = None,
    widget_url: str | None = None,
) -> None:
    """Show the live view until Ctrl-C, SIGTERM or `seconds`; `once` prints one frame."""
    console = console or Console()
    client = connect(settings.redis_url)
    dashboard = Dashboard(
        client, Keys(settings.redis_prefix), metrics_url or default_metrics_url(settings),
        widget_url=widget_url,
    )  # fmt: skip
    try:
        if once:
            console.print(dashboard.frame())
            return
        deadline = time.monotonic() + seconds if seconds else None
        if not console.is_terminal:
            # rich's Live draws nothing off a terminal: print plain frames now and then.
            with _sigterm_as_interrupt(), contextlib.suppress(KeyboardInterrupt):
                printed = -PLAIN_EVERY_S
                while deadline is None or time.monotonic() < deadline:
                    frame = dashboard.frame()  # every second, so the rates keep their window
                    if time.monotonic() - printed >= PLAIN_EVERY_S:
                        console.print(Text(time.strftime("%H:%M:%S"), style="dim"), frame)
                        printed = time.monotonic()
                    time.sleep(refresh_s)
            return
        with (
            _sigterm_as_interrupt(),
            contextlib.suppress(KeyboardInterrupt),
            Live(dashboard.frame(), console=console, refresh_per_second=4) as live,
        ):
            while deadline is None or time.monotonic() < deadline:
                time.sleep(refresh_s)
                live.update(dashboard.frame())
            # The last frame stays on the screen when the view ends.
    finally:
        client.close()
