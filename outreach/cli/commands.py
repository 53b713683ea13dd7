"""The ``outreach`` root command group: logging, error handling, and every subcommand registered."""

from __future__ import annotations

import logging
from typing import Any

import click
import redis

from ..errors import OutreachError
from ..logs import configure as configure_logs
from ..settings import Settings
from .archive import archive
from .blackouts import blackout
from .bounces import bounces
from .broadcasts import broadcast
from .config import config
from .customers import customers
from .demo import demo
from .events import emit, events
from .experiments import experiments
from .i18n import i18n
from .preview import preview_command
from .project import init_command
from .report import report_command
from .run import run, scheduler, web
from .sends import dead_letters, explain, schedule, when
from .simulate import simulate_command


class _Group(click.Group):
    """Turns any OutreachError, or a Redis that does not answer, into a one-line error and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OutreachError as exc:
            raise click.ClickException(str(exc)) from None
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            url = Settings.from_env().redis_url
            raise click.ClickException(f"Redis at {url} is not reachable ({exc})") from None


@click.group(cls=_Group)
@click.option("-v", "--verbose", is_flag=True, help="Log what the worker and scheduler do.")
def main(verbose: bool) -> None:
    """Outreach: proactive, localized customer messages at the right local time."""
    configure_logs(Settings.from_env().log_format, logging.INFO if verbose else logging.WARNING)


# Each command lives with its concern; `outreach --help` lists them in name order.
for _command in (
    init_command,
    config,
    archive,
    bounces,
    blackout,
    broadcast,
    demo,
    run,
    web,
    scheduler,
    emit,
    events,
    experiments,
    customers,
    schedule,
    explain,
    when,
    dead_letters,
    i18n,
    preview_command,
    report_command,
    simulate_command,
):
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    main()
