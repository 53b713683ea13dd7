"""``outreach broadcast``: a one-off message to a segment or an uploaded list, each customer at a local
moment; planned in batches (resumable), cancelled as a whole, with its progress (``broadcasts``)."""

from __future__ import annotations

import json
from typing import Any

import click

from ..broadcasts import Broadcast, Moment, Status, definition
from ..broadcasts.planning import Run
from ..errors import InputError
from . import common


@click.group("broadcast")
def broadcast() -> None:
    """Broadcasts: one message to an audience, at a local time in each customer's zone."""


def _attributes(pairs: tuple[str, ...]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.ClickException(f"--attribute={pair!r}: expected NAME=VALUE (VALUE may be JSON)")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        found.setdefault(name, []).append(parsed)
    return found


def _run_text(run: Run) -> str:
    state = "cancelled" if run.cancelled else "finished" if run.finished else "stopped"
    out = f"planned {run.planned} sends in {run.batches} batches; planning {state}"
    for line, problem in run.bad_lines:
        out += f"\n  line {line}: {problem}"
    return out


def _status_text(status: Status) -> str:
    b = status.broadcast
    skipped = ", ".join(f"{k} {v}" for k, v in sorted(status.skipped.items())) or "none"
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(status.outcomes.items())) or "none yet"
    return "\n".join(
        [
            f"broadcast {b.id} ({b.name}): {status.state}, {b.category}, at {b.moment} local, "
            f"template {b.template}, channels {', '.join(b.channels)}"
            + (f", {b.rate:g}/s" if b.rate else ""),
            f"  planning: {status.shards_done}/{status.shards} shards done",
            f"  audience seen {status.seen}, planned {status.planned}, skipped: {skipped}",
            f"  outcomes: {outcomes}; waiting {status.waiting}",
        ]
    )


@broadcast.command("create")
@click.argument("broadcast_id")
@click.option("--name", help="Names the step of its sends (default: the id).")
@click.option("--category", required=True, help="Its category: consent applies per send as for any.")
@click.option("--channel", "channels", multiple=True, required=True, help="A channel, in order (repeat).")
@click.option("--template", required=True, help="A template folder under templates/.")
@click.option("--at", "at", required=True, help="'YYYY-MM-DD HH:MM', 'tomorrow HH:MM': each customer's time.")
@click.option("--data", default="{}", help="JSON object the template reads as data.")
@click.option("--list", "upload", help="An uploaded list (JSON lines or .csv with customer_id) as audience.")
@click.option("--country", multiple=True, help="Segment: a country (repeat for more).")
@click.option("--locale", multiple=True, help="Segment: a locale or language (fr matches fr-CA).")
@click.option("--zone", multiple=True, help="Segment: a time zone.")
@click.option("--register", multiple=True, help="Segment: the profile's formality.")
@click.option("--attribute", multiple=True, help="Segment: NAME=VALUE over profile attributes (repeat).")
@click.option("--window", help="Quiet hours: the local window it may go out in (default: its category's).")
@click.option("--rate", type=float, default=0.0, help="Messages per second over the whole broadcast.")
@click.option("--plan/--no-plan", "plan_now", default=True, help="Plan it at once (default).")
@click.option("--json", "as_json", is_flag=True)
def broadcast_create(
    broadcast_id: str, name: str | None, category: str, channels: tuple[str, ...], template: str, at: str,
    data: str, upload: str | None, country: tuple[str, ...], locale: tuple[str, ...], zone: tuple[str, ...],
    register: tuple[str, ...], attribute: tuple[str, ...], window: str | None, rate: float, plan_now: bool,
    as_json: bool,
) -> None:  # fmt: skip
    """Create a broadcast (and plan it, unless --no-plan)."""
    segment: dict[str, Any] = {"kind": "segment", "country": list(country), "locale": list(locale),
                               "zone": list(zone), "register": list(register)}  # fmt: skip
    if attribute:
        segment["attributes"] = _attributes(attribute)
    if upload and (country or locale or zone or register or attribute):
        raise click.ClickException("--list is the whole audience: leave out the segment's filters")
    with common._app() as app:  # the project's categories and channels are declared from here on
        try:
            wanted = definition(
                {
                    "id": broadcast_id, "name": name or broadcast_id, "category": category,
                    "channels": list(channels), "template": template, "moment": str(Moment.parse(at)),
                    "audience": {"kind": "list", "path": upload} if upload else segment,
                    "data": common._json_object("--data", data), "rule": {"window": window} if window else {},
                    "rate": rate,
                }
            )  # fmt: skip
        except InputError as exc:
            common._fail(exc)
        kept: Broadcast = app.broadcasts.create(wanted)
        run = app.broadcasts.plan(kept.id) if plan_now else None
        status = app.broadcasts.status(kept.id)
    if as_json:
        click.echo(json.dumps(status.to_mapping(), ensure_ascii=False))
        return
    click.echo(f"created broadcast {kept.id}")
    if run is not None:
        click.echo(_run_text(run))
    click.echo(_status_text(status))


@broadcast.command("plan")
@click.argument("broadcast_id", required=False)
@click.option("--batch", type=int, default=500, show_default=True, help="Customers per shard and batch.")
def broadcast_plan(broadcast_id: str | None, batch: int) -> None:
    """Plan a broadcast, or resume its planning where it stopped; without an id, every broadcast whose
    planning has not ended. Safe to run twice at once: no batch is planned twice."""
    with common._app() as app:
        ids = [broadcast_id] if broadcast_id else app.broadcasts.unfinished()
        for one in ids:
            click.echo(f"{one}: {_run_text(app.broadcasts.plan(one, batch))}")
        if not ids:
            click.echo("no broadcast is waiting to be planned")


broadcast.add_command(broadcast_plan, "resume")


@broadcast.command("cancel")
@click.argument("broadcast_id")
@click.option("--reason", default="", help="Why: written to every send it stops.")
def broadcast_cancel(broadcast_id: str, reason: str) -> None:
    """Cancel a broadcast as a whole: nothing more is planned, and none of its sends not yet at its
    provider goes out (claimed ones included)."""
    with common._app() as app:
        done = app.broadcasts.cancel(broadcast_id, reason)
        status = app.broadcasts.status(broadcast_id)
    again = " (it was cancelled before)" if done.already else ""
    click.echo(f"cancelled broadcast {broadcast_id}{again}: {done.cancelled} sends stopped, "
               f"{done.too_late} too late (already being handed over)")  # fmt: skip
    click.echo(_status_text(status))


@broadcast.command("status")
@click.argument("broadcast_id")
@click.option("--json", "as_json", is_flag=True)
def broadcast_status(broadcast_id: str, as_json: bool) -> None:
    """Progress: audience seen, planned, skipped and why, and the outcomes so far."""
    with common._app() as app:
        status = app.broadcasts.status(broadcast_id)
    click.echo(json.dumps(status.to_mapping(), ensure_ascii=False) if as_json else _status_text(status))


@broadcast.command("list")
@click.option("--json", "as_json", is_flag=True)
def broadcast_list(as_json: bool) -> None:
    """Every broadcast, oldest first, with its progress."""
    with common._app() as app:
        found = [app.broadcasts.status(b.id) for b in app.broadcasts.all()]
    if as_json:
        click.echo(json.dumps([s.to_mapping() for s in found], ensure_ascii=False))
        return
    rows: list[list[object]] = [["id", "name", "state", "at", "planned", "delivered", "cancelled", "waiting"]]
    for s in found:
        rows.append([s.broadcast.id, s.broadcast.name, s.state, str(s.broadcast.moment), s.planned,
                     s.outcomes.get("delivered", 0), s.outcomes.get("cancelled", 0), s.waiting])  # fmt: skip
    if found:
        common._print_table(rows)
    else:
        click.echo("no broadcasts")
