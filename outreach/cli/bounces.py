"""``outreach bounces ingest``: SMTP bounces (RFC 3464 delivery status notifications) and ARF
complaints from a mailbox, recorded on the sends they are about."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..channels.dsn import read_reports, split_mailbox
from . import common


@click.group()
def bounces() -> None:
    """Bounces and complaints that come back by email."""


@bounces.command("ingest")
@click.argument("source", type=click.Path(allow_dash=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def bounces_ingest(source: Path, as_json: bool) -> None:
    """Read an mbox file (or one message on stdin with ``-``, as an MTA pipes it) and record each
    delivery status notification on the send whose Message-ID it names: a bounce suppresses the
    address, a complaint also withdraws consent. Repeats change nothing."""
    data = sys.stdin.buffer.read() if str(source) == "-" else source.read_bytes()
    statuses = [status for message in split_mailbox(data) for status in read_reports(message)]
    totals: dict[str, int] = {}
    with common._app() as app:
        smtp = [(name, p.name) for name, c in app.channels.channels.items() for p in c.providers
                if p.kind == "smtp"]  # fmt: skip
        for status in statuses:
            outcome = "unknown"
            for channel, provider in smtp:
                outcome = next(iter(app.receipts.apply([status], channel, provider)))
                if outcome != "unknown":
                    break
            totals[outcome] = totals.get(outcome, 0) + 1
    if as_json:
        click.echo(json.dumps({"reports": len(statuses), "results": totals}))
        return
    summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(totals.items())) or "nothing"
    click.echo(f"{len(statuses)} reports: {summary}")
