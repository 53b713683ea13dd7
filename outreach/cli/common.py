"""Helpers shared by every ``outreach`` command: the app factory, errors, times, tables, config."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from ..app import Outreach
from ..errors import InputError
from ..settings import Settings
from ..store.embedded import embedded_client


@contextmanager
def _app(**overrides: Any) -> Iterator[Outreach]:
    """The application on Redis when configured, else on the embedded store file.

    Commands call it as ``common._app()`` so that tests can replace this one attribute.
    """
    settings = Settings.from_env(**overrides)
    if settings.redis_url:
        yield Outreach(settings)
        return
    with embedded_client() as client:
        yield Outreach(settings, client=client)


def _fail(exc: Exception) -> NoReturn:
    """Show an error as click's one-line message with exit status 1."""
    raise click.ClickException(str(exc))


def _json_object(option: str, text: str) -> dict[str, Any]:
    """A command-line option that holds a JSON object (``--data``): any other text is a one-line error."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"{option}={text[:80]!r}: not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise click.ClickException(f"{option}={text[:80]!r}: nests too deep") from None
    if not isinstance(value, dict):
        raise click.ClickException(f"{option}={text[:80]!r}: must be a JSON object")
    return value


def _iso(instant: datetime) -> str:
    """UTC to the second with a ``Z``: the form every command prints."""
    return instant.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _print_table(rows: Sequence[Sequence[object]]) -> None:
    """Aligned columns, cut to a wide terminal so each row stays on one line."""
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    limit = shutil.get_terminal_size((160, 20)).columns
    for row in rows:
        line = "  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        click.echo(line[:limit] if len(line) > limit and limit > 100 else line)


def _config() -> tuple[Settings, Any, Any]:
    """Settings, locales and journeys, for the commands that render without a store."""
    from ..journeys.config import load_journeys
    from ..localization.locales import load_locales

    settings = Settings.from_env()
    return (
        settings,
        load_locales(settings.config_dir),
        load_journeys(settings.config_dir, settings.templates_dir),
    )


class UnreadableLine(InputError):
    """A line of a JSON-lines file that is not JSON (or not UTF-8); ``line`` is all of it."""

    def __init__(self, line: str, problem: str) -> None:
        super().__init__("line", line[:80].rstrip(), problem)
        self.line = line.rstrip("\r\n")


def read_json_lines(path: Path, *, read: list[int] | None = None) -> Iterator[tuple[int, Any]]:
    """(line number, value) of each non-blank line of a JSON-lines file, read as it goes. A line that
    cannot be read yields an InputError in its place, so the lines around it are still used and it
    is reported by its number. ``read``, when given, holds the bytes read so far (for a progress bar).
    """
    with path.open("rb") as file:
        # Binary lines end at newlines only: a U+2028 inside a JSON string is not a line break.
        for number, raw in enumerate(file, start=1):
            if read is not None:
                read[0] += len(raw)
            if number == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield number, UnreadableLine(raw.decode("utf-8", "replace"), f"not UTF-8 ({exc.reason})")
                continue
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, UnreadableLine(line, f"malformed JSON ({exc.msg})")
            except RecursionError:
                yield number, UnreadableLine(line, "nests too deep")
