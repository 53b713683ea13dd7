"""Customers and events: their shape, validation and JSON form."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from babel import Locale, UnknownLocaleError

from ..errors import InputError, TimingError, UnknownEventType
from ..timing import parse_instant, zone

#: Message categories a send belongs to; consent is kept per category.
CATEGORIES = ("transactional", "lifecycle", "survey", "marketing")
#: Channels a customer may prefer and a step may name.
CHANNELS = ("email", "sms", "whatsapp", "webhook")
FORMALITIES = ("formal", "informal")
#: Titles a salutation may use (each locale says how, in config/locales.toml).
TITLES = ("ms", "mr", "mx", "dr")

#: Lifecycle event types Outreach understands.
EVENT_TYPES = (
    "customer.signed_up",
    "customer.activated",
    "customer.unsubscribed",
    "customer.checkin_due",
    "order.delayed",
    "interaction.resolved",
    "survey.answered",
)


@lru_cache(maxsize=512)
def parse_locale(tag: str) -> Locale:
    """A cached Babel Locale for ``pt_BR`` or BCP 47 ``pt-BR``."""
    try:
        return Locale.parse(tag, sep="-" if "-" in tag else "_")
    except (UnknownLocaleError, ValueError, TypeError) as exc:
        raise InputError("locale", tag, f"not a known locale ({exc})") from None


def _text(data: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise InputError(key, value, "is required")
        return None
    if not isinstance(value, str):
        raise InputError(key, value, "must be a string")
    return value.strip()


@dataclass
class Customer:
    id: str
    #: How the customer is named when nothing finer is known (defaults to given + family).
    name: str
    given_name: str | None = None
    family_name: str | None = None
    title: str | None = None
    email: str | None = None
    phone: str | None = None
    locale: str = "en"
    zone: str = "UTC"
    country: str | None = None
    channel: str = "email"
    formality: str | None = None
    #: category -> True (opted in) / False (opted out); missing means the category default.
    consent: dict[str, bool] = field(default_factory=dict)
    #: channel -> False where the customer opted out of a channel.
    channel_consent: dict[str, bool] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Customer:
        """Validate a profile; errors name the field and the value."""
        if not isinstance(data, Mapping):
            raise InputError("customer", data, "must be an object")
        known = {
            "id",
            "name",
            "given_name",
            "family_name",
            "title",
            "email",
            "phone",
            "locale",
            "zone",
            "country",
            "channel",
            "formality",
            "consent",
            "channel_consent",
            "attributes",
        }
        extra = {k: v for k, v in data.items() if k not in known}
        customer_id = _text(data, "id", required=True)
        given_name = _text(data, "given_name")
        family_name = _text(data, "family_name")
        name = _text(data, "name") or " ".join(n for n in (given_name, family_name) if n)
        if not name:
            raise InputError("name", data.get("name"), "is required (or given_name)")
        title = _text(data, "title")
        if title is not None and title.lower() not in TITLES:
            raise InputError("title", title, f"must be one of {', '.join(TITLES)}")
        email = _text(data, "email")
        if email is not None and ("@" not in email or any(c in email for c in "\r\n <>")):
            raise InputError("email", email, "not an email address")
        phone = _text(data, "phone")
        if phone is not None and not phone.lstrip("+").replace(" ", "").isdigit():
            raise InputError("phone", phone, "not a phone number (digits, optional +)")
        locale_tag = _text(data, "locale") or "en"
        parse_locale(locale_tag)
        zone_name = _text(data, "zone") or "UTC"
        try:
            zone(zone_name)
        except TimingError as exc:
            raise InputError("zone", zone_name, exc.problem) from None
        country = _text(data, "country")
        if country is not None and (len(country) != 2 or not country.isalpha()):
            raise InputError("country", country, "must be an ISO 3166 alpha-2 code")
        channel = _text(data, "channel") or "email"
        if channel not in CHANNELS:
            raise InputError("channel", channel, f"must be one of {', '.join(CHANNELS)}")
        formality = _text(data, "formality")
        if formality is not None and formality not in FORMALITIES:
            raise InputError("formality", formality, "must be 'formal' or 'informal'")
        consent = data.get("consent") or {}
        if not isinstance(consent, Mapping):
            raise InputError("consent", consent, "must be an object of category -> bool")
        for category, allowed in consent.items():
            if category not in CATEGORIES:
                raise InputError("consent", category, f"unknown category ({', '.join(CATEGORIES)})")
            if not isinstance(allowed, bool):
                raise InputError(f"consent.{category}", allowed, "must be true or false")
        channel_consent = data.get("channel_consent") or {}
        if not isinstance(channel_consent, Mapping):
            raise InputError("channel_consent", channel_consent, "must be an object of channel -> bool")
        for channel_name, allowed in channel_consent.items():
            if channel_name not in CHANNELS:
                raise InputError("channel_consent", channel_name, f"unknown channel ({', '.join(CHANNELS)})")
            if not isinstance(allowed, bool):
                raise InputError(f"channel_consent.{channel_name}", allowed, "must be true or false")
        attributes = dict(data.get("attributes") or {})
        attributes.update(extra)
        return cls(
            id=customer_id,
            name=name,
            given_name=given_name,
            family_name=family_name,
            title=title.lower() if title else None,
            email=email,
            phone=phone,
            locale=locale_tag.replace("-", "_"),
            zone=zone_name,
            country=country.upper() if country else None,
            channel=channel,
            formality=formality,
            consent=dict(consent),
            channel_consent=dict(channel_consent),
            attributes=attributes,
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Customer:
        return cls(**json.loads(raw))

    def address(self, channel: str) -> str | None:
        """Where this customer is reached on a channel, or None if they cannot be."""
        if channel == "email":
            return self.email
        if channel in ("sms", "whatsapp"):
            return self.phone
        if channel == "webhook":
            return self.id
        return None


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    customer_id: str
    occurred_at: datetime
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, now: datetime | None = None) -> Event:
        """Validate an event; ``id`` and ``occurred_at`` default to a new id and now."""
        if not isinstance(data, Mapping):
            raise InputError("event", data, "must be an object")
        unknown = set(data) - {"id", "type", "customer_id", "occurred_at", "data"}
        if unknown:
            name = sorted(unknown)[0]
            raise InputError(name, data[name], "unknown event field")
        event_type = _text(data, "type", required=True)
        if event_type not in EVENT_TYPES:
            raise UnknownEventType(event_type)
        customer_id = _text(data, "customer_id", required=True)
        event_id = _text(data, "id") or uuid.uuid4().hex
        raw_time = data.get("occurred_at")
        if raw_time is None or raw_time == "":
            occurred = (now or datetime.now(UTC)).astimezone(UTC)
        elif isinstance(raw_time, datetime):
            if raw_time.tzinfo is None:
                raise InputError("occurred_at", raw_time, "needs a UTC offset")
            occurred = raw_time.astimezone(UTC)
        else:
            try:
                occurred = parse_instant(str(raw_time)).astimezone(UTC)
            except TimingError:
                raise InputError("occurred_at", raw_time, "not ISO 8601 with an offset") from None
        payload = data.get("data") or {}
        if not isinstance(payload, Mapping):
            raise InputError("data", payload, "must be an object")
        return cls(event_id, event_type, customer_id, occurred, dict(payload))

    def to_mapping(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "customer_id": self.customer_id,
            "occurred_at": self.occurred_at.isoformat().replace("+00:00", "Z"),
            "data": self.data,
        }
