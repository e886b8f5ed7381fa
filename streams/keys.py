"""Every Redis key the project writes or reads is built here, and only here.

Widget authors read the same layout (documented in the README), so a key's
shape is a public contract: change it with a model of care, not in passing.
"""

from __future__ import annotations

from dataclasses import dataclass

from scoring.names import SCORE_NAMES

GLOBAL_REGION = "ALL"

#: Scores that get leaderboards (all of them; per-theme and per-content-type
#: boards are kept for the scores in BREAKDOWN_SCORES).
BOARD_SCORES = SCORE_NAMES
BREAKDOWN_SCORES = ("overall", "influence")


@dataclass(frozen=True)
class Keys:
    """Key builder bound to one prefix (default `cs:`)."""

    prefix: str = "cs:"

    def creator(self, creator_id: str) -> str:
        return f"{self.prefix}creator:{creator_id}"

    def board(self, score: str, region: str = GLOBAL_REGION) -> str:
        return f"{self.prefix}lb:{score}:{region}"

    def theme_board(self, score: str, region: str, theme: str) -> str:
        return f"{self.prefix}lb:{score}:{region}:{theme}"

    def content_type_board(self, score: str, region: str, content_type: str) -> str:
        return f"{self.prefix}lb:{score}:{region}:ct:{content_type}"

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
