"""Rendering messages: Jinja templates per journey step and channel, Babel formatting per locale.

One Jinja environment per locale: gettext callables are installed into an
environment's globals, which all worker threads share, so they are never
swapped per message.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import jinja2
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from babel.support import Translations

from .errors import TemplateError
from .models import Customer, parse_locale
from .timing import zone


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    text: str
    html: str | None


def _instant(value: Any) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise TemplateError(f"naive datetime {value!r}: give it a UTC offset")
        return value
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise TemplateError(f"not an ISO 8601 instant: {value!r}") from None
        if parsed.tzinfo is None:
            raise TemplateError(f"instant without a UTC offset: {value!r}")
        return parsed
    raise TemplateError(f"not an instant: {value!r}")


def _date(value: Any) -> date:
    if isinstance(value, str) and len(value) == 10:
        return date.fromisoformat(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    return _instant(value)


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise TemplateError(f"not a number: {value!r}") from None


@jinja2.pass_context
def _format_date(ctx, value, format: str = "long") -> str:
    value = _date(value)
    if isinstance(value, datetime):
        value = value.astimezone(zone(ctx["_zone"])).date()
    return babel_dates.format_date(value, format=format, locale=ctx["_locale"])


@jinja2.pass_context
def _format_datetime(ctx, value, format: str = "medium") -> str:
    return babel_dates.format_datetime(
        _instant(value), format=format, tzinfo=zone(ctx["_zone"]), locale=ctx["_locale"]
    )


@jinja2.pass_context
def _format_time(ctx, value, format: str = "short") -> str:
    return babel_dates.format_time(
        _instant(value), format=format, tzinfo=zone(ctx["_zone"]), locale=ctx["_locale"]
    )


@jinja2.pass_context
def _money(ctx, amount, currency: str) -> str:
    return babel_numbers.format_currency(_decimal(amount), currency, locale=ctx["_locale"])


@jinja2.pass_context
def _number(ctx, value) -> str:
    return babel_numbers.format_decimal(_decimal(value), locale=ctx["_locale"])


def _tidy(text: str) -> str:
    """Trim the blank lines block tags leave behind (at most one empty line in a row)."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out)


class Renderer:
    """Renders ``templates/<journey>/<step>/[<channel>.]<part>`` for a customer."""

    def __init__(self, templates_dir: Path, default_locale: str = "en") -> None:
        self.templates_dir = templates_dir
        self.default_locale = default_locale
        self._envs: dict[str, jinja2.Environment] = {}
        self._lock = threading.Lock()

    def environment(self, locale: str) -> jinja2.Environment:
        env = self._envs.get(locale)
        if env is None:
            with self._lock:
                env = self._envs.get(locale) or self._build(locale)
                self._envs[locale] = env
        return env

    def _build(self, locale: str) -> jinja2.Environment:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.templates_dir),
            autoescape=jinja2.select_autoescape(["html"]),
            undefined=jinja2.StrictUndefined,
            extensions=["jinja2.ext.i18n"],
            trim_blocks=False,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        catalogs = self.templates_dir.parent / "locale"
        translations = Translations.load(str(catalogs), [locale, self.default_locale])
        env.install_gettext_translations(translations, newstyle=True)
        env.filters.update(
            date=_format_date,
            datetime=_format_datetime,
            time=_format_time,
            money=_money,
            number=_number,
        )
        return env

    def _find(self, template: str, channel: str, part: str) -> str | None:
        for name in (f"{template}/{channel}.{part}", f"{template}/{part}"):
            if (self.templates_dir / name).exists():
                return name
        return None

    def render(self, template: str, channel: str, customer: Customer, context: dict[str, Any]) -> Rendered:
        """Render the parts a channel needs; raises TemplateError naming the template."""
        locale = parse_locale(customer.locale)
        env = self.environment(str(locale))
        values = {
            **context,
            "customer": customer,
            "channel": channel,
            "lang": str(locale).replace("_", "-"),
            "direction": "rtl" if locale.character_order == "right-to-left" else "ltr",
            "_locale": locale,
            "_zone": customer.zone,
        }
        parts = ("subject.txt", "body.txt", "body.html") if channel == "email" else ("body.txt",)
        out: dict[str, str | None] = {}
        for part in parts:
            name = self._find(template, channel, part)
            if name is None:
                raise TemplateError(f"template {template}/{part} for channel {channel} is missing")
            try:
                out[part] = _tidy(env.get_template(name).render(values))
            except TemplateError:
                raise
            except jinja2.TemplateError as exc:
                raise TemplateError(f"template {name} failed to render: {exc}") from None
            except (ValueError, KeyError, TypeError) as exc:
                raise TemplateError(f"template {name} failed to render: {exc}") from None
        subject = out.get("subject.txt")
        return Rendered(
            subject=" ".join(subject.split()) if subject is not None else None,
            text=out["body.txt"] or "",
            html=out.get("body.html"),
        )
