"""The links in messages and on customer pages: their paths, and the signed, expiring tokens in them.

A token is ``base64url(json payload) "." base64url(HMAC-SHA256)``. The payload
names its purpose, so a token made for one link never works for another. Each
kind of link is made here and nowhere else; ``outreach.web`` serves the pages
they open and reads the tokens back with ``read_token``.

A tracked link (``/c/``) signs the send, the customer and the target URL: the web process
redirects only to a URL a token signed, so it is no open redirect. An open pixel (``/o/``)
signs the send and the customer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypeGuard
from urllib.parse import urlsplit

from .errors import InputError

#: The latest expiry a token may carry (9999-12-31, the last instant ``datetime`` holds).
MAX_EXPIRY = 253_402_300_799


class InvalidToken(InputError):
    """A forged, altered, expired or misdirected token."""

    def __init__(self, problem: str) -> None:
        super().__init__("token", "…", problem)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@lru_cache(maxsize=16)
def _keyed(secret: str) -> Any:
    """An HMAC-SHA256 with the key set up once (a message signs two or three tokens)."""
    return hmac.new(secret.encode(), digestmod=hashlib.sha256)


def _mac(secret: str, purpose: str, body: str) -> bytes:
    mac = _keyed(secret).copy()
    mac.update(f"{purpose}.{body}".encode())
    return mac.digest()


def make_token(secret: str, purpose: str, fields: dict[str, Any], expires: datetime | None = None) -> str:
    payload = {"p": purpose, **fields}
    if expires is not None:
        payload["exp"] = int(expires.timestamp())
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_b64(_mac(secret, purpose, body))}"


def read_token(secret: str | Sequence[str], purpose: str, token: str, now: datetime) -> dict[str, Any]:
    """The token's fields; raises InvalidToken when it is forged, for another purpose or expired.

    ``secret`` may be several (``Settings.secrets``: the one that signs now, then the ones that
    signed before a rotation): a token signed by any of them is genuine.
    """
    keys = [secret] if isinstance(secret, str) else list(secret)
    try:
        body, mac = token.split(".", 1)
        given = _unb64(mac)
        signed = any(hmac.compare_digest(_mac(key, purpose, body), given) for key in keys)
        payload = json.loads(_unb64(body)) if signed else None
    except (ValueError, TypeError, RecursionError):
        raise InvalidToken("not a token") from None
    if not signed:
        raise InvalidToken("the signature does not match")
    # Signed, but not made by make_token (a leaked secret, another tool): refused, never trusted.
    if not isinstance(payload, dict):
        raise InvalidToken("not a token")
    if payload.pop("p", None) != purpose:
        raise InvalidToken("made for another purpose")
    expires = payload.pop("exp", None)
    if expires is not None and not _is_expiry(expires):
        raise InvalidToken("not a token")
    if expires is not None and now.timestamp() > expires:
        raise InvalidToken("expired")
    return payload


def expiry_of(token: str) -> datetime | None:
    """The expiry inside a token that ``read_token`` accepted (None when it has none)."""
    body = token.split(".", 1)[0]
    payload = json.loads(_unb64(body))
    expires = payload.get("exp") if isinstance(payload, dict) else None
    return datetime.fromtimestamp(expires, tz=UTC) if _is_expiry(expires) else None


def _is_expiry(value: object) -> TypeGuard[int]:
    """A Unix time in seconds that ``datetime`` can hold."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_EXPIRY


#: The customer page each kind of link opens, by the purpose of its token.
PATHS = {"unsubscribe": "/u/", "answer": "/s/", "preferences": "/p/", "click": "/c/", "open": "/o/"}
#: The longest target URL a tracked link may carry (a token carries it whole).
MAX_URL = 2000


def link(public_url: str, purpose: str, token: str) -> str:
    """The full URL of a customer page for a token made for ``purpose``."""
    return f"{public_url.rstrip('/')}{PATHS[purpose]}{token}"


def unsubscribe_token(secret: str, customer_id: str, send_id: str, category: str, expires: datetime) -> str:
    """Withdraws consent to ``category`` (what a message's unsubscribe link and header carry)."""
    return make_token(secret, "unsubscribe", {"c": customer_id, "s": send_id, "k": category}, expires)


def answer_token(
    secret: str, send_id: str, customer_id: str, kind: str, score: int, expires: datetime
) -> str:
    """Records one score of one survey send (each score in a survey message is its own link)."""
    return make_token(secret, "answer", {"s": send_id, "c": customer_id, "k": kind, "v": score}, expires)


def preferences_token(secret: str, customer_id: str, expires: datetime) -> str:
    """Opens a customer's preference page."""
    return make_token(secret, "preferences", {"c": customer_id}, expires)


def target_problem(url: object) -> str | None:
    """Why ``url`` cannot be the target of a tracked link, or None when it can: an absolute
    http(s) address with a host, no user name, no spaces or control characters."""
    if not isinstance(url, str):
        return "must be a text"
    if len(url) > MAX_URL:
        return f"is longer than {MAX_URL} characters"
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return "must not hold spaces or control characters"
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "is not a URL"
    if parts.scheme.lower() not in ("http", "https"):
        return "must be an http or https address (no javascript:, data: or relative links)"
    if not host:
        return "has no host"
    if "@" in parts.netloc:
        return "must not carry a user name"
    return None


def click_token(secret: str, send_id: str, customer_id: str, url: str, expires: datetime) -> str:
    """Records a click on one link of one send, then redirects to ``url`` (http or https only);
    InputError naming ``url`` for any other target."""
    problem = target_problem(url)
    if problem is not None:
        raise InputError("url", url, problem)
    return make_token(secret, "click", {"s": send_id, "c": customer_id, "u": url}, expires)


def open_token(secret: str, send_id: str, customer_id: str, expires: datetime) -> str:
    """Records that one send was opened (the 1x1 image of a category with ``open_pixel``)."""
    return make_token(secret, "open", {"s": send_id, "c": customer_id}, expires)


def untracked(url: str) -> str:
    """``track`` where no send is being rendered (previews, checks) or its category tracks no
    clicks: the URL as it is."""
    return url


def tracker(secret: str, public_url: str, send_id: str, customer_id: str, expires: datetime,
            enabled: bool = True) -> Callable[[str], str]:  # fmt: skip
    """The ``track(url)`` of one message: its signed ``/c/`` link, or the URL unchanged when
    its category tracks no clicks."""
    if not enabled:
        return untracked

    def track(url: str) -> str:
        return link(public_url, "click", click_token(secret, send_id, customer_id, url, expires))

    return track


def with_open_pixel(html: str, url: str) -> str:
    """An HTML body with the 1x1 open image at its end (before ``</body>`` when it has one)."""
    image = f'<img src="{url}" width="1" height="1" alt="" style="display:block;border:0;">'
    end = html.lower().rfind("</body>")
    return f"{html}\n{image}" if end < 0 else f"{html[:end]}{image}\n{html[end:]}"


@dataclass(frozen=True)
class MessageLinks:
    """The links a message carries: in its body (``unsubscribe_url``, ``preferences_url`` in every
    template's context) and, for unsubscribing, in its List-Unsubscribe header."""

    #: None when the send's category needs no consent: nothing to unsubscribe from.
    unsubscribe_url: str | None
    preferences_url: str
    #: ``mailto:`` form of the unsubscribe link (with ``OUTREACH_UNSUBSCRIBE_MAILTO``).
    unsubscribe_mailto: str | None = None

    def context(self) -> dict[str, str | None]:
        return {"unsubscribe_url": self.unsubscribe_url, "preferences_url": self.preferences_url}


def message_links(
    secret: str, public_url: str, customer_id: str, send_id: str, category: str | None, expires: datetime,
    mailto: str = "",
) -> MessageLinks:  # fmt: skip
    """The links of one message; ``category`` None when it needs no consent."""
    preferences = link(public_url, "preferences", preferences_token(secret, customer_id, expires))
    if category is None:
        return MessageLinks(None, preferences)
    token = unsubscribe_token(secret, customer_id, send_id, category, expires)
    by_mail = f"{mailto}?subject=unsubscribe%20{token}" if mailto else None
    return MessageLinks(link(public_url, "unsubscribe", token), preferences, by_mail)
