"""The state table's value: a creator's packed state, the model its last card was scored
with, and the ids it still recognises after their records left the window.

The model's state bytes (`scoring.packed`) say nothing about scoring parameters;
the worker needs one more fact per creator, the `model_version` of the card it last
published, to know whether that card can be recomputed from the state (same model)
or was scored by another model (then its boards are read back from Redis and the
change record announces the new model). And a replay that brings back an old record
with another event time must not count it again once the record has left the window
(`scoring.merge`): the ids of such records travel here, beside the state, for
`seen_days`, so the packed state stays what the window holds.

    layout 1: b"CE", 1, model version length (1 byte), model version (UTF-8), state
    layout 2: b"CE", 2, model version length, model version, seen count n (u32),
              n id hashes (u64), n days (u32), state, CRC-32 of all before it (u32)

Layout 1 is written whenever a creator recognises no expired id (most do), so those
values cost nothing more than before. Layout 2 is sealed (`scoring.packed.is_sealed`),
as every layout after 1 promises to be.
"""

from __future__ import annotations

import struct
import zlib
from typing import Final

import numpy as np
import numpy.typing as npt

from scoring.packed import NewerFormatError, is_sealed

MAGIC: Final = b"CE"
LAYOUT: Final = 2
_PLAIN: Final = 1
_COUNT: Final = struct.Struct("<I")

Hashes = npt.NDArray[np.uint64]
Days = npt.NDArray[np.int64]
_NO_HASHES: Final = np.empty(0, dtype=np.uint64)
_NO_DAYS: Final = np.empty(0, dtype=np.int64)


def wrap(
    model_version: str,
    state: bytes,
    seen: tuple[Hashes, Days] | None = None,
) -> bytes:
    """The table value for `state` last published under `model_version`, recognising the
    expired ids `seen` (hashes, ascending, and their records' days)."""
    version = model_version.encode()
    if len(version) > 255:
        raise ValueError(f"model version longer than 255 bytes: {model_version[:40]!r}...")
    if seen is None or not len(seen[0]):
        return b"".join((MAGIC, bytes((_PLAIN, len(version))), version, state))
    hashes, days = seen
    if len(hashes) != len(days) or (len(days) and (days.min() < 0 or days.max() >= 2**32)):
        raise ValueError("seen ids need one day each, within 0..2**32-1")
    body = b"".join(
        (
            MAGIC,
            bytes((LAYOUT, len(version))),
            version,
            _COUNT.pack(len(hashes)),
            hashes.astype("<u8").tobytes(),
            days.astype("<u4").tobytes(),
            state,
        )
    )
    return body + _COUNT.pack(zlib.crc32(body))


def unwrap(value: bytes) -> tuple[str, bytes]:
    """(model version, state bytes) of a table value; ValueError for anything else, but
    NewerFormatError for a value a newer release wrote."""
    version, state, _ = unwrap_seen(value)
    return version, state


def unwrap_seen(value: bytes) -> tuple[str, bytes, tuple[Hashes, Days]]:
    """(model version, state bytes, (seen id hashes, their days)) of a table value."""
    if value[:2] != MAGIC or len(value) < 4:
        raise ValueError("table value does not start with the CE header")
    layout = value[2]
    if layout > LAYOUT and is_sealed(value):
        raise NewerFormatError(
            f"table value layout {layout} is newer than this worker's ({LAYOUT}): it was "
            "written by a newer release; run that release (or newer), not this one"
        )
    if layout not in (_PLAIN, LAYOUT):
        raise ValueError(f"table value layout {layout}, this worker reads layouts 1 and 2")
    end = 4 + value[3]
    if end > len(value):
        raise ValueError("table value truncated in its model version")
    try:
        version = value[4:end].decode()
    except UnicodeDecodeError as exc:
        raise ValueError(f"model version is not UTF-8: {exc}") from exc
    if layout == _PLAIN:
        return version, value[end:], (_NO_HASHES, _NO_DAYS)
    if not is_sealed(value):
        raise ValueError("table value of layout 2 fails its checksum")
    if end + 4 > len(value) - 4:
        raise ValueError("table value truncated in its seen ids")
    (n,) = _COUNT.unpack_from(value, end)
    ids_at = end + 4
    days_at = ids_at + 8 * n
    state_at = days_at + 4 * n
    if state_at > len(value) - 4:
        raise ValueError("table value truncated in its seen ids")
    hashes = np.frombuffer(value, dtype="<u8", count=n, offset=ids_at).astype(np.uint64)
    days = np.frombuffer(value, dtype="<u4", count=n, offset=days_at).astype(np.int64)
    if n > 1 and not bool(np.all(hashes[1:] > hashes[:-1])):
        raise ValueError("seen ids out of order")
    return version, value[state_at:-4], (hashes, days)
