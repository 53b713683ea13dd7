"""``outreach i18n``: extract, update, compile and check the translation catalogs."""

from __future__ import annotations

import json

import click

from .common import _config


@click.group()
def i18n() -> None:
    """Translation catalogs: extract, update, compile, check."""


@i18n.command("extract")
def i18n_extract() -> None:
    """Write templates/_locale/messages.pot from the templates (fails on a syntax error)."""
    from ..localization.catalogs import write_template

    settings, _, _ = _config()
    written = write_template(settings.templates_dir)
    click.echo(f"wrote {written}" if written else "messages.pot is up to date")


@i18n.command("update")
def i18n_update() -> None:
    """Merge new and changed messages into every shipped locale's catalog."""
    from ..localization.catalogs import update, write_template

    settings, locales, _ = _config()
    written = write_template(settings.templates_dir)
    if written:
        click.echo(f"wrote {written}")
    paths = update(settings.templates_dir, locales)
    for path in paths:
        click.echo(f"updated {path}")
    if not written and not paths:
        click.echo("every catalog is up to date")


@i18n.command("compile")
def i18n_compile() -> None:
    """Write .mo files beside the catalogs (for other gettext tools; Outreach reads the .po)."""
    from ..localization.catalogs import compile_all

    settings, locales, _ = _config()
    for path in compile_all(settings.templates_dir, locales):
        click.echo(f"compiled {path}")


@i18n.command("check")
@click.option("--json", "as_json", is_flag=True)
def i18n_check(as_json: bool) -> None:
    """Report missing, fuzzy and obsolete entries and plural headers; render every step in every
    locale, register, gender and channel and report markup where none can show, relative days,
    brackets, spacing and SMS segments. Fail if a required locale (config/locales.toml
    ``required``) has a problem. Others fall back, string by string."""
    from ..journeys.quality import rendering_report
    from ..localization.catalogs import check_catalog
    from ..localization.render import Renderer

    settings, locales, journeys = _config()
    reports = [check_catalog(settings.templates_dir, tag) for tag in locales.shipped]
    rendering = rendering_report(Renderer(settings.templates_dir, locales), journeys, locales)
    for r in reports:
        r.errors += rendering.problems.get(r.locale, [])
    failed = [r.locale for r in reports if not r.complete and r.locale in locales.required]
    if as_json:
        rows = [
            {**r.to_mapping(), "required": r.locale in locales.required, "sms": rendering.segments[r.locale]}
            for r in reports
        ]
        click.echo(json.dumps({"ok": not failed, "locales": rows}, ensure_ascii=False, indent=2))
    else:
        for r in reports:
            status = "ok" if r.complete else "INCOMPLETE" if r.locale in locales.required else "falls back"
            click.echo(
                f"{r.locale:<8} {status:<10} {r.total} entries, {len(r.missing)} missing, "
                f"{len(r.fuzzy)} fuzzy, {len(r.obsolete)} obsolete, {len(r.errors)} errors"
            )
            for label, items in (
                ("missing", r.missing),
                ("fuzzy", r.fuzzy),
                ("obsolete", r.obsolete),
                ("error", r.errors),
            ):
                for item in items[:20]:
                    click.echo(f"    {label}: {item}")
            for line in rendering.segments[r.locale]:
                click.echo(f"    sms: {line}")
    if failed:
        raise click.ClickException(f"incomplete locales: {', '.join(failed)}")
