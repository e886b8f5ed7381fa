"""The read API's Lua scripts, called by their SHA1 and loaded into Redis when it lacks them.

redis-py's `Script` checks on every call whether it was handed a pipeline or a cluster
pipeline (an isinstance against a runtime Protocol, and two imports), which the API pays
on every request, once or twice; this one only sends EVALSHA.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError


class Script:
    """`await script(keys=[...], args=[...])`: EVALSHA, and SCRIPT LOAD then EVALSHA again when
    Redis does not know the script (a restarted or flushed Redis)."""

    def __init__(self, client: Redis, source: str) -> None:
        self._client = client
        self._source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(
        self, keys: Sequence[str] = (), args: Sequence[str | int | float | bytes] = ()
    ) -> Any:
        client: Any = self._client  # redis-py types evalsha's reply loosely
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await client.script_load(self._source)
            return await client.evalsha(self.sha, len(keys), *keys, *args)
