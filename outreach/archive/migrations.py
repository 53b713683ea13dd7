"""The archive's schema, brought up to date by numbered SQL files (``sql/NNN_name.sql``).

Each file runs once, in its own transaction, in number order, and is recorded in
``schema_migrations``. Two processes starting together do not both run one: PostgreSQL takes
an advisory lock for the transaction, SQLite's ``BEGIN IMMEDIATE`` lets one writer in at a time,
and the version is checked again inside the transaction.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from importlib import resources

from ..errors import ConfigError
from .database import POSTGRESQL, Database

#: PostgreSQL advisory lock key held while migrating (any constant unlikely to clash).
LOCK = 0x6F757472
_FILE = re.compile(r"(\d{3})_([a-z0-9_]+)\.sql")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    text: str


def open_database(url: str) -> Database:
    """The archive's database at ``url``; its schema is brought up to date when it is first used."""
    return Database(url, prepare=migrate)


def migrations() -> list[Migration]:
    """The schema's SQL files in version order."""
    found = []
    for item in resources.files(__package__).joinpath("sql").iterdir():
        match = _FILE.fullmatch(item.name)
        if match:
            found.append(Migration(int(match[1]), match[2], item.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    assert versions == list(range(1, len(found) + 1)), f"migrations must be numbered 1..n: {versions}"
    return found


def current_version(database: Database) -> int:
    """The highest migration the database has had (0 for none), its record table made if missing."""
    with database.transaction() as cursor:
        if database.dialect == POSTGRESQL:
            # Two processes making the table at once would collide: one at a time.
            cursor.rows("SELECT pg_advisory_xact_lock(?)", (LOCK,))
        cursor.run(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT NOT NULL)"
        )
        return int(cursor.rows("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")[0][0])


def migrate(database: Database) -> list[int]:
    """Run the migrations the database has not had; the versions run now."""
    known = migrations()
    if current_version(database) > len(known):
        raise ConfigError(
            f"the archive's schema is at version {current_version(database)}, newer than this "
            f"Outreach knows ({len(known)}): upgrade Outreach"
        )
    ran = []
    for migration in known:
        with database.transaction() as cursor:
            if database.dialect == POSTGRESQL:
                cursor.rows("SELECT pg_advisory_xact_lock(?)", (LOCK,))
            done = cursor.rows("SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,))
            if done:
                continue
            cursor.script(migration.text)
            cursor.run(
                "INSERT INTO schema_migrations (version, name, applied_ms) VALUES (?, ?, ?)",
                (migration.version, migration.name, int(time.time() * 1000)),
            )
            ran.append(migration.version)
    return ran
