"""Which shipped locale a page takes when no customer is known: Accept-Language negotiation."""

from __future__ import annotations

import re

from babel import Locale

#: A BCP 47 language tag as Accept-Language carries it (nothing else reaches Babel).
_TAG = re.compile(r"[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*")


def _preferences(header: str | None) -> list[str]:
    """Language tags from Accept-Language, best first (ties keep their order)."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((header or "").split(",")):
        tag, _, params = item.strip().partition(";")
        tag = tag.strip()
        if not _TAG.fullmatch(tag):
            continue  # "*" and anything that is not a language tag
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, position, tag.replace("-", "_")))
    return [tag for _, _, tag in sorted(ranked)][:20]


def negotiate(header: str | None, shipped: tuple[str, ...], default: str) -> str:
    """The shipped locale that best matches an Accept-Language header (``babel.Locale.negotiate``).

    Each wanted tag is tried as given, then with its likely script (``zh_CN`` → ``zh_Hans``),
    then as any shipped locale of its language (``pt`` → ``pt_BR``).
    """
    wanted: list[str] = []
    for tag in _preferences(header):
        wanted.append(tag)
        try:
            parsed = Locale.parse(tag)
        except Exception:  # noqa: BLE001 - babel raises several kinds for a bad tag
            continue
        if parsed.script:
            wanted.append(f"{parsed.language}_{parsed.script}")
        for candidate in shipped:
            if candidate.split("_")[0] == parsed.language:
                candidate_script = _script(candidate)
                if candidate_script in (None, parsed.script):
                    wanted.append(candidate)
    found = Locale.negotiate(wanted, list(shipped), sep="_")
    if found is None:
        return default
    # Back to the shipped tag's own spelling (the catalogs are named by it).
    return next((tag for tag in shipped if _same(tag, found)), default)


def _same(tag: str, locale: Locale) -> bool:
    try:
        return str(Locale.parse(tag)) == str(locale)
    except Exception:  # noqa: BLE001
        return False


def _script(tag: str) -> str | None:
    try:
        return Locale.parse(tag).script
    except Exception:  # noqa: BLE001
        return None
