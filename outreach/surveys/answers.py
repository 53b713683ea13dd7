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

from ..archive import Records
from ..clock import Clock, from_ms, to_ms
from ..errors import InputError
from ..links import answer_token, link
from ..store import scripts
from ..store.keys import Keys, split_send_id
from ..store.replies import text, text_fields, texts
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
    """Survey answers: in Redis while their send is, in the archive with it once it is archived."""

    def __init__(self, client: redis.Redis, keys: Keys, clock: Clock, sends: Records) -> None:
        self.client = client
        self.keys = keys
        self.clock = clock
        self.sends = sends
        self.archive = sends.archive
        self._answer = scripts.load(client, __package__, "answer")

    def _keep(self, send_id: str, customer_id: str, counted: str, fields: Mapping[str, Any],
              ended: bool = True) -> str:  # fmt: skip
        """``lua/answer.lua``: 'ok', 'gone' (the send is archived) or 'none' (no answer to comment)."""
        shard = self.keys.shard_of(customer_id)
        keys = [self.keys.send(send_id), self.keys.answer(send_id), self.keys.answers_index(shard),
                self.keys.answers(customer_id), self.keys.shard_stats(shard)]  # fmt: skip
        args = [send_id, to_ms(self.clock.now()), counted, "1" if ended else "",
                *(x for pair in fields.items() for x in pair)]  # fmt: skip
        return text(self._answer(keys=keys, args=args))

    def record(self, send_id: str, customer_id: str, kind: str, score: int, *, locale: str = "",
               country: str = "") -> Answer:  # fmt: skip
        """Store the answer to one survey send; a later answer updates it, never adds a second."""
        scale = SCALES.get(kind)
        if scale is None or score not in scale.scores():
            raise InputError("score", score, f"not a {kind} score")
        send = self.sends.get(send_id)
        if send is None or send.customer_id != customer_id:
            raise InputError("send_id", send_id, "no such survey send")
        band = scale.band(score)
        fields = {
            "send_id": send_id, "customer_id": customer_id, "kind": kind, "score": score,
            "band": band, "journey": send.journey, "channel": send.channel, "locale": locale,
            "country": country,
        }  # fmt: skip
        if self._keep(send_id, customer_id, f"answers:{kind}:{band}", fields, send.is_final) == "ok":
            return self._written(send_id)
        # Archived: the answer goes to the archive with it.
        kept = self.archive.save_answer({**fields, "updated_ms": to_ms(self.clock.now())})
        if kept is None:
            raise InputError("send_id", send_id, "no such survey send")
        stats = self.keys.shard_stats(self.keys.shard_of(customer_id))
        self.client.hincrby(stats, f"answers:{kind}:{band}", 1)
        return _answer(kept)

    def comment(self, send_id: str, text: str) -> Answer:
        """Keep the optional comment with an answer (trimmed to MAX_COMMENT characters)."""
        comment = text.strip()[:MAX_COMMENT]
        try:
            customer_id = split_send_id(send_id)[2]
        except InputError:
            raise InputError("send_id", send_id, "has no answer to comment on") from None
        # An answer in Redis is there with its send; one archived with its send is in the archive.
        if self._keep(send_id, customer_id, "", {"comment": comment}, ended=False) == "ok":
            return self._written(send_id)
        now = to_ms(self.clock.now())
        answer = self.archive.save_answer({"send_id": send_id, "updated_ms": now}, comment=comment)
        if answer is None:
            raise InputError("send_id", send_id, "has no answer to comment on")
        return _answer(answer)

    def get(self, send_id: str) -> Answer | None:
        raw = self.client.hgetall(self.keys.answer(send_id))
        if raw:
            return _answer(raw)
        archived = self.archive.answer(send_id)
        return _answer(archived) if archived else None

    def _written(self, send_id: str) -> Answer:
        """The answer just written for a send."""
        answer = self.get(send_id)
        assert answer is not None, f"the answer to {send_id} was just written"
        return answer

    def between(self, start: datetime | None, end: datetime | None) -> list[Answer]:
        """Answers whose latest change falls in [start, end]: Redis's, then the archive's."""
        live = self.live_between(start, end)
        seen = {a.send_id for a in live}
        archived = self.archive.answers_between(to_ms(start) if start else None, to_ms(end) if end else None)
        return live + [_answer(a) for a in archived if a["send_id"] not in seen]

    def live_between(self, start: datetime | None, end: datetime | None) -> list[Answer]:
        """The answers still in Redis (their send not archived yet) whose latest change falls in
        [start, end]."""
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
        live = [a for a in (self.get(i) for i in ids) if a is not None]
        seen = {a.send_id for a in live}
        archived = [_answer(a) for a in self.archive.answers_of(customer_id) if a["send_id"] not in seen]
        return sorted(live + archived, key=lambda a: a.send_id)
