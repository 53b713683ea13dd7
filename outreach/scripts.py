"""Lua scripts: read from ``outreach/lua/<name>.lua``, with the shared prelude in front."""

from __future__ import annotations

from functools import cache
from importlib import resources

import redis
from redis.commands.core import Script


@cache
def source(name: str) -> str:
    """The full text Redis runs: ``_prelude.lua`` (``now_ms``) followed by the script."""
    folder = resources.files("outreach").joinpath("lua")
    return folder.joinpath("_prelude.lua").read_text() + folder.joinpath(f"{name}.lua").read_text()


def load(client: redis.Redis, name: str) -> Script:
    """Register a script with a client (redis-py loads it on first use and after a restart)."""
    return client.register_script(source(name))
