"""The ``outreach`` command."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import shutil
import signal
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from ..app import Outreach
from ..channels.outbox import OUTBOX_FILE, read_outbox
from ..clock import SimulatedClock, from_ms
from ..errors import InputError, OutreachError, TimingError
from ..report import report_command
from ..settings import Settings
from ..store.embedded import embedded_client
from ..timing import SendRule, parse_instant, resolve, zone


@contextmanager
def _app(**overrides: Any) -> Iterator[Outreach]:
    """The application on Redis when configured, else on the embedded store file."""
    settings = Settings.from_env(**overrides)
    if settings.redis_url:
        yield Outreach(settings)
        return
    with embedded_client() as client:
        yield Outreach(settings, client=client)


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc))


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class _Group(click.Group):
    """Turns any OutreachError into a one-line error and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OutreachError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Group)
@click.option("-v", "--verbose", is_flag=True, help="Log what the worker and scheduler do.")
def main(verbose: bool) -> None:
    """Outreach: proactive, localized customer messages at the right local time."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


# -- the demo ---------------------------------------------------------------------------


@main.command()
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
    from ..channels.config import build_transports
    from ..channels.outbox import Outbox
    from ..demo import DEMO_START, Tee, run_demo

    settings = Settings.from_env(outbox_dir=outbox_dir)
    if settings.redis_url:
        # Its own prefix on a shared Redis, removed afterwards: nothing else is touched.
        settings = Settings.from_env(outbox_dir=outbox_dir, prefix=f"outreach-demo:{uuid.uuid4().hex[:8]}:")
    (outbox_dir / OUTBOX_FILE).unlink(missing_ok=True)
    clock = SimulatedClock(parse_instant(DEMO_START))
    environ = dict(os.environ)
    if smtp_url:
        environ["OUTREACH_SMTP_URL"] = smtp_url
        environ.setdefault("OUTREACH_SMTP_FROM", "Outreach demo <demo@outreach.example>")
    transports = build_transports(settings.config_dir, settings.outbox_dir, environ)
    # Real transports (SMTP) also write to the outbox, so the table shows every message.
    outbox = Outbox(settings.outbox_dir)
    transports = {c: t if isinstance(t, Outbox) else Tee(t, outbox) for c, t in transports.items()}
    app = Outreach(settings, clock=clock, transports=transports)
    worker = app.worker(threads=4)
    try:
        result = run_demo(app, worker, days=days)
    finally:
        worker.stop()
        app.close()
    rows = read_outbox(outbox_dir)
    letters = app.deadletters.list()
    if settings.redis_url:
        for key in app.client.scan_iter(match=settings.prefix + "*", count=1000):
            app.client.delete(key)
    if as_json:
        click.echo(
            json.dumps(
                {"deliveries": rows, "dead_letters": [d.to_mapping() for d in letters]},
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    click.echo(
        f"Simulated {_iso(result.start)} -> {_iso(result.end)}: "
        f"{result.emitted} events, {len(rows)} deliveries.\n"
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
    click.echo(f"Outbox: {outbox_dir / OUTBOX_FILE}")


def _demo_zones() -> list[dict]:
    from ..demo import demo_customers

    return demo_customers()


def _print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    limit = shutil.get_terminal_size((160, 20)).columns
    for row in rows:
        line = "  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        click.echo(line[:limit] if len(line) > limit and limit > 100 else line)


# -- processes --------------------------------------------------------------------------


@main.command()
@click.option("--threads", default=None, type=int, help="Worker threads (default 8).")
@click.option("--until-idle", is_flag=True, help="Process what is queued and due now, then exit.")
def run(threads: int | None, until_idle: bool) -> None:
    """Run the scheduler and a worker in one process."""
    from ..ticks import build_scheduler

    with _app() as app:
        worker = app.worker(threads)
        try:
            if until_idle:
                app.drain(worker)
                while app.sweep() + app.pump():
                    app.drain(worker)
                app.drain(worker)
                waiting, inflight = app.schedule.depth()
                click.echo(f"idle: {waiting} sends waiting, {inflight} in flight")
                return
            scheduler = build_scheduler(app, blocking=False)
            scheduler.start()
            click.echo("outreach running (scheduler + worker); Ctrl-C stops")
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
            scheduler.shutdown()
        finally:
            worker.stop()
            app.close()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def web(host: str, port: int) -> None:
    """Run the web process: survey, unsubscribe and preference pages, the API, /metrics."""
    import uvicorn

    uvicorn.run("outreach.web.main:app", host=host, port=port, proxy_headers=True)


@main.command()
def scheduler() -> None:
    """Run the scheduler process (pump and sweeps) against OUTREACH_REDIS_URL."""
    from ..ticks import build_scheduler

    settings = Settings.from_env()
    if not settings.redis_url:
        raise click.ClickException("the scheduler process needs OUTREACH_REDIS_URL (or use `outreach run`)")
    app = Outreach(settings)
    click.echo("outreach scheduler running; Ctrl-C stops")
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        build_scheduler(app, blocking=True).start()


# -- ways in ----------------------------------------------------------------------------


@main.command()
@click.argument("event_type", metavar="TYPE")
@click.option("--customer", "customer_id", required=True, help="Customer id.")
@click.option("--data", default="{}", help="Event data as a JSON object.")
@click.option("--id", "event_id", default=None, help="Event id (default: a new one).")
@click.option("--at", "occurred_at", default=None, help="When it happened (ISO 8601 with offset).")
def emit(event_type: str, customer_id: str, data: str, event_id: str | None, occurred_at: str | None):
    """Queue a lifecycle event for ingestion."""
    try:
        payload = json.loads(data)
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"--data={data!r}: not valid JSON ({exc.msg})") from None
    try:
        with _app() as app:
            event_id = app.emit(event_type, customer_id, payload, id=event_id, occurred_at=occurred_at)
    except OutreachError as exc:
        _fail(exc)
    click.echo(f"queued event {event_id} ({event_type} for {customer_id})")


@main.group()
def customers() -> None:
    """Customer profiles."""


def _read_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, row) from CSV or JSON lines; bad JSON yields the error text as row."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".csv":
        for number, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
            record: dict[str, Any] = {"attributes": {}}
            for key, value in row.items():
                if value in (None, ""):
                    continue
                if key.startswith("consent."):
                    record.setdefault("consent", {})[key[8:]] = value.strip().lower() in {
                        "1",
                        "true",
                        "yes",
                    }
                elif key.startswith("attributes."):
                    record["attributes"][key[11:]] = value
                else:
                    record[key] = value
            yield number, record
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, InputError("line", line[:80], f"malformed JSON ({exc.msg})")


@customers.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def customers_import(file: Path) -> None:
    """Import profiles from CSV (header row) or JSON lines; bad rows go to dead letters."""
    rows = list(_read_rows(file))
    ok = bad = 0
    with _app() as app, click.progressbar(rows, label=f"Importing {file.name}", file=sys.stderr) as bar:
        for number, row in bar:
            try:
                if isinstance(row, InputError):
                    raise row
                app.upsert_customer(row)
                ok += 1
            except InputError as exc:
                bad += 1
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
    with _app() as app:
        customer = app.customers.get(customer_id)
    if customer is None:
        raise click.ClickException(f"customer_id={customer_id!r}: no such customer")
    click.echo(customer.to_json())


@customers.command("consent")
@click.argument("customer_id")
@click.option("--category", type=click.Choice(["lifecycle", "survey", "marketing"]), default=None)
@click.option("--channel", type=click.Choice(["email", "sms", "whatsapp", "webhook"]), default=None)
@click.option("--allow/--deny", "allowed", required=True, help="Give or withdraw consent.")
@click.option(
    "--source", default="cli", show_default=True, help="Where the change came from (kept in the history)."
)
def customers_consent(customer_id: str, category, channel, allowed: bool, source: str) -> None:
    """Give or withdraw consent for a category or a channel; it applies to sends already planned."""
    with _app() as app:
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
    with _app() as app:
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
    with _app() as app:
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
    with _app() as app:
        summary = app.erase_customer(customer_id)
    click.echo(
        f"erased {customer_id}: {summary['sends']} sends, {summary['dead_letters']} dead letters, "
        f"{summary['keys']} other records"
    )


# -- looking at the schedule ------------------------------------------------------------


@main.group()
def schedule() -> None:
    """The durable schedule."""


@schedule.command("list")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def schedule_list(limit: int, as_json: bool) -> None:
    """Planned sends in due order, with the customer's local time."""
    with _app() as app:
        rows = app.schedule.due_between(None, None, limit)
        sends = app.schedule.get_many([send_id for send_id, _ in rows])
        inflight = app.schedule.inflight(limit)
        waiting, claimed = app.schedule.depth()
    out = []
    for (send_id, due), send in zip(rows, sends, strict=True):
        send = send or {}
        local = due.astimezone(zone(send.get("zone", "UTC")))
        out.append(
            {
                "send_id": send_id,
                "due_utc": _iso(due),
                "due_local": local.isoformat(timespec="minutes"),
                "zone": send.get("zone"),
                "customer_id": send.get("customer_id"),
                "journey": send.get("journey"),
                "step": send.get("step"),
                "state": send.get("state"),
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


@main.command()
@click.argument("send_id")
@click.option("--json", "as_json", is_flag=True)
def explain(send_id: str, as_json: bool) -> None:
    """Show a send's intent, state and every decision taken about it."""
    with _app() as app:
        send = app.schedule.get(send_id)
        history = app.schedule.history(send_id)
    if send is None:
        raise click.ClickException(f"send_id={send_id!r}: no such send")
    tz = zone(send.get("zone", "UTC"))
    if as_json:
        click.echo(json.dumps({"send": send, "history": history}, ensure_ascii=False, indent=2))
        return
    due = from_ms(int(send["due_ms"]))
    click.echo(f"send {send_id}: {send['journey']}.{send['step']} for {send['customer_id']}")
    click.echo(f"  state     {send['state']}" + (f" ({send['reason']})" if send.get("reason") else ""))
    click.echo(f"  category  {send['category']}   channels {', '.join(json.loads(send['channels']))}")
    click.echo(f"  rule      {send['rule']}")
    click.echo(f"  from      {send['start']} (event {send['event_type']} {send['event_id']})")
    click.echo(f"  due       {_iso(due)} = {due.astimezone(tz).isoformat()} {send['zone']}")
    if send.get("cancelled"):
        click.echo(f"  tombstone {send['cancelled']}")
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


# -- dead letters -----------------------------------------------------------------------


@main.group("dead-letters")
def dead_letters() -> None:
    """Items that could not be processed, with their reason."""


@dead_letters.command("list")
@click.option("--json", "as_json", is_flag=True)
def dead_letters_list(as_json: bool) -> None:
    with _app() as app:
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
    with _app() as app:
        letter = app.deadletters.get(entry_id)
    if letter is None:
        raise click.ClickException(f"id={entry_id!r}: no such dead letter")
    click.echo(json.dumps(letter.to_mapping(), ensure_ascii=False, indent=2))


@dead_letters.command("replay")
@click.argument("entry_id")
def dead_letters_replay(entry_id: str) -> None:
    """Process a dead letter again (fix the cause first)."""
    try:
        with _app() as app:
            kind = app.replay(entry_id)
    except OutreachError as exc:
        _fail(exc)
    click.echo(f"replayed {kind} {entry_id}")


@dead_letters.command("purge")
@click.option("--yes", is_flag=True, help="Do not ask.")
def dead_letters_purge(yes: bool) -> None:
    with _app() as app:
        letters = app.deadletters.list(limit=100_000)
        if letters and not yes:
            click.confirm(f"delete {len(letters)} dead letters?", abort=True)
        for d in letters:
            app.deadletters.remove(d.id)
    click.echo(f"purged {len(letters)} dead letters")


# -- localization -----------------------------------------------------------------------


def _config() -> tuple[Settings, Any, Any]:
    from ..journeys.config import load_journeys
    from ..localization.locales import load_locales

    settings = Settings.from_env()
    return (
        settings,
        load_locales(settings.config_dir),
        load_journeys(settings.config_dir, settings.templates_dir),
    )


@main.group()
def i18n() -> None:
    """Translation catalogs: extract, update, compile, check."""


@i18n.command("extract")
def i18n_extract() -> None:
    """Write templates/_locale/messages.pot from the templates (fails on a syntax error)."""
    from ..localization.catalogs import write_template

    settings, _, _ = _config()
    click.echo(f"wrote {write_template(settings.templates_dir)}")


@i18n.command("update")
def i18n_update() -> None:
    """Merge new and changed messages into every shipped locale's catalog."""
    from ..localization.catalogs import update, write_template

    settings, locales, _ = _config()
    write_template(settings.templates_dir)
    for path in update(settings.templates_dir, locales):
        click.echo(f"updated {path}")


@i18n.command("compile")
def i18n_compile() -> None:
    """Write .mo files beside the catalogs (for other gettext tools; Outreach reads the .po)."""
    from ..localization.catalogs import compile_all

    settings, locales, _ = _config()
    for path in compile_all(settings.templates_dir, locales):
        click.echo(f"compiled {path}")


@i18n.command("check")
@click.option("--json", "as_json", is_flag=True)
def i18n_check(as_json: bool) -> None:
    """Report missing, fuzzy and obsolete entries, plural headers and SMS lengths; fail if incomplete."""
    from ..localization.catalogs import check_catalog
    from ..localization.render import Renderer
    from .preview import sms_problems

    settings, locales, journeys = _config()
    reports = [check_catalog(settings.templates_dir, tag) for tag in locales.shipped]
    renderer = Renderer(settings.templates_dir, locales)
    for problem in sms_problems(renderer, journeys, locales):
        tag = problem.split(":", 1)[0]
        next(r for r in reports if r.locale == tag).errors.append(problem)
    failed = [r.locale for r in reports if not r.complete]
    if as_json:
        click.echo(
            json.dumps(
                {"ok": not failed, "locales": [r.to_mapping() for r in reports]}, ensure_ascii=False, indent=2
            )
        )
    else:
        for r in reports:
            status = "ok" if r.complete else "INCOMPLETE"
            click.echo(
                f"{r.locale:<8} {status:<10} {r.total} entries, {len(r.missing)} missing, "
                f"{len(r.fuzzy)} fuzzy, {len(r.obsolete)} obsolete, {len(r.errors)} errors"
            )
            for label, items in (
                ("missing", r.missing),
                ("fuzzy", r.fuzzy),
                ("obsolete", r.obsolete),
                ("error", r.errors),
            ):
                for item in items[:20]:
                    click.echo(f"    {label}: {item}")
    if failed:
        raise click.ClickException(f"incomplete locales: {', '.join(failed)}")


@main.command()
@click.argument("step_ref", metavar="JOURNEY.STEP")
@click.option("--locale", "locale_tag", required=True, help="Locale, e.g. de, pt-BR, he_IL, or 'pseudo'.")
@click.option("--formality", type=click.Choice(["formal", "informal"]), default=None)
@click.option("--channel", default=None, help="Channel (default: the step's first).")
@click.option(
    "--customer",
    "customer_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A customer profile as JSON.",
)
@click.option("--data", default=None, help="Event data as JSON (default: the journey's sample).")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the HTML body to this folder.",
)
@click.option("--json", "as_json", is_flag=True)
def preview(step_ref, locale_tag, formality, channel, customer_file, data, out_dir, as_json) -> None:
    """Render a journey step for a locale and register without sending it."""
    from ..customers.profile import Customer
    from ..localization.render import Renderer
    from ..localization.sms import sms_info
    from .preview import preview as render_preview
    from .preview import write_html

    settings, locales, journeys = _config()
    customer = None
    if customer_file is not None:
        customer = Customer.from_mapping(json.loads(customer_file.read_text(encoding="utf-8")))
    payload = json.loads(data) if data else None
    renderer = Renderer(settings.templates_dir, locales)
    rendered, used = render_preview(
        renderer,
        journeys,
        step_ref,
        locale=locale_tag,
        channel=channel,
        formality=formality,
        customer=customer,
        data=payload,
    )
    html_path = (
        write_html(rendered, out_dir, step_ref.replace(".", "-") + f".{locale_tag}") if out_dir else None
    )
    result = {
        "step": step_ref,
        "locale": rendered.locale,
        "register": rendered.register,
        "channel": used,
        "subject": rendered.subject,
        "text": rendered.text,
        "html": rendered.html,
        "html_file": str(html_path) if html_path else None,
    }
    if used != "email":
        info = sms_info(rendered.text)
        result["sms"] = {"encoding": info.encoding, "units": info.units, "segments": info.segments}
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    if rendered.subject is not None:
        click.echo(f"Subject: {rendered.subject}\n")
    click.echo(rendered.text)
    if html_path:
        click.echo(f"\nHTML: {html_path}")


# -- the local-time engine --------------------------------------------------------------


@main.command()
@click.option("--zone", "zone_name", required=True, help="IANA time zone, e.g. Europe/Berlin.")
@click.option("--from", "start", required=True, help="Start instant, ISO 8601 with offset or Z.")
@click.option("--days", default=0, type=int, help="Calendar days later.")
@click.option("--at", default=None, help="Local wall time HH:MM.")
@click.option("--window", default=None, help="Local send window HH:MM-HH:MM (may wrap midnight).")
@click.option("--weekdays", default=None, help="Allowed weekdays, e.g. mon,tue,wed,thu,fri.")
@click.option("--holidays", default=None, help="Holiday calendar CC or CC-SUBDIV, e.g. DE-BY.")
@click.option("--json", "as_json", is_flag=True)
def when(zone_name, start, days, at, window, weekdays, holidays, as_json) -> None:
    """Resolve a send rule: when would a message go out?"""
    rule_data = {
        "days": days,
        "at": at,
        "window": window,
        "weekdays": weekdays,
        "holidays": holidays,
    }
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


# Commands that live with their own concern.
main.add_command(report_command)


if __name__ == "__main__":  # pragma: no cover
    main()
