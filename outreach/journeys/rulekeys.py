"""What a step's table names, checked: the send-rule keys a project configures for a category
(``config/categories.toml``) or a step, as a rule before any customer fills in their own values;
and the template folder, a file for every part of every channel."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..configfile import read_toml
from ..declarations import CATEGORIES_FILE, CATEGORY_KEYS
from ..errors import ConfigError, TimingError
from ..registry import CATEGORIES, CHANNELS
from ..timing import BUSINESS_DAYS, CUSTOMER, CUSTOMER_KEYS, SendRule


def _fail(where: str, field: str, value: object, problem: str) -> ConfigError:
    return ConfigError(f"{where}: {field}={value!r}: {problem}")


def check_json(where: str, rule: Mapping[str, Any]) -> None:
    """Sends keep their rule as JSON: a TOML date or time (``at = 10:30:00``) must be a string."""
    for key, value in rule.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise _fail(where, key, value, f'must be written as a string ({key} = "{value}")') from None


def check_rule(where: str, rule: Mapping[str, Any]) -> None:
    """A configured rule's keys, checked as a rule before any customer fills in their own."""
    for key in CUSTOMER_KEYS:
        if key in rule:
            raise _fail(where, key, rule[key], "describes the customer (their profile), not a send rule")
    if rule.get("observances") not in (None, CUSTOMER):
        lists = "the calendars each customer's profile lists"
        raise _fail(where, "observances", rule["observances"], f"must be {CUSTOMER!r}: {lists}")
    # "customer" and "business" are filled in per customer; every other value is checked as it is.
    probe = {k: v for k, v in rule.items() if not (k in ("holidays", "observances") and v == CUSTOMER)}
    if probe.get("weekdays") == BUSINESS_DAYS:
        del probe["weekdays"]
    try:
        SendRule.from_mapping(probe)
    except TimingError as exc:
        raise _fail(where, exc.field, exc.value, exc.problem) from None


def load_category_defaults(config_dir: Path) -> dict[str, dict[str, Any]]:
    """Per-category rule defaults from ``config/categories.toml`` (optional file)."""
    path = config_dir / CATEGORIES_FILE
    data = read_toml(path)
    defaults: dict[str, dict[str, Any]] = {}
    for category, table in data.items():
        where = f"{path}: category {category!r}"
        if category not in CATEGORIES:
            raise _fail(where, "category", category, f"must be one of {', '.join(CATEGORIES)}")
        if not isinstance(table, dict):
            raise _fail(where, category, table, "must be a table of rule keys")
        rule = {k: v for k, v in table.items() if k not in CATEGORY_KEYS}
        check_json(where, rule)
        check_rule(where, rule)
        defaults[category] = rule
    return defaults


def template_file(templates_dir: Path, template: str, channel: str, part: str) -> Path | None:
    """The file a step's message part is rendered from: ``<channel>.<part>`` first, then ``<part>``."""
    folder = templates_dir / template
    return next((p for p in (folder / f"{channel}.{part}", folder / part) if p.exists()), None)


def check_template(where: str, template: str, rule: Mapping[str, Any] | None = None, *,
                    channels: list[str], templates_dir: Path) -> None:  # fmt: skip
    """Every part of every channel has a file (``template_file``); and a variant's ``rule``, if given."""
    if rule is not None:
        check_json(where, rule)
        check_rule(where, rule)
    for channel in channels:
        for part in CHANNELS[channel].parts:
            if template_file(templates_dir, template, channel, part) is None:
                missing = f"missing {template}/{part} (or {channel}.{part}) under {templates_dir}"
                raise _fail(where, "template", template, missing)
