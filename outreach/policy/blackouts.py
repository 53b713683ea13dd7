"""Company blackouts: spans of time in which matching sends wait (an incident freeze, a day of mourning).

A blackout names when it starts and ends, why, and optionally which categories and countries it
holds. Without categories it holds every category but the transactional ones (those that need no
consent: a delay notice still goes out); a transactional category is held only when named. The
policy reads the blackouts once per batch (``Policy.lookups``) and defers a matching send past the
end to the customer's next allowed hour, in the order the sends were due: plus one millisecond for
every second it was due after the start (``Policy.decide``).
docs/TIMING.md and docs/POLICY.md state the rules.
"""

from __future__ import annotations

import functools
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis

from ..clock import Clock, from_ms, to_ms
from ..customers.addresses import COUNTRY_CODES
from ..errors import InputError
from ..registry import CATEGORIES, needs_consent
from ..store.keys import Keys
from ..store.replies import texts


@dataclass(frozen=True)
class Blackout:
    id: str
    start: datetime
    until: datetime
    reason: str
    #: Categories it holds; empty: every category that needs consent (not the transactional ones).
    categories: tuple[str, ...] = ()
    #: Countries (ISO 3166 alpha-2) whose customers it holds; empty: every customer.
    countries: tuple[str, ...] = ()

    def holds(self, category: str, country: str | None, now: datetime) -> bool:
        """Whether a send of ``category`` to a customer in ``country`` waits at ``now``."""
        if not self.start <= now < self.until:
            return False
        if self.countries and (country or "") not in self.countries:
            return False
        return category in self.categories if self.categories else needs_consent(category)

    def order(self, due: datetime) -> timedelta:
        """What keeps held sends in the order they were due when they resume: one millisecond for
        every second a send was due after the start (a day's blackout resumes over 86 s)."""
        waited = max(due, self.start) - self.start
        return timedelta(milliseconds=int(waited.total_seconds()))

    def describe(self) -> str:
        which = ", ".join(self.categories) or "all but transactional categories"
        where = f" in {', '.join(self.countries)}" if self.countries else ""
        span = f"{self.start.isoformat()} to {self.until.isoformat()}"
        return f"blackout {self.id} ({self.reason}): {which}{where}, {span}"

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": self.id, "start_ms": to_ms(self.start), "until_ms": to_ms(self.until),
                "reason": self.reason, "categories": list(self.categories), "countries": list(self.countries),
            },
            sort_keys=True, ensure_ascii=False,
        )  # fmt: skip

    def to_mapping(self) -> dict[str, object]:
        return {
            "id": self.id, "from": self.start.isoformat(), "until": self.until.isoformat(),
            "reason": self.reason, "categories": list(self.categories), "countries": list(self.countries),
        }  # fmt: skip

    @classmethod
    def from_json(cls, raw: str) -> Blackout:
        data = json.loads(raw)
        return cls(
            data["id"], from_ms(data["start_ms"]), from_ms(data["until_ms"]), data["reason"],
            tuple(data.get("categories", ())), tuple(data.get("countries", ())),
        )  # fmt: skip


@functools.lru_cache(maxsize=64)
def _parsed(raws: frozenset[str]) -> tuple[Blackout, ...]:
    # The same few blackouts are read for every batch: decode each set of them once.
    return tuple(sorted((Blackout.from_json(r) for r in raws), key=lambda b: (b.start, b.id)))


def read_blackouts(values: Iterable[bytes | str]) -> tuple[Blackout, ...]:
    """The blackouts of a ``HGETALL``/``HVALS`` reply."""
    return _parsed(frozenset(texts(list(values))))


def holding(
    blackouts: Iterable[Blackout], category: str, country: str | None, now: datetime
) -> Blackout | None:
    """The blackout that holds a send now, the one that ends last where several do."""
    found = [b for b in blackouts if b.holds(category, country, now)]
    return max(found, key=lambda b: b.until) if found else None


class Blackouts:
    """The company's blackouts in Redis: add, list, remove."""

    def __init__(self, client: redis.Redis, keys: Keys, clock: Clock) -> None:
        self.client = client
        self.keys = keys
        self.clock = clock

    def add(
        self, start: datetime, until: datetime, reason: str, categories: Iterable[str] = (),
        countries: Iterable[str] = (),
    ) -> Blackout:  # fmt: skip
        """Record a blackout; InputError names the field when one is wrong."""
        for name, value in (("from", start), ("until", until)):
            if not isinstance(value, datetime) or value.utcoffset() is None:
                raise InputError(name, value, "needs an instant with a UTC offset")
        if until <= start:
            raise InputError("until", until.isoformat(), f"must be after the start {start.isoformat()}")
        if not isinstance(reason, str) or not reason.strip():
            raise InputError("reason", reason, "is required (it is shown on every send the blackout holds)")
        chosen = tuple(dict.fromkeys(categories))
        for category in chosen:
            if category not in CATEGORIES:
                raise InputError("category", category, f"must be one of {', '.join(CATEGORIES)}")
        places = tuple(dict.fromkeys(c.upper() for c in countries))
        for country in places:
            if country not in COUNTRY_CODES:
                raise InputError("country", country, "must be an ISO 3166 alpha-2 code (GB, not UK)")
        blackout = Blackout(
            f"bo-{secrets.token_hex(4)}", start.astimezone(UTC), until.astimezone(UTC), reason.strip(),
            chosen, places,
        )  # fmt: skip
        self.client.hset(self.keys.blackouts, blackout.id, blackout.to_json())
        return blackout

    def all(self) -> tuple[Blackout, ...]:
        """Every blackout, ended or not, by start."""
        return read_blackouts(self.client.hvals(self.keys.blackouts))

    def remove(self, blackout_id: str) -> bool:
        """Remove a blackout: it holds no send from now on (sends it has already deferred keep the
        time it gave them). False if there is no such blackout."""
        return bool(self.client.hdel(self.keys.blackouts, blackout_id))
