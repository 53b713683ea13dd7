"""Names and salutations per locale, register, gender and kind of channel."""

from __future__ import annotations

import re

from ..customers.profile import Customer
from .locales import LocaleSettings

_PLACEHOLDER = re.compile(r"{(given|family|full)}")


def _is_cjk(text: str) -> bool:
    return all("\u3040" <= ch <= "\u30ff" or "\u3400" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af"
               for ch in text if not ch.isspace())  # fmt: skip


def full_name(customer: Customer, settings: LocaleSettings) -> str | None:
    """The full name in the customer's own order where the profile gives one, else the locale's
    (``Nagy Eszter``, ``田中春斗``, ``Amelia Wright``; ``John Smith`` stays so in Hungarian when his
    profile says ``given_family``); None when only a family name is known (it must not stand alone)."""
    given, family = customer.given_name, customer.family_name
    if not (given and family):
        return None if customer.name == family else (given or customer.name)
    order = customer.name_order or settings.name_order
    parts = (family, given) if order == "family_given" else (given, family)
    # A name written in Latin letters keeps its space even in a CJK locale.
    separator = settings.separator if _is_cjk(given + family) else " "
    return separator.join(parts)


def _kinds(register: str, gender: str | None, chat: bool) -> list[str]:
    """The salutation lists to try, in order: with the gender before without it."""
    kinds = [f"{register}_{gender}", register] if gender else [register]
    return [f"chat_{k}" for k in kinds] if chat else kinds


def salutation(customer: Customer, settings: LocaleSettings, register: str, *, chat: bool = False) -> str:
    """The opening line: in a letter (email), a title with the family name where one is known and
    expected; in a chat or a text (``chat``), never a title, and the locale's chat salutations where
    it has them; else the first pattern whose names are all known. The words agree with the
    customer's grammatical gender where the locale has patterns for it. Never a bare family name."""
    gender = customer.grammatical_gender
    values = {
        "given": customer.preferred_name
        or customer.given_name
        or (None if customer.family_name else customer.name),
        "family": customer.family_name,
        "full": full_name(customer, settings),
    }
    patterns = settings.salutations
    chats = [p for kind in _kinds(register, gender, True) for p in patterns.get(kind, ())] if chat else []
    candidates: list[str] = []
    if register == "formal" and customer.title and not chat:
        titles = [f"{customer.title}_{gender}", customer.title] if gender else [customer.title]
        candidates += [settings.titled[t] for t in titles if t in settings.titled][:1]
    candidates += chats
    candidates += [p for kind in _kinds(register, gender, False) for p in patterns.get(kind, ())]
    for pattern in candidates:
        names = _PLACEHOLDER.findall(pattern)
        if all(values[n] for n in names):
            # Every name of the pattern has a value (checked above): ``or ""`` never applies.
            return _PLACEHOLDER.sub(lambda m: values[m.group(1)] or "", pattern)
    return ""
