"""Localization that scales with a project: it requires the locales it names, the others fall back
string by string, and ``i18n update`` rewrites only the catalogs whose content changes."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from outreach.cli.commands import main

JOURNEY = """
[journey]
name = "welcome_back"
category = "lifecycle"
trigger = "customer.activated"

[[journey.steps]]
name = "hello"
"""


@pytest.fixture
def shop(tmp_path, monkeypatch):
    """A project made by init, used from its own folder."""
    for name in ("OUTREACH_REDIS_URL", "OUTREACH_PROJECT", "OUTREACH_CONFIG_DIR", "OUTREACH_TEMPLATES_DIR"):
        monkeypatch.delenv(name, raising=False)
    assert CliRunner().invoke(main, ["init", str(tmp_path / "shop")]).exit_code == 0
    monkeypatch.chdir(tmp_path / "shop")
    return tmp_path / "shop"


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == code, result.output
    return result.output


def catalogs(shop) -> dict[str, bytes]:
    return {
        str(p.relative_to(shop)): p.read_bytes()
        for p in sorted((shop / "templates" / "_locale").rglob("*.po*"))
    }


def test_update_leaves_a_catalog_whose_content_does_not_change_byte_for_byte(shop):
    before = catalogs(shop)
    assert "every catalog is up to date" in run("i18n", "update")
    assert catalogs(shop) == before


def test_a_journey_in_english_and_german_fails_only_what_the_project_requires(shop):
    (shop / "config" / "journeys" / "welcome_back.toml").write_text(JOURNEY)
    step = shop / "templates" / "welcome_back" / "hello"
    step.mkdir(parents=True)
    (step / "subject.txt").write_text("{% trans %}Good to see you again{% endtrans %}")
    (step / "body.txt").write_text("{{ salutation }}\n\n{% trans %}Welcome back.{% endtrans %}")
    (step / "body.html").write_text("<p>{% trans %}Welcome back.{% endtrans %}</p>")
    run("i18n", "update")
    german = shop / "templates" / "_locale" / "de" / "LC_MESSAGES" / "messages.po"
    text = german.read_text("utf-8")
    for source, translated in (("Good to see you again", "Schön, Sie wiederzusehen"),
                               ("Welcome back.", "Willkommen zurück.")):  # fmt: skip
        text = text.replace(f'msgid "{source}"\nmsgstr ""', f'msgid "{source}"\nmsgstr "{translated}"')
    german.write_text(text, "utf-8")

    # Every shipped locale is required by default: the eight without the new strings fail.
    failed = run("i18n", "check", code=1)
    assert "incomplete locales: it, hu, he, ar, vi, ja, zh_Hans, pt_BR" in failed
    locales = shop / "config" / "locales.toml"
    locales.write_text(locales.read_text().replace("shipped = [", 'required = ["en", "de"]\nshipped = [', 1))
    report = json.loads(run("i18n", "check", "--json"))
    assert report["ok"] is True
    by_tag = {row["locale"]: row for row in report["locales"]}
    assert by_tag["de"]["complete"] and by_tag["de"]["required"]
    assert not by_tag["hu"]["complete"] and not by_tag["hu"]["required"] and len(by_tag["hu"]["missing"]) == 4
    assert "falls back" in run("i18n", "check")
    # A second update changes nothing.
    before = catalogs(shop)
    run("i18n", "update")
    assert catalogs(shop) == before
    # Hungarian falls back to English for the new strings only.
    shown = run("preview", "welcome_back.hello", "--locale", "hu")
    assert "Welcome back." in shown and "Good to see you again" in shown
    assert "Willkommen zurück." in run("preview", "welcome_back.hello", "--locale", "de")


def test_required_must_name_shipped_locales(shop):
    locales = shop / "config" / "locales.toml"
    locales.write_text(locales.read_text().replace("shipped = [", 'required = ["sv"]\nshipped = [', 1))
    assert "required=['sv']: must list shipped locales" in run("i18n", "check", code=1)
