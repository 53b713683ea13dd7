"""Lua scripts: read from ``<package>/lua/<name>.lua`` next to the module that loads them, with the
shared prelude (``outreach/store/lua/_prelude.lua``) in front.

Scripts run one at a time (``load(...)(keys=..., args=...)``) or many in one
round trip: ``Batch`` gathers commands, scripts among them, and ``execute``
sends them in one pipeline (one per node on a Redis Cluster, whose pipelines
in redis-py refuse scripts). A Redis that lost its scripts (restarted, or a
cluster node that never saw them) answers NoScriptError for the calls that
did not run: only those are sent again, after loading the script, so nothing
runs twice.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.commands.core import Script

#: A command gathered in a batch: the client method's name, its arguments and keyword arguments.
Call = tuple[str, tuple[Any, ...], dict[str, Any]]
#: Script text by SHA1, for loading a script a server does not have.
_SOURCES: dict[str, str] = {}


@cache
def source(package: str, name: str) -> str:
    """What Redis runs: ``_prelude.lua`` (shared functions), then ``<package>/lua/<name>.lua``."""
    prelude = resources.files(__package__).joinpath("lua", "_prelude.lua").read_text()
    return prelude + resources.files(package).joinpath("lua", f"{name}.lua").read_text()


def load(client: redis.Redis, package: str | None, name: str) -> Script:
    """Register a package's script with a client (redis-py loads it on first use and after a restart)."""
    assert package, "scripts are loaded by the package they sit in"
    script = client.register_script(source(package, name))
    _SOURCES[script.sha] = source(package, name)
    return script


class Batch:
    """Commands gathered for one round trip: any client method, ``evalsha`` included."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def __len__(self) -> int:
        return len(self.calls)

    def __getattr__(self, name: str) -> Callable[..., Batch]:
        def add(*args: Any, **kwargs: Any) -> Batch:
            self.calls.append((name, args, kwargs))
            return self

        return add


def _add(pipe: Any, call: Call) -> None:
    name, args, kwargs = call
    if name == "evalsha":
        # What ``evalsha`` does, without its layers: a batch of outcomes is mostly scripts.
        pipe.execute_command("EVALSHA", *args)
    else:
        getattr(pipe, name)(*args, **kwargs)


def _send(client: redis.Redis, calls: list[Call]) -> list[Any]:
    """One pipeline (one per node on a cluster); every result or error, in order."""
    if not isinstance(client, RedisCluster):
        pipe = client.pipeline(transaction=False)
        for call in calls:
            _add(pipe, call)
        return pipe.execute(raise_on_error=False)
    by_node: dict[str, tuple[Any, list[int]]] = {}
    for i, (name, args, _) in enumerate(calls):
        key = args[2] if name == "evalsha" else args[0]
        node = client.get_node_from_key(key)
        by_node.setdefault(node.name, (node, []))[1].append(i)
    results: list[Any] = [None] * len(calls)
    for node, indexes in by_node.values():
        pipe = client.get_redis_connection(node).pipeline(transaction=False)
        for i in indexes:
            _add(pipe, calls[i])
        for i, result in zip(indexes, pipe.execute(raise_on_error=False), strict=True):
            results[i] = result
    for i, result in enumerate(results):
        # Redirected by a resharding: it did not run there; the cluster client follows the redirect.
        if isinstance(result, redis.ResponseError) and str(result).startswith(("MOVED", "ASK")):
            name, args, kwargs = calls[i]
            try:
                results[i] = getattr(client, name)(*args, **kwargs)
            except redis.RedisError as exc:
                results[i] = exc
    return results


def execute(client: redis.Redis, batch: Batch) -> list[Any]:
    """Send a batch in one round trip; raises its first error (after every command was tried)."""
    calls = batch.calls
    results = _send(client, calls) if calls else []
    missing = [i for i, r in enumerate(results) if isinstance(r, redis.exceptions.NoScriptError)]
    if missing:
        for sha in {calls[i][1][0] for i in missing}:
            client.script_load(_SOURCES[sha])
        for i, result in zip(missing, _send(client, [calls[i] for i in missing]), strict=True):
            results[i] = result
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results


def run_many(client: redis.Redis, script: Script, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
    """Run a script once per (keys, args) in one round trip (each call keeps to one hash slot)."""
    batch = Batch()
    for keys, args in calls:
        batch.evalsha(script.sha, len(keys), *keys, *args)
    return execute(client, batch)
