"""The dead-letter store: items that could not be processed, kept with their reason."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis

from ..clock import Clock, from_ms, to_ms
from .keys import Keys
from .replies import text_fields, texts

#: Kinds of dead letters and what replaying one does.
KINDS = ("event", "customer", "send")


@dataclass(frozen=True)
class DeadLetter:
    id: str
    kind: str
    reason: str
    payload: Any
    at: datetime
    source: str = ""

    def to_mapping(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "reason": self.reason,
            "payload": self.payload,
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "source": self.source,
        }


class DeadLetters:
    def __init__(self, client: redis.Redis, keys: Keys, clock: Clock) -> None:
        self.client = client
        self.keys = keys
        self.clock = clock

    def add(self, kind: str, reason: str, payload: Any, source: str = "") -> str:
        if kind not in KINDS:
            raise ValueError(f"dead-letter kind {kind!r}")
        entry_id = "dl_" + uuid.uuid4().hex[:16]
        now = self.clock.now()
        record: dict[Any, str] = {
            "kind": kind,
            "reason": reason,
            "payload": _json(payload),
            "at_ms": str(to_ms(now)),
            "source": source,
        }
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self.keys.deadletter(entry_id), mapping=record)
        pipe.zadd(self.keys.deadletters, {entry_id: to_ms(now)})
        pipe.execute()
        return entry_id

    def get(self, entry_id: str) -> DeadLetter | None:
        raw = self.client.hgetall(self.keys.deadletter(entry_id))
        if not raw:
            return None
        r = text_fields(raw)
        return DeadLetter(
            entry_id,
            r["kind"],
            r["reason"],
            json.loads(r["payload"]),
            from_ms(int(r["at_ms"])),
            r.get("source", ""),
        )

    def list(self, limit: int = 100) -> list[DeadLetter]:
        ids = texts(self.client.zrange(self.keys.deadletters, 0, limit - 1))
        return [d for d in (self.get(i) for i in ids) if d is not None]

    def remove(self, entry_id: str) -> bool:
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(self.keys.deadletter(entry_id))
        pipe.zrem(self.keys.deadletters, entry_id)
        return bool(pipe.execute()[1])

    def count(self) -> int:
        return self.client.zcard(self.keys.deadletters)


def _json(payload: object) -> str:
    """The payload as JSON Redis can store (UTF-8): escaped to ASCII when it holds a lone surrogate."""
    text = json.dumps(payload, ensure_ascii=False, default=str)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(payload, default=str)
    return text
