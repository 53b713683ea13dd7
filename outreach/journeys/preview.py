"""Previews: render any journey step for any locale, register, gender and channel without sending."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from ..customers.profile import TITLE_GENDERS, Customer, grammatical_gender
from ..errors import InputError
from ..languages import parse_locale
from ..links import message_links
from ..localization.locales import PSEUDO
from ..localization.render import Rendered, Renderer
from ..registry import needs_consent
from ..settings import DEFAULT_PUBLIC_URL
from ..surveys.answers import answer_links
from .config import Journeys

#: The files of people previews are rendered for: the demo's, then those of the other languages.
SAMPLE_PEOPLE = ("demo_customers.jsonl", "sample_customers.jsonl")
#: The moment previews are rendered at: the day after the journeys' sample events.
PREVIEW_NOW = "2026-03-21T09:00:00+00:00"


def sample_customer(tag: str, default: str = "en") -> Customer:
    """A demo customer (or, for a language the demo has no one for, a sample one) who speaks the
    language of ``tag``, with the locale set to ``tag``."""
    data = resources.files("outreach").joinpath("data")
    text = "".join(data.joinpath(name).read_text("utf-8") for name in SAMPLE_PEOPLE)
    people = [Customer.from_mapping(json.loads(line)) for line in text.splitlines() if line.strip()]
    try:
        wanted = parse_locale(default if tag == PSEUDO else tag)
    except InputError:
        wanted = parse_locale(default)
    for person in people:
        theirs = parse_locale(person.locale)
        if (theirs.language, theirs.script) == (wanted.language, wanted.script):
            return replace(person, locale=tag, formality=None)
    return replace(people[0], locale=tag, formality=None)


def preview(
    renderer: Renderer,
    journeys: Journeys,
    step_ref: str,
    *,
    locale: str,
    now: datetime | None = None,
    channel: str | None = None,
    formality: str | None = None,
    gender: str | None = None,
    customer: Customer | None = None,
    data: dict[str, Any] | None = None,
) -> tuple[Rendered, str]:
    """Render ``journey.step`` (or an experiment's ``journey.step:variant``) for a customer addressed in
    ``gender``, if given (feminine, masculine or neutral); returns the rendering and the channel used."""
    step_ref, _, variant = step_ref.partition(":")  # "journey.step:variant": an experiment's variant
    journey_name, _, step_name = step_ref.partition(".")
    if journey_name not in journeys.all:
        raise InputError("step", step_ref, f"no journey {journey_name!r} ({', '.join(journeys.all)})")
    journey = journeys[journey_name]
    try:
        step = journey.step(step_name)
    except KeyError:
        names = ", ".join(s.name for s in journey.steps)
        raise InputError("step", step_ref, f"journey {journey_name} has steps {names}") from None
    arm = step.experiment.arm(variant) if variant and step.experiment else None
    if variant and arm is None:
        arms = ", ".join(a.name for a in step.experiment.variants) if step.experiment else "none"
        raise InputError(
            "step", f"{step_ref}:{variant}", f"{step_ref} has no such variant (variants: {arms})"
        )
    channel = channel or step.channels[0]
    if channel not in step.channels:
        raise InputError("channel", channel, f"{step_ref} sends by {', '.join(step.channels)}")
    who = customer or sample_customer(locale, renderer.locales.default)
    if gender is not None:
        wanted = grammatical_gender(gender)
        # A title that says another gender (the sample's "mr" for a feminine preview) goes with it.
        title = who.title if TITLE_GENDERS.get(who.title or "", wanted) == wanted else None
        who = replace(who, gender=wanted, title=title)
    when = now or datetime.fromisoformat(PREVIEW_NOW)
    category = journey.category if needs_consent(journey.category) else None
    expires = when + timedelta(days=90)
    links = message_links("preview", DEFAULT_PUBLIC_URL, who.id, "s_preview", category, expires)
    context: dict[str, Any] = {
        "data": dict(data if data is not None else journey.sample or {}),
        "send": {},
        **links.context(),
    }
    if step.survey:
        answers = answer_links(
            "preview", DEFAULT_PUBLIC_URL, "s_preview", who.id, step.survey, when + timedelta(days=14)
        )
        context["survey"] = {"kind": step.survey, "links": answers}
    if step.digest:  # a digest lists events: the sample event, three times (a plural)
        items = [dict(context["data"]) for _ in range(3)]
        events = [{"event_id": f"preview-{n}", "at_ms": 0, "data": item} for n, item in enumerate(items)]
        context["digest"] = {"count": len(items), "items": items, "events": events}
    rendered = renderer.render(
        (arm or step).template,
        channel,
        who,
        context,
        now=when,
        locale=locale,
        register=formality,
    )
    return rendered, channel


def write_html(rendered: Rendered, folder: Path, name: str) -> Path | None:
    """Write the HTML body to ``folder/name.html`` to look at in a browser; None if there is none."""
    if rendered.html is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.html"
    path.write_text(rendered.html, encoding="utf-8")
    return path
