"""Localization: catalogs, plurals, registers, names, right-to-left, fallbacks, thread safety."""

from __future__ import annotations

import logging
import re
import shutil
import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel import Locale

from outreach import TemplateError
from outreach.customers.profile import Customer
from outreach.journeys.config import load_journeys
from outreach.journeys.preview import preview, sample_customer
from outreach.journeys.quality import rendering_report
from outreach.localization.catalogs import check_catalog, cldr_plural_forms, extract
from outreach.localization.locales import PSEUDO, load_locales, locale_chain
from outreach.localization.render import FSI, PDI, Renderer
from outreach.localization.sms import sms_info

from .conftest import STARTER

LOCALES = load_locales(STARTER / "config")
JOURNEYS = load_journeys(STARTER / "config", STARTER / "templates")
NOW = datetime(2026, 3, 21, 9, tzinfo=UTC)
SHIPPED = list(LOCALES.shipped)
#: The locales the starter project requires complete (config/locales.toml ``required``).
REQUIRED = list(LOCALES.required)


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(STARTER / "templates", LOCALES)


def render(renderer, step, locale, *, formality=None, channel=None, customer=None, data=None):
    rendered, _ = preview(
        renderer, JOURNEYS, step, locale=locale, now=NOW, channel=channel, formality=formality,
        customer=customer, data=data,
    )  # fmt: skip
    return rendered


# -- catalogs ---------------------------------------------------------------------------


@pytest.mark.parametrize("tag", REQUIRED)
def test_every_required_catalog_is_complete(tag):
    report = check_catalog(STARTER / "templates", tag)
    assert report.complete, report.to_mapping()
    assert report.obsolete == []


def test_every_locale_register_gender_and_channel_renders_every_step_cleanly(renderer):
    """No markup where none shows, no brackets in brackets, relative days as CLDR names them, every
    SMS within its segment limit: in all shipped locales, both registers and every gender."""
    report = rendering_report(renderer, JOURNEYS, LOCALES)
    assert {tag: problems for tag, problems in report.problems.items() if problems} == {}
    assert sorted(report.segments) == sorted(SHIPPED)


@pytest.mark.parametrize("tag", ["ar", "he", "hu", "ja", "de", "it", "pt_BR", "vi", "zh_Hans"])
def test_catalog_plural_headers_follow_cldr(tag):
    count, expr = cldr_plural_forms(tag)
    text = (STARTER / "templates" / "_locale" / tag / "LC_MESSAGES" / "messages.po").read_text("utf-8")
    assert f"nplurals={count};" in text
    expected = {"ar": 6, "he": 3, "hu": 2, "ja": 1, "vi": 2, "zh_Hans": 1, "de": 2, "it": 3, "pt_BR": 3}
    assert count == expected[tag]


def _copy_templates(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    shutil.copytree(STARTER / "templates", folder)
    return folder


def test_check_reports_a_wrong_plural_header_and_missing_fuzzy_obsolete(tmp_path):
    templates = _copy_templates(tmp_path)
    po = templates / "_locale" / "he" / "LC_MESSAGES" / "messages.po"
    text = po.read_text("utf-8")
    text = re.sub(
        r'"Plural-Forms: [^"]*"\n("[^"]*"\n)*', '"Plural-Forms: nplurals=2; plural=(n != 1);\\\\n"\n', text
    )
    first = text.index('msgctxt "formal"\nmsgid "Checking in"')
    text = text[:first] + "#, fuzzy\n" + text[first:]
    text = text.replace(
        'msgid "Three tips for your first week"\nmsgstr "',
        'msgid "Three tips for your first week"\nmsgstr "x',
        1,
    )
    text += '\nmsgctxt "formal"\nmsgid "A message nobody uses any more"\nmsgstr "ישן"\n'
    po.write_text(text, "utf-8")
    report = check_catalog(templates, "he")
    assert not report.complete
    assert any("differs from CLDR" in e for e in report.errors)
    assert report.fuzzy == ["[formal] Checking in"]
    assert report.obsolete == ["[formal] A message nobody uses any more"]


def test_check_reports_missing_entries(tmp_path):
    templates = _copy_templates(tmp_path)
    po = templates / "_locale" / "de" / "LC_MESSAGES" / "messages.po"
    text = po.read_text("utf-8")
    start = text.index('msgctxt "informal"\nmsgid "Checking in"\nmsgstr "')
    end = text.index("\n", text.index("msgstr", start))
    po.write_text(text[:start] + 'msgctxt "informal"\nmsgid "Checking in"\nmsgstr ""' + text[end:], "utf-8")
    report = check_catalog(templates, "de")
    assert report.missing == ["[informal] Checking in"]


def test_extraction_fails_on_a_template_syntax_error(tmp_path):
    templates = _copy_templates(tmp_path)
    (templates / "survey" / "csat" / "body.txt").write_text("{% trans %}Broken{% endtran %}")
    with pytest.raises(TemplateError, match="extraction failed"):
        extract(templates)


def test_a_message_over_its_segment_limit_fails_the_check(tmp_path):
    templates = _copy_templates(tmp_path)
    long = "{% trans %}" + "This message is far too long for a text message. " * 12 + "{% endtrans %}"
    (templates / "order_delay" / "notice" / "sms.body.txt").write_text(long)
    small = replace(LOCALES, shipped=("en",))
    report = rendering_report(Renderer(templates, small), load_journeys(STARTER / "config", templates), small)
    problems = report.problems["en"]
    assert problems and "order_delay.notice (sms" in problems[0] and "GSM-7" in problems[0]


# -- plurals ----------------------------------------------------------------------------

#: CLDR category index for each count, per locale (see the Plural-Forms headers).
PLURAL_INDEX = {
    "ar": {0: 0, 1: 1, 2: 2, 3: 3, 11: 4, 100: 5},
    "he": {0: 2, 1: 0, 2: 1, 3: 2, 11: 2, 100: 2},
    "hu": {0: 1, 1: 0, 2: 1, 3: 1, 11: 1, 100: 1},
    "ja": {0: 0, 1: 0, 2: 0, 3: 0, 11: 0, 100: 0},
}


@pytest.mark.parametrize("tag", sorted(PLURAL_INDEX))
@pytest.mark.parametrize("count", [0, 1, 2, 3, 11, 100])
def test_plural_forms_by_count(renderer, tag, count):
    from outreach.localization.messages import load_translations

    catalog = load_translations(STARTER / "templates", tag)
    msgid = "formal\x04That is %(count)s day later than we promised."
    index = PLURAL_INDEX[tag][count]
    assert catalog.plural(count) == index
    form = catalog._catalog[(msgid, index)] % {"count": count}
    data = {
        "order_id": "A-1",
        "original_eta": "2026-03-01",
        "new_eta": f"{2026 + 0}-03-01",
        "currency": "EUR",
    }
    data["new_eta"] = datetime.fromordinal(datetime(2026, 3, 1).toordinal() + count).date().isoformat()
    text = render(renderer, "order_delay.notice", tag, formality="formal", data=data).text
    # A delay of no days is not announced; every other count reads in its own plural form.
    assert (form in text) == (count > 0)
    if tag == "ar":
        forms = [catalog._catalog[(msgid, i)] for i in range(6)]
        assert all(forms), "Arabic needs all six forms"
        assert len(set(forms[1:5])) == 4, "one, two, few and many read differently"


# -- register, names, salutations --------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "formal_word", "informal_word"),
    [("de", r"\bSie\b", r"\b(du|dich|dir|dein\w*)\b"), ("zh_Hans", "您", "你"),
     ("it", r"\b(Lei|La|Le|Suo|Sua)\b", r"\b(tu|ti|tuo|tua|te)\b"),
     ("pt_BR", r"", r"\bvocê\b")],
)  # fmt: skip
def test_register_switches_the_text(renderer, tag, formal_word, informal_word):
    formal = render(renderer, "onboarding.welcome", tag, formality="formal").text
    informal = render(renderer, "onboarding.welcome", tag, formality="informal").text
    assert formal != informal
    if formal_word:
        assert re.search(formal_word, formal), formal
    assert re.search(informal_word, informal, re.IGNORECASE), informal
    if tag == "zh_Hans":
        assert "您" not in informal


@pytest.mark.parametrize("tag", ["de", "it", "hu", "pt_BR", "vi", "ja", "zh_Hans"])
def test_formal_and_informal_catalog_entries_differ(renderer, tag):
    formal = render(renderer, "onboarding.checkin", tag, formality="formal").text
    informal = render(renderer, "onboarding.checkin", tag, formality="informal").text
    assert formal != informal


def test_customer_preference_wins_over_locale_default(renderer):
    jonas = sample_customer("de")
    assert renderer.register_for(jonas, "de") == "formal"  # German default
    assert renderer.register_for(replace(jonas, formality="informal"), "de") == "informal"
    assert renderer.register_for(sample_customer("en"), "en") == "informal"


def person(**values) -> Customer:
    return Customer.from_mapping({"id": "p", "email": "p@example.com", **values})


@pytest.mark.parametrize(
    ("tag", "values", "register", "expected"),
    [
        ("de", {"given_name": "Jonas", "family_name": "Müller", "title": "mr"}, "formal",
         "Sehr geehrter Herr Müller,"),
        ("de", {"given_name": "Jonas", "family_name": "Müller"}, "formal", "Guten Tag Jonas Müller,"),
        ("de", {"given_name": "Jonas", "family_name": "Müller"}, "informal", "Hallo Jonas,"),
        ("hu", {"given_name": "Eszter", "family_name": "Nagy"}, "formal", "Kedves Nagy Eszter!"),
        ("hu", {"given_name": "Eszter", "family_name": "Nagy"}, "informal", "Szia, Eszter!"),
        ("ja", {"given_name": "春斗", "family_name": "田中"}, "formal", "田中様"),
        ("ja", {"given_name": "春斗", "family_name": "田中"}, "informal", "田中さん"),
        ("ja", {"given_name": "Haruto", "family_name": "Tanaka"}, "formal", "Tanaka様"),
        ("zh_Hans", {"given_name": "伟", "family_name": "王"}, "formal", "尊敬的王伟："),
        ("zh_Hans", {"given_name": "伟", "family_name": "王", "title": "mr"}, "formal", "尊敬的王先生："),
        ("vi", {"given_name": "Linh", "family_name": "Nguyễn"}, "formal", "Kính gửi Quý khách Nguyễn Linh,"),
        ("vi", {"given_name": "Linh", "family_name": "Nguyễn"}, "informal", "Chào bạn Linh,"),
        ("en", {"given_name": "Amelia", "family_name": "Wright", "title": "ms"}, "formal", "Dear Ms Wright,"),
        ("en", {"name": "Amelia"}, "formal", "Dear Amelia,"),
        ("it", {"given_name": "Giulia", "family_name": "Rossi", "title": "ms"}, "formal",
         "Gentile signora Rossi,"),
        ("pt_BR", {"given_name": "Beatriz", "family_name": "Souza"}, "informal", "Oi, Beatriz!"),
        ("ar", {"given_name": "عمر", "family_name": "حداد", "title": "mr"}, "formal",
         "السيد عمر حداد المحترم،"),
        ("he", {"given_name": "נועה", "family_name": "לוי"}, "informal", "היי נועה,"),
    ],
)  # fmt: skip
def test_salutation_per_locale(renderer, tag, values, register, expected):
    text = render(renderer, "onboarding.welcome", tag, formality=register, customer=person(**values)).text
    assert text.splitlines()[0] == expected


def test_never_a_bare_family_name_where_a_title_is_expected(renderer):
    # A family name alone (no given name, no title): the full name, never "Dear Wright,".
    customer = person(name="Wright", family_name="Wright")
    for tag in SHIPPED:
        first = render(renderer, "onboarding.welcome", tag, formality="formal", customer=customer).text
        line = first.splitlines()[0]
        if tag == "ja":
            assert line == "Wright様"  # 様 is the honorific: a title, not a bare name
        else:
            assert "Wright" not in line, (tag, line)


# -- right-to-left ----------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["he", "ar"])
def test_rtl_html_and_isolated_ltr_values(renderer, tag):
    rendered = render(renderer, "order_delay.notice", tag)
    assert f'<html lang="{tag}" dir="rtl">' in rendered.html
    assert '<bdi dir="ltr">A-1001</bdi>' in rendered.html
    assert f"{FSI}A-1001{PDI}" in rendered.text
    assert f"{FSI}A-1001{PDI}" in rendered.subject
    sms = render(renderer, "order_delay.notice", tag, channel="sms").text
    assert f"{FSI}A-1001{PDI}" in sms


def test_ltr_locales_are_not_isolated(renderer):
    rendered = render(renderer, "order_delay.notice", "de")
    assert '<html lang="de" dir="ltr">' in rendered.html
    assert "<bdi" not in rendered.html and FSI not in rendered.text


# -- fallbacks --------------------------------------------------------------------------


def test_locale_chains():
    assert locale_chain("pt_BR") == ["pt_BR", "pt", "en"]
    assert locale_chain("pt-BR") == ["pt_BR", "pt", "en"]
    assert locale_chain("zh_Hant_TW") == ["zh_Hant_TW", "zh_Hant", "en"]
    assert locale_chain("zh_CN") == ["zh_Hans_CN", "zh_Hans", "en"]
    assert locale_chain("en_CA") == ["en_CA", "en"]
    assert locale_chain("he_IL") == ["he_IL", "he", "en"]


def test_unknown_locale_falls_back_to_default_and_is_logged_once(renderer, caplog):
    with caplog.at_level(logging.WARNING, logger="outreach.localization.locales"):
        assert locale_chain("xx_QQ") == ["en"]
        assert locale_chain("xx_QQ") == ["en"]
    assert [r.message for r in caplog.records].count("unknown locale 'xx_QQ': using 'en'") == 1


def test_fallback_is_per_message_never_a_raw_key_or_empty(tmp_path):
    templates = _copy_templates(tmp_path)
    base = templates / "_locale"
    # pt (generic) has one message; pt_BR lacks it: pt_BR falls back to pt for that one only.
    (base / "pt" / "LC_MESSAGES").mkdir(parents=True)
    (base / "pt" / "LC_MESSAGES" / "messages.po").write_text(
        'msgid ""\nmsgstr "Content-Type: text/plain; charset=utf-8\\n"\n\n'
        'msgctxt "informal"\nmsgid "Checking in"\nmsgstr "Só a ver como estás"\n', "utf-8"
    )  # fmt: skip
    po = base / "pt_BR" / "LC_MESSAGES" / "messages.po"
    text = po.read_text("utf-8")
    for context in ("formal", "informal"):
        start = text.index(f'msgctxt "{context}"\nmsgid "Checking in"\nmsgstr "')
        end = text.index("\n", text.index("msgstr", start))
        text = text[:start] + f'msgctxt "{context}"\nmsgid "Checking in"\nmsgstr ""' + text[end:]
    po.write_text(text, "utf-8")
    renderer = Renderer(templates, LOCALES)
    br = render(renderer, "checkin.checkin", "pt_BR", formality="informal")
    assert br.subject == "Só a ver como estás"
    assert (
        br.text
        == render(
            Renderer(STARTER / "templates", LOCALES), "checkin.checkin", "pt_BR", formality="informal"
        ).text
    )
    # en_CA and an unknown locale: English source text, never empty.
    for tag in ("en_CA", "pt_PT", "zh_Hant_TW", "xx_QQ"):
        rendered = render(renderer, "checkin.checkin", tag)
        assert rendered.subject == "Checking in" or tag == "pt_PT"
        assert rendered.text.strip() and "%(" not in rendered.text


# -- formatting -------------------------------------------------------------------------


def test_formatting_filters_use_locale_and_customer_zone(renderer):
    env = renderer.environment("de")
    customer = person(name="Ana", zone="Asia/Tokyo", locale="de")
    ctx = {"_locale": Locale.parse("de"), "_zone": customer.zone, "now": NOW, "direction": "ltr"}
    render_one = lambda src: env.from_string(src).render(ctx)  # noqa: E731
    # 23:30 UTC is already the next day in Tokyo.
    assert render_one("{{ '2026-03-21T23:30:00Z'|date }}") == "22. März 2026"
    assert render_one("{{ '2026-03-21T23:30:00Z'|time }}") == "08:30"
    assert render_one("{{ '2026-03-26'|relative }}") == "in 5 Tagen"
    assert render_one("{{ '1234.5'|money('EUR') }}") == "1.234,50\xa0€"
    assert render_one("{{ '1234.6'|money('JPY') }}") == "1.235\xa0¥"
    assert render_one("{{ 1234567.891|number }}") == "1.234.567,891"
    assert render_one("{{ 0.25|percent }}") == "25\xa0%"
    assert render_one("{{ ['Äpfel', 'Birnen', 'Kiwis']|list }}") == "Äpfel, Birnen und Kiwis"
    with pytest.raises(TemplateError, match="naive"):
        render_one("{{ naive|datetime }}".replace("naive", "now.replace(tzinfo=None)"))


# -- pseudo-locale and thread safety ---------------------------------------------------------


def test_pseudo_locale_leaves_no_untranslated_text(renderer):
    for journey in JOURNEYS:
        for step in journey.steps:
            for channel in step.channels:
                if channel == "webhook":
                    continue  # messages to the support team's systems, in English on purpose
                r = render(renderer, f"{journey.name}.{step.name}", PSEUDO, channel=channel)
                for part in filter(None, (r.subject, r.text, r.html)):
                    visible = re.sub(r"https?://\S+", "", re.sub(r"<[^>]+>", "", part))
                    outside = re.sub(r"⟦.*?⟧", "", visible, flags=re.S)
                    assert not re.search(r"[A-Za-z]{3,}", outside), (journey.name, step.name, outside)


def test_concurrent_rendering_never_mixes_languages(renderer):
    expected = {tag: render(renderer, "order_delay.notice", tag) for tag in SHIPPED}
    errors: list[str] = []
    start = threading.Barrier(8)

    def work(offset: int) -> None:
        start.wait()
        for i in range(60):
            tag = SHIPPED[(offset + i) % len(SHIPPED)]
            got = render(renderer, "order_delay.notice", tag)
            if got != expected[tag]:
                errors.append(tag)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len({r.subject for r in expected.values()}) == len(SHIPPED)


# -- SMS --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 0),
        ("Hello", "GSM-7", 5, 1),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("€" * 80, "GSM-7", 160, 1),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("שלום", "UCS-2", 4, 1),
        ("ש" * 70, "UCS-2", 70, 1),
        ("ש" * 71, "UCS-2", 71, 2),
        ("😀" * 35, "UCS-2", 70, 1),
        ("Ça va? ç", "UCS-2", 8, 1),
    ],
)
def test_sms_encoding_and_segments(text, encoding, units, segments):
    assert sms_info(text) == (encoding, units, segments) or (
        (sms_info(text).encoding, sms_info(text).units, sms_info(text).segments)
        == (encoding, units, segments)
    )
