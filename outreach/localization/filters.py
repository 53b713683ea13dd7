"""Babel formatting for templates: the Jinja filters for dates, times, relative times, money, numbers,
percentages and lists, the bidi isolation of left-to-right values, and the memos behind them.

A filter reads the Babel locale and the customer's time zone from the render's
context (``_locale``, ``_zone``), so one set serves every environment.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import jinja2
from babel import Locale
from babel import dates as babel_dates
from babel import lists as babel_lists
from babel import numbers as babel_numbers
from jinja2 import nodes
from markupsafe import Markup, escape

from ..errors import TemplateError
from ..links import untracked
from ..timing import zone

#: Unicode first-strong isolate and pop directional isolate, for plain text.
FSI, PDI = "\u2068", "\u2069"


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


def _date(value: Any) -> date | datetime:
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise TemplateError(f"not an ISO 8601 date: {value!r}") from None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    return _instant(value)


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise TemplateError(f"not a number: {value!r}") from None


# Babel formatting is the dearest part of a render, and a batch of messages
# formats the same few dates and amounts again and again: memoize per locale.
@lru_cache(maxsize=4096)
def _date_text(value: Any, format: str, locale: Locale, zone_name: str) -> str:
    value = _date(value)
    if isinstance(value, datetime):
        value = value.astimezone(zone(zone_name)).date()
    return _first_of_month(babel_dates.format_date(value, format=format, locale=locale), value.day, locale)


#: A day number 1 standing before a month's name (not a digit of 01/04/2026).
_FIRST_OF_MONTH = re.compile(r"(?<![\d/.])1 (?=[^\d\s])")


def _first_of_month(text: str, day: int, locale: Locale) -> str:
    """French writes the first of a month as an ordinal before its name: « 1er avril »."""
    if day == 1 and locale.language == "fr":
        return _FIRST_OF_MONTH.sub("1er ", text, count=1)
    return text


@lru_cache(maxsize=4096)
def _datetime_text(value: Any, format: str, locale: Locale, zone_name: str, kind: str) -> str:
    instant = _instant(value)
    if kind == "time":
        return babel_dates.format_time(instant, format=format, tzinfo=zone(zone_name), locale=locale)
    text = babel_dates.format_datetime(instant, format=format, tzinfo=zone(zone_name), locale=locale)
    return _first_of_month(text, instant.astimezone(zone(zone_name)).day, locale)


#: A count CLDR puts in brackets after a word that already says it (Hebrew ``בעוד יום (1)``).
_COUNT_IN_BRACKETS = re.compile(r"\s*\(\d+\)")


def day_names(locale: Locale) -> dict[int, str]:
    """CLDR's names of the days around today, by offset (``-1``: yesterday, ``2``: the day after
    tomorrow, where the language has a word for it)."""
    return dict(locale._data["date_fields"]["day"]["relative"])  # noqa: SLF001 - Babel has no accessor


# A relative date depends on "now", which differs for every message of a batch;
# keyed by what the text is made of instead (whole days, or the exact timedelta).
@lru_cache(maxsize=4096)
def _relative_days(days: int, locale: Locale) -> str:
    """Today, tomorrow, the day after (CLDR's own words where it has them), else "in 5 days"."""
    named = day_names(locale).get(days)
    if named is not None:
        return named
    text = babel_dates.format_timedelta(
        timedelta(days=days), granularity="day", threshold=365, add_direction=True, locale=locale
    )
    return _COUNT_IN_BRACKETS.sub("", text)


@lru_cache(maxsize=4096)
def _relative_delta(delta: timedelta, locale: Locale) -> str:
    return _COUNT_IN_BRACKETS.sub("", babel_dates.format_timedelta(delta, add_direction=True, locale=locale))


def _relative_text(value: Any, now: datetime, locale: Locale, zone_name: str) -> str:
    value = _date(value)
    if isinstance(value, datetime):
        return _relative_delta(value - now, locale)
    return _relative_days((value - now.astimezone(zone(zone_name)).date()).days, locale)


def currency_spaced(text: str, symbol: str) -> str:
    """CLDR's currency spacing, which Babel leaves out: a currency symbol that is not a sign (a
    code such as ``EUR`` or ``CHF``) is kept apart from the digits by a no-break space, so es_MX
    writes ``EUR 10.00``, not ``EUR10.00`` (``€10.00`` stays as it is)."""
    if not symbol or not (symbol[0].isalpha() or symbol[-1].isalpha()):
        return text
    at = text.find(symbol)
    if at < 0:
        return text
    end = at + len(symbol)
    if symbol[-1].isalpha() and end < len(text) and text[end].isdigit():
        return f"{text[:end]}\u00a0{text[end:]}"
    if symbol[0].isalpha() and at > 0 and text[at - 1].isdigit():
        return f"{text[:at]}\u00a0{text[at:]}"
    return text


def _groups_from_five_digits(locale: Locale) -> bool:
    """CLDR's ``minimumGroupingDigits`` of 2, which Babel does not read: Spanish (of Spain), Polish
    and European Portuguese write 2000 and 20 000, not 2.000 or 2 000. Latin American Spanish groups
    from four digits, as CLDR has it."""
    if locale.language == "es":
        return locale.territory in (None, "ES", "EA", "IC")
    return locale.language == "pl" or (locale.language, locale.territory) == ("pt", "PT")


def _grouped(text: str, locale: Locale) -> str:
    """A number's text with a four-digit whole part (as written, after rounding) left ungrouped where
    the locale says so."""
    if not _groups_from_five_digits(locale):
        return text
    group = babel_numbers.get_group_symbol(locale)
    whole = text.split(babel_numbers.get_decimal_symbol(locale), 1)[0]
    if whole.count(group) == 1 and sum(ch.isdigit() for ch in whole) == 4:
        return text.replace(group, "", 1)
    return text


@lru_cache(maxsize=4096)
def _number_text(value: Any, kind: str, locale: Locale, currency: str = "") -> str:
    amount = _decimal(value)
    if kind == "money":
        text = _grouped(babel_numbers.format_currency(amount, currency, locale=locale), locale)
        return currency_spaced(text, babel_numbers.get_currency_symbol(currency, locale))
    if kind == "percent":
        return babel_numbers.format_percent(amount, locale=locale)
    return _grouped(babel_numbers.format_decimal(amount, locale=locale), locale)


#: Every memo a render reads from (tests empty them to compare against cold renders).
CACHES = (_date_text, _datetime_text, _relative_days, _relative_delta, _number_text)


def _key(value: Any) -> Any:
    """A hashable stand-in for a value (lists and dicts are formatted uncached)."""
    try:
        hash(value)
    except TypeError:
        return None
    return value


@jinja2.pass_context
def _format_date(ctx, value, format: str = "long") -> str:
    if _key(value) is None:
        raise TemplateError(f"not a date: {value!r}")
    return _date_text(value, format, ctx["_locale"], ctx["_zone"])


@jinja2.pass_context
def _format_datetime(ctx, value, format: str = "medium") -> str:
    if _key(value) is None:
        raise TemplateError(f"not an instant: {value!r}")
    return _datetime_text(value, format, ctx["_locale"], ctx["_zone"], "datetime")


@jinja2.pass_context
def _format_time(ctx, value, format: str = "short") -> str:
    if _key(value) is None:
        raise TemplateError(f"not an instant: {value!r}")
    return _datetime_text(value, format, ctx["_locale"], ctx["_zone"], "time")


@jinja2.pass_context
def _relative(ctx, value) -> str:
    """'in 3 days' / 'vor 2 Stunden': a date counts in whole local days from the send's local date."""
    if _key(value) is None:
        raise TemplateError(f"not a date: {value!r}")
    return _relative_text(value, ctx["now"], ctx["_locale"], ctx["_zone"])


@jinja2.pass_context
def _money(ctx, amount, currency: str) -> str:
    return _number_text(str(amount), "money", ctx["_locale"], str(currency))


@jinja2.pass_context
def _number(ctx, value) -> str:
    return _number_text(str(value), "decimal", ctx["_locale"])


@jinja2.pass_context
def _percent(ctx, value) -> str:
    return _number_text(str(value), "percent", ctx["_locale"])


@jinja2.pass_context
def _list(ctx, values, style: str = "standard") -> str:
    # Babel types ``style`` as a Literal of its style names; a template passes a plain string,
    # which Babel checks itself (ValueError for an unknown style).
    return babel_lists.format_list(
        [str(v) for v in values],
        style=style,  # type: ignore[arg-type]
        locale=ctx["_locale"],
    )


@jinja2.pass_context
def _ltr(ctx, value) -> str:
    """Isolate a left-to-right value (order number, email, URL) inside right-to-left text."""
    if ctx["direction"] != "rtl":
        return value
    if ctx.eval_ctx.autoescape:
        return Markup(f'<bdi dir="ltr">{escape(value)}</bdi>')
    return f"{FSI}{value}{PDI}"


#: Languages that write one sentence straight after another, with no space between.
UNSPACED = frozenset({"ja", "zh"})


_BDI_OPEN = re.compile(r'<bdi dir="ltr">')
_TAG = re.compile(r"<[^>]*>")


def plain_text(value: Any) -> Markup:
    """HTML made fit for a context that shows no markup, such as ``<title>``: each ``<bdi>`` the
    ``ltr`` filter wrote becomes a pair of Unicode isolates, and every other tag is dropped (the
    text stays escaped; a plain string is escaped first)."""
    text = str(escape(value))  # a plain string is escaped; Markup is kept as it is
    if "<" not in text:
        return Markup(text)
    return Markup(_TAG.sub("", _BDI_OPEN.sub(FSI, text).replace("</bdi>", PDI)))


def _days_between(start, end) -> int:
    return (_date(end) - _date(start)).days


#: The filters every environment gets, by the name templates use.
FILTERS: dict[str, Callable[..., Any]] = {
    "date": _format_date,
    "datetime": _format_datetime,
    "time": _format_time,
    "relative": _relative,
    "money": _money,
    "number": _number,
    "percent": _percent,
    "list": _list,
    "ltr": _ltr,
    "plain_text": plain_text,
}
#: The functions every environment gets as globals.
#: ``track(url)``: a message being delivered gets its own (``links.tracker``); a preview or a check
#: renders the URL as it is.
GLOBALS: dict[str, Any] = {"days_between": _days_between, "track": untracked}


#: The directives ``format_text`` fills itself: ``%(name)s`` (its name captured) and ``%%``.
_PLAIN_DIRECTIVE = re.compile(r"%\(([^)]*)\)s|%%")


@lru_cache(maxsize=4096)
def _plain(text: str) -> tuple[str, ...] | None:
    """The names a text's ``%(name)s`` directives use, in the order of first use, when every ``%``
    directive of it is ``%(name)s`` or ``%%``; None otherwise."""
    if "%" in _PLAIN_DIRECTIVE.sub("", text):
        return None
    return tuple(dict.fromkeys(m.group(1) for m in _PLAIN_DIRECTIVE.finditer(text) if m.group(1) is not None))


@jinja2.pass_eval_context
def format_text(eval_ctx: nodes.EvalContext, text: str, values: dict[str, Any]) -> str:
    """``Markup(text) % values`` when autoescaping (``text % values`` otherwise), the way
    jinja2.ext.i18n formats a block. For the usual ``%(name)s`` directives, the values the text
    uses (only those: a translation may leave one out, and an undefined one must not be touched)
    are escaped first, in the order markupsafe would, and formatted by ``str``: the same text
    without markupsafe's per-value wrappers."""
    if not eval_ctx.autoescape:
        return text % values
    names = _plain(text)
    if names is None:
        return Markup(text) % values
    return Markup(text % {name: escape(values[name]) for name in names})
