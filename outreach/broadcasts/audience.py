"""Who a broadcast goes to: a segment (filters over the profiles: country, locale, zone, register,
attributes), read shard by shard from the profiles; or an uploaded list of customer ids (JSON lines
or CSV), each line optionally with data of its own (an order id) for the template.

The list is read as it goes, never whole; a bad line is reported by its number and the others go on.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..customers.profile import Customer
from ..errors import InputError
from ..payload import check

#: The filters of a segment, and the profile field each reads.
FILTERS = ("country", "locale", "zone", "register")


def _values(name: str, value: Any) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if (
        not isinstance(values, list | tuple)
        or not values
        or not all(isinstance(v, str) and v for v in values)
    ):
        raise InputError(name, value, "a value or a list of values (text)")
    return tuple(values)


def _tag(locale: str) -> str:
    """A locale as compared: ``en_US``, ``en-us`` and ``en-US`` are one."""
    return locale.replace("_", "-").lower()


@dataclass(frozen=True)
class Segment:
    """Customers whose profile matches every filter given (any of its values); attributes match
    by equality (a list: any of them)."""

    country: tuple[str, ...] = ()
    locale: tuple[str, ...] = ()
    zone: tuple[str, ...] = ()
    register: tuple[str, ...] = ()
    attributes: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Segment:
        unknown = set(data) - {"kind", "attributes", *FILTERS}
        if unknown:
            name = sorted(unknown)[0]
            known = ", ".join((*FILTERS, "attributes"))
            raise InputError(f"audience.{name}", data[name], f"unknown filter (filters: {known})")
        found: dict[str, Any] = {n: _values(f"audience.{n}", data[n]) for n in FILTERS if data.get(n)}
        attributes = data.get("attributes") or {}
        if not isinstance(attributes, Mapping):
            raise InputError("audience.attributes", attributes, "must be an object: attribute -> value(s)")
        check("audience.attributes", dict(attributes))
        found["attributes"] = {k: tuple(v) if isinstance(v, list) else (v,) for k, v in attributes.items()}
        if "locale" in found:
            found["locale"] = tuple(_tag(t) for t in found["locale"])
        if "country" in found:
            found["country"] = tuple(c.upper() for c in found["country"])
        return cls(**found)

    def to_mapping(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": "segment"}
        out.update({n: list(getattr(self, n)) for n in FILTERS if getattr(self, n)})
        if self.attributes:
            out["attributes"] = {k: list(v) for k, v in self.attributes.items()}
        return out

    def matches(self, customer: Customer) -> bool:
        if self.country and (customer.country or "") not in self.country:
            return False
        locale = _tag(customer.locale)
        if self.locale and not any(locale == tag or locale.startswith(tag + "-") for tag in self.locale):
            return False
        if self.zone and customer.zone not in self.zone:
            return False
        if self.register and (customer.formality or "") not in self.register:
            return False
        attributes = customer.attributes
        return all(
            name in attributes and attributes[name] in wanted for name, wanted in self.attributes.items()
        )


@dataclass(frozen=True)
class Recipient:
    line: int
    customer_id: str
    data: Mapping[str, Any]


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _recipient(line: int, value: Any) -> Recipient:
    if isinstance(value, str) and value:
        return Recipient(line, value, {})
    if not isinstance(value, Mapping):
        raise InputError("line", value, "a customer id, or an object with customer_id (and data)")
    customer_id = value.get("customer_id")
    if not isinstance(customer_id, str) or not customer_id:
        raise InputError("customer_id", customer_id, f"line {line}: a customer id (text) is required")
    data = value["data"] if "data" in value else {k: v for k, v in value.items() if k != "customer_id"}
    if not isinstance(data, Mapping):
        raise InputError("data", data, f"line {line}: must be an object")
    check("data", dict(data))
    return Recipient(line, customer_id, dict(data))


def read_list(path: Path, start: int = 0) -> Iterator[Recipient | tuple[int, InputError]]:
    """The recipients of an uploaded list after line ``start`` (1-based line numbers): a JSON-lines file
    (a customer id as a JSON string, or ``{"customer_id": ..., "data": {...}}``) or, named ``.csv``, a
    CSV file with a ``customer_id`` column (the other columns are the recipient's data)."""
    if path.suffix.lower() == ".csv":
        yield from _read_csv(path, start)
        return
    with path.open("rb") as file:
        for number, raw in enumerate(file, start=1):
            if number <= start or not raw.strip():
                continue
            try:
                text = raw.decode("utf-8").removeprefix("\ufeff").strip()
                bare = text and not any(c in text for c in ' \t{["')
                value = text if bare else json.loads(text)  # a bare id, or JSON
                yield _recipient(number, value)
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
                yield (
                    number,
                    InputError("line", raw[:80].decode("utf-8", "replace").strip(), f"unreadable ({exc})"),
                )
            except InputError as exc:
                yield number, exc


def _read_csv(path: Path, start: int) -> Iterator[Recipient | tuple[int, InputError]]:
    with path.open(encoding="utf-8-sig", newline="") as file:
        reader = csv.DictReader(file)
        if reader.fieldnames is None or "customer_id" not in reader.fieldnames:
            raise InputError("audience.path", str(path), "a CSV list needs a customer_id column")
        for row in reader:
            number = reader.line_num
            if number <= start:
                continue
            try:
                data = {k: v for k, v in row.items() if k and k != "customer_id" and v not in (None, "")}
                yield _recipient(
                    number, {"customer_id": (row.get("customer_id") or "").strip(), "data": data}
                )
            except InputError as exc:
                yield number, exc


def audience_from(data: Mapping[str, Any]) -> Segment | Path:
    """The audience of a stored broadcast: its segment, or the path of its list."""
    if data.get("kind") == "list":
        return Path(str(data["path"]))
    return Segment.from_mapping(data)
