"""The report's data model (``Figures``, ``Day``, ``Depth``, ``Report``) and ``build_report``.

``build_report(app, since, until, by)`` reads two things for the period
``[since, until]`` (both ends included, UTC milliseconds):

- the survey answers whose latest change falls in it (``Surveys.between``);
- the sends whose *final* state was recorded in it: the ``outcomes`` zset by
  score, their hashes read with ``HMGET`` in pipelined batches.

It also counts the sends due over the coming days from the ``due`` zset, one
``ZCOUNT`` per UTC day, never loading the set. docs/INSIGHTS.md has the definitions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from ..clock import from_ms, to_ms
from ..errors import InputError
from ..languages import parse_locale
from ..schedule import FINAL_STATES, Send
from ..surveys.answers import Answer
from ..surveys.scales import SCALES

if TYPE_CHECKING:  # pragma: no cover - only for annotations (app imports much)
    from ..app import Outreach

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

    def add_answer(self, kind: str, score: int) -> None:
        scale = SCALES.get(kind)
        if scale is None:
            return
        self.answers[kind] += 1
        self.score_sums[kind] += score
        band = scale.band(score)
        if band == "positive":
            self.positive[kind] += 1
        elif band == "detractor":
            self.detractors[kind] += 1

    def add_send(self, state: str, reason: str, survey: str, receipt: str = "") -> None:
        self.states[state] = self.states.get(state, 0) + 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1
        if receipt:
            self.receipts[receipt] = self.receipts.get(receipt, 0) + 1
        if state == "delivered" and survey in self.delivered_surveys:
            self.delivered_surveys[survey] += 1

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
        }


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- building -------------------------------------------------------------------------------


def _check_instant(name: str, value: datetime | None) -> None:
    if value is not None and (not isinstance(value, datetime) or value.utcoffset() is None):
        raise InputError(name, value, "must be an aware datetime (with a UTC offset)")


def _period(app: Outreach, since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    _check_instant("since", since)
    _check_instant("until", until)
    until = (until or app.clock.now()).astimezone(UTC)
    since = (since or until - timedelta(days=DEFAULT_DAYS)).astimezone(UTC)
    if since > until:
        raise InputError("since", _iso(since), f"is after until ({_iso(until)})")
    return since, until


def _final_sends(app: Outreach, low: int, high: int) -> Iterable[list[tuple[str, int, Send]]]:
    """Batches of (send id, final UTC ms, send) of the sends whose final state falls in [low, high]."""
    for rows in app.schedule.finished_between(low, high, BATCH):
        sends = app.schedule.get_many([send_id for send_id, _ in rows])
        # A send erased since leaves no record: it is not counted.
        yield [
            (send_id, ms, send) for (send_id, ms), send in zip(rows, sends, strict=True) if send is not None
        ]


def _profiles(app: Outreach, customer_ids: Iterable[str], cache: dict[str, tuple[str, str]]) -> None:
    """Fill ``cache`` with customer id -> (language, country) for ids not yet in it."""
    wanted = [c for c in dict.fromkeys(customer_ids) if c and c not in cache]
    for i in range(0, len(wanted), BATCH):
        chunk = wanted[i : i + BATCH]
        found = app.customers.get_many(chunk)
        for customer_id in chunk:
            customer = found.get(customer_id)
            cache[customer_id] = (
                (language_of(customer.locale), customer.country or "") if customer else ("", "")
            )


def _send_group(send: Send, group_by: str, profiles: Mapping[str, tuple[str, str]]) -> str:
    if group_by == "journey":
        value = send.journey
    elif group_by == "channel":
        value = send.channel
    else:
        language, country = profiles.get(send.customer_id, ("", ""))
        value = language if group_by == "locale" else country
    return value or UNKNOWN


def _answer_group(
    answer: Answer,
    group_by: str,
    profiles: Mapping[str, tuple[str, str]],
    sends: Mapping[str, Send],
) -> str:
    if group_by == "journey":
        send = sends.get(answer.send_id)
        value = answer.journey or (send.journey if send else "")
    elif group_by == "channel":
        send = sends.get(answer.send_id)
        value = answer.channel or (send.channel if send else "")
    elif group_by == "locale":
        value = language_of(answer.locale) or profiles.get(answer.customer_id, ("", ""))[0]
    else:
        value = answer.country or profiles.get(answer.customer_id, ("", ""))[1]
    return value or UNKNOWN


def _depth(app: Outreach, now: datetime) -> Depth:
    """Sends due per UTC day ahead: one ZCOUNT per day, in one round trip."""
    first_midnight = datetime.combine(now.date() + timedelta(days=1), time(0), tzinfo=UTC)
    bounds = [now] + [first_midnight + timedelta(days=i) for i in range(DEPTH_DAYS)]
    ranges: list[tuple[int | str, int | str]] = [("-inf", f"({to_ms(now)}")]
    ranges += [(to_ms(low), f"({to_ms(high)}") for low, high in zip(bounds, bounds[1:], strict=False)]
    ranges.append((to_ms(bounds[-1]), "+inf"))
    counts = [*app.schedule.count_due(ranges), app.schedule.depth()[1]]
    days = tuple((bounds[i].date(), counts[1 + i]) for i in range(DEPTH_DAYS))
    return Depth(start=now, days=days, overdue=counts[0], later=counts[-2], in_flight=counts[-1])


def build_report(
    outreach: Outreach,
    since: datetime | None = None,
    until: datetime | None = None,
    by: str | None = None,
) -> Report:
    """Survey scores, response rates and delivery outcomes for ``[since, until]``.

    ``until`` defaults to now (the application's clock) and ``since`` to
    ``DEFAULT_DAYS`` days before ``until``; both must be aware datetimes.
    ``by`` is None, "locale", "journey", "channel" or "country"; with None the
    report still carries a breakdown by locale (``group_by``) for the charts.
    """
    if by is not None and by not in GROUPINGS:
        raise InputError("by", by, f"must be one of {', '.join(GROUPINGS)} (or none)")
    app = outreach
    now = app.clock.now()
    since, until = _period(app, since, until)
    group_by = by or DEFAULT_GROUPING
    low, high = to_ms(since), to_ms(until)

    overall = Figures()
    groups: dict[str, Figures] = {}
    first_day = since.date()
    days = [Figures() for _ in range((until.date() - first_day).days + 1)]
    profiles: dict[str, tuple[str, str]] = {}

    def day_of(ms: int) -> Figures:
        # A comment moves an answer's updated_at but not its place in the answers index:
        # such an answer is counted in the period, on its nearest day.
        return days[(from_ms(min(max(ms, low), high)).date() - first_day).days]

    # Sends whose final state falls in the period.
    needs_profiles = group_by in ("locale", "country")
    for batch in _final_sends(app, low, high):
        if needs_profiles:
            _profiles(app, (send.customer_id for _, _, send in batch), profiles)
        for _, finished_ms, send in batch:
            state = send.state.value
            if state not in FINAL_STATES:
                continue  # replayed from the dead-letter store since: not final any more
            reason = "ok" if state == "delivered" else (send.reason or send.cancelled or state)
            survey, receipt = send.survey, send.receipt
            overall.add_send(state, reason, survey, receipt)
            day_of(finished_ms).add_send(state, reason, survey, receipt)
            name = _send_group(send, group_by, profiles)
            groups.setdefault(name, Figures()).add_send(state, reason, survey, receipt)

    # Answers whose latest change falls in the period.
    answers = app.surveys.between(since, until)
    answer_sends: dict[str, Send] = {}
    if group_by in ("journey", "channel"):
        missing = [a.send_id for a in answers if not getattr(a, group_by)]
        for i in range(0, len(missing), BATCH):
            chunk = missing[i : i + BATCH]
            for send_id, found in zip(chunk, app.schedule.get_many(chunk), strict=True):
                if found is not None:
                    answer_sends[send_id] = found
    elif group_by == "locale":
        _profiles(app, (a.customer_id for a in answers if not a.locale), profiles)
    else:
        _profiles(app, (a.customer_id for a in answers if not a.country), profiles)
    for answer in answers:
        overall.add_answer(answer.kind, answer.score)
        day_of(to_ms(answer.updated_at)).add_answer(answer.kind, answer.score)
        name = _answer_group(answer, group_by, profiles, answer_sends)
        groups.setdefault(name, Figures()).add_answer(answer.kind, answer.score)

    return Report(
        since=since,
        until=until,
        generated_at=now,
        by=by,
        group_by=group_by,
        overall=overall,
        groups=dict(sorted(groups.items())),
        days=tuple(Day(first_day + timedelta(days=i), f) for i, f in enumerate(days)),
        depth=_depth(app, now),
    )
