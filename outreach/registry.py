"""The words Outreach knows, each with one owner and one lookup: event types, message categories,
channels, registers and salutation titles.

Every other module asks a registry (``needs_consent(category)``, ``CHANNELS["sms"].address``,
``name in EVENT_TYPES``) instead of spelling a list out. A project declares its own event types,
categories and channels in its config (``outreach.declarations`` reads them into these
registries when its journeys load); only what Outreach itself emits or means is built in: the
event types ``customer.unsubscribed``, ``customer.checkin_due`` and ``survey.answered``, the
registers and the titles.
Survey scales (``outreach.surveys.scales``) and provider kinds (``outreach.channels.registry``)
are registries of the same shape, kept next to the code that gives them meaning.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from .contracts import ANY_DATA, Contract, Field
from .errors import ConfigError


@dataclass(frozen=True)
class Entry:
    name: str
    description: str = ""


@dataclass(frozen=True)
class EventType(Entry):
    #: The fields its data carries (declared in config/events.toml).
    contract: Contract = ANY_DATA


@dataclass(frozen=True)
class Category(Entry):
    #: Whether customers can opt out of it: consent, unsubscribe links, the preference page, caps.
    consentable: bool = True
    #: Whether links its messages pass through ``track()`` are signed ``/c/`` redirects that record clicks.
    track_clicks: bool = True
    #: Whether its HTML emails carry a 1x1 image that records an open (off unless a project opts in).
    open_pixel: bool = False


#: Addresses on messaging apps a customer profile keeps under ``addresses`` (a channel's ``address``
#: may name one; a WhatsApp number defaults to the profile's phone).
APP_ADDRESSES = ("whatsapp", "line", "telegram", "wechat")


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

    @property
    def parts(self) -> tuple[str, ...]:
        """The template parts of its messages: an email has a subject and a text and HTML body."""
        return ("subject.txt", "body.txt", "body.html") if self.address == "email" else ("body.txt",)


E = TypeVar("E", bound=Entry)


class Registry(Generic[E]):
    """Entries of one kind by name, in the order they were added: the built-in ones, then a project's."""

    def __init__(self, kind: str, entries: Iterable[E] = ()) -> None:
        self.kind = kind
        self._entries: dict[str, E] = {}
        for entry in entries:
            self.add(entry)
        self._builtin = dict(self._entries)

    def declare(self, entries: Iterable[E]) -> None:
        """A project's entries after the built-in ones, in place of the previous project's (which
        stay when the new ones are refused)."""
        previous, self._entries = self._entries, dict(self._builtin)
        try:
            for entry in entries:
                if entry.name in self._builtin:
                    raise ConfigError(f"{self.kind} {entry.name!r} is built in: it cannot be declared")
                self.add(entry)
        except ConfigError:
            self._entries = previous
            raise

    def state(self) -> dict[str, E]:
        """The entries as they are, for ``restore``."""
        return dict(self._entries)

    def restore(self, state: dict[str, E]) -> None:
        self._entries = dict(state)

    def is_builtin(self, name: str) -> bool:
        return name in self._builtin

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


#: Event types: Outreach's own (below) and those a project declares in config/events.toml.
EVENT_TYPES: Registry[EventType] = Registry(
    "event type",
    [
        EventType(
            "customer.unsubscribed",
            "a customer left every journey of the categories named (made by an opt-out)",
            Contract(
                {
                    "categories": Field("categories", "list", items="string"),
                    "source": Field("source", "string"),
                }
            ),
        ),
        EventType(
            "customer.checkin_due",
            "a recurring check-in is due (made by the sweep)",
            Contract({"journey": Field("journey", "string", required=True)}),
        ),
        EventType(
            "survey.answered",
            "a customer answered a survey (made by the survey pages)",
            Contract(
                {
                    "send_id": Field("send_id", "string", required=True),
                    "kind": Field("kind", "string", required=True),
                    "score": Field("score", "integer", required=True),
                    "band": Field("band", "string", required=True),
                    "detractor": Field("detractor", "boolean", required=True),
                    "journey": Field("journey", "string", required=True),
                }
            ),
        ),
    ],
)

#: Message categories a send belongs to (config/categories.toml); consent is kept per category.
CATEGORIES: Registry[Category] = Registry("category")

#: Channels a customer may prefer and a step may name (config/channels.toml).
CHANNELS: Registry[Channel] = Registry("channel")

#: The registers a customer can be addressed in.
FORMALITIES: Registry[Entry] = Registry("register", [Entry("formal"), Entry("informal")])

#: Titles a salutation may use (each locale says how, in config/locales.toml).
TITLES: Registry[Entry] = Registry("title", [Entry(t) for t in ("ms", "mr", "mx", "dr")])


def consentable() -> tuple[str, ...]:
    """The categories a customer can opt out of, in order."""
    return CATEGORIES.where(lambda c: c.consentable)


def tracks_clicks(category: str) -> bool:
    """Whether the links of a category's messages record clicks (an unknown category's do not)."""
    entry = CATEGORIES.get(category)
    return entry is not None and entry.track_clicks


def has_open_pixel(category: str) -> bool:
    """Whether a category's HTML emails carry the open pixel (opted in per category)."""
    entry = CATEGORIES.get(category)
    return entry is not None and entry.open_pixel


def needs_consent(category: str) -> bool:
    """Whether sends of a category need the customer's consent (an unknown category does)."""
    entry = CATEGORIES.get(category)
    return entry is None or entry.consentable
