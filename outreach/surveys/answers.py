"""Surveys: one-click answer links, and the answers that close the loop (the scales: ``scales.py``).

Each score in a survey message is its own link, carrying a token signed for
that send and that score. Clicking records the answer. A second click on
another score updates it, so a send never holds more than one answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis

from ..clock import Clock, from_ms, to_ms
from ..errors import InputError
from ..links import answer_token, link
from ..schedule import Schedule
from ..store.keys import Keys
from ..store.replies import text_fields, texts
from .scales import SCALES

#: Longest comment kept with an answer, in characters.
MAX_COMMENT = 2000


def answer_links(
    secret: str, public_url: str, send_id: str, customer_id: str, kind: str, expires: datetime
) -> list[dict[str, Any]]:
    """One signed link per score of the survey, bound to the send and the score."""
    links = []
    for score in SCALES[kind].scores():
        token = answer_token(secret, send_id, customer_id, kind, score, expires)
        links.append({"score": score, "url": link(public_url, "answer", token)})
    return links


@dataclass(frozen=True)
class Answer:
    send_id: str
    customer_id: str
    kind: str
    score: int
    band: str
    version: int
    answered_at: datetime
    updated_at: datetime
    comment: str = ""
    journey: str = ""
    channel: str = ""
    locale: str = ""
    country: str = ""

    def to_mapping(self) -> dict[str, Any]:
        return {
            "send_id": self.send_id,
            "customer_id": self.customer_id,
            "kind": self.kind,
            "score": self.score,
            "band": self.band,
            "version": self.version,
            "answered_at": self.answered_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "comment": self.comment,
            "journey": self.journey,
            "channel": self.channel,
            "locale": self.locale,
            "country": self.country,
        }


def _answer(raw: Mapping[Any, Any]) -> Answer:
    r = text_fields(raw)
    return Answer(
        send_id=r["send_id"],
        customer_id=r["customer_id"],
        kind=r["kind"],
        score=int(r["score"]),
        band=r["band"],
        version=int(r["version"]),
        answered_at=from_ms(int(r["answered_ms"])),
        updated_at=from_ms(int(r["updated_ms"])),
        comment=r.get("comment", ""),
        journey=r.get("journey", ""),
        channel=r.get("channel", ""),
        locale=r.get("locale", ""),
        country=r.get("country", ""),
    )


class Surveys:
    def __init__(self, client: redis.Redis, keys: Keys, clock: Clock, schedule: Schedule) -> None:
        self.client = client
        self.keys = keys
        self.clock = clock
        self.schedule = schedule

    def record(self, send_id: str, customer_id: str, kind: str, score: int, *, locale: str = "",
               country: str = "") -> Answer:  # fmt: skip
        """Store the answer to one survey send; a later answer updates it, never adds a second."""
        scale = SCALES.get(kind)
        if scale is None or score not in scale.scores():
            raise InputError("score", score, f"not a {kind} score")
        send = self.schedule.get(send_id)
        if send is None or send.customer_id != customer_id:
            raise InputError("send_id", send_id, "no such survey send")
        now = to_ms(self.clock.now())
        key = self.keys.answer(send_id)
        shard = self.keys.shard_of(customer_id)
        # Every key here is in the customer's shard: one transaction, also on a cluster.
        pipe = self.client.pipeline(transaction=True)
        pipe.hsetnx(key, "answered_ms", now)
        pipe.hset(key, mapping={
            "send_id": send_id, "customer_id": customer_id, "kind": kind, "score": score,
            "band": scale.band(score), "updated_ms": now, "journey": send.journey,
            "channel": send.channel, "locale": locale, "country": country,
        })  # fmt: skip
        pipe.hincrby(key, "version", 1)
        pipe.zadd(self.keys.answers_index(shard), {send_id: now})
        pipe.sadd(self.keys.answers(customer_id), send_id)
        pipe.hincrby(self.keys.shard_stats(shard), f"answers:{kind}:{scale.band(score)}", 1)
        pipe.execute()
        return self._written(send_id)

    def comment(self, send_id: str, text: str) -> Answer:
        """Keep the optional comment with an answer (trimmed to MAX_COMMENT characters)."""
        key = self.keys.answer(send_id)
        if not self.client.exists(key):
            raise InputError("send_id", send_id, "has no answer to comment on")
        self.client.hset(
            key, mapping={"comment": text.strip()[:MAX_COMMENT], "updated_ms": to_ms(self.clock.now())}
        )
        return self._written(send_id)

    def get(self, send_id: str) -> Answer | None:
        raw = self.client.hgetall(self.keys.answer(send_id))
        return _answer(raw) if raw else None

    def _written(self, send_id: str) -> Answer:
        """The answer just written for a send."""
        answer = self.get(send_id)
        assert answer is not None, f"the answer to {send_id} was just written"
        return answer

    def between(self, start: datetime | None, end: datetime | None) -> list[Answer]:
        """Answers whose latest change falls in [start, end]."""
        low = to_ms(start) if start else "-inf"
        high = to_ms(end) if end else "+inf"
        pipe = self.client.pipeline(transaction=False)
        for shard in range(self.keys.shards):
            pipe.zrangebyscore(self.keys.answers_index(shard), low, high)
        ids = [send_id for rows in pipe.execute() for send_id in texts(rows)]
        pipe = self.client.pipeline(transaction=False)
        for send_id in ids:
            pipe.hgetall(self.keys.answer(send_id))
        return [_answer(raw) for raw in pipe.execute() if raw]

    def of_customer(self, customer_id: str) -> list[Answer]:
        ids = sorted(texts(self.client.smembers(self.keys.answers(customer_id))))
        return [a for a in (self.get(i) for i in ids) if a is not None]
