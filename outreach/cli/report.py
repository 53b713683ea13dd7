"""``outreach report``: ``report_command`` and ``parse_bound`` for ``--since`` / ``--until``."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import click

from ..errors import InputError, OutreachError
from ..report.figures import GROUPINGS, build_report
from ..report.html import render_html
from ..report.text import render_text


def parse_bound(name: str, text: str, *, end: bool = False) -> datetime:
    """``--since`` / ``--until``: ISO 8601 with an offset, or a date (UTC; an end date includes its day)."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    if day is not None and len(text) <= 10:
        start = datetime.combine(day, time(0), tzinfo=UTC)
        return start + timedelta(days=1) - timedelta(milliseconds=1) if end else start
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            name, text, "expected ISO 8601 (2026-03-01T00:00:00Z) or a date (2026-03-01)"
        ) from None
    if value.utcoffset() is None:
        raise InputError(name, text, "needs a UTC offset or 'Z' (or give a date)")
    return value


@click.option("--since", default=None, metavar="ISO", help="Start (ISO 8601 with offset, or a date).")
@click.option("--until", default=None, metavar="ISO", help="End, included (ISO 8601 or a date; default now).")
@click.option("--by", type=click.Choice(GROUPINGS), default=None, help="Group the figures (default: locale).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Write the HTML report to FILE.",
)
def report(since: str | None, until: str | None, by: str | None, as_json: bool, html_file: Path | None):
    """Survey scores, response rates, delivery outcomes and schedule depth for a period.

    --since and --until take ISO 8601 with an offset (2026-03-01T00:00:00Z) or dates
    (2026-03-01, UTC; an --until date includes that day). Default: the last 30 days.
    """
    from .commands import _app  # the command module imports this one

    try:
        start = parse_bound("since", since) if since else None
        end = parse_bound("until", until, end=True) if until else None
        with _app() as app:
            report = build_report(app, start, end, by)
    except OutreachError as exc:
        raise click.ClickException(str(exc)) from None
    if html_file is not None:
        html_file.parent.mkdir(parents=True, exist_ok=True)
        html_file.write_text(render_html(report), encoding="utf-8")
    if as_json:
        click.echo(json.dumps(report.to_mapping(), ensure_ascii=False, indent=2))
    elif html_file is not None:
        click.echo(f"wrote {html_file}")
    else:
        click.echo(render_text(report), nl=False)


#: ``outreach report``; cli.py registers it with ``main.add_command(report_command)``.
report_command = click.command("report")(report)
