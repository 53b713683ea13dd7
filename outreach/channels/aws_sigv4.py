"""AWS Signature Version 4 for one HTTP request (the ``Authorization`` header AWS APIs such as SES
v2 require): the canonical request, the string to sign and the HMAC-SHA256 key chain, with the
standard library alone."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote

ALGORITHM = "AWS4-HMAC-SHA256"


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    #: The session token of temporary credentials (sent as X-Amz-Security-Token).
    session_token: str | None = field(default=None, repr=False)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    """The key of one day, region and service, derived from the secret access key."""
    key = _hmac(f"AWS4{secret}".encode(), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return key


def canonical_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    encoded = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def sign(
    credentials: Credentials,
    *,
    region: str,
    service: str,
    method: str,
    host: str,
    path: str,
    query: str = "",
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    now: datetime,
) -> dict[str, str]:
    """The headers that sign the request (X-Amz-Date, X-Amz-Security-Token, Authorization).

    ``host`` is the Host header as sent, ``path`` the request path as sent (percent-encoded),
    ``headers`` further headers to cover with the signature (Content-Type); Host and X-Amz-Date
    (and the session token) are always covered.
    """
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    added = {"X-Amz-Date": stamp}
    if credentials.session_token:
        added["X-Amz-Security-Token"] = credentials.session_token
    covered = {"host": host.strip()}
    for name, value in {**(headers or {}), **added}.items():
        covered[name.lower()] = " ".join(value.split())
    names = sorted(covered)
    canonical = "\n".join(
        [
            method.upper(),
            # Services other than S3 take the path encoded once more, each segment as sent.
            quote(path or "/", safe="/~"),
            canonical_query(query),
            "".join(f"{name}:{covered[name]}\n" for name in names),
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join([ALGORITHM, stamp, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()])
    key = signing_key(credentials.secret_access_key, day, region, service)
    signature = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    added["Authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return added
