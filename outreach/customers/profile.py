"""The customer record: its shape, validation and JSON form."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, overload

from ..errors import InputError, TimingError
from ..languages import parse_locale
from ..payload import check, check_text
from ..registry import APP_ADDRESSES, CATEGORIES, CHANNELS, FORMALITIES, TITLES
from ..timing import OBSERVANCES, CustomerCalendar, country_zone, zone
from ..timing.sun import check_coordinates
from .addresses import COUNTRY_CODES, app_address, email_address, phone_number


@overload
def text_field(data: Mapping[str, Any], key: str, *, required: Literal[True]) -> str: ...
@overload
def text_field(data: Mapping[str, Any], key: str, *, required: bool = False) -> str | None: ...
def text_field(data: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    """A string field, stripped; None when absent or empty (an InputError instead when required)."""
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise InputError(key, value, "is required")
        return None
    if not isinstance(value, str):
        raise InputError(key, value, "must be a string")
    check_text(key, value)
    return value.strip()


#: Field names other systems use, and the profile field each one means.
ALIASES = {
    "timezone": "zone",
    "time_zone": "zone",
    "tz": "zone",
    "language": "locale",
    "lang": "locale",
    "first_name": "given_name",
    "last_name": "family_name",
    "email_address": "email",
    "mobile": "phone",
    "phone_number": "phone",
    "nickname": "preferred_name",
    "sex": "gender",
}
#: How a gender may be given, and the grammatical gender it means. ``neutral`` (and no gender at all)
#: is addressed in the words every translation writes without one.
GENDERS = {
    "feminine": "feminine", "female": "feminine", "f": "feminine", "woman": "feminine",
    "masculine": "masculine", "male": "masculine", "m": "masculine", "man": "masculine",
    "neutral": "neutral", "nonbinary": "neutral", "non-binary": "neutral", "x": "neutral", "other": "neutral",
}  # fmt: skip


def grammatical_gender(value: str) -> str:
    """``feminine``, ``masculine`` or ``neutral`` for any way of giving one (GENDERS)."""
    if value.lower() not in GENDERS:
        raise InputError("gender", value, "must be feminine, masculine or neutral (or left out)")
    return GENDERS[value.lower()]


#: The suffix of a gettext context (``informal.f``) for each grammatical gender that has one.
GENDER_SUFFIXES = {"feminine": "f", "masculine": "m"}
#: The titles that say which words address a person when the profile gives no gender.
TITLE_GENDERS = {"ms": "feminine", "mr": "masculine"}
#: How the two names of a person are written, given name first or family name first.
NAME_ORDERS = ("given_family", "family_given")
#: Where a profile's zone came from: given, inferred from a country whose clocks all agree, or
#: unknown (UTC stands in, and journeys with local times refuse the customer's events).
ZONE_GIVEN, ZONE_FROM_COUNTRY, ZONE_UNKNOWN = "profile", "country", "unknown"


def _canonical(data: Mapping[str, Any]) -> dict[str, Any]:
    """The profile with aliases put under their field's name; an unknown field is refused."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = ALIASES.get(key, key) if isinstance(key, str) else key
        if name not in FIELDS and key != "zone_from":
            known = ", ".join(FIELDS)
            raise InputError(str(key), value, f"unknown profile field (fields: {known}; aliases: "
                             f"{', '.join(ALIASES)}; anything else goes under attributes)")  # fmt: skip
        if name in out and out[name] != value:
            raise InputError(str(key), value, f"is {name} too, which says {out[name]!r}")
        out[name] = value
    return out


@dataclass
class Customer:
    id: str
    #: How the customer is named when nothing finer is known (defaults to given + family).
    name: str
    given_name: str | None = None
    family_name: str | None = None
    title: str | None = None
    #: The grammatical gender to address the customer in (GENDERS); None: words that need none.
    gender: str | None = None
    #: The name to address the customer by when it is not the whole given name (Vietnamese
    #: ``Thị Lan`` → ``Lan``, ``Elizabeth`` → ``Liz``).
    preferred_name: str | None = None
    #: The order the customer's own name is written in (NAME_ORDERS); None: their locale's order.
    name_order: str | None = None
    email: str | None = None
    phone: str | None = None
    locale: str = "en"
    zone: str = "UTC"
    country: str | None = None
    #: The channel the customer chose to be reached on first (None: their country's order).
    channel: str | None = None
    formality: str | None = None
    #: category -> True (opted in) / False (opted out); missing means the category default.
    consent: dict[str, bool] = field(default_factory=dict)
    #: channel -> False where the customer opted out of a channel.
    channel_consent: dict[str, bool] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    #: Addresses on messaging apps (``registry.APP_ADDRESSES``): whatsapp, line, telegram, wechat.
    addresses: dict[str, str] = field(default_factory=dict)
    #: ISO 3166-2 subdivision (``DE-BY``, ``ES-CT``, ``US-CA``): its public holidays where known.
    region: str | None = None
    #: The calendars the customer keeps (``timing.OBSERVANCES``), as they gave them; never inferred.
    observances: list[str] = field(default_factory=list)
    #: Where the customer is, for sun times (sundown observances); else their zone's reference point.
    latitude: float | None = None
    longitude: float | None = None
    #: Where ``zone`` came from (ZONE_GIVEN, ZONE_FROM_COUNTRY or ZONE_UNKNOWN).
    zone_from: str = ZONE_GIVEN

    @property
    def zone_known(self) -> bool:
        return self.zone_from != ZONE_UNKNOWN

    @property
    def grammatical_gender(self) -> str | None:
        """``f`` or ``m`` where the customer's words have a gender (their profile's, else their
        title's), None for the neutral words every translation has."""
        gender = self.gender or TITLE_GENDERS.get(self.title or "")
        return GENDER_SUFFIXES.get(gender or "")

    @property
    def calendar(self) -> CustomerCalendar:
        """What the customer's send rules read of their profile (``timing.rule_for``)."""
        return CustomerCalendar(
            self.country, self.region, tuple(self.observances), self.latitude, self.longitude
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Customer:
        """Validate a profile; errors name the field and the value."""
        if not isinstance(data, Mapping):
            raise InputError("customer", data, "must be an object")
        data = _canonical(data)
        customer_id = text_field(data, "id", required=True)
        given_name = text_field(data, "given_name")
        family_name = text_field(data, "family_name")
        name = text_field(data, "name") or " ".join(n for n in (given_name, family_name) if n)
        if not name:
            raise InputError("name", data.get("name"), "is required (or given_name)")
        title = text_field(data, "title")
        if title is not None and title.lower() not in TITLES:
            raise InputError("title", title, f"must be one of {', '.join(TITLES)}")
        gender = text_field(data, "gender")
        if gender is not None:
            gender = grammatical_gender(gender)
        preferred_name = text_field(data, "preferred_name")
        name_order = text_field(data, "name_order")
        if name_order is not None and name_order not in NAME_ORDERS:
            raise InputError("name_order", name_order, f"must be {' or '.join(NAME_ORDERS)}")
        email = text_field(data, "email")
        if email is not None:
            email = email_address(email)
        locale_tag = text_field(data, "locale") or "en"
        parse_locale(locale_tag)
        country = text_field(data, "country")
        if country is not None and country.upper() not in COUNTRY_CODES:
            raise InputError("country", country, "must be an ISO 3166 alpha-2 code (GB, not UK)")
        region = text_field(data, "region")
        if region is not None:
            region = _region(region, country)
            country = country or region[:2]
        observances = _observances(data.get("observances"))
        latitude, longitude = data.get("latitude"), data.get("longitude")
        if (latitude is None) != (longitude is None):
            missing = "longitude" if latitude is not None else "latitude"
            raise InputError(missing, None, "is required with the other coordinate")
        if latitude is not None:
            try:
                check_coordinates(latitude, longitude)
            except TimingError as exc:
                raise InputError(exc.field, exc.value, exc.problem) from None
        zone_name = text_field(data, "zone")
        if data.get("zone_from") in (ZONE_FROM_COUNTRY, ZONE_UNKNOWN):
            zone_name = None  # a profile read back: its zone was inferred, so infer it again
        zone_from = ZONE_GIVEN
        if zone_name is None:
            zone_name = country_zone(country) if country else None
            zone_from = ZONE_FROM_COUNTRY if zone_name else ZONE_UNKNOWN
        try:
            zone(zone_name or "UTC")
        except TimingError as exc:
            raise InputError("zone", zone_name, exc.problem) from None
        phone = text_field(data, "phone")
        if phone is not None:
            phone = phone_number(phone, country.upper() if country else None)
        channel = text_field(data, "channel")
        if channel is not None and channel not in CHANNELS:
            raise InputError("channel", channel, f"must be one of {', '.join(CHANNELS)}")
        formality = text_field(data, "formality")
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
        raw_addresses = data.get("addresses") or {}
        if not isinstance(raw_addresses, Mapping):
            raise InputError("addresses", raw_addresses, f"must be an object of {', '.join(APP_ADDRESSES)}")
        addresses = {}
        for kind, value in raw_addresses.items():
            if kind not in APP_ADDRESSES:
                raise InputError("addresses", kind, f"unknown address (known: {', '.join(APP_ADDRESSES)})")
            if value is None:
                continue
            if not isinstance(value, str | int) or isinstance(value, bool):
                raise InputError(f"addresses.{kind}", value, "must be a string")
            addresses[kind] = app_address(kind, str(value).strip(), country.upper() if country else None)
        raw_attributes = data.get("attributes") or {}
        if not isinstance(raw_attributes, Mapping):
            raise InputError("attributes", raw_attributes, "must be an object")
        attributes = dict(raw_attributes)
        check("attributes", attributes)
        return cls(
            id=customer_id,
            name=name,
            given_name=given_name,
            family_name=family_name,
            title=title.lower() if title else None,
            gender=gender,
            preferred_name=preferred_name,
            name_order=name_order,
            email=email,
            phone=phone,
            locale=locale_tag.replace("-", "_"),
            zone=zone_name or "UTC",
            country=country.upper() if country else None,
            channel=channel,
            formality=formality,
            consent=dict(consent),
            channel_consent=dict(channel_consent),
            attributes=attributes,
            addresses=addresses,
            region=region,
            observances=observances,
            latitude=float(latitude) if latitude is not None else None,
            longitude=float(longitude) if longitude is not None else None,
            zone_from=zone_from,
        )

    def to_json(self) -> str:
        data = asdict(self)
        for name in _OPTIONAL_FIELDS:
            if data[name] is None or data[name] == []:
                del data[name]
        return json.dumps(data, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Customer:
        """A stored profile. Fields a later version added are left out, not fatal: during a rolling
        upgrade or after a rollback, this version reads what a newer one wrote."""
        return cls(**{k: v for k, v in json.loads(raw).items() if k in _STORED})

    def address(self, channel: str) -> str | None:
        """Where this customer is reached on a channel, or None if they cannot be."""
        entry = CHANNELS.get(channel)
        if entry is None:
            return None
        if entry.address in APP_ADDRESSES:
            # A WhatsApp number is the phone number unless the profile gives another.
            found = self.addresses.get(entry.address)
            return found if found or entry.address != "whatsapp" else self.phone
        value = getattr(self, entry.address)
        return str(value) if value is not None else None


#: What an error shows instead of a value that must not be repeated.
WITHHELD = "(withheld)"
#: Fields written only when given: most profiles have none, and a worker of the version before
#: them reads every profile that does not use them.
_OPTIONAL_FIELDS = (
    "region", "observances", "latitude", "longitude", "gender", "preferred_name", "name_order",
)  # fmt: skip
_REGION = re.compile(r"[A-Z]{2}-[A-Z0-9]{1,3}")


def _region(region: str, country: str | None) -> str:
    """An ISO 3166-2 code (``DE-BY``), in capitals, in the profile's country."""
    code = region.upper()
    if not _REGION.fullmatch(code):
        raise InputError("region", region, "must be an ISO 3166-2 code such as DE-BY or US-CA")
    if country is not None and code[:2] != country.upper():
        raise InputError("region", region, f"is not in the profile's country {country.upper()}")
    return code


def _observances(value: object) -> list[str]:
    """The calendars a customer keeps: known names, each once, in a stable order. A refusal does not
    repeat the value: it is about religion, data that must not spread into logs and dead letters."""
    if value is None:
        return []
    known = ", ".join(OBSERVANCES)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise InputError("observances", WITHHELD, f"must be a list of {known}")
    if any(name not in OBSERVANCES for name in value):
        raise InputError("observances", WITHHELD, f"has a name that is not one of {known}")
    return sorted(set(value))


#: Every field a stored profile has.
_STORED = frozenset(f.name for f in fields(Customer))
#: The profile's own fields as it is given (``attributes`` holds anything else; ``zone_from`` is
#: worked out, not given).
FIELDS = tuple(f.name for f in fields(Customer) if f.name != "zone_from")
