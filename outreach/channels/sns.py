"""Messages Amazon SNS posts to an HTTPS subscription, checked the documented way: the RSA signature
(SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA) over the canonical string of the message's
fields, made with the certificate at ``SigningCertURL``; that certificate is fetched only from an
SNS host over HTTPS (or is the one certificate file configured) and kept once fetched.

A subscription is confirmed by fetching its ``SubscribeURL``, again only on an SNS host.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .webhooks import BadSignature, TryLater

#: An SNS endpoint's host: sns.<region>.amazonaws.com (and the China partition's .com.cn).
SNS_HOST = re.compile(r"^sns\.[a-z]{2}(-[a-z]+)+-\d+\.amazonaws\.com(\.cn)?$")
_CONFIRMATION = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
#: The fields signed, in byte order, per message type (a Notification's Subject only when present).
SIGNED = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": _CONFIRMATION,
    "UnsubscribeConfirmation": _CONFIRMATION,
}
HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
#: How long a fetch from SNS may take, and how much of an answer is read.
FETCH_TIMEOUT = 10.0
MAX_FETCH = 64 * 1024
#: Certificates kept (SNS signs with one per region at a time; they change rarely).
CACHE_SIZE = 32


#: The path of an SNS signing certificate (``/SimpleNotificationService-<hex>.pem``): nothing else
#: on an SNS host is fetched as one.
CERTIFICATE_PATH = re.compile(r"^/SimpleNotificationService-[0-9a-fA-F]+\.pem$")
#: How long a certificate URL whose fetch failed is not fetched again (SNS retries a 503 20 s later).
RETRY_FETCH_SECONDS = 10.0


def is_sns_url(url: str) -> bool:
    """Whether ``url`` is an https URL on an SNS host (default port, no credentials)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    host = parts.hostname or ""
    return (
        parts.scheme == "https"
        and port in (None, 443)
        and parts.username is None
        and bool(SNS_HOST.match(host))
        and parts.netloc.lower().split(":")[0] == host
    )


def https_get(url: str) -> bytes:
    """GET an SNS URL over verified TLS; OSError (or http.client's errors) when it fails."""
    if not is_sns_url(url):
        raise ValueError(f"not an SNS URL: {url!r}")
    parts = urlsplit(url)
    assert parts.hostname is not None
    conn = http.client.HTTPSConnection(parts.hostname, 443, timeout=FETCH_TIMEOUT,
                                       context=ssl.create_default_context())  # fmt: skip
    try:
        conn.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        response = conn.getresponse()
        body = response.read(MAX_FETCH + 1)
    finally:
        conn.close()
    if response.status != 200 or len(body) > MAX_FETCH:
        raise OSError(f"GET {parts.hostname}{parts.path}: HTTP {response.status}")
    return body


#: What fetches from SNS (tests replace it; the URL has passed ``is_sns_url`` first).
fetch = https_get


class _Certificates:
    """Signing keys by certificate URL, fetched once each."""

    def __init__(self) -> None:
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        #: Certificate URLs whose fetch failed, and when: not fetched again for a while.
        self._failed: dict[str, float] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()
            self._failed.clear()

    def key(self, url: str, pinned: str | None) -> rsa.RSAPublicKey:
        with self._lock:
            found = self._keys.get(url)
        if found is not None:
            return found
        if pinned is not None and url == pinned:
            pem = Path(pinned).read_bytes()
        elif is_sns_url(url) and CERTIFICATE_PATH.match(urlsplit(url).path):
            with self._lock:
                failed = self._failed.get(url)
            if failed is not None and time.monotonic() - failed < RETRY_FETCH_SECONDS:
                raise TryLater("SNS: the signing certificate could not be fetched (moments ago)")
            try:
                pem = fetch(url)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                with self._lock:
                    if len(self._failed) >= CACHE_SIZE:
                        self._failed.pop(next(iter(self._failed)))
                    self._failed[url] = time.monotonic()
                raise TryLater(f"SNS: the signing certificate could not be fetched: {exc}") from None
        else:
            raise BadSignature(f"SNS: SigningCertURL {url!r} is not an https URL on an SNS host")
        try:
            key = x509.load_pem_x509_certificate(pem).public_key()
        except ValueError:
            raise BadSignature(f"SNS: {url!r} is not a PEM certificate") from None
        if not isinstance(key, rsa.RSAPublicKey):
            raise BadSignature(f"SNS: the certificate at {url!r} has no RSA key")
        with self._lock:
            if len(self._keys) >= CACHE_SIZE:
                self._keys.pop(next(iter(self._keys)))
            self._keys[url] = key
        return key


CERTIFICATES = _Certificates()


@dataclass(frozen=True)
class SnsMessage:
    """A verified SNS message: its type, topic and the fields it carried."""

    type: str
    topic_arn: str
    fields: dict[str, Any]

    @property
    def message(self) -> str:
        return str(self.fields.get("Message", ""))


def string_to_sign(fields: dict[str, Any]) -> bytes:
    """The canonical string SNS signs: ``name\\nvalue\\n`` for each signed field present."""
    names = SIGNED.get(str(fields.get("Type")))
    if names is None:
        raise BadSignature(f"SNS: unknown message type {fields.get('Type')!r}")
    out = []
    for name in names:
        value = fields.get(name)
        if value is None:
            if name == "Subject":
                continue
            raise BadSignature(f"SNS: the message has no {name}")
        if not isinstance(value, str):
            raise BadSignature(f"SNS: {name} is not a string")
        out.append(f"{name}\n{value}\n")
    return "".join(out).encode("utf-8")


def verify(body: bytes, *, certificate: str | None = None, topic_arn: str | None = None) -> SnsMessage:
    """The SNS message in ``body`` once its signature (and topic, when one is configured) checks out;
    BadSignature otherwise. ``certificate``: a PEM file accepted as the SigningCertURL it names."""
    try:
        fields = json.loads(body)
    except ValueError:
        raise BadSignature("SNS: the body is not JSON") from None
    if not isinstance(fields, dict):
        raise BadSignature("SNS: the body is not a JSON object")
    algorithm = HASHES.get(str(fields.get("SignatureVersion")))
    if algorithm is None:
        raise BadSignature(f"SNS: unknown SignatureVersion {fields.get('SignatureVersion')!r}")
    url, signature = fields.get("SigningCertURL"), fields.get("Signature")
    if not isinstance(url, str) or not isinstance(signature, str):
        raise BadSignature("SNS: the message is not signed")
    try:
        raw = base64.b64decode(signature, validate=True)
    except ValueError:
        raise BadSignature("SNS: Signature is not base64") from None
    # The topic first: a message from any other topic (any AWS account's) costs no fetch at all.
    topic = str(fields.get("TopicArn", ""))
    if topic_arn is None:
        raise BadSignature("SNS: topic_arn is not configured: no topic's messages are trusted")
    if topic != topic_arn:
        raise BadSignature(f"SNS: topic {topic!r} is not the configured {topic_arn!r}")
    signed = string_to_sign(fields)
    key = CERTIFICATES.key(url, certificate)
    try:
        key.verify(raw, signed, padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        raise BadSignature("SNS: the signature does not verify") from None
    return SnsMessage(str(fields["Type"]), topic, fields)


def confirm(message: SnsMessage) -> str | None:
    """Confirm a subscription by fetching its SubscribeURL; the problem, or None when confirmed."""
    url = str(message.fields.get("SubscribeURL", ""))
    if not is_sns_url(url):
        return f"SubscribeURL {url!r} is not an https URL on an SNS host"
    try:
        fetch(url)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return f"confirming the subscription failed: {exc}"
    return None
