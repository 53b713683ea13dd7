"""The report's questions to the archive, answered in SQL in one snapshot: counts grouped by day
and by one property (a report over a million sends reads a few hundred rows), the delivered and
clicked sends per journey step, and which of the sends and answers Redis still holds are archived
already (they are counted from here, once)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..store.keys import DAY_MS
from .database import Cursor, Database, chunks, marks

#: A report's grouping -> the column of ``sends`` (and of ``answers``) it reads.
GROUP_COLUMNS = {"locale": "locale", "journey": "journey", "channel": "channel", "country": "country"}


@dataclass
class Counts:
    #: (UTC day number, group value, state, reason, survey, receipt, sends)
    sends: list[tuple[int, str, str, str, str, str, int]] = field(default_factory=list)
    #: (UTC day number, group value, kind, score, answers)
    answers: list[tuple[int, str, str, int, int]] = field(default_factory=list)
    #: (journey, step, sends delivered, of them clicked at least once)
    clicks: list[tuple[str, str, int, int]] = field(default_factory=list)
    #: Of the send ids asked about, those the archive holds.
    archived_sends: set[str] = field(default_factory=set)
    #: Of the answers' send ids asked about, those whose answer the archive holds.
    archived_answers: set[str] = field(default_factory=set)


def counts(database: Database, low: int, high: int, group_by: str, send_ids: Sequence[str] = (),
           answer_ids: Sequence[str] = ()) -> Counts:  # fmt: skip
    """The report's figures in the archive for [low, high] (UTC ms), read in one snapshot together
    with which of ``send_ids`` and ``answer_ids`` (read from Redis just before) it holds: a send the
    mover archives meanwhile is in the snapshot or not, never half."""
    out = Counts()
    with database.transaction(write=False, snapshot=True) as cursor:
        out.sends = _send_counts(cursor, low, high, group_by)
        out.answers = _answer_counts(cursor, low, high, group_by)
        out.clicks = _click_counts(cursor, low, high)
        out.archived_sends = _among(cursor, "sends", "id", send_ids)
        out.archived_answers = _among(cursor, "answers", "send_id", answer_ids)
    return out


def _send_counts(
    cursor: Cursor, low: int, high: int, group_by: str
) -> list[tuple[int, str, str, str, str, str, int]]:
    """The sends that finished in [low, high], counted by day, group, state, reason, survey, receipt."""
    column = GROUP_COLUMNS[group_by]
    rows = cursor.rows(
        f"SELECT finished_ms / {DAY_MS}, {column}, state, reason, survey, receipt, COUNT(*) FROM sends"
        f" WHERE finished_ms >= ? AND finished_ms <= ? GROUP BY 1, 2, 3, 4, 5, 6",
        (low, high),
    )
    return [(int(d), str(g), str(s), str(r), str(v), str(c), int(n)) for d, g, s, r, v, c, n in rows]


def _answer_counts(
    cursor: Cursor, low: int, high: int, group_by: str
) -> list[tuple[int, str, str, int, int]]:
    """The answers whose latest score falls in [low, high] (a comment does not move an answer), counted
    by the day of their latest change (kept inside the period), group, kind and score. An answer
    without the grouping's value takes its send's, looked up for those only (an answer keeps its
    journey, channel, locale and country: the sends are not scanned)."""
    column = GROUP_COLUMNS[group_by]
    rows = cursor.rows(
        f"SELECT (CASE WHEN a.updated_ms > ? THEN ? ELSE a.updated_ms END) / {DAY_MS},"
        f" COALESCE(NULLIF(a.{column}, ''), (SELECT s.{column} FROM sends s WHERE s.id = a.send_id), ''),"
        f" a.kind, a.score, COUNT(*) FROM answers a WHERE a.scored_ms >= ? AND a.scored_ms <= ?"
        f" GROUP BY 1, 2, 3, 4",
        (high, high, low, high),
    )
    return [(int(d), str(g), str(k), int(v), int(n)) for d, g, k, v, n in rows]


def _click_counts(cursor: Cursor, low: int, high: int) -> list[tuple[str, str, int, int]]:
    """The sends delivered in [low, high] per journey step, and how many of them were clicked (at
    any time: a click after the period still counts for its send)."""
    rows = cursor.rows(
        "SELECT s.journey, s.step, COUNT(*), SUM(CASE WHEN EXISTS (SELECT 1 FROM clicks c WHERE"
        " c.send_id = s.id AND c.kind = 'click') THEN 1 ELSE 0 END) FROM sends s WHERE s.state ="
        " 'delivered' AND s.finished_ms >= ? AND s.finished_ms <= ? GROUP BY s.journey, s.step",
        (low, high),
    )
    return [(str(j), str(s), int(n), int(c or 0)) for j, s, n, c in rows]


def _among(cursor: Cursor, table: str, column: str, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` the archive's ``table`` holds (by ``column``)."""
    found: set[str] = set()
    for chunk in chunks(list(ids)):
        rows = cursor.rows(f"SELECT {column} FROM {table} WHERE {column} IN ({marks(chunk)})", chunk)
        found |= {str(r[0]) for r in rows}
    return found


@dataclass(frozen=True)
class ExperimentSend:
    """One finished send of an experiment, with what followed it (``experiment_sends``)."""

    send_id: str
    customer_id: str
    experiment: str
    variant: str
    state: str
    finished_ms: int
    #: Whether a link of it was clicked (a ``clicks`` row of kind 'click').
    clicked: bool
    #: Its survey answer's kind and score ('' and None: not answered).
    kind: str
    score: int | None


def experiment_sends(database: Database, low: int, high: int) -> list[ExperimentSend]:
    """The sends of every experiment that finished in [low, high] (UTC ms), with their clicks and
    answers, in one snapshot."""
    with database.transaction(write=False, snapshot=True) as cursor:
        rows = cursor.rows(
            "SELECT s.id, s.customer_id, s.experiment, s.variant, s.state, s.finished_ms,"
            " CASE WHEN EXISTS (SELECT 1 FROM clicks c WHERE c.send_id = s.id AND c.kind = 'click')"
            " THEN 1 ELSE 0 END, COALESCE(a.kind, ''), a.score"
            " FROM sends s LEFT JOIN answers a ON a.send_id = s.id"
            " WHERE s.experiment <> '' AND s.finished_ms >= ? AND s.finished_ms <= ? ORDER BY s.id",
            (low, high),
        )
    return [
        ExperimentSend(
            str(i),
            str(c),
            str(e),
            str(v),
            str(s),
            int(f),
            bool(k),
            str(kind),
            None if score is None else int(score),
        )  # fmt: skip
        for i, c, e, v, s, f, k, kind, score in rows
    ]
