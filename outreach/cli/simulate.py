"""``outreach simulate``: the project's journeys over a copy of the current data, on a simulated clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import click

from ..simulate import Outcomes, simulate
from ..timing import parse_instant
from . import common


def _local(text: str, zone_name: str) -> str:
    return f"{datetime.fromisoformat(text):%a %Y-%m-%d %H:%M} {zone_name}"


def _step(row: dict) -> str:
    return f"{row['journey']}.{row['step']}"


def print_outcomes(result: Outcomes) -> None:
    """The tables a run prints: sent, not sent and why, still waiting, refused."""
    click.echo(
        f"{len(result.sent)} sent, {len(result.not_sent)} not sent, {len(result.waiting)} still waiting, "
        f"{len(result.refused)} refused."
    )
    if result.sent:
        click.echo("\nSent")
        rows: list[tuple[object, ...]] = [("sent (UTC)", "customer local time", "customer", "journey.step",
                                           "channel", "subject")]  # fmt: skip
        for r in result.sent:
            first = (r["subject"] or r["body"].splitlines()[0] if r["body"] else "")[:48]
            when, who, step = r["utc"][:16].replace("T", " "), f"{r['customer_id']} ({r['locale']})", _step(r)
            rows.append((when, _local(r["local"], r["zone"]), who, step, r["channel"], first))
        common._print_table(rows)
    print_not_sent(result)
    if result.refused:
        click.echo("\nRefused")
        for r in result.refused:
            click.echo(f"  {r['at'][:16].replace('T', ' ')}  {r['kind']}: {r['reason']}")


def print_not_sent(result: Outcomes) -> None:
    """What was not sent and why, and what is still waiting when the run ends."""
    if result.not_sent:
        click.echo("\nNot sent")
        rows: list[tuple[object, ...]] = [
            ("when (UTC)", "customer local time", "customer", "journey.step", "state", "reason", "why")
        ]
        for r in result.not_sent:
            when, local = r["utc"][:16].replace("T", " "), _local(r["local"], r["zone"])
            rows.append((when, local, r["customer_id"], _step(r), r["state"], r["reason"], r["why"][:70]))
        common._print_table(rows)
    if result.waiting:
        click.echo("\nStill waiting at the end")
        rows = [("due (UTC)", "customer local time", "customer", "journey.step", "held by")]
        for r in result.waiting:
            when, local = r["due_utc"][:16].replace("T", " "), _local(r["due_local"], r["zone"])
            rows.append((when, local, r["customer_id"], _step(r), r["why"][:70] or "its rule"))
        common._print_table(rows)


@click.command("simulate")
@click.option(
    "--days", type=click.IntRange(1, 3660), default=None, help="Simulated days from now (default 14)."
)
@click.option(
    "--until", "until_text", default=None, help="Simulate up to this instant (ISO 8601 with an offset)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcomes as JSON.")
def simulate_command(days: int | None, until_text: str | None, as_json: bool) -> None:
    """Run the journeys over a copy of the current data and show what would be sent when, and what
    would not be sent and why. The real schedule, customers and providers are never touched."""
    if days is not None and until_text is not None:
        raise click.UsageError("give --days or --until, not both")
    start = datetime.now(UTC).replace(microsecond=0)
    if until_text is not None:
        try:
            until = parse_instant(until_text)
        except Exception as exc:  # noqa: BLE001 - any parse problem is the user's input
            raise click.BadParameter(str(exc), param_hint="--until") from None
        if until <= start:
            raise click.BadParameter(
                f"{until_text} is not after now ({common._iso(start)})", param_hint="--until"
            )
    else:
        until = start + timedelta(days=days or 14)
    with common._app() as app:
        result = simulate(app.settings, app.client, start=start, until=until)
    if as_json:
        click.echo(json.dumps(result.to_mapping(), ensure_ascii=False, indent=2))
        return
    click.echo(f"Simulated {common._iso(start)} -> {common._iso(until)} over a copy of the data.")
    print_outcomes(result)
