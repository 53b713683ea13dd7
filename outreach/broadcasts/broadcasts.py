"""``Broadcasts``: create a broadcast, plan it (and resume it), cancel it as a whole, and its status.

A broadcast's definition is one field of the ``broadcasts`` hash; everything else lives in its hash
in each shard (``Keys.broadcast``): the planner's cursor, the counts the scripts keep as they plan
and as its sends end (``count_broadcast`` in ``store/lua/_prelude.lua``), and its cancellation.

Cancelling writes ``cancelled`` to the broadcast's hash in every shard first. From then on the plan
script plans nothing more for it, and the gates (``begin.lua``, ``handover.lua``) end any of its
sends they meet ``cancelled``, in the same step in which they would let it go: so a send claimed
before the cancel does not reach its provider after it (one already past the gate is told
``too_late``, as for one send: docs/DELIVERY.md). Then the planned sends are cancelled one by one
(``cancel.lua``, in batches), so that their records say so at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from ..clock import to_ms
from ..customers.profile import Customer
from ..customers.profiles import Customers
from ..errors import InputError
from ..journeys.config import load_category_defaults
from ..schedule import Schedule, log_entry
from ..store import scripts
from ..store.keys import Keys, split_send_id
from ..store.replies import text, texts
from .audience import Segment, file_digest, read_list
from .model import CANCEL_REASON, RULE_EXTRAS, Broadcast
from .planning import END, Planner, Run

#: Outcomes of a broadcast's sends, as counted in its hashes ('sent:<state>').
OUTCOMES = ("delivered", "suppressed", "failed", "cancelled")

logger = logging.getLogger(__name__)


@dataclass
class Status:
    broadcast: Broadcast
    #: planning | planned | cancelled
    state: str
    shards_done: int
    shards: int
    #: Recipients the planner looked at (the segment's members, the list's lines).
    seen: int = 0
    planned: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    cancelled_ms: int | None = None

    @property
    def waiting(self) -> int:
        """Planned sends without a final state yet (due, claimed, being sent, waiting for a retry)."""
        return max(self.planned - sum(self.outcomes.values()), 0)

    def to_mapping(self) -> dict[str, Any]:
        return {
            "id": self.broadcast.id, "name": self.broadcast.name, "state": self.state,
            "shards_done": self.shards_done, "shards": self.shards, "seen": self.seen,
            "planned": self.planned, "skipped": dict(self.skipped), "outcomes": dict(self.outcomes),
            "waiting": self.waiting, "cancelled_ms": self.cancelled_ms,
            "moment": str(self.broadcast.moment), "category": self.broadcast.category,
        }  # fmt: skip


@dataclass
class Cancelled:
    """What a cancel did: sends cancelled at once, those past the gate (``too_late``), and the
    broadcast's status after."""

    cancelled: int = 0
    too_late: int = 0
    already: bool = False


class Broadcasts:
    def __init__(
        self,
        client: redis.Redis,
        schedule: Schedule,
        customers: Customers,
        allows: Callable[[Customer, str], bool],
        templates_dir: Path | None = None,
        config_dir: Path | None = None,
    ) -> None:
        self.client = client
        self.keys = schedule.keys
        self.clock = clock = schedule.clock
        self.schedule = schedule
        self.templates_dir = templates_dir
        #: Rule defaults per category (``config/categories.toml``): a broadcast keeps its quiet hours.
        self.defaults = load_category_defaults(config_dir) if config_dir is not None else {}
        self.planner = Planner(client, self.keys, clock, schedule, customers, allows)
        self._cancel = scripts.load(client, "outreach.schedule", "cancel")

    # -- definitions -----------------------------------------------------------------------

    def create(self, broadcast: Broadcast) -> Broadcast:
        """Keep a new broadcast (InputError if the id is taken, the template or the list missing)."""
        if self.templates_dir is not None and not (self.templates_dir / broadcast.template).is_dir():
            raise InputError("template", broadcast.template, f"no such folder under {self.templates_dir}")
        audience = dict(broadcast.audience)
        if audience.get("kind") == "list":
            path = Path(str(audience.get("path")))
            if not path.is_file():
                raise InputError("audience.path", str(path), "no such file")
            next(iter(read_list(path)), None)  # a CSV list without a customer_id column is refused here
            audience = {"kind": "list", "path": str(path.resolve()), "sha256": file_digest(path)}
        else:
            audience = Segment.from_mapping(audience).to_mapping()
        created = broadcast.created_ms or to_ms(self.clock.now())
        extras = {k: v for k, v in self.defaults.get(broadcast.category, {}).items() if k in RULE_EXTRAS}
        rule = {**extras, **broadcast.rule}
        kept = Broadcast.from_mapping(
            {**broadcast.to_mapping(), "audience": audience, "created_ms": created, "rule": rule}
        )
        if not self.client.hsetnx(self.keys.broadcasts, kept.id, kept.to_json()):
            raise InputError("id", kept.id, "a broadcast with this id exists already")
        return kept

    def get(self, broadcast_id: str) -> Broadcast:
        raw = self.client.hget(self.keys.broadcasts, broadcast_id)
        if raw is None:
            raise InputError("broadcast", broadcast_id, "no such broadcast")
        return Broadcast.from_json(raw)

    def all(self) -> list[Broadcast]:
        found = [Broadcast.from_json(raw) for raw in self.client.hvals(self.keys.broadcasts)]
        return sorted(found, key=lambda b: (b.created_ms, b.id))

    # -- planning --------------------------------------------------------------------------

    def plan(self, broadcast_id: str, batch: int = 500, rounds: int | None = None) -> Run:
        """Plan (or resume planning) a broadcast; see ``Planner.plan``."""
        broadcast = self.get(broadcast_id)
        audience = broadcast.audience
        if audience.get("kind") == "list":
            path = Path(str(audience["path"]))
            if not path.is_file() or file_digest(path) != audience.get("sha256"):
                raise InputError("audience.path", str(path), "the uploaded list is gone or changed since")
        return self.planner.plan(broadcast, batch, rounds)

    def unfinished(self, *, started: bool = False) -> list[str]:
        """Broadcasts whose planning has not ended (what ``resume`` picks up after a crash); with
        ``started``, only those whose planning began (not one created to be planned later)."""
        out = []
        for broadcast in self.all():
            states = self.planner.cursors(broadcast)
            if any(cancelled for _, cancelled in states) or all(cursor == END for cursor, _ in states):
                continue
            if not started or any(cursor for cursor, _ in states):
                out.append(broadcast.id)
        return out

    def resume(self) -> int:
        """The scheduler's tick: go on planning every broadcast whose planning began and has not
        ended (its planner died); returns the sends planned. Safe beside a planner still running."""
        planned = 0
        for broadcast_id in self.unfinished(started=True):
            try:
                planned += self.plan(broadcast_id).planned
            except InputError as exc:  # its list moved or changed: the others go on; status says so
                logger.error("broadcast %s cannot be planned further: %s", broadcast_id, exc)
        return planned

    # -- cancelling ------------------------------------------------------------------------

    def cancel(self, broadcast_id: str, why: str = "", batch: int = 500) -> Cancelled:
        """Cancel a broadcast as a whole: nothing more is planned or handed over from now on."""
        broadcast = self.get(broadcast_id)
        now = self.clock.now()
        said = f"broadcast {broadcast.id} ({broadcast.name}) cancelled" + (f": {why}" if why else "")
        entry = log_entry(now, "cancelled", said, reason=CANCEL_REASON)
        pipe = self.client.pipeline(transaction=False)
        for shard in range(self.keys.shards):
            key = self.keys.broadcast(shard, broadcast.digest)
            pipe.hsetnx(key, "cancelled", entry)
            pipe.hsetnx(key, "cancelled_ms", str(to_ms(now)))
        first = pipe.execute()[0::2]
        result = Cancelled(already=not any(first))
        # Every shard says so now: cancel what is planned, so that its records say so at once (the
        # broadcast's fields, one per send still planned; a send claimed or waiting for a retry
        # ends cancelled at the gate it comes to next).
        for shard in range(self.keys.shards):
            key, cursor = self.keys.broadcast(shard, broadcast.digest), 0
            while True:
                cursor, fields = self.client.hscan(key, cursor, match=">*", count=batch)
                ids = [broadcast.send_id(text(f)[1:]) for f in fields]
                calls = [self._cancel_call(send_id, entry, said, now) for send_id in ids]
                for out in scripts.run_many(self.client, self._cancel, calls) if calls else []:
                    outcome = texts(out)[0]
                    result.cancelled += outcome == "cancelled"
                    result.too_late += outcome == "too_late" and texts(out)[1] != "delivered"
                if int(cursor) == 0:
                    break
        return result

    def _cancel_call(self, send_id: str, entry: str, said: str, now: Any) -> tuple[list[str], list[Any]]:
        """``cancel.lua`` for one send (as ``Schedule.cancel`` calls it)."""
        keys = self.keys
        shard = keys.shard_of_send(send_id)
        too_late = f"{said}; too late: a hand-over had begun (no retry follows)"
        late = log_entry(now, "cancel_too_late", too_late, reason=CANCEL_REASON)
        return (
            [keys.due(shard), keys.inflight(shard), keys.send(send_id), keys.send_log(send_id),
             keys.outcomes(shard), keys.shard_stats(shard), keys.open_sends(split_send_id(send_id)[2])],
            [send_id, CANCEL_REASON, entry, str(to_ms(now)), keys.tag(shard), self.schedule.history_ms, late],
        )  # fmt: skip

    # -- progress --------------------------------------------------------------------------

    def status(self, broadcast_id: str) -> Status:
        """Counts kept by the scripts in each shard (no scan): one round trip."""
        broadcast = self.get(broadcast_id)
        pipe = self.client.pipeline(transaction=False)
        for shard in range(self.keys.shards):
            pipe.hgetall(self.keys.broadcast(shard, broadcast.digest))
        status = Status(broadcast, "planning", 0, self.keys.shards)
        cancelled = False
        for found in pipe.execute():
            values = {text(k): text(v) for k, v in found.items()}
            status.shards_done += values.get("cursor") == END
            status.seen += int(values.get("seen", 0))
            status.planned += int(values.get("planned", 0))
            if "cancelled" in values:
                cancelled = True
                ms = int(values.get("cancelled_ms") or 0)
                status.cancelled_ms = min(status.cancelled_ms or ms, ms)
            for name, value in values.items():
                kind, _, what = name.partition(":")
                if kind == "skipped":
                    status.skipped[what] = status.skipped.get(what, 0) + int(value)
                elif kind == "sent":
                    status.outcomes[what] = status.outcomes.get(what, 0) + int(value)
        status.state = (
            "cancelled" if cancelled else "planned" if status.shards_done == status.shards else "planning"
        )
        return status

    def describe(self, send_id: str) -> str | None:
        """Which broadcast a send belongs to, if any (for ``outreach explain``)."""
        event = split_send_id(send_id)[0]
        for broadcast in self.all():
            if broadcast.digest == event:
                return f"broadcast {broadcast.id} ({broadcast.name}, {broadcast.moment})"
        return None


def customer_sends(client: redis.Redis, keys: Keys, customer_id: str) -> list[tuple[str, str]]:
    """(send id, the broadcast's hash holding it) of a customer's sends still planned in a broadcast's
    compact form (for the export and the erasure of a customer: the field names them)."""
    found = [Broadcast.from_json(raw) for raw in client.hvals(keys.broadcasts)]
    if not found:
        return []
    shard = keys.shard_of(customer_id)
    pipe = client.pipeline(transaction=False)
    for broadcast in found:
        pipe.hexists(keys.broadcast(shard, broadcast.digest), ">" + customer_id)
    return [
        (b.send_id(customer_id), keys.broadcast(shard, b.digest))
        for b, held in zip(found, pipe.execute(), strict=True)
        if held
    ]


def definition(data: dict[str, Any]) -> Broadcast:
    """A broadcast from a mapping as a caller gives it (the CLI, the API)."""
    try:
        return Broadcast.from_mapping(data)
    except KeyError as exc:
        raise InputError(str(exc.args[0]), None, "is required") from None
