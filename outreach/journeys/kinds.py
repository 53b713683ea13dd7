"""What a step or a journey may add to a plain timed message (docs/JOURNEYS.md), read from its table.

* ``if``: conditions that must hold when the step would go out (``conditions``);
* ``digest``: one message for the events of a window (``digests``);
* ``send_time = "learned"``: the customer's own best hour (``sendtime``);
* the journey's ``throttle``: at most ``max`` messages a customer per period.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..configfile import read_toml
from ..contracts import Contract
from ..declarations import CATEGORIES_FILE
from ..errors import ConfigError
from ..registry import EVENT_TYPES
from . import conditions

#: Step keys this module reads.
KIND_KEYS = {"if", "digest", "send_time"}
#: Journey keys this module reads.
JOURNEY_KIND_KEYS = {"throttle"}
#: Most events one digest lists (the next event opens the next digest).
MAX_DIGEST_ITEMS = 500
OVERFLOWS = ("drop", "digest")


@dataclass(frozen=True)
class Digest:
    """A step that sends one message for the events of its window: from the first event to the
    moment its rule gives (``hours = 4``, ``at = "18:00"``)."""

    #: A field of the event's data: one digest per value (per order); None: one per customer.
    by: str | None = None
    max_items: int = 50


@dataclass(frozen=True)
class Throttle:
    """At most ``max`` messages of the journey to one customer in any ``period``."""

    max: int
    period: timedelta
    #: What happens to one more: dropped (suppressed, ``throttled``), or listed in the journey's
    #: next digest.
    overflow: str = "drop"

    def describe(self) -> str:
        hours = self.period.total_seconds() / 3600
        period = f"{hours / 24:g} days" if hours % 24 == 0 else f"{hours:g} hours"
        return f"at most {self.max} in {period}"


def _whole(where: str, key: str, value: object, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(f"{where}: {key}={value!r}: must be a whole number from {low} to {high}")
    return value


def parse_digest(where: str, raw: object, contract: Contract, trigger: str) -> Digest | None:
    if raw is None or raw is False:
        return None
    if raw is True:
        return Digest()
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: digest={raw!r}: must be true or a table (by, max_items)")
    for key in raw:
        if key not in ("by", "max_items"):
            raise ConfigError(f"{where}: digest.{key}={raw[key]!r}: unknown field (by, max_items)")
    by = raw.get("by")
    if by is not None and (not isinstance(by, str) or (by not in contract.fields and not contract.open)):
        raise ConfigError(f"{where}: digest.by={by!r}: must name a field of {trigger} "
                          f"({', '.join(contract.fields)})")  # fmt: skip
    items = _whole(where, "digest.max_items", raw.get("max_items", 50), 1, MAX_DIGEST_ITEMS)
    return Digest(by, items)


def parse_send_time(where: str, raw: object, rule: Mapping[str, Any]) -> str | None:
    if raw is None or raw == "step":
        return None
    if raw != "learned":
        raise ConfigError(f'{where}: send_time={raw!r}: must be "learned" (or "step", the default)')
    if "at" not in rule:
        problem = 'the step needs an hour to start from (at = "10:00")'
        raise ConfigError(f'{where}: send_time="learned": {problem}')
    return "learned"


def parse_throttle(where: str, raw: object) -> Throttle | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: throttle={raw!r}: must be a table (max, days or hours, overflow)")
    for key in raw:
        if key not in ("max", "days", "hours", "overflow"):
            known = "max, days, hours, overflow"
            raise ConfigError(f"{where}: throttle.{key}={raw[key]!r}: unknown field ({known})")
    limit = _whole(where, "throttle.max", raw.get("max"), 1, 1000)
    if ("days" in raw) == ("hours" in raw):
        raise ConfigError(f"{where}: throttle: give its period in days or in hours (one of them)")
    if "days" in raw:
        period = timedelta(days=_whole(where, "throttle.days", raw["days"], 1, 366))
    else:
        period = timedelta(hours=_whole(where, "throttle.hours", raw["hours"], 1, 24 * 366))
    overflow = raw.get("overflow", "drop")
    if overflow not in OVERFLOWS:
        raise ConfigError(f"{where}: throttle.overflow={overflow!r}: must be one of {', '.join(OVERFLOWS)}")
    return Throttle(limit, period, overflow)


def step_kinds(
    where: str, raw: Mapping[str, Any], *, names: list[str], index: int, trigger: str,
    supersede_by: str | None, plain: bool, rule: Mapping[str, Any], digests: Collection[str] = (),
) -> dict[str, Any]:  # fmt: skip
    """A step's ``conditions``, ``digest`` and ``send_time`` from its table (``names``: the journey's
    steps in order, this one at ``index``; ``plain``: it neither waits, nor is cancelled by an event,
    nor asks a survey)."""
    contract = EVENT_TYPES[trigger].contract
    found: tuple[conditions.Condition, ...] = ()
    if "if" in raw:
        try:
            after = names[index + 1 :]
            found = conditions.parse(raw["if"], step=names[index], earlier=names[:index], later=after,
                                     contract=contract, trigger=trigger, digests=digests)  # fmt: skip
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    digest = parse_digest(where, raw.get("digest"), contract, trigger)
    if digest and not plain:
        raise ConfigError(f"{where}: digest: a digest step cannot wait for an event (when), be cancelled by "
                          "one (unless) or ask a survey: it collects every event of its window")  # fmt: skip
    if digest and raw.get("cancel_on_exit") is False:
        raise ConfigError(f"{where}: cancel_on_exit=False: a digest step ends with its journey (an exit "
                          "forgets what it collected)")  # fmt: skip
    if digest and raw.get("send_time") is not None:
        raise ConfigError(f"{where}: send_time: a digest goes when its window closes, not at a learned hour")
    if digest and supersede_by:
        raise ConfigError(f"{where}: digest: a journey that supersedes (supersede_by) cannot digest: "
                          "use digest.by to keep one digest per value")  # fmt: skip
    return {
        "conditions": found,
        "digest": digest,
        "send_time": parse_send_time(where, raw.get("send_time"), rule),
    }


def category_throttles(config_dir: Path) -> dict[str, Throttle]:
    """Each category's ``throttle`` in ``config/categories.toml``: at most so many messages of the
    category's journeys together to one customer per period (the overflow is dropped)."""
    path = config_dir / CATEGORIES_FILE
    found: dict[str, Throttle] = {}
    for category, table in read_toml(path).items():
        if isinstance(table, dict) and "throttle" in table:
            throttle = parse_throttle(f"{path}: category {category!r}", table["throttle"])
            if throttle is not None and throttle.overflow != "drop":
                dropped = "a category's overflow is dropped (a journey's may go to its digest)"
                raise ConfigError(
                    f"{path}: category {category!r}: throttle.overflow={throttle.overflow!r}: {dropped}"
                )
            if throttle is not None:
                found[category] = throttle
    return found
