"""Kafka's default partitioner (murmur2 of the key), for many keys at once.

Every record of a creator must be processed by the worker that owns the creator's
state, so the worker checks the partition of every record it reads, and writes its
changelog and output records to the partitions Kafka's Java clients (and Faust's
tables) would pick. aiokafka's `murmur2` is pure Python, about 2.7 us a key, which
is more than the rest of the flush spends on some creators; here the same hash runs
over all keys of one length at once with numpy's wrapping uint32 arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

_SEED: Final = 0x9747B28C
_M: Final = np.uint32(0x5BD1E995)
_R: Final = 24


def murmur2_many(keys: Sequence[bytes]) -> npt.NDArray[np.uint32]:
    """Kafka's murmur2 hash of each key (as `aiokafka.partitioner.murmur2`, unsigned)."""
    out = np.empty(len(keys), dtype=np.uint32)
    by_length: dict[int, list[int]] = {}
    for i, key in enumerate(keys):
        by_length.setdefault(len(key), []).append(i)
    for length, where in by_length.items():
        data = np.frombuffer(b"".join(keys[i] for i in where), dtype=np.uint8)
        out[where] = _murmur2_fixed(data.reshape(len(where), length), length)
    return out


def partitions_for(keys: Sequence[bytes], partitions: int) -> npt.NDArray[np.int64]:
    """The partition Kafka's default partitioner picks for each key among `partitions`."""
    if partitions < 1:
        raise ValueError(f"a topic has at least one partition, not {partitions}")
    hashed = murmur2_many(keys).astype(np.int64)
    return (hashed & 0x7FFFFFFF) % partitions


def _murmur2_fixed(rows: npt.NDArray[np.uint8], length: int) -> npt.NDArray[np.uint32]:
    """murmur2 of rows of `length` bytes each (all keys of one length: same blocks, same tail)."""
    n = rows.shape[0]
    h = np.full(n, (_SEED ^ length) & 0xFFFFFFFF, dtype=np.uint32)
    blocks = length // 4
    with np.errstate(over="ignore"):
        if blocks:
            words = np.ascontiguousarray(rows[:, : blocks * 4]).view("<u4")
            for b in range(blocks):
                k = words[:, b] * _M
                k ^= k >> _R
                k *= _M
                h *= _M
                h ^= k
        tail = length % 4
        if tail:
            at = blocks * 4
            if tail == 3:
                h ^= rows[:, at + 2].astype(np.uint32) << 16
            if tail >= 2:
                h ^= rows[:, at + 1].astype(np.uint32) << 8
            h ^= rows[:, at].astype(np.uint32)
            h *= _M
        h ^= h >> 13
        h *= _M
        h ^= h >> 15
    return h
