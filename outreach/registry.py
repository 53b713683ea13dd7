"""The words Outreach knows, each with one owner and one lookup: event types, message categories,
channels, registers and salutation titles.

Every other module asks a registry (``needs_consent(category)``, ``CHANNELS["sms"].address``,
``name in EVENT_TYPES``) instead of spelling a list out. The registries are the extension points.
Declare an entry (``Registry.add``) before the modules that read them are imported: the API's
schema and the command's choices are built from them at import.
Survey scales (``outreach.surveys.scales``) and provider kinds (``outreach.channels.registry``)
are registries of the same shape, kept next to the code that gives them meaning.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from .errors import ConfigError


@dataclass(frozen=True)
class Entry:
    name: str
    description: str = ""


@dataclass(frozen=True)
class EventType(Entry):
    pass


@dataclass(frozen=True)
class Category(Entry):
    #: Whether customers can opt out of it: consent, unsubscribe links, the preference page, caps.
    consentable: bool = True


@dataclass(frozen=True)
class Channel(Entry):
    #: The profile field that holds the customer's address on this channel (``id``: the customer id).
    address: str = "email"
    #: Whether its messages are short texts counted in SMS segments (the preview checks their length).
    short_text: bool = False
    #: Whether customers choose it on their preference page.
    preference: bool = True
    #: The kind of provider it hands messages to (``outreach.channels.registry.PROVIDERS``).
    provider: str = "http"


E = TypeVar("E", bound=Entry)


class Registry(Generic[E]):
    """Entries of one kind by name, in the order they were added."""

    def __init__(self, kind: str, entries: Iterable[E] = ()) -> None:
        self.kind = kind
        self._entries: dict[str, E] = {}
        for entry in entries:
            self.add(entry)

    def add(self, entry: E) -> E:
        """Declare an entry; a name is declared once."""
        if entry.name in self._entries:
            raise ConfigError(f"{self.kind} {entry.name!r} is declared twice")
        self._entries[entry.name] = entry
        return entry

    def __contains__(self, name: object) -> bool:
        # Any value may be asked about (a list from a TOML file): only a declared name is in.
        return isinstance(name, str) and name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, name: str) -> E:
        return self._entries[name]

    def get(self, name: object) -> E | None:
        return self._entries.get(name) if isinstance(name, str) else None

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def where(self, test: Callable[[E], bool]) -> tuple[str, ...]:
        """The names of the entries that pass ``test``, in order."""
        return tuple(name for name, entry in self._entries.items() if test(entry))


#: Lifecycle event types Outreach understands.
EVENT_TYPES: Registry[EventType] = Registry(
    "event type",
    [
        EventType("customer.signed_up", "a customer created an account"),
        EventType("customer.activated", "a customer used the product for the first time"),
        EventType("customer.unsubscribed", "a customer left every journey"),
        EventType("customer.checkin_due", "a recurring check-in is due (made by the sweep)"),
        EventType("order.delayed", "an order will arrive later than promised"),
        EventType("interaction.resolved", "a support interaction was closed"),
        EventType("survey.answered", "a customer answered a survey"),
    ],
)

#: Message categories a send belongs to; consent is kept per category.
CATEGORIES: Registry[Category] = Registry(
    "category",
    [
        Category("transactional", "what the customer must be told (an order is late)", consentable=False),
        Category("lifecycle", "onboarding and check-ins"),
        Category("survey", "CSAT, NPS and CES surveys"),
        Category("marketing", "offers and news"),
    ],
)

#: Channels a customer may prefer and a step may name.
CHANNELS: Registry[Channel] = Registry(
    "channel",
    [
        Channel("email", "email", address="email", provider="smtp"),
        Channel("sms", "SMS", address="phone", short_text=True),
        Channel("whatsapp", "WhatsApp", address="phone", short_text=True),
        Channel("webhook", "a signed HTTP POST to the company's own system", address="id", preference=False),
    ],
)

#: The registers a customer can be addressed in.
FORMALITIES: Registry[Entry] = Registry("register", [Entry("formal"), Entry("informal")])

#: Titles a salutation may use (each locale says how, in config/locales.toml).
TITLES: Registry[Entry] = Registry("title", [Entry(t) for t in ("ms", "mr", "mx", "dr")])


def consentable() -> tuple[str, ...]:
    """The categories a customer can opt out of, in order."""
    return CATEGORIES.where(lambda c: c.consentable)


def needs_consent(category: str) -> bool:
    """Whether sends of a category need the customer's consent (an unknown category does)."""
    entry = CATEGORIES.get(category)
    return entry is None or entry.consentable
