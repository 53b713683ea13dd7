"""``outreach customers``: profiles in and out, consent, do-not-contact, export and erasure."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from ..errors import InputError
from . import common


@click.group()
def customers() -> None:
    """Customer profiles."""


def _read_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, row) from CSV or JSON lines. A row that cannot be read yields an InputError
    in its place, so the rows around it are still imported and it is reported by its line."""
    if path.suffix.lower() == ".csv":
        yield from _csv_rows(path)
        return
    yield from common.read_json_lines(path)


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text  # refused by name when the profile is checked


def _csv_rows(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        yield 1, InputError("file", path.name, f"not UTF-8 ({exc.reason} at byte {exc.start})")
        return
    reader = csv.DictReader(io.StringIO(text))
    for row in reader:
        number = reader.line_num
        if None in row:
            extra = row[None]
            yield number, InputError("row", extra, f"has {len(extra)} more cells than the header")
            continue
        record: dict[str, Any] = {"attributes": {}}
        for key, value in row.items():
            if value in (None, ""):
                continue
            if key.startswith(("consent.", "channel_consent.")):
                group, name = key.split(".", 1)
                record.setdefault(group, {})[name] = value.strip().lower() in {"1", "true", "yes"}
            elif key.startswith("attributes."):
                record["attributes"][key[11:]] = value
            elif key == "observances":  # a list in one cell: "jewish, shabbat"
                record[key] = [v.strip() for v in value.replace(";", ",").split(",") if v.strip()]
            elif key in ("latitude", "longitude"):
                record[key] = _number(value)
            else:
                record[key] = value
        yield number, record


@customers.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def customers_import(file: Path) -> None:
    """Import profiles from CSV (header row) or JSON lines; bad rows go to dead letters."""
    rows = list(_read_rows(file))
    ok = bad = 0
    with (
        common._app() as app,
        click.progressbar(rows, label=f"Importing {file.name}", file=sys.stderr) as bar,
    ):
        for number, row in bar:
            try:
                if isinstance(row, InputError):
                    raise row
                app.upsert_customer(row)
                ok += 1
            except InputError as exc:
                bad += 1
                if isinstance(row, dict) and exc.field == "observances":
                    row = {k: v for k, v in row.items() if k != "observances"}  # special-category data
                app.deadletters.add(
                    "customer",
                    f"{file.name}:{number}: {exc}",
                    row if not isinstance(row, InputError) else str(row.value),
                    source=f"import {file}",
                )
                click.echo(f"{file.name}:{number}: {exc}", err=True)
    click.echo(f"imported {ok} customers, {bad} rejected (see `outreach dead-letters list`)")


@customers.command("show")
@click.argument("customer_id")
def customers_show(customer_id: str) -> None:
    """Print one profile as JSON."""
    with common._app() as app:
        customer = app.customers.get(customer_id)
    if customer is None:
        raise click.ClickException(f"customer_id={customer_id!r}: no such customer")
    click.echo(customer.to_json())


@customers.command("consent")
@click.argument("customer_id")
@click.option(
    "--category", default=None, help="A category customers can opt out of (config/categories.toml)."
)
@click.option("--channel", default=None, help="A channel (config/channels.toml).")
@click.option("--allow/--deny", "allowed", required=True, help="Give or withdraw consent.")
@click.option(
    "--source", default="cli", show_default=True, help="Where the change came from (kept in the history)."
)
def customers_consent(
    customer_id: str, category: str | None, channel: str | None, allowed: bool, source: str
) -> None:
    """Give or withdraw consent for a category or a channel; it applies to sends already planned."""
    with common._app() as app:
        change = app.set_consent(
            customer_id, category=category, channel=channel, allowed=allowed, source=source
        )
    customer = change.customer
    click.echo(
        json.dumps(
            {
                "consent": customer.consent,
                "channel_consent": customer.channel_consent,
                "sends": [stop.to_mapping() for stop in change.stops],
            }
        )
    )


@customers.command("dnc")
@click.argument("customer_id")
@click.option("--on/--off", "blocked", default=True, help="Add to (default) or remove from the list.")
def customers_dnc(customer_id: str, blocked: bool) -> None:
    """Put a customer on the global do-not-contact list (nothing is sent, transactional included)."""
    with common._app() as app:
        stops = app.set_do_not_contact(customer_id, blocked)
    click.echo(f"{customer_id} {'is on' if blocked else 'is off'} the do-not-contact list")
    for stop in stops:
        when = f" (handed to a provider at {stop.handed_at.isoformat()})" if stop.handed_at else ""
        click.echo(f"  {stop.send_id}: {stop.outcome.replace('_', ' ')}{when}")


@customers.command("export")
@click.argument("customer_id")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), default=None)
def customers_export(customer_id: str, out_file: Path | None) -> None:
    """Write everything held about a customer as JSON (profile, consent, sends, answers)."""
    with common._app() as app:
        data = app.export_customer(customer_id)
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if out_file:
        out_file.write_text(text + "\n", encoding="utf-8")
        click.echo(f"wrote {out_file}")
    else:
        click.echo(text)


@customers.command("erase")
@click.argument("customer_id")
@click.option("--yes", is_flag=True, help="Do not ask.")
def customers_erase(customer_id: str, yes: bool) -> None:
    """Erase a customer: cancel everything pending, remove all data, keep a hashed tombstone."""
    if not yes:
        click.confirm(f"erase everything about {customer_id}?", abort=True)
    with common._app() as app:
        summary = app.erase_customer(customer_id)
    click.echo(
        f"erased {customer_id}: {summary['sends']} sends, {summary['dead_letters']} dead letters, "
        f"{summary['keys']} other records"
    )
