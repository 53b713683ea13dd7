"""Clicks on tracked links and opens of emails, kept with their send wherever it is.

While a send is in Redis its clicks are fields of its hash (``clicked_ms``, the first one, and
``clicks``, how many; ``opened_ms`` and ``opens`` for opens) and entries of its history
(``clicked``, ``opened``: what ``outreach explain`` shows and what the mover turns into the
archive's ``clicks`` rows). Once the send is archived, a click goes to the archive with it.
``lua/click.lua`` keeps one atomically, so two clicks at once make one first click.

Each click also counts in the customer's engagement hours (send-time learning); an open does
not: mail clients and privacy proxies fetch images on their own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis

from ..archive import Records
from ..clock import Clock, from_ms, to_ms
from ..customers.engagement import Engagement
from ..errors import InputError
from ..links import target_problem
from ..schedule import log_entry
from ..store import scripts
from ..store.keys import Keys, split_send_id
from ..store.replies import text, texts

#: What can be recorded: a tracked link followed, an open image fetched.
KINDS = ("click", "open")
#: The history entry of each kind (``archive.rows.CLICK_ENTRIES`` reads them back).
ENTRIES = {"click": "clicked", "open": "opened"}
#: Clicks (and opens) a send keeps with their time and link; later ones are only counted.
MAX_KEPT = 20


@dataclass(frozen=True)
class Click:
    send_id: str
    customer_id: str
    #: 'click' or 'open'.
    kind: str
    at: datetime
    #: The link's target ('' for an open).
    url: str

    def to_mapping(self) -> dict[str, Any]:
        return {"send_id": self.send_id, "kind": self.kind, "at": self.at.isoformat(), "url": self.url}


class Clicks:
    """Clicks and opens of sends: in Redis with a live send, in the archive with an archived one."""

    def __init__(self, client: redis.Redis, keys: Keys, clock: Clock, records: Records) -> None:
        self.client = client
        self.keys = keys
        self.clock = clock
        self.records = records
        self.archive = records.archive
        self.engagement = Engagement(client, keys)
        self._click = scripts.load(client, __package__, "click")

    def record(self, send_id: str, customer_id: str, url: str, kind: str = "click", *,
               zone: str | None = None) -> bool:  # fmt: skip
        """Keep one click (or open) of a send; True when it is the send's first of its kind.

        ``zone``: the customer's zone now, for the engagement hour of a click (by default the
        zone the send was planned in). InputError naming the field for a bad kind or URL, and
        for a send that is not the customer's or no longer exists (erased: nothing is kept).
        """
        if kind not in KINDS:
            raise InputError("kind", kind, f"must be one of {', '.join(KINDS)}")
        problem = target_problem(url) if kind == "click" else None
        if problem is not None:
            raise InputError("url", url, problem)
        if split_send_id(send_id)[2] != customer_id:
            raise InputError("send_id", send_id, f"is not a send of customer {customer_id!r}")
        now = self.clock.now()
        at_ms = to_ms(now)
        target = url if kind == "click" else ""
        what = f"a link to {url}" if kind == "click" else "the email (its image was fetched)"
        entry = log_entry(now, ENTRIES[kind], what, **({"url": url} if target else {}))
        shard = self.keys.shard_of(customer_id)
        keys = [self.keys.send(send_id), self.keys.send_log(send_id), self.keys.shard_stats(shard)]
        verdict = text(self._click(keys=keys, args=[kind, at_ms, entry, MAX_KEPT]))
        if verdict == "gone":
            # Archived (the mover writes the archive before Redis lets a send go): it is kept there.
            kept = self.archive.save_click(send_id, customer_id, kind, at_ms, target, entry, MAX_KEPT)
            if kept is None:
                raise InputError("send_id", send_id, "no such send")
            pipe = self.client.pipeline(transaction=False)
            pipe.hincrby(self.keys.shard_stats(shard), f"clicks:{kind}", 1)
            if kept:
                pipe.hincrby(self.keys.shard_stats(shard), f"clicked:{kind}", 1)
            pipe.execute()
            first = kept
        else:
            first = verdict == "first"
        if kind == "click":
            self.engagement.record(customer_id, zone or self._zone_of(send_id), "click", now)
        return first

    def _zone_of(self, send_id: str) -> str:
        send = self.records.get(send_id)
        return send.zone if send is not None and send.zone else "UTC"

    def first_click(self, send_id: str) -> datetime | None:
        """When the send's first tracked link was followed; None when none was (yet)."""
        return self.clicked_many([send_id]).get(send_id)

    def clicked_many(self, send_ids: Sequence[str], kind: str = "click") -> dict[str, datetime]:
        """Send id -> its first click (or open), for those of ``send_ids`` that have one: read from
        Redis for the sends there, then from the archive for the others (Redis first: a send the
        mover archives in between is in the archive by the time it leaves Redis)."""
        field = "clicked_ms" if kind == "click" else "opened_ms"
        ids = list(dict.fromkeys(send_ids))
        pipe = self.client.pipeline(transaction=False)
        for send_id in ids:
            pipe.hmget(self.keys.send(send_id), field, "state")
        found: dict[str, datetime] = {}
        elsewhere = []
        for send_id, (first, state) in zip(ids, pipe.execute(), strict=True):
            if state is None:
                elsewhere.append(send_id)
            elif first is not None:
                found[send_id] = from_ms(int(first))
        for send_id, ms in self.archive.first_clicks(elsewhere, kind).items():
            found[send_id] = from_ms(ms)
        return found

    def of_customer(self, customer_id: str) -> list[Click]:
        """Every click and open of a customer's sends, live or archived, in time order (export)."""
        live = sorted(texts(self.client.smembers(self.keys.customer_sends(customer_id))))
        pipe = self.client.pipeline(transaction=False)
        for send_id in live:
            pipe.lrange(self.keys.send_log(send_id), 0, -1)
        seen: set[tuple[str, str, int, str]] = set()
        for send_id, log in zip(live, pipe.execute(), strict=True):
            for raw in texts(log):
                entry = json.loads(raw)
                kind = next((k for k, what in ENTRIES.items() if what == entry.get("what")), None)
                if kind is not None:
                    seen.add((send_id, kind, int(entry.get("at_ms") or 0), str(entry.get("url") or "")))
        # A send archived while its history was read is in the archive: the same click once.
        seen.update(self.archive.clicks_of(customer_id))
        found = [Click(s, customer_id, kind, from_ms(ms), url) for s, kind, ms, url in seen]
        return sorted(found, key=lambda c: (c.at, c.send_id, c.kind, c.url))
