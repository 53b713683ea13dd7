"""What a catalog check cannot see: every step rendered in every shipped locale, register,
grammatical gender and channel, and every customer page in every register and gender, and read the
way its reader sees it (``outreach i18n check``).

Each rendering is checked for markup where none can show (a subject, a text body, an SMS, an HTML
``<title>``), for escaped HTML in plain text, for brackets inside brackets, for a space after
full-width punctuation, and, on channels counted in SMS segments, for its segments: with the
journey's sample data and with only the data its trigger requires. Each locale's relative days
are checked against CLDR's names for them (today, tomorrow, the day after).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..errors import OutreachError
from ..localization.filters import _relative_days, day_names
from ..localization.locales import LocalesConfig, babel_locale
from ..localization.render import Rendered, Renderer
from ..localization.sms import SmsInfo, sms_info
from ..registry import CHANNELS, EVENT_TYPES, FORMALITIES
from .config import Journey, Journeys
from .preview import preview

#: The customers every step is rendered for: addressed in words that need no gender (whatever the
#: sample customer's own gender or title would say), then in each grammatical gender.
GENDER_CASES = ("neutral", "feminine", "masculine")
#: Days on either side of today the relative-day check reads.
RELATIVE_SPAN = 400

_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_ENTITY = re.compile(r"&(?:[A-Za-z]+|#\d+|#x[0-9A-Fa-f]+);")
_TITLE = re.compile(r"<title>(.*?)</title>", re.S)
_SPACE_AFTER_FULL_WIDTH = re.compile(r"[、。，：；！？）」』】] ")
_COUNT_IN_BRACKETS = re.compile(r"\(\d+\)")
_OPENING, _CLOSING = "(（", ")）"


@dataclass
class RenderingReport:
    #: Locale -> what is wrong with its renderings.
    problems: dict[str, list[str]] = field(default_factory=dict)
    #: Locale -> one line per short-text message and register: its SMS segments.
    segments: dict[str, list[str]] = field(default_factory=dict)


def _nested(text: str) -> bool:
    depth = 0
    for ch in text:
        if ch in _OPENING:
            depth += 1
            if depth > 1:
                return True
        elif ch in _CLOSING:
            depth = max(0, depth - 1)
    return False


def text_problems(rendered: Rendered) -> list[str]:
    """What a reader would see wrong in one rendering, whatever its language."""
    found = []
    plain = {"subject": rendered.subject or "", "text": rendered.text}
    for part, text in plain.items():
        tag = _TAG.search(text)
        if tag:
            found.append(f"HTML markup in the {part}: {tag.group()!r}")
        entity = _ENTITY.search(text)
        if entity:
            found.append(f"escaped HTML in the {part}: {entity.group()!r}")
        if _nested(text):
            found.append(f"brackets inside brackets in the {part}")
        space = _SPACE_AFTER_FULL_WIDTH.search(text)
        if space:
            found.append(f"a space after full-width punctuation in the {part}: {space.group()!r}")
    if rendered.html is not None:
        found += _title_problems(rendered.html)
    return found


def _title_problems(html: str) -> list[str]:
    title = _TITLE.search(html)
    return [f"HTML markup in the <title>: {title.group(1)!r}"] if title and "<" in title.group(1) else []


def relative_day_problems(tag: str, default: str = "en") -> list[str]:
    """Relative days that do not read as CLDR writes them: a name (today, tomorrow, the day after)
    where the language has one, never a count in brackets after a word that says it."""
    locale = babel_locale(tag, default)
    names = day_names(locale)
    found = []
    for days in range(-RELATIVE_SPAN, RELATIVE_SPAN + 1):
        text = _relative_days(days, locale)
        if days in names and text != names[days]:
            found.append(f"relative day {days:+d} reads {text!r}, not CLDR's {names[days]!r}")
        elif _COUNT_IN_BRACKETS.search(text):
            found.append(f"relative day {days:+d} reads {text!r}: a count in brackets")
    return found


#: Every customer page with the values ``outreach.web.pages`` gives it, one of each kind.
PAGE_SAMPLES: dict[str, list[dict[str, Any]]] = {
    "error.html": [
        {"kind": kind, "code": 400}
        for kind in (
            "expired",
            "form_expired",
            "replayed",
            "erased",
            "unknown_send",
            "score",
            "not_found",
            "unavailable",
            "invalid",
        )
    ],  # fmt: skip
    "survey.html": [
        {
            "kind": kind,
            "score": low,
            "low": low,
            "high": high,
            "problem": True,
            "comment": "",
            "nonce": "n",
            "links": [{"url": "/s/x", "score": n} for n in range(low, high + 1)],
            "comment_action": "/s/x/c",
            "max_comment": 2000,
        }
        for kind, low, high in (("csat", 1, 5), ("nps", 0, 10), ("ces", 1, 7))
    ],  # fmt: skip
    "thanks.html": [{}],
    "unsubscribe.html": [
        {"done": done, "category": category, "action": "/u/x", "preferences_url": "/p/x"}
        for done in (False, True)
        for category in ("lifecycle", "survey", "marketing")
    ],
    "preferences.html": [
        {
            "saved": True,
            "action": "/p/x",
            "categories": [{"name": c, "allowed": True} for c in ("lifecycle", "survey", "marketing")],
            "channels": [{"name": c, "allowed": True} for c in ("email", "sms", "whatsapp")],
        }
    ],  # fmt: skip
}


def page_problems(renderer: Renderer, tag: str) -> list[str]:
    """Every customer page of a locale in both registers and every gender: it renders, its title
    shows no markup, no space follows full-width punctuation."""
    found = []
    for page, variants in PAGE_SAMPLES.items():
        for values in variants:
            for register in FORMALITIES:
                for gender in (None, "f", "m"):
                    where = f"_web/{page} ({register}, {gender or 'neutral'}, {values.get('kind', '')})"
                    try:
                        html, _ = renderer.page(
                            tag, page, register=register, gender=gender, zone="UTC", now=datetime.now(UTC),
                            **values,
                        )  # fmt: skip
                    except Exception as exc:  # noqa: BLE001 - whatever fails is the page's problem
                        found.append(f"{where}: {type(exc).__name__}: {exc}")
                        continue
                    found += [f"{where}: {problem}" for problem in _title_problems(html)]
                    space = _SPACE_AFTER_FULL_WIDTH.search(html)
                    if space:
                        found.append(f"{where}: a space after full-width punctuation: {space.group()!r}")
    return sorted(set(found))


def required_data(journey: Journey) -> dict:
    """The least event data that starts the journey: its trigger's required fields, with examples."""
    contract = EVENT_TYPES[journey.trigger].contract
    data = {name: f.example for name, f in contract.fields.items() if f.required and f.example is not None}
    return {**data, **dict(journey.match or {})}


def _segments(info: SmsInfo) -> str:
    return f"{info.segments} {info.encoding} ({info.units} units)"


def rendering_report(renderer: Renderer, journeys: Journeys, locales: LocalesConfig) -> RenderingReport:
    """Every step of every journey rendered in every shipped locale, register, gender and channel."""
    report = RenderingReport()
    for tag in locales.shipped:
        problems = report.problems.setdefault(tag, relative_day_problems(tag, locales.default))
        problems += page_problems(renderer, tag)
        lines = report.segments.setdefault(tag, [])
        for journey in journeys:
            for step in journey.steps:
                # An experiment's variants with a template of their own are rendered too.
                variants = step.experiment.variants if step.experiment else ()
                base = f"{journey.name}.{step.name}"
                refs = [base, *(f"{base}:{v.name}" for v in variants if v.template != step.template)]
                for ref, channel in ((r, c) for r in refs for c in step.channels):
                    short = CHANNELS[channel].short_text
                    for register in FORMALITIES:
                        most: dict[str, SmsInfo] = {}
                        for gender in GENDER_CASES:
                            for which, data in (("sample", None), ("required", required_data(journey))):
                                if which == "required" and not short:
                                    continue
                                where = f"{ref} ({channel}, {register}, {gender}, {which} data)"
                                try:
                                    rendered, _ = preview(
                                        renderer, journeys, ref, locale=tag, channel=channel,
                                        formality=register, gender=gender, data=data,
                                    )  # fmt: skip
                                except OutreachError as exc:
                                    problems.append(f"{where}: {exc}")
                                    continue
                                problems += [f"{where}: {p}" for p in text_problems(rendered)]
                                if short:
                                    info = sms_info(rendered.text)
                                    if which not in most or info.units > most[which].units:
                                        most[which] = info
                                    if info.segments > locales.sms_max_segments:
                                        problems.append(
                                            f"{where}: takes {_segments(info)} segments; "
                                            f"the limit is {locales.sms_max_segments}"
                                        )
                        if most:
                            lines.append(
                                f"{ref} ({channel}, {register}): "
                                + "; ".join(f"{_segments(info)} with {w} data" for w, info in most.items())
                            )
    return report
