"""A grid of renders that covers every journey step, channel, locale and register.

Used to prove that the render fast paths (translations resolved when a template
compiles, memoized formatting) never change a rendered byte.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from outreach.customers.profile import Customer
from outreach.journeys.config import Journeys
from outreach.journeys.preview import preview
from outreach.localization.locales import PSEUDO, LocalesConfig
from outreach.localization.render import Renderer

NOWS = (datetime(2026, 3, 21, 9, tzinfo=UTC), datetime(2026, 3, 25, 23, 30, tzinfo=UTC))
REGISTERS = (None, "formal", "informal")
#: Locales beyond the shipped ones: pseudo, a fallback through a shipped parent, an unknown one.
EXTRA_LOCALES = (PSEUDO, "pt_PT", "de_AT", "es_419", "sv", "zh_Hant_TW")


def person(**values: Any) -> Customer:
    return Customer.from_mapping({"id": "p", "email": "p@example.com", **values})


#: Customers that exercise every salutation branch (title, only one name, CJK names, zones).
PEOPLE = {
    "titled": person(given_name="Jonas", family_name="Müller", title="mr", zone="Europe/Berlin"),
    "dr": person(given_name="Eszter", family_name="Nagy", title="dr", zone="Europe/Budapest"),
    "ms": person(given_name="Giulia", family_name="Rossi", title="ms", zone="Pacific/Auckland"),
    "family_only": person(name="Wright", family_name="Wright", zone="America/Los_Angeles"),
    "given_only": person(given_name="Amelia"),
    "name_only": person(name="Sam"),
    "cjk": person(given_name="春斗", family_name="田中", zone="Asia/Tokyo"),
    "latin_in_cjk": person(given_name="Haruto", family_name="Tanaka", title="mx"),
    "markup": person(given_name="<b>Ann & Co</b>", family_name='O\'Neil "x"'),
    "feminine": person(given_name="Noa", family_name="Levi", gender="feminine", zone="Asia/Jerusalem"),
    "masculine_dr": person(given_name="Omar", family_name="Haddad", title="dr", gender="masculine"),
    "preferred": person(
        given_name="Thị Lan",
        family_name="Nguyễn",
        preferred_name="Lan",
        gender="neutral",
        name_order="given_family",
    ),
}

#: order_delay data: plural counts, no credit, no original date, other currencies, markup.
DELAYS = {
    "sample": {},
    "same_day": {"original_eta": "2026-03-26"},
    "one_day": {"original_eta": "2026-03-25"},
    "two_days": {"original_eta": "2026-03-24"},
    "eleven_days": {"original_eta": "2026-03-15"},
    "many_days": {"original_eta": "2025-12-01", "new_eta": "2026-04-30"},
    "instant_eta": {"new_eta": "2026-03-26T23:30:00Z", "original_eta": "2026-03-20T08:00:00+02:00"},
    "no_credit": {"credit": None},
    "no_original": {"original_eta": None},
    "jpy": {"credit": "1234.6", "currency": "JPY"},
    "usd_cents": {"credit": "0.5", "currency": "USD"},
    "markup": {"order_id": "<A&1>\"'", "credit": "1000000", "currency": "CHF"},
    "past_eta": {"new_eta": "2026-03-01", "original_eta": "2026-02-27"},
    "tomorrow": {"new_eta": "2026-03-22", "reason": "strike", "options": ["refund"], "remedy": "express"},
    "bare": {"original_eta": None, "credit": None, "reason": None, "options": None, "order_url": None},
}


#: Steps rendered for every customer of PEOPLE (all steps with ``full``).
PEOPLE_STEPS = ("onboarding.welcome", "order_delay.notice", "survey.csat")


def cases(
    journeys: Journeys, locales: LocalesConfig, *, full: bool = False
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(case id, keyword arguments for preview) for every render in the grid."""
    tags = (*locales.shipped, *EXTRA_LOCALES)
    for journey in journeys:
        for step in journey.steps:
            ref = f"{journey.name}.{step.name}"
            for channel in step.channels:
                for tag in tags:
                    for register in REGISTERS:
                        for n, now in enumerate(NOWS):
                            yield (
                                f"{ref}/{channel}/{tag}/{register}/now{n}",
                                {"step_ref": ref, "channel": channel, "locale": tag, "formality": register,
                                 "now": now},
                            )  # fmt: skip
                    if not (full or ref in PEOPLE_STEPS):
                        continue
                    for who, customer in PEOPLE.items():
                        for register in REGISTERS:
                            yield (
                                f"{ref}/{channel}/{tag}/{register}/{who}",
                                {"step_ref": ref, "channel": channel, "locale": tag, "formality": register,
                                 "now": NOWS[0], "customer": customer},
                            )  # fmt: skip
    delay = journeys["order_delay"]
    for name, change in DELAYS.items():
        data = {k: v for k, v in {**delay.sample, **change}.items() if v is not None}
        for step in delay.steps:
            for channel in step.channels:
                for tag in tags:
                    for register in ("formal", "informal"):
                        for n, now in enumerate(NOWS):
                            yield (
                                f"order_delay.{step.name}/{channel}/{tag}/{register}/now{n}/{name}",
                                {"step_ref": f"order_delay.{step.name}", "channel": channel, "locale": tag,
                                 "formality": register, "now": now, "data": data},
                            )  # fmt: skip


def render_case(renderer: Renderer, journeys: Journeys, kwargs: dict[str, Any]) -> tuple:
    args = dict(kwargs)
    rendered, channel = preview(renderer, journeys, args.pop("step_ref"), **args)
    return (channel, rendered.subject, rendered.text, rendered.html, rendered.locale, rendered.register)


#: Customer pages (rendered by outreach.web.pages through the same environments).
PAGES: dict[str, list[dict[str, Any]]] = {
    "error.html": [
        {"kind": kind, "code": code}
        for kind, code in (
            ("expired", 410),
            ("form_expired", 400),
            ("replayed", 409),
            ("erased", 410),
            ("unknown_customer", 404),
            ("unknown_send", 404),
            ("score", 400),
            ("not_found", 404),
            ("unavailable", 503),
            ("invalid", 400),
        )
    ],  # fmt: skip
    "survey.html": [
        {
            "kind": kind,
            "score": score,
            "low": low,
            "high": high,
            "problem": problem,
            "comment": comment,
            "links": [{"url": f"/s/t{n}?a=1&b=<2>", "score": n} for n in range(low, high + 1)],
            "nonce": "n<&>",
            "comment_action": "/s/t/comment",
            "max_comment": 2000,
        }
        for kind, score, low, high, problem, comment in (
            ("csat", 4, 1, 5, False, ""),
            ("nps", 9, 0, 10, True, "<script>x</script> & 'q'"),
            ("ces", 1, 1, 7, False, "fine"),
        )
    ],  # fmt: skip
    "thanks.html": [{}],
    "unsubscribe.html": [
        {"done": done, "category": category, "action": "/u/t?x=<1>", "preferences_url": "/p/t&y"}
        for done in (False, True)
        for category in ("lifecycle", "survey", "marketing", "other")
    ],
    "preferences.html": [
        {
            "saved": saved,
            "action": "/p/t",
            "categories": [{"name": c, "allowed": allowed} for c in ("lifecycle", "survey", "marketing")],
            "channels": [{"name": c, "allowed": not allowed} for c in ("email", "sms", "whatsapp")],
        }
        for saved in (False, True)
        for allowed in (False, True)
    ],  # fmt: skip
}


def page_cases(locales: LocalesConfig) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(case id, locale, page, values) for every customer page in every locale and register."""
    for tag in (*locales.shipped, *EXTRA_LOCALES):
        for page, variants in PAGES.items():
            for n, values in enumerate(variants):
                for register in ("formal", "informal"):
                    for gender in (None, "f", "m"):
                        yield (
                            f"_web/{page}/{tag}/{register}/{gender}/{n}", tag, page,
                            {**values, "register": register, "gender": gender},
                        )  # fmt: skip


def render_page(renderer: Renderer, tag: str, page: str, values: dict[str, Any]) -> str:
    """A page as outreach.web.pages renders it (the same values around the page's own)."""
    context = {k: v for k, v in values.items() if k not in ("register", "gender")}
    html, _ = renderer.page(
        tag, page, register=values["register"], gender=values["gender"], zone="UTC", now=NOWS[0], **context
    )
    return html
