"""Which providers serve each channel: ``config/channels.toml`` plus ``OUTREACH_*`` overrides.

A channel names the providers it hands its messages to, in order (``providers = ["twilio",
"vonage"]``; ``OUTREACH_<CHANNEL>_PROVIDERS=twilio,vonage`` overrides the list). Each provider is
configured in its own table ``[<channel>.<provider>]`` whose ``kind`` (default: the provider's
name) is one of the provider kinds of ``outreach.channels.registry``; every key of it can come from
``OUTREACH_<CHANNEL>_<PROVIDER>_<KEY>`` instead, which is where secrets belong. The outbox is a
provider kind too, named like any other: nothing is written there unless a channel asks for it.

The form of earlier versions still works: a channel's own ``url`` / ``secret`` / ``from`` keys (and
``OUTREACH_SMTP_URL``, ``OUTREACH_<CHANNEL>_URL``...) configure the provider named after the
channel's ``provider`` kind (smtp for email, http otherwise), used alone when no list is given.
A channel with no provider cannot be used by a journey (``unbound``). Each channel may also name a
send ``rate`` (messages per second) and ``burst`` for the rate limiter. Every error names the file
(or environment variable), the key and the offending value, with passwords redacted.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..clock import Clock
from ..configfile import read_toml
from ..declarations import CHANNEL_KEYS, CHANNELS_FILE, NAME, declare_channels
from ..errors import ConfigError
from ..registry import CHANNELS
from .approved import ApprovedTemplates, load_approved
from .base import BatchTransport, Transport
from .failover import Failover, Provider
from .http import HttpBatchTransport
from .outbox import OUTBOX_FILE, Outbox
from .parsing import Where, rate_of
from .registry import PROVIDERS

logger = logging.getLogger(__name__)

#: Keys every channel's table may hold, whatever its providers.
RATE_KEYS = frozenset({"rate", "burst", "providers", "breaker"})
#: The provider kind that writes messages to a file instead of sending them.
OUTBOX = "outbox"


@dataclass(frozen=True)
class ProviderConfig:
    """One provider of a channel: its name there, its kind and the kind's settings."""

    name: str
    kind: str
    settings: Any


@dataclass(frozen=True)
class ChannelConfig:
    """One channel: its providers in order (none: it cannot be used) and its send rate."""

    name: str
    providers: tuple[ProviderConfig, ...] = ()
    #: Messages per second across all workers; None means no limit.
    rate: float | None = None
    #: Messages that may go at once after a quiet spell (the bucket size).
    burst: int | None = None
    #: Failures in a row that open a provider's circuit, and seconds it stays open.
    breaker: tuple[int, float] = (5, 30.0)

    @property
    def kind(self) -> str:
        """The first provider's kind ('none' when the channel has no provider)."""
        return self.providers[0].kind if self.providers else "none"

    @property
    def settings(self) -> Any:
        return self.providers[0].settings if self.providers else None

    @property
    def secret(self) -> str | None:
        """The secret the generic HTTP provider signs with (and checks its receipts by), if any."""
        for provider in self.providers:
            value = getattr(provider.settings, "secret", None)
            if isinstance(value, str):
                return value
        return None

    def provider(self, name: str) -> ProviderConfig | None:
        return next((p for p in self.providers if p.name == name), None)

    @property
    def templates(self) -> bool:
        """Whether a provider of it sends business-initiated messages only as approved templates
        (then every message outside the service window goes as one, whichever provider takes it)."""
        return any(PROVIDERS[p.kind].templates for p in self.providers)


@dataclass(frozen=True)
class ChannelsConfig:
    """Every channel's configuration; ``source`` is the file read (None when there was none)."""

    source: Path | None
    channels: Mapping[str, ChannelConfig]
    #: Approved template messages for channels whose provider needs them (``approved``).
    approved: ApprovedTemplates = field(default_factory=ApprovedTemplates)

    def __getitem__(self, name: str) -> ChannelConfig:
        return self.channels[name]


def env_names(channel: str) -> dict[str, str]:
    """The environment variables of the earlier form that override a channel's own keys."""
    return PROVIDERS[CHANNELS[channel].provider].env(channel)


def provider_env(channel: str, provider: str, keys: Iterable[str]) -> dict[str, str]:
    """The environment variables that override a provider table's keys (key -> variable)."""
    return {key: f"OUTREACH_{channel}_{provider}_{key}".upper() for key in keys}


def _provider_names(where: Where, table: Mapping[str, object], env: Mapping[str, str]) -> list[str] | None:
    variable = f"OUTREACH_{where.channel.upper()}_PROVIDERS"
    if env.get(variable):
        names: object = [n.strip() for n in env[variable].split(",") if n.strip()]
    else:
        names = table.get("providers")
        if names is None:
            return None
        variable = None  # type: ignore[assignment]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise where.fail("providers", names, "must be a list of provider names", variable)
    if not names:
        raise where.fail("providers", names, "names no provider (leave the key out for none)", variable)
    for name in names:
        if not NAME.match(name):
            raise where.fail("providers", names, f"{name!r} is not a name (a-z, 0-9, _)", variable)
    if len(set(names)) != len(names):
        raise where.fail("providers", names, "names a provider twice", variable)
    return names


def _provider(where: Where, channel: str, name: str, table: Mapping[str, object],
              env: Mapping[str, str]) -> ProviderConfig:  # fmt: skip
    own = table.get(name)
    legacy = CHANNELS[channel].provider
    if own is None and name == legacy:
        # The earlier form: the channel's own keys configure the provider of its kind.
        kind = PROVIDERS[legacy]
        settings = kind.parse(where, table, env)
        if settings is None:
            raise where.fail("providers", name, f"{name} is not configured: {_needs(channel, name, kind)}")
        return ProviderConfig(name, legacy, settings)
    own = {} if own is None else own
    if not isinstance(own, dict):
        raise where.fail(name, own, f"must be a table [{channel}.{name}] of the provider's settings")
    kind_name = own.get("kind", name)
    if kind_name not in PROVIDERS:
        raise where.fail(f"{name}.kind", kind_name, f"must be one of {', '.join(PROVIDERS)}")
    kind = PROVIDERS[kind_name]
    sub = Where(where.path, channel, name)
    extra = sorted(set(own) - kind.keys - {"kind"})
    if extra:
        raise sub.fail(
            extra[0], own[extra[0]], f"unknown key (known: {', '.join(sorted(kind.keys | {'kind'}))})"
        )
    names = provider_env(channel, name, kind.keys)
    given = {key: env[var] for key, var in names.items() if env.get(var)}
    settings = kind.parse(sub, {**own, **given}, {})
    if settings is None:
        raise sub.fail("kind", kind_name, f"{name} is not configured: {_needs(channel, name, kind)}")
    return ProviderConfig(name, kind_name, settings)


def _needs(channel: str, name: str, kind: Any) -> str:
    keys = ", ".join(sorted(kind.keys)) or "nothing"
    return f"set its keys ({keys}) in [{channel}.{name}] or OUTREACH_{channel}_{name}_<KEY>".replace(
        f"OUTREACH_{channel}_{name}", f"OUTREACH_{channel}_{name}".upper()
    )


def load_channels(config_dir: Path, environ: Mapping[str, str] | None = None) -> ChannelsConfig:
    """Parse and validate ``<config_dir>/channels.toml`` with the environment's overrides."""
    env = os.environ if environ is None else environ
    path = Path(config_dir) / CHANNELS_FILE
    data: dict[str, object] = {}
    source: Path | None = None
    if path.exists():
        source = path
        data = read_toml(path)
    declare_channels(Path(config_dir))  # every [section] is a channel: the registry holds them
    channels: dict[str, ChannelConfig] = {}
    for channel in CHANNELS:
        where = Where(path, channel)
        table = data.get(channel, {})
        assert isinstance(table, dict)  # declare_channels refused anything else
        legacy_name = CHANNELS[channel].provider
        if legacy_name not in PROVIDERS:
            raise where.fail("provider", legacy_name, f"must be one of {', '.join(PROVIDERS)}")
        legacy = PROVIDERS[legacy_name]
        names = _provider_names(where, table, env)
        allowed = legacy.keys | RATE_KEYS | CHANNEL_KEYS | set(names or ())
        extra = sorted(set(table) - allowed)
        if extra:
            raise where.fail(extra[0], table[extra[0]], f"unknown key (known: {', '.join(sorted(allowed))})")
        rate, burst = rate_of(where, table)
        own = legacy.parse(where, table, env)  # the earlier form's settings (None: not given)
        if names is None:
            names = [legacy_name] if own is not None else []
        elif own is not None and legacy_name not in names:
            variables = ", ".join(legacy.env(channel).values())
            problem = (f"does not name {legacy_name}, yet [{channel}] (or {variables}) configures it: "
                       "add it to the list or remove its settings")  # fmt: skip
            raise where.fail("providers", names, problem)
        providers = tuple(_provider(where, channel, name, table, env) for name in names)
        channels[channel] = ChannelConfig(channel, providers, rate, burst, _breaker(where, table))
    return ChannelsConfig(source, channels, load_approved(Path(config_dir), channels))


def _breaker(where: Where, table: Mapping[str, object]) -> tuple[int, float]:
    value = table.get("breaker", {})
    if not isinstance(value, dict) or set(value) - {"failures", "open_seconds"}:
        raise where.fail("breaker", value, "must be a table with failures and/or open_seconds")
    failures = value.get("failures", 5)
    seconds = value.get("open_seconds", 30)
    if not isinstance(failures, int) or isinstance(failures, bool) or failures < 1:
        raise where.fail("breaker.failures", failures, "must be a whole number >= 1")
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not 0 < seconds <= 86400:
        raise where.fail("breaker.open_seconds", seconds, "must be a number of seconds in (0, 86400]")
    return failures, float(seconds)


def unbound(channels: ChannelsConfig, used: Iterable[str], given: Iterable[str] = ()) -> list[str]:
    """The channels in ``used`` (by a journey) that have no provider (nor a transport ``given``)."""
    have = {name for name, c in channels.channels.items() if c.providers} | set(given)
    return sorted(set(used) - have)


def check_bound(
    channels: ChannelsConfig, used: Iterable[str], given: Iterable[str] = (), steps: Iterable[str] = ()
) -> None:
    """Refuse a project whose journeys use a channel no provider serves (its messages would go
    nowhere, or worse, somewhere no one looks), or whose approved templates name a step no
    journey has (``steps``: every "journey.step")."""
    channels.approved.check(steps)
    missing = unbound(channels, used, given)
    if missing:
        where = channels.source or CHANNELS_FILE
        raise ConfigError(
            f"{where}: a journey sends on {', '.join(missing)}, which has no provider: name one with "
            f'providers = [...] in [{missing[0]}] (the outbox is a provider too: providers = ["outbox"]), '
            f"or OUTREACH_{missing[0].upper()}_PROVIDERS"
        )


def outboxes(channels: ChannelsConfig) -> list[str]:
    """The channels whose messages go to the outbox file (said at start-up: no customer gets them)."""
    return [name for name, c in channels.channels.items() if any(p.kind == OUTBOX for p in c.providers)]


def make_transport(channel: ChannelConfig, outbox: Outbox, clock: Clock | None = None) -> Transport:
    """The transport of a channel's providers: the one provider's, or a failover across them."""
    built = [
        Provider(p.name, outbox if p.kind == OUTBOX else PROVIDERS[p.kind].build(channel.name, p.settings))
        for p in channel.providers
    ]
    if len(built) == 1 and isinstance(built[0].transport, BatchTransport):
        # Many at once (the outbox, a batch endpoint): no failover to do.
        if isinstance(built[0].transport, HttpBatchTransport):
            built[0].transport.provider_name = built[0].name
        return built[0].transport
    failures, seconds = channel.breaker
    return Failover(channel.name, built, failures=failures, open_seconds=seconds, clock=clock)


def build_transports(
    config_dir: Path,
    outbox_dir: Path,
    environ: Mapping[str, str] | None = None,
    *,
    config: ChannelsConfig | None = None,
    clock: Clock | None = None,
) -> dict[str, Transport]:
    """A transport for each channel that has providers (``config``: the channels already loaded,
    so the file is not read again). Channels writing to the outbox are said in the log."""
    config = config or load_channels(config_dir, environ)
    outbox = Outbox(outbox_dir)
    names = outboxes(config)
    if names:
        logger.warning("%s write to the outbox %s: no customer receives their messages",
                       ", ".join(names), Path(outbox_dir) / OUTBOX_FILE)  # fmt: skip
    return {name: make_transport(c, outbox, clock) for name, c in config.channels.items() if c.providers}
