"""Locale tags: ``pt_BR`` or BCP 47 ``pt-BR``, parsed once into Babel locales."""

from __future__ import annotations

from functools import lru_cache

from babel import Locale, UnknownLocaleError

from .errors import InputError


@lru_cache(maxsize=512)
def parse_locale(tag: str) -> Locale:
    """A cached Babel Locale for ``pt_BR`` or BCP 47 ``pt-BR``."""
    try:
        return Locale.parse(tag, sep="-" if "-" in tag else "_")
    except (UnknownLocaleError, ValueError, TypeError) as exc:
        raise InputError("locale", tag, f"not a known locale ({exc})") from None
