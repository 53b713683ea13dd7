"""JSON on the delivery path reads back as ``json`` would have written it, whatever the value."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import NamedTuple

from hypothesis import given, settings
from hypothesis import strategies as st

from outreach import jsontext


class Shade(StrEnum):
    DARK = "dark"


class Level(IntEnum):
    HIGH = 3


class Pin(NamedTuple):
    channel: str
    provider: str


class Ratio(float):
    pass


SCALARS = (
    st.sampled_from([Shade.DARK, Level.HIGH, True, False, Pin("sms", "twilio"), Ratio(1.5), (1, "a")])
    | st.none()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.datetimes(timezones=st.just(UTC))
    | st.decimals(allow_nan=False, allow_infinity=False)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.integers(min_value=-5, max_value=5), inner, max_size=4)
    ),
    max_leaves=20,
)


def reference(value: object) -> object:
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


@settings(max_examples=1500, deadline=None)
@given(VALUES)
def test_what_is_written_reads_back_as_json_would_have_written_it(value):
    assert json.loads(jsontext.dumps(value)) == reference(value)
    line = jsontext.line(value)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == reference(value)


def test_values_json_cannot_hold_are_written_as_text():
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    value = {"at": now, "amount": Decimal("10.50"), "big": 2**80, 3: "three"}
    assert json.loads(jsontext.dumps(value)) == {
        "at": str(now),
        "amount": "10.50",
        "big": 2**80,
        "3": "three",
    }
