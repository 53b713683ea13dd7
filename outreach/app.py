"""The application object: one Redis, one clock, one broker, every part wired once."""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import dramatiq
import redis

from .archive import Archive, Mover, Records, open_database
from .broadcasts import Broadcasts
from .channels import Transport
from .channels.config import build_transports, check_bound, load_channels
from .clicks import Clicks
from .clock import Clock, SystemClock
from .customers.profile import Customer
from .customers.profiles import Customers
from .datarights import DataRights
from .delivery.attempt import Outcome
from .delivery.conditions import Facts
from .delivery.deliver import Deliverer
from .delivery.ratelimit import RateLimiter
from .delivery.receipts import Receipts
from .errors import InputError, OutreachError
from .journeys.config import load_journeys
from .journeys.events import Event, check_time
from .journeys.inbox import Inbox
from .journeys.ingest import Ingestor, IngestResult
from .journeys.intake import Intake
from .journeys.recurring import Recurring
from .localization.locales import load_locales
from .localization.render import Renderer
from .policy.blackouts import Blackouts
from .policy.config import load_policy
from .policy.decide import Policy
from .policy.throttles import Throttles
from .registry import needs_consent
from .schedule import Claim, ConsentChange, Schedule, Stop
from .schedule.pump import Pump
from .settings import Settings
from .store.connections import build_broker, check_durability, connect, queued, waiting
from .store.deadletters import DeadLetters
from .store.keys import Keys
from .store.stats import read_stats
from .surveys.answers import Answer, Surveys
from .tracing import Tracing

logger = logging.getLogger(__name__)

#: Dramatiq queue of incoming events.
INGEST_QUEUE = "outreach.ingest"
#: Dramatiq queue of due send batches.
DELIVER_QUEUE = "outreach.deliver"


class Outreach:
    """Everything Outreach does, bound to one Redis and one clock."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        client: redis.Redis | None = None,
        clock: Clock | None = None,
        transports: Mapping[str, Transport] | None = None,
    ) -> None:
        self.settings = settings = settings or Settings.from_env()
        settings.check()
        self.client = client if client is not None else connect(settings.redis_url)
        if client is None and settings.redis_url:
            check_durability(self.client, settings)
        self.clock = clock or SystemClock()
        self.keys = Keys(settings.prefix, settings.shards)
        self.journeys = load_journeys(settings.config_dir, settings.templates_dir)
        self.customers = Customers(self.client, self.keys, settings.secrets)
        self.schedule = Schedule(
            self.client, self.keys, self.clock, settings.lease_seconds, settings.history_days,
            settings.event_ttl_days,
        )  # fmt: skip
        self.archive = Archive(open_database(settings.archive), settings.archive_days)
        #: Every send, live in Redis or finished in the archive: what readers ask.
        self.records = Records(self.schedule, self.archive)
        self.mover = Mover(self.client, self.keys, self.clock, self.schedule, self.customers, self.archive,
                           after_seconds=settings.archive_after_seconds)  # fmt: skip
        self.deadletters = DeadLetters(self.client, self.keys, self.clock)
        self.inbox = Inbox(self.client, self.keys, self.clock, settings.ingest_lease_seconds,
                           settings.ingest_dispatches, settings.event_ttl_days)  # fmt: skip
        policy = load_policy(settings.config_dir, settings.late_grace_seconds)
        self.blackouts = Blackouts(self.client, self.keys, self.clock)
        self.policy = Policy(self.client, self.keys, policy, self.customers.is_erased, settings.secrets)
        self.receipts = Receipts(self.client, self.keys, self.clock, self.records, self.customers,
                                 self.policy, self.set_consent, settings.secret)  # fmt: skip
        self.recurring = Recurring(self.client, self.keys, self.clock, self.journeys, self.policy.allows)
        self.locales = load_locales(settings.config_dir)
        self.renderer = Renderer(settings.templates_dir, self.locales)
        self.channels = load_channels(settings.config_dir)
        self.owns_transports = transports is None  # built from the config: a reload builds them anew
        check_bound(self.channels, self.journeys.channels(), transports or (), self.journeys.steps())
        if transports is None:
            transports = build_transports(settings.config_dir, settings.outbox_dir, config=self.channels,
                                          clock=self.clock)  # fmt: skip
        self.transports = dict(transports)
        self.limiter = RateLimiter(self.client, settings.prefix, self.clock)
        self.surveys = Surveys(self.client, self.keys, self.clock, self.records)
        #: Clicks on tracked links and opens, with their sends (the web process records them).
        self.clicks = Clicks(self.client, self.keys, self.clock, self.records)
        self.datarights = DataRights(self.client, self.keys, self.clock, self.customers, self.records,
                                     self.surveys, self.policy, self.deadletters, self.journeys)  # fmt: skip
        ttl_days = settings.event_ttl_days
        self.ingestor = Ingestor(self.client, self.keys, self.clock, self.customers, self.schedule,
                                 self.journeys, self.recurring, self.inbox, ttl_days)  # fmt: skip
        self.deliverer = Deliverer(
            settings, self.clock, self.schedule, self.customers, self.renderer, self.transports,
            self.channels, self.limiter, self.policy, self.deadletters, self.recurring, self.journeys,
            facts=Facts(self.records, self.surveys, self.policy.allows, self.clicks.first_click),
            throttles=Throttles(self.client, self.keys, self.records), digests=self.ingestor.digests,
        )  # fmt: skip
        self.broadcasts = Broadcasts(self.client, self.schedule, self.customers, self.policy.allows,
                                     settings.templates_dir, settings.config_dir)  # fmt: skip
        self.tracing = Tracing(settings.tracing, self.client, self.keys, settings.history_days * 86400)
        self.intake = Intake(self.clock, self.ingestor, self.inbox, self.deadletters, self.tracing)
        self.broker = build_broker(settings.broker_url, self.client, self.keys.broker_namespace())
        if self.tracing.enabled:
            self.broker.add_middleware(self.tracing.middleware())
        self._declare_actors()
        self._pump = Pump(
            self.client, self.keys, self.clock, self.schedule,
            lambda claims: self.deliver_actor.send([[c.send_id, c.token] for c in claims]),
            claim_limit=settings.claim_limit,
            max_inflight=settings.max_inflight,
            batch=settings.deliver_batch,
        )  # fmt: skip

    def _declare_actors(self) -> None:
        # Thin actors: they call plain methods that tests call directly too.
        @dramatiq.actor(
            actor_name="outreach.ingest",
            queue_name=INGEST_QUEUE,
            broker=self.broker,
            max_retries=5,
            min_backoff=500,
            max_backoff=30_000,
        )
        def ingest_events(events: list[dict[str, Any]] | dict[str, Any]) -> None:
            # One event per message before batches: such messages may still be queued.
            self.ingest_many(events if isinstance(events, list) else [events])

        # No Dramatiq retries: an unfinished batch is recovered by lease expiry,
        # and failed deliveries retry through the schedule.
        @dramatiq.actor(actor_name="outreach.deliver", queue_name=DELIVER_QUEUE, broker=self.broker,
                        max_retries=0)  # fmt: skip
        def deliver_sends(claims: list[list[str]]) -> None:
            self.deliver([Claim(send_id, token) for send_id, token in claims])

        self.ingest_actor = ingest_events
        self.deliver_actor = deliver_sends

    # -- ways in --------------------------------------------------------------------------

    def upsert_customer(
        self, data: Mapping[str, Any] | Customer, *, restore: bool = False, source: str = "profile",
        keep: Collection[str] = (),
    ) -> Customer:  # fmt: skip
        """Create or update a profile; raises InputError naming the bad field.

        An erased customer's id is refused (CustomerErased) unless ``restore`` is true.
        ``keep`` (``consent``, ``channel_consent``) keeps those fields as stored, atomically.
        """
        customer, _ = self.customers.upsert(
            data, restore=restore, source=source, at=self.clock.now(), keep=keep
        )
        self.recurring.enroll(customer)
        return customer

    def set_consent(
        self,
        customer_id: str,
        *,
        allowed: bool,
        category: str | None = None,
        channel: str | None = None,
        source: str = "api",
    ) -> ConsentChange:
        """Record a consent change; withdrawing a category also emits ``customer.unsubscribed``.

        It takes effect at once for every send not yet handed to a provider: the
        hand-over gate reads it. The result says, per open send of a withdrawn
        category, ``cancelled`` (it will not go out) or ``too_late`` (its hand-over
        had begun, at ``handed_at``).
        """
        customer = self.customers.set_consent(
            customer_id,
            category=category,
            channel=channel,
            allowed=allowed,
            source=source,
            at=self.clock.now(),
        )
        withdrawn = category is not None and not allowed and needs_consent(category)
        stops: list[Stop] = []
        if withdrawn:
            sends = self.schedule.open_sends(customer_id)
            stops = self.schedule.stops_of([s for s in sends if s.category == category])
        self.recurring.enroll(customer)
        if withdrawn:
            self.emit("customer.unsubscribed", customer_id, {"categories": [category], "source": source})
        return ConsentChange(customer, stops)

    def set_do_not_contact(self, customer_id: str, blocked: bool = True) -> list[Stop]:
        """Put a customer on (or take them off) the global do-not-contact list.

        Putting them on stops every send not yet handed to a provider; the result
        says so per open send (``Stop``), as ``set_consent`` does.
        """
        self.customers.set_do_not_contact(customer_id, blocked)
        return self.schedule.stops_of(self.schedule.open_sends(customer_id)) if blocked else []

    def answer_survey(self, send_id: str, customer_id: str, kind: str, score: int) -> Answer:
        """Record a survey answer (one per send; a new click updates it) and emit ``survey.answered``.

        Each new version of an answer is its own event, so a follow-up journey that
        supersedes by send id reacts to the latest score only.
        """
        customer = self.customers.require(customer_id)
        answer = self.surveys.record(send_id, customer_id, kind, score, locale=customer.locale,
                                     country=customer.country or "")  # fmt: skip
        if answer.version == 1:  # when the customer answers (a changed answer is not a second time)
            self.ingestor.engagement.record(customer_id, customer.zone, "answer", self.clock.now())
        data = {
            "send_id": send_id, "kind": kind, "score": score, "band": answer.band,
            "detractor": answer.band == "detractor", "journey": answer.journey,
        }  # fmt: skip
        self.emit("survey.answered", customer_id, data, id=f"answer:{send_id}:{answer.version}")
        return answer

    def export_customer(self, customer_id: str) -> dict[str, Any]:
        """Everything held about a customer, as JSON-ready data."""
        return self.datarights.export(customer_id)

    def erase_customer(self, customer_id: str) -> dict[str, int]:
        """Erase a customer; only a hashed tombstone stays, so later events are refused."""
        return self.datarights.erase(customer_id)

    def emit(
        self,
        type: str,
        customer_id: str,
        data: Mapping[str, Any] | None = None,
        *,
        id: str | None = None,
        occurred_at: datetime | str | None = None,
    ) -> str:
        """Validate an event and queue it for ingestion; returns its id."""
        event = self.event(type, customer_id, data, id=id, occurred_at=occurred_at)
        self.submit([event.to_mapping()])
        return event.id

    def event(
        self,
        type: str,
        customer_id: str,
        data: Mapping[str, Any] | None = None,
        *,
        id: str | None = None,
        occurred_at: datetime | str | None = None,
    ) -> Event:
        """Validate an event (InputError names the field; its time must be one the deduplication
        window covers: ``journeys.events.check_time``); nothing is queued."""
        return self.event_from({"id": id, "type": type, "customer_id": customer_id,
                                "occurred_at": occurred_at, "data": data or {}})  # fmt: skip

    def event_from(self, raw: Mapping[str, Any]) -> Event:
        """``event`` for an event object as a producer sends it (an unknown field is refused too)."""
        now = self.clock.now()
        event = Event.from_mapping(raw, now=now)
        check_time(event.occurred_at, now, timedelta(days=self.settings.event_ttl_days))
        return event

    def submit(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Queue valid events for ingestion: kept in the inbox first (one round trip for all), so no
        dead worker can lose them, then one Dramatiq message per ``ingest_batch`` events."""
        self.inbox.put(events)
        self._queue(events)

    def _queue(self, events: Sequence[Mapping[str, Any]]) -> None:
        size = self.settings.ingest_batch
        for i in range(0, len(events), size):
            self.ingest_actor.send([dict(event) for event in events[i : i + size]])

    def ingest(self, raw: Mapping[str, Any]) -> IngestResult | None:
        """Apply one event now; bad input goes to the dead-letter store and returns None."""
        return self.ingest_many([raw])[0]

    def ingest_many(self, raws: Sequence[Mapping[str, Any]]) -> list[IngestResult | None]:
        """Apply events now, in order, as one batch; each one with bad input goes to the dead-letter
        store and is None in its place."""
        return self.intake.apply(raws)

    # -- the scheduler's ticks ------------------------------------------------------------

    def pump(self, *, max_rounds: int = 20) -> int:
        """Queue overdue events again, return expired leases, claim due sends and hand them to workers."""
        self.requeue_overdue_events()
        return self._pump.tick(max_rounds=max_rounds)

    def requeue_overdue_events(self) -> int:
        """Queue again the events not applied within their lease (their worker died); returns how many.

        Only while the ingest queue has no backlog: behind one, an event is late
        because of the queue, and queuing it again would only lengthen the queue.
        """
        # Each waiting message counts as a full batch: it may hold that many events.
        if waiting(self.broker, INGEST_QUEUE) * self.settings.ingest_batch >= self.settings.ingest_backlog:
            return 0
        return self.intake.requeue_overdue(
            self._queue, self.settings.claim_limit, self.settings.ingest_dispatches
        )

    def sweep(self) -> int:
        """Archive the finished sends whose time has come, forget archived ones past retention, and
        emit the events of recurring journeys that are due (check-ins)."""
        try:
            self.archive_finished()
        except Exception:  # an archive away delays archiving only (docs/ARCHIVE.md), not check-ins
            logger.exception("archiving finished sends failed; they wait in Redis for the next sweep")
        events = self.recurring.due_events(self.settings.claim_limit)
        self.submit([event.to_mapping() for event in events])
        return len(events)

    def archive_finished(self, limit: int | None = None) -> int:
        """Move finished sends to the archive, forget archived ones past retention; how many moved."""
        return self.mover.sweep(self.settings.archive_days, limit)

    def deliver(self, claims: list[Claim]) -> list[Outcome]:
        outcomes = self.deliverer.deliver(claims)
        self.tracing.delivered(outcomes)
        return outcomes

    def stats(self) -> dict[str, float]:
        """Every counter and gauge of the stats hashes, summed over the shards."""
        return read_stats(self.client, self.keys)

    # -- workers --------------------------------------------------------------------------

    def worker(self, threads: int | None = None) -> dramatiq.Worker:
        """A started in-process Dramatiq worker on both queues."""
        worker = dramatiq.Worker(
            self.broker,
            worker_threads=threads or self.settings.worker_threads,
            worker_timeout=100,
        )
        worker.start()
        return worker

    def drain(self, worker: dramatiq.Worker) -> None:
        """Wait until every queued event and send batch has been processed."""
        queues = (INGEST_QUEUE, DELIVER_QUEUE)
        while True:
            while any(queued(self.broker, q) for q in queues):
                time.sleep(0.005)  # other threads' work, not simulated time
            worker.join()
            if not any(queued(self.broker, q) for q in queues):
                return

    def close(self) -> None:
        """Close the transports' connections (SMTP sessions, HTTP keep-alives) and the archive's."""
        self.archive.database.close()
        for transport in {id(t): t for t in self.transports.values()}.values():
            close = getattr(transport, "close", None)
            if close is not None:
                close()

    def _replay_event(self, payload: Mapping[str, Any]) -> None:
        # A dead letter may hold an event too malformed to keep in the inbox: it goes straight to ingestion.
        if isinstance(payload.get("id"), str) and isinstance(payload.get("customer_id"), str):
            self.submit([payload])
        else:
            self._queue([payload])

    def replay(self, entry_id: str) -> str:
        """Process a dead letter again; it leaves the store when it is queued."""
        letter = self.deadletters.get(entry_id)
        if letter is None:
            raise InputError("id", entry_id, "no such dead letter")
        if letter.kind == "event":
            self._replay_event(letter.payload)
        elif letter.kind == "customer":
            self.upsert_customer(letter.payload)
        elif letter.kind == "send":
            self.records.restore(letter.payload["send_id"])  # archived since it failed: back to Redis
            self.schedule.requeue(letter.payload["send_id"])
        else:  # pragma: no cover - kinds are checked on add
            raise OutreachError(f"cannot replay a {letter.kind} dead letter")
        self.deadletters.remove(entry_id)
        return letter.kind
