"""`streams.api.scripts.Script` calls a script by its SHA1 and loads it when Redis lacks it."""

from __future__ import annotations

import hashlib
from typing import Any

from redis.exceptions import NoScriptError

from streams.api.scripts import Script


class FakeRedis:
    """Knows the scripts loaded into it; EVALSHA of another is NOSCRIPT, as in Redis."""

    def __init__(self) -> None:
        self.loaded: dict[str, str] = {}
        self.calls: list[tuple[Any, ...]] = []

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        self.calls.append((sha, numkeys, *keys_and_args))
        if sha not in self.loaded:
            raise NoScriptError("NOSCRIPT No matching script.")
        return ["ran", numkeys, list(keys_and_args)]

    async def script_load(self, source: str) -> str:
        sha = hashlib.sha1(source.encode()).hexdigest()
        self.loaded[sha] = source
        return sha


async def test_a_script_is_loaded_once_then_called_by_its_sha() -> None:
    redis = FakeRedis()
    script = Script(redis, "return KEYS[1]")  # type: ignore[arg-type]
    assert await script(keys=["k"], args=[1, "a"]) == ["ran", 1, ["k", 1, "a"]]
    assert await script(keys=["k2"]) == ["ran", 1, ["k2"]]
    assert list(redis.loaded) == [script.sha]
    assert [call[0] for call in redis.calls] == [script.sha] * 3  # NOSCRIPT, retry, next call
