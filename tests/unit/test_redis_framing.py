"""The Redis sink frames its pipelined commands and reads their replies itself: RESP2 both ways."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ResponseError

from streams.sinks.redis import pack_commands, read_replies


def test_commands_are_framed_back_to_back_as_resp2_arrays_of_bulk_strings() -> None:
    packed = pack_commands([[b"HSET", b"cs:creator:c1", b"sales", b"71.5"], [b"ZREM", b"k", b""]])
    assert packed == (
        b"*4\r\n$4\r\nHSET\r\n$13\r\ncs:creator:c1\r\n$5\r\nsales\r\n$4\r\n71.5\r\n"
        b"*3\r\n$4\r\nZREM\r\n$1\r\nk\r\n$0\r\n\r\n"
    )


def test_binary_arguments_pass_unchanged_and_no_commands_is_nothing() -> None:
    value = "Tiên ✓".encode() + b"\r\n\x00"
    packed = pack_commands([(b"SET", b"k", value)])
    assert packed == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n%b\r\n" % (len(value), value)
    assert pack_commands([]) == b""


async def _stream(*chunks: bytes, eof: bool = True) -> asyncio.StreamReader:
    stream = asyncio.StreamReader()
    for chunk in chunks:
        stream.feed_data(chunk)
    if eof:
        stream.feed_eof()
    return stream


async def test_replies_are_read_in_bulk_across_chunks() -> None:
    stream = await _stream(b"+OK\r\n:3\r\n*2\r\n$1\r\na", b"\r\n$2\r\nbc\r\n:0\r\n", eof=False)
    assert await read_replies(stream, 4, 1.0) == [b"OK", 3, [b"a", b"bc"], 0]


async def test_an_error_reply_raises_after_every_reply_is_read() -> None:
    stream = await _stream(b"+OK\r\n-WRONGTYPE Operation against a key\r\n:1\r\n")
    with pytest.raises(ResponseError, match="1 error replies, first: WRONGTYPE"):
        await read_replies(stream, 3, 1.0)


async def test_a_closed_connection_or_silence_is_an_error() -> None:
    with pytest.raises(ConnectionError, match="closed"):
        await read_replies(await _stream(b"+OK\r\n:1"), 2, 1.0)
    with pytest.raises(TimeoutError):
        await read_replies(await _stream(b"+OK\r\n", eof=False), 2, 0.05)
    with pytest.raises(ConnectionError, match="not open"):
        await read_replies(None, 1, 1.0)
