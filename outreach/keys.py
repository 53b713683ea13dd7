"""Every Redis key Outreach uses, named in one place."""

from __future__ import annotations


class Keys:
    """Key names under one prefix (tests give each run its own prefix)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        #: zset send id -> due UTC ms: sends waiting for their moment.
        self.due = prefix + "schedule:due"
        #: zset send id -> lease deadline UTC ms: sends claimed by a worker.
        self.inflight = prefix + "schedule:inflight"
        #: counter feeding claim tokens.
        self.claim_seq = prefix + "schedule:seq"
        #: set of all customer ids.
        self.customers = prefix + "customers"
        #: zset dead-letter id -> UTC ms.
        self.deadletters = prefix + "deadletters"

    def send(self, send_id: str) -> str:
        """hash: the send's intent and state."""
        return f"{self.prefix}send:{send_id}"

    def send_log(self, send_id: str) -> str:
        """list of JSON entries: what happened to the send and why."""
        return f"{self.prefix}send:{send_id}:log"

    def customer(self, customer_id: str) -> str:
        """string: the customer profile as JSON."""
        return f"{self.prefix}customer:{customer_id}"

    def pending(self, customer_id: str, journey: str) -> str:
        """set: send ids of a journey still pending for a customer (for exits)."""
        return f"{self.prefix}pending:{customer_id}:{journey}"

    def supersede(self, journey: str, customer_id: str, key: str) -> str:
        """string: the latest event for one customer's supersede key (e.g. one order)."""
        return f"{self.prefix}supersede:{journey}:{customer_id}:{key}"

    def event(self, event_id: str) -> str:
        """string: 'pending' or 'done' for an ingested event id."""
        return f"{self.prefix}event:{event_id}"

    def recurring(self, journey: str) -> str:
        """zset customer id -> UTC ms when a recurring journey is next due."""
        return f"{self.prefix}recurring:{journey}"

    def deadletter(self, entry_id: str) -> str:
        return f"{self.prefix}deadletter:{entry_id}"
