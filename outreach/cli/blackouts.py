"""``outreach blackout``: company-wide pauses (an incident freeze, a day of mourning) that hold
matching sends and let them go, in order, when they end (``policy.blackouts``)."""

from __future__ import annotations

import json

import click

from ..errors import TimingError
from ..timing import parse_instant
from . import common


@click.group("blackout")
def blackout() -> None:
    """Company blackouts: spans of time in which matching sends wait."""


@blackout.command("add")
@click.option("--from", "start", required=True, help="Start, ISO 8601 with an offset or Z.")
@click.option("--until", required=True, help="End, ISO 8601 with an offset or Z.")
@click.option("--reason", required=True, help="Why: shown on every send it holds.")
@click.option(
    "--category", "categories", multiple=True,
    help="A category it holds (repeat for more). Default: every category but transactional ones.",
)  # fmt: skip
@click.option(
    "--country", "countries", multiple=True, help="A country (ISO 3166 alpha-2) it holds; default: all."
)
@click.option("--json", "as_json", is_flag=True)
def blackout_add(
    start: str,
    until: str,
    reason: str,
    categories: tuple[str, ...],
    countries: tuple[str, ...],
    as_json: bool,
) -> None:
    """Hold matching sends from --from until --until; they resume in the order they were due."""
    try:
        begins, ends = parse_instant(start), parse_instant(until)
    except TimingError as exc:
        common._fail(exc)
    with common._app() as app:
        added = app.blackouts.add(begins, ends, reason, categories, countries)
    click.echo(json.dumps(added.to_mapping(), ensure_ascii=False) if as_json else f"added {added.describe()}")


@blackout.command("list")
@click.option("--json", "as_json", is_flag=True)
def blackout_list(as_json: bool) -> None:
    """Every blackout, ended or not, by start."""
    with common._app() as app:
        found = app.blackouts.all()
        now = app.clock.now()
    if as_json:
        click.echo(json.dumps([b.to_mapping() for b in found], ensure_ascii=False))
        return
    for item in found:
        state = "ended" if item.until <= now else "on" if item.start <= now else "ahead"
        click.echo(f"{state:5}  {item.describe()}")


@blackout.command("remove")
@click.argument("blackout_id")
def blackout_remove(blackout_id: str) -> None:
    """Remove a blackout (sends it already deferred keep the time it gave them)."""
    with common._app() as app:
        if not app.blackouts.remove(blackout_id):
            raise click.ClickException(f"no blackout {blackout_id}")
    click.echo(f"removed {blackout_id}")
