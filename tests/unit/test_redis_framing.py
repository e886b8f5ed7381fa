"""The Redis sink frames its pipelined commands itself: check the bytes against RESP2."""

from __future__ import annotations

from streams.sinks.redis import pack_commands


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
