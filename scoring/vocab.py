"""Names as small integer codes, so the columns of many creators can be grouped with numpy.

A worker interns every name a record carries (content types, themes, brands,
currencies, regions, and a post's set of themes) once; columns hold the codes.
Codes belong to one process, in first-seen order, and are never stored: a state's
bytes carry the strings it uses (`scoring.packed`). Besides identity the model needs
a name's place in sorted order (a record's version compares names as strings, and
slices are listed in name order), which `ranks` gives.

A post's themes are one name too, the sorted themes joined by `\\x01` (the smallest
character no validated name contains, so comparing joined names compares the theme
tuples); `members` lists the themes of each such name.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import numpy as np
import numpy.typing as npt

#: The code of "no name" (a post without a brand or themes, a tag without a campaign).
NONE: Final = -1
#: Joins a post's themes into one name.
THEME_JOIN: Final = "\x01"

Codes = npt.NDArray[np.int64]


class Vocabulary:
    """Interned names of one worker: `code(name)`, `name(code)`, sort ranks, theme sets."""

    __slots__ = ("_codes", "_member_flat", "_member_offsets", "_members_for", "_names", "_ranks")

    def __init__(self) -> None:
        self._names: list[str] = []
        self._codes: dict[str, int] = {}
        self._ranks: Codes | None = None
        self._members_for = 0  # names covered by the member table
        self._member_offsets: Codes = np.zeros(1, dtype=np.int64)
        self._member_flat: Codes = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._names)

    def code(self, name: str) -> int:
        code = self._codes.get(name)
        if code is None:
            code = self._codes[name] = len(self._names)
            self._names.append(name)
            self._ranks = None
        return code

    def codes(self, names: Iterable[str]) -> list[int]:
        get = self._codes.get
        out = []
        for name in names:
            code = get(name)
            out.append(self.code(name) if code is None else code)
        return out

    def optional(self, name: str | None) -> int:
        """The code of `name`, NONE for None or the empty name."""
        return NONE if not name else self.code(name)

    def themes(self, themes: tuple[str, ...]) -> int:
        """The code of a post's (sorted, distinct) themes, NONE for none."""
        if not themes:
            return NONE
        return self.code(themes[0] if len(themes) == 1 else THEME_JOIN.join(themes))

    def name(self, code: int) -> str:
        return self._names[code]

    @property
    def names(self) -> list[str]:
        """Every name, by code (do not modify)."""
        return self._names

    def ranks(self) -> Codes:
        """Each code's position among all names in sorted order (NONE sorts first)."""
        ranks = self._ranks
        if ranks is None or len(ranks) != len(self._names):
            order = sorted(range(len(self._names)), key=self._names.__getitem__)
            ranks = np.empty(len(order), dtype=np.int64)
            ranks[order] = np.arange(len(order), dtype=np.int64)
            self._ranks = ranks
        return ranks

    def members(self) -> tuple[Codes, Codes]:
        """The themes of every code read as a post's themes: CSR offsets and flat codes.

        `flat[offsets[c]:offsets[c + 1]]` are the theme codes of name `c` (itself, for a
        name without `\\x01`).
        """
        n = len(self._names)
        if self._members_for < n:
            offsets = [int(self._member_offsets[-1])]
            flat: list[int] = []
            for c in range(self._members_for, n):
                name = self._names[c]
                flat.extend(self.codes(name.split(THEME_JOIN)) if THEME_JOIN in name else (c,))
                offsets.append(offsets[0] + len(flat))
            n = len(self._names)  # splitting may have interned new themes: they are single
            for c in range(len(offsets) - 1 + self._members_for, n):
                flat.append(c)
                offsets.append(offsets[0] + len(flat))
            self._member_offsets = np.concatenate(
                (self._member_offsets, np.array(offsets[1:], dtype=np.int64))
            )
            self._member_flat = np.concatenate((self._member_flat, np.array(flat, np.int64)))
            self._members_for = n
        return self._member_offsets, self._member_flat
