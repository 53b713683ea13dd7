"""One SQL database, SQLite or PostgreSQL, behind the few calls the archive makes.

Statements are written once with ``?`` placeholders and the SQL both databases share
(``INSERT … ON CONFLICT``, integer division); PostgreSQL gets ``%s`` instead. A connection is
opened per ``Database`` and used under a lock (the archive's writes are batches, its reads few);
a PostgreSQL connection that broke is opened again on the next call.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import ConfigError

#: ``OUTREACH_ARCHIVE_URL`` schemes.
SQLITE, POSTGRESQL = "sqlite", "postgresql"


def sqlite_path(url: str) -> str:
    """The file of a ``sqlite:///path`` URL (``sqlite://`` alone: a database in memory)."""
    rest = url[len("sqlite://") :]
    if rest in ("", "/", "/:memory:"):
        return ":memory:"
    return unquote(rest[1:] if rest.startswith("/") else rest)


class Database:
    """A connection to the archive's database and the dialect it speaks.

    Nothing is connected before the first statement: a process whose work never needs the
    archive (a worker) starts, and keeps working, while the database is away. ``prepare`` runs
    once on the first connection (the migrations), before any other statement.
    """

    def __init__(self, url: str, prepare: Callable[[Database], object] | None = None) -> None:
        scheme = urlsplit(url).scheme.split("+")[0]
        if scheme in ("postgres", POSTGRESQL):
            self.dialect = POSTGRESQL
        elif scheme == SQLITE:
            self.dialect = SQLITE
        else:
            raise ConfigError(
                f"OUTREACH_ARCHIVE_URL={shown_url(url)!r}: must be sqlite:///<file> or postgresql://…"
            )
        self.url = url
        self._lock = threading.RLock()
        self._conn: Any = None
        self._prepare = prepare
        self._prepared = prepare is None

    # -- connecting -----------------------------------------------------------------------

    def _connect(self) -> Any:
        if self.dialect == SQLITE:
            path = sqlite_path(self.url)
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
            if path != ":memory:":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            return conn
        try:
            import psycopg
        except ImportError:  # pragma: no cover - psycopg is a dependency
            raise ConfigError("OUTREACH_ARCHIVE_URL names PostgreSQL: install psycopg") from None
        try:
            return psycopg.connect(self.url, autocommit=True)
        except psycopg.OperationalError as exc:
            raise ConfigError(f"OUTREACH_ARCHIVE_URL={shown_url(self.url)!r}: {exc}".strip()) from None

    def _connection(self) -> Any:
        if self._conn is None or (self.dialect == POSTGRESQL and self._conn.closed):
            self._conn = self._connect()
        if not self._prepared and self._prepare is not None:
            self._prepared = True  # the statements ``prepare`` runs come back here
            try:
                self._prepare(self)
            except BaseException:
                self._prepared = False
                raise
        return self._conn

    @property
    def in_memory(self) -> bool:
        return self.dialect == SQLITE and sqlite_path(self.url) == ":memory:"

    def close(self) -> None:
        """Close the connection (it opens again when needed). A database in memory lives in its
        connection: it stays open until the ``Database`` is gone."""
        with self._lock:
            if self._conn is not None and not self.in_memory:
                self._conn.close()
                self._conn = None

    def __del__(self) -> None:
        # A process that ends without closing its application still closes the connection.
        conn, self._conn = getattr(self, "_conn", None), None
        if conn is not None:
            conn.close()

    # -- statements -----------------------------------------------------------------------

    def sql(self, statement: str) -> str:
        """A statement written with ``?`` placeholders, in this database's style."""
        return statement.replace("?", "%s") if self.dialect == POSTGRESQL else statement

    @contextmanager
    def transaction(self, write: bool = True, snapshot: bool = False) -> Iterator[Cursor]:
        """One transaction: committed when the block ends, rolled back when it raises. A SQLite
        transaction that writes takes the database's write lock at once (``BEGIN IMMEDIATE``: two
        writers never deadlock upgrading their locks); one that only reads takes none. With
        ``snapshot`` every statement sees the database as it was at the first (PostgreSQL's
        REPEATABLE READ; a SQLite read transaction always does)."""
        with self._lock:
            conn = self._connection()
            try:
                if self.dialect == SQLITE:
                    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                    cursor = Cursor(self, conn.cursor())
                    try:
                        yield cursor
                    except BaseException:
                        conn.execute("ROLLBACK")
                        raise
                    conn.execute("COMMIT")
                else:
                    with conn.transaction(), conn.cursor() as raw:
                        if snapshot:
                            raw.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                        yield Cursor(self, raw)
            except Exception as exc:
                if self.dialect == POSTGRESQL and _broken(exc):
                    self.close()
                raise

    def rows(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows a query returns (in a transaction of its own, that only reads)."""
        with self.transaction(write=False) as cursor:
            return cursor.rows(statement, params)


class Cursor:
    """Statements inside one transaction."""

    def __init__(self, database: Database, raw: Any) -> None:
        self.database = database
        self.raw = raw

    def run(self, statement: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; the number of rows it changed."""
        self.raw.execute(self.database.sql(statement), tuple(params))
        return int(self.raw.rowcount or 0)

    def run_many(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.raw.executemany(self.database.sql(statement), [tuple(r) for r in rows])

    def rows(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.raw.execute(self.database.sql(statement), tuple(params))
        return [tuple(r) for r in self.raw.fetchall()]

    def script(self, text: str) -> None:
        """Several statements separated by ``;`` (a migration file; ``--`` comments are dropped)."""
        plain = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
        for statement in (s.strip() for s in plain.split(";")):
            if statement:
                self.raw.execute(statement)


#: Values named in one ``IN (…)`` list.
CHUNK = 500


def chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    """``items`` in slices of at most ``CHUNK``, for ``IN (…)`` lists."""
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def marks(items: Sequence[Any]) -> str:
    """The placeholders of an ``IN (…)`` list of ``items``."""
    return ", ".join("?" * len(items))


def _broken(exc: Exception) -> bool:
    import psycopg

    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)


def shown_url(url: str) -> str:
    """A URL with its password hidden (it goes into error messages)."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url
