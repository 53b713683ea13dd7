"""Data contracts: the fields an event type's data carries, their types, and which are required.

A contract is declared with its event type in ``config/events.toml``::

    [event."order.delayed"]
    data.order_id = { type = "string", required = true, example = "A-1001" }
    data.new_eta = { type = "date", required = true, example = "2026-03-26" }
    data.credit = { type = "money", example = { amount = "10.00", currency = "EUR" } }

``Contract.check(data)`` refuses data that breaks it with an ``InputError`` naming
``data.<field>`` and the value; it never changes the data. Templates are checked
against the contract of their trigger when the journeys load (``journeys.fields``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError, InputError

#: A currency code as ISO 4217 writes it.
_CURRENCY = re.compile(r"^[A-Z]{3}$")
#: Keys a field's table may have.
FIELD_KEYS = {"type", "required", "description", "example", "values", "items"}


def _is_decimal(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        try:
            return Decimal(value).is_finite()
        except InvalidOperation:
            return False
    return False


def _is_date(value: object) -> bool:
    if not isinstance(value, str) or len(value) != 10:
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_datetime(value: object) -> bool:
    if not isinstance(value, str) or len(value) < 16 or value[10:11] not in ("T", "t", " "):
        return False
    try:
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def _is_money(value: object) -> bool:
    return (
        isinstance(value, Mapping)
        and set(value) == {"amount", "currency"}
        and _is_decimal(value["amount"])
        and isinstance(value["currency"], str)
        and bool(_CURRENCY.match(value["currency"]))
    )


def _is_url(value: object) -> bool:
    """An absolute https (or http) address with a host and nothing a message could be tricked with:
    no other scheme (``javascript:``), no user name, no spaces or control characters."""
    if not isinstance(value, str) or len(value) > 2000 or any(ch.isspace() or ord(ch) < 32 for ch in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("https", "http") and bool(parts.hostname) and "@" not in parts.netloc


#: Each type: (test, what a value must be).
TYPES: dict[str, tuple[Any, str]] = {
    "string": (lambda v: isinstance(v, str), "a string"),
    "url": (_is_url, 'an https or http address ("https://shop.example.com/orders/A-1001")'),
    "integer": (lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number"),
    "decimal": (_is_decimal, 'a number or a decimal string ("10.50")'),
    "boolean": (lambda v: isinstance(v, bool), "true or false"),
    "currency": (lambda v: isinstance(v, str) and bool(_CURRENCY.match(v)), 'an ISO 4217 code ("EUR")'),
    "money": (_is_money, 'an object {"amount": "10.50", "currency": "EUR"}'),
    "date": (_is_date, 'a date, YYYY-MM-DD ("2026-03-26")'),
    "datetime": (_is_datetime, 'ISO 8601 with a UTC offset ("2026-03-26T10:00:00+01:00")'),
    "enum": (None, "one of the declared values"),
    "list": (lambda v: isinstance(v, list), "a list"),
    "object": (lambda v: isinstance(v, Mapping), "an object"),
}


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool = False
    description: str = ""
    example: Any = None
    #: enum: the values allowed.
    values: tuple[Any, ...] = ()
    #: list: the type of each item ("" for any).
    items: str = ""

    @property
    def _one_of(self) -> str:
        return f"one of {', '.join(map(str, self.values))}"

    def problem(self, value: object) -> str | None:
        """Why a value does not fit this field; None when it does."""
        if self.type == "enum":
            return None if value in self.values else f"must be {self._one_of}"
        test, what = TYPES[self.type]
        if not test(value):
            return f"must be {what}"
        if self.type == "list" and self.items and isinstance(value, list):
            if self.items == "enum":
                item_test, item_what = (lambda item: item in self.values), self._one_of
            else:
                item_test, item_what = TYPES[self.items]
            for i, item in enumerate(value):
                if not item_test(item):
                    return f"item [{i}] must be {item_what}"
        return None

    @classmethod
    def parse(cls, where: str, name: str, raw: object) -> Field:
        """A field from its table in events.toml (or just its type: ``data.note = "string"``)."""
        if isinstance(raw, str):
            raw = {"type": raw}
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: data.{name}={raw!r}: must be a type or a table with a type")
        unknown = sorted(set(raw) - FIELD_KEYS)
        if unknown:
            raise ConfigError(
                f"{where}: data.{name}.{unknown[0]}: unknown key ({', '.join(sorted(FIELD_KEYS))})"
            )
        kind = raw.get("type")
        if kind not in TYPES:
            raise ConfigError(f"{where}: data.{name}.type={kind!r}: must be one of {', '.join(TYPES)}")
        required = raw.get("required", False)
        if not isinstance(required, bool):
            raise ConfigError(f"{where}: data.{name}.required={required!r}: must be true or false")
        values = raw.get("values", [])
        items = raw.get("items", "")
        if items and (kind != "list" or items not in TYPES or items == "list"):
            raise ConfigError(f"{where}: data.{name}.items={items!r}: a list's item type (string, date, …)")
        if "enum" in (kind, items) and (not isinstance(values, list) or not values):
            raise ConfigError(f"{where}: data.{name}.values={values!r}: an enum lists its values")
        found = cls(name, kind, required, str(raw.get("description", "")), raw.get("example"), tuple(values),
                    items)  # fmt: skip
        if found.example is not None and found.problem(found.example):
            raise ConfigError(
                f"{where}: data.{name}.example={found.example!r}: {found.problem(found.example)}"
            )
        return found


@dataclass(frozen=True)
class Contract:
    """The data of one event type: its fields, and whether fields it does not name are accepted."""

    fields: Mapping[str, Field] = field(default_factory=dict)
    #: Accept data fields the contract does not name (kept, never checked).
    open: bool = False

    def check(self, data: Mapping[str, Any], prefix: str = "data") -> None:
        """Raise InputError naming ``data.<field>`` and the value when the data breaks the contract."""
        for name, spec in self.fields.items():
            if name not in data or data[name] is None:
                if spec.required:
                    raise InputError(f"{prefix}.{name}", None, f"is required ({TYPES[spec.type][1]})")
                continue
            problem = spec.problem(data[name])
            if problem:
                raise InputError(f"{prefix}.{name}", data[name], problem)
        if not self.open:
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                known = ", ".join(self.fields) or "none"
                raise InputError(
                    f"{prefix}.{unknown[0]}", data[unknown[0]], f"is not in the contract (fields: {known})"
                )

    def example(self) -> dict[str, Any]:
        """Example data: each field's example (what previews render)."""
        return {name: f.example for name, f in self.fields.items() if f.example is not None}

    @classmethod
    def parse(cls, where: str, raw: object, open_: object = False) -> Contract:
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: data={raw!r}: must be a table of fields")
        if not isinstance(open_, bool):
            raise ConfigError(f"{where}: open={open_!r}: must be true or false")
        return cls({name: Field.parse(where, name, spec) for name, spec in raw.items()}, open_)


#: The contract of an event type that declares none: any data object.
ANY_DATA = Contract(open=True)
