"""Reads creator states written in format 1 (before the incremental format 2).

Format 1 packs every column at the narrowest width on each write, which costs a
full pass over the records per `to_bytes`; format 2 keeps its parts up to date
as records change. States stored in format 1 (changelogs written by earlier
versions) stay readable: `CreatorState.from_bytes` hands their body to `decode`
here, and the next `to_bytes` writes format 2.

Format 1 body: creator id, region, region time, watermark and day base
(varints), a sorted string table, then posts, tags and orders sorted by id hash,
column by column, each column at the narrowest of 0, 1, 2, 4 or 8 bytes.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterable
from itertools import compress, islice, repeat
from operator import add, le, lt
from typing import Any, Final, NamedTuple

from scoring.events import ORDER_STATUSES

DAY_MS: Final = 86_400_000
_LIMIT: Final = 2**63
_POW10: Final = tuple(10**i for i in range(20))
_WIDTHS: Final = ((0, ""), (0xFF, "B"), (0xFFFF, "H"), (0xFFFFFFFF, "I"), (2**64 - 1, "Q"))
_SIZES: Final = (0, 1, 2, 4, 8)


class V1State(NamedTuple):
    """The content of a format-1 state; records in the layout of `scoring.state`,
    without the derived fields format 2 adds."""

    creator_id: str
    region: str | None
    region_ms: int
    watermark_ms: int
    posts: dict[int, Any]
    tags: dict[int, Any]
    orders: dict[int, Any]


def decode(body: bytes) -> V1State:
    """The content of a format-1 body (checksum already verified); ValueError if inconsistent."""
    r = _Reader(body)
    creator_id = r.text()
    region = r.text() if r.uvarint() else None
    region_ms = _unzigzag(r.uvarint())
    watermark_ms = _unzigzag(r.uvarint())
    if watermark_ms < 0 or region_ms < -1:
        raise ValueError("negative watermark")
    last = watermark_ms // DAY_MS
    base = last - _unzigzag(r.uvarint())
    if base < 0:
        raise ValueError("day base before 1970")
    table = [r.text() for _ in range(r.uvarint())]
    if (table and not table[0]) or not all(map(lt, table, islice(table, 1, None))):
        raise ValueError("string table not canonical")
    n_posts, n_tags, n_orders = r.uvarint(), r.uvarint(), r.uvarint()
    if 8 * (n_posts + n_tags + n_orders) > r.remaining():
        raise ValueError("record counts exceed the data")
    n_table = len(table)
    optional = ["", *table]  # index 0 means "none"
    base_ms = base * DAY_MS
    last_ms = watermark_ms

    post_hashes = r.hashes(n_posts)
    posted = list(map(add, r.column(n_posts), repeat(base_ms)))
    observed = r.column(n_posts)
    views, likes, comments, shares = (r.column(n_posts, _LIMIT) for _ in range(4))
    p_types = _names(table, r.column(n_posts, n_table))
    p_brands = _names(optional, r.column(n_posts, n_table + 1))
    theme_counts = r.column(n_posts, n_table + 1)
    flat = r.column(sum(theme_counts), n_table)
    # Each post's themes are strictly increasing indexes (sorted, unique): any
    # non-increasing neighbour pair must straddle two posts.
    if len(flat) > 1:
        bad = compress(range(1, len(flat)), map(le, islice(flat, 1, None), flat))
        bounds = set(itertools.accumulate(theme_counts))
        if not bounds.issuperset(bad):
            raise ValueError("post themes not canonical")
    names = iter(_names(table, flat))
    p_themes = list(map(tuple, map(islice, repeat(names), theme_counts)))
    if posted and max(posted) > last_ms:
        raise ValueError("post newer than the watermark")
    p_observed = [
        -1 if o == 0 else ms + _unzigzag(o - 1) for o, ms in zip(observed, posted, strict=True)
    ]
    if p_observed and min(p_observed) < -1:
        raise ValueError("post observed before 1970")
    posts = _records(
        post_hashes,
        zip(
            p_observed,
            views,
            likes,
            comments,
            shares,
            posted,
            p_types,
            p_themes,
            p_brands,
            strict=True,
        ),
    )

    tag_hashes = r.hashes(n_tags)
    t_days = list(map(add, r.column(n_tags), repeat(base)))
    t_posts = _resolve_refs(r.column(n_tags), 1, r, post_hashes)
    t_brands = _names(table, r.column(n_tags, n_table))
    t_themes = _names(table, r.column(n_tags, n_table))
    campaigns = [-1, *r.column(r.uvarint(), 2**32)]
    if not all(map(lt, campaigns, islice(campaigns, 1, None))):
        raise ValueError("campaign table not canonical")
    t_campaigns = list(map(campaigns.__getitem__, r.column(n_tags, len(campaigns))))
    if t_days and max(t_days) > last:
        raise ValueError("tag newer than the watermark")
    tags = _records(tag_hashes, zip(t_days, t_posts, t_brands, t_themes, t_campaigns, strict=True))

    order_hashes = r.hashes(n_orders)
    o_days = list(map(add, r.column(n_orders), repeat(base)))
    o_posts = _resolve_refs(r.column(n_orders), 2, r, post_hashes)
    o_brands = _names(table, r.column(n_orders, n_table))
    o_themes = _names(table, r.column(n_orders, n_table))
    o_currencies = _names(table, r.column(n_orders, n_table))
    o_qty = r.column(n_orders, _LIMIT)
    mantissas = r.column(n_orders, _LIMIT)
    exponents = r.column(n_orders, len(_POW10))
    o_micros = list(map(int.__mul__, mantissas, map(_POW10.__getitem__, exponents)))
    if o_micros and max(o_micros) >= _LIMIT:
        raise ValueError("order amount out of range")
    o_status = r.column(n_orders, len(ORDER_STATUSES))
    if o_days and max(o_days) > last:
        raise ValueError("order newer than the watermark")
    orders = _records(
        order_hashes,
        zip(
            o_status,
            o_micros,
            o_qty,
            o_currencies,
            o_brands,
            o_themes,
            o_posts,
            o_days,
            strict=True,
        ),
    )
    if not r.done():
        raise ValueError("trailing bytes")
    return V1State(creator_id, region, region_ms, watermark_ms, posts, tags, orders)


# --- helpers -------------------------------------------------------------------


def _records(hashes: list[int], recs: Iterable[Any]) -> dict[int, Any]:
    out = dict(zip(hashes, recs, strict=True))
    if len(out) != len(hashes):
        raise ValueError("duplicate record")
    return out


def _names(table: list[str], indexes: list[int]) -> list[str]:
    return list(map(table.__getitem__, indexes))


def _unzigzag(n: int) -> int:
    return (n >> 1) if not n & 1 else -((n + 1) >> 1)


def _resolve_refs(refs: list[int], offset: int, r: _Reader, post_hashes: list[int]) -> list[int]:
    """Post hashes from references: an index into the posts, an explicit hash, or none."""
    explicit = refs.count(offset - 1)
    if refs and max(refs) >= offset + len(post_hashes):
        raise ValueError(f"post reference {max(refs)} out of range")
    # offset 1 (tags): 0 explicit; offset 2 (orders): 0 none, 1 explicit.
    lookup = [-1] * (offset - 1) + [-2] + post_hashes
    out = list(map(lookup.__getitem__, refs))
    if explicit:
        hashes = iter(r.hashes(explicit))
        out = [next(hashes) if x == -2 else x for x in out]
    return out


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def uvarint(self) -> int:
        n = shift = 0
        while True:
            b = self.buf[self.pos]
            self.pos += 1
            n |= (b & 0x7F) << shift
            if b < 0x80:
                return n
            shift += 7
            if shift > 70:
                raise ValueError("varint too long")

    def text(self) -> str:
        n = self.uvarint()
        if self.pos + n > len(self.buf):
            raise ValueError("truncated string")
        s = self.buf[self.pos : self.pos + n].decode("utf-8", "surrogatepass")
        self.pos += n
        return s

    def column(self, n: int, limit: int | None = None) -> list[int]:
        """n unsigned ints; ValueError if any is >= limit."""
        code = self.buf[self.pos]
        self.pos += 1
        if code >= len(_WIDTHS):
            raise ValueError(f"bad column width code {code}")
        if code == 0:
            return [0] * n
        top, fmt = _WIDTHS[code]
        values = list(struct.unpack_from(f"<{n}{fmt}", self.buf, self.pos))
        self.pos += n * _SIZES[code]
        if limit is not None and limit <= top and values and max(values) >= limit:
            raise ValueError("column value out of range")
        return values

    def hashes(self, n: int) -> list[int]:
        fmt = f"<{n}Q"
        values = list(struct.unpack_from(fmt, self.buf, self.pos))
        self.pos += 8 * n
        return values

    def remaining(self) -> int:
        return len(self.buf) - self.pos

    def done(self) -> bool:
        return self.pos == len(self.buf)
