"""JSON written on the delivery path (history entries, outbox lines): compact, UTF-8, fast.

``orjson`` writes these several times faster than ``json``; what it refuses (an
integer beyond 64 bits, a key that is not text, a subclass it does not know) is
written by ``json`` instead, so every value ``json.dumps(..., default=str)``
accepts is accepted here, and ``json.loads`` reads back the same value either way
(but for a float that is not finite: JSON has no NaN or infinity, and ``null`` is
written, where ``json`` would write a token no other JSON reader accepts).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

#: Keys that are not text as ``json`` writes them; dates and dataclasses handed to ``default``
#: (``str``), as ``json`` does, not written orjson's own way. (An enum is written as its value:
#: the same as ``json`` for a StrEnum or an IntEnum, the states and codes used here.)
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def dumps(value: Any) -> str:
    """Compact JSON text; a value JSON cannot hold is written as its ``str()``."""
    try:
        return orjson.dumps(value, default=str, option=_OPTIONS).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))


def line(value: Any) -> bytes:
    """One JSON line (UTF-8, ending in a newline), as ``dumps`` writes it."""
    try:
        return orjson.dumps(value, default=str, option=_OPTIONS | orjson.OPT_APPEND_NEWLINE)
    except (TypeError, orjson.JSONEncodeError):
        return (json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":")) + "\n").encode()
