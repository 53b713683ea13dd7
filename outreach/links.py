"""Signed, expiring tokens for links in messages (unsubscribe, survey answers).

A token is ``base64url(json payload) "." base64url(HMAC-SHA256)``. The payload
names its purpose, so a token made for one link never works for another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

from .errors import InputError


class InvalidToken(InputError):
    """A forged, altered, expired or misdirected token."""

    def __init__(self, problem: str) -> None:
        super().__init__("token", "…", problem)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(secret: str, purpose: str, fields: dict[str, Any], expires: datetime | None = None) -> str:
    payload = {"p": purpose, **fields}
    if expires is not None:
        payload["exp"] = int(expires.timestamp())
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(secret.encode(), f"{purpose}.{body}".encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def read_token(secret: str, purpose: str, token: str, now: datetime) -> dict[str, Any]:
    """The token's fields; raises InvalidToken when it is forged, for another purpose or expired."""
    try:
        body, mac = token.split(".", 1)
        expected = hmac.new(secret.encode(), f"{purpose}.{body}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(mac)):
            raise InvalidToken("the signature does not match")
        payload = json.loads(_unb64(body))
    except (ValueError, TypeError):
        raise InvalidToken("not a token") from None
    if payload.pop("p", None) != purpose:
        raise InvalidToken("made for another purpose")
    expires = payload.pop("exp", None)
    if expires is not None and now.timestamp() > expires:
        raise InvalidToken("expired")
    return payload
