"""Localization a native reader accepts: grammatical gender, relative days, plain titles,
salutations per channel and per person, messages that say what happened, SMS that fit, accessible
emails, and the corrected forms of what a native review found wrong."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from outreach.contracts import Field
from outreach.customers.profile import Customer
from outreach.errors import ConfigError, InputError
from outreach.journeys.config import load_journeys
from outreach.journeys.preview import preview
from outreach.journeys.quality import relative_day_problems, required_data, text_problems
from outreach.localization.filters import FSI, PDI, _relative_days, day_names, plain_text
from outreach.localization.locales import VOICES, babel_locale, load_locales
from outreach.localization.messages import CompiledCatalog, Messages
from outreach.localization.render import Renderer
from outreach.localization.sms import for_sms, is_gsm7, sms_info

from .conftest import STARTER

LOCALES = load_locales(STARTER / "config")
JOURNEYS = load_journeys(STARTER / "config", STARTER / "templates")
SHIPPED = list(LOCALES.shipped)
NOW = datetime(2026, 3, 21, 9, tzinfo=UTC)
ORDER = {"order_id": "A-1001", "new_eta": "2026-03-26"}


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(STARTER / "templates", LOCALES)


def person(**values) -> Customer:
    return Customer.from_mapping({"id": "p", "email": "p@example.com", "phone": "+4915205550102", **values})


def render(renderer, step, tag, *, formality=None, channel=None, customer=None, data=None, gender=None):
    rendered, _ = preview(
        renderer, JOURNEYS, step, locale=tag, now=NOW, channel=channel, formality=formality,
        customer=customer, data=data, gender=gender,
    )  # fmt: skip
    return rendered


# -- grammatical gender: the profile and the lookup ---------------------------------------


@pytest.mark.parametrize(
    ("given", "stored", "suffix"),
    [("female", "feminine", "f"), ("F", "feminine", "f"), ("masculine", "masculine", "m"),
     ("male", "masculine", "m"), ("nonbinary", "neutral", None), ("x", "neutral", None)],
)  # fmt: skip
def test_a_profile_gender_is_kept_as_a_grammatical_gender(given, stored, suffix):
    customer = person(name="Sam", gender=given)
    assert customer.gender == stored and customer.grammatical_gender == suffix
    assert Customer.from_json(customer.to_json()) == customer


def test_a_title_gives_the_gender_unless_the_profile_says_otherwise():
    assert person(name="Sam", title="ms").grammatical_gender == "f"
    assert person(name="Sam", title="mr").grammatical_gender == "m"
    assert person(name="Sam", title="dr").grammatical_gender is None
    assert person(name="Sam", title="mr", gender="neutral").grammatical_gender is None


def test_an_unknown_gender_or_name_order_is_refused_naming_the_field():
    with pytest.raises(InputError, match="gender"):
        person(name="Sam", gender="robot")
    with pytest.raises(InputError, match="name_order"):
        person(name="Sam", name_order="backwards")


def test_profiles_without_the_new_fields_are_written_as_before():
    data = person(name="Sam").to_json()
    assert "gender" not in data and "preferred_name" not in data and "name_order" not in data


def _catalog(tag: str, entries: dict[str, str], message: str = "Choose") -> CompiledCatalog:
    catalog = Catalog(locale=tag)
    for context, text in entries.items():
        catalog.add(message, text, context=context)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return CompiledCatalog(buffer)


def _templates_with(tmp_path, tag: str, entries: str):
    """A copy of the starter's templates whose ``tag`` catalog ends with ``entries`` (.po text)."""
    import shutil

    templates = tmp_path / "templates"
    shutil.copytree(STARTER / "templates", templates)
    po = templates / "_locale" / tag / "LC_MESSAGES" / "messages.po"
    po.write_text(po.read_text("utf-8") + entries, "utf-8")
    return templates


@settings(max_examples=200, deadline=None)
@given(
    present=st.sets(st.sampled_from(VOICES)),
    register=st.sampled_from(["formal", "informal"]),
    gender=st.sampled_from([None, "f", "m"]),
)
def test_a_lookup_prefers_the_gender_then_the_register_then_the_other_register(present, register, gender):
    """``informal.f`` → ``informal`` → ``formal.f`` → ``formal`` → the source text; a gendered text is
    never used for a customer of another or no gender."""
    messages = Messages([_catalog("ar", {voice: f"text {voice}" for voice in present})])
    other = "formal" if register == "informal" else "informal"
    order = [f"{register}.{gender}", register, f"{other}.{gender}", other] if gender else [register, other]
    expected = next((f"text {voice}" for voice in order if voice in present), "Choose")
    assert messages.gettext("Choose", register, gender) == expected
    compiled = messages.texts("Choose")
    key = f"{register}.{gender}" if gender else register
    assert compiled[VOICES.index(key)] == expected


def test_a_regional_catalog_beats_its_parents_gendered_text():
    """es_419's neutral text wins over the gendered text of its parent es (message by message); within
    one catalog the gendered text wins; the customer's register wins over either catalog."""
    welcome = "Welcome aboard!"
    es_419 = _catalog("es_419", {"formal": "¡Te damos la bienvenida!"}, welcome)
    es = _catalog(
        "es", {"formal.f": "¡Bienvenida!", "formal": "¡Le damos la bienvenida!", "informal.f": "x"}, welcome
    )
    messages = Messages([es_419, es])
    assert messages.gettext("Welcome aboard!", "formal", "f") == "¡Te damos la bienvenida!"
    assert messages.gettext("Welcome aboard!", "informal", "f") == "x"
    assert Messages([es]).gettext("Welcome aboard!", "formal", "f") == "¡Bienvenida!"


def test_gendered_entries_survive_an_update_and_are_not_obsolete(tmp_path):
    from outreach.localization.catalogs import check_catalog, update

    templates = _templates_with(
        tmp_path,
        "de",
        '\nmsgctxt "informal.f"\nmsgid "Checking in"\nmsgstr "Wir melden uns, liebe Kundin"\n'
        + '\nmsgctxt "informal.f"\nmsgid "Gone from the templates"\nmsgstr "Weg"\n',
    )
    po = templates / "_locale" / "de" / "LC_MESSAGES" / "messages.po"
    update(templates, replace(LOCALES, shipped=("en", "de")))
    text = po.read_text("utf-8")
    assert "Wir melden uns, liebe Kundin" in text and "Gone from the templates" not in text
    assert check_catalog(templates, "de").obsolete == []


# -- salutations: gender, titles, channels, the person's own name --------------------------


@pytest.mark.parametrize(
    ("tag", "values", "expected"),
    [
        ("de", {"given_name": "Eva", "family_name": "Schmidt", "title": "dr", "gender": "feminine"},
         "Sehr geehrte Frau Dr. Schmidt,"),
        ("de", {"given_name": "Jan", "family_name": "Schmidt", "title": "dr", "gender": "masculine"},
         "Sehr geehrter Herr Dr. Schmidt,"),
        ("de", {"given_name": "Kim", "family_name": "Schmidt", "title": "dr"}, "Guten Tag Dr. Schmidt,"),
        ("de", {"given_name": "Eva", "family_name": "Schmidt", "gender": "feminine"},
         "Sehr geehrte Frau Schmidt,"),
        ("de", {"given_name": "Kim", "family_name": "Schmidt", "title": "mx"}, "Guten Tag Kim Schmidt,"),
        ("hu", {"given_name": "John", "family_name": "Smith", "name_order": "given_family"},
         "Kedves John Smith!"),
        ("hu", {"given_name": "Eszter", "family_name": "Nagy"}, "Kedves Nagy Eszter!"),
        ("he", {"given_name": "נועה", "family_name": "לוי", "title": "dr"}, "שלום ד״ר לוי,"),
        ("he", {"given_name": "נועה", "family_name": "לוי", "title": "ms"}, "שלום גב׳ לוי,"),
    ],
)  # fmt: skip
def test_formal_letter_salutations(renderer, tag, values, expected):
    text = render(renderer, "onboarding.welcome", tag, formality="formal", customer=person(**values)).text
    assert text.splitlines()[0] == expected


def test_the_preferred_name_is_the_one_a_person_is_called_by(renderer):
    lan = person(given_name="Thị Lan", family_name="Nguyễn", preferred_name="Lan")
    text = render(renderer, "onboarding.welcome", "vi", formality="informal", customer=lan).text
    assert text.splitlines()[0] == "Chào bạn Lan,"
    liz = person(given_name="Elizabeth", family_name="Wright", preferred_name="Liz")
    assert render(renderer, "onboarding.welcome", "en", customer=liz).text.startswith("Hi Liz,")


@pytest.mark.parametrize("tag", SHIPPED)
@pytest.mark.parametrize("step", ["checkin.checkin", "onboarding.checkin"])
def test_a_chat_opens_with_its_salutation_on_a_line_of_its_own(renderer, tag, step):
    """Never "Hi Amelia, It has been…" or "尊敬的王伟： 您…": the salutation stands alone."""
    for register in ("formal", "informal"):
        text = render(renderer, step, tag, formality=register, channel="whatsapp").text
        first, _, rest = text.partition("\n")
        assert first and rest and not rest.startswith(" "), (tag, register, text)


def test_a_letter_opening_is_not_used_in_a_chat(renderer):
    linh = person(given_name="Linh", family_name="Nguyễn")
    chat = render(renderer, "checkin.checkin", "vi", formality="formal", channel="whatsapp", customer=linh)
    letter = render(renderer, "checkin.checkin", "vi", formality="formal", channel="email", customer=linh)
    assert letter.text.startswith("Kính gửi")
    assert not chat.text.startswith("Kính gửi")
    zh = render(renderer, "checkin.checkin", "zh_Hans", formality="formal", channel="whatsapp")
    assert not zh.text.startswith("尊敬的")


def test_a_locale_table_refuses_unknown_keys_and_titles(tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    base = (
        'shipped = ["en"]\n[en]\nformality = "informal"\n'
        'formal = ["Dear {full},"]\ninformal = ["Hi {given},"]\n'
    )
    (config / "locales.toml").write_text(base + 'chat_casual = ["Yo"]\n')
    with pytest.raises(ConfigError, match="chat_casual"):
        load_locales(config)
    (config / "locales.toml").write_text(base + '[en.titled]\nsir = "Dear Sir,"\n')
    with pytest.raises(ConfigError, match="sir"):
        load_locales(config)


# -- relative days --------------------------------------------------------------------------


@pytest.mark.parametrize("tag", SHIPPED)
def test_relative_days_read_as_cldr_names_them(tag):
    assert relative_day_problems(tag) == []
    locale = babel_locale(tag)
    names = day_names(locale)
    for days in (-1, 0, 1):
        assert _relative_days(days, locale) == names[days]
        assert not re.search(r"\d", _relative_days(days, locale))


@settings(max_examples=300, deadline=None)
@given(tag=st.sampled_from(SHIPPED), days=st.integers(-2000, 2000))
def test_a_relative_day_never_carries_a_count_in_brackets(tag, days):
    text = _relative_days(days, babel_locale(tag))
    assert not re.search(r"\(\d+\)", text)
    assert text.strip() == text and text


@pytest.mark.parametrize(("days", "word"), [(0, "today"), (1, "tomorrow")])
def test_the_delay_notice_says_today_and_tomorrow(renderer, days, word):
    eta = (date(2026, 3, 21) + timedelta(days=days)).isoformat()
    text = render(renderer, "order_delay.notice", "en", data={**ORDER, "new_eta": eta}).text
    assert f"({word})" in text and "in 0 days" not in text and "in 1 day" not in text


def test_hebrew_tomorrow_is_one_word_without_nested_brackets(renderer):
    text = render(renderer, "order_delay.notice", "he", data={**ORDER, "new_eta": "2026-03-22"}).text
    assert "(מחר)" in text
    assert "(1)" not in text


# -- plain text where no markup shows ----------------------------------------------------------


@pytest.mark.parametrize("tag", ["he", "ar"])
def test_a_right_to_left_title_isolates_with_unicode_not_markup(renderer, tag):
    html = render(renderer, "order_delay.notice", tag).html
    title = re.search(r"<title>(.*?)</title>", html, re.S).group(1)
    assert "<" not in title and f"{FSI}A-1001{PDI}" in title
    assert '<bdi dir="ltr">A-1001</bdi>' in html.split("</title>", 1)[1]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a", "&", "<", ">", '"', "A-1", " "]), max_size=12), st.booleans())
def test_plain_text_turns_isolating_markup_into_isolates(pieces, isolate):
    value = "".join(pieces)
    escaped = Markup.escape(value)
    html = Markup(f'x <bdi dir="ltr">{escaped}</bdi> y') if isolate else Markup(f"<b>{escaped}</b>")
    plain = plain_text(html)
    assert not re.search(r"<[A-Za-z/]", plain)
    assert (f"{FSI}{escaped}{PDI}" in plain) == isolate
    assert str(escaped) in plain


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('Hi <bdi dir="ltr">A-1</bdi>', "HTML markup"),
        ("Tom &amp; Jerry", "escaped HTML"),
        ("(בעוד יום (1))", "brackets inside brackets"),
        ("尊敬的王伟： 您已", "full-width"),
    ],
)
def test_the_rendering_check_sees_what_a_reader_sees(text, problem):
    from outreach.localization.render import Rendered

    found = text_problems(Rendered(subject=text, text="ok", html=None, locale="x", register="formal"))
    assert any(problem in p for p in found), found
    assert (
        text_problems(Rendered(subject="fine (A-1)", text="ok", html=None, locale="x", register="formal"))
        == []
    )


# -- the delay notice says what happened and what can be done -----------------------------------


FULL = {
    **ORDER,
    "original_eta": "2026-03-20",
    "reason": "strike",
    "options": ["cancel", "refund", "contact"],
    "remedy": "express",
    "credit": "10.00",
    "currency": "EUR",
    "order_url": "https://shop.example.com/orders/A-1001",
}


def test_the_delay_notice_gives_reason_options_remedy_and_link(renderer):
    rendered = render(renderer, "order_delay.notice", "en", data=FULL)
    for sentence in (
        "A strike is holding up deliveries.",
        "you can cancel the order free of charge",
        "we will refund the order in full",
        "reply to this message",
        "We have upgraded your delivery to express",
        "€10.00",
    ):
        assert sentence in rendered.text and sentence in rendered.html
    assert "https://shop.example.com/orders/A-1001" in rendered.text
    assert 'href="https://shop.example.com/orders/A-1001"' in rendered.html
    assert "You do not need to do anything" not in rendered.text
    plain = render(renderer, "order_delay.notice", "en", data=ORDER).text
    assert "You do not need to do anything" in plain and "strike" not in plain


def test_the_contract_refuses_an_unknown_reason_or_option():
    contract = __import__("outreach.registry", fromlist=["EVENT_TYPES"]).EVENT_TYPES["order.delayed"].contract
    with pytest.raises(InputError, match="reason"):
        contract.check({**ORDER, "reason": "aliens"})
    with pytest.raises(InputError, match=r"options.*item \[1\]"):
        contract.check({**ORDER, "options": ["cancel", "teleport"]})
    with pytest.raises(ConfigError, match="enum lists its values"):
        Field.parse("events.toml", "options", {"type": "list", "items": "enum"})


@pytest.mark.parametrize("tag", [t for t in SHIPPED if t != "en"])
def test_every_optional_sentence_of_the_notice_is_translated(renderer, tag):
    english = render(renderer, "order_delay.notice", "en", data=FULL)
    for register in ("formal", "informal"):
        rendered = render(renderer, "order_delay.notice", tag, formality=register, data=FULL)
        for sentence in re.split(r"(?<=[.!?])\s+", english.text):
            if len(sentence) > 25 and "http" not in sentence:
                assert sentence not in rendered.text, (tag, register, sentence)


@pytest.mark.parametrize("tag", SHIPPED)
def test_the_delay_sms_names_the_brand_and_fits_one_segment_with_what_it_must_say(renderer, tag):
    for register in ("formal", "informal"):
        sms = render(renderer, "order_delay.notice", tag, formality=register, channel="sms", data=ORDER).text
        assert "Outreach" in sms
        assert sms_info(sms).segments == 1, (tag, register, sms, sms_info(sms))
        full = render(renderer, "order_delay.notice", tag, formality=register, channel="sms", data=FULL).text
        assert "https://shop.example.com/orders/A-1001" in full
        assert sms_info(full).segments <= LOCALES.sms_max_segments


def test_required_data_is_what_the_trigger_insists_on():
    assert required_data(JOURNEYS["order_delay"]) == {"order_id": "A-1001", "new_eta": "2026-03-26"}


# -- SMS text --------------------------------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab .€\u00a0\u202f’“”–…éשç")), max_size=40))
def test_an_sms_keeps_every_character_but_the_spaces_and_punctuation_gsm7_lacks(text):
    sent = for_sms(text)
    assert "\u00a0" not in sent and "\u202f" not in sent
    if is_gsm7(text.replace("\u00a0", " ").replace("\u202f", " ")):
        assert sent == text.replace("\u00a0", " ").replace("\u202f", " ")
    if not is_gsm7(sent):
        # UCS-2 anyway: the typography stays as written.
        assert sent == text.replace("\u00a0", " ").replace("\u202f", " ")
    assert sms_info(sent).segments <= sms_info(text).segments


# -- accessibility ------------------------------------------------------------------------------


@pytest.mark.parametrize("tag", SHIPPED)
def test_survey_links_have_names_and_the_scale_comes_first(renderer, tag):
    for step in ("survey.csat", "nps.nps", "ces.ces"):
        html = render(renderer, step, tag).html
        labels = re.findall(r'<a href="[^"]+" aria-label="([^"]+)"', html)
        assert len(labels) in (5, 7, 11) and len(set(labels)) == len(labels), (tag, step)
        assert "<h1" in html
        table = html.index("<table")
        assert html.index("=", html.index("</h1>")) < table  # the scale hint precedes the links


# -- what the native review found -------------------------------------------------------------


def test_review_findings_are_fixed(renderer):
    hu = render(renderer, "order_delay.notice", "hu", formality="formal", data=ORDER)
    assert hu.subject == "Késik a rendelése (A-1001)"
    for register in ("formal", "informal"):
        sms = render(renderer, "order_delay.notice", "hu", formality=register, channel="sms", data=ORDER).text
        # The value in parentheses (no a/az before it), the date's own full stop ends the sentence.
        assert "(A-1001)" in sms and "számú" not in sms and ".." not in sms
        assert sms.startswith("Outreach: ") and sms_info(sms).segments == 1
    he = render(renderer, "order_delay.notice", "he", data=ORDER).text
    assert "מועד המסירה המשוער החדש" in he and "תאריך המשלוח" not in he
    vi = render(renderer, "order_delay.notice", "vi", formality="formal", data=FULL).text
    assert "vào số dư tài khoản của Quý khách" in vi and "tín dụng" not in vi
    assert "0 = hoàn toàn không có khả năng, 10 = rất có khả năng" in render(renderer, "nps.nps", "vi").text
    assert "1 = عدم رضا تام، 5 = رضا تام" in render(renderer, "survey.csat", "ar").text
    zh = render(renderer, "order_delay.notice", "zh_Hans", data=FULL).text
    assert "作为延迟的补偿" in zh and "为弥补您的等待" not in zh
    vi_chat = render(renderer, "checkin.checkin", "vi", formality="informal", channel="whatsapp").text
    assert "lâu rồi không gặp" not in vi_chat.lower()


def test_italian_buttons_take_the_form_a_user_interface_uses(renderer):
    env = renderer.environment("it")
    messages = env.outreach_messages  # type: ignore[attr-defined]
    for source, button in (
        ("Unsubscribe", "Annulla l'iscrizione"),
        ("Send comment", "Invia commento"),
        ("Save preferences", "Salva le preferenze"),
    ):
        assert messages.gettext(source, "formal") == button
        assert messages.gettext(source, "informal") == button


def test_arabic_neutral_text_uses_no_masculine_imperative_and_gendered_text_agrees(renderer):
    neutral = render(renderer, "survey.csat", "ar", formality="informal", gender="neutral").text
    assert "اختر " not in neutral and "غير راضٍ" not in neutral
    feminine = render(renderer, "survey.csat", "ar", formality="informal", gender="feminine").text
    masculine = render(renderer, "survey.csat", "ar", formality="informal", gender="masculine").text
    assert feminine != masculine


# -- money ------------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(
    tag=st.sampled_from([*SHIPPED, "es_MX", "es_419", "es_AR", "de_CH", "en_IN", "fr_CH"]),
    currency=st.sampled_from(["EUR", "USD", "CHF", "JPY", "GBP", "MXN", "PLN", "TRY", "KRW", "SEK", "AED"]),
    amount=st.decimals(min_value=-(10**7), max_value=10**7, places=2, allow_nan=False),
)
def test_a_currency_code_never_touches_its_digits(tag, currency, amount):
    """CLDR's currency spacing (Babel leaves it out): "EUR 10.00" in es_MX, never "EUR10.00"."""
    from outreach.localization.filters import _number_text

    text = _number_text(str(amount), "money", babel_locale(tag), currency)
    assert not re.search(r"[^\W\d_]\d|\d[^\W\d_]", text), text


@pytest.mark.parametrize(
    ("tag", "value", "expected"),
    [("es", "2000", "2000"), ("es", "20000", "20.000"), ("es_MX", "2000", "2,000"), ("pl", "2000", "2000"),
     ("pl", "20000", "20\u00a0000"), ("de", "2000", "2.000"), ("pt_PT", "-2500", "-2500")],
)  # fmt: skip
def test_four_digit_numbers_are_grouped_as_cldr_says(tag, value, expected):
    """minimumGroupingDigits (Babel ignores it): Spain and Poland write 2000, not 2.000 or 2 000."""
    from outreach.localization.filters import _number_text

    assert _number_text(value, "decimal", babel_locale(tag)) == expected


@pytest.mark.parametrize("day", range(1, 29))
def test_french_writes_the_first_of_a_month_as_an_ordinal(day):
    from outreach.localization.filters import _date_text

    fr = babel_locale("fr")
    long = _date_text(f"2026-04-{day:02d}", "long", fr, "UTC")
    assert long == ("1er avril 2026" if day == 1 else f"{day} avril 2026")
    assert _date_text(f"2026-04-{day:02d}", "short", fr, "UTC") == f"{day:02d}/04/2026"


def test_a_delay_of_no_days_is_not_announced(renderer):
    same = render(renderer, "order_delay.notice", "en", data={**ORDER, "original_eta": "2026-03-26"}).text
    assert "later than we promised" not in same
    later = render(renderer, "order_delay.notice", "en", data={**ORDER, "original_eta": "2026-03-25"}).text
    assert "That is 1 day later than we promised." in later


# -- what a review of the change found ----------------------------------------------------------


def test_a_gendered_entry_that_names_an_unknown_value_fails_the_check(tmp_path):
    from outreach.localization.catalogs import check_catalog

    templates = _templates_with(
        tmp_path,
        "pl",
        '\nmsgctxt "formal.f"\nmsgid "Your order %(order)s is running late"\nmsgstr "Zamówienie %(ordr)s"\n',
    )
    errors = check_catalog(templates, "pl").errors
    assert any("%(ordr)s" in e and "[formal.f]" in e for e in errors), errors


def test_plain_text_escapes_a_plain_string():
    assert str(plain_text('Tom" <b>')) == "Tom&#34; &lt;b&gt;"


def test_a_chat_never_carries_a_title(renderer):
    """ "Dear Ms Wright," is a letter's opening: a WhatsApp message opens the way chats do."""
    amelia = person(given_name="Amelia", family_name="Wright", title="ms")
    for tag in SHIPPED:
        letter = render(
            renderer, "checkin.checkin", tag, formality="formal", channel="email", customer=amelia
        )
        chat = render(
            renderer, "checkin.checkin", tag, formality="formal", channel="whatsapp", customer=amelia
        )
        if tag == "en":
            assert letter.text.startswith("Dear Ms Wright,") and not chat.text.startswith("Dear Ms")


def test_a_link_in_event_data_must_be_an_https_or_http_address():
    from outreach.registry import EVENT_TYPES

    contract = EVENT_TYPES["order.delayed"].contract
    contract.check({**ORDER, "order_url": "https://shop.example.com/orders/A-1001"})
    for bad in ("javascript:alert(1)", "https://user@evil.example/", "https://a b", "//x.example", "data:,x"):
        with pytest.raises(InputError, match="order_url"):
            contract.check({**ORDER, "order_url": bad})


def test_a_profile_written_by_a_later_version_is_read():
    import json

    stored = json.loads(person(name="Sam", gender="f").to_json())
    assert Customer.from_json(json.dumps({**stored, "a_field_of_the_future": 1})) == person(
        name="Sam", gender="f"
    )


def test_the_brand_is_the_most_specific_locale_that_names_one(tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "locales.toml").write_text(
        'brand = "Shop"\nshipped = ["en", "pt", "pt_BR"]\n'
        '[en]\nformality = "informal"\nformal = ["Dear {full},"]\ninformal = ["Hi {given},"]\n'
        '[pt]\nformality = "informal"\nformal = ["Olá,"]\ninformal = ["Oi!"]\nbrand = "Loja"\n'
        '[pt_BR]\nformality = "informal"\nformal = ["Olá,"]\ninformal = ["Oi!"]\n'
    )
    locales = load_locales(config)
    assert locales.brand_for(["pt_BR", "pt", "en"]) == "Loja"
    assert locales.brand_for(["en"]) == "Shop"


def test_an_email_without_a_title_has_no_empty_heading(tmp_path):
    templates = _templates_with(tmp_path, "de", "")
    (templates / "onboarding" / "welcome" / "body.html").write_text(
        '{% extends "_layouts/email.html" %}{% block content %}<p>{{ salutation }}</p>{% endblock %}'
    )
    rendered = render(Renderer(templates, LOCALES), "onboarding.welcome", "en")
    assert "<h1" not in rendered.html


@pytest.mark.parametrize("gender", ["female", "F", "feminine"])
def test_preview_reads_a_gender_the_way_a_profile_does(renderer, gender):
    assert render(renderer, "onboarding.welcome", "de", gender=gender, formality="formal").text.startswith(
        "Sehr geehrte Frau Müller,"
    )


def test_the_rendering_check_renders_every_customer_page(tmp_path):
    from outreach.journeys.quality import page_problems

    assert page_problems(Renderer(STARTER / "templates", LOCALES), "pl") == []
    templates = _templates_with(tmp_path, "de", "")
    (templates / "_web" / "thanks.html").write_text(
        '{% extends "_web/base.html" %}{% block content %}{{ nothing.here }}{% endblock %}'
    )
    problems = page_problems(Renderer(templates, LOCALES), "de")
    assert problems and all("_web/thanks.html" in p for p in problems)
