"""Experiments on a step: its variants (another template, another timing), a holdout group, and
which of them each customer gets, deterministically (docs/JOURNEYS.md, "Experiments").

A customer's *bucket* is a number in [0, 1) made from SHA-256 of ``<experiment>:<customer id>``:
the same for every process, every order of events and every Python hash seed. The first
``holdout`` fraction of [0, 1) is the holdout group; the rest is split among the variants in
proportion to their weights, in the order they are declared (the first is the control).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import redis

from ..clock import to_ms
from ..errors import ConfigError
from ..registry import EVENT_TYPES
from ..schedule import HOLDOUT
from ..store.keys import Keys
from ..timing import CustomerCalendar, SendRule, rule_for
from .events import Event

#: A step's keys that describe its experiment (the step's other keys: ``config.STEP_KEYS``).
EXPERIMENT_KEYS = frozenset({"experiment", "holdout", "goal", "goal_days", "variants", "sample_size"})
#: A variant's own keys; any other key is a send-rule key that overrides the step's.
VARIANT_KEYS = frozenset({"name", "weight", "template"})
#: Days after a send within which a goal event counts, unless the step says otherwise.
GOAL_DAYS = 7


def bucket(experiment: str, customer_id: str) -> float:
    """The customer's place in [0, 1) for the experiment (the first 8 bytes of a SHA-256)."""
    digest = hashlib.sha256(f"{experiment}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class Variant:
    """One arm: its name, weight, template and rule (the step's, with the variant's keys over it)."""

    name: str
    weight: float
    template: str
    rule: Mapping[str, Any]

    @cached_property
    def rule_json(self) -> str:
        return json.dumps(dict(self.rule), sort_keys=True)

    def send_rule(self, calendar: CustomerCalendar | None) -> SendRule:
        return rule_for(self.rule_json, calendar)

    @property
    def is_holdout(self) -> bool:
        return self.name == HOLDOUT


@dataclass(frozen=True)
class Experiment:
    name: str
    #: The variants in declared order; the first is the control.
    variants: tuple[Variant, ...]
    #: The fraction of customers who get nothing (0 <= holdout < 1).
    holdout: float = 0.0
    #: An event type that counts as reaching the goal, within ``goal_days`` after the send.
    goal: str | None = None
    goal_days: int = GOAL_DAYS
    #: Sends per arm decided up front (the stopping rule); 0: not said.
    sample_size: int = 0

    @property
    def control(self) -> Variant:
        return self.variants[0]

    @cached_property
    def holdout_arm(self) -> Variant:
        """The holdout group: planned like the control (same moment), never handed to a provider."""
        return Variant(HOLDOUT, 0.0, self.control.template, self.control.rule)

    @cached_property
    def ranges(self) -> tuple[tuple[Variant, float, float], ...]:
        """(arm, low, high) covering [0, 1): the holdout first (when there is one), then the variants."""
        out: list[tuple[Variant, float, float]] = []
        low = 0.0
        if self.holdout > 0:
            out.append((self.holdout_arm, 0.0, self.holdout))
            low = self.holdout
        total = sum(v.weight for v in self.variants)
        share = 1.0 - low
        for variant in self.variants:
            high = low + share * variant.weight / total
            out.append((variant, low, high))
            low = high
        return tuple(out)

    def arms(self) -> tuple[Variant, ...]:
        """Every arm the report shows: the variants, then the holdout group if there is one."""
        return self.variants + ((self.holdout_arm,) if self.holdout > 0 else ())

    def arm(self, name: str) -> Variant | None:
        return next((a for a in self.arms() if a.name == name), None)

    def assign(self, customer_id: str) -> Variant:
        """The customer's arm: the same every time, in every process."""
        place = bucket(self.name, customer_id)
        for arm, _, high in self.ranges:
            if place < high:
                return arm
        return self.ranges[-1][0]  # rounding at the top end

    def why(self, customer_id: str) -> str:
        """How the customer's arm was chosen, in words (what ``outreach explain`` shows)."""
        place = bucket(self.name, customer_id)
        arm = self.assign(customer_id)
        spans = ", ".join(f"{a.name} [{lo:.3f}, {hi:.3f})" for a, lo, hi in self.ranges)
        return f"bucket {place:.4f} of SHA-256({self.name}:{customer_id}) falls in {arm.name}: {spans}"


def index_experiments(journeys: Iterable[Any]) -> tuple[dict[str, tuple[Any, Any]], set[str]]:
    """Experiment name -> (journey, step) over the journeys, and the event types that are a goal;
    ConfigError when two steps declare the same experiment (an experiment is one step's)."""
    found: dict[str, tuple[Any, Any]] = {}
    for journey in journeys:
        for step in journey.steps:
            experiment = step.experiment
            if experiment is None:
                continue
            first, other = found.setdefault(experiment.name, (journey, step))
            if other is not step:
                where = f"{journey.source}: journey {journey.name!r}: step {step.name!r}"
                raise _fail(where, "experiment", experiment.name, f"already {first.name}.{other.name}'s")
    goals = {step.experiment.goal for _, step in found.values() if step.experiment.goal}
    return found, goals


def _fail(where: str, field: str, value: object, problem: str) -> ConfigError:
    return ConfigError(f"{where}: {field}={value!r}: {problem}")


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_experiment(
    where: str, journey: str, step: str, raw: Mapping[str, Any], template: str, rule: Mapping[str, Any],
    check: Callable[[str, str, Mapping[str, Any]], object],
) -> Experiment | None:  # fmt: skip
    """A step's experiment from its table (None when it declares none). ``check(where, template,
    rule)`` checks a variant's template for the step's channels and its rule, as the step's are."""
    if "variants" not in raw:
        extra = sorted(k for k in EXPERIMENT_KEYS if k in raw)
        if extra:
            raise _fail(where, extra[0], raw[extra[0]], "only a step with [[journey.steps.variants]] has it")
        return None
    name = raw.get("experiment", f"{journey}.{step}")
    if not isinstance(name, str) or not name or any(c in name for c in " :|\n"):
        raise _fail(where, "experiment", name, "must be a name without spaces, ':' or '|'")
    holdout = raw.get("holdout", 0.0)
    if not _number(holdout) or not 0 <= holdout < 1:
        raise _fail(where, "holdout", holdout, "must be a fraction of customers, 0 <= holdout < 1")
    goal = raw.get("goal")
    if goal is not None and goal not in EVENT_TYPES:
        raise _fail(where, "goal", goal, f"must be a declared event type ({', '.join(EVENT_TYPES)})")
    goal_days = raw.get("goal_days", GOAL_DAYS)
    if not isinstance(goal_days, int) or isinstance(goal_days, bool) or not 1 <= goal_days <= 366:
        raise _fail(where, "goal_days", goal_days, "must be a whole number of days from 1 to 366")
    if goal is None and "goal_days" in raw:
        raise _fail(where, "goal_days", goal_days, "needs a goal (the event type it waits for)")
    sample_size = raw.get("sample_size", 0)
    if not isinstance(sample_size, int) or isinstance(sample_size, bool) or sample_size < 0:
        raise _fail(where, "sample_size", sample_size, "must be a whole number of sends per arm")
    table = raw["variants"]
    if not isinstance(table, list) or len(table) < 2:
        raise _fail(where, "variants", table, "an experiment needs at least 2 [[journey.steps.variants]]")
    variants: list[Variant] = []
    for index, item in enumerate(table):
        variants.append(_parse_variant(f"{where}: variants[{index}]", item, template, rule, check))
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise _fail(where, "variants", names, "variant names must be unique")
    return Experiment(name, tuple(variants), float(holdout), goal, goal_days, sample_size)


def _parse_variant(
    where: str, item: object, template: str, rule: Mapping[str, Any],
    check: Callable[[str, str, Mapping[str, Any]], object],
) -> Variant:  # fmt: skip
    if not isinstance(item, dict):
        raise _fail(where, "variant", item, "must be a table")
    name = item.get("name")
    if not isinstance(name, str) or not name.isidentifier():
        raise _fail(where, "name", name, "must be an identifier")
    where = f"{where} ({name})"
    if name == HOLDOUT:
        raise _fail(where, "name", name, "is the holdout group's name: set holdout = <fraction> instead")
    weight = item.get("weight", 1)
    if not _number(weight) or not weight > 0 or weight == float("inf"):
        raise _fail(where, "weight", weight, "must be a number > 0")
    own = item.get("template", template)
    if not isinstance(own, str) or not own:
        raise _fail(where, "template", own, "must be a path under templates/")
    merged = {**rule, **{k: v for k, v in item.items() if k not in VARIANT_KEYS}}
    merged = {k: v for k, v in merged.items() if v != ""}
    check(where, own, merged)
    return Variant(name, float(weight), own, merged)


def record_goals(client: redis.Redis, keys: Keys, goals: Collection[str], events: Iterable[Event]) -> None:
    """Keep the applied events that are an experiment's goal, per customer (the report reads them):
    one pipelined ZADD each, one round trip for a batch; nothing for other events."""
    found = [event for event in events if event.type in goals]
    if not found:
        return
    pipe = client.pipeline(transaction=False)
    for event in found:
        key = keys.goals(event.customer_id)
        pipe.zadd(key, {f"{event.type}|{event.id}": to_ms(event.occurred_at)})
        pipe.sadd(keys.customer_keys(event.customer_id), key)  # erased with the customer
    pipe.execute()
