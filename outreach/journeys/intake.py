"""The intake: raw events as the ingest actor receives them, checked, applied as one batch, the
ones that cannot be applied put in the dead-letter store (and out of the inbox)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..clock import Clock
from ..errors import CustomerErased, InputError
from ..store.deadletters import DeadLetters
from ..tracing import Tracing
from .events import Event
from .inbox import Inbox
from .ingest import Ingestor, IngestResult

logger = logging.getLogger(__name__)


class Intake:
    def __init__(
        self, clock: Clock, ingestor: Ingestor, inbox: Inbox, deadletters: DeadLetters, tracing: Tracing
    ) -> None:
        self.clock = clock
        self.ingestor = ingestor
        self.inbox = inbox
        self.deadletters = deadletters
        self.tracing = tracing

    def apply(self, raws: Sequence[Mapping[str, Any]]) -> list[IngestResult | None]:
        """Apply events in order; an event with bad input is None in its place."""
        now = self.clock.now()
        events: list[Event] = []
        checked: list[Event | InputError] = []
        for raw in raws:
            try:
                event = Event.from_mapping(raw, now=now)
            except InputError as exc:
                checked.append(exc)
            else:
                events.append(event)
                checked.append(event)
        results, failure = self._ingest(events)
        applied = iter(results)
        out: list[IngestResult | None] = []
        for raw, item in zip(raws, checked, strict=True):
            result = next(applied) if isinstance(item, Event) else item
            if result is None:  # not applied (``_ingest``): it stays in the inbox
                out.append(None)
                continue
            if isinstance(result, InputError):
                self.refuse(raw, result)
                out.append(None)
            else:
                out.append(result)
                self.tracing.planned(result.planned)
        if len(out) == 1 and out[0] is not None:
            self.tracing.note(event_id=out[0].event_id, event_type=raws[0].get("type"),
                              planned=len(out[0].planned))  # fmt: skip
        else:
            self.tracing.note(events=len(out), planned=sum(len(r.planned) for r in out if r))
        if failure is not None:
            raise failure
        return out

    def _ingest(self, events: list[Event]) -> tuple[list[IngestResult | InputError | None], Exception | None]:
        """Apply a batch; when it fails on something other than its input (a profile Redis holds
        that cannot be read, a script error), each event on its own, so that one event cannot hold
        up the others. An event that fails alone is None in its place and stays in the inbox, and
        its first error is returned, to be raised once the others are applied: the message is
        tried again, and the inbox gives the event up to the dead letters after its last try."""
        try:
            return list(self.ingestor.ingest_many(events)), None
        except Exception as exc:
            if len(events) <= 1:
                raise
            logger.warning("a batch of %d events failed (%s); applying them one at a time", len(events), exc)
        results: list[IngestResult | InputError | None] = []
        failure: Exception | None = None
        for event in events:
            try:
                results += self.ingestor.ingest_many([event])
            except Exception as exc:  # noqa: BLE001 - raised again once the other events are applied
                logger.warning("event %s not applied: %s", event.id, exc)
                failure = failure or exc
                results.append(None)
        return results, failure

    def refuse(self, raw: Any, exc: InputError) -> None:
        """An event that cannot be applied goes to the dead-letter store and leaves the inbox."""
        if isinstance(exc, CustomerErased):
            # Keep nothing that names the erased customer, not even in the dead-letter store.
            redacted = {"id": raw.get("id"), "type": raw.get("type"), "customer_id": "(erased)"}
            self.deadletters.add("event", "the customer was erased; event refused", redacted, source="ingest")
            self.inbox.done([(raw.get("id"), raw.get("customer_id"))])
            return
        logger.warning("event %s dead-lettered: %s", raw.get("id") if isinstance(raw, Mapping) else raw, exc)
        self.deadletters.add("event", str(exc), raw, source="ingest")
        if isinstance(raw, Mapping):
            self.inbox.done([(raw.get("id"), raw.get("customer_id"))])

    def requeue_overdue(
        self, queue: Callable[[list[dict[str, Any]]], None], limit: int, dispatches: int
    ) -> int:
        """Queue again (``queue``) the events not applied within their lease (their worker died), and
        dead-letter those queued ``dispatches`` times already; returns how many were queued again."""
        again, given_up = self.inbox.overdue(limit)
        for event in again:
            logger.warning("event %s was not applied within its lease; queued again", event.get("id"))
        queue(again)
        for event in given_up:
            text = f"not applied after being queued {dispatches + 1} times"
            self.deadletters.add("event", text, event, source="inbox")
        return len(again)
