"""What a project declares, read into the registries: its event types (``config/events.toml``),
categories (``config/categories.toml``) and channels (``config/channels.toml``).

``declare(config_dir)`` replaces the previous project's entries; the journeys call it
before they check their triggers, categories and channels against the registries, and
the channel loader calls ``declare_channels`` before it binds providers. A missing
file declares nothing (only the built-in event types remain).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .configfile import read_toml
from .contracts import Contract
from .errors import ConfigError
from .registry import APP_ADDRESSES, CATEGORIES, CHANNELS, EVENT_TYPES, Category, Channel, EventType

EVENTS_FILE = "events.toml"
CATEGORIES_FILE = "categories.toml"
CHANNELS_FILE = "channels.toml"
#: An event type's name: words joined by dots (``order.delayed``, ``trial.started``).
EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
#: A category's or channel's name: a lower-case identifier (``marketing``, ``sms_us``).
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
#: Keys of an event type's table.
EVENT_KEYS = {"description", "data", "open"}
#: Keys of a category's table that declare it (the others are its send-rule defaults).
CATEGORY_KEYS = {"description", "consentable", "track_clicks", "open_pixel", "throttle"}
#: Keys of a channel's table that declare it (the others configure its provider).
CHANNEL_KEYS = {"description", "address", "short_text", "preference", "provider"}
#: Where a channel finds a customer's address: a profile field, or the customer id (webhooks).
ADDRESSES = ("email", "phone", *APP_ADDRESSES, "id")


def _flag(where: str, key: str, table: dict[str, Any], default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: {key}={value!r}: must be true or false")
    return value


def _tables(path: Path, data: dict[str, Any], pattern: re.Pattern[str], what: str) -> dict[str, dict]:
    for name, table in data.items():
        if not pattern.match(name):
            raise ConfigError(f"{path}: [{name}]: a {what} name is lower-case words ({pattern.pattern})")
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {name}={table!r}: must be a table [{name}]")
    return data


def _events(config_dir: Path) -> list[EventType]:
    """``[event."order.delayed"]`` tables: a description, a ``data`` contract, ``open``."""
    path = Path(config_dir) / EVENTS_FILE
    data = read_toml(path)
    unknown = sorted(set(data) - {"event"})
    if unknown:
        raise ConfigError(f'{path}: {unknown[0]}: unknown table (event types are [event."name"])')
    events = data.get("event", {})
    if not isinstance(events, dict):
        raise ConfigError(f'{path}: event={events!r}: must be tables [event."name"]')
    declared = []
    for name, table in events.items():
        where = f'{path}: [event."{name}"]'
        if not EVENT_NAME.match(name):
            raise ConfigError(f"{where}: an event type is lower-case words joined by dots (order.delayed)")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: must be a table")
        if EVENT_TYPES.is_builtin(name):
            raise ConfigError(
                f"{where}: event type {name!r} is built in: Outreach emits it, it cannot be declared"
            )
        extra = sorted(set(table) - EVENT_KEYS)
        if extra:
            raise ConfigError(f"{where}: {extra[0]}: unknown key (known: {', '.join(sorted(EVENT_KEYS))})")
        contract = Contract.parse(where, table.get("data", {}), table.get("open", False))
        declared.append(EventType(name, str(table.get("description", "")), contract))
    return declared


def _categories(config_dir: Path) -> list[Category]:
    """Each ``[name]`` of categories.toml: ``consentable`` (default true), ``track_clicks`` (default
    true), ``open_pixel`` (default false), a description."""
    path = Path(config_dir) / CATEGORIES_FILE
    declared = []
    for name, table in _tables(path, read_toml(path), NAME, "category").items():
        where = f"{path}: [{name}]"
        declared.append(
            Category(
                name,
                str(table.get("description", "")),
                consentable=_flag(where, "consentable", table, True),
                track_clicks=_flag(where, "track_clicks", table, True),
                open_pixel=_flag(where, "open_pixel", table, False),
            )
        )
    return declared


def _channels(config_dir: Path) -> list[Channel]:
    """Each ``[name]`` of channels.toml: its ``address`` field, and how its messages look and go
    (the provider kind is checked where the channels are bound to providers)."""
    path = Path(config_dir) / CHANNELS_FILE
    declared = []
    for name, table in _tables(path, read_toml(path), NAME, "channel").items():
        where = f"{path}: [{name}]"
        address = table.get("address")
        if address not in ADDRESSES:
            raise ConfigError(f"{where}: address={address!r}: must be one of {', '.join(ADDRESSES)} "
                              "(the profile field a message goes to)")  # fmt: skip
        provider = table.get("provider", "smtp" if address == "email" else "http")
        if not isinstance(provider, str):
            raise ConfigError(f"{where}: provider={provider!r}: must be the name of a provider kind")
        declared.append(
            Channel(
                name,
                str(table.get("description", "")),
                address=address,
                short_text=_flag(where, "short_text", table, address == "phone"),
                preference=_flag(where, "preference", table, address != "id"),
                provider=provider,
            )
        )
    return declared


def declare_channels(config_dir: Path) -> None:
    """The channels of channels.toml, in place of the previous project's."""
    CHANNELS.declare(_channels(config_dir))


def declare(config_dir: Path) -> None:
    """Everything a project declares, in place of the previous project's. Every file is read and
    checked first: a refused declaration leaves the previous project's entries as they were."""
    events, categories, channels = _events(config_dir), _categories(config_dir), _channels(config_dir)
    EVENT_TYPES.declare(events)
    CATEGORIES.declare(categories)
    CHANNELS.declare(channels)


def snapshot() -> tuple[dict, dict, dict]:
    """What the registries hold now (a reload that is refused puts it back)."""
    return EVENT_TYPES.state(), CATEGORIES.state(), CHANNELS.state()


def restore(state: tuple[dict, dict, dict]) -> None:
    EVENT_TYPES.restore(state[0])
    CATEGORIES.restore(state[1])
    CHANNELS.restore(state[2])
