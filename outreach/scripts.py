"""Lua scripts: read from ``outreach/lua/<name>.lua``, with the shared prelude in front."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.commands.core import Script


@cache
def source(name: str) -> str:
    """The full text Redis runs: ``_prelude.lua`` (shared functions) followed by the script."""
    folder = resources.files("outreach").joinpath("lua")
    return folder.joinpath("_prelude.lua").read_text() + folder.joinpath(f"{name}.lua").read_text()


def load(client: redis.Redis, name: str) -> Script:
    """Register a script with a client (redis-py loads it on first use and after a restart)."""
    return client.register_script(source(name))


class NodePipeline:
    """A pipeline on a Redis Cluster that may carry scripts (redis-py's cluster pipeline refuses them).

    Each command goes to the node that serves its first key, in one plain
    pipeline per node: one round trip per node. A command redirected by a
    resharding (MOVED, ASK) did not run there; it runs again through the cluster
    client, which follows the redirect.
    """

    def __init__(self, cluster: RedisCluster) -> None:
        self.cluster = cluster
        self.calls: list[tuple[str, tuple, dict]] = []

    def __len__(self) -> int:
        return len(self.calls)

    def __getattr__(self, name: str):
        def add(*args, **kwargs) -> NodePipeline:
            self.calls.append((name, args, kwargs))
            return self

        return add

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        calls, self.calls = self.calls, []
        by_node: dict[str, tuple[Any, list[int]]] = {}
        for i, (name, args, _) in enumerate(calls):
            key = args[2] if name == "evalsha" else args[0]
            node = self.cluster.get_node_from_key(key)
            by_node.setdefault(node.name, (node, []))[1].append(i)
        results: list[Any] = [None] * len(calls)
        for node, indexes in by_node.values():
            pipe = self.cluster.get_redis_connection(node).pipeline(transaction=False)
            for i in indexes:
                name, args, kwargs = calls[i]
                getattr(pipe, name)(*args, **kwargs)
            for i, result in zip(indexes, pipe.execute(raise_on_error=False), strict=True):
                results[i] = result
        for i, result in enumerate(results):
            if isinstance(result, redis.ResponseError) and str(result).startswith(("MOVED", "ASK")):
                name, args, kwargs = calls[i]
                results[i] = getattr(self.cluster, name)(*args, **kwargs)
        if raise_on_error:
            for result in results:
                if isinstance(result, Exception):
                    raise result
        return results


def pipeline(client: redis.Redis) -> redis.client.Pipeline | NodePipeline:
    """A non-transactional pipeline that may carry EVALSHA, on a single server or a cluster."""
    if isinstance(client, RedisCluster):
        return NodePipeline(client)
    return client.pipeline(transaction=False)


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
        pipe = pipeline(client)
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
