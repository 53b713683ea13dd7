"""Every send, wherever it is kept: live ones in Redis (``Schedule``), finished ones in the archive.

Readers (``explain``, the API, receipts, answers, data rights) ask here and need not know where a
send is. Redis is asked first: a send is there until the mover has archived it, and an archived
send never comes back to Redis except by a dead-letter replay (``restore``).
"""

from __future__ import annotations

from typing import Any

from ..channels.webhooks import RANK
from ..clock import to_ms
from ..schedule import Schedule, Send, Stop
from ..schedule.send import b36
from ..store.keys import done_field, split_send_id
from ..store.replies import text
from .archive import Archive


class Records:
    def __init__(self, schedule: Schedule, archive: Archive) -> None:
        self.schedule = schedule
        self.archive = archive
        self.client = schedule.client
        self.keys = schedule.keys

    # -- reading --------------------------------------------------------------------------

    def get(self, send_id: str) -> Send | None:
        return self.get_many([send_id])[0]

    def get_many(self, send_ids: list[str]) -> list[Send | None]:
        found = self.schedule.get_many(send_ids)
        missing = [send_ids[i] for i, send in enumerate(found) if send is None]
        if missing:
            archived = self.archive.sends(missing)
            found = [send or archived.get(send_id) for send_id, send in zip(send_ids, found, strict=True)]
        return found

    def history(self, send_id: str) -> list[dict[str, Any]]:
        """How a send was planned, then everything that happened to it, live or archived."""
        live = self.schedule.history(send_id)
        if live:
            return live
        archived = self.archive.sends([send_id]).get(send_id)
        if archived is None:
            return []
        return self.schedule.history_of(archived, self.archive.history(send_id))

    def send_ids_of(self, customer_id: str) -> list[str]:
        live = self.schedule.send_ids_of(customer_id)
        return sorted(set(live) | {send_id for send_id, _ in self.archive.sends_of(customer_id)})

    def find_send(self, channel: str, provider: str, reference: str) -> str | None:
        """The send a provider's message id belongs to (recorded when it was handed over)."""
        found = self.client.get(self.keys.reference(channel, provider, reference))
        if found is not None:
            return text(found)
        return self.archive.find_reference(channel, provider, reference)

    # -- what reaches a send after it ended -------------------------------------------------

    def note(self, send_id: str, entry: str) -> None:
        """Add to a send's history (never recreating the history of an erased send)."""
        if not self.schedule.note(send_id, entry):
            self.archive.note(send_id, [entry])

    def receipt(self, send_id: str, channel: str, status: str, rank: int, progress: bool, entry: str,
                seen: str = "") -> str:  # fmt: skip
        """``Schedule.receipt``, for an archived send too: 'new', 'repeat', 'stale' or 'gone'."""
        recorded = self.schedule.receipt(send_id, channel, status, rank, progress, entry, seen)
        if recorded != "gone":
            return recorded
        now = to_ms(self.schedule.clock.now())
        recorded = self.archive.receipt(send_id, seen or status, status, rank, progress, entry, now)
        if recorded == "new":
            stats = self.keys.shard_stats(self.keys.shard_of_send(send_id))
            self.client.hincrby(stats, f"receipts:{channel}:{status}", 1)
        return recorded

    def cancel(self, send_id: str, reason: str, text: str) -> Stop:
        """``Schedule.cancel``; an archived send has ended: 'final', or 'too_late' when delivered."""
        stop = self.schedule.cancel(send_id, reason, text)
        if stop.outcome != "unknown":
            return stop
        send = self.archive.sends([send_id]).get(send_id)
        return stop if send is None else self.schedule.stops_of([send])[0]

    def restore(self, send_id: str) -> bool:
        """Bring an archived send back to Redis whole (a dead-letter replay: it is live again):
        its record, history, receipts, answer, clicks and provider references; then it leaves the archive,
        to come back when it ends again. False when it is not archived, or is live already."""
        if self.schedule.get(send_id) is not None:
            return False
        send = self.archive.sends([send_id]).get(send_id)
        if send is None:
            return False
        record = send.as_stored()
        fields: dict[Any, Any] = {k: v for k, v in record.items() if k not in _SPELLED_OUT}
        fields["intent"] = self.schedule.store_intent(send.intent)
        fields["event"] = ",".join((b36(to_ms(send.start)), b36(int(record["created_ms"])), send.event_id))
        fields.update(self.archive.click_fields(send_id))  # its clicks' entries come back in its history
        entries = self.archive.history_entries(send_id)
        receipts: dict[Any, Any] = dict(self.archive.receipts_of(send_id))
        if receipts:
            receipts["top"] = RANK.get(send.receipt, -1)
        answer = self.archive.answer(send_id)
        customer_id = split_send_id(send_id)[2]
        shard = self.keys.shard_of(customer_id)
        pipe = self.client.pipeline(transaction=True)  # every key in the customer's shard
        pipe.hset(self.keys.send(send_id), mapping=fields)
        if entries:
            pipe.rpush(self.keys.send_log(send_id), *entries)
        if receipts:
            pipe.hset(self.keys.receipts(send_id), mapping=receipts)
        if answer:
            kept: dict[Any, Any] = dict(answer)
            pipe.hset(self.keys.answer(send_id), mapping=kept)
            pipe.zadd(self.keys.answers_index(shard), {send_id: int(answer["scored_ms"])})
            pipe.sadd(self.keys.answers(customer_id), send_id)
        pipe.sadd(self.keys.customer_sends(customer_id), send_id)
        for done in self.schedule.done_keys(send_id):
            pipe.hdel(done, done_field(send_id))
        pipe.execute()
        keep = self.schedule.history_ms or None
        for channel, provider, reference in self.archive.references_of([send_id]):
            self.client.set(self.keys.reference(channel, provider, reference), send_id, px=keep)
        self.archive.drop([send_id])
        return True


#: Fields of a stored record that Redis keeps as the intent ref and the event field.
_SPELLED_OUT = frozenset({
    "journey", "step", "category", "template", "channels", "rule", "survey", "event_type", "zone",
    "country", "start", "created_ms", "event_id",
})  # fmt: skip
