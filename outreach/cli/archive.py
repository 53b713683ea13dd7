"""``outreach archive``: where finished sends are kept (docs/ARCHIVE.md): its state, a move now,
its migrations."""

from __future__ import annotations

import json
from typing import Any

import click

from ..archive.database import shown_url
from ..archive.migrations import current_version, migrate, migrations
from . import common


@click.group("archive")
def archive() -> None:
    """The archive of finished sends (SQLite or PostgreSQL)."""


@archive.command("status")
@click.option("--json", "as_json", is_flag=True)
def archive_status(as_json: bool) -> None:
    """Where the archive is, its schema, what it holds and what still waits in Redis."""
    with common._app() as app:
        database = app.archive.database
        waiting, oldest = app.mover.waiting()
        out: dict[str, Any] = {
            "url": shown_url(database.url),
            "database": database.dialect,
            "schema_version": current_version(database),
            "schema_latest": len(migrations()),
            "sends": int(database.rows("SELECT COUNT(*) FROM sends")[0][0]),
            "answers": int(database.rows("SELECT COUNT(*) FROM answers")[0][0]),
            "clicks": int(database.rows("SELECT COUNT(*) FROM clicks")[0][0]),
            "waiting_in_redis": waiting,
            "oldest_waiting": oldest.isoformat() if oldest else None,
            "archive_after_seconds": app.settings.archive_after_seconds,
            "retention_days": app.settings.archive_days,
        }
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(
        f"archive   {out['url']} ({out['database']}, schema {out['schema_version']}/{out['schema_latest']})"
    )
    held = f"{out['sends']:,} sends, {out['answers']:,} answers, {out['clicks']:,} clicks"
    click.echo(f"holds     {held}; kept {out['retention_days']} days")
    since = f", the oldest finished {out['oldest_waiting']}" if oldest else ""
    click.echo(f"in Redis  {waiting:,} finished sends not archived yet{since}")


@archive.command("move")
def archive_move() -> None:
    """Archive now the finished sends whose time has come (the scheduler's sweep does it too)."""
    with common._app() as app:
        moved = app.archive_finished()
        waiting = app.mover.backlog()
    click.echo(f"archived {moved:,} sends; {waiting:,} finished sends wait in Redis")


@archive.command("migrate")
def archive_migrate() -> None:
    """Bring the archive's schema up to date (every process also does it when it first needs it)."""
    with common._app() as app:
        ran = migrate(app.archive.database)
        version = current_version(app.archive.database)
    click.echo(f"ran migrations {', '.join(map(str, ran))}; " if ran else "nothing to run; ", nl=False)
    click.echo(f"schema version {version}")
