"""A creator's records as bytes (the state table's value), written and read in bulk.

The value holds one creator's heads and records and nothing else: no second copy,
no memo. It is canonical (equal states give equal bytes) and compact:

    b"CS", format (3), flags (1: zlib body, 2: sized texts), body, CRC-32 of the body

body: a fixed header (watermark, region time, record counts, sizes), the texts
(the region, then the sorted names the records use, `\\x00`-joined, or
length-prefixed when a name holds `\\x00`), the sorted campaign hashes (uint32),
the sorted other post hashes (uint64, below), one code per column (3 bits, below),
then posts, tags and orders, each section as its columns' constants followed by
fixed-size rows sorted by id hash:

    post:  hash, days before the watermark's day, ms of the day, observed (0: none,
           else 1 + zigzag of observed - posted), views, likes, comments, shares,
           content type, brand (1 + name index, 0: none), themes (1 + index, 0: none)
    tag:   hash, days before the watermark's day, post (a link), brand, theme,
           campaign (1 + index, 0: none)
    order: hash, days before the watermark's day, post (a link, 0: none), status,
           amount as decimal mantissa and exponent (19.99 = 19990000 millionths ->
           1999, 4), quantity, currency, brand, theme

A column's code says how a creator's values of it are stored, the first that applies:
0, every value is 0 (nothing stored); 5-7, every value is the same (stored once, in
1, 2 or 4 bytes, before the section's rows); 1-4, each row's value in 1, 2, 4 or 8
bytes, the narrowest that fits them all. Id hashes have no code: always 8 bytes.

A link names a post by its row among the value's posts (1 + row), or, for a post the
creator does not hold (not yet seen, or out of the window), by its id hash in the
value's sorted table of other post hashes (1 + posts + place), since tags and orders
almost always name one of the creator's own posts: an index of a byte or two
instead of an 8-byte hash.

Names are indices into the value's own sorted names, so a value reads the same in
any worker; `decode` maps them to the reading worker's vocabulary codes. Bodies
over `ZLIB_ABOVE` bytes (heavy creators) are compressed.

`decode` raises `ValueError` (naming the creator's place in the batch) for anything
`encode` would not write: bad magic, format, checksum, truncation, inconsistent or
non-canonical content. A batch is decoded section by section for all creators of a
row layout at once, so a creator costs a few Python steps, not one per record.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from scoring.columns import DAY_MS, ORDER, POST, TAG, Columns, Heads, Ints, Rows, distinct, place
from scoring.merge import keys, locate
from scoring.vocab import NONE, Vocabulary

MAGIC: Final = b"CS"
FORMAT: Final = 3
FLAG_ZLIB: Final = 1
FLAG_SIZED: Final = 2
#: The header's counts are 4 bytes each (else 2: a creator past 65,535 of anything is rare).
FLAG_WIDE: Final = 4
ZLIB_ABOVE: Final = 4096
_ZLIB_LEVEL: Final = 1
_MAX_BODY: Final = 64 * 1024 * 1024
#: Watermark; the region's post time (narrow: as 1 + ms before the watermark, 0: none;
#: wide: as itself, -1: none); the counts: posts, tags, orders, names, campaigns, other
#: post hashes, text length. Narrow: 4-byte region time, 2-byte counts; wide (FLAG_WIDE,
#: only when a value does not fit the narrow form): 8 and 4 bytes.
_HEADER: Final = struct.Struct("<qIHHHHHHH")
_HEADER_WIDE: Final = struct.Struct("<qqIIIIIII")
_PACKED_CODES: Final = 9  # 24 column codes of 3 bits
_CRC: Final = struct.Struct("<I")
#: Column codes: 0 every value 0; 1-4 per row in 1/2/4/8 bytes; 5-7 one value, stored once.
_ZERO: Final = 0
_CONSTANT: Final = 5
_WIDTHS: Final = ("<u1", "<u2", "<u4", "<u8")
_TOPS: Final = np.array([2**8, 2**16, 2**32], dtype=np.uint64)
_LIMIT: Final = 2**63

#: Storage columns per section, and which are id hashes (always 8 bytes).
_COLUMNS: Final = (
    ("h", "dday", "ms", "observed", "views", "likes", "comments", "shares", "content_type",
     "brand", "themes"),
    ("h", "dday", "post", "brand", "theme", "campaign"),
    ("h", "dday", "post", "status", "mantissa", "exponent", "quantity", "currency", "brand",
     "theme"),
)  # fmt: skip
#: The coded columns of each section: all but the id hash (always 8 bytes, first).
_CODED: Final = tuple(tuple(c for c in cols if c != "h") for cols in _COLUMNS)
_N_CODES: Final = sum(len(c) for c in _CODED)
_SECTION_AT: Final = (0, len(_CODED[0]), len(_CODED[0]) + len(_CODED[1]), _N_CODES)
_POW10: Final = np.array([10**i for i in range(19)], dtype=np.int64)
_LAYOUTS: dict[tuple[int, bytes], tuple[np.dtype[np.void], np.dtype[np.void]]] = {}


def _layout(section: int, codes: bytes) -> tuple[np.dtype[np.void], np.dtype[np.void]]:
    """(row dtype, constants dtype) of a section whose coded columns have `codes`."""
    key = (section, codes)
    found = _LAYOUTS.get(key)
    if found is None:
        pairs = list(zip(_CODED[section], codes, strict=True))
        rows = [("h", "<u8")] + [(n, _WIDTHS[c - 1]) for n, c in pairs if 1 <= c < _CONSTANT]
        constants = [(n, _WIDTHS[c - _CONSTANT]) for n, c in pairs if c >= _CONSTANT]
        found = _LAYOUTS[key] = (np.dtype(rows), np.dtype(constants))
    return found


def _codes_of(tops: npt.NDArray[np.uint64], lows: npt.NDArray[np.uint64]) -> Ints:
    """The code of a column whose values per creator run from `lows` to `tops`."""
    width = np.searchsorted(_TOPS, tops, side="right")
    same = (tops == lows) & (width < 3)
    return np.where(tops == 0, _ZERO, np.where(same, _CONSTANT + width, 1 + width))


def _header(flags: int) -> bytes:
    return MAGIC + bytes((FORMAT, flags))


# --------------------------------------------------------------------------- encode


class NewerFormatError(Exception):
    """A state written by a newer release. Not a ValueError on purpose: such a state is not
    corrupt, and starting the creator afresh (what a corrupt state gets) would throw away
    every creator it touches on a rollback; callers stop instead."""


def is_sealed(data: bytes) -> bool:
    """Whether `data` ends with the CRC-32 of everything before it.

    The promise every format after 3 keeps (and every envelope layout after 1), so that an
    older release can tell a newer value from a damaged one: format 3 checksums its body
    only, so a flipped format byte would otherwise read as "newer" and stop the worker.
    """
    return len(data) >= 8 and _CRC.pack(zlib.crc32(data[:-4])) == data[-4:]


@dataclass(slots=True)
class _Section:
    """One section's storage columns for every row of the batch, with row counts per creator."""

    columns: dict[str, npt.NDArray[np.uint64]]
    counts: Ints
    starts: Ints  # first row of each creator


def encode(heads: Heads, columns: Columns, vocab: Vocabulary) -> list[bytes]:
    """The value of each creator 0..len(heads)-1 (rows sorted by creator and hash)."""
    n = len(heads)
    if not n:
        return []
    ranks = vocab.ranks()
    wm_day = heads.watermark // DAY_MS
    posts, tags, orders = columns.posts, columns.tags, columns.orders

    # Each creator's names, sorted, and every name column as an index into them.
    names = _NameTables(n, ranks)
    names.add(posts["creator"], posts["content_type"])
    names.add(posts["creator"], posts["brand"])
    names.add(posts["creator"], posts["themes"])
    names.add(tags["creator"], tags["brand"])
    names.add(tags["creator"], tags["theme"])
    for field in ("currency", "brand", "theme"):
        names.add(orders["creator"], orders[field])
    names.build()

    campaign_on = tags["campaign"] >= 0
    campaign_keys = distinct((tags["creator"][campaign_on] << 32) | tags["campaign"][campaign_on])
    campaign_owner = campaign_keys >> 32
    campaign_start = np.searchsorted(campaign_owner, np.arange(n))
    campaign_index = np.zeros(len(tags), dtype=np.int64)
    tag_keys = (tags["creator"] << 32) | np.maximum(tags["campaign"], 0)
    campaign_index[campaign_on] = (
        np.searchsorted(campaign_keys, tag_keys[campaign_on])
        - campaign_start[tags["creator"][campaign_on]]
        + 1
    )

    pc = posts["creator"]
    links = _Links(n, posts, tags, orders)
    posted = posts["day"] * DAY_MS + posts["ms"]
    obs = posts["observed"]
    observed = np.where(
        obs < 0, 0, np.where(obs >= posted, ((obs - posted) << 1) + 1, (posted - obs) << 1)
    )
    sections = (
        _section(n, pc, {
            "h": posts["h"], "dday": wm_day[pc] - posts["day"], "ms": posts["ms"],
            "observed": observed, "views": posts["views"], "likes": posts["likes"],
            "comments": posts["comments"], "shares": posts["shares"],
            "content_type": names.index(0), "brand": names.index(1, optional=True),
            "themes": names.index(2, optional=True),
        }),
        _section(n, tags["creator"], {
            "h": tags["h"], "dday": wm_day[tags["creator"]] - tags["day"], "post": links.tags,
            "brand": names.index(3), "theme": names.index(4), "campaign": campaign_index,
        }),
        _orders_section(n, orders, wm_day, names, links.orders),
    )  # fmt: skip

    # Column codes per creator and section (see the module docstring).
    codes = np.zeros((n, _N_CODES), dtype=np.uint8)
    for i, sec in enumerate(sections):
        for j, name in enumerate(_CODED[i]):
            codes[:, _SECTION_AT[i] + j] = _width_codes(sec.columns[name], sec.starts, sec.counts)
    packed = [
        _pack(i, sec, codes[:, _SECTION_AT[i] : _SECTION_AT[i + 1]])
        for i, sec in enumerate(sections)
    ]

    texts = names.texts(vocab, heads.region)
    campaign_bytes = _per_creator_bytes(
        campaign_keys.astype(np.uint64) & np.uint64(0xFFFFFFFF), campaign_start, n, "<u4"
    )
    counts = [sec.counts.tolist() for sec in sections]
    n_names = names.counts.tolist()
    n_campaigns = np.diff(np.append(campaign_start, len(campaign_keys))).tolist()
    extra_bytes = _per_creator_bytes(links.extra_h, links.extra_start[:-1], n, "<u8")
    n_extra = np.diff(links.extra_start).tolist()
    watermarks, region_ms = heads.watermark.tolist(), heads.region_ms.tolist()
    bits = (codes[:, :, None] >> np.arange(3, dtype=np.uint8)) & 1
    code_blob = np.packbits(bits.reshape(n, -1), axis=1, bitorder="little").tobytes()
    code_rows = [code_blob[i : i + _PACKED_CODES] for i in range(0, n * _PACKED_CODES,
                                                                 _PACKED_CODES)]  # fmt: skip
    out = []
    for c in range(n):
        text, sized = texts[c]
        tallies = (counts[0][c], counts[1][c], counts[2][c], n_names[c], n_campaigns[c],
                   n_extra[c], len(text))  # fmt: skip
        region_back = 0 if region_ms[c] < 0 else watermarks[c] - region_ms[c] + 1
        wide = max(tallies) > 0xFFFF or not 0 <= region_back <= 0xFFFFFFFF
        if wide:
            head = _HEADER_WIDE.pack(watermarks[c], region_ms[c], *tallies)
        else:
            head = _HEADER.pack(watermarks[c], region_back, *tallies)
        body = b"".join(
            (
                head,
                text,
                campaign_bytes[c],
                extra_bytes[c],
                code_rows[c],
                packed[0][c],
                packed[1][c],
                packed[2][c],
            )
        )  # fmt: skip
        crc = _CRC.pack(zlib.crc32(body))
        flags = (FLAG_SIZED if sized else 0) | (FLAG_WIDE if wide else 0)
        if len(body) > ZLIB_ABOVE:
            small = zlib.compress(body, _ZLIB_LEVEL)
            if len(small) < len(body):
                out.append(b"".join((_header(flags | FLAG_ZLIB), small, crc)))
                continue
        out.append(b"".join((_header(flags), body, crc)))
    return out


def _orders_section(
    n: int, orders: Rows, wm_day: Ints, names: _NameTables, links: Ints
) -> _Section:
    oc = orders["creator"]
    mantissa, exponent = _decimal(orders["micros"])
    return _section(n, oc, {
        "h": orders["h"], "dday": wm_day[oc] - orders["day"], "post": links,
        "status": orders["status"], "mantissa": mantissa,
        "exponent": exponent, "quantity": orders["quantity"], "currency": names.index(5),
        "brand": names.index(6), "theme": names.index(7),
    })  # fmt: skip


def _section(n: int, creator: Ints, columns: dict[str, npt.NDArray[np.generic]]) -> _Section:
    counts = np.bincount(creator, minlength=n)
    starts = np.cumsum(counts) - counts
    as_u8 = {k: np.asarray(v).astype(np.uint64) for k, v in columns.items()}
    return _Section(as_u8, counts, starts)


def _width_codes(values: npt.NDArray[np.uint64], starts: Ints, counts: Ints) -> Ints:
    """Each creator's code for one column (0 for a creator without rows)."""
    out = np.zeros(len(counts), dtype=np.int64)
    has = counts > 0
    if not has.any():
        return out
    tops = np.maximum.reduceat(values, starts[has])
    lows = np.minimum.reduceat(values, starts[has])
    out[has] = _codes_of(tops, lows)
    return out


def _pack(section: int, sec: _Section, layout: npt.NDArray[np.uint8]) -> list[bytes]:
    """Each creator's part of one section: its constants, then its rows at its widths."""
    n = len(sec.counts)
    out = [b""] * n
    has = np.flatnonzero(sec.counts)
    if not len(has):
        return out
    keys = [bytes(row) for row in layout[has]]
    groups: dict[bytes, list[int]] = {}
    for c, key in zip(has.tolist(), keys, strict=True):
        groups.setdefault(key, []).append(c)
    counts = sec.counts
    for key, creators in groups.items():
        members = np.array(creators, dtype=np.int64)
        rows = _ranges(sec.starts[members], counts[members])
        row_dt, const_dt = _layout(section, key)
        packed = np.empty(len(rows), dtype=row_dt)
        for name in row_dt.names or ():
            packed[name] = sec.columns[name][rows]
        blob = packed.tobytes()
        ends = (np.cumsum(counts[members]) * row_dt.itemsize).tolist()
        if const_dt.itemsize:
            constants = np.empty(len(members), dtype=const_dt)
            for name in const_dt.names or ():
                constants[name] = sec.columns[name][sec.starts[members]]
            cblob, size = constants.tobytes(), const_dt.itemsize
            begin = 0
            for k, (c, end) in enumerate(zip(creators, ends, strict=True)):
                out[c] = cblob[k * size : (k + 1) * size] + blob[begin:end]
                begin = end
        else:
            begin = 0
            for c, end in zip(creators, ends, strict=True):
                out[c] = blob[begin:end]
                begin = end
    return out


def _ranges(starts: Ints, counts: Ints) -> Ints:
    """The row indices starts[i]..starts[i]+counts[i]-1 for every i, concatenated."""
    total = int(counts.sum())
    offsets = np.cumsum(counts) - counts
    return np.repeat(starts - offsets, counts) + np.arange(total)


def _per_creator_bytes(
    values: npt.NDArray[np.uint64], starts: Ints, n: int, dt: str
) -> list[bytes]:
    blob = values.astype(dt).tobytes()
    size = np.dtype(dt).itemsize
    ends = np.append(starts[1:], len(values)) if n else starts
    bounds = (starts * size).tolist(), (ends * size).tolist()
    return [blob[a:b] for a, b in zip(*bounds, strict=True)]


def _decimal(micros: Ints) -> tuple[Ints, Ints]:
    """Millionths as decimal mantissa and exponent: 19990000 -> (1999, 4); 0 -> (0, 0)."""
    mantissa = micros.copy()
    exponent = np.zeros(len(micros), dtype=np.int64)
    while True:
        strip = (mantissa % 10 == 0) & (mantissa > 0)
        if not strip.any():
            return mantissa, exponent
        mantissa[strip] //= 10
        exponent[strip] += 1


_LINK_ROW: Final = np.dtype([("creator", np.int64), ("h", np.uint64)])


class _Links:
    """Tags' and orders' posts as links (see the module docstring), and each creator's
    table of the post hashes it names but does not hold."""

    def __init__(self, n: int, posts: Rows, tags: Rows, orders: Rows) -> None:
        post_keys = keys(posts["creator"], posts["h"])
        post_start = np.searchsorted(posts["creator"], np.arange(n + 1))
        has_post = orders["has_post"] != 0
        parts = []
        for rows, named in ((tags, np.ones(len(tags), dtype=np.bool_)), (orders, has_post)):
            at, held = locate(posts, post_keys, rows["creator"], rows["post"])
            held &= named
            link = np.zeros(len(rows), dtype=np.int64)
            link[held] = at[held] - post_start[rows["creator"][held]] + 1
            parts.append((rows, link, named & ~held))
        extra = np.empty(sum(int(m.sum()) for _, _, m in parts), dtype=_LINK_ROW)
        extra["creator"] = np.concatenate([r["creator"][m] for r, _, m in parts])
        extra["h"] = np.concatenate([r["post"][m] for r, _, m in parts])
        extra = extra[np.lexsort((extra["h"], extra["creator"]))]
        if len(extra) > 1:
            keep = np.ones(len(extra), dtype=np.bool_)
            keep[1:] = (extra["creator"][1:] != extra["creator"][:-1]) | (
                extra["h"][1:] != extra["h"][:-1]
            )
            extra = extra[keep]
        self.extra_h: npt.NDArray[np.uint64] = extra["h"]
        self.extra_start: Ints = np.searchsorted(extra["creator"], np.arange(n + 1))
        extra_keys = keys(extra["creator"], extra["h"])
        n_posts = np.diff(post_start)
        for rows, link, missing in parts:
            at, _ = locate(extra, extra_keys, rows["creator"][missing], rows["post"][missing])
            c = rows["creator"][missing]
            link[missing] = n_posts[c] + 1 + at - self.extra_start[c]
        self.tags: Ints = parts[0][1]
        self.orders: Ints = parts[1][1]


class _NameTables:
    """Each creator's sorted names, and each name column as indices into them."""

    def __init__(self, n: int, ranks: Ints) -> None:
        self.n = n
        self.ranks = ranks
        self.span = max(1, len(ranks))
        self.parts: list[tuple[Ints, Ints]] = []
        self.keys: Ints = np.zeros(0, dtype=np.int64)
        self.starts: Ints = np.zeros(n, dtype=np.int64)
        self.counts: Ints = np.zeros(n, dtype=np.int64)

    def add(self, creator: Ints, codes: Ints) -> None:
        self.parts.append((creator, codes))

    def build(self) -> None:
        keys = [c * self.span + self.ranks[np.maximum(v, 0)] for c, v in self.parts]
        present = [v >= 0 for _, v in self.parts]
        self.keys = distinct(np.concatenate([k[p] for k, p in zip(keys, present, strict=True)]))
        owner = self.keys // self.span
        self.starts = np.searchsorted(owner, np.arange(self.n))
        self.counts = np.bincount(owner, minlength=self.n)
        self._keys = keys

    def index(self, part: int, *, optional: bool = False) -> Ints:
        creator, codes = self.parts[part]
        local = np.searchsorted(self.keys, self._keys[part]) - self.starts[creator]
        if optional:
            return np.where(codes >= 0, local + 1, 0)
        return local

    def texts(self, vocab: Vocabulary, regions: Ints) -> list[tuple[bytes, bool]]:
        order = np.empty(self.span, dtype=np.int64)
        order[self.ranks] = np.arange(len(self.ranks))
        all_names = vocab.names
        codes = order[self.keys % self.span].tolist()
        starts, counts = self.starts.tolist(), self.counts.tolist()
        region_codes = regions.tolist()
        out = []
        for c in range(self.n):
            r = region_codes[c]
            texts = [all_names[r] if r >= 0 else ""]
            texts.extend(all_names[k] for k in codes[starts[c] : starts[c] + counts[c]])
            joined = "\x00".join(texts)
            if joined.count("\x00") == len(texts) - 1:
                out.append((joined.encode("utf-8", "surrogatepass"), False))
            else:
                raw = [t.encode("utf-8", "surrogatepass") for t in texts]
                sizes = struct.pack(f"<{len(raw)}I", *map(len, raw))
                out.append((sizes + b"".join(raw), True))
        return out


# --------------------------------------------------------------------------- decode


@dataclass(slots=True)
class _Parsed:
    """What `decode` reads of one value before its rows are converted with the others'."""

    watermark: int
    region_ms: int
    region: int
    names: list[int]  # vocabulary codes of the value's names
    campaigns: bytes  # uint32 each
    others: bytes  # uint64 each: the post hashes the value names but does not hold
    body: bytes
    #: Per section: (offset of the rows in `body`, row count, width codes).
    sections: tuple[tuple[int, int, bytes], tuple[int, int, bytes], tuple[int, int, bytes]]


def decode(values: Sequence[bytes], vocab: Vocabulary) -> tuple[Heads, Columns]:
    """The heads and records of each value (creator i = values[i]).

    ValueError naming the value's index for anything `encode` would not write.
    """
    parsed = []
    for i, value in enumerate(values):
        try:
            parsed.append(_parse(value, vocab))
        except (ValueError, struct.error, zlib.error, UnicodeDecodeError, OverflowError) as exc:
            raise ValueError(f"value {i}: corrupt creator state: {exc}") from exc
    return _convert(parsed)


def decode_each(values: Sequence[bytes], vocab: Vocabulary) -> tuple[Heads, Columns, list[str]]:
    """Like `decode`, but a corrupt value becomes an empty creator and a problem (index: why)."""
    try:
        heads, columns = decode(values, vocab)
        return heads, columns, []
    except ValueError:
        pass
    good: list[bytes] = []
    where: list[int] = []
    problems: list[str] = []
    for i, value in enumerate(values):
        try:
            decode([value], vocab)
        except ValueError as exc:
            problems.append(f"{i}: {str(exc).removeprefix('value 0: ')}")
            continue
        good.append(value)
        where.append(i)
    heads, columns = decode(good, vocab)
    return (*place(heads, columns, np.array(where, dtype=np.int64), len(values)), problems)


def watermark_of(value: bytes) -> int:
    """The watermark (epoch ms) of a state, read from its header without decoding the rest.

    ValueError for what is not a state of this format (as `decode` says, in more words).
    """
    data = bytes(value)
    if len(data) < 8 + _HEADER.size or data[:2] != MAGIC or data[2] != FORMAT:
        raise ValueError("not a creator state of this format")
    if data[3] & FLAG_ZLIB:
        head = zlib.decompressobj().decompress(data[4:-4], _HEADER.size)
    else:
        head = data[4 : 4 + _HEADER.size]
    if len(head) < 8:
        raise ValueError("state header truncated")
    watermark: int = struct.unpack_from("<q", head)[0]
    return watermark


def _parse(value: bytes, vocab: Vocabulary) -> _Parsed:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise ValueError(f"expected bytes, got {type(value).__name__}")
    data = bytes(value)
    if len(data) < 8 or data[:2] != MAGIC:
        raise ValueError("not a creator state (bad magic)")
    if data[2] > FORMAT and is_sealed(data):
        raise NewerFormatError(
            f"state format {data[2]} is newer than this worker's ({FORMAT}): it was written "
            "by a newer release; run that release (or newer), not this one"
        )
    if data[2] != FORMAT:
        raise ValueError(f"state format {data[2]}, this worker reads format {FORMAT}")
    flags = data[3]
    if flags & ~(FLAG_ZLIB | FLAG_SIZED | FLAG_WIDE):
        raise ValueError(f"unknown flags {flags:#x}")
    body = data[4:-4]
    if flags & FLAG_ZLIB:
        inflater = zlib.decompressobj()
        body = inflater.decompress(body, _MAX_BODY)
        if inflater.unconsumed_tail or not inflater.eof or inflater.unused_data:
            raise ValueError("compressed body too large or truncated")
        if len(body) <= ZLIB_ABOVE:
            raise ValueError("compressed body below the compression threshold")
    if _CRC.pack(zlib.crc32(body)) != data[-4:]:
        raise ValueError("checksum mismatch")
    header = _HEADER_WIDE if flags & FLAG_WIDE else _HEADER
    (watermark, region, n_posts, n_tags, n_orders, n_names, n_campaigns, n_others,
     text_len) = header.unpack_from(body)  # fmt: skip
    if flags & FLAG_WIDE:
        region_ms = region
        back = 0 if region_ms < 0 else watermark - region_ms + 1
        if max(n_posts, n_tags, n_orders, n_names, n_campaigns, n_others,
               text_len) <= 0xFFFF and 0 <= back <= 0xFFFFFFFF:  # fmt: skip
            raise ValueError("a wide header whose values all fit the narrow one")
    else:
        region_ms = -1 if region == 0 else watermark - region + 1
    if watermark < 0 or region_ms < -1 or region_ms > watermark:
        raise ValueError("bad header")
    pos = header.size
    sizes = text_len + 4 * n_campaigns + 8 * n_others + _PACKED_CODES
    if sizes + 8 * (n_posts + n_tags + n_orders) > len(body) - pos:
        raise ValueError("counts exceed the data")
    texts = _texts(body[pos : pos + text_len], n_names + 1, bool(flags & FLAG_SIZED))
    pos += text_len
    region = texts[0]
    table = texts[1:]
    if table and (not table[0] or sorted(set(table)) != table):
        raise ValueError("names not sorted, distinct and non-empty")
    if region and (len(region) != 2 or not region.isascii() or not region.isupper()):
        raise ValueError("region not canonical")
    campaigns = body[pos : pos + 4 * n_campaigns]
    pos += 4 * n_campaigns
    others = body[pos : pos + 8 * n_others]
    pos += 8 * n_others
    layouts = _unpacked_codes(body[pos : pos + _PACKED_CODES])
    pos += _PACKED_CODES
    sections = []
    for count, (section_codes, fixed, row_size) in zip(
        (n_posts, n_tags, n_orders), layouts, strict=True
    ):
        if not count and any(section_codes):
            raise ValueError("columns not at their narrowest widths (an empty section)")
        sections.append((pos, count, section_codes))
        pos += fixed + row_size * count
    if pos != len(body):
        raise ValueError("rows do not fill the data")
    return _Parsed(
        watermark, region_ms, vocab.code(region) if region else NONE, vocab.codes(table),
        campaigns, others, body, (sections[0], sections[1], sections[2]),
    )  # fmt: skip


#: Per section: its column codes, the size of its constants and the size of a row.
_SectionLayouts = tuple[tuple[bytes, int, int], ...]
_UNPACKED: dict[bytes, _SectionLayouts] = {}


def _unpacked_codes(packed: bytes) -> _SectionLayouts:
    """The sections' codes and sizes of their 9 packed bytes (remembered: layouts recur)."""
    found = _UNPACKED.get(packed)
    if found is None:
        if len(packed) != _PACKED_CODES:
            raise ValueError("column codes truncated")
        bits = int.from_bytes(packed, "little")
        codes = bytes((bits >> (3 * i)) & 7 for i in range(_N_CODES))
        parts = []
        for i in range(3):
            section_codes = codes[_SECTION_AT[i] : _SECTION_AT[i + 1]]
            row_dt, const_dt = _layout(i, section_codes)
            parts.append((section_codes, const_dt.itemsize, row_dt.itemsize))
        found = tuple(parts)
        if len(_UNPACKED) > 65536:
            _UNPACKED.clear()
        _UNPACKED[packed] = found
    return found


def _texts(blob: bytes, n: int, sized: bool) -> list[str]:
    if not sized:
        texts = blob.decode("utf-8", "surrogatepass").split("\x00")
    else:
        if len(blob) < 4 * n:
            raise ValueError("texts truncated")
        sizes = struct.unpack_from(f"<{n}I", blob)
        pos = 4 * n
        texts = []
        for size in sizes:
            texts.append(blob[pos : pos + size].decode("utf-8", "surrogatepass"))
            pos += size
        if pos != len(blob) or all("\x00" not in t for t in texts):
            raise ValueError("texts not canonical")
    if len(texts) != n:
        raise ValueError("name count mismatch")
    return texts


def _convert(parsed: list[_Parsed]) -> tuple[Heads, Columns]:
    n = len(parsed)
    heads = Heads(
        np.array([p.watermark for p in parsed], dtype=np.int64),
        np.array([p.region for p in parsed], dtype=np.int64),
        np.array([p.region_ms for p in parsed], dtype=np.int64),
    )
    name_counts = np.array([len(p.names) for p in parsed], dtype=np.int64)
    name_start = np.cumsum(name_counts) - name_counts
    name_flat = np.array([c for p in parsed for c in p.names], dtype=np.int64)
    camp_blob = b"".join([p.campaigns for p in parsed])
    camp_flat = np.frombuffer(camp_blob, dtype="<u4").astype(np.int64)
    camp_counts = np.array([len(p.campaigns) // 4 for p in parsed], dtype=np.int64)
    camp_start = np.cumsum(camp_counts) - camp_counts
    _check_sorted_runs(camp_flat, camp_start, camp_counts, "campaigns not sorted")
    wm_day = heads.watermark // DAY_MS
    names = (name_start, name_counts, name_flat)
    campaigns = (camp_start, camp_counts, camp_flat)
    posts = _section_rows(0, POST, parsed, wm_day, names, campaigns, None)
    links = _LinkTargets.of(posts, parsed)
    tags = _section_rows(1, TAG, parsed, wm_day, names, campaigns, links)
    orders = _section_rows(2, ORDER, parsed, wm_day, names, campaigns, links)
    _check_used(posts, tags, orders, name_counts, camp_counts, n)
    links.check_used(tags, orders)
    return heads, Columns(posts, tags, orders)


@dataclass(slots=True)
class _LinkTargets:
    """What links point at: each creator's posts (rows in hash order) and other hashes."""

    post_h: npt.NDArray[np.uint64]
    post_start: Ints
    post_counts: Ints
    other_h: npt.NDArray[np.uint64]
    other_start: Ints
    other_counts: Ints

    @classmethod
    def of(cls, posts: Rows, parsed: list[_Parsed]) -> _LinkTargets:
        n = len(parsed)
        post_counts = np.bincount(posts["creator"], minlength=n)
        other_counts = np.array([len(p.others) // 8 for p in parsed], dtype=np.int64)
        other_h = np.frombuffer(b"".join([p.others for p in parsed]), dtype="<u8").astype(np.uint64)
        targets = cls(
            posts["h"], np.cumsum(post_counts) - post_counts, post_counts,
            other_h, np.cumsum(other_counts) - other_counts, other_counts,
        )  # fmt: skip
        if len(other_h):
            owner = np.repeat(np.arange(n), other_counts)
            rising = other_h[1:] > other_h[:-1]
            if not (rising | (owner[1:] != owner[:-1])).all():
                raise ValueError("other post hashes not sorted")
            held_keys = keys(posts["creator"], posts["h"])
            _, held = locate(posts, held_keys, owner, other_h)
            if held.any():
                raise ValueError("a post the value holds among its other post hashes")
        return targets

    def hashes(self, creator: Ints, link: Ints, *, optional: bool) -> npt.NDArray[np.uint64]:
        """The post hash of each link (0 where an optional link is 0)."""
        n_posts = self.post_counts[creator]
        top = n_posts + self.other_counts[creator]
        if ((link > top) | (link < (0 if optional else 1))).any():
            raise ValueError("post link out of range")
        own = (link >= 1) & (link <= n_posts)
        other = link > n_posts
        out = np.zeros(len(link), dtype=np.uint64)
        if own.any():
            out[own] = self.post_h[self.post_start[creator[own]] + link[own] - 1]
        if other.any():
            at = self.other_start[creator[other]] + link[other] - n_posts[other] - 1
            out[other] = self.other_h[at]
        return out

    def check_used(self, tags: Rows, orders: Rows) -> None:
        """Every other post hash a value lists is named by one of its tags or orders."""
        if not len(self.other_h):
            return
        named = np.concatenate((tags["post"], orders["post"][orders["has_post"] != 0]))
        owners = np.concatenate((tags["creator"], orders["creator"][orders["has_post"] != 0]))
        table = np.empty(len(self.other_h), dtype=_LINK_ROW)
        table["creator"] = np.repeat(np.arange(len(self.other_counts)), self.other_counts)
        table["h"] = self.other_h
        at, found = locate(table, keys(table["creator"], table["h"]), owners, named)
        used = np.zeros(len(table), dtype=np.bool_)
        used[at[found]] = True
        if not used.all():
            raise ValueError("unused other post hash in the table")


def _check_sorted_runs(values: Ints, starts: Ints, counts: Ints, problem: str) -> None:
    """Values strictly increasing within each run (runs laid end to end)."""
    if len(values) < 2:
        return
    rising = values[1:] > values[:-1]
    run_start = np.zeros(len(values), dtype=np.bool_)
    run_start[starts[counts > 0]] = True
    if not (rising | run_start[1:]).all():
        raise ValueError(problem)


_Names = tuple[Ints, Ints, Ints]


def _section_rows(
    section: int,
    dtype: np.dtype[np.void],
    parsed: list[_Parsed],
    wm_day: Ints,
    names: _Names,
    campaigns: _Names,
    links: _LinkTargets | None,
) -> Rows:
    counts = np.array([p.sections[section][1] for p in parsed], dtype=np.int64)
    total = int(counts.sum())
    out = np.empty(total, dtype=dtype)
    if not total:
        return out
    # Each layout's rows and constants become whole-section columns (a few steps per
    # layout); the conversion and the checks then run once over the section.
    starts = np.cumsum(counts) - counts
    groups: dict[bytes, list[int]] = {}
    for c, p in enumerate(parsed):
        if p.sections[section][1]:
            groups.setdefault(p.sections[section][2], []).append(c)
    values = {name: np.empty(total, dtype=np.uint64) for name in _COLUMNS[section]}
    codes_of = np.zeros((len(parsed), len(_CODED[section])), dtype=np.uint8)
    for codes, members in groups.items():
        row_dt, const_dt = _layout(section, codes)
        size, csize = row_dt.itemsize, const_dt.itemsize
        parts, cparts = [], []
        for c in members:
            at, count, _ = parsed[c].sections[section]
            body = parsed[c].body
            cparts.append(body[at : at + csize])
            parts.append(body[at + csize : at + csize + size * count])
        raw = np.frombuffer(b"".join(parts), dtype=row_dt)
        member = np.array(members, dtype=np.int64)
        member_counts = counts[member]
        rows = _ranges(starts[member], member_counts)
        constants = np.frombuffer(b"".join(cparts), dtype=const_dt) if csize else None
        values["h"][rows] = raw["h"]
        for name, code in zip(_CODED[section], codes, strict=True):
            if code == _ZERO:
                values[name][rows] = 0
            elif code < _CONSTANT:
                values[name][rows] = raw[name]
            else:
                assert constants is not None
                values[name][rows] = np.repeat(constants[name], member_counts)
        codes_of[member] = np.frombuffer(codes, dtype=np.uint8)
    creator = np.repeat(np.arange(len(parsed)), counts)
    out["creator"] = creator
    _fill(section, out, values, creator, wm_day, names, campaigns, links)
    has = counts > 0
    _check_codes(section, codes_of[has], values, counts[has])
    owner, h = out["creator"], out["h"]
    if total > 1 and not ((owner[1:] != owner[:-1]) | (h[1:] > h[:-1])).all():
        raise ValueError("records not in hash order")
    return out


def _names(
    local: Ints, creator: Ints, start: Ints, counts: Ints, flat: Ints, *, optional: bool
) -> Ints:
    """Vocabulary codes of name indices (`optional`: 1 + index, 0 for none)."""
    index = local - 1 if optional else local
    bad = index >= counts[creator]
    if optional:
        bad |= local < 0
    if bad.any():
        raise ValueError("name index out of range")
    codes = flat[np.where(index >= 0, start[creator] + index, 0)] if len(flat) else index
    return np.where(index >= 0, codes, NONE) if optional else codes


def _fill(
    section: int,
    block: Rows,
    raw: dict[str, npt.NDArray[np.uint64]],
    creator: Ints,
    wm_day: Ints,
    names: _Names,
    campaigns: _Names,
    links: _LinkTargets | None,
) -> None:
    name_start, name_counts, name_flat = names
    camp_start, camp_counts, camp_flat = campaigns

    def ints(field: str) -> Ints:
        values = raw[field]
        if len(values) and int(values.max()) >= _LIMIT:
            raise ValueError(f"{field} out of range")
        return values.astype(np.int64)

    def name(field: str, optional: bool = False) -> Ints:
        return _names(ints(field), creator, name_start, name_counts, name_flat,
                      optional=optional)  # fmt: skip

    day = wm_day[creator] - ints("dday")
    block["h"] = raw["h"]
    block["day"] = day
    if section == 0:
        ms = ints("ms")
        if len(ms) and int(ms.max()) >= DAY_MS:
            raise ValueError("post time out of range")
        block["ms"] = ms
        code = ints("observed")
        posted = day * DAY_MS + ms
        block["observed"] = np.where(
            code == 0, -1, np.where(code & 1, posted + (code >> 1), posted - (code >> 1))
        )
        for field in ("views", "likes", "comments", "shares"):
            block[field] = ints(field)
        block["content_type"] = name("content_type")
        block["brand"] = name("brand", optional=True)
        block["themes"] = name("themes", optional=True)
    elif section == 1:
        assert links is not None
        block["post"] = links.hashes(creator, ints("post"), optional=False)
        block["brand"] = name("brand")
        block["theme"] = name("theme")
        index = ints("campaign")
        if (index > camp_counts[creator]).any():
            raise ValueError("campaign index out of range")
        has = index > 0
        block["campaign"] = np.where(
            has, camp_flat[np.where(has, camp_start[creator] + index - 1, 0)] if len(camp_flat)
            else -1, -1,
        )  # fmt: skip
    else:
        assert links is not None
        status = ints("status")
        if (status > 2).any():
            raise ValueError("order status out of range")
        link = ints("post")
        post = links.hashes(creator, link, optional=True)
        mantissa, exponent = ints("mantissa"), ints("exponent")
        if (exponent > 18).any():
            raise ValueError("order amount out of range")
        if ((mantissa % 10 == 0) & ((mantissa != 0) | (exponent != 0))).any():
            raise ValueError("order amount not canonical")
        if (mantissa > (_LIMIT - 1) // _POW10[exponent]).any():
            raise ValueError("order amount out of range")
        micros = mantissa * _POW10[exponent]
        block["status"] = status
        block["micros"] = micros
        block["quantity"] = ints("quantity")
        block["currency"] = name("currency")
        block["brand"] = name("brand")
        block["theme"] = name("theme")
        block["post"] = post
        block["has_post"] = link != 0


def _check_codes(
    section: int,
    codes: npt.NDArray[np.uint8],
    values: dict[str, npt.NDArray[np.uint64]],
    counts: Ints,
) -> None:
    """Every creator's column stored as its code says its values must be (canonical);
    `codes` and `counts` are those of the creators with rows, in order."""
    starts = np.cumsum(counts) - counts
    for j, name in enumerate(_CODED[section]):
        column = values[name]
        tops = np.maximum.reduceat(column, starts)
        lows = np.minimum.reduceat(column, starts)
        if (_codes_of(tops, lows) != codes[:, j]).any():
            raise ValueError("columns not at their narrowest widths")


def _check_used(
    posts: Rows, tags: Rows, orders: Rows, name_counts: Ints, camp_counts: Ints, n: int
) -> None:
    """Every name and campaign a value lists is used by one of its records (canonical)."""
    # Used names are counted through the codes: values list distinct names, so the
    # distinct (creator, code) pairs in use must number exactly the names listed.
    parts = [
        (posts["creator"], posts["content_type"]), (posts["creator"], posts["brand"]),
        (posts["creator"], posts["themes"]), (tags["creator"], tags["brand"]),
        (tags["creator"], tags["theme"]), (orders["creator"], orders["currency"]),
        (orders["creator"], orders["brand"]), (orders["creator"], orders["theme"]),
    ]  # fmt: skip
    pairs = [(c[v >= 0] << 32) | v[v >= 0] for c, v in parts]
    used = distinct(np.concatenate(pairs)) if pairs else np.zeros(0, dtype=np.int64)
    if not np.array_equal(np.bincount(used >> 32, minlength=n), name_counts):
        raise ValueError("unused name in the table")
    on = tags["campaign"] >= 0
    used_c = distinct((tags["creator"][on] << 32) | tags["campaign"][on])
    if not np.array_equal(np.bincount(used_c >> 32, minlength=n), camp_counts):
        raise ValueError("unused campaign in the table")


__all__ = ["FORMAT", "NewerFormatError", "decode", "decode_each", "encode"]
