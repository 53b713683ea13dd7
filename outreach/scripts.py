"""Lua scripts: read from ``outreach/lua/<name>.lua``, with the shared prelude in front."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

import redis
from redis.commands.core import Script


@cache
def source(name: str) -> str:
    """The full text Redis runs: ``_prelude.lua`` (shared functions) followed by the script."""
    folder = resources.files("outreach").joinpath("lua")
    return folder.joinpath("_prelude.lua").read_text() + folder.joinpath(f"{name}.lua").read_text()


def load(client: redis.Redis, name: str) -> Script:
    """Register a script with a client (redis-py loads it on first use and after a restart)."""
    return client.register_script(source(name))


def run_many(
    client: redis.Redis, script: Script, calls: Sequence[tuple[Sequence[str], Sequence[Any]]]
) -> list[Any]:
    """Run a script once per (keys, args) in one pipeline: one round trip, one hash slot per call.

    EVALSHA goes straight into the pipeline (redis-py would otherwise ask SCRIPT
    EXISTS first, a round trip per execute). Calls that meet a Redis without the
    script (restarted, or a cluster node that never saw it) did not run: the
    script is loaded and only those calls are sent again.
    """
    results: list[Any] = [None] * len(calls)
    todo = list(range(len(calls)))
    for attempt in (1, 2):
        pipe = client.pipeline(transaction=False)
        for i in todo:
            keys, args = calls[i]
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        missing = []
        for i, result in zip(todo, pipe.execute(raise_on_error=False) if todo else [], strict=True):
            if isinstance(result, redis.exceptions.NoScriptError) and attempt == 1:
                missing.append(i)
            elif isinstance(result, Exception):
                raise result
            else:
                results[i] = result
        if not missing:
            break
        client.script_load(script.script)
        todo = missing
    return results
