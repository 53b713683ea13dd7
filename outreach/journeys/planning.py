"""One journey step for one customer and event: its local moment (``timing.resolve``), the intent its
send keeps, and its send id. Ingestion plans them (``ingest.py``), in batches or one by one."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..customers.profile import Customer
from ..errors import TimingError
from ..schedule import Intent
from ..store.keys import send_id_for
from ..timing import resolve, rule_for
from .config import Journey, Step
from .sendtime import learned_json


class Steps:
    """Resolves steps; keeps each intent it builds (one per step, zone, country and event type)."""

    def __init__(self) -> None:
        #: (step, intent) by (step, zone, country, event type, experiment arm, learned rule).
        self._intents: dict[tuple[int, str, str, str, str, str], tuple[Step, Intent]] = {}

    def resolve(
        self, journey: Journey, step: Step, customer: Customer, event_id: str, event_type: str,
        start: datetime, data: Mapping[str, Any], notes: list[str],
        hours: Mapping[str, Counter[int]] | None = None,
    ) -> tuple[str, datetime, Intent] | None:  # fmt: skip
        """(send id, due, intent) of one step for the event; None, noted in ``notes``, when it cannot be
        planned. ``hours``: the customer's engagement, for a step that learns its send time."""
        # In an experiment the customer's arm (the same one every time) gives the template and rule.
        arm = step.experiment.assign(customer.id) if step.experiment else None
        base = (arm or step).rule_json
        learned = learned_json(base, hours) if step.send_time == "learned" and hours is not None else ""
        rule = rule_for(learned, customer.calendar) if learned else (arm or step).send_rule(customer.calendar)
        try:
            resolution = resolve(rule, rule.start(start, data, customer.zone), customer.zone)
        except TimingError as exc:
            notes.append(f"{journey.name}.{step.name} not planned: {exc}")
            return None
        if rule.backward and resolution.utc < start:
            notes.append(
                f"{journey.name}.{step.name} not planned: {rule.days} days before data.{rule.anchor} "
                f"({resolution.local.isoformat()}) is already past"
            )
            return None
        # The step itself is kept with its intent: a reloaded journey's steps are new objects.
        which = (
            id(step),
            customer.zone,
            customer.country or "",
            event_type,
            arm.name if arm else "",
            learned,
        )
        step_and_intent = self._intents.get(which)
        if step_and_intent is not None and step_and_intent[0] is step:
            intent = step_and_intent[1]
        else:
            intent = Intent(
                journey=journey.name,
                step=step.name,
                category=journey.category,
                template=(arm or step).template,
                channels=json.dumps(step.channels),
                rule=learned or (arm or step).rule_json,
                survey=step.survey or "",
                event_type=event_type,
                zone=customer.zone,
                country=customer.country or "",
                experiment=step.experiment.name if step.experiment else "",
                variant=arm.name if arm else "",
            )
            if len(self._intents) >= 10_000:  # steps of earlier configs, zones no longer seen
                self._intents.clear()
            self._intents[which] = (step, intent)
        return send_id_for(event_id, journey.name, step.name, customer.id), resolution.utc, intent
