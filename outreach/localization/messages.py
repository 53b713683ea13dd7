"""Translations at run time: lookups by register and grammatical gender through a chain of catalogs,
``{% trans %}`` blocks looked up as they compile, and the pseudo-locale.

Every message appears twice in a catalog, under the gettext contexts ``formal`` and ``informal``:
the register is a dimension of its own. Those texts are written so that they need no grammatical
gender. Where a language has a better word for a woman or a man (an Arabic imperative, a Polish
past tense), the catalog may add the message under ``formal.f``, ``informal.m`` and so on
(``locales.VOICES``).

A lookup tries the customer's register, through each catalog of the locale chain (``pt_BR`` → ``pt``
→ ``en``), in each catalog the text with the customer's gender before the neutral one; then the
other register the same way; and ends at the English source text. It never shows a raw key or an
empty string.
"""

from __future__ import annotations

import gettext
import io
import re
from collections.abc import Callable
from copy import deepcopy
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from jinja2 import nodes
from jinja2.ext import InternationalizationExtension

from .filters import format_text
from .locales import REGISTERS, VOICES, catalog_path


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


@lru_cache(maxsize=64)
def voices(register: str, gender: str | None) -> tuple[tuple[str, ...], ...]:
    """The gettext contexts a lookup tries, by register: the customer's register first, then the other
    one; within each, the register with the gender before the register alone
    (``(("informal.f", "informal"), ("formal.f", "formal"))``)."""
    registers = (register, *[r for r in REGISTERS if r != register])
    return tuple((f"{r}.{gender}", r) if gender else (r,) for r in registers)


class Messages:
    """Register-aware lookups through a chain of catalogs; English source text last.

    The register decides first (a text in the customer's register, from any catalog of the chain,
    beats one in the other register), then the catalog (the most specific locale's text beats its
    parent's), then the gender (within one catalog, the gendered text beats the neutral one). So an
    ``es_419`` catalog's neutral text wins over the gendered text of its parent ``es``.
    """

    def __init__(self, catalogs: list[CompiledCatalog]) -> None:
        self.catalogs = catalogs
        #: (msgid, bare) -> its text for every voice (VOICES), filled as blocks first render; None
        #: where a voice's text does not format bare (that render fails, as it does uncompiled).
        self._voices: dict[tuple[str, bool], tuple[str, ...] | None] = {}

    def gettext(self, message: str, register: str, gender: str | None = None) -> str:
        for tried in voices(register, gender):
            for catalog in self.catalogs:
                for context in tried:
                    found = catalog._catalog.get(f"{context}\x04{message}")  # noqa: SLF001 - exact lookup
                    if found:
                        return found
        return message

    def ngettext(self, singular: str, plural: str, n: int, register: str, gender: str | None = None) -> str:
        for tried in voices(register, gender):
            for catalog in self.catalogs:
                form = catalog.plural(n)
                for context in tried:
                    found = catalog._catalog.get((f"{context}\x04{singular}", form))  # noqa: SLF001
                    if found:
                        return found
        return singular if n == 1 else plural

    def install(self, env: jinja2.Environment) -> None:
        """Install callables that read the register and gender from each render's context."""

        @jinja2.pass_context
        def _gettext(ctx, message: str) -> str:
            return self.gettext(message, ctx.get("register", "formal"), ctx.get("gender"))

        @jinja2.pass_context
        def _ngettext(ctx, singular: str, plural: str, n: int) -> str:
            return self.ngettext(singular, plural, n, ctx.get("register", "formal"), ctx.get("gender"))

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

    def texts(self, message: str) -> tuple[str, ...]:
        """A message's text for every voice, in the order of VOICES."""
        return tuple(self.gettext(message, *voice.partition(".")[::2]) for voice in VOICES)

    def _voices_of(self, message: str, bare: bool) -> tuple[str, ...] | None:
        key = (message, bare)
        if key not in self._voices:
            texts: tuple[str, ...] | None = self.texts(message)
            if bare and texts is not None:
                try:
                    texts = tuple(text % {} for text in texts)
                except (KeyError, ValueError, TypeError):
                    texts = None
            self._voices[key] = texts  # the same value whichever thread writes it
        return self._voices[key]

    def _text(self, register: Any, gender: Any, message: str, bare: bool) -> str:
        """A block's text for the register and gender: from this locale's table of texts by voice,
        built once per message (looked up now for an unusual register)."""
        if isinstance(register, str):
            index = _VOICE_INDEX.get(f"{register}.{gender}" if gender else register)
            texts = self._voices.get((message, bare)) or self._voices_of(message, bare)
            if index is not None and texts is not None:
                return texts[index]
        text = self.gettext(message, register, gender)
        return text % {} if bare else text

    def _plural(self, n: int, singular: str, plural: str, register: Any, gender: Any) -> str:
        return self.ngettext(singular, plural, n, register, gender)


#: Where each voice's text sits in a message's tuple of texts.
_VOICE_INDEX = {voice: i for i, voice in enumerate(VOICES)}

#: Filters through which compiled {% trans %} blocks pick their text by register, look up
#: plural forms and fill in their variables (plain calls: no gettext wrappers, no derived contexts).
TEXT, PLURAL, FORMAT = "_outreach_text", "_outreach_plural", "_outreach_format"


class CompiledTranslations(InternationalizationExtension):
    """``{% trans %}`` with the text looked up once per locale, not once per render.

    An environment serves one locale, and the catalogs of its Messages never
    change, so the translation of a constant msgid is known per voice (register
    and gender) once it has been looked up: a block compiles to a plain call
    with its msgid, which picks the text from the locale's table by the
    ``register`` and ``gender`` in the render's context (``formal`` and none
    when there are none), with no gettext call after the first. Any other
    register is looked up at render time. Plural blocks choose their form at
    render time (it depends on the count), through a plain call that reads the
    register and gender the same way. The compiled code names no translation,
    so every locale's environment runs the same code (``render.SharedCode``).

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
            form = _filter(PLURAL, deepcopy(plural_expr), singular, plural, _register_or_formal(), _gender())
            return nodes.Output([_format(form, values)])
        text = _filter(TEXT, _register_or_formal(), _gender(), singular, not variables)
        return nodes.Output([_format(text, variables)])


def _register_or_formal() -> nodes.Expr:
    """``ctx.get("register", "formal")`` as an expression (a variable set in the template counts)."""
    register = nodes.Name("register", "load")
    defined = nodes.Test(nodes.Name("register", "load"), "defined", [], [], None, None)
    return nodes.CondExpr(defined, register, nodes.Const("formal"))


def _gender() -> nodes.Expr:
    """``ctx.get("gender")`` as an expression: ``f``, ``m`` or none."""
    defined = nodes.Test(nodes.Name("gender", "load"), "defined", [], [], None, None)
    return nodes.CondExpr(defined, nodes.Name("gender", "load"), nodes.Const(None))


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

    def gettext(self, message: str, register: str, gender: str | None = None) -> str:
        return pseudo(message)

    def ngettext(self, singular: str, plural: str, n: int, register: str, gender: str | None = None) -> str:
        return pseudo(singular if n == 1 else plural)
