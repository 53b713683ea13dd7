"""The report's data model: ``Figures`` (counts and the scores computed from them), ``Day``,
``Depth`` and ``Report``; ``build.py`` fills them in."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..languages import parse_locale
from ..surveys.scales import SCALES
from .experiments import ExperimentFigures

if TYPE_CHECKING:  # pragma: no cover - only for annotations (app imports much)
    pass

#: What a report may be grouped by.
GROUPINGS = ("locale", "journey", "channel", "country")
#: The breakdown a report carries when no grouping is asked for.
DEFAULT_GROUPING = "locale"
#: Survey kinds, in display order.
KINDS = SCALES.names()
#: Final states of a send, in display order.
STATES = ("delivered", "suppressed", "failed", "cancelled")
#: Days a report covers when no start is given.
DEFAULT_DAYS = 30
#: Days of schedule depth shown ahead.
DEPTH_DAYS = 14
#: Sends (and profiles) read per pipelined round trip.
BATCH = 500
#: The group of a send or answer that lacks the grouping field.
UNKNOWN = "(none)"
#: Shown for a figure that has nothing to be computed from.
DASH = "–"


def language_of(tag: str) -> str:
    """The language (and script, where the locale has one) of a locale tag.

    ``he_IL`` → ``he``, ``pt-BR`` → ``pt``, ``zh_Hans_CN`` and ``zh_CN`` → ``zh_Hans``,
    ``zh_TW`` → ``zh_Hant``. A tag Babel does not know is kept as it is.
    """
    if not tag:
        return ""
    try:
        locale = parse_locale(tag)
    except InputError:
        return tag
    return f"{locale.language}_{locale.script}" if locale.script else locale.language


# -- figures --------------------------------------------------------------------------------


def _percent(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None


@dataclass
class Figures:
    """Counts for one slice (overall, a group or a day) and the scores computed from them."""

    answers: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    #: Sum of scores per kind (the CES average uses it).
    score_sums: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    #: Answers in the positive band per kind (CSAT 4–5, NPS promoters 9–10, CES 5–7).
    positive: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    #: Answers in the detractor band per kind (CSAT 1–2, NPS 0–6, CES 1–3).
    detractors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    #: Survey sends delivered in the period, per kind.
    delivered_surveys: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    #: Sends by final state.
    states: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATES, 0))
    #: Sends by reason code (``ok`` for delivered ones).
    reasons: dict[str, int] = field(default_factory=dict)
    #: Delivered sends by the furthest receipt their provider sent (bounced, complained, read...).
    receipts: dict[str, int] = field(default_factory=dict)

    # -- adding -----------------------------------------------------------------------------

    def add_answer(self, kind: str, score: int, n: int = 1) -> None:
        scale = SCALES.get(kind)
        if scale is None:
            return
        self.answers[kind] += n
        self.score_sums[kind] += score * n
        band = scale.band(score)
        if band == "positive":
            self.positive[kind] += n
        elif band == "detractor":
            self.detractors[kind] += n

    def add_send(self, state: str, reason: str, survey: str, receipt: str = "", n: int = 1) -> None:
        self.states[state] = self.states.get(state, 0) + n
        self.reasons[reason] = self.reasons.get(reason, 0) + n
        if receipt:
            self.receipts[receipt] = self.receipts.get(receipt, 0) + n
        if state == "delivered" and survey in self.delivered_surveys:
            self.delivered_surveys[survey] += n

    # -- scores -----------------------------------------------------------------------------

    def score(self, kind: str) -> float | None:
        """The figure of a survey kind (``Scale.figure``): CSAT % positive, NPS, CES average."""
        return SCALES[kind].compute(
            self.answers[kind], self.positive[kind], self.detractors[kind], self.score_sums[kind]
        )

    @property
    def csat(self) -> float | None:
        return self.score("csat")

    @property
    def nps(self) -> float | None:
        return self.score("nps")

    @property
    def ces(self) -> float | None:
        return self.score("ces")

    def response_rate(self, kind: str) -> float | None:
        """Answers / delivered survey sends of a kind, in %; None without a delivered one."""
        return _percent(self.answers[kind], self.delivered_surveys[kind])

    @property
    def total_answers(self) -> int:
        return sum(self.answers.values())

    @property
    def sends(self) -> int:
        return sum(self.states.values())

    def to_mapping(self) -> dict[str, Any]:
        return {
            **{kind: self.score(kind) for kind in KINDS},
            "answers": {**self.answers, "total": self.total_answers},
            "positive": dict(self.positive),
            "detractors": dict(self.detractors),
            "score_sums": dict(self.score_sums),
            "delivered_surveys": dict(self.delivered_surveys),
            "response_rate": {kind: self.response_rate(kind) for kind in KINDS},
            "outcomes": {
                "sends": self.sends,
                "states": dict(self.states),
                "reasons": dict(sorted(self.reasons.items())),
                "receipts": dict(sorted(self.receipts.items())),
            },
        }


@dataclass
class StepClicks:
    """One journey step's delivered sends and how many of them were clicked (unique sends)."""

    journey: str
    step: str
    delivered: int = 0
    clicked: int = 0

    @property
    def rate(self) -> float | None:
        """Clicked / delivered sends, in %; None without a delivered one."""
        return _percent(self.clicked, self.delivered)

    def to_mapping(self) -> dict[str, Any]:
        return {"journey": self.journey, "step": self.step, "delivered": self.delivered,
                "clicked": self.clicked, "click_rate": self.rate}  # fmt: skip


@dataclass(frozen=True)
class Day:
    """One UTC day of the trend."""

    day: date
    figures: Figures

    def to_mapping(self) -> dict[str, Any]:
        return {"date": self.day.isoformat(), **self.figures.to_mapping()}


@dataclass(frozen=True)
class Depth:
    """Sends waiting in the schedule, per UTC day ahead."""

    #: When it was counted; day 0 runs from here to the next UTC midnight.
    start: datetime
    #: (UTC day, sends due that day) for ``DEPTH_DAYS`` days.
    days: tuple[tuple[date, int], ...]
    #: Due before ``start`` and not yet claimed.
    overdue: int
    #: Due after the last day shown.
    later: int
    #: Claimed by a worker right now.
    in_flight: int

    @property
    def total(self) -> int:
        return self.overdue + sum(n for _, n in self.days) + self.later

    def to_mapping(self) -> dict[str, Any]:
        return {
            "start": _iso(self.start),
            "days": [{"date": d.isoformat(), "due": n} for d, n in self.days],
            "overdue": self.overdue,
            "later": self.later,
            "in_flight": self.in_flight,
            "total": self.total,
        }


@dataclass(frozen=True)
class BroadcastLine:
    """One broadcast created in the period, with its counts so far (not only the period's)."""

    id: str
    name: str
    state: str
    moment: str
    recipients: int
    #: Final states of its sends (``STATES``) so far.
    states: dict[str, int]
    waiting: int

    def to_mapping(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "state": self.state, "moment": self.moment,
                "recipients": self.recipients, **{s: self.states.get(s, 0) for s in STATES},
                "waiting": self.waiting}  # fmt: skip


@dataclass(frozen=True)
class Report:
    since: datetime
    until: datetime
    generated_at: datetime
    #: The grouping asked for (None: overall figures only were asked for).
    by: str | None
    #: The grouping of ``groups``: ``by``, or ``DEFAULT_GROUPING`` (locale) when ``by`` is None.
    group_by: str
    overall: Figures
    #: Group value -> figures, sorted by value.
    groups: dict[str, Figures]
    #: One entry per UTC day of the period, in order.
    days: tuple[Day, ...]
    depth: Depth
    #: The experiments whose sends finished in the period (``experiments``).
    experiments: list[ExperimentFigures] = field(default_factory=list)
    #: ``journey.step`` -> its sends delivered in the period and clicked, sorted by name.
    clicks: dict[str, StepClicks] = field(default_factory=dict)
    #: The broadcasts created in the period, oldest first.
    broadcasts: tuple[BroadcastLine, ...] = ()

    def to_mapping(self) -> dict[str, Any]:
        return {
            "period": {"since": _iso(self.since), "until": _iso(self.until)},
            "generated_at": _iso(self.generated_at),
            "by": self.by,
            "group_by": self.group_by,
            "overall": self.overall.to_mapping(),
            "groups": {name: figures.to_mapping() for name, figures in self.groups.items()},
            "trend": [day.to_mapping() for day in self.days],
            "schedule_depth": self.depth.to_mapping(),
            "experiments": {e.name: e.to_mapping() for e in self.experiments},
            "clicks": [step.to_mapping() for step in self.clicks.values()],
            "broadcasts": [line.to_mapping() for line in self.broadcasts],
        }


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
