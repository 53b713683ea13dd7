"""Render cost per localized message, next to plain Jinja rendering measured in the same run.

    python benchmarks/render_bench.py [--json] [--repeats 7] [--n 300]

Three figures, each the median over repeats of the mean cost of one email
(subject, text and HTML) across the shipped locales:

* plain_jinja: the same three templates with the English text inline, no i18n
  extension, values pre-formatted: the floor any Jinja renderer pays;
* localized: ``Renderer.render`` of the welcome email (catalog lookups with the
  customer's register, salutation), no Babel formatting;
* localized_babel: ``Renderer.render`` of the order-delay email, which also
  formats a date, a relative date and money with Babel in the customer's zone;
* localized_babel_varied: the same email as a batch really sends it: "now"
  moves on by a second per message and every message has its own order number,
  a delivery date out of a month and a credit out of 500 amounts, so formatting
  caches help only as much as real traffic lets them;
* localized_babel_full: the order-delay email with the starter's whole sample:
  a reason, two options and a link besides the fields above.

The order-delay email carries the fields every run has measured (order, dates,
credit: ``MEASURED_FIELDS``), so figures of different versions compare.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jinja2

from outreach.journeys.config import load_journeys
from outreach.journeys.preview import sample_customer
from outreach.localization.locales import load_locales
from outreach.localization.render import Renderer

ROOT = Path(__file__).resolve().parent.parent
STARTER = ROOT / "outreach" / "starter"
NOW = datetime(2026, 3, 21, 9, tzinfo=UTC)
#: The order-delay fields every run has rendered (as benchmarks/run.py sends them).
MEASURED_FIELDS = ("order_id", "original_eta", "new_eta", "credit", "currency")

PLAIN = {
    "subject": "Your order {{ order }} is running late",
    "text": (
        "{{ salutation }}\n\nWe are sorry: your order {{ order }} will not arrive on time. The new "
        "expected delivery date is {{ eta }} ({{ relative }}).\nThat is {{ count }} days later than we "
        "promised.\n\nFor the wait, we have added a credit of {{ credit }} to your account.\n\nYou do "
        "not need to do anything. We will write again if anything changes.\n\nThe Outreach team"
    ),
    "html": (
        '<!DOCTYPE html><html lang="{{ lang }}" dir="{{ dir }}"><head><meta charset="utf-8">'
        "<title>Your order {{ order }} is running late</title></head><body><div><p>{{ salutation }}</p>"
        "<p>We are sorry: your order {{ order }} will not arrive on time. The new expected delivery "
        "date is {{ eta }} ({{ relative }}). That is {{ count }} days later than we promised.</p>"
        "<p>For the wait, we have added a credit of {{ credit }} to your account.</p><p>You do not "
        "need to do anything. We will write again if anything changes.</p><p>The Outreach team</p>"
        "</div></body></html>"
    ),
}


def _median_us(fn, n: int, repeats: int) -> float:
    fn()  # warm caches (template compilation, catalogs, Locale objects)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - start) / n * 1e6)
    return round(statistics.median(samples), 1)


def run(n: int, repeats: int) -> dict:
    locales = load_locales(STARTER / "config")
    journeys = load_journeys(STARTER / "config", STARTER / "templates")
    renderer = Renderer(STARTER / "templates", locales)
    people = [sample_customer(tag) for tag in locales.shipped]
    delay = journeys["order_delay"]
    measured = {k: v for k, v in (delay.sample or {}).items() if k in MEASURED_FIELDS}
    data = {"data": measured, "send": {}}
    full = {"data": dict(delay.sample or {}), "send": {}}

    plain_env = jinja2.Environment(autoescape=False)
    plain = {k: plain_env.from_string(v) for k, v in PLAIN.items()}
    html = jinja2.Environment(autoescape=True).from_string(PLAIN["html"])
    values = {"salutation": "Hi Amelia,", "order": "A-1001", "eta": "March 26, 2026", "relative": "in 5 days",
              "count": 6, "credit": "€10.00", "lang": "en", "dir": "ltr"}  # fmt: skip

    def plain_email():
        for _ in people:
            plain["subject"].render(values)
            plain["text"].render(values)
            html.render(values)

    def localized():
        for person in people:
            renderer.render("onboarding/welcome", "email", person, {"data": {}, "send": {}}, now=NOW)

    def localized_babel():
        for person in people:
            renderer.render(delay.steps[0].template, "email", person, data, now=NOW)

    def localized_babel_full():
        for person in people:
            renderer.render(delay.steps[0].template, "email", person, full, now=NOW)

    rng = random.Random(0)
    batch = [
        {"data": {**measured, "order_id": f"A-{2000 + i}", "new_eta": f"2026-04-{rng.randint(1, 30):02d}",
                  "credit": f"{rng.randint(1, 500)}.{rng.choice(['00', '50', '99'])}"}, "send": {}}
        for i in range(997)
    ]  # fmt: skip
    varied = itertools.cycle(batch)
    second = itertools.count()

    def localized_babel_varied():
        for person in people:
            now = NOW + timedelta(seconds=next(second))
            renderer.render(delay.steps[0].template, "email", person, next(varied), now=now)

    count = len(people)
    figures = {
        "plain_jinja_us": round(_median_us(plain_email, n, repeats) / count, 1),
        "localized_us": round(_median_us(localized, n, repeats) / count, 1),
        "localized_babel_us": round(_median_us(localized_babel, n, repeats) / count, 1),
        "localized_babel_varied_us": round(_median_us(localized_babel_varied, n, repeats) / count, 1),
        "localized_babel_full_us": round(_median_us(localized_babel_full, n, repeats) / count, 1),
    }
    figures["localized_vs_plain"] = round(figures["localized_us"] / figures["plain_jinja_us"], 2)
    figures["localized_babel_vs_plain"] = round(figures["localized_babel_us"] / figures["plain_jinja_us"], 2)
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "locales": list(locales.shipped),
        "messages_per_repeat": n * count,
        "repeats": repeats,
        "unit": "microseconds per email (subject + text + HTML), median of repeats",
        **figures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--n", type=int, default=200, help="Rounds over the shipped locales per repeat.")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    result = run(args.n, args.repeats)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        print(f"{key:>26}: {value}")


if __name__ == "__main__":
    main()
