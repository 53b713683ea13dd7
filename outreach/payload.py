"""What a value from outside may hold before anything stores it: JSON that every later step can
write, read and send again.

Python's ``json`` reads ``NaN`` and ``Infinity``, and strings with lone surrogates (``"\\ud800"``),
and a client can nest a value as deep as it likes. None of them survives the way on: Redis and
the providers need UTF-8, the API answers in strict JSON, and deep nesting exhausts recursion.
``check`` refuses them where the value comes in, naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .errors import InputError

#: How deep event data and profile attributes may nest (objects and lists).
MAX_DEPTH = 32


def check(field: str, value: Any, *, depth: int = 0) -> None:
    """Raise InputError naming ``field`` (``data.items[2].sku``) unless ``value`` is storable JSON."""
    if depth > MAX_DEPTH:
        raise InputError(field, "…", f"nests deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError(field, str(value), "must be a finite number (not NaN or Infinity)")
        return
    if isinstance(value, str):
        check_text(field, value)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InputError(field, key, "object keys must be strings")
            name = f"{field}.{shown(key)}" if field else shown(key)
            check_text(name, key)
            check(name, item, depth=depth + 1)
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check(f"{field}[{index}]", item, depth=depth + 1)
        return
    raise InputError(field, repr(value), f"{type(value).__name__} is not a JSON value")


def check_text(field: str, text: str) -> None:
    """A string must be valid Unicode text (no lone surrogates): it is stored as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(field, shown(text), "is not valid Unicode text") from None


def shown(text: str) -> str:
    """Text as an error message can carry it: a lone surrogate written as its escape (``\\ud800``)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
