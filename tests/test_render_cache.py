"""The render fast paths change no rendered byte.

Every journey step, channel, shipped locale (and pseudo, fallback and unknown
locales) and register, with customers and event data that reach every branch,
is rendered twice: by the Renderer as it runs in production (translations
resolved when a template compiles, warm formatting caches) and by a reference
Renderer that looks every message up at render time through jinja2.ext.i18n
with every memo emptied before each render. The customer pages share the
environments and are compared the same way.
"""

from __future__ import annotations

import random
import re
import threading
from datetime import UTC, date, datetime, timedelta

import jinja2
import pytest
from babel import dates as babel_dates
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from outreach.customers.profile import Customer
from outreach.journeys.config import load_journeys
from outreach.localization import render as render_module
from outreach.localization.locales import PSEUDO, babel_locale, load_locales
from outreach.localization.render import Renderer
from outreach.timing import zone

from .conftest import STARTER
from .render_cases import cases, page_cases, render_case, render_page

LOCALES = load_locales(STARTER / "config")
JOURNEYS = load_journeys(STARTER / "config", STARTER / "templates")
CASES = list(cases(JOURNEYS, LOCALES))
PAGE_CASES = list(page_cases(LOCALES))


def clear_caches() -> None:
    """Empty every memo a render reads from (what a fresh process would have)."""
    for cached in render_module.CACHES:
        cached.cache_clear()


@pytest.fixture(scope="module")
def reference() -> dict:
    """Every case rendered without compiled translations and with empty caches before each render."""
    renderer = Renderer(STARTER / "templates", LOCALES, compile_translations=False)
    out = {}
    for case_id, kwargs in CASES:
        clear_caches()
        out[case_id] = render_case(renderer, JOURNEYS, kwargs)
    for case_id, tag, page, values in PAGE_CASES:
        clear_caches()
        out[case_id] = render_page(renderer, tag, page, values)
    return out


def test_the_grid_reaches_every_step_channel_locale_and_register():
    ids = {case_id for case_id, _ in CASES}
    for journey in JOURNEYS:
        for step in journey.steps:
            for channel in step.channels:
                for tag in (*LOCALES.shipped, PSEUDO):
                    for register in ("formal", "informal"):
                        assert f"{journey.name}.{step.name}/{channel}/{tag}/{register}/now0" in ids


def test_fast_renders_are_byte_identical_to_the_reference(reference):
    renderer = Renderer(STARTER / "templates", LOCALES)
    order = list(CASES)
    # Twice, in a shuffled order: what one render leaves in a cache must never show in another.
    for seed in (1, 2):
        random.Random(seed).shuffle(order)
        mismatches = [
            cid for cid, kwargs in order if render_case(renderer, JOURNEYS, kwargs) != reference[cid]
        ]
        assert mismatches == [], mismatches[:10]


def test_customer_pages_are_byte_identical_to_the_reference(reference):
    renderer = Renderer(STARTER / "templates", LOCALES)
    mismatches = [
        cid
        for cid, tag, page, values in PAGE_CASES
        if render_page(renderer, tag, page, values) != reference[cid]
    ]
    assert mismatches == [], mismatches[:10]


def test_concurrent_fast_renders_match_the_reference(reference):
    renderer = Renderer(STARTER / "templates", LOCALES)
    clear_caches()
    sample = random.Random(3).sample(CASES, 1600)
    errors: list[str] = []
    start = threading.Barrier(8)

    def work(offset: int) -> None:
        start.wait()
        for cid, kwargs in sample[offset::8]:
            try:
                if render_case(renderer, JOURNEYS, kwargs) != reference[cid]:
                    errors.append(cid)
            except Exception as exc:  # reported by the assertion below
                errors.append(f"{cid}: {exc!r}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_an_unknown_register_renders_as_at_runtime():
    fast = Renderer(STARTER / "templates", LOCALES)
    slow = Renderer(STARTER / "templates", LOCALES, compile_translations=False)
    for cid, kwargs in CASES:
        if kwargs.get("customer") is None and cid.endswith("/formal/now0"):
            for register in ("xyz", "Formal"):
                changed = {**kwargs, "formality": register}
                assert render_case(fast, JOURNEYS, changed) == render_case(slow, JOURNEYS, changed), cid


#: {% trans %} forms the shipped templates do not use (yet): each must render as jinja2.ext.i18n does.
EDGE_TEMPLATES = [
    "{% trans %}The Outreach team{% endtrans %}",
    "{% trans %}100%% sure, no variables{% endtrans %}",
    "{% trans x=1 %}{{ x }}%% off{% endtrans %}",
    "{% trans %}Hello {{ who }}{% endtrans %}",
    "{% trans who=who|upper %}Hello {{ who }}{% endtrans %}",
    "{% trans trimmed %}\n  The Outreach\n  team\n{% endtrans %}",
    "{% trans 'informal' %}The Outreach team{% endtrans %}",
    "{% trans num=n %}{{ num }} day{% pluralize %}{{ num }} days{% endtrans %}",
    "{% trans count=n %}That is {{ count }} day later than we promised.{% pluralize %}"
    "That is {{ count }} days later than we promised.{% endtrans %}",
    "{% trans count=n|abs %}That is {{ count }} day later than we promised.{% pluralize %}"
    "That is {{ count }} days later than we promised.{% endtrans %}",
    "{% trans count=n, who=who %}{{ who }}: {{ count }} day{% pluralize count %}{{ who }}: {{ count }} days"
    "{% endtrans %}",
    "{% macro m() %}{% trans %}The Outreach team{% endtrans %}{% endmacro %}{{ m() }}",
    "{% for i in [1, 2] %}{% set register = 'informal' %}{% trans %}The Outreach team{% endtrans %}"
    "{% endfor %}",
    "{% set register = 'informal' %}{% trans %}The Outreach team{% endtrans %}",
    "{% autoescape false %}{% trans who=who %}Hi {{ who }}{% endtrans %}{% endautoescape %}",
    "{{ _('The Outreach team') }} {{ gettext('Hi %(w)s', w=who) }} {{ ngettext('a', 'b', n) }}",
    "{% trans %}Broken %(nothing)s{% endtrans %}",
]


@pytest.mark.parametrize("source", EDGE_TEMPLATES)
@pytest.mark.parametrize("tag", ["de", "ar", PSEUDO])
@pytest.mark.parametrize("name", ["edge.html", "edge.txt"])
def test_every_trans_form_renders_as_jinja2_ext_i18n_does(source, tag, name):
    fast = Renderer(STARTER / "templates", LOCALES).environment(tag)
    slow = Renderer(STARTER / "templates", LOCALES, compile_translations=False).environment(tag)
    contexts = [
        {"register": register, "who": "<Ann & Co>", "n": n}
        for register in ("formal", "informal", "other", None)
        for n in (0, 1, 2, 5, -3)
    ] + [{"who": "Ann", "n": 1}]

    def outcome(template: jinja2.Template, values: dict) -> str:
        try:
            return template.render(values)
        except (KeyError, ValueError, TypeError) as exc:
            return f"{type(exc).__name__}: {exc}"

    html = name.endswith(".html")
    templates = []
    for env in (fast, slow):
        env.autoescape = lambda _name: html
        templates.append(env.from_string(source))
    for values in contexts:
        assert outcome(templates[0], values) == outcome(templates[1], values), values


def test_relative_dates_follow_now():
    renderer = Renderer(STARTER / "templates", LOCALES)
    step = JOURNEYS["order_delay"].steps[0].template
    customer = Customer(id="c", name="Ann", zone="Pacific/Auckland")
    data = {
        "data": {"order_id": "A-1", "new_eta": "2026-03-26", "credit": "1", "currency": "EUR"},
        "send": {},
    }
    texts = [
        renderer.render(step, "email", customer, data, now=datetime(2026, 3, day, 9, tzinfo=UTC)).text
        for day in (20, 21, 22, 20)
    ]
    assert "in 6 days" in texts[0] and "in 5 days" in texts[1] and "in 4 days" in texts[2]
    assert texts[3] == texts[0]


def test_attribute_lookup_on_plain_dicts_matches_jinja():
    fast = Renderer(STARTER / "templates", LOCALES).environment("en")
    stock = jinja2.Environment(undefined=jinja2.StrictUndefined)

    class Sub(dict):
        extra = "class attribute"

    names = [
        "order_id",
        "missing",
        "items",
        "get",
        "keys",
        "__class__",
        "__len__",
        "__dict__",
        "extra",
        "mro",
    ]
    for obj in (
        {"order_id": "A-1", "items": "key", "get": 1, "__dict__": 2},
        {},
        Sub(order_id="B"),
        [1],
        "s",
    ):
        for name in names:
            got, want = fast.getattr(obj, name), stock.getattr(obj, name)
            if isinstance(want, jinja2.Undefined):
                assert isinstance(got, jinja2.StrictUndefined)
                assert (got._undefined_obj, got._undefined_name) == (
                    want._undefined_obj,
                    want._undefined_name,
                )
            else:
                assert got == want, (obj, name)


def _relative_before(value, now, locale, zone_name):
    """The relative-date text as it was computed when the cache was keyed by 'now'."""
    value = render_module._date(value)
    if isinstance(value, datetime):
        text = babel_dates.format_timedelta(value - now, add_direction=True, locale=locale)
        return re.sub(r"\s*\(\d+\)", "", text)
    days = (value - now.astimezone(zone(zone_name)).date()).days
    named = locale._data["date_fields"]["day"]["relative"].get(days)
    if named is not None:
        return named
    text = babel_dates.format_timedelta(
        timedelta(days=days), granularity="day", threshold=365, add_direction=True, locale=locale
    )
    return re.sub(r"\s*\(\d+\)", "", text)


MOMENTS = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(
        st.dates(min_value=date(2024, 1, 1), max_value=date(2028, 12, 31)).map(date.isoformat),
        st.dates(min_value=date(2024, 1, 1), max_value=date(2028, 12, 31)),
        MOMENTS,
        MOMENTS.map(lambda moment: moment.isoformat().replace("+00:00", "Z")),
    ),
    now=MOMENTS,
    tag=st.sampled_from(LOCALES.shipped),
    zone_name=st.sampled_from(["UTC", "Pacific/Auckland", "America/Los_Angeles", "Asia/Kolkata"]),
)
def test_relative_text_matches_the_now_keyed_formula(value, now, tag, zone_name):
    locale = babel_locale(tag)
    assert render_module._relative_text(value, now, locale, zone_name) == _relative_before(
        value, now, locale, zone_name
    )


_NAMES = st.sampled_from(["order", "eta", "count", "num"])
_VALUE = (
    st.text(alphabet=st.sampled_from(list("<>&\"'ab %()s1")), max_size=12)
    | st.integers()
    | st.floats(allow_nan=False)
    | st.none()
    | st.builds(Markup, st.text(alphabet=st.sampled_from(list("<b>&x")), max_size=8))
    | st.builds(jinja2.StrictUndefined, name=st.just("missing"))
)
_PIECE = st.sampled_from(
    ["%(order)s", "%(eta)s", "%(count)s", "%(count)d", "%%", "%(num)r", "<i>", " & ", "x"]
)


@settings(max_examples=1500, deadline=None)
@given(pieces=st.lists(_PIECE, max_size=8), values=st.dictionaries(_NAMES, _VALUE))
def test_a_compiled_block_is_filled_in_as_markup_would_fill_it(pieces, values):
    """``format_text`` (the compiled blocks' formatting) gives what ``Markup(text) % values`` gives,
    or fails the same way, with and without autoescaping."""
    from jinja2.nodes import EvalContext

    from outreach.localization.filters import format_text

    text = "".join(pieces)
    for autoescape in (True, False):
        context = EvalContext(jinja2.Environment(autoescape=autoescape))
        try:
            expected: object = (Markup(text) if autoescape else text) % values
        except (TypeError, ValueError, OverflowError, KeyError, jinja2.UndefinedError) as exc:
            expected = type(exc)
        try:
            got: object = format_text(context, text, values)
        except (TypeError, ValueError, OverflowError, KeyError, jinja2.UndefinedError) as exc:
            got = type(exc)
        assert got == expected and type(got) is type(expected)


def test_a_template_compiles_once_for_every_locale(monkeypatch):
    """Compiled blocks name their msgid, not a translation: one compilation serves every locale."""
    renderer = Renderer(STARTER / "templates", LOCALES)
    compiled: list[str] = []
    original = jinja2.Environment.compile

    def counting(self, source, name=None, filename=None, raw=False, defer_init=False):
        compiled.append(name)
        return original(self, source, name, filename, raw, defer_init)

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    for tag in LOCALES.shipped:
        render_case(renderer, JOURNEYS, {"step_ref": "order_delay.notice", "channel": "email", "locale": tag})
    assert sorted(compiled) == sorted(set(compiled))
    assert "order_delay/notice/body.html" in compiled
