"""A finished send as the archive's rows, and back: what the mover writes, what readers rebuild."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..clock import to_ms
from ..schedule import Intent, Send

#: History entries that record a click or an open (the ``clicks`` table), and their kind.
CLICK_ENTRIES = {"clicked": "click", "opened": "open"}
#: History entries that are a hand-over's answer (the ``attempts`` table).
ATTEMPT_ENTRIES = ("delivered", "retry_scheduled", "failed", "fallthrough", "window_closed", "suppressed")

SEND_COLUMNS = (
    "id", "customer_id", "journey", "step", "category", "template", "survey", "event_type", "event_id",
    "state", "reason", "channel", "provider", "attempts", "receipt", "receipt_rank", "zone", "locale",
    "country", "start_ms", "created_ms", "due_ms", "handed_ms", "finished_ms", "archived_ms", "stored",
    "experiment", "variant",
)  # fmt: skip
ANSWER_COLUMNS = (
    "send_id", "customer_id", "kind", "score", "band", "version", "changes", "answered_ms", "scored_ms",
    "updated_ms", "comment", "journey", "channel", "locale", "country",
)  # fmt: skip


@dataclass
class Capture:
    """A finished send as read from Redis for the archive, with what goes with it."""

    send: Send
    #: Its history list, as stored (JSON entries).
    log: list[str]
    #: Its receipts hash: seen status -> UTC ms, and 'top'.
    receipts: Mapping[str, str] = field(default_factory=dict)
    #: Its answer hash (empty: not answered).
    answer: Mapping[str, str] = field(default_factory=dict)
    #: The customer's locale and country when archived.
    locale: str = ""
    country: str = ""
    #: The history entries, decoded once for every row made of them.
    entries: list[dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.entries = [json.loads(raw) for raw in self.log]


def send_row(capture: Capture, archived_ms: int) -> tuple[Any, ...]:
    send = capture.send
    delivered = [e for e in capture.entries if e.get("what") == "delivered"]
    provider = str(delivered[-1].get("provider") or "") if delivered else ""
    top = int(capture.receipts.get("top", -1))
    assert send.finished is not None, f"send {send.id} has no final time"
    return (
        send.id, send.customer_id, send.journey, send.step, send.category, send.template, send.survey,
        send.event_type, send.event_id, send.state.value, send.outcome_reason, send.channel, provider,
        send.attempts, send.receipt, top, send.zone, capture.locale, capture.country, to_ms(send.start),
        to_ms(send.created), to_ms(send.due), to_ms(send.handed) if send.handed else None,
        to_ms(send.finished), archived_ms, json.dumps(send.as_stored(), ensure_ascii=False, sort_keys=True),
        send.intent.experiment, send.intent.variant,
    )  # fmt: skip


def event_rows(send_id: str, log: Sequence[str], first: int = 0,
               entries: Sequence[dict[str, Any]] | None = None) -> list[tuple[Any, ...]]:  # fmt: skip
    """The ``events`` rows of history entries (``seq`` counts from ``first``; ``entries``: the
    same decoded, when they are)."""
    decoded = entries if entries is not None else [json.loads(raw) for raw in log]
    return [
        (
            send_id,
            seq,
            int(entry.get("at_ms") or 0),
            str(entry.get("what", "")),
            str(entry.get("text", "")),
            raw,
        )
        for seq, (raw, entry) in enumerate(zip(log, decoded, strict=True), start=first)
    ]


def attempt_rows(send_id: str, entries: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The ``attempts`` rows: the entries that answer a hand-over (or end the send)."""
    rows = []
    for seq, entry in enumerate(entries):
        if entry.get("what") not in ATTEMPT_ENTRIES:
            continue
        attempt = entry.get("attempt")
        rows.append((
            send_id, seq, int(entry.get("at_ms") or 0), int(attempt) if isinstance(attempt, int) else None,
            str(entry.get("channel") or ""), str(entry.get("provider") or ""), str(entry["what"]),
            str(entry.get("reason") or ""), str(entry.get("reference") or ""), entry.get("handed_ms"),
        ))  # fmt: skip
    return rows


def reference_rows(send_id: str, entries: Sequence[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(channel, provider, reference, send id) of each delivery a provider gave a message id."""
    return [
        (str(entry["channel"]), str(entry["provider"]), str(entry["reference"]), send_id)
        for entry in entries
        if entry.get("what") == "delivered" and entry.get("provider") and entry.get("reference")
    ]


def click_rows(send_id: str, customer_id: str, entries: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """(send id, customer id, kind, UTC ms, url) of each click and open in a send's history."""
    return [
        (send_id, customer_id, CLICK_ENTRIES[entry["what"]], int(entry.get("at_ms") or 0),
         str(entry.get("url") or ""))
        for entry in entries
        if entry.get("what") in CLICK_ENTRIES
    ]  # fmt: skip


def receipt_rows(send_id: str, receipts: Mapping[str, str]) -> list[tuple[str, str, int]]:
    return [(send_id, status, int(ms)) for status, ms in receipts.items() if status != "top"]


def answer_row(answer: Mapping[str, str]) -> tuple[Any, ...]:
    """An answer hash's fields as an ``answers`` row (one kept before ``scored_ms`` and ``changes``
    were: its latest change stands for both)."""
    return (
        answer["send_id"], answer["customer_id"], answer["kind"], int(answer["score"]), answer["band"],
        int(answer.get("version") or 1), int(answer.get("changes") or answer.get("version") or 1),
        int(answer["answered_ms"]), int(answer.get("scored_ms") or answer["updated_ms"]),
        int(answer["updated_ms"]), answer.get("comment", ""), answer.get("journey", ""),
        answer.get("channel", ""), answer.get("locale", ""), answer.get("country", ""),
    )  # fmt: skip


def answer_fields(row: Sequence[Any]) -> dict[str, str]:
    """An ``answers`` row as the answer hash's fields (what ``surveys.answers`` reads)."""
    return {name: str(value) for name, value in zip(ANSWER_COLUMNS, row, strict=True)}


def send_of(stored: str, receipt: str) -> Send:
    """A send rebuilt from its ``stored`` record (its receipt as the archive last knew it)."""
    record = json.loads(stored)
    record["receipt"] = receipt
    if not receipt:
        record.pop("receipt", None)
    intent = Intent.of(record)
    return Send.from_fields(record, intent)
