"""``outreach report``: the figures of a period as text, JSON or an HTML page."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import OutreachError
from ..report.build import build_report
from ..report.figures import GROUPINGS
from ..report.html import render_html
from ..report.period import parse_bound
from ..report.text import render_text
from . import common


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
    try:
        start = parse_bound("since", since) if since else None
        end = parse_bound("until", until, end=True) if until else None
        with common._app() as app:
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


#: ``outreach report``; ``cli/commands.py`` registers it with ``main.add_command(report_command)``.
report_command = click.command("report")(report)
