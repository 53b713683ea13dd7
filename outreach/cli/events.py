"""``outreach emit`` and ``outreach events import``: the command-line ways in for lifecycle events."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any

import click

from ..app import Outreach
from ..errors import CustomerErased, InputError, OutreachError, UnknownCustomer
from . import common
from .common import UnreadableLine, _fail, _json_object


@click.command()
@click.argument("event_type", metavar="TYPE")
@click.option("--customer", "customer_id", required=True, help="Customer id.")
@click.option("--data", default="{}", help="Event data as a JSON object.")
@click.option("--id", "event_id", default=None, help="Event id (default: a new one).")
@click.option("--at", "occurred_at", default=None, help="When it happened (ISO 8601 with offset).")
def emit(event_type: str, customer_id: str, data: str, event_id: str | None, occurred_at: str | None) -> None:
    """Queue a lifecycle event for ingestion."""
    payload = _json_object("--data", data)
    try:
        with common._app() as app:
            event_id = app.emit(event_type, customer_id, payload, id=event_id, occurred_at=occurred_at)
    except OutreachError as exc:
        _fail(exc)
    click.echo(f"queued event {event_id} ({event_type} for {customer_id})")


@click.group()
def events() -> None:
    """Lifecycle events in bulk."""


@events.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--batch", default=1000, show_default=True, help="Events checked and queued together.")
def events_import(file: Path, batch: int) -> None:
    """Queue events from a JSON-lines file (one event object a line, as POST /v1/events takes it).

    Each line is checked as the API checks an event, its customer included; the good
    ones are kept in the inbox and queued in batches (a worker or `outreach run`
    applies them). A bad line is reported by its number and kept in the dead-letter
    store, to replay once fixed. Give each event an `id`: the same file imported again
    then plans nothing twice (a line without one gets a new id each time).
    """
    if batch < 1:
        raise click.BadParameter("must be at least 1", param_hint="--batch")
    read = [0]
    ok = 0
    problems: list[str] = []
    with (
        common._app() as app,
        click.progressbar(length=file.stat().st_size, label=f"Importing {file.name}", file=sys.stderr) as bar,
    ):
        lines = common.read_json_lines(file, read=read)
        while chunk := list(itertools.islice(lines, batch)):
            named = [row.get("customer_id") for _, row in chunk if isinstance(row, dict)]
            known = app.customers.existing([c for c in named if isinstance(c, str)])
            accepted = []
            for number, row in chunk:
                try:
                    accepted.append(_checked(app, row, known))
                except InputError as exc:
                    problems.append(_refuse(app, file, number, row, exc))
            app.submit(accepted)
            ok += len(accepted)
            bar.update(read[0] - bar.pos)
    for problem in problems:  # after the progress bar, which shares stderr
        click.echo(problem, err=True)
    kept = "" if not problems else " (kept in `outreach dead-letters list`, except those of erased customers)"
    click.echo(f"queued {ok} events, {len(problems)} rejected{kept}")


def _checked(app: Outreach, row: Any, known: set[str]) -> dict[str, Any]:
    """The event of one line, checked as the API checks it (InputError names the field)."""
    if isinstance(row, InputError):
        raise row
    if not isinstance(row, dict):
        raise InputError("line", row, "must be an event object")
    event = app.event_from(row)
    if event.customer_id not in known:
        if app.customers.is_erased(event.customer_id):
            raise CustomerErased(event.customer_id)
        raise UnknownCustomer(event.customer_id)
    return event.to_mapping()


def _refuse(app: Outreach, file: Path, number: int, row: Any, exc: InputError) -> str:
    """Keep a bad line in the dead-letter store, to replay once fixed (a line that is not JSON
    whole, to be mended by hand); returns what to report, naming the line by its number."""
    where = f"{file.name}:{number}: {exc}"
    if isinstance(exc, CustomerErased):
        return where  # nothing that names an erased customer is kept
    payload = row if isinstance(row, dict) else {"line": exc.line if isinstance(exc, UnreadableLine) else row}
    app.deadletters.add("event", where, payload, source=f"import {file}")
    return where
