"""Customer profiles in Redis."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis

from .errors import UnknownCustomer
from .keys import Keys
from .models import Customer


class Customers:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def upsert(self, data: Mapping[str, Any] | Customer) -> tuple[Customer, bool]:
        """Validate and store a profile; returns it and whether it is new."""
        customer = data if isinstance(data, Customer) else Customer.from_mapping(data)
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self.keys.customer(customer.id), customer.to_json())
        pipe.sadd(self.keys.customers, customer.id)
        _, added = pipe.execute()
        return customer, bool(added)

    def get(self, customer_id: str) -> Customer | None:
        raw = self.client.get(self.keys.customer(customer_id))
        return Customer.from_json(raw) if raw else None

    def require(self, customer_id: str) -> Customer:
        customer = self.get(customer_id)
        if customer is None:
            raise UnknownCustomer(customer_id)
        return customer

    def get_many(self, customer_ids: list[str]) -> dict[str, Customer]:
        if not customer_ids:
            return {}
        unique = list(dict.fromkeys(customer_ids))
        raws = self.client.mget([self.keys.customer(c) for c in unique])
        return {c: Customer.from_json(r) for c, r in zip(unique, raws, strict=True) if r}

    def count(self) -> int:
        return self.client.scard(self.keys.customers)
