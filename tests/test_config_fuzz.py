"""Config as a hostile or careless operator writes it: any TOML value in any key of policy.toml, a
journey, a category default or channels.toml either loads or is refused with a ConfigError that
names the file. Never another exception, never a value that loads and breaks later."""

from __future__ import annotations

import datetime as dt
import shutil
import tomllib

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from outreach import ConfigError
from outreach.channels.config import load_channels
from outreach.journeys.config import load_journeys
from outreach.policy.config import load_policy
from outreach.settings import STARTER
from outreach.timing import CustomerCalendar

FIXTURES = [HealthCheck.function_scoped_fixture]

#: Every kind of value TOML has, nested a little.
SCALARS = (
    st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(
        [
            "opt_in",
            "opt_out",
            "defer",
            "suppress",
            "10:00",
            "09:00-20:00",
            "customer",
            "DE",
            "business",
            "after_iftar",
            "jewish",
        ]
    )
    | st.times()
    | st.dates()
    | st.datetimes()
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


def toml_value(value: object) -> str:
    """``value`` written as TOML (inline tables for mappings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        escaped = "".join(c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}" for c in value)
        return f'"{escaped}"'
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{toml_value(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"


def replace_key(text: str, table: str, key: str, value: object) -> str:
    """The TOML text with ``key`` of ``[table]`` set to ``value`` (added when missing)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == f"[{table}]")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    body = [line for line in lines[start + 1 : end] if line.split("=")[0].strip() != key]
    return "\n".join([*lines[: start + 1], f"{key} = {toml_value(value)}", *body, *lines[end:]]) + "\n"


def valid_toml(text: str) -> bool:
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return False
    return True


@pytest.fixture
def config(tmp_path):
    folder = tmp_path / "config"
    shutil.copytree(STARTER / "config", folder)
    return folder


POLICY_KEYS = [
    ("consent", "lifecycle"),
    ("consent", "marketing"),
    ("caps", "lifecycle"),
    ("caps", "all"),
    ("caps.on_limit", "survey"),
    ("survey", "fatigue_days"),
    ("survey", "max_age_hours"),
    ("survey", "a_typo"),
]


@given(where=st.sampled_from(POLICY_KEYS), value=VALUES)
@settings(max_examples=300, deadline=None, suppress_health_check=FIXTURES)
def test_any_value_in_policy_toml_loads_or_is_refused_naming_the_file(config, where, value):
    path = config / "policy.toml"
    text = replace_key((STARTER / "config" / "policy.toml").read_text(), *where, value)
    assume(valid_toml(text))
    path.write_text(text)
    try:
        load_policy(config)
    except ConfigError as exc:
        assert str(path) in str(exc)


STEP_KEYS = [
    "days", "at", "window", "weekdays", "holidays", "delay_hours", "channels", "survey", "a_typo",
    "observances", "ramadan", "country", "latitude",
]  # fmt: skip


@given(key=st.sampled_from(STEP_KEYS), value=VALUES)
@settings(max_examples=300, deadline=None, suppress_health_check=FIXTURES)
def test_any_value_in_a_journey_step_loads_or_is_refused_naming_the_file(config, key, value):
    path = config / "journeys" / "onboarding.toml"
    source = STARTER / "config" / "journeys" / "onboarding.toml"
    head, *steps = source.read_text().split("[[journey.steps]]\n")
    tips = [line for line in steps[1].splitlines() if line.split("=")[0].strip() != key]
    steps[1] = "\n".join([tips[0], f"{key} = {toml_value(value)}", *tips[1:]]) + "\n"
    text = "[[journey.steps]]\n".join([head, *steps])
    assume(valid_toml(text))
    path.write_text(text)
    try:
        journeys = load_journeys(config, STARTER / "templates")
    except ConfigError as exc:
        assert str(path) in str(exc)
        return
    # What loaded can be planned: its rule is JSON and resolves for a customer.
    step = journeys["onboarding"].step("tips")
    step.send_rule(CustomerCalendar(country="DE", region="DE-BY", observances=("jewish",)))


@given(key=st.sampled_from(["window", "weekdays", "holidays", "at", "days"]), value=VALUES)
@settings(max_examples=200, deadline=None, suppress_health_check=FIXTURES)
def test_any_value_in_a_category_default_loads_or_is_refused_naming_the_file(config, key, value):
    path = config / "categories.toml"
    text = replace_key((STARTER / "config" / "categories.toml").read_text(), "survey", key, value)
    assume(valid_toml(text))
    path.write_text(text)
    try:
        load_journeys(config, STARTER / "templates")
    except ConfigError as exc:
        assert str(path) in str(exc) or str(config / "journeys") in str(exc)


@given(
    key=st.sampled_from(["rate", "burst", "url", "timeout", "headers", "batch_url", "secret", "x"]),
    value=VALUES,
)
@settings(max_examples=300, deadline=None, suppress_health_check=FIXTURES)
def test_any_value_in_channels_toml_loads_or_is_refused_naming_the_file(config, key, value):
    path = config / "channels.toml"
    text = replace_key((STARTER / "config" / "channels.toml").read_text(), "sms", key, value)
    assume(valid_toml(text))
    path.write_text(text)
    try:
        load_channels(config, environ={"OUTREACH_SMS_SECRET": "s3cret"})
    except ConfigError as exc:
        assert str(path) in str(exc) or "OUTREACH_SMS" in str(exc)
