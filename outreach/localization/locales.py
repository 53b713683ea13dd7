"""Translations at run time: locale fallback chains, registers, pseudo-locale.

Catalogs live in ``templates/_locale/<locale>/LC_MESSAGES/messages.po``. Every
message appears twice in a catalog, under the gettext contexts ``formal`` and
``informal``: the register is a dimension of its own. A lookup tries the
customer's register, then the other register, through each catalog of the
locale chain (``pt_BR`` → ``pt`` → ``en``), and ends at the English source
text. It never shows a raw key or an empty string.
"""

from __future__ import annotations

import gettext
import io
import logging
import re
import threading
from collections.abc import Callable
from copy import deepcopy
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from jinja2 import nodes
from jinja2.ext import InternationalizationExtension

from ..configfile import read_toml
from ..errors import ConfigError, InputError
from ..languages import parse_locale
from .filters import format_text

logger = logging.getLogger(__name__)

#: gettext domain of every catalog.
DOMAIN = "messages"
#: Folder under templates/ that holds the catalogs.
CATALOG_FOLDER = "_locale"
#: The two registers, used as gettext contexts.
REGISTERS = ("formal", "informal")
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
    formal: tuple[str, ...]
    informal: tuple[str, ...]
    titled: dict[str, str]


@dataclass(frozen=True)
class LocalesConfig:
    default: str
    shipped: tuple[str, ...]
    sms_max_segments: int
    locales: dict[str, LocaleSettings]
    #: Locales whose catalogs must be complete (``i18n check`` fails for them only); the other
    #: shipped locales fall back, string by string, to the default language.
    required: tuple[str, ...] = ()

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
        patterns = {}
        for register in REGISTERS:
            value = table.get(register)
            if not isinstance(value, list) or not value or not all(isinstance(p, str) for p in value):
                raise fail(f"{tag}.{register}", value, "must list salutation patterns")
            patterns[register] = tuple(value)
        titled = table.get("titled", {})
        if not isinstance(titled, dict):
            raise fail(f"{tag}.titled", titled, "must map titles to patterns")
        for pattern in [*patterns["formal"], *patterns["informal"], *titled.values()]:
            unknown = set(re.findall(r"{(\w*)}", pattern)) - {"given", "family", "full"}
            if unknown:
                raise fail(tag, pattern, f"unknown placeholder {sorted(unknown)[0]!r}")
        locales[tag] = LocaleSettings(
            formality=formality,
            name_order=order,
            separator=table.get("separator", " "),
            formal=patterns["formal"],
            informal=patterns["informal"],
            titled=dict(titled),
        )
    return LocalesConfig(default, tuple(shipped), segments, locales, tuple(required))


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


class CompiledCatalog(gettext.GNUTranslations):
    """A catalog read from a .mo, with what ``GNUTranslations`` sets as it parses (typeshed omits it)."""

    #: msgid (with its context) -> text; a plural form is keyed (msgid, index).
    _catalog: dict[str | tuple[str, int], str]
    #: The plural form index for n (from the catalog's Plural-Forms).
    plural: Callable[[int], int]


@lru_cache(maxsize=64)
def compile_catalog(source: bytes) -> CompiledCatalog:
    """A .po file's bytes, compiled in memory: a fresh clone needs no build step, and a missing
    .mo can never silently turn into untranslated text."""
    catalog = read_po(io.BytesIO(source))
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return CompiledCatalog(buffer)


def load_translations(templates_dir: Path, tag: str) -> CompiledCatalog | None:
    path = catalog_path(templates_dir, tag)
    if not path.exists():
        return None
    return compile_catalog(path.read_bytes())


class Messages:
    """Register-aware lookups through a chain of catalogs; English source text last."""

    def __init__(self, catalogs: list[CompiledCatalog]) -> None:
        self.catalogs = catalogs

    def _find(self, key: Any) -> str | None:
        for catalog in self.catalogs:
            found = catalog._catalog.get(key)  # noqa: SLF001 - exact lookup, no fallback guessing
            if found:
                return found
        return None

    def gettext(self, message: str, register: str) -> str:
        for context in (register, *[r for r in REGISTERS if r != register]):
            found = self._find(f"{context}\x04{message}")
            if found is not None:
                return found
        return message

    def ngettext(self, singular: str, plural: str, n: int, register: str) -> str:
        for context in (register, *[r for r in REGISTERS if r != register]):
            for catalog in self.catalogs:
                key = (f"{context}\x04{singular}", catalog.plural(n))
                found = catalog._catalog.get(key)  # noqa: SLF001
                if found:
                    return found
        return singular if n == 1 else plural

    def install(self, env: jinja2.Environment) -> None:
        """Install callables that read the register from each render's context."""

        @jinja2.pass_context
        def _gettext(ctx, message: str) -> str:
            return self.gettext(message, ctx.get("register", "formal"))

        @jinja2.pass_context
        def _ngettext(ctx, singular: str, plural: str, n: int) -> str:
            return self.ngettext(singular, plural, n, ctx.get("register", "formal"))

        @jinja2.pass_context
        def _pgettext(ctx, context: str, message: str) -> str:
            return self.gettext(message, context)

        @jinja2.pass_context
        def _npgettext(ctx, context: str, singular: str, plural: str, n: int) -> str:
            return self.ngettext(singular, plural, n, context)

        # The i18n extension adds this method to the environment at run time (Environment.extend).
        env.install_gettext_callables(  # type: ignore[attr-defined]
            _gettext, _ngettext, newstyle=True, pgettext=_pgettext, npgettext=_npgettext
        )
        # For CompiledTranslations: {% trans %} blocks look their text up as they compile.
        env.filters[TEXT] = self._text
        env.filters[FORMAT] = format_text
        env.filters[PLURAL] = self._plural
        env.outreach_messages = self  # type: ignore[attr-defined]

    def _text(self, register: Any, formal: str, informal: str, message: str, bare: bool) -> str:
        """A compiled block's text for the register (looked up now for an unusual one)."""
        if isinstance(register, str):
            if register == "formal":
                return formal
            if register == "informal":
                return informal
        text = self.gettext(message, register)
        return text % {} if bare else text

    def _plural(self, n: int, singular: str, plural: str, register: Any) -> str:
        return self.ngettext(singular, plural, n, register)


#: Filters through which compiled {% trans %} blocks pick their text by register, look up
#: plural forms and fill in their variables (plain calls: no gettext wrappers, no derived contexts).
TEXT, PLURAL, FORMAT = "_outreach_text", "_outreach_plural", "_outreach_format"


class CompiledTranslations(InternationalizationExtension):
    """``{% trans %}`` with the text looked up once, when a template compiles.

    An environment serves one locale, and the catalogs of its Messages never
    change, so the translation of a constant msgid is known per register before
    any render: a block compiles to the formal and the informal text and picks
    one by the ``register`` in the render's context (``formal`` when there is
    none), with no gettext call. Any other register is looked up at render
    time. Plural blocks choose their form at render time (it depends on the
    count), through a plain call that reads the register the same way.

    The output is what ``jinja2.ext.i18n`` with newstyle gettext gives: the
    text marked safe when the template autoescapes, then ``% variables``
    (escaping each value), ``%%`` turned into ``%`` even without variables.
    """

    def _make_node(
        self,
        singular: str,
        plural: str | None,
        context: str | None,
        variables: dict[str, nodes.Expr],
        plural_expr: nodes.Expr | None,
        vars_referenced: bool,
        num_called_num: bool,
    ) -> nodes.Output:
        node = super()._make_node(
            singular, plural, context, variables, plural_expr, vars_referenced, num_called_num
        )
        messages: Messages | None = getattr(self.environment, "outreach_messages", None)
        newstyle = getattr(self.environment, "newstyle_gettext", False)
        if messages is None or context is not None or not newstyle:
            return node
        if plural_expr is not None:
            if not isinstance(plural_expr, nodes.Name):
                return node  # evaluated once per use, like jinja2.ext.i18n does: keep its path
            values = dict(variables)
            values.setdefault("num", deepcopy(plural_expr))
            form = _filter(PLURAL, deepcopy(plural_expr), singular, plural, _register_or_formal())
            return nodes.Output([_format(form, values)])
        texts = {}
        for register in REGISTERS:
            texts[register] = messages.gettext(singular, register)
            if not variables:
                try:
                    texts[register] %= {}
                except (KeyError, ValueError, TypeError):
                    return node  # fails at render time, as it does without compiling
        text = _filter(
            TEXT, _register_or_formal(), texts["formal"], texts["informal"], singular, not variables
        )
        return nodes.Output([_format(text, variables)])


def _register_or_formal() -> nodes.Expr:
    """``ctx.get("register", "formal")`` as an expression (a variable set in the template counts)."""
    register = nodes.Name("register", "load")
    defined = nodes.Test(nodes.Name("register", "load"), "defined", [], [], None, None)
    return nodes.CondExpr(defined, register, nodes.Const("formal"))


def _filter(name: str, value: nodes.Expr, *args: Any) -> nodes.Expr:
    arguments = [a if isinstance(a, nodes.Expr) else nodes.Const(a) for a in args]
    return nodes.Filter(value, name, arguments, [], None, None)


def _format(text: nodes.Expr, variables: dict[str, nodes.Expr]) -> nodes.Expr:
    """Safe when autoescaping, then formatted with the variables (if any): ``format_text``."""
    if not variables:
        return nodes.MarkSafeIfAutoescape(text)
    values = nodes.Dict([nodes.Pair(nodes.Const(k), v) for k, v in variables.items()])
    return _filter(FORMAT, text, values)


_ACCENTS = str.maketrans(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "àƀçđéƒĝĥîĵķĺɱñöþǫŕšţûṽŵẋýžÀƁÇĐÉƑĜĤÎĴĶĹṀÑÖÞǪŔŠŢÛṼŴẊÝŽ",
)
_PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sd]|%%")


def pseudo(text: str) -> str:
    """Accented and about 40 % longer, in brackets: untranslated text stands out next to it."""
    parts: list[str] = []
    last = 0
    for match in _PLACEHOLDER.finditer(text):
        parts.append(text[last : match.start()].translate(_ACCENTS))
        parts.append(match.group())
        last = match.end()
    parts.append(text[last:].translate(_ACCENTS))
    body = "".join(parts)
    padding = "~" * max(1, len(text) * 2 // 5)
    return f"⟦{body}{padding}⟧"


class PseudoMessages(Messages):
    def __init__(self) -> None:
        super().__init__([])

    def gettext(self, message: str, register: str) -> str:
        return pseudo(message)

    def ngettext(self, singular: str, plural: str, n: int, register: str) -> str:
        return pseudo(singular if n == 1 else plural)


def babel_locale(tag: str, default: str = "en") -> Locale:
    """The Babel locale for formatting (the pseudo-locale formats as English)."""
    if tag == PSEUDO:
        return parse_locale(default)
    try:
        return parse_locale(tag)
    except InputError:
        return parse_locale(default)
