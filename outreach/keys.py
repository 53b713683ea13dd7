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
        #: set of hashes of erased customer ids (the only trace they leave).
        self.erased = prefix + "erased"
        #: zset send id -> UTC ms of its final state (reports read periods from it).
        self.outcomes = prefix + "outcomes"
        #: hash of counters: sends by state and reason, latency buckets, pump figures.
        self.stats = prefix + "stats"
        #: zset send id -> UTC ms of the (latest) survey answer.
        self.answers_index = prefix + "answers"
        #: set of customer ids nobody may contact.
        self.do_not_contact = prefix + "dnc"

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

    def suppressed(self, channel: str) -> str:
        """set: addresses a channel must not use (hard bounces, provider rejections)."""
        return f"{self.prefix}suppressed:{channel}"

    def cap(self, customer_id: str, category: str, period: str) -> str:
        """counter: messages of a category (or 'all') in one local day or ISO week."""
        return f"{self.prefix}cap:{customer_id}:{category}:{period}"

    def cap_slot(self, send_id: str) -> str:
        """marker: this send already holds its cap slot (retries do not count twice)."""
        return f"{self.prefix}capslot:{send_id}"

    def fatigue(self, customer_id: str) -> str:
        """string: the survey send holding the customer's survey-fatigue period."""
        return f"{self.prefix}fatigue:{customer_id}"

    def consent_log(self, customer_id: str) -> str:
        """list of JSON: every consent change with its time and source."""
        return f"{self.prefix}customer:{customer_id}:consent"

    def customer_sends(self, customer_id: str) -> str:
        """set: every send id planned for a customer (export, erase)."""
        return f"{self.prefix}customer:{customer_id}:sends"

    def customer_keys(self, customer_id: str) -> str:
        """set: other keys that name the customer (removed on erase)."""
        return f"{self.prefix}customer:{customer_id}:keys"

    def answers(self, customer_id: str) -> str:
        """set: send ids of the customer's answered surveys."""
        return f"{self.prefix}customer:{customer_id}:answers"

    def answer(self, send_id: str) -> str:
        """hash: the answer to one survey send (score, comment, times)."""
        return f"{self.prefix}answer:{send_id}"

    def nonce(self, value: str) -> str:
        """string: a used one-time form token."""
        return f"{self.prefix}nonce:{value}"

    def deadletter(self, entry_id: str) -> str:
        return f"{self.prefix}deadletter:{entry_id}"
