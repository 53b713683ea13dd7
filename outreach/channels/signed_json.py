"""Outreach's own wire format: a delivery as compact JSON, signed with HMAC-SHA256 over the exact
body bytes (``X-Outreach-Signature: sha256=<hex>``). The ``http`` provider kind posts it; a
receiver (and Outreach's own receipt endpoint) checks it with ``verify_signature``."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence

from .base import Delivery

SIGNATURE_HEADER = "X-Outreach-Signature"
TIMESTAMP_HEADER = "X-Outreach-Timestamp"


def sign(secret: str, body: bytes) -> str:
    """The signature header value for a body: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """For receivers: True when ``header`` is the signature of ``body`` (constant-time)."""
    if not header or not secret:
        return False
    return hmac.compare_digest(sign(secret, body).encode("ascii"), header.strip().encode("utf-8", "replace"))


def payload(delivery: Delivery) -> bytes:
    """The JSON body sent for a delivery (UTF-8, compact, keys in a fixed order)."""
    return json.dumps(_record(delivery), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def batch_payload(deliveries: Sequence[Delivery]) -> bytes:
    """The JSON body of a batch request: ``{"messages": [<payload of each delivery>, ...]}``."""
    body = {"messages": [_record(d) for d in deliveries]}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def batch_key(deliveries: Sequence[Delivery]) -> str:
    """A batch's Idempotency-Key: the same deliveries (send ids and attempts) give the same key."""
    ids = "\n".join(f"{d.send_id}#{d.attempt}" for d in deliveries)
    return "batch-" + hashlib.sha256(ids.encode("utf-8")).hexdigest()[:32]


def _record(delivery: Delivery) -> dict[str, object]:
    return {
        "send_id": delivery.send_id,
        "attempt": delivery.attempt,
        "channel": delivery.channel,
        "to": delivery.address,
        "locale": delivery.locale,
        "subject": delivery.subject,
        "text": delivery.text,
        "html": delivery.html,
        "customer_id": delivery.customer_id,
        "journey": delivery.journey,
        "step": delivery.step,
        "category": delivery.category,
    }
