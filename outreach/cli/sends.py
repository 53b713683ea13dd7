"""Planned sends: ``schedule list``, ``explain``, ``when`` (the local-time rule) and ``dead-letters``."""

from __future__ import annotations

import json

import click

from ..clock import from_ms
from ..errors import OutreachError, TimingError
from ..timing import SendRule, parse_instant, resolve, zone
from . import common
from .common import _fail, _iso, _print_table

# -- looking at the schedule ------------------------------------------------------------


@click.group()
def schedule() -> None:
    """The durable schedule."""


@schedule.command("list")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def schedule_list(limit: int, as_json: bool) -> None:
    """Planned sends in due order, with the customer's local time."""
    with common._app() as app:
        rows = app.schedule.due_between(None, None, limit)
        sends = app.schedule.get_many([send_id for send_id, _ in rows])
        inflight = app.schedule.inflight(limit)
        waiting, claimed = app.schedule.depth()
    out = []
    for (send_id, due), send in zip(rows, sends, strict=True):
        local = due.astimezone(zone(send.zone if send else "UTC"))
        out.append(
            {
                "send_id": send_id,
                "due_utc": _iso(due),
                "due_local": local.isoformat(timespec="minutes"),
                "zone": send.zone if send else None,
                "customer_id": send.customer_id if send else None,
                "journey": send.journey if send else None,
                "step": send.step if send else None,
                "state": send.state.value if send else None,
            }
        )
    if as_json:
        click.echo(json.dumps({"due": out, "inflight": [[s, _iso(d)] for s, d in inflight]}, indent=2))
        return
    click.echo(f"{waiting} waiting, {claimed} in flight")
    if out:
        _print_table(
            [("send id", "due (UTC)", "customer local time", "customer", "journey.step", "state")]
            + [
                (
                    r["send_id"],
                    r["due_utc"],
                    f"{r['due_local']} {r['zone']}",
                    r["customer_id"],
                    f"{r['journey']}.{r['step']}",
                    r["state"],
                )
                for r in out
            ]
        )


@click.command()
@click.argument("send_id")
@click.option("--json", "as_json", is_flag=True)
def explain(send_id: str, as_json: bool) -> None:
    """Show a send's intent, state and every decision taken about it."""
    with common._app() as app:
        send = app.records.get(send_id)
        history = app.records.history(send_id)
        found = (
            app.journeys.experiments.get(send.intent.experiment) if send and send.intent.experiment else None
        )
    if send is None:
        raise click.ClickException(f"send_id={send_id!r}: no such send")
    tz = zone(send.zone)
    if as_json:
        click.echo(json.dumps({"send": send.as_stored(), "history": history}, ensure_ascii=False, indent=2))
        return
    due = send.due
    click.echo(f"send {send_id}: {send.journey}.{send.step} for {send.customer_id}")
    click.echo(f"  state     {send.state}" + (f" ({send.reason})" if send.reason else ""))
    click.echo(f"  category  {send.category}   channels {', '.join(send.channels)}")
    click.echo(f"  rule      {send.intent.rule}")
    if send.intent.experiment:
        experiment = found[1].experiment if found else None
        why = experiment.why(send.customer_id) if experiment else "the experiment is no longer configured"
        if experiment and experiment.assign(send.customer_id).name != send.intent.variant:
            why += " (as configured now; the send keeps the arm it was planned with)"
        click.echo(f"  variant   {send.intent.variant} of experiment {send.intent.experiment}: {why}")
        click.echo(f"  template  {send.template}")
    click.echo(f"  from      {send.start.isoformat()} (event {send.event_type} {send.event_id})")
    click.echo(f"  due       {_iso(due)} = {due.astimezone(tz).isoformat()} {send.zone}")
    if send.cancelled:
        click.echo(f"  tombstone {send.cancelled}")
    click.echo("  history:")
    for entry in history:
        at = from_ms(entry["at_ms"])
        click.echo(f"    {_iso(at)}  {entry['what']:<16} {entry['text']}")
        if entry.get("handed_ms"):
            # The provider's answer came at `at`; the hand-over began here.
            handed = from_ms(entry["handed_ms"]).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            answered = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            click.echo(f"      handed over at {handed}, answered at {answered}")
        for shift in (entry.get("resolution") or {}).get("shifts", []):
            click.echo(f"      shift {shift['reason']}: {shift['text']}")


# -- the local-time engine --------------------------------------------------------------


@click.command()
@click.option("--zone", "zone_name", required=True, help="IANA time zone, e.g. Europe/Berlin.")
@click.option("--from", "start", required=True, help="Start instant, ISO 8601 with offset or Z.")
@click.option("--days", default=0, type=int, help="Calendar days later.")
@click.option("--at", default=None, help="Local wall time HH:MM.")
@click.option("--window", default=None, help="Local send window HH:MM-HH:MM (may wrap midnight).")
@click.option("--weekdays", default=None, help="Allowed weekdays (mon,tue,wed,thu,fri) or 'business'.")
@click.option("--holidays", default=None, help="Holiday calendar CC or CC-SUBDIV, e.g. DE-BY.")
@click.option("--country", default=None, help="The customer's country: whose business days, which festivals.")
@click.option("--region", default=None, help="The customer's subdivision, where its weekend differs (MY-03).")
@click.option("--observances", default=None, help="Calendars the customer keeps, e.g. jewish,shabbat.")
@click.option("--ramadan", default=None, help="What Ramadan does for an islamic observer: after_iftar.")
@click.option("--latitude", default=None, type=float, help="The customer's latitude (sun times).")
@click.option("--longitude", default=None, type=float, help="The customer's longitude (sun times).")
@click.option("--json", "as_json", is_flag=True)
def when(
    zone_name: str, start: str, days: int, at: str | None, window: str | None, weekdays: str | None,
    holidays: str | None, country: str | None, region: str | None, observances: str | None,
    ramadan: str | None, latitude: float | None, longitude: float | None, as_json: bool,
) -> None:  # fmt: skip
    """Resolve a send rule: when would a message go out?"""
    rule_data = {
        "days": days, "at": at, "window": window, "weekdays": weekdays, "holidays": holidays,
        "country": country or (region[:2] if region else None), "region": region, "ramadan": ramadan,
        "latitude": latitude, "longitude": longitude,
        "observances": [o.strip() for o in observances.split(",") if o.strip()] if observances else None,
    }  # fmt: skip
    try:
        rule = SendRule.from_mapping({k: v for k, v in rule_data.items() if v is not None})
        resolution = resolve(rule, parse_instant(start), zone_name)
    except TimingError as exc:
        _fail(exc)
    data = resolution.to_mapping()
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    click.echo(f"{data['utc']}  =  {data['local']}  ({zone_name})")
    for shift in data["shifts"]:
        click.echo(f"  {shift['reason']}: {shift['text']}")


# -- dead letters -----------------------------------------------------------------------


@click.group("dead-letters")
def dead_letters() -> None:
    """Items that could not be processed, with their reason."""


@dead_letters.command("list")
@click.option("--json", "as_json", is_flag=True)
def dead_letters_list(as_json: bool) -> None:
    with common._app() as app:
        letters = app.deadletters.list(limit=1000)
    if as_json:
        click.echo(json.dumps([d.to_mapping() for d in letters], ensure_ascii=False, indent=2))
        return
    if not letters:
        click.echo("no dead letters")
    for d in letters:
        click.echo(f"{d.id}  {_iso(d.at)}  {d.kind:<8} {d.reason}")


@dead_letters.command("show")
@click.argument("entry_id")
def dead_letters_show(entry_id: str) -> None:
    with common._app() as app:
        letter = app.deadletters.get(entry_id)
    if letter is None:
        raise click.ClickException(f"id={entry_id!r}: no such dead letter")
    click.echo(json.dumps(letter.to_mapping(), ensure_ascii=False, indent=2))


@dead_letters.command("replay")
@click.argument("entry_id")
def dead_letters_replay(entry_id: str) -> None:
    """Process a dead letter again (fix the cause first)."""
    try:
        with common._app() as app:
            kind = app.replay(entry_id)
    except OutreachError as exc:
        _fail(exc)
    click.echo(f"replayed {kind} {entry_id}")


@dead_letters.command("purge")
@click.option("--yes", is_flag=True, help="Do not ask.")
def dead_letters_purge(yes: bool) -> None:
    with common._app() as app:
        letters = app.deadletters.list(limit=100_000)
        if letters and not yes:
            click.confirm(f"delete {len(letters)} dead letters?", abort=True)
        for d in letters:
            app.deadletters.remove(d.id)
    click.echo(f"purged {len(letters)} dead letters")
