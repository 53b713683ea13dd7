"""Redis replies as text: the clients answer bytes (or str, with ``decode_responses``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def text(value: object) -> str:
    """A reply that must be there, as text."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    raise TypeError(f"a Redis reply that should be text is {type(value).__name__}: {value!r}")


def text_or_none(value: object) -> str | None:
    """A reply that may be missing (nil), as text or None."""
    return None if value is None else text(value)


def texts(values: Iterable[object]) -> list[str]:
    return [text(v) for v in values]


def text_fields(raw: Mapping[Any, Any]) -> dict[str, str]:
    """An HGETALL reply as a dict of text."""
    try:
        # The usual reply, bytes both ways, decoded without a check per field.
        return {k.decode(): v.decode() for k, v in raw.items()}
    except AttributeError:
        return {text(k): text(v) for k, v in raw.items()}
