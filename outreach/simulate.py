"""Time travel: the project's journeys run over a copy of the data on a simulated clock.

``simulate`` copies every key of the store under the prefix into an in-process
fakeredis, queues again the events the inbox still holds, and fast-forwards a
simulated clock, every channel writing to a throwaway outbox. Nothing it does
reaches the real store or a provider. ``outcomes`` tells what was sent when (UTC
and customer-local), what was not sent and why, and what is still waiting; the
demo prints the same tables.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dramatiq
import fakeredis
import redis

from .app import Outreach
from .channels import Outbox
from .channels.outbox import read_outbox
from .clock import SimulatedClock
from .declarations import declare_channels
from .registry import CHANNELS
from .schedule import SendState
from .settings import Settings
from .store.replies import texts
from .timing import parse_instant, zone


def fast_forward(app: Outreach, worker: dramatiq.Worker, until: datetime, timeline=()) -> int:
    """Move the simulated clock to ``until``, stopping wherever something is due.

    ``timeline`` holds (instant, callable) pairs run when the clock reaches them.
    Returns the number of stops.
    """
    clock = app.clock
    if not isinstance(clock, SimulatedClock):
        raise TypeError("fast_forward needs the application's clock to be a SimulatedClock")
    pending = sorted(timeline, key=lambda pair: pair[0])
    stops = 0
    while True:
        now = clock.now()
        while pending and pending[0][0] <= now:
            pending.pop(0)[1]()
        app.drain(worker)
        app.sweep()
        app.drain(worker)
        app.pump()
        app.drain(worker)
        stops += 1
        if now >= until:
            return stops
        candidates = [until]
        if pending:
            candidates.append(pending[0][0])
        for when in (app.schedule.next_due(), app.recurring.next_due()):
            if when is not None:
                candidates.append(when)
        # Due times are whole milliseconds and claims include them: stop exactly there.
        clock.set(min(max(min(candidates), now + timedelta(milliseconds=1)), until))


#: How each kind of Redis value is read, and written back.
_READ = {
    b"string": lambda p, k: p.get(k),
    b"hash": lambda p, k: p.hgetall(k),
    b"list": lambda p, k: p.lrange(k, 0, -1),
    b"set": lambda p, k: p.smembers(k),
    b"zset": lambda p, k: p.zrange(k, 0, -1, withscores=True),
}
_WRITE = {
    b"string": lambda p, k, v: p.set(k, v),
    b"hash": lambda p, k, v: p.hset(k, mapping=v),
    b"list": lambda p, k, v: p.rpush(k, *v),
    b"set": lambda p, k, v: p.sadd(k, *v),
    b"zset": lambda p, k, v: p.zadd(k, dict(v)),
}


def copy_store(source: redis.Redis, prefix: str, batch: int = 500) -> fakeredis.FakeRedis:
    """Every key under ``prefix`` (with its time to live) in a new in-process store, read by type
    (a real server's DUMP format is not fakeredis's)."""
    copy = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    keys = list(source.scan_iter(match=f"{prefix}*", count=1000))
    for i in range(0, len(keys), batch):
        chunk = keys[i : i + batch]
        pipe = source.pipeline(transaction=False)
        for key in chunk:
            pipe.type(key)
            pipe.pttl(key)
        meta = pipe.execute()
        pipe = source.pipeline(transaction=False)
        readable = [
            (key, kind, ttl)
            for key, kind, ttl in zip(chunk, meta[0::2], meta[1::2], strict=True)
            if kind in _READ
        ]
        for key, kind, _ in readable:
            _READ[kind](pipe, key)
        out = copy.pipeline(transaction=False)
        for (key, kind, ttl), value in zip(readable, pipe.execute(), strict=True):
            if not value:
                continue  # gone (or emptied) between the scan and the read
            _WRITE[kind](out, key, value)
            if ttl > 0:
                out.pexpire(key, ttl)
        out.execute()
    return copy


@dataclass
class Outcomes:
    """What a run did between ``start`` and ``end``."""

    start: datetime
    end: datetime
    #: Each message handed to a channel: the outbox rows.
    sent: list[dict[str, Any]] = field(default_factory=list)
    #: Sends that ended without a message: their state, reason and last history entry.
    not_sent: list[dict[str, Any]] = field(default_factory=list)
    #: Sends still planned when the run ended: when they are due.
    waiting: list[dict[str, Any]] = field(default_factory=list)
    #: Events and sends refused on the way (the dead letters written during the run).
    refused: list[dict[str, Any]] = field(default_factory=list)

    def to_mapping(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat().replace("+00:00", "Z"),
            "end": self.end.isoformat().replace("+00:00", "Z"),
            "sent": self.sent,
            "not_sent": self.not_sent,
            "waiting": self.waiting,
            "refused": self.refused,
        }


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at is not None else None


def outcomes(app: Outreach, start: datetime, end: datetime, outbox_dir: Path) -> Outcomes:
    """What happened to every send from ``start`` on, read back from the store and the outbox."""
    result = Outcomes(start, end)
    pipe = app.client.pipeline(transaction=False)
    for shard in range(app.keys.shards):
        pipe.smembers(app.keys.customers(shard))
    customer_ids = sorted({c for members in pipe.execute() for c in texts(members)})
    send_ids = [s for c in customer_ids for s in app.records.send_ids_of(c)]
    zones = {c.id: c.zone for c in app.customers.get_many(customer_ids).values()}
    result.sent = [{**row, "zone": zones.get(row["customer_id"], "UTC")} for row in read_outbox(outbox_dir)
                   if parse_instant(row["utc"]) >= start]  # fmt: skip
    for send in app.records.get_many(send_ids):
        if send is None:
            continue
        where = zone(zones.get(send.customer_id, send.zone or "UTC"))
        row = {"send_id": send.id, "customer_id": send.customer_id, "journey": send.journey,
               "step": send.step, "state": send.state.value, "zone": where.key}  # fmt: skip
        if send.is_final and send.state != SendState.DELIVERED:
            if send.finished is None or send.finished < start:
                continue
            history = app.records.history(send.id)
            why = next((e.get("text") for e in reversed(history) if e.get("text")), "")
            result.not_sent.append({**row, "reason": send.reason or send.cancelled, "why": why,
                                    "utc": _iso(send.finished),
                                    "local": send.finished.astimezone(where).isoformat()})  # fmt: skip
        elif not send.is_final:
            # Why it waits, when something moved it (a cap, a window, a rate): the last deferral.
            history = app.records.history(send.id)
            deferrals = [entry for entry in history if entry.get("what") == "deferred"]
            moved: dict[str, Any] = deferrals[-1] if deferrals else {}
            result.waiting.append({**row, "due_utc": _iso(send.due), "reason": moved.get("reason", ""),
                                   "why": moved.get("text", ""),
                                   "due_local": send.due.astimezone(where).isoformat()})  # fmt: skip
    for letter in app.deadletters.list(limit=10_000):
        if letter.at >= start:
            result.refused.append({"kind": letter.kind, "reason": letter.reason, "at": _iso(letter.at)})
    result.not_sent.sort(key=lambda r: r["utc"])
    result.waiting.sort(key=lambda r: r["due_utc"])
    return result


def simulate(settings: Settings, source: redis.Redis, *, start: datetime, until: datetime) -> Outcomes:
    """Run the project's journeys over a copy of ``source`` from ``start`` to ``until``."""
    client = copy_store(source, settings.prefix)
    with tempfile.TemporaryDirectory(prefix="outreach-simulate-") as folder:
        outbox_dir = Path(folder)
        # Its own archive in memory: a simulation never writes to the real one.
        quiet = replace(
            settings, redis_url=None, broker_url=None, outbox_dir=outbox_dir, archive_url="sqlite://"
        )
        outbox = Outbox(outbox_dir)
        app = Outreach(
            quiet,
            client=client,
            clock=SimulatedClock(start),
            transports=_everything_to(outbox, settings.config_dir),
        )
        app.submit(app.inbox.pending())  # accepted, not yet applied: the simulation applies them
        worker = app.worker(threads=2)
        try:
            fast_forward(app, worker, until)
        finally:
            worker.stop()
        return outcomes(app, start, until, outbox_dir)


def _everything_to(outbox: Outbox, config_dir: Path) -> dict[str, Any]:
    """Every channel the project declares, to the throwaway outbox: no provider is ever asked."""
    declare_channels(config_dir)
    return dict.fromkeys(CHANNELS, outbox)
