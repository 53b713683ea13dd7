"""Journeys declared in TOML under config/: validated once at start-up, then matched to events."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cached_property, partial
from pathlib import Path
from typing import Any

from ..configfile import read_toml
from ..declarations import declare
from ..errors import ConfigError, InputError
from ..registry import CATEGORIES, CHANNELS, EVENT_TYPES
from ..store.keys import step_digest
from ..surveys.scales import SCALES
from ..timing import CustomerCalendar, SendRule, rule_for
from . import conditions, fields
from .experiments import EXPERIMENT_KEYS, Experiment, index_experiments, parse_experiment
from .kinds import (
    JOURNEY_KIND_KEYS,
    KIND_KEYS,
    Digest,
    Throttle,
    category_throttles,
    parse_throttle,
    step_kinds,
)
from .rulekeys import check_json, check_rule, check_template, load_category_defaults, template_file

#: Keys of a step (besides the send rule's own keys).
STEP_KEYS = {"name", "template", "channels", "cancel_on_exit", "survey", "when", "within_days", "unless",
             *KIND_KEYS, *EXPERIMENT_KEYS}  # fmt: skip
#: Keys of the [journey] table.
JOURNEY_KEYS = {
    "name",
    "description",
    "category",
    "trigger",
    "exit_on",
    "supersede_by",
    "every_days",
    "defaults",
    "steps",
    "sample",
    "match",
    *JOURNEY_KIND_KEYS,
}


@dataclass(frozen=True)
class Step:
    name: str
    template: str
    channels: tuple[str, ...]
    #: The rule's keys as configured (category, journey and step merged).
    rule: Mapping[str, Any]
    cancel_on_exit: bool = True
    #: csat, nps or ces when the step is a survey (its message carries answer links).
    survey: str | None = None
    #: Planned only when this event comes within ``within_days`` of the journey's start, its rule
    #: counted from that event (the "it came" branch).
    when: str | None = None
    within_days: int | None = None
    #: Cancelled when this event comes before the step is sent (the "timed out" branch).
    unless: str | None = None
    #: What must hold when it would go out (``if``: ``conditions``).
    conditions: tuple[conditions.Condition, ...] = ()
    #: One message for the events of a window (``kinds.Digest``), or None.
    digest: Digest | None = None
    #: "learned": the customer's own best hour (``sendtime``); None: the step's hour.
    send_time: str | None = None
    #: Variants of the step and who gets which (``journeys.experiments``).
    experiment: Experiment | None = None

    @cached_property
    def rule_json(self) -> str:
        """The rule as configured, as canonical JSON (how sends keep it)."""
        return json.dumps(dict(self.rule), sort_keys=True)

    def send_rule(self, calendar: CustomerCalendar | None) -> SendRule:
        """The step's rule for one customer (``"customer"`` values take theirs: ``rule_for``)."""
        return rule_for(self.rule_json, calendar)


@dataclass(frozen=True)
class Journey:
    name: str
    category: str
    trigger: str
    steps: tuple[Step, ...]
    exit_on: tuple[str, ...] = ()
    #: Field of the event's data naming what a newer event supersedes (e.g. ``order_id``).
    supersede_by: str | None = None
    #: For recurring journeys: days after the customer's last contact.
    every_days: int | None = None
    description: str = ""
    source: str = ""
    #: Example event data for previews and catalog checks.
    sample: Mapping[str, Any] | None = None
    #: Event data the trigger must carry to start the journey (e.g. detractor = true).
    match: Mapping[str, Any] | None = None
    #: At most so many messages of the journey to one customer per period.
    throttle: Throttle | None = None
    #: At most so many messages of its category's journeys together (``config/categories.toml``).
    category_throttle: Throttle | None = None

    @cached_property
    def digest_step(self) -> Step | None:
        return next((step for step in self.steps if step.digest), None)

    def matches(self, data: Mapping[str, Any]) -> bool:
        return all(data.get(k) == v for k, v in (self.match or {}).items())

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)


class Journeys:
    """All journeys, indexed by the event types that start or end them."""

    def __init__(self, journeys: list[Journey]) -> None:
        self.all = {j.name: j for j in journeys}
        self.by_trigger: dict[str, list[Journey]] = {}
        self.by_exit: dict[str, list[Journey]] = {}
        #: Steps waiting for an event (``when``), and steps an event cancels (``unless``).
        self.by_when: dict[str, list[tuple[Journey, Step]]] = {}
        self.by_unless: dict[str, list[tuple[Journey, Step]]] = {}
        #: Experiment name -> (journey, step); the event types that are a goal (ingestion keeps them).
        self.experiments, self.goals = index_experiments(journeys)
        for journey in journeys:
            self.by_trigger.setdefault(journey.trigger, []).append(journey)
            for event_type in journey.exit_on:
                self.by_exit.setdefault(event_type, []).append(journey)
            for step in journey.steps:
                if step.when:
                    self.by_when.setdefault(step.when, []).append((journey, step))
                if step.unless:
                    self.by_unless.setdefault(step.unless, []).append((journey, step))

    def __getitem__(self, name: str) -> Journey:
        return self.all[name]

    def __iter__(self):
        return iter(self.all.values())

    def recurring(self) -> list[Journey]:
        return [j for j in self.all.values() if j.every_days]

    def channels(self) -> set[str]:
        """Every channel a step sends on."""
        return {channel for j in self.all.values() for step in j.steps for channel in step.channels}

    def steps(self) -> set[str]:
        """Every step, as "journey.step"."""
        return {f"{j.name}.{step.name}" for j in self.all.values() for step in j.steps}


def _fail(where: str, field: str, value: object, problem: str) -> ConfigError:
    return ConfigError(f"{where}: {field}={value!r}: {problem}")


def _parse_journey(path: Path, data: dict[str, Any], categories, templates_dir: Path) -> Journey:
    table = data.get("journey")
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: needs a [journey] table")
    name = table.get("name")
    if not isinstance(name, str) or not name.isidentifier():
        raise _fail(f"{path}: journey", "name", name, "must be an identifier (letters, _)")
    where = f"{path}: journey {name!r}"
    if name == "broadcast":
        raise _fail(where, "name", name, "is the journey of every broadcast's sends: pick another")
    for key in table:
        if key not in JOURNEY_KEYS:
            raise _fail(where, key, table[key], "unknown field")
    category = table.get("category")
    if category is None or category not in CATEGORIES:
        raise _fail(where, "category", category, f"must be one of {', '.join(CATEGORIES)}")
    trigger = table.get("trigger")
    if trigger is None or trigger not in EVENT_TYPES:
        raise _fail(where, "trigger", trigger, f"must be one of {', '.join(EVENT_TYPES)}")
    exit_on = table.get("exit_on", [])
    if not isinstance(exit_on, list) or any(e not in EVENT_TYPES for e in exit_on):
        raise _fail(where, "exit_on", exit_on, "must be a list of known event types")
    supersede_by = table.get("supersede_by")
    if supersede_by is not None and not isinstance(supersede_by, str):
        raise _fail(where, "supersede_by", supersede_by, "must be the name of a data field")
    every_days = table.get("every_days")
    if every_days is not None:
        if not isinstance(every_days, int) or isinstance(every_days, bool) or every_days < 1:
            raise _fail(where, "every_days", every_days, "must be a whole number of days >= 1")
        if trigger != "customer.checkin_due":
            raise _fail(where, "trigger", trigger, "a recurring journey is triggered by customer.checkin_due")
    match = table.get("match", {})
    if not isinstance(match, dict):
        raise _fail(where, "match", match, "must be a table of event data values")
    sample = table.get("sample", {})
    if not isinstance(sample, dict):
        raise _fail(where, "sample", sample, "must be a table of example event data")
    defaults = table.get("defaults", {})
    if not isinstance(defaults, dict):
        raise _fail(where, "defaults", defaults, "must be a table of rule keys")
    steps_data = table.get("steps")
    if not isinstance(steps_data, list) or not steps_data:
        raise _fail(where, "steps", steps_data, "needs at least one [[journey.steps]]")
    steps: list[Step] = []
    for index, raw in enumerate(steps_data):
        steps.append(
            _parse_step(
                f"{where}: steps[{index}]",
                name,
                raw,
                {**categories.get(category, {}), **defaults},
                templates_dir,
            )
        )
    names = [s.name for s in steps]
    if len(set(names)) != len(names):
        raise _fail(where, "steps", names, "step names must be unique")
    steps = _kinds(where, steps, steps_data, trigger, supersede_by)
    throttle = parse_throttle(where, table.get("throttle"))
    if throttle and throttle.overflow == "digest" and not any(s.digest for s in steps):
        raise _fail(where, "throttle.overflow", "digest", "the journey has no digest step to merge into")
    sample = _check_data(where, trigger, steps, templates_dir, sample, match, supersede_by)
    return Journey(
        name=name,
        category=category,
        trigger=trigger,
        steps=tuple(steps),
        exit_on=tuple(exit_on),
        supersede_by=supersede_by,
        every_days=every_days,
        description=str(table.get("description", "")),
        source=str(path),
        sample=sample,
        match=match,
        throttle=throttle,
    )


def _kinds(where: str, steps: list[Step], raw_steps: list, trigger: str, supersede: str | None) -> list[Step]:
    """The steps with what ``kinds`` reads from their tables: conditions, digest, send time."""
    names = [step.name for step in steps]
    digests = {step.name for step, raw in zip(steps, raw_steps, strict=True) if raw.get("digest")}
    return [
        replace(
            step,
            **step_kinds(
                f"{where}: steps[{i}] ({step.name})",
                raw,
                names=names,
                index=i,
                trigger=trigger,
                supersede_by=supersede,
                plain=not (step.when or step.unless or step.survey),
                rule=step.rule,
                digests=digests,
            ),
        )  # fmt: skip
        for i, (step, raw) in enumerate(zip(steps, raw_steps, strict=True))
    ]


def _check_data(
    where: str,
    trigger: str,
    steps: list[Step],
    templates_dir: Path,
    sample: dict,
    match: dict,
    supersede_by: str | None,
) -> dict[str, Any]:
    """The journey's use of event data against its trigger's contract; returns the sample data
    (the journey's own, else the contract's examples)."""
    contract = EVENT_TYPES[trigger].contract
    for key, named in [
        *((k, f"match.{k}") for k in match),
        *((k, "supersede_by") for k in [supersede_by] if k),
    ]:
        if key not in contract.fields and not contract.open:
            raise _fail(where, named, key, f"{trigger} carries no such field ({', '.join(contract.fields)})")
    for step in steps:
        awaited = EVENT_TYPES[step.when].contract if step.when else None
        if awaited and supersede_by and supersede_by not in awaited.fields and not awaited.open:
            needs = f"must carry data.{supersede_by} (the journey's supersede_by) to find its start"
            raise _fail(f"{where}: step {step.name!r}", "when", step.when, needs)
        rule = step.send_rule(None)
        anchor = rule.anchor
        spec = contract.fields.get(anchor) if anchor else None
        if anchor and (spec is None and not contract.open or spec and spec.type not in ("date", "datetime")):
            key = "before" if rule.backward else "after"
            raise _fail(f"{where}: step {step.name!r}", key, anchor,
                        f"must name a date or datetime field of {trigger} (config/events.toml)")  # fmt: skip
        variants = step.experiment.variants if step.experiment else ()
        for template in dict.fromkeys([step.template, *(v.template for v in variants)]):
            for channel in step.channels:
                for part in CHANNELS[channel].parts:
                    path = template_file(templates_dir, template, channel, part)
                    found = fields.problems(path, contract, trigger) if path else []
                    if found:
                        raise ConfigError(f"{where}: step {step.name!r}: {found[0]}")
    if not sample:
        return contract.example()
    try:
        contract.check(sample)
    except InputError as exc:
        raise _fail(where, f"sample.{exc.field.removeprefix('data.')}", exc.value, exc.problem) from None
    return sample


def _parse_step(where: str, journey: str, raw: object, defaults: dict, templates_dir: Path) -> Step:
    if not isinstance(raw, dict):
        raise _fail(where, "step", raw, "must be a table")
    name = raw.get("name")
    if not isinstance(name, str) or not name.isidentifier():
        raise _fail(where, "name", name, "must be an identifier")
    where = f"{where} ({name})"
    channels = raw.get("channels", ["email"])
    if not isinstance(channels, list) or not channels or any(c not in CHANNELS for c in channels):
        raise _fail(where, "channels", channels, f"must list channels among {', '.join(CHANNELS)}")
    template = raw.get("template", f"{journey}/{name}")
    if not isinstance(template, str):
        raise _fail(where, "template", template, "must be a path under templates/")
    check_template(where, template, channels=channels, templates_dir=templates_dir)
    survey = raw.get("survey")
    if survey is not None and survey not in SCALES:
        raise _fail(where, "survey", survey, f"must be one of {', '.join(SCALES)}")
    cancel_on_exit = raw.get("cancel_on_exit", True)
    if not isinstance(cancel_on_exit, bool):
        raise _fail(where, "cancel_on_exit", cancel_on_exit, "must be true or false")
    when, within_days, unless = raw.get("when"), raw.get("within_days"), raw.get("unless")
    for key, value in (("when", when), ("unless", unless)):
        if value is not None and value not in EVENT_TYPES:
            raise _fail(where, key, value, f"must be a declared event type ({', '.join(EVENT_TYPES)})")
    if (when is None) != (within_days is None):
        raise _fail(
            where, "within_days", within_days, "a step that waits (when) says for how long (within_days)"
        )
    if within_days is not None and (
        not isinstance(within_days, int) or isinstance(within_days, bool) or not 1 <= within_days <= 3660
    ):
        raise _fail(where, "within_days", within_days, "must be a whole number of days from 1 to 3660")
    rule = {**defaults, **{k: v for k, v in raw.items() if k not in STEP_KEYS}}
    # An empty value switches a default off (e.g. holidays = "" on an urgent step).
    rule = {k: v for k, v in rule.items() if v != ""}
    check_json(where, rule)
    check_rule(where, rule)
    check = partial(check_template, channels=channels, templates_dir=templates_dir)
    experiment = parse_experiment(where, journey, name, raw, template, rule, check)
    return Step(name, template, tuple(channels), rule, cancel_on_exit, survey, when, within_days, unless,
                experiment=experiment)  # fmt: skip


def load_journeys(config_dir: Path, templates_dir: Path) -> Journeys:
    """Read and validate every ``config/journeys/*.toml``; errors name file, journey and field.

    The project's event types, categories and channels are declared first (``declarations``).
    """
    declare(config_dir)
    categories = load_category_defaults(config_dir)
    throttles = category_throttles(config_dir)
    journeys: list[Journey] = []
    seen: dict[str, Path] = {}
    folder = config_dir / "journeys"
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no journeys folder")
    for path in sorted(folder.glob("*.toml")):
        journey = _parse_journey(path, read_toml(path), categories, templates_dir)
        journey = replace(journey, category_throttle=throttles.get(journey.category))
        if journey.name in seen:
            raise _fail(
                f"{path}: journey {journey.name!r}",
                "name",
                journey.name,
                f"already declared in {seen[journey.name]}",
            )
        seen[journey.name] = path
        journeys.append(journey)
    digests: dict[str, str] = {}
    for journey in journeys:
        for step in journey.steps:
            # Send ids carry a short digest of the step: two steps must never share one.
            name = f"{journey.name}.{step.name}"
            other = digests.setdefault(step_digest(journey.name, step.name), name)
            if other != name:
                raise _fail(f"{seen[journey.name]}: journey {journey.name!r}", "step", step.name,
                            f"its send id digest is the same as {other}'s: rename one of them")  # fmt: skip
    return Journeys(journeys)
