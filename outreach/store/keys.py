"""Every Redis key Outreach uses, named in one place, and how keys are sharded.

Customers are spread over ``shards`` shards by a hash of their id. Everything
about a customer (profile, consent, caps, planned and finished sends, their
indexes) lives in the customer's shard, and every key of a shard carries the
same Redis Cluster hash tag (``<prefix>{<shard>}:``). So each Lua script and
each transaction touches one hash slot, and the state store runs unchanged on a
single Redis or on a Redis Cluster, where the shards spread over the nodes.

A send id names its customer (``s<event digest><step digest>.<customer id>``),
so any process finds a send's shard from its id alone.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from collections.abc import Iterable
from functools import lru_cache

from ..errors import ConfigError, InputError

#: Hex digits of the event part of a send id (48 bits: no collision among one customer's events).
EVENT_DIGITS = 12
#: Hex digits of the journey step part of a send id (checked unique when journeys load).
STEP_DIGITS = 6


def event_digest(event_id: str) -> str:
    return hashlib.sha1(event_id.encode()).hexdigest()[:EVENT_DIGITS]


@lru_cache(maxsize=4096)
def step_digest(journey: str, step: str) -> str:
    return hashlib.sha1(f"{journey}.{step}".encode()).hexdigest()[:STEP_DIGITS]


def send_id_for(event_id: str, journey: str, step: str, customer_id: str) -> str:
    """Deterministic: the same event always plans the same send ids for the customer."""
    return f"s{event_digest(event_id)}{step_digest(journey, step)}.{customer_id}"


_SEND_ID = re.compile(rf"s([0-9a-f]{{{EVENT_DIGITS}}})([0-9a-f]{{{STEP_DIGITS}}})\.(.+)", re.DOTALL)


@lru_cache(maxsize=8192)
def split_send_id(send_id: str) -> tuple[str, str, str]:
    """(event digest, step digest, customer id) of a send id; InputError if it is not one.

    Cached: a batch asks for the same ids' parts many times (every key of a send names them).
    """
    match = _SEND_ID.fullmatch(send_id) if isinstance(send_id, str) else None
    if match is None:
        raise InputError("send_id", send_id, "not a send id")
    return match.groups()  # type: ignore[return-value]


def planned_send_ids(fields: Iterable[str], customer_id: str) -> list[str]:
    """The send ids named by fields of a customer's plan hash (the rest are events' shared fields)."""
    return [f"s{name}.{customer_id}" for name in fields if len(name) == EVENT_DIGITS + STEP_DIGITS]


def done_field(send_id: str) -> bytes:
    """An archived send's mark in its shard's ``done`` hashes: 8 bytes of a hash of its id."""
    return hashlib.blake2b(send_id.encode(), digest_size=8).digest()


#: Milliseconds in a UTC day.
DAY_MS = 86_400_000
#: ``done`` hashes per shard and generation (by the first hex digit of a mark).
DONE_BUCKETS = 16


def is_send_id(value: str) -> bool:
    try:
        split_send_id(value)
    except InputError:
        return False
    return True


@lru_cache(maxsize=65_536)
def _crc(customer_id: str) -> int:
    """CRC-32 of a customer id: every key of the customer's shard names it (a dozen keys an event),
    and a batch's customers come back in its next steps."""
    return zlib.crc32(customer_id.encode())


class Keys:
    """Key names under one prefix (tests give each run its own prefix), over ``shards`` shards."""

    def __init__(self, prefix: str, shards: int = 1) -> None:
        if "{" in prefix or "}" in prefix:
            raise ConfigError(f"prefix={prefix!r}: must not contain braces (they mark hash tags)")
        if shards < 1:
            raise ConfigError(f"shards={shards!r}: must be at least 1")
        self.prefix = prefix
        self.shards = shards
        #: hash intent ref -> JSON: what a journey step asked for, shared by its sends.
        self.intents = prefix + "intents"
        #: The company's blackouts (``policy.blackouts``): id -> JSON.
        self.blackouts = prefix + "blackouts"
        #: hash broadcast id -> its definition as JSON (``broadcasts``).
        self.broadcasts = prefix + "broadcasts"
        #: hash of counters kept outside any shard: pump figures.
        self.stats = prefix + "stats"
        # Dead letters: one hash tag, so an entry and its index change together.
        self.deadletters = prefix + "{deadletters}:index"
        self._deadletter = prefix + "{deadletters}:"

    # -- shards -----------------------------------------------------------------------------

    def shard_of(self, customer_id: str) -> int:
        return _crc(customer_id) % self.shards

    def shard_of_send(self, send_id: str) -> int:
        return self.shard_of(split_send_id(send_id)[2])

    def tag(self, shard: int) -> str:
        """The common start of every key of a shard (its hash tag included)."""
        return f"{self.prefix}{{{shard}}}:"

    def _c(self, customer_id: str) -> str:
        return self.tag(self.shard_of(customer_id))

    def _s(self, send_id: str) -> str:
        return self._c(split_send_id(send_id)[2])

    # -- per shard ------------------------------------------------------------------------

    def due(self, shard: int) -> str:
        """zset send id -> due UTC ms: sends waiting for their moment."""
        return self.tag(shard) + "due"

    def inflight(self, shard: int) -> str:
        """zset send id -> lease deadline UTC ms: sends claimed by a worker."""
        return self.tag(shard) + "inflight"

    def claim_seq(self, shard: int) -> str:
        """counter feeding claim tokens."""
        return self.tag(shard) + "seq"

    def outcomes(self, shard: int) -> str:
        """zset send id -> UTC ms of its final state (reports read periods from it)."""
        return self.tag(shard) + "outcomes"

    def done(self, send_id: str, generation: int) -> str:
        """hash: marks (``done_field``) of the sends archived in one generation (a span of the
        events' window, ``generation`` = UTC ms // window), one hash per shard, generation and
        first hex digit of the mark (``DONE_BUCKETS``: no one key grows too big to move between
        cluster nodes). A send planned again from the same event finds its mark in this
        generation's hash or the one before; older ones are unlinked by the mover."""
        return self.done_bucket(self.shard_of_send(send_id), generation, done_field(send_id)[0] >> 4)

    def done_bucket(self, shard: int, generation: int, bucket: int) -> str:
        return f"{self.tag(shard)}done:{generation}:{bucket:x}"

    def done_pair(self, send_id: str, now_ms: int, window_ms: int) -> tuple[str, str]:
        """The ``done`` hashes a send's mark may be in now: this generation's, the one before."""
        generation = now_ms // window_ms
        return self.done(send_id, generation), self.done(send_id, generation - 1)

    def shard_stats(self, shard: int) -> str:
        """hash of counters: sends by state and reason, latency buckets, survey answers."""
        return self.tag(shard) + "stats"

    def inbox(self, shard: int) -> str:
        """zset event id -> UTC ms by which it should be applied: events accepted, not yet applied."""
        return self.tag(shard) + "inbox"

    def inbox_events(self, shard: int) -> str:
        """hash event id -> the event as JSON, while it is in the inbox."""
        return self.tag(shard) + "inbox:events"

    def inbox_tries(self, shard: int) -> str:
        """hash event id -> times an overdue event was queued again."""
        return self.tag(shard) + "inbox:tries"

    def customers(self, shard: int) -> str:
        """set of the shard's customer ids."""
        return self.tag(shard) + "customers"

    def recurring(self, shard: int, journey: str) -> str:
        """zset customer id -> UTC ms when a recurring journey is next due."""
        return f"{self.tag(shard)}recurring:{journey}"

    def answers_index(self, shard: int) -> str:
        """zset send id -> UTC ms of the (latest) survey answer."""
        return self.tag(shard) + "answers"

    def broadcast(self, shard: int, event: str) -> str:
        """hash: one broadcast in one shard, under the event digest its send ids carry: the planner's
        cursor, counters (seen, planned, skipped, outcomes), ``cancelled`` once cancelled, and its
        sends still planned, one field each (``>customer``; docs/ARCHITECTURE.md)."""
        return f"{self.tag(shard)}broadcast:{event}"

    def all_stats(self) -> list[str]:
        """Every hash of counters: the global one, then one per shard."""
        return [self.stats] + [self.shard_stats(s) for s in range(self.shards)]

    # -- per customer (in the customer's shard) ---------------------------------------------

    def customer(self, customer_id: str) -> str:
        """string: the customer profile as JSON."""
        return f"{self._c(customer_id)}customer:{customer_id}"

    def do_not_contact(self, customer_id: str) -> str:
        """set of the shard's customer ids nobody may contact."""
        return self._c(customer_id) + "dnc"

    def erased(self, customer_id: str) -> str:
        """set of hashes of the shard's erased customer ids (the only trace they leave)."""
        return self._c(customer_id) + "erased"

    def planned(self, customer_id: str) -> str:
        """hash: the customer's sends still only planned, in compact form (see schedule/transitions.py)."""
        return f"{self._c(customer_id)}plan:{customer_id}"

    def open_sends(self, customer_id: str) -> str:
        """set: the customer's claimed sends that have not reached a final state (for exits)."""
        return f"{self._c(customer_id)}open:{customer_id}"

    def customer_sends(self, customer_id: str) -> str:
        """set: every send of the customer that left the compact form (export, erase)."""
        return f"{self._c(customer_id)}sends:{customer_id}"

    def journey_start(self, journey: str, customer_id: str, scope: str = "") -> str:
        """hash: a journey's start for its steps that wait for an event (event_id, at_ms, data); one
        per value of its ``supersede_by`` field (``scope``: one order) when it has one."""
        return f"{self._c(customer_id)}jstart:{journey}:{customer_id}:{scope}"

    def supersede(self, journey: str, customer_id: str, key: str) -> str:
        """string: the latest event for one customer's supersede key (e.g. one order)."""
        return f"{self._c(customer_id)}supersede:{journey}:{customer_id}:{key}"

    def cap(self, customer_id: str, category: str, period: str) -> str:
        """counter: messages of a category (or 'all') in one local day or ISO week."""
        return f"{self._c(customer_id)}cap:{customer_id}:{category}:{period}"

    def throttle(self, customer_id: str, journey: str) -> str:
        """zset: the journey's sends that went to the customer (or are on their way) → when, UTC ms."""
        return f"{self._c(customer_id)}throttle:{journey}:{customer_id}"

    def digest(self, journey: str, step: str, customer_id: str, key: str) -> str:
        """hash: one digest step's collection for the customer and a ``by`` value (``key``, canonical
        JSON): ``open`` → the send that lists the events coming now; ``e:<event id>`` → the send that
        lists that event. Named by a digest of both, so no customer id and value share one."""
        which = hashlib.sha1(json.dumps([customer_id, key]).encode()).hexdigest()[:20]
        return f"{self.digests_of(journey, customer_id)}{step}:{which}"

    def digests_of(self, journey: str, customer_id: str) -> str:
        """The start of the names of a journey's digest collections (in the customer's shard)."""
        return f"{self._c(customer_id)}digest:{journey}."

    def fatigue(self, customer_id: str) -> str:
        """string: the survey send holding the customer's survey-fatigue period."""
        return f"{self._c(customer_id)}fatigue:{customer_id}"

    def consent_log(self, customer_id: str) -> str:
        """list of JSON: every consent change with its time and source."""
        return f"{self._c(customer_id)}customer:{customer_id}:consent"

    def customer_keys(self, customer_id: str) -> str:
        """set: other keys that name the customer (removed on erase)."""
        return f"{self._c(customer_id)}customer:{customer_id}:keys"

    def event(self, event_id: str, customer_id: str) -> str:
        """string: 'pending' or 'done' for an event id of the customer (its inbox's shard)."""
        return f"{self._c(customer_id)}event:{event_id}"

    def answers(self, customer_id: str) -> str:
        """set: send ids of the customer's answered surveys."""
        return f"{self._c(customer_id)}customer:{customer_id}:answers"

    def engagement(self, customer_id: str) -> str:
        """hash: ``<kind>:<local hour>`` → how often the customer answered or clicked at that hour."""
        return f"{self._c(customer_id)}customer:{customer_id}:engagement"

    def goals(self, customer_id: str) -> str:
        """zset: ``<event type>|<event id>`` → UTC ms of the customer's experiment goal events."""
        return f"{self._c(customer_id)}customer:{customer_id}:goals"

    # -- per send (in its customer's shard) ---------------------------------------------------

    def send(self, send_id: str) -> str:
        """hash: a send that left the compact form: its state, attempts and outcome."""
        return f"{self._s(send_id)}send:{send_id}"

    def send_log(self, send_id: str) -> str:
        """list of JSON entries: what happened to the send after it was planned, and why."""
        return f"{self._s(send_id)}send:{send_id}:log"

    def digest_items(self, send_id: str) -> str:
        """hash: the events a digest send lists: event id → JSON [time ms, data]."""
        return f"{self._s(send_id)}send:{send_id}:items"

    def cap_slot(self, send_id: str) -> str:
        """marker: this send already holds its cap slot (retries do not count twice)."""
        return f"{self._s(send_id)}capslot:{send_id}"

    def trace(self, send_id: str) -> str:
        """string: the W3C trace context a send was planned in (only with ``OUTREACH_TRACING``)."""
        return f"{self._s(send_id)}trace:{send_id}"

    def answer(self, send_id: str) -> str:
        """hash: the answer to one survey send (score, comment, times)."""
        return f"{self._s(send_id)}answer:{send_id}"

    # -- global, one key each -----------------------------------------------------------------

    def suppressed(self, channel: str) -> str:
        """set: addresses a channel must not use (hard bounces, provider rejections)."""
        return f"{self.prefix}suppressed:{channel}"

    def reference(self, channel: str, provider: str, reference: str) -> str:
        """string: the send a provider's message id belongs to (its webhooks name only that id)."""
        return f"{self.prefix}ref:{channel}:{provider}:{reference}"

    def receipts(self, send_id: str) -> str:
        """hash: status -> UTC ms of each receipt a provider sent for a send (repeats are dropped)."""
        return f"{self._s(send_id)}receipts:{send_id}"

    def window(self, channel: str, address_hash: str) -> str:
        """string: set while a customer's last inbound message keeps a channel's service window open."""
        return f"{self.prefix}window:{channel}:{address_hash}"

    def nonce(self, value: str) -> str:
        """string: a used one-time form token."""
        return f"{self.prefix}nonce:{value}"

    def deadletter(self, entry_id: str) -> str:
        """hash: one dead letter (indexed in ``deadletters``)."""
        return self._deadletter + entry_id

    def broker_namespace(self) -> str:
        """Dramatiq's Redis namespace: one hash tag, so its scripts work on a cluster too."""
        return f"{{{self.prefix}dramatiq}}"
