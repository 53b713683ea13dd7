"""The policy as configured: consent defaults per country, caps, survey fatigue and age
(``config/policy.toml``, docs/POLICY.md), validated at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..configfile import read_toml
from ..declarations import NAME
from ..errors import ConfigError, TimingError
from ..registry import CATEGORIES, CHANNELS, consentable
from ..timing import SendRule
from .channels import LegalHours


@dataclass(frozen=True)
class PolicyConfig:
    consent: dict[str, str]
    countries: dict[str, dict[str, str]]
    caps: dict[str, dict[str, int]]
    on_limit: dict[str, str]
    fatigue_days: float
    max_age_hours: float
    late_grace: timedelta = timedelta(minutes=5)
    #: Country -> the order to try channels in for its customers who chose none.
    routing: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: When the law lets a category go out on a channel, per country.
    legal_hours: tuple[LegalHours, ...] = ()


def load_policy(config_dir: Path, late_grace_seconds: int = 300) -> PolicyConfig:
    """Read and validate ``config/policy.toml``; errors name file, key and value."""
    # The categories that consent, caps and fatigue apply to.
    capped = consentable()
    path = config_dir / "policy.toml"
    data = read_toml(path, missing="it holds consent defaults and caps")

    def fail(key: str, value: object, problem: str) -> ConfigError:
        return ConfigError(f"{path}: {key}={value!r}: {problem}")

    def section(key: str, value: object) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise fail(key, value, f"must be a table [{key}]")
        return dict(value)

    def mode(key: str, value: object) -> str:
        if value not in ("opt_in", "opt_out"):
            raise fail(key, value, "must be 'opt_in' or 'opt_out'")
        return value

    consent_table = section("consent", data.get("consent", {}))
    countries_table = section("consent.countries", consent_table.pop("countries", {}))
    consent = {}
    for category, value in consent_table.items():
        if category not in capped:
            raise fail(f"consent.{category}", value, f"category must be one of {', '.join(capped)}")
        consent[category] = mode(f"consent.{category}", value)
    for category in capped:
        consent.setdefault(category, "opt_out")
    countries: dict[str, dict[str, str]] = {}
    for country, table in countries_table.items():
        if len(country) != 2 or not country.isalpha() or not country.isupper():
            raise fail("consent.countries", country, "must be an ISO 3166 alpha-2 code (DE)")
        if not isinstance(table, dict):
            raise fail(f"consent.countries.{country}", table, "must map categories to opt_in/opt_out")
        for category, value in table.items():
            if category not in capped:
                raise fail(f"consent.countries.{country}.{category}", value, "unknown category")
            mode(f"consent.countries.{country}.{category}", value)
        countries[country] = dict(table)
    caps_table = section("caps", data.get("caps", {}))
    on_limit_table = section("caps.on_limit", caps_table.pop("on_limit", {}))
    caps: dict[str, dict[str, int]] = {}
    for name, limits in caps_table.items():
        if name not in (*capped, "all"):
            raise fail(f"caps.{name}", limits, f"must be one of {', '.join(capped)}, all")
        if not isinstance(limits, dict) or set(limits) - {"day", "week"}:
            raise fail(f"caps.{name}", limits, "must be a table with day and/or week")
        for period, limit in limits.items():
            if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
                raise fail(f"caps.{name}.{period}", limit, "must be a whole number >= 0")
        caps[name] = dict(limits)
    on_limit = {}
    for category in capped:
        value = on_limit_table.get(category, "defer")
        if value not in ("defer", "suppress"):
            raise fail(f"caps.on_limit.{category}", value, "must be 'defer' or 'suppress'")
        on_limit[category] = value
    for key in on_limit_table:
        if key not in capped:
            raise fail(f"caps.on_limit.{key}", on_limit_table[key], "unknown category")
    survey = section("survey", data.get("survey", {}))
    extra = sorted(set(survey) - {"fatigue_days", "max_age_hours"})
    if extra:
        raise fail(f"survey.{extra[0]}", survey[extra[0]], "unknown key (known: fatigue_days, max_age_hours)")
    values = {}
    for key, default in (("fatigue_days", 30), ("max_age_hours", 72)):
        value = survey.get(key, default)
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise fail(f"survey.{key}", value, "must be a number >= 0")
        values[key] = float(value)
    routing = _routing(path, section("routing", data.get("routing", {})))
    legal = _legal_hours(path, section("legal_hours", data.get("legal_hours", {})))
    unknown = set(data) - {"consent", "caps", "survey", "routing", "legal_hours"}
    if unknown:
        name = sorted(unknown)[0]
        raise fail(name, data[name], "unknown section")
    return PolicyConfig(
        consent,
        countries,
        caps,
        on_limit,
        values["fatigue_days"],
        values["max_age_hours"],
        timedelta(seconds=late_grace_seconds),
        routing,
        legal,
    )


def _country(path: Path, key: str, country: str) -> str:
    if len(country) != 2 or not country.isalpha() or not country.isupper():
        raise ConfigError(f"{path}: {key}={country!r}: must be an ISO 3166 alpha-2 code (DE)")
    return country


def _names(path: Path, key: str, value: object) -> tuple[str, ...]:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) and NAME.match(v) for v in value)
    ):
        raise ConfigError(f"{path}: {key}={value!r}: must be a list of channel names")
    return tuple(value)


def _routing(path: Path, table: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """Country -> channel order. Channels the project does not declare are passed over, so the
    shipped defaults can name LINE or WeChat before a project declares them."""
    return {_country(path, f"routing.{c}", c): _names(path, f"routing.{c}", v) for c, v in table.items()}


def _legal_hours(path: Path, table: dict[str, Any]) -> tuple[LegalHours, ...]:
    """``[legal_hours.US]`` (one set of hours) or ``[[legal_hours.BR]]`` (several: any allows)."""
    laws = []
    for country, value in table.items():
        _country(path, f"legal_hours.{country}", country)
        entries = value if isinstance(value, list) else [value]
        for index, entry in enumerate(entries):
            key = f"legal_hours.{country}" + (f"[{index}]" if isinstance(value, list) else "")
            laws.append(_law(path, key, country, entry))
    return tuple(laws)


def _law(path: Path, key: str, country: str, entry: object) -> LegalHours:
    if not isinstance(entry, dict):
        raise ConfigError(f"{path}: {key}={entry!r}: must be a table")
    extra = sorted(set(entry) - {"categories", "channels", "window", "weekdays", "holidays", "source"})
    if extra:
        raise ConfigError(f"{path}: {key}.{extra[0]}={entry[extra[0]]!r}: unknown key")
    categories = _names(path, f"{key}.categories", entry.get("categories", ["marketing"]))
    channels = _names(path, f"{key}.channels", entry.get("channels"))
    source = entry.get("source", "the law")
    if not isinstance(source, str) or not source.strip():
        raise ConfigError(f"{path}: {key}.source={source!r}: must name the law or code")
    try:
        rule = SendRule.from_mapping({k: entry.get(k) for k in ("window", "weekdays", "holidays")})
    except TimingError as exc:
        raise ConfigError(f"{path}: {key}.{exc.field}={exc.value!r}: {exc.problem}") from None
    if rule.window is None:
        raise ConfigError(f"{path}: {key}.window=None: the hours the law allows are needed (08:00-21:00)")
    for category in categories:
        if category in CATEGORIES and not CATEGORIES[category].consentable:
            # What must be told (a delay notice) keeps its own window: the law's hours are for offers.
            raise ConfigError(
                f"{path}: {key}.categories={category!r}: is not consentable: it keeps its own window"
            )
        if category not in CATEGORIES:
            known = ", ".join(CATEGORIES)
            raise ConfigError(f"{path}: {key}.categories={category!r}: no such category ({known})")
    for channel in channels:
        if channel not in CHANNELS:
            raise ConfigError(f"{path}: {key}.channels={channel!r}: no such channel ({', '.join(CHANNELS)})")
    return LegalHours(country, frozenset(categories), frozenset(channels), rule, source.strip())
