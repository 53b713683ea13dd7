"""The mover: finished sends leave Redis for the archive, in batches, off the delivery path.

A send that reached a final state waits in its shard's ``outcomes`` set (scored by when). Once
it has waited ``after_seconds`` (for the receipts that come within minutes), the mover reads it
with its history, receipts and answer, writes it to the archive in one transaction, then lets
Redis drop it (``lua/archived.lua``): only an 8-byte mark stays, in a hash per shard and event
day, for the events' de-duplication window. At least once and idempotent: a crash between the two
steps writes the same rows again next time; a send changed in between (a receipt, an answer) is
kept and written again next round; a customer erased in between has the rows just written deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import cast

import redis

from ..clock import Clock, from_ms, to_ms
from ..customers.profiles import Customers
from ..schedule import FINAL_STATES, Schedule
from ..store import scripts
from ..store.keys import DAY_MS, DONE_BUCKETS, Keys, done_field, split_send_id
from ..store.replies import text_fields, texts
from .archive import Archive
from .rows import Capture, reference_rows

logger = logging.getLogger(__name__)

#: Sends moved per transaction.
DEFAULT_BATCH = 500
#: Seconds a finished send waits in Redis before it is archived (late receipts land there first).
DEFAULT_AFTER_SECONDS = 300


class Mover:
    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        clock: Clock,
        schedule: Schedule,
        customers: Customers,
        archive: Archive,
        *,
        after_seconds: float = DEFAULT_AFTER_SECONDS,
        batch: int = DEFAULT_BATCH,
    ) -> None:
        self.client = client
        self.keys = keys
        self.clock = clock
        self.schedule = schedule
        self.customers = customers
        self.archive = archive
        self.after_ms = int(after_seconds * 1000)
        self.batch = batch
        self._archived = scripts.load(client, __package__, "archived")

    def backlog(self) -> int:
        """Finished sends still in Redis (waiting for the archive, or their time to go)."""
        return self.waiting()[0]

    def waiting(self) -> tuple[int, datetime | None]:
        """(finished sends still in Redis, when the oldest of them finished)."""
        pipe = self.client.pipeline(transaction=False)
        for shard in range(self.keys.shards):
            pipe.zcard(self.keys.outcomes(shard))
            pipe.zrange(self.keys.outcomes(shard), 0, 0, withscores=True)
        replies = pipe.execute()
        oldest = [rows[0][1] for rows in replies[1::2] if rows]
        return sum(replies[0::2]), from_ms(min(oldest)) if oldest else None

    def sweep(self, retention_days: int, limit: int | None = None) -> int:
        """``move``, unlink the marks no planning reads any more, then forget the archived sends that
        finished over ``retention_days`` ago (0: keep them); how many were moved."""
        moved = self.move(limit)
        self.forget_marks()
        if retention_days:
            self.archive.forget(to_ms(self.clock.now()) - retention_days * DAY_MS)
        return moved

    def forget_marks(self) -> None:
        """UNLINK the ``done`` hashes of the generation before the last one read: Redis frees them
        in the background (an expiry would free a big hash at once, blocking every client)."""
        old = to_ms(self.clock.now()) // self.schedule.window_ms - 2
        pipe = self.client.pipeline(transaction=False)
        for shard in range(self.keys.shards):
            for bucket in range(DONE_BUCKETS):
                pipe.unlink(self.keys.done_bucket(shard, old, bucket))
        pipe.execute()

    def move(self, limit: int | None = None) -> int:
        """Archive the finished sends whose time has come (at most ``limit``); how many were."""
        cutoff = to_ms(self.clock.now()) - self.after_ms
        moved = 0
        for shard in range(self.keys.shards):
            seen: set[str] = set()
            while limit is None or moved < limit:
                rows = self.client.zrangebyscore(self.keys.outcomes(shard), "-inf", cutoff, start=0,
                                                 num=self.batch)  # fmt: skip
                ids = [i for i in texts(cast(list[bytes], rows)) if i not in seen]
                if not ids:
                    break
                seen.update(ids)
                moved += self._move(shard, ids)
        return moved

    def capture(self, ids: Sequence[str]) -> list[Capture]:
        """The finished sends among ``ids`` as the archive takes them (the rest are skipped)."""
        pipe = self.client.pipeline(transaction=False)
        for send_id in ids:
            pipe.hgetall(self.keys.send(send_id))
            pipe.lrange(self.keys.send_log(send_id), 0, -1)
            pipe.hgetall(self.keys.receipts(send_id))
            pipe.hgetall(self.keys.answer(send_id))
        replies = pipe.execute()
        captures = []
        for n in range(len(ids)):
            raw, log, receipts, answer = replies[4 * n : 4 * n + 4]
            if not raw:
                continue
            send = self.schedule.expand(text_fields(raw))
            if send.state not in FINAL_STATES or send.finished is None:
                continue
            captures.append(Capture(send, texts(log), text_fields(receipts), text_fields(answer)))
        profiles = self.customers.get_many([c.send.customer_id for c in captures])
        for capture in captures:
            customer = profiles.get(capture.send.customer_id)
            if customer is not None:
                capture.locale, capture.country = customer.locale, customer.country or ""
        return captures

    def _move(self, shard: int, ids: list[str]) -> int:
        captures = self.capture(ids)
        self.archive.write(captures, to_ms(self.clock.now()))
        return self.release(shard, ids, captures)

    def release(self, shard: int, ids: Sequence[str], captures: Sequence[Capture]) -> int:
        """Let Redis drop the sends of one shard just written to the archive as ``captures`` read
        them (``lua/archived.lua``); how many it dropped."""
        by_id = {c.send.id: c for c in captures}
        now, window = to_ms(self.clock.now()), self.schedule.window_ms
        # A mark written now is read in this generation and the next. The mover unlinks the hash
        # after that (``forget_marks``: freed in the background); its expiry, a generation later
        # still, only cleans up after a scheduler that stopped for good.
        keep = (now // window + 3) * window - now
        args: list[str | bytes | int] = [self.keys.tag(shard), keep]
        for send_id in ids:
            capture = by_id.get(send_id)
            args += [
                send_id,
                len(capture.log) if capture else -1,
                len(capture.receipts) if capture else -1,
                capture.answer.get("changes", "") if capture else "",
                self.customers.tombstone(split_send_id(send_id)[2]),
                self.schedule.done_keys(send_id)[0],
                done_field(send_id),
            ]
        verdicts = texts(self._archived(keys=[self.keys.outcomes(shard)], args=args))
        erased = [i for i, v in zip(ids, verdicts, strict=True) if v == "erased"]
        if erased:
            # Its customer was erased: what was just written goes, then the send leaves the outcomes
            # (a drop that fails leaves it there: the next mover drops again).
            self.archive.drop(erased)
            self.client.zrem(self.keys.outcomes(shard), *erased)
        archived = [by_id[i] for i, v in zip(ids, verdicts, strict=True) if v == "archived" and i in by_id]
        # A provider's message id now leads to the archive (``Records.find_send``).
        references = [
            self.keys.reference(channel, provider, reference)
            for capture in archived
            for channel, provider, reference, _ in reference_rows(capture.send.id, capture.entries)
        ]
        if references:
            pipe = self.client.pipeline(transaction=False)
            for key in references:
                pipe.delete(key)
            pipe.execute()
        if archived:
            self.client.hincrby(self.keys.stats, "archive:moved", len(archived))
        return len(archived)
