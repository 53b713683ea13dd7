"""Send-time learning: a step with ``send_time = "learned"`` goes at the local hour its customer
answers surveys and clicks links, learned from their own history (``customers.engagement``).

The history is read when the send is planned. The two-hour band of local time that holds most of
the customer's answers and clicks wins, if it holds at least ``MIN_EVENTS`` of them and at least
half of all; the send goes in the middle of it (answers 18:00–20:00 → 19:00). A band whose middle
lies outside the step's window (its quiet hours) is not a candidate. With less history, or no
clear band, the step's own hour stands. Either way the rule the send keeps says so (``learned``:
the step's own hour and the band, the same words for every customer of that band so that their
sends share one intent; ``timing.rule_for`` reads past it), and when the send goes its history
counts what the customer did ("this customer answered 4 of 5 surveys between 18:00 and 20:00"):
``outreach explain`` shows both. Days, weekdays, holidays and the window still apply to the
learned hour.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from datetime import time
from typing import Any

from ..timing import SendRule, Window

#: Fewest answers and clicks in the winning band before an hour is learned.
MIN_EVENTS = 3
#: The winning band must hold at least this share of all answers and clicks.
MIN_SHARE = 0.5
#: Hours in a band.
BAND = 2


def best_band(rule: Mapping[str, Any], hours: Mapping[str, Counter[int]]) -> int | None:
    """The first hour of the customer's two-hour band, or None when the history is too thin or no
    band inside the step's window holds enough of it."""
    both = hours.get("answer", Counter()) + hours.get("click", Counter())
    total = sum(both.values())
    window = _window(rule)
    best: tuple[int, int] | None = None  # (count in the band, first hour)
    for first in range(24):
        middle = time((first + BAND // 2) % 24)
        if window is not None and not window.contains(middle):
            continue
        count = sum(both[(first + i) % 24] for i in range(BAND))
        if best is None or count > best[0]:
            best = (count, first)
    if best is None or best[0] < MIN_EVENTS or best[0] < MIN_SHARE * total:
        return None
    return best[1]


def learn(rule: Mapping[str, Any], hours: Mapping[str, Counter[int]]) -> dict[str, Any]:
    """The rule with the customer's learned hour (``at``) and why (``learned``: the step's hour and the
    band, the same for every customer of that band, so sends still share their intent); with too
    little history the step's own hour, and why not."""
    step_at = str(rule["at"])
    first = best_band(rule, hours)
    if first is None:
        why = f"{step_at}: the step's hour (too little of the customer's history in two hours of the window)"
        return {**rule, "learned": {"at": step_at, "why": why}}
    at = f"{(first + BAND // 2) % 24:02d}:00"
    why = f"{step_at} → {at}: this customer answers and clicks most between {_band(first)}"
    return {**rule, "at": at, "learned": {"at": step_at, "why": why}}


def account(rule: Mapping[str, Any], hours: Mapping[str, Counter[int]]) -> str:
    """What the customer's history says now, counted ("answered 4 of 5 surveys between 18:00 and
    20:00"): written to a send's history when it goes."""
    answers, clicks = hours.get("answer", Counter()), hours.get("click", Counter())
    total = sum((answers + clicks).values())
    first = best_band(rule, hours)
    if first is None:
        return f"{total} answers and clicks so far; at least {MIN_EVENTS} in two hours of the window needed"
    parts = []
    for kind, counts, what in (("answered", answers, "surveys"), ("clicked", clicks, "links")):
        if counts:
            inside = sum(counts[(first + i) % 24] for i in range(BAND))
            parts.append(f"{kind} {inside} of {sum(counts.values())} {what}")
    return f"this customer {' and '.join(parts)} between {_band(first)}"


def _band(first: int) -> str:
    return f"{first:02d}:00 and {(first + BAND) % 24:02d}:00"


def learned_json(rule_json: str, hours: Mapping[str, Counter[int]]) -> str:
    """``learn`` on a rule kept as canonical JSON (``Step.rule_json``)."""
    return json.dumps(learn(json.loads(rule_json), hours), sort_keys=True)


def as_configured(rule_json: str) -> str:
    """A kept rule as its step configured it: without what was learned for one customer."""
    rule = json.loads(rule_json)
    learned = rule.pop("learned", None)
    if not isinstance(learned, dict):
        return rule_json
    rule["at"] = learned["at"]
    return json.dumps(rule, sort_keys=True)


def _window(rule: Mapping[str, Any]) -> Window | None:
    value = rule.get("window")
    return SendRule.from_mapping({"window": value}).window if value else None
