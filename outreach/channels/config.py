"""Which transport serves each channel: ``config/channels.toml`` plus ``OUTREACH_*`` overrides.

Each channel is bound to a provider kind (``provider`` in ``outreach.registry.CHANNELS``;
the kinds are in ``outreach.channels.registry``). A channel goes to the outbox until it
is given a URL (in the file or the environment): an ``smtp://`` / ``smtps://`` URL for
email, an ``http(s)://`` endpoint and a signing secret for sms, whatsapp and webhook.
Each channel may also name a send ``rate`` (messages per second) and ``burst`` for the
rate limiter. Every error names the file (or environment variable), the key and the
offending value, with passwords redacted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..configfile import read_toml
from ..declarations import CHANNEL_KEYS, CHANNELS_FILE, declare_channels
from ..registry import CHANNELS
from .base import Transport
from .outbox import Outbox
from .parsing import Where, rate_of
from .registry import PROVIDERS

#: Keys every channel's table may hold, whatever its provider.
RATE_KEYS = frozenset({"rate", "burst"})
#: The kind of a channel that is not configured: its messages go to the outbox file.
OUTBOX = "outbox"


@dataclass(frozen=True)
class ChannelConfig:
    """One channel: its provider kind ('outbox' when unconfigured), the provider's settings and
    its send rate."""

    name: str
    kind: str = OUTBOX
    #: Messages per second across all workers; None means no limit.
    rate: float | None = None
    #: Messages that may go at once after a quiet spell (the bucket size).
    burst: int | None = None
    #: The provider's own settings (``SmtpConfig``, ``HttpConfig``); None on the outbox.
    settings: Any = None

    @property
    def secret(self) -> str | None:
        """The secret the provider signs with (requests, and the receipts it sends back), if any."""
        value = getattr(self.settings, "secret", None)
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class ChannelsConfig:
    """Every channel's configuration; ``source`` is the file read (None when there was none)."""

    source: Path | None
    channels: Mapping[str, ChannelConfig]

    def __getitem__(self, name: str) -> ChannelConfig:
        return self.channels[name]


def env_names(channel: str) -> dict[str, str]:
    """The environment variables that override one channel's keys (key -> variable)."""
    return PROVIDERS[CHANNELS[channel].provider].env(channel)


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
        provider = CHANNELS[channel].provider
        if provider not in PROVIDERS:
            raise where.fail("provider", provider, f"must be one of {', '.join(PROVIDERS)}")
        kind = PROVIDERS[provider]
        allowed = kind.keys | RATE_KEYS | CHANNEL_KEYS
        extra = sorted(set(table) - allowed)
        if extra:
            raise where.fail(extra[0], table[extra[0]], f"unknown key (known: {', '.join(sorted(allowed))})")
        rate, burst = rate_of(where, table)
        settings = kind.parse(where, table, env)
        channels[channel] = ChannelConfig(channel, kind.name if settings else OUTBOX, rate, burst, settings)
    return ChannelsConfig(source, channels)


def make_transport(channel: ChannelConfig, outbox: Outbox) -> Transport:
    """The transport a channel's configuration asks for (the shared outbox when unconfigured)."""
    if channel.kind == OUTBOX or channel.settings is None:
        return outbox
    return PROVIDERS[channel.kind].build(channel.name, channel.settings)


def build_transports(
    config_dir: Path,
    outbox_dir: Path,
    environ: Mapping[str, str] | None = None,
    *,
    config: ChannelsConfig | None = None,
) -> dict[str, Transport]:
    """A transport for each channel: the configured one, or the outbox for the rest (``config``:
    the channels already loaded, so the file is not read again)."""
    config = config or load_channels(config_dir, environ)
    outbox = Outbox(outbox_dir)
    return {name: make_transport(channel, outbox) for name, channel in config.channels.items()}
