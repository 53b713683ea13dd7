"""Names and salutations per locale and register."""

from __future__ import annotations

import re

from ..customers.profile import Customer
from .locales import LocaleSettings

_PLACEHOLDER = re.compile(r"{(given|family|full)}")


def _is_cjk(text: str) -> bool:
    return all("\u3040" <= ch <= "\u30ff" or "\u3400" <= ch <= "\u9fff" for ch in text if not ch.isspace())


def full_name(customer: Customer, settings: LocaleSettings) -> str | None:
    """The full name in the locale's order (``Nagy Eszter``, ``田中春斗``, ``Amelia Wright``);
    None when only a family name is known (it must not stand alone)."""
    given, family = customer.given_name, customer.family_name
    if not (given and family):
        return None if customer.name == family else (given or customer.name)
    parts = (family, given) if settings.name_order == "family_given" else (given, family)
    # A name written in Latin letters keeps its space even in a CJK locale.
    separator = settings.separator if _is_cjk(given + family) else " "
    return separator.join(parts)


def salutation(customer: Customer, settings: LocaleSettings, register: str) -> str:
    """The opening line: a title with the family name where one is known and expected,
    else the first pattern whose names are all known. Never a bare family name."""
    values = {
        "given": customer.given_name or (None if customer.family_name else customer.name),
        "family": customer.family_name,
        "full": full_name(customer, settings),
    }
    candidates: list[str] = []
    if register == "formal" and customer.title and customer.title in settings.titled:
        candidates.append(settings.titled[customer.title])
    candidates += list(settings.formal if register == "formal" else settings.informal)
    for pattern in candidates:
        names = _PLACEHOLDER.findall(pattern)
        if all(values[n] for n in names):
            # Every name of the pattern has a value (checked above): ``or ""`` never applies.
            return _PLACEHOLDER.sub(lambda m: values[m.group(1)] or "", pattern)
    return ""
