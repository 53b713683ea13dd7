"""Optional OpenTelemetry traces: an HTTP request, the ingestion it queued, the deliveries it planned.

Off unless ``OUTREACH_TRACING=1`` (with the ``otel`` extra installed). On, the web
process opens a server span per request (continuing a caller's W3C ``traceparent``);
a Dramatiq middleware carries the current context in each message's options, so the
ingestion of an event is a child of the request that accepted it; ingestion keeps
each planned send's context for as long as its history, and a delivery batch's span
links to the context of every send it carries and records each outcome as a span
event. Spans carry ids, codes and names, never an address, a name or event data.

The processes set up the SDK (``configure``) only when nothing else has: an
application that installs its own tracer provider keeps it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

import dramatiq
import redis
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware

from .errors import ConfigError
from .store.keys import Keys

if TYPE_CHECKING:
    from opentelemetry.trace import Span

#: Message option that carries the W3C trace context.
OPTION = "trace_context"
NEEDS_EXTRA = "OUTREACH_TRACING=1 needs the otel extra: pip install 'outreach[otel]'"
#: Name of the tracer, and the service name when Outreach sets up the SDK.
NAME = "outreach"


def configure(service: str) -> None:
    """Set up the OpenTelemetry SDK with an OTLP/HTTP exporter, unless a provider is set already.

    The exporter reads the standard ``OTEL_EXPORTER_OTLP_*`` variables (endpoint, headers).
    """
    from opentelemetry import trace

    if type(trace.get_tracer_provider()).__name__ != "ProxyTracerProvider":
        return  # the application set its own
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise ConfigError(
            f"OUTREACH_TRACING=1 needs the otel extra: pip install 'outreach[otel]' ({exc})"
        ) from None
    # OTEL_SERVICE_NAME (or OTEL_RESOURCE_ATTRIBUTES) names the service when set.
    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    provider = TracerProvider(resource=Resource.create({} if named else {"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


class Tracing:
    """Spans for one application; every method does nothing when tracing is off."""

    def __init__(self, enabled: bool, client: redis.Redis, keys: Keys, keep_seconds: int) -> None:
        self.enabled = enabled
        self.client = client
        self.keys = keys
        #: How long a planned send's context is kept (its history's lifetime; 0 keeps it).
        self.keep_seconds = keep_seconds
        if not enabled:
            return
        try:
            from opentelemetry import propagate, trace
        except ImportError:
            raise ConfigError(
                "OUTREACH_TRACING=1 needs the otel extra: pip install 'outreach[otel]'"
            ) from None
        configure(NAME)
        self._trace = trace
        self._propagate = propagate
        self.tracer = trace.get_tracer(NAME)

    # -- contexts ---------------------------------------------------------------------------

    def carrier(self) -> dict[str, str]:
        """The current context as W3C headers (empty when off or outside a span)."""
        out: dict[str, str] = {}
        if self.enabled:
            self._propagate.inject(out)
        return out

    @contextmanager
    def span(
        self, name: str, carrier: Mapping[str, str] | None = None, kind: str = "INTERNAL", **attributes: Any
    ) -> Iterator[Any]:
        """A span, current inside the block: the child of ``carrier``'s context when given, else of
        the current one. ``kind``: a ``SpanKind`` name (SERVER, CONSUMER, INTERNAL)."""
        if not self.enabled:
            yield None
            return
        context = self._propagate.extract(dict(carrier)) if carrier else None
        with self.tracer.start_as_current_span(
            name, context=context, kind=self._trace.SpanKind[kind], attributes=attributes
        ) as span:
            yield span

    def note(self, **attributes: Any) -> None:
        """Attributes on the current span (dots for underscores: ``event_id`` → ``outreach.event_id``)."""
        if self.enabled:
            span = self._trace.get_current_span()
            for key, value in attributes.items():
                span.set_attribute(f"outreach.{key}", value)

    # -- ingestion and delivery -------------------------------------------------------------

    def planned(self, send_ids: Iterable[str]) -> None:
        """Keep the current context for each planned send, so its delivery can link to it."""
        if not self.enabled:
            return
        context = self.carrier().get("traceparent")
        if not context:
            return
        pipe = self.client.pipeline(transaction=False)
        for send_id in send_ids:
            pipe.set(self.keys.trace(send_id), context, ex=self.keep_seconds or None)
        pipe.execute()

    def delivered(self, outcomes: Iterable[Any]) -> None:
        """On the current (delivery) span: a link to each send's planning and an event per outcome."""
        if not self.enabled:
            return
        span: Span = self._trace.get_current_span()
        if not span.is_recording():
            return
        outcomes = list(outcomes)
        pipe = self.client.pipeline(transaction=False)
        for outcome in outcomes:
            pipe.get(self.keys.trace(outcome.send_id))
        for outcome, context in zip(outcomes, pipe.execute(), strict=True):
            attributes = {"outreach.send_id": outcome.send_id, "outreach.state": outcome.state,
                          "outreach.reason": outcome.reason}  # fmt: skip
            if context:
                parent = self._trace.get_current_span(
                    self._propagate.extract({"traceparent": context.decode()})
                )
                span.add_link(parent.get_span_context(), attributes)
            span.add_event("outcome", attributes)

    def middleware(self) -> Middleware:
        """The Dramatiq middleware that carries contexts from the sender to the actor."""
        return _MessageContext(self)


class _MessageContext(Middleware):
    """Puts the sender's context in a message's options; runs the actor in a span that continues it."""

    def __init__(self, tracing: Tracing) -> None:
        self.tracing = tracing
        self.local = threading.local()

    def before_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message, delay: int) -> None:
        carrier = self.tracing.carrier()
        if carrier:
            message.options[OPTION] = carrier

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        # Root of its own trace when the sender had none (the scheduler's pump).
        block = self.tracing.span(
            message.actor_name, message.options.get(OPTION) or None, "CONSUMER",
            **{"messaging.message.id": message.message_id},
        )  # fmt: skip
        block.__enter__()
        self._open()[message.message_id] = block

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any | None = None,
        exception: BaseException | None = None,
    ) -> None:
        block = self._open().pop(message.message_id, None)
        if block is None:
            return
        if exception is None:
            block.__exit__(None, None, None)
        else:
            block.__exit__(type(exception), exception, exception.__traceback__)

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        self.after_process_message(broker, message)

    def _open(self) -> dict[str, AbstractContextManager[Any]]:
        """This thread's open spans, by message id (the hooks of one message run on its thread)."""
        if not hasattr(self.local, "open"):
            self.local.open = {}
        return self.local.open
