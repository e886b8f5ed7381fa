"""The vectorised murmur2 agrees with Kafka's default partitioner, key by key."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import murmur2

from streams.partitioning import murmur2_many, partitions_for


def test_murmur2_many_equals_aiokafkas_for_every_length_and_tail() -> None:
    rng = random.Random(7)
    keys = [b""] + [rng.randbytes(rng.randrange(1, 41)) for _ in range(3000)]
    keys += [f"creator-{i}".encode() for i in range(1000)]  # one length group, many keys
    assert murmur2_many(keys).tolist() == [murmur2(k) & 0xFFFFFFFF for k in keys]


def test_partitions_match_the_java_clients() -> None:
    # Partitions the Java producer's default partitioner gives these keys (8 partitions):
    # the same function Kafka Streams and Faust's use_partitioner tables rely on.
    keys = [b"a", b"creator-000001", b"\xff\xfe", b"ab", b"abc", b"abcd"]
    expected = [(murmur2(k) & 0x7FFFFFFF) % 8 for k in keys]
    assert partitions_for(keys, 8).tolist() == expected
    assert partitions_for([], 8).tolist() == []
    with pytest.raises(ValueError, match="at least one partition"):
        partitions_for(keys, 0)
