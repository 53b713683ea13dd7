"""Connections from URLs: the state store (Redis, or a Redis Cluster) and Dramatiq's broker.

The state always lives in Redis. The broker is the state's own Redis by
default; ``OUTREACH_BROKER_URL`` moves it to another Redis (``redis://``) or to
RabbitMQ (``amqp://``). On a Redis Cluster, Dramatiq's Redis broker keeps all
its keys under one hash tag, so it runs there too (on the node owning that
slot); RabbitMQ takes the queues off Redis altogether.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, cast
from urllib.parse import urlsplit

import dramatiq
import fakeredis
import redis
from dramatiq.brokers.redis import RedisBroker
from redis.cluster import RedisCluster

from ..errors import ConfigError
from ..settings import Settings
from .replies import text

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

#: URL schemes of a Redis server.
REDIS_SCHEMES = ("redis", "rediss", "unix")
#: URL schemes of an AMQP (RabbitMQ) server.
AMQP_SCHEMES = ("amqp", "amqps")


def connect(url: str | None) -> redis.Redis:
    """A client for a Redis URL (a cluster client when the server is a cluster node).

    Without a URL, an in-process fakeredis (with Lua).
    """
    if not url:
        return fakeredis.FakeRedis(server=fakeredis.FakeServer())
    if urlsplit(url).scheme not in REDIS_SCHEMES:
        raise ConfigError(f"OUTREACH_REDIS_URL={url!r}: not a redis:// URL")
    client = redis.Redis.from_url(url)
    try:
        cluster = bool(client.info("cluster").get("cluster_enabled"))
    except redis.ResponseError:
        cluster = False  # a server without the command: not a cluster
    if not cluster:
        return client
    client.close()
    # A cluster client answers the same commands, one hash slot per call (docs/SCALING.md).
    return cast(redis.Redis, RedisCluster.from_url(url))


def build_broker(url: str | None, state: redis.Redis, namespace: str) -> dramatiq.Broker:
    """Dramatiq's broker: on the state's Redis (no URL), on another Redis, or on RabbitMQ."""
    if not url:
        return RedisBroker(client=state, namespace=namespace)  # type: ignore[no-untyped-call]
    scheme = urlsplit(url).scheme
    if scheme in REDIS_SCHEMES:
        return RedisBroker(client=connect(url), namespace=namespace)  # type: ignore[no-untyped-call]
    if scheme in AMQP_SCHEMES:
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        # Confirmed publishes: a deliver message is on the broker before the pump moves on.
        return RabbitmqBroker(url=url, confirm_delivery=True)
    raise ConfigError(f"OUTREACH_BROKER_URL={url!r}: not a redis:// or amqp:// URL")


def queued(broker: dramatiq.Broker, queue: str) -> int:
    """Messages waiting on a queue (its delay queue included), on either kind of broker."""
    if isinstance(broker, RedisBroker):
        return int(broker.do_qsize(queue))
    ready, delayed, _dead = cast("RabbitmqBroker", broker).get_queue_message_counts(queue)
    return int(ready + delayed)


def waiting(broker: dramatiq.Broker, queue: str) -> int:
    """Messages on a queue that no worker has taken yet (prefetched and running ones excluded)."""
    if isinstance(broker, RedisBroker):
        return int(broker.client.llen(f"{broker.namespace}:{queue}"))
    ready, _delayed, _dead = cast("RabbitmqBroker", broker).get_queue_message_counts(queue)
    return int(ready)


def durability_problems(client: redis.Redis) -> list[str]:
    """Why this Redis could lose the schedule (eviction, no persistence); empty when it would not.

    Redis is the system of record (docs/RUNNING.md): it needs ``maxmemory-policy noeviction``
    and AOF (or at least RDB snapshots). A server that hides CONFIG (some managed services)
    cannot be checked: that is said too.
    """
    try:
        config: dict[str, str] = {}
        for name in ("maxmemory-policy", "appendonly", "save"):
            config.update({text(k): text(v) for k, v in client.config_get(name).items()})
    except redis.RedisError as exc:
        return [f"its configuration cannot be read ({exc}): check persistence and eviction yourself"]
    problems = []
    policy = config.get("maxmemory-policy", "noeviction")
    if policy != "noeviction":
        problems.append(f"maxmemory-policy is {policy}: Redis may evict planned sends (set noeviction)")
    if config.get("appendonly", "no") != "yes" and not config.get("save", "").strip():
        problems.append("neither AOF nor RDB snapshots are on: a restart loses the schedule (appendonly yes)")
    return problems


def check_durability(client: redis.Redis, settings: Settings) -> None:
    """Warn (refuse, in production) when the Redis given could lose the schedule."""
    problems = durability_problems(client)
    if not problems:
        return
    text = f"Redis at {settings.redis_url}: " + "; ".join(problems)
    if settings.production and not settings.allow_volatile_redis:
        raise ConfigError(f"{text} (or set OUTREACH_ALLOW_VOLATILE_REDIS=1)")
    logger.warning(text)
