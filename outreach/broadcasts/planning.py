"""Planning a broadcast: its audience read in batches, each recipient's local moment resolved, their
sends planned in compact form (``lua/plan.lua``), one script per shard and batch, all shards in one
round trip.

The planner keeps nothing that matters in memory: each shard's cursor (an SSCAN cursor over the
shard's customers, or a line of the uploaded list) moves on in the same script that plans the
batch, so a planner that dies resumes where it stopped, and two planners at once never plan or
count a batch twice (a batch that does not start at the stored cursor plans nothing).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Any

import redis

from ..clock import Clock, from_ms, to_ms
from ..customers.profile import Customer
from ..customers.profiles import Customers
from ..errors import InputError, TimingError
from ..schedule import Intent, Schedule
from ..schedule.send import b36
from ..store import scripts
from ..store.keys import Keys, done_field
from ..store.replies import text
from ..timing import resolve, rule_for, zone
from ..timing.zones import _from_wall
from .audience import Recipient, Segment, audience_from, read_list
from .model import JOURNEY, Broadcast

#: The cursor of a shard whose part of the audience is all planned.
END = "end"
#: How many bad lines of a list a run reports (all are counted).
BAD_LINES_KEPT = 20


@dataclass
class Run:
    """What one run of the planner did (the broadcast's totals are in ``Broadcasts.status``)."""

    planned: int = 0
    batches: int = 0
    cancelled: bool = False
    finished: bool = False
    bad_lines: list[tuple[int, str]] = field(default_factory=list)


class Planner:
    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        clock: Clock,
        schedule: Schedule,
        customers: Customers,
        allows: Callable[[Customer, str], bool],
    ) -> None:
        self.client = client
        self.keys = keys
        self.clock = clock
        self.schedule = schedule
        self.customers = customers
        self.allows = allows
        self._plan = scripts.load(client, __package__, "plan")

    def cursors(self, broadcast: Broadcast) -> list[tuple[str, bool]]:
        """(cursor, cancelled) of every shard, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for shard in range(self.keys.shards):
            pipe.hmget(self.keys.broadcast(shard, broadcast.digest), "cursor", "cancelled")
        return [(text(c) if c is not None else "", x is not None) for c, x in pipe.execute()]

    def plan(self, broadcast: Broadcast, batch: int = 500, rounds: int | None = None) -> Run:
        """Plan the broadcast from where it stands; ``rounds`` stops after that many batches per shard
        (what a planner that dies leaves behind)."""
        if batch < 1:
            raise InputError("batch", batch, "must be at least 1")
        run = Run()
        job = _Job(self, broadcast, batch, run)
        audience = audience_from(broadcast.audience)
        while rounds is None or run.batches < rounds:
            states = self.cursors(broadcast)
            if any(cancelled for _, cancelled in states):
                run.cancelled = True
                return run
            if all(cursor == END for cursor, _ in states):
                run.finished = True
                return run
            if isinstance(audience, Segment):
                calls = job.segment_round(audience, states)
            else:
                calls = job.list_round(audience, states)
            if not calls:
                continue
            replies = scripts.run_many(self.client, self._plan, calls)
            run.batches += 1
            for reply in replies:
                if text(reply[0]) == "cancelled":
                    run.cancelled = True
                run.planned += int(reply[1])
            if run.cancelled:
                return run
        return run


class _Job:
    """One run's work for one broadcast: the intents and moments it resolved, its list reader."""

    def __init__(self, planner: Planner, broadcast: Broadcast, batch: int, run: Run) -> None:
        self.p = planner
        self.b = broadcast
        self.batch = batch
        self.run = run
        keys = planner.keys
        #: Milliseconds between two sends of one shard due at the same instant (the rate, shared).
        self.step = str(math.ceil(keys.shards * 1000 / broadcast.rate)) if broadcast.rate else "0"
        self.created = from_ms(broadcast.created_ms) if broadcast.created_ms else planner.clock.now()
        self.ingested = b36(to_ms(planner.clock.now()))
        self.field = broadcast.digest
        self._intents: dict[tuple[str, str], Intent] = {}
        self._moments: dict[tuple[Any, ...], tuple[int, datetime]] = {}
        self._lines: Iterator[Recipient | tuple[int, InputError]] | None = None
        self._eof = False
        #: The last line the list's reader gave (the rounds go on from there).
        self._position = 0
        self._shared_data = json.dumps(dict(broadcast.data), ensure_ascii=False, separators=(",", ":")) \
            if broadcast.data else ""  # fmt: skip

    # -- one recipient --------------------------------------------------------------------------

    def _moment(self, customer: Customer) -> tuple[int, datetime]:
        """(start UTC ms, due) for the customer: the moment's local date and time in their zone."""
        which = (customer.zone, customer.calendar)
        found = self._moments.get(which)
        if found is None:
            start = self.created
            if self.b.moment.day is not None:
                day = datetime.fromisoformat(self.b.moment.day).date()
                midnight = _from_wall(datetime.combine(day, time(0)), zone(customer.zone))[0]
                start = max(start, midnight)
            start = from_ms(to_ms(start))
            rule = rule_for(self.b.rule_json, customer.calendar)
            found = (to_ms(start), resolve(rule, start, customer.zone).utc)
            if len(self._moments) > 10_000:
                self._moments.clear()
            self._moments[which] = found
        return found

    def _intent(self, customer: Customer) -> Intent:
        which = (customer.zone, customer.country or "")
        intent = self._intents.get(which)
        if intent is None:
            b = self.b
            intent = self._intents[which] = Intent(
                journey=JOURNEY, step=b.name, category=b.category, template=b.template,
                channels=json.dumps(list(b.channels)), rule=b.rule_json, survey="", event_type=JOURNEY,
                zone=customer.zone, country=customer.country or "",
            )  # fmt: skip
        return intent

    def recipient(
        self, customer: Customer | None, data: dict[str, Any] | None, skips: dict[str, int]
    ) -> list[Any]:
        """The eight arguments of one recipient (``lua/plan.lua``), or none when it is skipped (counted
        in ``skips``)."""
        reason = ""
        if customer is None:
            reason = "unknown_customer"
        elif not self.p.allows(customer, self.b.category):
            reason = "no_consent"
        elif not customer.zone_known:
            reason = "no_zone"
        if customer is None or reason:
            skips[reason] = skips.get(reason, 0) + 1
            return []
        try:
            start_ms, due = self._moment(customer)
        except TimingError:
            skips["timing"] = skips.get("timing", 0) + 1
            return []
        send_id = self.b.send_id(customer.id)
        ref = self.p.schedule.store_intent(self._intent(customer))
        body = ""
        if data:
            body = json.dumps({**self.b.data, **data}, ensure_ascii=False, separators=(",", ":"), default=str)
        meta = f"{b36(start_ms)},{self.ingested},{self.b.event_id}"
        mark = done_field(send_id)
        return [send_id, str(to_ms(due)), ref, meta, body, *self.p.schedule.done_keys(send_id), mark]

    def _call(
        self, shard: int, start: str, end: str, seen: int, skips: dict[str, int], args: list[Any]
    ) -> tuple[list[str], list[Any]]:
        keys = self.p.keys
        skipped = ",".join(f"{k}={v}" for k, v in skips.items() if v)
        head = [keys.tag(shard), start, end, str(seen), skipped, self._shared_data, self.step]
        return [keys.due(shard), keys.broadcast(shard, self.field)], head + args

    # -- a round: one batch of every shard not done -----------------------------------------

    def segment_round(
        self, segment: Segment, states: list[tuple[str, bool]]
    ) -> list[tuple[list[str], list[Any]]]:
        keys, client = self.p.keys, self.p.client
        shards = [s for s, (cursor, _) in enumerate(states) if cursor != END]
        pipe = client.pipeline(transaction=False)
        for shard in shards:
            pipe.sscan(keys.customers(shard), int(states[shard][0] or 0), count=self.batch)
        scans = pipe.execute()
        ids = [text(c) for _, members in scans for c in members]
        profiles = self.p.customers.get_many(ids)
        calls = []
        for shard, (after, members) in zip(shards, scans, strict=True):
            skips: dict[str, int] = {}
            args: list[Any] = []
            seen = 0
            for member in members:
                customer_id = text(member)
                customer = profiles.get(customer_id)
                if customer is None or not segment.matches(customer):
                    continue  # not in the segment (or gone since the scan)
                seen += 1
                args += self.recipient(customer, None, skips)
            end = END if int(after) == 0 else str(after)
            calls.append(self._call(shard, states[shard][0], end, seen, skips, args))
        return calls

    def list_round(self, path: Path, states: list[tuple[str, bool]]) -> list[tuple[list[str], list[Any]]]:
        lines = {
            s: (int(c) if c and c != END else (math.inf if c == END else 0))
            for s, (c, _) in enumerate(states)
        }
        low = min(lines.values())
        if self._lines is None or low < self._position:
            # From the lowest cursor: another planner may have moved a shard less far than this one read.
            self._lines, self._position, self._eof = read_list(path, int(low)), int(low), False
        chunk: list[Recipient | tuple[int, InputError]] = []
        for item in self._lines:
            chunk.append(item)
            if len(chunk) >= self.batch * self.p.keys.shards:
                break
        else:
            self._eof = True
        if not chunk and not self._eof:
            return []
        last = max((item.line if isinstance(item, Recipient) else item[0]) for item in chunk) if chunk else 0
        end = END if self._eof else str(last)
        self._position = max(self._position, last)
        keys = self.p.keys
        by_shard: dict[int, list[Recipient]] = {}
        bad = 0
        for item in chunk:
            if isinstance(item, Recipient):
                by_shard.setdefault(keys.shard_of(item.customer_id), []).append(item)
            elif item[0] > lines[0]:
                bad += 1
                if len(self.run.bad_lines) < BAD_LINES_KEPT:
                    self.run.bad_lines.append((item[0], str(item[1])))
        ids = [r.customer_id for s, rs in by_shard.items() for r in rs if r.line > lines[s]]
        profiles = self.p.customers.get_many(ids)
        calls = []
        for shard, cursor in lines.items():
            if cursor == math.inf or (cursor >= last and not self._eof):
                continue
            skips: dict[str, int] = {"bad_line": bad} if shard == 0 else {}
            args: list[Any] = []
            mine = [r for r in by_shard.get(shard, []) if r.line > cursor]
            for r in mine:
                args += self.recipient(profiles.get(r.customer_id), dict(r.data), skips)
            calls.append(self._call(shard, states[shard][0], end, len(mine), skips, args))
        return calls
