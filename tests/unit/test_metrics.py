"""Metric helpers: a flush's bulk observations read exactly like observing one by one."""

from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from streams.metrics import observe_many


def _pair() -> tuple[CollectorRegistry, Histogram, CollectorRegistry, Histogram]:
    buckets = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0)
    a, b = CollectorRegistry(), CollectorRegistry()
    return (
        a, Histogram("h", "h", buckets=buckets, registry=a),
        b, Histogram("h", "h", buckets=buckets, registry=b),
    )  # fmt: skip


def test_bulk_observations_equal_one_by_one() -> None:
    rng = random.Random(4)
    # Bounds themselves (an amount equal to a bound is in that bucket), beyond the last
    # bound (+Inf), zero, and a spread in between.
    amounts = [0.0, 0.01, 0.05, 1.0, 5.0, 7.5, 123.0] + [rng.uniform(0, 6) for _ in range(500)]
    # Dyadic amounts sum exactly in any order, so the _sum lines compare exactly too.
    amounts += [k / 64 for k in range(200)]
    reg_one, one, reg_bulk, bulk = _pair()
    for x in amounts:
        one.observe(x)
    observe_many(bulk, amounts[:300])
    observe_many(bulk, amounts[300:])
    observe_many(bulk, [])
    lines = {
        ln
        for ln in generate_latest(reg_one).decode().splitlines()
        if "_sum" not in ln and "_created" not in ln
    }
    bulk_lines = {
        ln
        for ln in generate_latest(reg_bulk).decode().splitlines()
        if "_sum" not in ln and "_created" not in ln
    }
    assert bulk_lines == lines
    assert abs(bulk._sum.get() - one._sum.get()) < 1e-9
