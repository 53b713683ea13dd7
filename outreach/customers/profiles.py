"""Customer profiles in Redis, their consent history and the erasure tombstones."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import redis

from ..clock import to_ms
from ..errors import CustomerErased, InputError, UnknownCustomer
from ..registry import CHANNELS, consentable
from ..store.keys import Keys
from .profile import Customer


def erased_hash(customer_id: str, secret: str) -> str:
    """The only trace an erased customer leaves: a hash of the id keyed with the link secret, so
    no one without the secret can tell whether a given id was erased."""
    return hmac.new(secret.encode(), f"outreach-erased:{customer_id}".encode(), hashlib.sha256).hexdigest()


def erased_hashes(customer_id: str, secrets: Sequence[str]) -> list[str]:
    """Every form a tombstone of the id may have: keyed with each secret (the current one, those
    before a rotation) and the unkeyed hash tombstones had before they were keyed."""
    legacy = hashlib.sha256(f"outreach-erased:{customer_id}".encode()).hexdigest()
    return [*(erased_hash(customer_id, s) for s in secrets), legacy]


class Customers:
    def __init__(self, client: redis.Redis, keys: Keys, secrets: Sequence[str]) -> None:
        self.client = client
        self.keys = keys
        #: Key the erasure tombstones (``Settings.secrets``: the first writes, all are read).
        self.secrets = tuple(secrets)

    def upsert(
        self, data: Mapping[str, Any] | Customer, *, restore: bool = False, source: str = "profile", at=None,
        keep: Collection[str] = (),
    ) -> tuple[Customer, bool]:  # fmt: skip
        """Validate and store a profile; returns it and whether it is new.

        Consent that differs from the stored profile is logged with ``source``.
        An erased id is refused unless ``restore`` says a new profile is meant.
        ``keep`` names fields (``consent``, ``channel_consent``) taken from the
        stored profile instead, read and written under WATCH, so a consent change
        made meanwhile is never overwritten.
        """
        customer = data if isinstance(data, Customer) else Customer.from_mapping(data)
        if self.is_erased(customer.id):
            if not restore:
                raise CustomerErased(customer.id)
            self.client.srem(self.keys.erased(customer.id), *erased_hashes(customer.id, self.secrets))
        if keep:
            kept = frozenset(keep)

            def keeping(before: Customer | None) -> Customer:
                if before is None:
                    return customer
                return replace(customer, **{name: getattr(before, name) for name in kept})

            return self._rewrite(customer.id, keeping, source, at)
        before = self.get(customer.id)
        # Every key here is in the customer's shard: one transaction, also on a cluster.
        pipe = self.client.pipeline(transaction=True)
        self._write(pipe, customer, before, source, at)
        results = pipe.execute()
        return customer, bool(results[1])

    def _rewrite(
        self, customer_id: str, change: Callable[[Customer | None], Customer], source: str, at
    ) -> tuple[Customer, bool]:
        """Read the stored profile, ``change`` it and write it back under WATCH: a concurrent
        change of the profile is never overwritten with what was read before it (retried)."""
        key = self.keys.customer(customer_id)
        with self.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    before = Customer.from_json(raw) if raw is not None else None
                    customer = change(before)
                    pipe.multi()
                    self._write(pipe, customer, before, source, at)
                    results = pipe.execute()
                    return customer, bool(results[1])
                except redis.WatchError:
                    continue

    def _write(self, pipe, customer: Customer, before: Customer | None, source: str, at) -> None:
        """Queue a profile's write: the profile, the shard's index, each consent change logged."""
        pipe.set(self.keys.customer(customer.id), customer.to_json())
        pipe.sadd(self.keys.customers(self.keys.shard_of(customer.id)), customer.id)
        for scope, old, new in (
            ("category", before.consent if before else {}, customer.consent),
            ("channel", before.channel_consent if before else {}, customer.channel_consent),
        ):
            for key in sorted(set(new) | set(old)):
                if new.get(key) != old.get(key):
                    pipe.rpush(
                        self.keys.consent_log(customer.id), self._entry(scope, key, new.get(key), source, at)
                    )

    @staticmethod
    def _entry(scope: str, key: str, allowed: bool | None, source: str, at: datetime | None) -> str:
        return json.dumps(
            {
                "at_ms": to_ms(at) if at else None,
                "scope": scope,
                "key": key,
                "allowed": allowed,
                "source": source,
            }
        )

    def set_consent(
        self, customer_id: str, *, allowed: bool, source: str, at: datetime,
        category: str | None = None, channel: str | None = None,
    ) -> Customer:  # fmt: skip
        """Record one consent change (a category or a channel) with its time and source."""
        if (category is None) == (channel is None):
            raise InputError("consent", (category, channel), "name exactly one category or one channel")
        if category is not None and category not in consentable():
            known = ", ".join(consentable())
            raise InputError("category", category, f"must be a category customers can opt out of ({known})")
        if channel is not None and channel not in CHANNELS:
            raise InputError("channel", channel, f"must be one of {', '.join(CHANNELS)}")

        def changed(before: Customer | None) -> Customer:
            # Gone: require() raises (unknown or erased); created meanwhile, WATCH retries.
            base = before or self.require(customer_id)
            if category is not None:
                return replace(base, consent={**base.consent, category: allowed})
            assert channel is not None, "one of category and channel (checked above)"
            return replace(base, channel_consent={**base.channel_consent, channel: allowed})

        return self._rewrite(customer_id, changed, source, at)[0]

    def consent_history(self, customer_id: str) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.client.lrange(self.keys.consent_log(customer_id), 0, -1)]

    def get(self, customer_id: str) -> Customer | None:
        raw = self.client.get(self.keys.customer(customer_id))
        return Customer.from_json(raw) if raw else None

    def require(self, customer_id: str) -> Customer:
        customer = self.get(customer_id)
        if customer is None:
            if self.is_erased(customer_id):
                raise CustomerErased(customer_id)
            raise UnknownCustomer(customer_id)
        return customer

    def set_do_not_contact(self, customer_id: str, blocked: bool) -> None:
        """Put a customer on (or take them off) the global do-not-contact list."""
        self.require(customer_id)
        key = self.keys.do_not_contact(customer_id)
        if blocked:
            self.client.sadd(key, customer_id)
        else:
            self.client.srem(key, customer_id)

    def is_erased(self, customer_id: str) -> bool:
        hashes = erased_hashes(customer_id, self.secrets)
        return any(self.client.smismember(self.keys.erased(customer_id), hashes))

    def tombstone(self, customer_id: str) -> str:
        """The hash an erasure of this customer writes."""
        return erased_hash(customer_id, self.secrets[0])

    def get_many(self, customer_ids: list[str]) -> dict[str, Customer]:
        if not customer_ids:
            return {}
        unique = list(dict.fromkeys(customer_ids))
        # One GET each in a pipeline: profiles of several shards may live on several cluster nodes.
        pipe = self.client.pipeline(transaction=False)
        for customer_id in unique:
            pipe.get(self.keys.customer(customer_id))
        raws = pipe.execute()
        return {c: Customer.from_json(r) for c, r in zip(unique, raws, strict=True) if r}

    def existing(self, customer_ids: list[str]) -> set[str]:
        """Which of these customers have a profile (one round trip)."""
        unique = list(dict.fromkeys(customer_ids))
        pipe = self.client.pipeline(transaction=False)
        for customer_id in unique:
            pipe.exists(self.keys.customer(customer_id))
        return {c for c, found in zip(unique, pipe.execute(), strict=True) if found}

    def count(self) -> int:
        pipe = self.client.pipeline(transaction=False)
        for shard in range(self.keys.shards):
            pipe.scard(self.keys.customers(shard))
        return sum(pipe.execute())
