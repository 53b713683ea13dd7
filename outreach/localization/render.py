"""Rendering messages: Jinja templates per journey step and channel, localized with Babel.

One Jinja environment per locale. gettext callables live in an environment's
globals, which every worker thread shares, so they are installed once per
environment and read the register from each render's own context; nothing is
swapped per message. ``{% trans %}`` blocks go further: their text is looked up
for both registers when a template compiles (see CompiledTranslations), and a
render only picks one by the register in its context.
"""

from __future__ import annotations

import threading
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from babel import Locale

from ..customers.profile import Customer
from ..errors import TemplateError
from ..registry import CHANNELS

# The formatting filters live in .filters; the "X as X" names are re-exported for the
# code and tests that read them from this module.
from .filters import CACHES as CACHES
from .filters import FILTERS, GLOBALS, UNSPACED
from .filters import FSI as FSI
from .filters import PDI as PDI
from .filters import _date as _date
from .filters import _relative_text as _relative_text
from .locales import CATALOG_FOLDER, DOMAIN, PSEUDO, LocalesConfig, LocaleSettings, babel_locale, locale_chain
from .messages import CompiledTranslations, Messages, PseudoMessages, compile_catalog, pseudo
from .names import salutation
from .sms import for_sms


@dataclass(frozen=True)
class _LocaleFacts:
    """What every render in one locale needs besides its environment."""

    settings: LocaleSettings
    brand: str
    babel: Locale
    lang: str
    direction: str
    #: What goes between two sentences of a paragraph: a space, none in Japanese and Chinese.
    gap: str


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    text: str
    html: str | None
    locale: str
    register: str
    #: The expressions asked for (an approved template's parameters), rendered in the same context.
    values: tuple[str, ...] = ()


class _Environment(jinja2.Environment):
    """A Jinja environment whose templates see its globals as one plain dict.

    Jinja layers each template's globals over the environment's in a ChainMap,
    which every render copies key by key into the new context. The globals here
    are complete once ``Renderer._build`` returns, so a template takes a
    snapshot when it loads and a render copies a dict.
    """

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        return {**self.globals, **(d or {})}

    def getattr(self, obj: Any, attribute: str) -> Any:
        """``data.order_id``: Jinja tries the attribute first, and on a plain dict that
        raises (and catches) an AttributeError before the key is looked up. A plain dict
        has no attributes but its type's, so any other name goes straight to the key,
        with the same result (and the same undefined when the key is missing)."""
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


class SharedCode(jinja2.BytecodeCache):
    """The compiled code of every template, shared by one renderer's locale environments.

    A compiled ``{% trans %}`` block names its msgid, not its translation (see CompiledTranslations),
    so a template compiles to the same code in every locale: it is parsed and compiled once per
    process instead of once per locale, and a worker's first message in each new language costs a
    render, not a compilation. Code objects are kept as they are (no marshalling).
    """

    def __init__(self) -> None:
        self._codes: dict[tuple[str, str], Any] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        bucket.code = self._codes.get((bucket.key, bucket.checksum))

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._codes[(bucket.key, bucket.checksum)] = bucket.code


#: Every attribute a plain dict has (from its type: instances take none of their own).
_DICT_ATTRIBUTES = frozenset(dir(dict))


#: Whether a template escapes HTML, by its name (asked for every render's context).
_autoescape = lru_cache(maxsize=1024)(jinja2.select_autoescape(["html"]))


def _tidy(text: str) -> str:
    """Trim the blank lines block tags leave behind (at most one empty line in a row)."""
    out: list[str] = []
    for line in text.strip().splitlines():
        line = line.rstrip()
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out)


def _read_templates(folder: Path) -> dict[str, str]:
    """Every template under ``folder`` by its name; hidden files, editor leftovers (``x~``,
    ``.x.swp``) and files that are not UTF-8 text are not templates."""
    sources = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder)
        if not path.is_file() or name.parts[0] == CATALOG_FOLDER or path.name.endswith("~"):
            continue
        if any(part.startswith(".") for part in name.parts):
            continue
        try:
            sources[name.as_posix()] = path.read_text("utf-8")
        except UnicodeDecodeError:
            continue
    return sources


class Renderer:
    """Renders ``templates/<journey>/<step>/[<channel>.]<part>`` for a customer."""

    def __init__(
        self, templates_dir: Path, locales: LocalesConfig, *, compile_translations: bool = True
    ) -> None:
        self.templates_dir = templates_dir
        self.locales = locales
        # The project as it is now, read once: a later edit on disk never reaches this renderer
        # (a reload builds a new one, once the whole project checks out).
        self._sources = _read_templates(Path(templates_dir))
        self._catalogs = {
            path.parent.parent.name: path.read_bytes()
            for path in sorted((Path(templates_dir) / CATALOG_FOLDER).glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
        }
        #: Look {% trans %} text up when a template compiles (False: at every render, as
        #: jinja2.ext.i18n does; the output is the same, tests compare the two).
        self.compile_translations = compile_translations
        self._envs: dict[str, jinja2.Environment] = {}
        self._names: dict[tuple[str, str, str], str | None] = {}
        self._templates: dict[tuple[str, str], jinja2.Template] = {}
        self._facts: dict[str, _LocaleFacts] = {}
        self._code = SharedCode()
        self._lock = threading.Lock()

    def sources_of(self, template: str) -> list[str]:
        """The source of every file of a step's template folder (``onboarding/welcome``)."""
        prefix = template.rstrip("/") + "/"
        return [
            text
            for name, text in self._sources.items()
            if name.startswith(prefix) and "/" not in name[len(prefix) :]
        ]

    def environment(self, tag: str) -> jinja2.Environment:
        env = self._envs.get(tag)
        if env is None:
            with self._lock:
                env = self._envs.get(tag) or self._build(tag)
                self._envs[tag] = env
        return env

    def _build(self, tag: str) -> jinja2.Environment:
        env = _Environment(
            loader=jinja2.DictLoader(self._sources),
            autoescape=_autoescape,
            undefined=jinja2.StrictUndefined,
            extensions=[CompiledTranslations if self.compile_translations else "jinja2.ext.i18n"],
            lstrip_blocks=True,
            # Templates are fixed for the life of a process: no stat() per render.
            auto_reload=False,
            bytecode_cache=self._code,
        )
        if tag == PSEUDO:
            messages: Messages = PseudoMessages()
        else:
            chain = locale_chain(tag, self.locales.default)
            found = [compile_catalog(self._catalogs[t]) for t in chain if t in self._catalogs]
            messages = Messages(found)
        messages.install(env)
        env.filters.update(FILTERS)
        env.globals.update(GLOBALS)
        return env

    def _template(self, tag: str, env: jinja2.Environment, name: str) -> jinja2.Template:
        # Environment.get_template goes through the loader's cache checks each time.
        key = (tag, name)
        template = self._templates.get(key)
        if template is None:
            template = self._templates[key] = env.get_template(name)
        return template

    def _expression(
        self, tag: str, env: jinja2.Environment, template: str, expression: str, values: dict[str, Any]
    ) -> str:
        key = (tag, "{{ " + expression + " }}")
        compiled = self._templates.get(key)
        try:
            if compiled is None:
                compiled = self._templates[key] = env.from_string(key[1])
            return " ".join(compiled.render(values).split())
        except (jinja2.TemplateError, ValueError, KeyError, TypeError) as exc:
            raise TemplateError(f"{template}: parameter {expression!r} failed to render: {exc}") from None

    def _find(self, template: str, channel: str, part: str) -> str | None:
        key = (template, channel, part)
        if key not in self._names:
            self._names[key] = next(
                (
                    name
                    for name in (f"{template}/{channel}.{part}", f"{template}/{part}")
                    if name in self._sources
                ),
                None,
            )
        return self._names[key]

    def _chain(self, tag: str) -> list[str]:
        return [self.locales.default] if tag == PSEUDO else locale_chain(tag, self.locales.default)

    def _facts_for(self, tag: str) -> _LocaleFacts:
        # One entry per environment (the same tags), computed the same way every time.
        facts = self._facts.get(tag)
        if facts is None:
            babel = babel_locale(tag, self.locales.default)
            facts = self._facts[tag] = _LocaleFacts(
                settings=self.locales.settings_for(self._chain(tag)),
                brand=self.locales.brand_for(self._chain(tag)),
                babel=babel,
                lang=str(babel).replace("_", "-"),
                direction="rtl" if babel.character_order == "right-to-left" else "ltr",
                gap="" if babel.language in UNSPACED else " ",
            )
        return facts

    def page(
        self,
        tag: str,
        name: str,
        *,
        register: str,
        gender: str | None,
        zone: str,
        now: datetime,
        **context: Any,
    ) -> tuple[str, str]:
        """A customer page, ``_web/<name>``, in a locale, register and gender: (its HTML, its BCP 47
        language tag)."""
        facts = self._facts_for(tag)
        values = {
            **context,
            "lang": facts.lang,
            "direction": facts.direction,
            "register": register,
            "gender": gender,
            "brand": facts.brand,
            "gap": facts.gap,
            "now": now,
            "_locale": facts.babel,
            "_zone": zone,
        }
        return self._template(tag, self.environment(tag), f"_web/{name}").render(values), facts.lang

    def register_for(self, customer: Customer, tag: str) -> str:
        """The customer's preference, else the locale's configured default."""
        if customer.formality:
            return customer.formality
        return self._facts_for(tag).settings.formality

    def render(
        self,
        template: str,
        channel: str,
        customer: Customer,
        context: dict[str, Any],
        *,
        now: datetime,
        locale: str | None = None,
        register: str | None = None,
        expressions: Sequence[str] = (),
    ) -> Rendered:
        """Render the parts a channel needs (and ``expressions``, Jinja expressions such as
        ``data.new_eta|date``, each to a string); raises TemplateError naming the template."""
        tag = locale or customer.locale
        env = self.environment(tag)
        facts = self._facts_for(tag)
        register = register or customer.formality or facts.settings.formality
        entry = CHANNELS[channel]
        parts = entry.parts
        # A channel without a subject carries chats and texts, not letters.
        opening = salutation(customer, facts.settings, register, chat="subject.txt" not in parts)
        values = {
            **context,
            "customer": customer,
            "channel": channel,
            "register": register,
            "gender": customer.grammatical_gender,
            "brand": facts.brand,
            "salutation": pseudo(opening) if tag == PSEUDO else opening,
            "now": now,
            "lang": facts.lang,
            "direction": facts.direction,
            "gap": facts.gap,
            "_locale": facts.babel,
            "_zone": customer.zone,
        }
        out: dict[str, str] = {}
        for part in parts:
            name = self._find(template, channel, part)
            if name is None:
                raise TemplateError(f"template {template}/{part} for channel {channel} is missing")
            try:
                out[part] = _tidy(self._template(tag, env, name).render(values))
            except TemplateError:
                raise
            except (jinja2.TemplateError, ValueError, KeyError, TypeError) as exc:
                raise TemplateError(f"template {name} failed to render: {exc}") from None
            except Exception as exc:  # noqa: BLE001 - whatever a template does at run time is its error
                why = f"{type(exc).__name__}: {exc}"
                raise TemplateError(f"template {name} failed to render: {why}") from None
        parameters = tuple(self._expression(tag, env, template, e, values) for e in expressions)
        if entry.short_text:
            out["body.txt"] = for_sms(out["body.txt"])
        subject = out.get("subject.txt")
        return Rendered(
            subject=" ".join(subject.split()) if subject is not None else None,
            text=out["body.txt"],
            html=out.get("body.html"),
            locale=tag,
            register=register,
            values=parameters,
        )
