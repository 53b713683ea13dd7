"""Data rights: export everything held about a customer, or erase it and keep only a hashed tombstone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

import redis

from .archive import Records
from .broadcasts.broadcasts import customer_sends
from .clicks import Clicks
from .clock import Clock, from_ms
from .customers.addresses import address_hash
from .customers.profiles import Customers
from .errors import UnknownCustomer
from .journeys.config import Journeys
from .policy.decide import Policy
from .registry import CHANNELS, consentable
from .store.deadletters import DeadLetter, DeadLetters
from .store.keys import Keys, done_field, is_send_id, split_send_id
from .store.replies import text, texts
from .surveys.answers import Surveys


def _glob(text: str) -> str:
    """Escape glob characters so a customer id matches only itself in SCAN."""
    return "".join(f"\\{ch}" if ch in "*?[]\\" else ch for ch in text)


class DataRights:
    """A customer's rights over their data: a copy of everything held (export) and erasure."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        clock: Clock,
        customers: Customers,
        sends: Records,
        surveys: Surveys,
        policy: Policy,
        deadletters: DeadLetters,
        journeys: Journeys,
    ) -> None:
        self.client = client
        self.keys = keys
        self.clock = clock
        self.customers = customers
        self.sends = sends
        self.schedule = sends.schedule
        self.archive = sends.archive
        self.surveys = surveys
        self.clicks = Clicks(client, keys, clock, sends)
        self.policy = policy
        self.deadletters = deadletters
        self.journeys = journeys

    def _letters_about(self, customer_id: str) -> Iterator[DeadLetter]:
        for letter in self.deadletters.list(limit=100_000):
            payload = letter.payload
            if not isinstance(payload, dict):
                continue
            send_id = str(payload.get("send_id", ""))
            if customer_id in (payload.get("customer_id"), payload.get("id")) or (
                is_send_id(send_id) and split_send_id(send_id)[2] == customer_id
            ):
                yield letter

    def export(self, customer_id: str) -> dict[str, Any]:
        """Everything held about a customer: profile, consent and its history, sends, answers, clicks."""
        customer = self.customers.require(customer_id)
        send_ids = self.sends.send_ids_of(customer_id)
        send_ids += [send_id for send_id, _ in customer_sends(self.client, self.keys, customer_id)]
        sends = []
        for send_id, send in zip(send_ids, self.sends.get_many(send_ids), strict=True):
            if send is None:
                continue
            record: dict[str, Any] = send.as_stored()
            for field in ("channels", "rule", "data"):
                if field in record:
                    record[field] = json.loads(record[field])
            sends.append({"send": record, "history": self.sends.history(send_id)})
        answers = [a.to_mapping() for a in self.surveys.of_customer(customer_id)]
        return {
            "exported_at": self.clock.now().isoformat(),
            "profile": json.loads(customer.to_json()),
            "consent": {
                "categories": {c: self.policy.allows(customer, c) for c in consentable()},
                "channels": customer.channel_consent,
                "history": self.customers.consent_history(customer_id),
            },
            "do_not_contact": bool(self.client.sismember(self.keys.do_not_contact(customer_id), customer_id)),
            "sends": sends,
            "survey_answers": answers,
            "experiment_goals": self._goals(customer_id),
            "clicks": [c.to_mapping() for c in self.clicks.of_customer(customer_id)],
            "dead_letters": [d.to_mapping() for d in self._letters_about(customer_id)],
        }

    def _goals(self, customer_id: str) -> list[dict[str, str]]:
        """The customer's events kept as an experiment's goal (``customer:<id>:goals``)."""
        out = []
        rows = cast(
            list[tuple[bytes, float]],
            self.client.zrange(self.keys.goals(customer_id), 0, -1, withscores=True),
        )
        for member, ms in rows:
            event_type, _, event_id = text(member).partition("|")
            out.append({"type": event_type, "event_id": event_id, "at": from_ms(int(ms)).isoformat()})
        return out

    def _keys_elsewhere(self, customer_id: str, send_ids: list[str]) -> list[str]:
        """Keys about the customer not named after them: each provider message id that points to one
        of their sends, and the service windows their addresses opened."""
        found = []
        for send_id in send_ids:
            for entry in self.schedule.history(send_id):
                if entry.get("what") == "delivered" and entry.get("provider") and entry.get("reference"):
                    found.append(self.keys.reference(entry["channel"], entry["provider"], entry["reference"]))
        # An archived send's references left Redis when it was archived; a send being archived
        # right now may still have them there.
        for channel, provider, reference in self.archive.references_of(send_ids):
            found.append(self.keys.reference(channel, provider, reference))
        customer = self.customers.get(customer_id)
        if customer is not None:
            for channel in CHANNELS:
                address = customer.address(channel)
                if address:
                    found += [
                        self.keys.window(channel, address_hash(address, s)) for s in self.policy.secrets
                    ]
        return found

    def erase(self, customer_id: str) -> dict[str, int]:
        """Remove everything about a customer, cancel what is pending, keep only a hashed tombstone.

        A send being handed over at this moment cannot be recalled; every other
        pending or claimed send is stopped (its record is gone, so no worker can
        attempt it), and later events for the id are refused, not silently turned
        into a new profile.
        """
        keys = self.keys
        archived = self.archive.sends_of(customer_id)
        broadcasts = customer_sends(self.client, keys, customer_id)
        send_ids = sorted(set(self.schedule.send_ids_of(customer_id)) | {i for i, _ in archived})
        send_ids = sorted({*send_ids, *(send_id for send_id, _ in broadcasts)})
        if self.customers.get(customer_id) is None and not send_ids:
            raise UnknownCustomer(customer_id)
        letters = list(self._letters_about(customer_id))
        elsewhere = self._keys_elsewhere(customer_id, send_ids)
        answered = texts(self.client.smembers(keys.answers(customer_id)))
        # Keys that name the customer only through this set (digest collections: no id in their name).
        owned = texts(self.client.smembers(keys.customer_keys(customer_id)))
        shard = keys.shard_of(customer_id)
        # Every key below is in the customer's shard: one transaction, also on a cluster.
        pipe = self.client.pipeline(transaction=True)
        for send_id in answered:
            pipe.delete(keys.answer(send_id))
            pipe.zrem(keys.answers_index(shard), send_id)
        pipe.sadd(keys.erased(customer_id), self.customers.tombstone(customer_id))
        for send_id in send_ids:
            pipe.delete(
                keys.send(send_id),
                keys.send_log(send_id),
                keys.cap_slot(send_id),
                keys.trace(send_id),
                keys.receipts(send_id),
                keys.digest_items(send_id),
            )
        if owned:
            pipe.delete(*owned)
        if send_ids:
            # Send ids name the customer: none may stay behind, not even as a reported outcome.
            for index in (keys.due(shard), keys.inflight(shard), keys.outcomes(shard)):
                pipe.zrem(index, *send_ids)
        pipe.delete(keys.planned(customer_id), keys.open_sends(customer_id), keys.customer_sends(customer_id))
        for _, held in broadcasts:  # a send planned in a broadcast's compact form
            pipe.hdel(held, ">" + customer_id)
        for send_id in send_ids:  # the archived sends' marks (a hash of the send id)
            for done in self.schedule.done_keys(send_id):
                pipe.hdel(done, done_field(send_id))
        for journey in self.journeys:
            pipe.zrem(keys.recurring(shard, journey.name), customer_id)
        pipe.srem(keys.customers(shard), customer_id)
        pipe.srem(keys.do_not_contact(customer_id), customer_id)
        pipe.execute()
        for key in elsewhere:  # in other slots than the customer's: one by one
            self.client.delete(key)
        for letter in letters:
            self.deadletters.remove(letter.id)
        # The archive last: the tombstone above already makes the mover drop what it writes now.
        self.archive.erase(customer_id)
        # Whatever else is named after the customer: profile, consent log, answers, caps, supersedes.
        removed = 0
        pattern = _glob(customer_id)
        for match in (f"{_glob(keys.tag(shard))}*:{pattern}", f"{_glob(keys.tag(shard))}*:{pattern}:*"):
            for key in list(self.client.scan_iter(match=match, count=1000)):
                removed += self.client.delete(key)
        return {"sends": len(send_ids), "dead_letters": len(letters), "keys": removed}
