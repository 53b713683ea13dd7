"""A step's conditions read at the moment it would go out (``journeys.conditions`` says what they may
name): every fact is looked up where it is now, and the verdict is written down with each value read.

An earlier step's send is the one planned for the same start of the journey: the same event id
(``<event id>~<step>`` for a step that waited for an event), wherever the send is now, in Redis or in
the archive (``Records``); its answer wherever the answer is (``Surveys``), its clicks wherever
they are (a ``clicked`` lookup).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..archive import Records
from ..customers.profile import TITLE_GENDERS, Customer
from ..journeys.conditions import Condition, dig
from ..journeys.config import Journey, Step
from ..schedule import Send
from ..store.keys import send_id_for
from ..surveys.answers import Surveys


def sibling_id(send: Send, journey: Journey, step: str) -> str:
    """The send id another step of the journey had for the same start as ``send`` (a step that waited
    for an event was planned under ``<start event id>~<step>``)."""
    own = journey.step(send.step)
    start = send.event_id.removesuffix(f"~{own.name}") if own.when else send.event_id
    other = journey.step(step)
    return send_id_for(f"{start}~{step}" if other.when else start, journey.name, step, send.customer_id)


class Facts:
    """Looks up what conditions name, for one send at a time."""

    def __init__(
        self, records: Records, surveys: Surveys, allows: Callable[[Customer, str], bool],
        clicked: Callable[[str], datetime | None] = lambda send_id: None,
    ) -> None:  # fmt: skip
        self.records = records
        self.surveys = surveys
        self.allows = allows
        self.clicked = clicked

    def check(self, send: Send, journey: Journey, step: Step, customer: Customer) -> tuple[bool, str]:
        """(whether every condition holds, a sentence with each condition, the value read and the
        verdict); the conditions are read in order and all of them are reported."""
        lines, held = [], True
        cache: dict[str, dict[str, Any]] = {}
        for condition in step.conditions:
            value = self.value(condition, send, journey, customer, cache)
            earlier = condition.path[0] if condition.kind == "steps" else ""
            if earlier and cache[earlier]["holdout"]:
                # Held out of an experiment: nothing that follows that step goes to the customer either.
                return False, f"steps.{earlier} was held out of its experiment: nothing that follows it goes"
            ok, why = condition.holds(value)
            held = held and ok
            lines.append(f"{condition.text!r} {'holds' if ok else 'does not hold'} ({why})")
        return held, "; ".join(lines)

    def value(
        self, condition: Condition, send: Send, journey: Journey, customer: Customer,
        cache: dict[str, dict[str, Any]],
    ) -> Any:  # fmt: skip
        kind, path = condition.kind, condition.path
        if kind == "data":
            return dig(send.data, path)
        if kind == "profile":
            return _profile(customer, path[0])
        if kind == "attributes":
            return customer.attributes.get(path[0])
        if kind == "consent":
            return self.allows(customer, path[0])
        step, fact = path
        if step not in cache:
            cache[step] = self._outcome(sibling_id(send, journey, step))
        return cache[step][fact]

    def _outcome(self, send_id: str) -> dict[str, Any]:
        """What conditions may ask about one send (``journeys.conditions.STEP_FACTS``)."""
        earlier = self.records.get(send_id)
        answer = self.surveys.get(send_id) if earlier is not None else None
        state = earlier.state.value if earlier is not None else "none"
        return {
            "state": state,
            "delivered": state == "delivered",
            "bounced": earlier is not None and earlier.receipt == "bounced",
            "clicked": earlier is not None and self.clicked(send_id) is not None,
            "answered": answer is not None,
            "score": answer.score if answer else None,
            "band": answer.band if answer else None,
            "receipt": (earlier.receipt or None) if earlier is not None else None,
            "holdout": earlier is not None and earlier.reason == "holdout",
        }


def _profile(customer: Customer, name: str) -> Any:
    if name == "language":
        return customer.locale.replace("-", "_").split("_", 1)[0]
    if name == "register":
        return customer.formality
    if name == "gender":
        return customer.gender or TITLE_GENDERS.get(customer.title or "")
    return getattr(customer, name)
