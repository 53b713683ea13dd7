"""``outreach emit``: the command-line way in for lifecycle events."""

from __future__ import annotations

import click

from ..errors import OutreachError
from . import common
from .common import _fail, _json_object


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
