"""The outbox: one JSON line per delivery attempt, duplicates included, for eyes and tests.

It is a provider kind like the others (``providers = ["outbox"]``), never a default: a message
written there reaches no one, so a channel only writes there when its configuration says so."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import jsontext
from .base import Delivery, ProviderKind

#: File the outbox appends to inside its folder.
OUTBOX_FILE = "deliveries.jsonl"


class Outbox:
    """Appends each attempt to ``<folder>/deliveries.jsonl``; any channel may be routed here."""

    #: The provider it is, in every channel's history (``providers = ["outbox"]``).
    provider_name = "outbox"

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / OUTBOX_FILE
        self._lock = threading.Lock()

    def send(self, delivery: Delivery) -> str:
        return self.send_many([delivery])[0]  # type: ignore[return-value]

    def send_many(self, deliveries: Sequence[Delivery]) -> list[str | Exception]:
        """Append one line per delivery, all in one write."""
        data = b"".join(self._line(d) for d in deliveries)
        with self._lock:
            # One write on an O_APPEND descriptor keeps lines whole across processes too.
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            except FileNotFoundError:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        return [f"outbox:{d.send_id}:{d.attempt}" for d in deliveries]

    @staticmethod
    def _line(delivery: Delivery) -> bytes:
        record = {
            "send_id": delivery.send_id,
            "attempt": delivery.attempt,
            "customer_id": delivery.customer_id,
            "journey": delivery.journey,
            "step": delivery.step,
            "channel": delivery.channel,
            "to": delivery.address,
            "locale": delivery.locale,
            "subject": delivery.subject,
            "body": delivery.text,
            "html": delivery.html,
            "utc": delivery.utc.isoformat().replace("+00:00", "Z"),
            "local": delivery.local.isoformat(),
            "unsubscribe_url": delivery.unsubscribe_url,
        }
        return jsontext.line(record)


def read_outbox(folder: Path) -> list[dict[str, Any]]:
    """Every attempt written to an outbox folder, in order."""
    path = Path(folder) / OUTBOX_FILE
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


class OutboxSettings:
    """The outbox has no settings of its own: its folder is ``OUTREACH_OUTBOX_DIR``."""


def _build(channel: str, settings: OutboxSettings) -> Outbox:
    raise AssertionError("the outbox is built once, shared by its channels (channels.config)")


KIND: ProviderKind[OutboxSettings] = ProviderKind(
    name="outbox",
    description="writes each message to outbox/deliveries.jsonl; no customer receives it",
    keys=frozenset(),
    parse=lambda where, table, env: OutboxSettings(),
    build=_build,
)
