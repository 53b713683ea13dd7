"""Sends planned under an earlier version of a journey, when the journeys have changed since.

A send keeps the intent it was planned with (``schedule.send.Intent``). When it comes
due, the journeys loaded now decide (docs/DELIVERY.md, "When a journey changes"):

* a step that is gone (its journey removed, or the step) ends the send ``cancelled``
  with reason ``step_removed``: never a template error days later;
* a step whose **rule** changed is re-planned: the new rule is resolved from the same
  start, and the send waits for that moment (or goes now, if it has come);
* a step whose **template** changed renders the new one; a template (new, or edited in
  place) that reads a field the send's event did not carry ends the send ``cancelled``
  with reason ``step_changed``, saying which field;
* the category, channels and survey stay as planned: what the customer was going to
  get, under the consent of then. New events get the step as it is now.

Each change is written to the send's history (``step_changed``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from weakref import WeakKeyDictionary

from ..broadcasts import JOURNEY as BROADCAST
from ..clock import to_ms
from ..journeys.config import Journeys
from ..journeys.fields import uses
from ..journeys.sendtime import as_configured
from ..localization.render import Renderer
from ..schedule import Send, log_entry
from ..timing import resolve


@dataclass
class Current:
    """The send as the current configuration has it, and the history notes that say why."""

    send: Send
    notes: list[str] = field(default_factory=list)
    #: Why it cannot be sent as configured now (its template needs data its event did not carry).
    unfit: str = ""


#: The event data fields each template of a renderer reads unguarded, worked out once per renderer.
_NEEDED: WeakKeyDictionary[Renderer, dict[str, frozenset[str]]] = WeakKeyDictionary()


def needed_fields(renderer: Renderer, template: str) -> frozenset[str]:
    """The data fields ``template`` (every part, every channel) reads without checking for them."""
    known = _NEEDED.setdefault(renderer, {})
    if template not in known:
        known[template] = frozenset(
            use.field for source in renderer.sources_of(template) for use in uses(source) if not use.guarded
        )
    return known[template]


def current(send: Send, journeys: Journeys, now: datetime, renderer: Renderer) -> Current | None:
    """The send with its step's configuration of now; None when the step was removed."""
    if send.journey == BROADCAST:
        return Current(as_planned(send))
    journey = journeys.all.get(send.journey)
    step = next((s for s in journey.steps if s.name == send.step), None) if journey else None
    if journey is None or step is None:
        return None
    # A template edited to read a field the send's event did not carry (a contract that grew) would
    # fail to render: the send ends here instead, saying so.
    # A send of an experiment follows its arm as configured now (the arm gone: as it was planned).
    arm = step.experiment.arm(send.intent.variant) if step.experiment and send.intent.variant else None
    now_as = arm or (None if send.intent.variant else step)
    template, rule = (now_as.template, now_as.rule_json) if now_as else (send.template, send.intent.rule)
    missing = sorted(needed_fields(renderer, template) - set(send.data))
    if missing:
        fields_ = ", ".join(f"data.{name}" for name in missing)
        reads = f"its template {template} now reads {fields_}"
        return Current(
            send, unfit=f"{send.journey}.{send.step}: {reads}, which this send's event did not carry"
        )
    intent = send.intent
    if intent.template == template and as_configured(intent.rule) == rule:
        return Current(send)  # the usual case (a send time learned for the customer too): nothing to build
    now_intent = replace(intent, template=template, rule=rule)
    changed = [
        f"{name} {old} -> {new}"
        for name, old, new in (
            ("template", intent.template, now_intent.template),
            ("rule", intent.rule, now_intent.rule),
        )
        if old != new
    ]
    what = "; ".join(changed)
    text = (
        f"{send.journey}.{send.step} changed since it was planned ({what}): it follows the step as it is now"
    )
    return Current(replace(send, intent=now_intent), [log_entry(now, "step_changed", text)])


def removed_text(send: Send) -> str:
    return f"{send.journey}.{send.step} is no longer in the journeys (config/journeys): nothing is sent"


def as_planned(send: Send) -> Send:
    """A broadcast's send goes as it was planned (it is no step of the journeys). Its rate may have
    spread its due time past the instant its rule names: that instant stays the one it is late from,
    as long as the spread time is inside the rule's quiet hours. One spread past them (a rate too
    slow for the window) is left as it is: the policy then moves it to the rule's next local moment."""
    rule = send.intent.send_rule()
    instant = resolve(rule, rule.start(send.start, send.data, send.zone), send.zone).utc
    due = to_ms(send.due)
    if due != to_ms(instant) and to_ms(resolve(rule.quiet_hours(), send.due, send.zone).utc) != due:
        return send
    return replace(send, resolved=instant)
