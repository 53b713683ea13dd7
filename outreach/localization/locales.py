"""The locales a project ships (``config/locales.toml``), their fallback chains, registers and
grammatical genders, and the Babel locale each one formats with.

Catalogs live in ``templates/_locale/<locale>/LC_MESSAGES/messages.po``; how a message is looked up
in them is ``.messages``.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from babel import Locale

from ..configfile import read_toml
from ..errors import ConfigError, InputError
from ..languages import parse_locale
from ..registry import TITLES

logger = logging.getLogger(__name__)

#: gettext domain of every catalog.
DOMAIN = "messages"
#: Folder under templates/ that holds the catalogs.
CATALOG_FOLDER = "_locale"
#: The two registers, used as gettext contexts.
REGISTERS = ("formal", "informal")
#: The grammatical genders a context may add to its register (``informal.f``).
GENDERS = ("f", "m")
#: Every gettext context a catalog may hold: a register, alone or with a gender.
VOICES = (*REGISTERS, *(f"{r}.{g}" for r in REGISTERS for g in GENDERS))
#: The locale tag that renders pseudo-translations (accented, lengthened).
PSEUDO = "pseudo"


def catalog_path(templates_dir: Path, locale: str) -> Path:
    return templates_dir / CATALOG_FOLDER / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@dataclass(frozen=True)
class LocaleSettings:
    """What ``config/locales.toml`` says about one locale."""

    formality: str
    name_order: str
    separator: str
    #: Salutation patterns tried in order, by kind (SALUTATION_KINDS): ``formal``, ``informal``,
    #: with a gender (``formal_f``) and for chats and texts (``chat_informal``, ``chat_formal_m``).
    salutations: dict[str, tuple[str, ...]]
    #: The formal salutation for a title (``dr``), and for a title with a gender (``dr_f``).
    titled: dict[str, str]
    #: The name messages sign with in this locale, where it differs from the project's.
    brand: str | None = None


#: Every kind of salutation list a locale may give; ``formal`` and ``informal`` are required.
SALUTATION_KINDS = tuple(
    f"{chat}{register}{gender}"
    for chat in ("", "chat_")
    for register in REGISTERS
    for gender in ("", *(f"_{g}" for g in GENDERS))
)
#: What else a locale's table may say.
_LOCALE_KEYS = ("formality", "name_order", "separator", "titled", "brand")


@dataclass(frozen=True)
class LocalesConfig:
    default: str
    shipped: tuple[str, ...]
    sms_max_segments: int
    locales: dict[str, LocaleSettings]
    #: Locales whose catalogs must be complete (``i18n check`` fails for them only); the other
    #: shipped locales fall back, string by string, to the default language.
    required: tuple[str, ...] = ()
    #: The name messages sign with (``brand`` in templates); a locale may give its own.
    brand: str = "Outreach"

    def brand_for(self, chain: list[str]) -> str:
        """The brand of the most specific locale of the chain that names one, else the project's."""
        for tag in chain:
            settings = self.locales.get(tag)
            if settings is not None and settings.brand:
                return settings.brand
        return self.brand

    def settings_for(self, chain: list[str]) -> LocaleSettings:
        for tag in chain:
            if tag in self.locales:
                return self.locales[tag]
        return self.locales[self.default]


def load_locales(config_dir: Path) -> LocalesConfig:
    """Read and validate ``config/locales.toml``; errors name file, key and value."""
    path = config_dir / "locales.toml"
    data = read_toml(path, missing="it lists the shipped locales")

    def fail(key: str, value: object, problem: str) -> ConfigError:
        return ConfigError(f"{path}: {key}={value!r}: {problem}")

    shipped = data.get("shipped")
    if not isinstance(shipped, list) or not shipped:
        raise fail("shipped", shipped, "must list locale tags")
    default = data.get("default", "en")
    if default not in shipped:
        raise fail("default", default, "must be one of the shipped locales")
    required = data.get("required", shipped)
    if not isinstance(required, list) or any(tag not in shipped for tag in required):
        raise fail("required", required, "must list shipped locales (default: all of them)")
    brand = data.get("brand", "Outreach")
    if not isinstance(brand, str) or not brand.strip():
        raise fail("brand", brand, "must name the sender of the messages")
    segments = data.get("sms_max_segments", 3)
    if not isinstance(segments, int) or segments < 1:
        raise fail("sms_max_segments", segments, "must be a whole number >= 1")
    locales: dict[str, LocaleSettings] = {}
    for tag in shipped:
        try:
            parse_locale(tag)
        except InputError:
            raise fail("shipped", tag, "not a known locale") from None
        table = data.get(tag)
        if not isinstance(table, dict):
            raise fail(tag, table, "every shipped locale needs a table")
        formality = table.get("formality")
        if formality not in REGISTERS:
            raise fail(f"{tag}.formality", formality, "must be 'formal' or 'informal'")
        order = table.get("name_order", "given_family")
        if order not in ("given_family", "family_given"):
            raise fail(f"{tag}.name_order", order, "must be 'given_family' or 'family_given'")
        unknown_keys = set(table) - set(SALUTATION_KINDS) - set(_LOCALE_KEYS)
        if unknown_keys:
            key = sorted(unknown_keys)[0]
            known = ", ".join((*_LOCALE_KEYS, *SALUTATION_KINDS))
            raise fail(f"{tag}.{key}", table[key], f"unknown key (known: {known})")
        patterns = {}
        for kind in SALUTATION_KINDS:
            value = table.get(kind)
            if value is None and kind not in REGISTERS:
                continue
            if not isinstance(value, list) or not value or not all(isinstance(p, str) for p in value):
                raise fail(f"{tag}.{kind}", value, "must list salutation patterns")
            patterns[kind] = tuple(value)
        titled = table.get("titled", {})
        if not isinstance(titled, dict) or not all(isinstance(p, str) for p in titled.values()):
            raise fail(f"{tag}.titled", titled, "must map titles to patterns")
        for title in titled:
            name, _, gender = title.partition("_")
            if name not in TITLES or (gender and gender not in GENDERS):
                raise fail(f"{tag}.titled", title, f"not a title ({', '.join(TITLES)}, or one with _f or _m)")
        for pattern in [*(p for ps in patterns.values() for p in ps), *titled.values()]:
            unknown = set(re.findall(r"{(\w*)}", pattern)) - {"given", "family", "full"}
            if unknown:
                raise fail(tag, pattern, f"unknown placeholder {sorted(unknown)[0]!r}")
        own_brand = table.get("brand")
        if own_brand is not None and (not isinstance(own_brand, str) or not own_brand.strip()):
            raise fail(f"{tag}.brand", own_brand, "must name the sender of the messages")
        locales[tag] = LocaleSettings(
            formality=formality,
            name_order=order,
            separator=table.get("separator", " "),
            salutations=patterns,
            titled=dict(titled),
            brand=own_brand,
        )
    return LocalesConfig(default, tuple(shipped), segments, locales, tuple(required), brand)


_unknown_logged: set[str] = set()
_unknown_lock = threading.Lock()


@lru_cache(maxsize=1024)
def _chain(tag: str, default: str) -> tuple[str, ...]:
    locale = parse_locale(tag)
    chain = [str(locale), f"{locale.language}_{locale.script}" if locale.script else locale.language]
    if default not in chain:
        chain.append(default)
    return tuple(dict.fromkeys(chain))


def locale_chain(tag: str, default: str = "en") -> list[str]:
    """Catalog tags to try for a locale, most specific first, ending at the default.

    ``pt_BR`` → pt_BR, pt, en; ``zh_Hant_TW`` → zh_Hant_TW, zh_Hant, en (never plain
    ``zh``, which would be the other script). An unknown locale falls back to the
    default and is logged once.
    """
    try:
        return list(_chain(tag, default))
    except InputError:
        with _unknown_lock:
            if tag not in _unknown_logged:
                _unknown_logged.add(tag)
                logger.warning("unknown locale %r: using %r", tag, default)
        return [default]


def babel_locale(tag: str, default: str = "en") -> Locale:
    """The Babel locale for formatting (the pseudo-locale formats as English)."""
    if tag == PSEUDO:
        return parse_locale(default)
    try:
        return parse_locale(tag)
    except InputError:
        return parse_locale(default)
