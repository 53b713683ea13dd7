"""The archive's tables, written and read: finished sends with their history, receipts, answers,
clicks and provider references (``sql/``; docs/ARCHIVE.md describes them for analysts).

Writes are idempotent by send id: a batch written twice (a mover that crashed before Redis let
its sends go, two movers at once) changes nothing the second time. What reaches a send after it
was archived (a late receipt, a note, a survey answer) is written here directly, under a lock on
the send's row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..schedule import Send
from .database import Cursor, Database, chunks, marks
from .rows import (
    ANSWER_COLUMNS,
    SEND_COLUMNS,
    Capture,
    answer_fields,
    answer_row,
    attempt_rows,
    click_rows,
    event_rows,
    receipt_rows,
    reference_rows,
    send_of,
    send_row,
)

#: Days an archived send is kept by default (``OUTREACH_ARCHIVE_DAYS``).
DEFAULT_RETENTION_DAYS = 400

_UPSERT_SEND = (
    f"INSERT INTO sends ({', '.join(SEND_COLUMNS)}) VALUES ({', '.join('?' * len(SEND_COLUMNS))}) "
    f"ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in SEND_COLUMNS if c not in ("id", "receipt", "receipt_rank"))
    + ", receipt = CASE WHEN excluded.receipt_rank >= sends.receipt_rank THEN excluded.receipt"
    " ELSE sends.receipt END, receipt_rank = CASE WHEN excluded.receipt_rank >= sends.receipt_rank"
    " THEN excluded.receipt_rank ELSE sends.receipt_rank END"
)
_UPSERT_ANSWER = (
    f"INSERT INTO answers ({', '.join(ANSWER_COLUMNS)}) VALUES ({', '.join('?' * len(ANSWER_COLUMNS))}) "
    "ON CONFLICT (send_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in ANSWER_COLUMNS if c not in ("send_id", "answered_ms"))
    + " WHERE excluded.changes >= answers.changes"
)
_EVENT = (
    "INSERT INTO events (send_id, seq, at_ms, what, text, entry) VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT DO NOTHING"
)
_ATTEMPT = (
    "INSERT INTO attempts (send_id, seq, at_ms, attempt, channel, provider, outcome, reason, reference,"
    " handed_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
_RECEIPT = "INSERT INTO receipts (send_id, status, at_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
_REFERENCE = (
    "INSERT INTO refs (channel, provider, reference, send_id) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
#: A click or open, once: the same row written again (a move repeated) is not a second one. Every
#: writer of a send's clicks holds its ``sends`` row first (the upsert, or ``_locked``).
_CLICK = (
    "INSERT INTO clicks (send_id, customer_id, kind, at_ms, url) SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS"
    " (SELECT 1 FROM clicks WHERE send_id = ? AND kind = ? AND at_ms = ? AND url = ?)"
)
#: Tables with a ``send_id`` column (``sends`` has ``id``).
_BY_SEND = ("events", "attempts", "receipts", "answers", "refs", "clicks")


def _click_once(row: tuple[Any, ...]) -> tuple[Any, ...]:
    send_id, _, kind, at_ms, url = row
    return (*row, send_id, kind, at_ms, url)


class Archive:
    """Finished sends in SQL, by send id."""

    def __init__(self, database: Database, retention_days: int = DEFAULT_RETENTION_DAYS) -> None:
        self.database = database
        self.retention_days = retention_days

    # -- the mover's writes ---------------------------------------------------------------

    def write(self, captures: Sequence[Capture], archived_ms: int) -> None:
        """Write finished sends and everything that goes with them, in one transaction."""
        if not captures:
            return
        with self.database.transaction() as cursor:
            cursor.run_many(_UPSERT_SEND, [send_row(c, archived_ms) for c in captures])
            cursor.run_many(
                _EVENT, [row for c in captures for row in event_rows(c.send.id, c.log, 0, c.entries)]
            )
            cursor.run_many(_ATTEMPT, [row for c in captures for row in attempt_rows(c.send.id, c.entries)])
            cursor.run_many(_RECEIPT, [row for c in captures for row in receipt_rows(c.send.id, c.receipts)])
            cursor.run_many(
                _REFERENCE, [row for c in captures for row in reference_rows(c.send.id, c.entries)]
            )
            cursor.run_many(_UPSERT_ANSWER, [answer_row(c.answer) for c in captures if c.answer])
            clicks = [row for c in captures for row in click_rows(c.send.id, c.send.customer_id, c.entries)]
            cursor.run_many(_CLICK, [_click_once(row) for row in clicks])

    def drop(self, send_ids: Sequence[str]) -> int:
        """Delete sends and their rows (their customer was erased); how many sends were deleted."""
        removed = 0
        with self.database.transaction() as cursor:
            for chunk in chunks(list(send_ids)):
                for table in _BY_SEND:
                    cursor.run(f"DELETE FROM {table} WHERE send_id IN ({marks(chunk)})", chunk)
                removed += cursor.run(f"DELETE FROM sends WHERE id IN ({marks(chunk)})", chunk)
        return removed

    # -- reading --------------------------------------------------------------------------

    def sends(self, send_ids: Sequence[str]) -> dict[str, Send]:
        """The archived sends among ``send_ids``."""
        found: dict[str, Send] = {}
        for chunk in chunks(list(dict.fromkeys(send_ids))):
            rows = self.database.rows(
                f"SELECT stored, receipt FROM sends WHERE id IN ({marks(chunk)})", chunk
            )
            for stored, receipt in rows:
                send = send_of(stored, receipt)
                found[send.id] = send
        return found

    def history(self, send_id: str) -> list[dict[str, Any]]:
        """The history entries of an archived send, in order (without the planned entry)."""
        return [json.loads(entry) for entry in self.history_entries(send_id)]

    def history_entries(self, send_id: str) -> list[str]:
        """The same entries as they were written (JSON text)."""
        rows = self.database.rows("SELECT entry FROM events WHERE send_id = ? ORDER BY seq", (send_id,))
        return [str(entry) for (entry,) in rows]

    def receipts_of(self, send_id: str) -> dict[str, int]:
        """The receipts an archived send's provider reported: status -> UTC ms."""
        rows = self.database.rows("SELECT status, at_ms FROM receipts WHERE send_id = ?", (send_id,))
        return {str(status): int(ms) for status, ms in rows}

    def sends_of(self, customer_id: str) -> list[tuple[str, int]]:
        """(send id, its event's UTC ms) of a customer's archived sends."""
        rows = self.database.rows(
            "SELECT id, start_ms FROM sends WHERE customer_id = ? ORDER BY id", (customer_id,)
        )
        return [(str(i), int(ms)) for i, ms in rows]

    def find_reference(self, channel: str, provider: str, reference: str) -> str | None:
        rows = self.database.rows(
            "SELECT send_id FROM refs WHERE channel = ? AND provider = ? AND reference = ?",
            (channel, provider, reference),
        )
        return str(rows[0][0]) if rows else None

    def references_of(self, send_ids: Sequence[str]) -> list[tuple[str, str, str]]:
        """(channel, provider, reference) of the provider message ids of these sends."""
        out: list[tuple[str, str, str]] = []
        for chunk in chunks(list(send_ids)):
            rows = self.database.rows(
                f"SELECT channel, provider, reference FROM refs WHERE send_id IN ({marks(chunk)})", chunk
            )
            out += [(str(c), str(p), str(r)) for c, p, r in rows]
        return out

    # -- what reaches an archived send ------------------------------------------------------

    @staticmethod
    def _locked(cursor: Cursor, send_id: str) -> tuple[Any, ...] | None:
        """The send's row, locked until the transaction ends (PostgreSQL; SQLite holds the whole
        database for a writing transaction)."""
        lock = " FOR UPDATE" if cursor.database.dialect == "postgresql" else ""
        rows = cursor.rows(f"SELECT receipt_rank FROM sends WHERE id = ?{lock}", (send_id,))
        return rows[0] if rows else None

    @staticmethod
    def _append(cursor: Cursor, send_id: str, entries: Sequence[str]) -> None:
        last = cursor.rows("SELECT COALESCE(MAX(seq), -1) FROM events WHERE send_id = ?", (send_id,))[0][0]
        cursor.run_many(_EVENT, event_rows(send_id, entries, int(last) + 1))

    def note(self, send_id: str, entries: Sequence[str]) -> bool:
        """Add entries to an archived send's history; False when there is no such send."""
        with self.database.transaction() as cursor:
            if self._locked(cursor, send_id) is None:
                return False
            self._append(cursor, send_id, entries)
            return True

    def receipt(self, send_id: str, seen: str, status: str, rank: int, progress: bool, entry: str,
                at_ms: int) -> str:  # fmt: skip
        """A provider's receipt for an archived send, as ``receipt.lua`` records one in Redis:
        'new', 'repeat', 'stale' or 'gone'."""
        with self.database.transaction() as cursor:
            row = self._locked(cursor, send_id)
            if row is None:
                return "gone"
            if not cursor.run(_RECEIPT, (send_id, seen, at_ms)):
                return "repeat"
            top = int(row[0])
            if progress and top >= rank:
                return "stale"
            self._append(cursor, send_id, [entry])
            if rank > top:
                cursor.run(
                    "UPDATE sends SET receipt = ?, receipt_rank = ? WHERE id = ?", (status, rank, send_id)
                )
            return "new"

    # -- answers ----------------------------------------------------------------------------

    def answer(self, send_id: str) -> dict[str, str] | None:
        rows = self.database.rows(
            f"SELECT {', '.join(ANSWER_COLUMNS)} FROM answers WHERE send_id = ?", (send_id,)
        )
        return answer_fields(rows[0]) if rows else None

    def save_answer(self, fields: dict[str, Any], comment: str | None = None) -> dict[str, str] | None:
        """Record the answer to an archived send (a later one updates it: one per send), or only its
        ``comment`` when ``fields`` holds just the send id and the time; None when there is no such
        send, or no answer to comment on."""
        send_id, now = fields["send_id"], int(fields["updated_ms"])
        with self.database.transaction() as cursor:
            if self._locked(cursor, send_id) is None:
                return None
            if comment is not None:
                changed = cursor.run(
                    "UPDATE answers SET comment = ?, updated_ms = ?, changes = changes + 1 WHERE send_id = ?",
                    (comment, now, send_id),
                )
                if not changed:
                    return None
            else:
                before = cursor.rows(
                    "SELECT version, changes, answered_ms, comment FROM answers WHERE send_id = ?", (send_id,)
                )
                version, changes, answered, kept = before[0] if before else (0, 0, now, "")
                row = {**fields, "version": int(version) + 1, "changes": int(changes) + 1,
                       "answered_ms": answered, "scored_ms": now, "comment": kept}  # fmt: skip
                cursor.run(_UPSERT_ANSWER, answer_row({k: str(v) for k, v in row.items()}))
            found = cursor.rows(
                f"SELECT {', '.join(ANSWER_COLUMNS)} FROM answers WHERE send_id = ?", (send_id,)
            )
            return answer_fields(found[0])

    def answers_between(self, low: int | None, high: int | None) -> list[dict[str, str]]:
        """Answers whose latest score falls in [low, high] (a comment does not move an answer)."""
        rows = self.database.rows(
            f"SELECT {', '.join(ANSWER_COLUMNS)} FROM answers WHERE scored_ms >= ? AND scored_ms <= ?",
            (low if low is not None else -(2**62), high if high is not None else 2**62),
        )
        return [answer_fields(r) for r in rows]

    def answers_of(self, customer_id: str) -> list[dict[str, str]]:
        rows = self.database.rows(
            f"SELECT {', '.join(ANSWER_COLUMNS)} FROM answers WHERE customer_id = ? ORDER BY send_id",
            (customer_id,),
        )
        return [answer_fields(r) for r in rows]

    # -- clicks -----------------------------------------------------------------------------

    def save_click(self, send_id: str, customer_id: str, kind: str, at_ms: int, url: str, entry: str,
                   keep: int) -> bool | None:  # fmt: skip
        """A click (or open) on an archived send: its row and its history entry, while the send has
        fewer than ``keep`` of that kind. True when it is the send's first of its kind, False for a
        later one, None when the archive has no such send."""
        with self.database.transaction() as cursor:
            if self._locked(cursor, send_id) is None:
                return None
            rows = cursor.rows("SELECT COUNT(*) FROM clicks WHERE send_id = ? AND kind = ?", (send_id, kind))
            count = int(rows[0][0])
            # The same link in the same millisecond (a double click) is one row and one entry.
            if count < keep and cursor.run(_CLICK, _click_once((send_id, customer_id, kind, at_ms, url))):
                self._append(cursor, send_id, [entry])
            return count == 0

    def first_clicks(self, send_ids: Sequence[str], kind: str = "click") -> dict[str, int]:
        """Send id -> UTC ms of its first click (or open), for the archived sends among ``send_ids``
        that have one."""
        found: dict[str, int] = {}
        for chunk in chunks(list(dict.fromkeys(send_ids))):
            rows = self.database.rows(
                f"SELECT send_id, MIN(at_ms) FROM clicks WHERE kind = ? AND send_id IN ({marks(chunk)})"
                " GROUP BY send_id",
                (kind, *chunk),
            )
            found.update((str(send_id), int(ms)) for send_id, ms in rows)
        return found

    def clicks_of(self, customer_id: str) -> list[tuple[str, str, int, str]]:
        """(send id, kind, UTC ms, url) of a customer's archived clicks and opens, in time order."""
        rows = self.database.rows(
            "SELECT send_id, kind, at_ms, url FROM clicks WHERE customer_id = ? ORDER BY at_ms, send_id",
            (customer_id,),
        )
        return [(str(s), str(k), int(ms), str(u)) for s, k, ms, u in rows]

    def click_fields(self, send_id: str) -> dict[str, int]:
        """An archived send's clicks as the fields its Redis hash keeps (``clicked_ms``, ``clicks``,
        ``opened_ms``, ``opens``): what a send brought back from the archive carries again."""
        rows = self.database.rows(
            "SELECT kind, MIN(at_ms), COUNT(*) FROM clicks WHERE send_id = ? GROUP BY kind", (send_id,)
        )
        names = {"click": ("clicked_ms", "clicks"), "open": ("opened_ms", "opens")}
        fields: dict[str, int] = {}
        for kind, first, count in rows:
            if str(kind) in names:
                first_name, count_name = names[str(kind)]
                fields[first_name], fields[count_name] = int(first), int(count)
        return fields

    # -- rights and retention ---------------------------------------------------------------

    def erase(self, customer_id: str) -> int:
        """Delete everything archived about a customer; how many sends."""
        ids = [send_id for send_id, _ in self.sends_of(customer_id)]
        removed = self.drop(ids)
        with self.database.transaction() as cursor:
            cursor.run("DELETE FROM answers WHERE customer_id = ?", (customer_id,))
            cursor.run("DELETE FROM clicks WHERE customer_id = ?", (customer_id,))
        return removed

    def forget(self, before_ms: int, limit: int = 10_000) -> int:
        """Delete up to ``limit`` sends that finished before ``before_ms`` (retention); how many."""
        rows = self.database.rows(
            "SELECT id FROM sends WHERE finished_ms < ? ORDER BY finished_ms LIMIT ?", (before_ms, limit)
        )
        return self.drop([str(r[0]) for r in rows])
