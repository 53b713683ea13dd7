"""The report's questions to the archive, answered in SQL: counts grouped by day and by one
property, so a report over a million sends reads a few hundred rows."""

from __future__ import annotations

from collections.abc import Sequence

from .database import Database

#: A report's grouping -> the column of ``sends`` (and of ``answers``) it reads.
GROUP_COLUMNS = {"locale": "locale", "journey": "journey", "channel": "channel", "country": "country"}
DAY_MS = 86_400_000


def send_counts(
    database: Database, low: int, high: int, group_by: str
) -> list[tuple[int, str, str, str, str, str, int]]:
    """(UTC day number, group value, state, reason, survey, receipt, sends) of the sends that
    finished in [low, high] (UTC ms)."""
    column = GROUP_COLUMNS[group_by]
    rows = database.rows(
        f"SELECT finished_ms / {DAY_MS}, {column}, state, reason, survey, receipt, COUNT(*) FROM sends"
        f" WHERE finished_ms >= ? AND finished_ms <= ? GROUP BY 1, 2, 3, 4, 5, 6",
        (low, high),
    )
    return [(int(d), str(g), str(s), str(r), str(v), str(c), int(n)) for d, g, s, r, v, c, n in rows]


def answer_counts(
    database: Database, low: int, high: int, group_by: str
) -> list[tuple[int, str, str, int, int]]:
    """(UTC day number, group value, kind, score, answers) of the answers last changed in [low, high];
    an answer without the grouping's value takes its send's."""
    column = GROUP_COLUMNS[group_by]
    rows = database.rows(
        f"SELECT a.updated_ms / {DAY_MS}, COALESCE(NULLIF(a.{column}, ''), s.{column}, ''), a.kind, a.score,"
        f" COUNT(*) FROM answers a LEFT JOIN sends s ON s.id = a.send_id"
        f" WHERE a.updated_ms >= ? AND a.updated_ms <= ? GROUP BY 1, 2, 3, 4",
        (low, high),
    )
    return [(int(d), str(g), str(k), int(v), int(n)) for d, g, k, v, n in rows]


def archived_among(database: Database, table: str, column: str, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` the archive's ``table`` holds (by ``column``)."""
    found: set[str] = set()
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        marks = ", ".join("?" * len(chunk))
        found |= {
            str(r[0])
            for r in database.rows(f"SELECT {column} FROM {table} WHERE {column} IN ({marks})", chunk)
        }
    return found
