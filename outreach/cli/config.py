"""``outreach config check``: the whole project checked, as a process does before it uses a change."""

from __future__ import annotations

import json

import click

from ..settings import Settings


@click.group("config")
def config() -> None:
    """The project's configuration."""


@config.command("check")
@click.option("--json", "as_json", is_flag=True)
def config_check(as_json: bool) -> None:
    """Check every part of the project: events, categories, channels (with the environment), journeys
    and their templates against their events, policy, locales, the required catalogs, and a render of
    every step in every channel and register. Exits 1 naming each problem's file."""
    from ..reloading import check

    settings = Settings.from_env()
    found = check(settings)
    problems = [p for part in found.values() for p in part]
    if as_json:
        click.echo(json.dumps({"ok": not problems, "project": str(settings.project), **found}, indent=2))
    else:
        click.echo(f"project {settings.project}")
        for part in ("project", "templates", "catalogs"):
            if part in found:
                click.echo(f"  {part:<10} {'ok' if not found[part] else f'{len(found[part])} problems'}")
                for problem in found[part][:20]:
                    click.echo(f"    {problem}")
    if problems:
        raise click.ClickException(f"{len(problems)} problems in the project")
