"""Every Redis key the project writes or reads is built here, and only here.

Widget authors read the same layout (documented in the README), so a key's
shape is a public contract: change it with a model of care, not in passing.

Board keys are `:`-separated parts, and the parts that come from data (score,
region, label) go through `key_part`, which escapes `%` and `:`. So a theme board
has exactly one more part than its region board, a content-type board two more
with `ct` in between, and no label (`ct:video` as a theme, say) can spell another
board's key. Labels without `%` or `:` (all of the default taxonomy) are written
as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from scoring.names import SCORE_NAMES

GLOBAL_REGION = "ALL"

#: Separates the parts of a key; `key_part` escapes it (and the escape character).
SEPARATOR = ":"

#: Scores that get leaderboards (all of them; per-theme and per-content-type
#: boards are kept for the scores in BREAKDOWN_SCORES).
BOARD_SCORES = SCORE_NAMES
BREAKDOWN_SCORES = ("overall", "influence")


def key_part(text: str) -> str:
    """`text` as one part of a key: `%` becomes `%25` and `:` becomes `%3A`, nothing else.

    Reversible (percent-decoding gives `text` back), hence injective: distinct texts
    give distinct parts, and a part never contains the separator.
    """
    if "%" in text:
        text = text.replace("%", "%25")
    if SEPARATOR in text:
        text = text.replace(SEPARATOR, "%3A")
    return text


@dataclass(frozen=True)
class Keys:
    """Key builder bound to one prefix (default `cs:`)."""

    prefix: str = "cs:"

    def creator(self, creator_id: str) -> str:
        return f"{self.prefix}creator:{creator_id}"

    def board(self, score: str, region: str = GLOBAL_REGION) -> str:
        return f"{self.prefix}lb:{key_part(score)}:{key_part(region)}"

    def theme_board(self, score: str, region: str, theme: str) -> str:
        return f"{self.board(score, region)}:{key_part(theme)}"

    def content_type_board(self, score: str, region: str, content_type: str) -> str:
        return f"{self.board(score, region)}:ct:{key_part(content_type)}"

    def creator_boards(self, creator_id: str) -> str:
        """Set of the boards a creator currently sits on, so it can leave them cleanly."""
        return f"{self.prefix}creator-boards:{creator_id}"

    def boards_pattern(self) -> str:
        return f"{self.prefix}lb:*"

    def partition_marker(self, partition: int) -> str:
        """Set once the creators of a state-table partition are all in Redis (`streams.repair`)."""
        return f"{self.prefix}meta:published:{partition}"

    def markers_pattern(self) -> str:
        return f"{self.prefix}meta:published:*"

    def stream_time(self) -> str:
        """The stream time (epoch ms) all workers have reached: a one-member sorted set that
        only ever grows (`ZADD GT`), read by workers and by readers (`streams.sweep`)."""
        return f"{self.prefix}meta:stream-time"

    def rescore(self) -> str:
        """An operator's request for a full re-score and its progress (`creator-scores rescore`)."""
        return f"{self.prefix}meta:rescore"

    def changes(self) -> str:
        """Stream of every score-change record, capped (`XADD MAXLEN ~`): the read API's live
        feed. Entries: `creator_id`, `change` (the JSON of the `creator-score-changes` topic)."""
        return f"{self.prefix}changes"

    def creator_changes(self, creator_id: str) -> str:
        """Stream of one creator's newest score-change records (a few, `XADD MAXLEN`): its
        recent changes and its live feed. Entries: `change`."""
        return f"{self.prefix}creator-changes:{creator_id}"

    def api_key(self, key_id: str) -> str:
        """Hash of one partner API key: its token's SHA-256 (never the token), partner,
        regions, rate limit (`streams.api.auth`)."""
        return f"{self.prefix}api:key:{key_id}"

    def api_keys(self) -> str:
        """Set of the API key ids, for `creator-scores keys list`."""
        return f"{self.prefix}api:keys"

    def api_rate(self, key_id: str) -> str:
        """Requests of one API key in its current rate window (a counter that expires)."""
        return f"{self.prefix}api:rate:{key_id}"

    def api_search(self, digest: str) -> str:
        """A partner search's matches, kept briefly so its pages are read from one result."""
        return f"{self.prefix}api:search:{digest}"

    def parse_board(self, key: str) -> BoardRef | None:
        """The board a key names (`board`, `theme_board`, `content_type_board`), or None."""
        head = f"{self.prefix}lb:"
        if not key.startswith(head):
            return None
        parts = [unquote(part) for part in key[len(head) :].split(SEPARATOR)]
        if len(parts) == 2:
            return BoardRef(parts[0], parts[1])
        if len(parts) == 3:
            return BoardRef(parts[0], parts[1], theme=parts[2])
        if len(parts) == 4 and parts[2] == "ct":
            return BoardRef(parts[0], parts[1], content_type=parts[3])
        return None


@dataclass(frozen=True)
class BoardRef:
    """A leaderboard by what it ranks: a score in a region, optionally one theme or one
    content type (never both)."""

    score: str
    region: str = GLOBAL_REGION
    theme: str | None = None
    content_type: str | None = None

    def key(self, keys: Keys) -> str:
        if self.theme is not None:
            return keys.theme_board(self.score, self.region, self.theme)
        if self.content_type is not None:
            return keys.content_type_board(self.score, self.region, self.content_type)
        return keys.board(self.score, self.region)
