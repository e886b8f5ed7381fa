"""The state table's value: a creator's packed state and the model its last card was scored with.

The model's state bytes (`scoring.packed`) say nothing about scoring parameters;
the worker needs one more fact per creator, the `model_version` of the card it last
published, to know whether that card can be recomputed from the state (same model)
or was scored by another model (then its boards are read back from Redis and the
change record announces the new model).

    b"CE", layout (1), model version length (1 byte), model version (UTF-8), state
"""

from __future__ import annotations

from typing import Final

from scoring.packed import NewerFormatError, is_sealed

MAGIC: Final = b"CE"
LAYOUT: Final = 1


def wrap(model_version: str, state: bytes) -> bytes:
    """The table value for `state` last published under `model_version`."""
    version = model_version.encode()
    if len(version) > 255:
        raise ValueError(f"model version longer than 255 bytes: {model_version[:40]!r}...")
    return b"".join((MAGIC, bytes((LAYOUT, len(version))), version, state))


def unwrap(value: bytes) -> tuple[str, bytes]:
    """(model version, state bytes) of a table value; ValueError for anything else, but
    NewerFormatError for a value a newer release wrote."""
    if value[:2] != MAGIC or len(value) < 4:
        raise ValueError("table value does not start with the CE header")
    if value[2] > LAYOUT and is_sealed(value):
        raise NewerFormatError(
            f"table value layout {value[2]} is newer than this worker's ({LAYOUT}): it was "
            "written by a newer release; run that release (or newer), not this one"
        )
    if value[2] != LAYOUT:
        raise ValueError(f"table value layout {value[2]}, this worker reads layout {LAYOUT}")
    end = 4 + value[3]
    if end > len(value):
        raise ValueError("table value truncated in its model version")
    try:
        version = value[4:end].decode()
    except UnicodeDecodeError as exc:
        raise ValueError(f"model version is not UTF-8: {exc}") from exc
    return version, value[end:]
