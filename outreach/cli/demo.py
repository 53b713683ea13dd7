"""``outreach demo``: sample customers through two simulated weeks, with a table of what was sent."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path

import click

from ..app import Outreach
from ..channels.outbox import OUTBOX_FILE, read_outbox
from ..clock import SimulatedClock
from ..settings import Settings
from ..simulate import outcomes
from ..store.connections import connect
from ..store.embedded import embedded_client
from ..timing import parse_instant
from .common import _iso, _print_table
from .simulate import print_not_sent

#: Where the demo keeps its state, apart from a project's own.
DEMO_PREFIX = "outreach-demo:"


@click.command()
@click.option(
    "--days",
    default=15,
    show_default=True,
    help="Simulated days to fast-forward (day 14 steps land on the 15th).",
)
@click.option(
    "--outbox",
    "outbox_dir",
    type=click.Path(path_type=Path),
    default=Path("outbox"),
    show_default=True,
    help="Folder of the outbox (its deliveries file starts empty).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the deliveries as JSON.")
@click.option(
    "--smtp",
    "smtp_url",
    envvar="OUTREACH_SMTP_URL",
    default=None,
    help="Send the demo's email through this SMTP server (smtp://host:port; also OUTREACH_SMTP_URL).",
)
def demo(days: int, outbox_dir: Path, as_json: bool, smtp_url: str | None) -> None:
    """Run sample customers through two simulated weeks and show what was sent when."""
    from ..channels.config import build_transports, load_channels, outboxes
    from ..channels.outbox import Outbox
    from ..demo import DEMO_START, Tee, run_demo

    settings = Settings.from_env(outbox_dir=outbox_dir, prefix=DEMO_PREFIX, archive_url="")
    # Its own archive, never the project's (OUTREACH_ARCHIVE_URL): a new demo starts from nothing.
    for leftover in settings.archive_file.parent.glob(settings.archive_file.name + "*"):
        leftover.unlink()
    (outbox_dir / OUTBOX_FILE).unlink(missing_ok=True)
    clock = SimulatedClock(parse_instant(DEMO_START))
    environ = dict(os.environ)
    if smtp_url:
        environ["OUTREACH_SMTP_URL"] = smtp_url
        environ.setdefault("OUTREACH_SMTP_FROM", "Outreach demo <demo@outreach.example>")
        environ["OUTREACH_EMAIL_PROVIDERS"] = "smtp"
    with ExitStack() as stack:
        # The app reads channels.toml with the environment too: the demo's SMTP settings included.
        stack.enter_context(_environment(environ))
        # The embedded store (or the Redis given) keeps the demo's state under its own prefix, so
        # `outreach explain` shows any of its sends afterwards; a new demo starts from nothing.
        client = connect(settings.redis_url) if settings.redis_url else stack.enter_context(embedded_client())
        for pattern in (f"{DEMO_PREFIX}*", f"{{{DEMO_PREFIX}*"):  # its keys, and its broker's
            for key in client.scan_iter(match=pattern, count=1000):
                client.delete(key)
        channels = load_channels(settings.config_dir, environ)
        transports = build_transports(settings.config_dir, settings.outbox_dir, config=channels)
        on_outbox = outboxes(channels)
        # Real transports (SMTP) also write to the outbox, so the table shows every message.
        outbox = Outbox(settings.outbox_dir)
        transports = {c: t if isinstance(t, Outbox) else Tee(t, outbox) for c, t in transports.items()}
        app = Outreach(settings, client=client, clock=clock, transports=transports)
        worker = app.worker(threads=4)
        try:
            result = run_demo(app, worker, days=days)
            rows = read_outbox(outbox_dir)
            moved = _calendar_shifts(app, rows)
        finally:
            worker.stop()
            app.close()
        letters = app.deadletters.list()
        told = outcomes(app, result.start, result.end, outbox_dir)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "deliveries": rows,
                    "not_sent": told.not_sent,
                    "waiting": told.waiting,
                    "dead_letters": [d.to_mapping() for d in letters],
                    "calendar_shifts": moved,
                    "outbox_channels": on_outbox,
                },  # fmt: skip
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    click.echo(
        f"Simulated {_iso(result.start)} -> {_iso(result.end)}: "
        f"{result.emitted} events, {len(rows)} deliveries."
    )
    if on_outbox:
        click.echo(
            f"Provider: the outbox ({outbox_dir / OUTBOX_FILE}) for {', '.join(on_outbox)}. No customer "
            "receives these messages: name real providers in config/channels.toml (docs/CHANNELS.md).\n"
        )
    header = ("sent (UTC)", "customer local time", "customer", "journey.step", "channel", "subject")
    table = [header]
    for r in rows:
        local = datetime.fromisoformat(r["local"])
        zone_name = next(c["zone"] for c in _demo_zones() if c["id"] == r["customer_id"])
        table.append(
            (
                r["utc"][:16].replace("T", " "),
                f"{local:%a %Y-%m-%d %H:%M} {zone_name}",
                f"{r['customer_id']} ({r['locale']})",
                f"{r['journey']}.{r['step']}",
                r["channel"],
                (r["subject"] or r["body"].splitlines()[0])[:48],
            )
        )
    _print_table(table)
    by_journey = Counter(r["journey"] for r in rows)
    ids = Counter(r["send_id"] for r in rows)
    click.echo("\nBy journey: " + ", ".join(f"{k} {v}" for k, v in sorted(by_journey.items())))
    click.echo(f"Send ids delivered twice: {sum(1 for n in ids.values() if n > 1)}")
    click.echo(f"Dead letters: {len(letters)}" + "".join(f"\n  {d.reason}" for d in letters))
    print_not_sent(told)
    if moved:
        click.echo("\nMoved for a customer's own calendar (observances, business days):")
        for item in moved:
            click.echo(f"  {item['customer_id']} {item['journey_step']}: {item['text']}")
    click.echo(f"\nOutbox: {outbox_dir / OUTBOX_FILE}")
    example = told.sent[0]["send_id"] if told.sent else "SEND_ID"
    click.echo(f"The demo's state is kept under the prefix {DEMO_PREFIX!r}: "
               f"OUTREACH_PREFIX={DEMO_PREFIX} outreach explain {example}")  # fmt: skip


def _calendar_shifts(app: Outreach, rows: list[dict]) -> list[dict[str, str]]:
    """The moves each delivered send made for its customer's own calendar, from its history."""
    moved = []
    for row in rows:
        planned = app.records.history(row["send_id"])[:1]
        for shift in (planned[0].get("resolution") or {}).get("shifts", []) if planned else []:
            if shift["reason"] in ("observance", "ramadan", "weekend"):
                step = f"{row['journey']}.{row['step']}"
                moved.append({"customer_id": row["customer_id"], "journey_step": step, "text": shift["text"]})
    return moved


@contextmanager
def _environment(environ: dict[str, str]) -> Iterator[None]:
    """``os.environ`` as ``environ`` for a while, then as it was."""
    before = dict(os.environ)
    os.environ.update(environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(before)


def _demo_zones() -> list[dict]:
    """The demo's customers, whose zones the table shows beside each local time."""
    from ..demo import demo_customers

    return demo_customers()
