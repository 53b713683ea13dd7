"""JSON written on the delivery path (history entries, outbox lines): compact, UTF-8, fast.

``orjson`` writes these several times faster than ``json``; what it refuses (an
integer beyond 64 bits, a key that is not text) is written by ``json`` instead, so
every value ``json.dumps(..., default=str)`` accepts is accepted here, and
``json.loads`` reads back the same value either way, with two exceptions: a float
that is not finite is written ``null`` by orjson (JSON has no NaN or infinity;
``json`` writes a token other readers refuse, and still does when it writes the
whole value), and an ``Enum`` that is neither a ``StrEnum`` nor an ``IntEnum`` is
written as its value (``json`` writes its ``str()``). Neither reaches the history
or the outbox: their values are text, numbers, lists and mappings of them.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

#: Dates and dataclasses handed to ``_default``, as ``json`` does, not written orjson's own way. A key
#: that is not text is refused by orjson and written by ``json``.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _default(value: Any) -> Any:
    """What ``json`` makes of what orjson does not take: a tuple subclass (a named tuple) is a list,
    a float subclass its number, anything else its ``str()``."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def dumps(value: Any) -> str:
    """Compact JSON text; a value JSON cannot hold is written as its ``str()``."""
    return _encode(value, newline=False).decode()


def line(value: Any) -> bytes:
    """One JSON line (UTF-8, ending in a newline), as ``dumps`` writes it."""
    return _encode(value, newline=True)


def _encode(value: Any, *, newline: bool) -> bytes:
    try:
        return orjson.dumps(
            value, default=_default, option=_OPTIONS | (orjson.OPT_APPEND_NEWLINE if newline else 0)
        )
    except (TypeError, orjson.JSONEncodeError):
        text = json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
        return (text + "\n" if newline else text).encode()
