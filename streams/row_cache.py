"""Decoded states of recently flushed creators, so a flush decodes only the ones it has not seen.

A creator touched by one flush is usually touched by the next ones too, and reading
its state back from the table's bytes costs a flush more than merging its events. The
cache keeps, per creator, the rows its last flush wrote (the in-memory row layout of
`scoring.columns`, as bytes: no per-record objects) and its heads, with the table
value they stand for. An entry is used only while the table still holds that very
bytes object (an identity check): a value restored from the changelog, or written by
anyone else, is a miss. Entries are dropped oldest first past a byte budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scoring.columns import ORDER, POST, TAG, Columns, Heads, Ints


@dataclass(frozen=True, slots=True)
class CachedState:
    """One creator's state as a flush left it, for the exact table value it was written as."""

    value: bytes
    model_version: str
    watermark: int
    region: int
    region_ms: int
    posts: bytes
    tags: bytes
    orders: bytes

    @property
    def size(self) -> int:
        return len(self.posts) + len(self.tags) + len(self.orders) + 200


class RowCache:
    """Creator id -> `CachedState`, least recently used first out past `max_bytes`."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must not be negative, got {max_bytes}")
        self._entries: dict[str, CachedState] = {}
        self._max = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, creator_id: str, value: bytes) -> CachedState | None:
        entry = self._entries.pop(creator_id, None)
        if entry is None or entry.value is not value:
            if entry is not None:
                self.bytes -= entry.size
            self.misses += 1
            return None
        self._entries[creator_id] = entry  # the most recently used again
        self.hits += 1
        return entry

    def put_flush(
        self,
        ids: Sequence[str],
        values: Sequence[bytes],
        model_version: str,
        heads: Heads,
        columns: Columns,
    ) -> None:
        """Keep the state a flush wrote for creators 0..len(ids)-1 of `columns`."""
        if not self._max:
            return
        n = len(ids)
        parts = []
        for rows in (columns.posts, columns.tags, columns.orders):
            starts = np.searchsorted(rows["creator"], np.arange(n + 1)).tolist()
            parts.append((rows, starts))
        watermark, region, region_ms = (
            heads.watermark.tolist(),
            heads.region.tolist(),
            heads.region_ms.tolist(),
        )
        entries = self._entries
        for i, creator_id in enumerate(ids):
            (posts, ps), (tags, ts), (orders, os_) = parts
            entry = CachedState(
                values[i], model_version, watermark[i], region[i], region_ms[i],
                posts[ps[i] : ps[i + 1]].tobytes(), tags[ts[i] : ts[i + 1]].tobytes(),
                orders[os_[i] : os_[i + 1]].tobytes(),
            )  # fmt: skip
            old = entries.pop(creator_id, None)
            if old is not None:
                self.bytes -= old.size
            entries[creator_id] = entry
            self.bytes += entry.size
        while self.bytes > self._max and entries:
            oldest = next(iter(entries))
            self.bytes -= entries.pop(oldest).size

    def drop(self, creator_id: str) -> None:
        """Forget a creator (its state was deleted)."""
        entry = self._entries.pop(creator_id, None)
        if entry is not None:
            self.bytes -= entry.size

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0


def cached_columns(entries: Sequence[CachedState], where: Ints, n: int) -> tuple[Heads, Columns]:
    """The cached creators' heads and rows, as creators `where` (ascending) of a run of n."""
    heads = Heads.empty(n)
    heads.watermark[where] = [e.watermark for e in entries]
    heads.region[where] = [e.region for e in entries]
    heads.region_ms[where] = [e.region_ms for e in entries]
    sections = []
    for attr, dtype in (("posts", POST), ("tags", TAG), ("orders", ORDER)):
        blobs = [getattr(e, attr) for e in entries]
        rows = np.frombuffer(b"".join(blobs), dtype=dtype).copy()
        counts = np.array([len(b) for b in blobs], dtype=np.int64) // dtype.itemsize
        rows["creator"] = np.repeat(where, counts)
        sections.append(rows)
    return heads, Columns(*sections)
