"""Scenario 5, state size: bytes per creator in the changelog and worker memory.

Serialized state is read where it really lives: the worker's compacted
changelog topic, after a run. The newest record per key is one creator's
table value (the envelope of `streams.envelope`: a short header naming the
model of the last published card, then the model's packed state). Three sizes
come out of it: the table value itself (the record's value, what the worker
holds per creator), key plus value (bytes per creator on the topic), and the
model's state alone (the value without the envelope's header).
Memory is the worker's resident set, sampled from /proc: at its first record
(imports, clients, buffers) and at the end; the difference over the creators it
holds, scaled to 100 k creators, is the memory the state costs.
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.common import Ctx, end_offsets, percentile
from streams import envelope


async def changelog_sizes(ctx: Ctx, app_id: str) -> dict[str, Any]:
    """Read the state table's changelog to its end; sizes of the newest value per key."""
    from streams.app import TABLE_NAME

    topic = f"{app_id}-{TABLE_NAME}-changelog"
    tps = [TopicPartition(topic, p) for p in range(ctx.partitions)]
    try:
        ends = await end_offsets(ctx, tps)
    except Exception as exc:
        return {"available": False, "reason": f"changelog {topic} unreadable: {exc}"}
    records = sum(ends.values())
    # Sizes only, not the records: at a million creators the values themselves would
    # cost the harness about a gigabyte.
    latest: dict[bytes, tuple[int, int]] = {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=ctx.bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        remaining = {tp: end for tp, end in ends.items() if end > 0}
        while remaining:
            batch = await consumer.getmany(timeout_ms=1000, max_records=50_000)
            if not batch:
                continue
            for tp, recs in batch.items():
                for rec in recs:
                    if rec.key is not None:
                        if rec.value is None:
                            latest.pop(rec.key, None)
                        else:
                            latest[rec.key] = (len(rec.value), _model_bytes(rec.value))
                if recs and recs[-1].offset + 1 >= remaining.get(tp, 0):
                    remaining.pop(tp, None)
    finally:
        await consumer.stop()
    if not latest:
        return {"available": False, "reason": f"changelog {topic} holds no state"}
    totals = [float(len(key) + value) for key, (value, _) in latest.items()]
    values = [float(value) for value, _ in latest.values()]
    model = [float(size) for _, size in latest.values()]
    return {
        "available": True,
        "changelog_topic": topic,
        "changelog_records": records,
        "creators": len(latest),
        "bytes_per_creator_mean": round(sum(totals) / len(totals), 1),
        "bytes_per_creator_p50": percentile(totals, 50),
        "bytes_per_creator_p99": percentile(totals, 99),
        "bytes_per_creator_max": max(totals),
        "table_value_bytes_mean": round(sum(values) / len(values), 1),
        "table_value_bytes_p99": percentile(values, 99),
        "table_value_bytes_total": int(sum(values)),
        "model_state_bytes_mean": round(sum(model) / len(model), 1),
        "changelog_records_per_creator": round(records / len(latest), 2),
    }


def _model_bytes(value: bytes) -> int:
    """The model's part of a table value (all of it when the envelope does not parse)."""
    try:
        return len(envelope.unwrap(value)[1])
    except ValueError:
        return len(value)


def memory_figures(result: dict[str, Any]) -> dict[str, Any]:
    """RSS per 100 k creators from one worker run (end minus first-record RSS)."""
    creators = result.get("worker_metrics", {}).get("creator_scores_creators_in_state")
    start = result.get("rss_at_first_record_mb") or 0.0
    end = result.get("end_rss_mb") or 0.0
    out: dict[str, Any] = {
        "rss_at_first_record_mb": start,
        "end_rss_mb": end,
        "peak_rss_mb": result.get("peak_rss_mb"),
        "creators_in_state": creators,
    }
    if creators and end > start:
        out["rss_mb_per_100k_creators"] = round((end - start) / creators * 100_000, 1)
    return out


def rss_slope(small: dict[str, Any], large: dict[str, Any]) -> float | None:
    """MB per 100 k creators between two runs holding different creator counts."""
    a = float(small.get("creators_in_state") or 0)
    b = float(large.get("creators_in_state") or 0)
    if not a or not b or b <= a:
        return None
    grown = float(large["end_rss_mb"]) - float(small["end_rss_mb"])
    return round(grown / (b - a) * 100_000, 1)
