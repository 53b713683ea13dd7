"""The example queries of docs/INSIGHTS.md ("Querying the archive"), run as written against a real
PostgreSQL holding the archive's schema, on rows whose answers are known."""

from __future__ import annotations

import re
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from outreach.archive import open_database

DOC = Path(__file__).resolve().parent.parent / "docs" / "INSIGHTS.md"
NOW_MS = int(time.time() * 1000)
DAY = 86_400_000


def queries() -> list[str]:
    text = DOC.read_text(encoding="utf-8").split("## Querying the archive", 1)[1]
    return re.findall(r"```sql\n(.*?)```", text, re.DOTALL)


@pytest.fixture
def database(postgres_url):
    import psycopg

    name = f"q_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    database = open_database(postgres_url.rsplit("/", 1)[0] + f"/{name}")
    yield database
    database.close()


def send(cursor, n: int, *, journey="onboarding", survey="", state="delivered", channel="email",
         provider="ses", receipt="", finished_ms=NOW_MS) -> str:  # fmt: skip
    send_id = f"s{n:018x}.c{n}"
    cursor.run(
        "INSERT INTO sends (id, customer_id, journey, step, category, template, survey, event_type, event_id,"
        " state, reason, channel, provider, receipt, start_ms, created_ms, due_ms, finished_ms, archived_ms,"
        " stored) VALUES (?, ?, ?, 's', 'lifecycle', 't', ?, 'e', ?, ?, 'ok', ?, ?, ?, 0, 0, 0, ?, 0, '{}')",
        (send_id, f"c{n}", journey, survey, f"e{n}", state, channel, provider, receipt, finished_ms),
    )
    return send_id


def answer(cursor, send_id: str, kind: str, score: int, locale: str, updated_ms: int = NOW_MS) -> None:
    cursor.run(
        "INSERT INTO answers (send_id, customer_id, kind, score, band, version, answered_ms, scored_ms,"
        " updated_ms, locale) VALUES (?, 'c', ?, ?, 'b', 1, ?, ?, ?, ?)",
        (send_id, kind, score, updated_ms, updated_ms, updated_ms, locale),
    )


def test_the_insights_page_has_three_queries():
    assert len(queries()) == 3


def test_csat_by_language_over_the_last_30_days(database):
    with database.transaction() as cursor:
        for n, (score, locale) in enumerate([(5, "de_DE"), (4, "de_AT"), (2, "de_DE"), (5, "ja_JP")]):
            answer(cursor, send(cursor, n, survey="csat"), "csat", score, locale)
        answer(cursor, send(cursor, 10, survey="csat"), "csat", 1, "ja_JP", NOW_MS - 40 * DAY)  # too old
        answer(cursor, send(cursor, 11, survey="nps"), "nps", 10, "ja_JP")  # not CSAT
    rows = database.rows(queries()[0])
    assert rows == [("de", 3, Decimal("66.7")), ("ja", 1, Decimal("100.0"))]


def test_delivery_success_by_provider(database):
    with database.transaction() as cursor:
        for n, receipt in enumerate(["delivered", "read", "bounced", ""]):
            send(cursor, n, provider="ses", receipt=receipt)
        send(cursor, 10, channel="sms", provider="twilio", receipt="delivered")
        send(cursor, 11, channel="sms", provider="twilio", state="failed")  # never accepted
    rows = database.rows(queries()[1])
    assert rows == [
        ("email", "ses", 4, 2, 1, Decimal("50.0")),
        ("sms", "twilio", 1, 1, 0, Decimal("100.0")),
    ]


def test_survey_response_rate_by_journey(database):
    with database.transaction() as cursor:
        for n in range(4):
            sent = send(cursor, n, journey="support", survey="csat")
            if n < 3:
                answer(cursor, sent, "csat", 5, "en_US")
        answer(cursor, send(cursor, 10, journey="quarterly", survey="nps"), "nps", 9, "en_US")
        send(cursor, 11, journey="quarterly", survey="nps", state="suppressed")  # not delivered
        send(cursor, 12, journey="onboarding")  # not a survey
    rows = database.rows(queries()[2])
    assert rows == [("quarterly", "nps", 1, 1, Decimal("100.0")), ("support", "csat", 4, 3, Decimal("75.0"))]
