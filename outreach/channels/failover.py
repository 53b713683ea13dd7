"""A channel served by several providers in order, each behind a circuit breaker: while the first
is failing the next one takes the messages, and the first gets them back once it answers again. A
message whose request went out and whose answer was lost (a timeout while waiting) is not handed
to the next provider at once: the first may have taken it, so the schedule retries it later.

The breaker of a provider opens after ``failures`` transient failures in a row (or refusals that
are about the provider, such as bad credentials) and stays open ``open_seconds``; then one message
tries it again (half-open; the others still skip it until that one is answered): a success
closes it, a failure opens it for another spell. Breakers live
in each worker process: each learns on its own, at the cost of a few failed attempts.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..clock import Clock, SystemClock
from ..errors import PermanentChannelError, TransientChannelError
from .base import Delivery, Handed, Transport


@dataclass
class Breaker:
    failures: int = 5
    open_seconds: float = 30.0
    failed: int = 0
    #: While set, the provider is skipped until this instant.
    until: datetime | None = None
    #: A message is trying the provider again after its spell (half-open): the others still skip it.
    trying: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def allows(self, now: datetime) -> bool:
        with self._lock:
            if self.until is None:
                return True
            if now < self.until or self.trying:
                return False
            self.trying = True  # this message is the one that tries it again
            return True

    def success(self) -> None:
        with self._lock:
            self.failed, self.until, self.trying = 0, None, False

    def failure(self, now: datetime) -> bool:
        """Count a failure; True when it opens the circuit (again, after a failed trial)."""
        with self._lock:
            self.failed += 1
            self.trying = False
            if self.failed >= self.failures:
                self.until = now + timedelta(seconds=self.open_seconds)
                return True
            return False

    def release(self) -> None:
        """The trial ended with neither a success nor the provider's failure (a bad address)."""
        with self._lock:
            self.trying = False


@dataclass
class Provider:
    name: str
    transport: Transport
    breaker: Breaker = field(default_factory=Breaker)


def _send(provider: Provider, delivery: Delivery) -> str | Handed:
    """Hand over through one provider; anything but a channel error gives back a half-open trial."""
    try:
        return provider.transport.send(delivery)
    except (TransientChannelError, PermanentChannelError):
        raise
    except Exception:
        provider.breaker.release()
        raise


class Failover:
    """The transport of a channel with several providers; answers ``Handed`` (who took it)."""

    def __init__(
        self,
        channel: str,
        providers: Sequence[Provider],
        *,
        failures: int = 5,
        open_seconds: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        self.channel = channel
        self.providers = list(providers)
        for provider in self.providers:
            provider.breaker = Breaker(failures, open_seconds)
        self.clock = clock or SystemClock()

    def send(self, delivery: Delivery) -> Handed:
        notes: list[str] = []
        transient: TransientChannelError | None = None
        refused: PermanentChannelError | None = None
        providers = self.providers
        if delivery.provider:
            # An earlier attempt's answer was lost at this provider: it may have the message, so
            # only it is asked again (with the same send id), never another.
            providers = [p for p in self.providers if p.name == delivery.provider] or self.providers
        for provider in providers:
            now = self.clock.now()
            breaker = provider.breaker
            if not breaker.allows(now) and not (delivery.provider and provider.name == delivery.provider):
                assert breaker.until is not None
                notes.append(f"{provider.name}: circuit open until {breaker.until.isoformat()}; skipped")
                continue
            try:
                answer = _send(provider, delivery)
            except TransientChannelError as exc:
                opened = breaker.failure(self.clock.now())
                notes.append(f"{provider.name}: {exc}" + ("; its circuit opens" if opened else ""))
                if not exc.elsewhere:
                    # Sent, and the answer lost: this provider may have taken it. Asking another now
                    # could deliver it twice; the schedule retries it here (with the same send id).
                    exc.notes = tuple(notes)
                    exc.provider = provider.name
                    raise
                transient = exc
                continue
            except PermanentChannelError as exc:
                if not exc.elsewhere:
                    # The address is bad, or the message cannot go this way, whichever provider
                    # tries it; and the provider is healthy: its breaker does not count it.
                    breaker.release()
                    exc.notes = tuple(notes)
                    raise
                opened = breaker.failure(self.clock.now())
                notes.append(f"{provider.name}: {exc}" + ("; its circuit opens" if opened else ""))
                refused = exc
                continue
            breaker.success()
            if isinstance(answer, Handed):
                return Handed(provider.name, answer.reference, (*notes, *answer.notes))
            return Handed(provider.name, answer, tuple(notes))
        error: TransientChannelError | PermanentChannelError
        skipped = [p.breaker.until for p in self.providers if p.breaker.until is not None]
        if transient is None and refused is not None and skipped:
            # Those that answered refused for their own reasons; one that was skipped may take it
            # once its circuit closes: later, not never.
            wait = max(0.0, (min(skipped) - self.clock.now()).total_seconds())
            text = f"{self.channel}: no provider took the message ({'; '.join(notes)})"
            error = TransientChannelError(text, retry_after=wait)
        elif transient is not None:
            error = TransientChannelError(
                f"{self.channel}: no provider took the message ({'; '.join(notes)})", transient.retry_after
            )
        elif refused is not None:
            error = PermanentChannelError(f"{self.channel}: every provider refused ({'; '.join(notes)})",
                                          address=False)  # fmt: skip
        else:
            reopen = min(p.breaker.until for p in self.providers if p.breaker.until is not None)
            wait = max(0.0, (reopen - self.clock.now()).total_seconds())
            error = TransientChannelError(f"{self.channel}: every provider's circuit is open",
                                          retry_after=wait, circuit_open=True)  # fmt: skip
        error.notes = tuple(notes)
        raise error

    def close(self) -> None:
        for provider in self.providers:
            close = getattr(provider.transport, "close", None)
            if close is not None:
                close()
