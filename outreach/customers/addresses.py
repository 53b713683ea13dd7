"""Addresses a provider can use: an email address by its syntax (RFC 5321/5322 as email-validator
reads it; no DNS lookup) and a phone number in E.164, read with the customer's country as the
region a national number belongs to (phonenumbers, Google's libphonenumber). And how an address
is kept on a suppression list: as a hash keyed with the link secret, never in plain text."""

from __future__ import annotations

import hashlib
import hmac
import re
from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from ..errors import InputError

#: ISO 3166 alpha-2 country codes: those phone numbers know, and the uninhabited ones they do not
#: (``UK`` is not one: Great Britain is ``GB``).
COUNTRY_CODES = frozenset(phonenumbers.SUPPORTED_REGIONS) | {"AQ", "BV", "GS", "HM", "PN", "TF", "UM"}


def email_address(text: str) -> str:
    """The address, normalized (the domain in lower case); InputError when no provider could use it."""
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InputError("email", text, f"not an email address ({exc})") from None


def phone_number(text: str, country: str | None) -> str:
    """The number in E.164 (``+4915205550102``); a national number needs the customer's country."""
    try:
        number = phonenumbers.parse(text, country)
    except phonenumbers.NumberParseException as exc:
        raise InputError("phone", text, f"not a phone number ({exc})") from None
    # Only a whole number: one that needs a local area code first reaches no one through a provider.
    if phonenumbers.is_possible_number_with_reason(number) != phonenumbers.ValidationResult.IS_POSSIBLE:
        raise InputError("phone", text, "not a whole phone number (wrong length for its country)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


#: How the addresses a profile keeps under ``addresses`` (``registry.APP_ADDRESSES``) are checked.
_APP_FORMS = {
    # A LINE user id as the Messaging API gives it: U and 32 hex digits.
    "line": (re.compile(r"^U[0-9a-f]{32}$"), "a LINE user id (U and 32 hex digits)"),
    # A Telegram chat id (negative for groups) or a public @channelusername.
    "telegram": (re.compile(r"^(-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$"), "a Telegram chat id or @name"),
    # A WeChat OpenID of the official account.
    "wechat": (re.compile(r"^[A-Za-z0-9_-]{6,64}$"), "a WeChat OpenID"),
}


def app_address(kind: str, text: str, country: str | None) -> str:
    """A messaging app's address, checked (a WhatsApp number in E.164, like a phone)."""
    if kind == "whatsapp":
        try:
            return phone_number(text, country)
        except InputError as exc:
            raise InputError("addresses.whatsapp", text, exc.problem) from None
    pattern, what = _APP_FORMS[kind]
    if not pattern.match(text):
        raise InputError(f"addresses.{kind}", text, f"must be {what}")
    return text


def address_hash(address: str, secret: str) -> str:
    """How a suppression list keeps an address: no one without the secret can read or test it."""
    return hmac.new(
        secret.encode(), f"outreach-address:{address.lower()}".encode(), hashlib.sha256
    ).hexdigest()


@lru_cache(maxsize=4096)
def suppression_forms(address: str, secrets: tuple[str, ...]) -> tuple[str, ...]:
    """Every form an address may have on a suppression list: keyed with each secret of a rotation,
    and in plain lower case as lists held it before they were hashed. Kept for the decision and
    the hand-over gate of the same batch, which ask for the same addresses."""
    return (*(address_hash(address, s) for s in secrets), address.lower())
