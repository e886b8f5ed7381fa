"""Partner API keys: who may read, which regions, how fast. Kept in Redis, stored hashed.

A token is `csk_<key id>_<secret>`: the key id (16 hex digits) names the key's hash in
Redis (`Keys.api_key`), which holds the SHA-256 of the whole token, never the token, with
the partner's name, the regions it may read (`*`: all) and its rate limit. The secret has
256 random bits, so a plain SHA-256 is enough (no password stretching: nothing to guess).
`creator-scores keys create` prints the token once; it cannot be shown again.

Each request is checked and counted in one round trip (a Lua script): the stored hash must
match, and the key's counter for the current window (`Keys.api_rate`, expiring with the
window: a fixed window) must stay within its rate. A revoked key's hash is deleted, so it
fails on its next request.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from redis.asyncio import Redis

from streams.api.scripts import Script
from streams.keys import GLOBAL_REGION, Keys
from streams.readers import ReaderError, valid_region

TOKEN_PREFIX: Final = "csk_"
_ID_LENGTH: Final = 16
#: The `regions` field of a key that may read every region (and the global boards).
ALL_REGIONS: Final = "*"


@dataclass(frozen=True)
class ApiKey:
    """A partner key as stored (without its token)."""

    key_id: str
    partner: str
    #: None: every region, and the global (ALL) boards.
    regions: frozenset[str] | None
    rate: int
    created_at_ms: int

    def may_read(self, region: str) -> bool:
        """Whether this key may read a region's boards and creators (`ALL`: every region)."""
        if self.regions is None:
            return True
        return region != GLOBAL_REGION and region in self.regions

    def regions_text(self) -> str:
        return ALL_REGIONS if self.regions is None else ",".join(sorted(self.regions))

    def to_dict(self) -> dict[str, object]:
        return {
            "key_id": self.key_id,
            "partner": self.partner,
            "regions": None if self.regions is None else sorted(self.regions),
            "rate": self.rate,
            "created_at_ms": self.created_at_ms,
        }


@dataclass(frozen=True)
class Checked:
    """What one request's key check found: the key (None: missing or wrong) and its count in
    the current window."""

    key: ApiKey | None
    count: int = 0
    window_left_ms: int = 0


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def key_id_of(token: str) -> str | None:
    """The key id a token names, or None for what is not a token of ours."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    rest = token[len(TOKEN_PREFIX) :]
    key_id, sep, secret = rest[:_ID_LENGTH], rest[_ID_LENGTH : _ID_LENGTH + 1], rest[17:]
    if sep != "_" or not secret or len(key_id) != _ID_LENGTH:
        return None
    if any(c not in "0123456789abcdef" for c in key_id):
        return None
    return key_id


def parse_regions(regions: Iterable[str]) -> frozenset[str] | None:
    """Region codes as boards name them (`uk` is GB); `*` (or ALL) alone means every region."""
    codes = [r.strip() for text in regions for r in text.split(",") if r.strip()]
    if not codes:
        raise ReaderError("give the regions the key may read, or * for all", param="regions")
    if any(c in (ALL_REGIONS, GLOBAL_REGION) or c.upper() == GLOBAL_REGION for c in codes):
        if len(codes) > 1:
            raise ReaderError("* (every region) goes alone", param="regions")
        return None
    return frozenset(valid_region(c) for c in codes)


# KEYS: the key's hash, its rate counter. ARGV: the token's SHA-256, the window in ms.
# Replies {0} for no such key or another token, else {1, partner, regions, rate, created,
# count in this window, ms left in it}.
_CHECK = """
local k = redis.call('HMGET', KEYS[1], 'sha256', 'partner', 'regions', 'rate', 'created_at')
if not k[1] or k[1] ~= ARGV[1] then return {0} end
local n = redis.call('INCR', KEYS[2])
local left = redis.call('PTTL', KEYS[2])
if left < 0 then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  left = tonumber(ARGV[2])
end
return {1, k[2], k[3], tonumber(k[4]) or 0, tonumber(k[5]) or 0, n, left}
"""


class Keyring:
    """The partner keys in Redis: create, list, revoke, and check a request's token."""

    def __init__(self, client: Redis, keys: Keys, window_s: int = 60) -> None:
        self._redis = client
        self._keys = keys
        self._window_ms = window_s * 1000
        self._check = Script(client, _CHECK)

    async def create(
        self, partner: str, regions: frozenset[str] | None, rate: int
    ) -> tuple[ApiKey, str]:
        """A new key and its token (shown once: only its hash is kept)."""
        if not partner.strip():
            raise ReaderError("the partner name must not be empty", param="partner")
        if rate < 1:
            raise ReaderError(f"the rate must be at least 1 request per window, got {rate}")
        key_id = secrets.token_hex(_ID_LENGTH // 2)
        token = f"{TOKEN_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        key = ApiKey(key_id, partner.strip(), regions, rate, int(time.time() * 1000))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._keys.api_key(key_id), mapping={
                "sha256": digest(token), "partner": key.partner, "regions": key.regions_text(),
                "rate": str(rate), "created_at": str(key.created_at_ms),
            })  # fmt: skip
            pipe.sadd(self._keys.api_keys(), key_id)
            await pipe.execute()
        return key, token

    async def list(self) -> list[ApiKey]:
        ids = sorted(_text(i) for i in await self._redis.smembers(self._keys.api_keys()))
        async with self._redis.pipeline(transaction=False) as pipe:
            for key_id in ids:
                pipe.hgetall(self._keys.api_key(key_id))
            replies: Sequence[dict[bytes | str, bytes | str]] = await pipe.execute()
        out = []
        for key_id, raw in zip(ids, replies, strict=True):
            if raw:
                fields = {_text(k): _text(v) for k, v in raw.items()}
                out.append(_key(key_id, fields["partner"], fields["regions"], fields["rate"],
                                fields.get("created_at", "0")))  # fmt: skip
        return sorted(out, key=lambda k: (k.created_at_ms, k.key_id))

    async def revoke(self, key_id: str) -> bool:
        """Delete a key (by id, or by its token); False if there was none."""
        if key_id.startswith(TOKEN_PREFIX):
            key_id = key_id_of(key_id) or key_id
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._keys.api_key(key_id), self._keys.api_rate(key_id))
            pipe.srem(self._keys.api_keys(), key_id)
            deleted, _ = await pipe.execute()
        return bool(deleted)

    async def check(self, token: str) -> Checked:
        """The key a token belongs to, counted against its rate in this window."""
        key_id = key_id_of(token)
        if key_id is None:
            return Checked(None)
        reply = await self._check(
            keys=[self._keys.api_key(key_id), self._keys.api_rate(key_id)],
            args=[digest(token), self._window_ms],
        )
        if not reply or int(reply[0]) != 1:
            return Checked(None)
        _, partner, regions, rate, created, count, left = reply
        key = _key(key_id, _text(partner), _text(regions), rate, created)
        return Checked(key, int(count), int(left))


def _key(key_id: str, partner: str, regions: str, rate: object, created: object) -> ApiKey:
    allowed = None if regions == ALL_REGIONS else frozenset(r for r in regions.split(",") if r)
    return ApiKey(key_id, partner, allowed, int(str(rate)), int(str(created or 0)))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
