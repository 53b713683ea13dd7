"""The exception tree: every error Outreach raises derives from OutreachError."""

from __future__ import annotations

from collections.abc import Sequence


class OutreachError(Exception):
    """Root of every error raised by Outreach."""


class ConfigError(OutreachError):
    """A file under config/ is invalid; the message names file, item and field."""


class InputError(OutreachError, ValueError):
    """Bad input from a caller: the message names the field and the value."""

    def __init__(self, field: str, value: object, problem: str) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        super().__init__(f"{field}={value!r}: {problem}")


class UnknownCustomer(InputError):
    def __init__(self, customer_id: str) -> None:
        super().__init__("customer_id", customer_id, "no such customer")


class CustomerErased(InputError):
    """The customer's data was erased; events and profiles for the id are refused."""

    def __init__(self, customer_id: str) -> None:
        super().__init__("customer_id", customer_id, "was erased (pass restore=True to create a new profile)")


class UnknownEventType(InputError):
    def __init__(self, event_type: str, declared: Sequence[str] = ()) -> None:
        super().__init__(
            "type", event_type, f"unknown event type (declared: {', '.join(declared) or 'none'})"
        )


class TimingError(InputError):
    """An invalid zone, local time, window, weekday or holiday calendar."""


class TemplateError(OutreachError):
    """A message template is missing or failed to render."""


class ChannelError(OutreachError):
    """A channel could not deliver."""

    #: What happened to the channel's other providers first (set by the failover).
    notes: tuple[str, ...] = ()


class TransientChannelError(ChannelError):
    """Worth retrying later (timeouts, refused connections, 4xx SMTP, 429/5xx HTTP)."""

    def __init__(
        self,
        message: str,
        retry_after: float | None = None,
        *,
        circuit_open: bool = False,
        elsewhere: bool = True,
    ) -> None:
        super().__init__(message)
        #: False when the request went out and its answer was lost: the provider may have taken the
        #: message, so the channel's other providers are not asked now (the send is retried later).
        self.elsewhere = elsewhere
        #: The provider that may have the message (set by the failover when ``elsewhere`` is False).
        self.provider: str | None = None
        #: Seconds the provider asked us to wait, if it said.
        self.retry_after = retry_after
        #: True when no provider was even tried: every one's circuit is open (the channel is down
        #: for now, so the send moves on to its next channel instead of waiting).
        self.circuit_open = circuit_open


class PermanentChannelError(ChannelError):
    """Retrying cannot help (unknown address, 5xx SMTP, 400/404/410/422 HTTP)."""

    #: True when the provider refused free text because the customer has not written within its
    #: service window (WhatsApp 131047): an approved template can still go on the channel.
    window_closed = False

    def __init__(self, message: str, *, address: bool = True, elsewhere: bool | None = None) -> None:
        super().__init__(message)
        #: Whether another provider of the channel could take the message: yes when this one
        #: refused for its own reasons (credentials, account), no when the address is bad or the
        #: message itself cannot go this way (WhatsApp free text outside its window).
        self.elsewhere = (not address) if elsewhere is None else elsewhere
        #: True when the address itself was refused (it is then suppressed for the
        #: channel); False for a problem of the provider or its configuration (bad
        #: credentials, a redirect), which must not blacklist the customer.
        self.address = address
