"""``build_report``: the report's figures for a period, read from the archive and from Redis.

``build_report(app, since, until, by)`` reads two things for the period
``[since, until]`` (both ends included, UTC milliseconds):

- the sends whose *final* state was recorded in it: counted in SQL by the archive
  (``archive.queries``), grouped by day, state, reason and the grouping asked for;
  then those not archived yet, from the ``outcomes`` zset by score, their hashes read
  in pipelined batches;
- the survey answers whose latest change falls in it, the same way: the archive's
  counted in SQL, then those still in Redis (``Surveys.live_between``).

A send (or answer) that is in both for a moment, while the mover archives it, is counted
once, from the archive.

It also counts the sends due over the coming days from the ``due`` zset, one
``ZCOUNT`` per UTC day, never loading the set. docs/INSIGHTS.md has the definitions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING

from ..archive.queries import counts as archive_counts
from ..clock import from_ms, to_ms
from ..errors import InputError
from ..schedule import FINAL_STATES, Send
from ..store.keys import DAY_MS
from ..surveys.answers import Answer
from .experiments import build_experiments
from .figures import (
    BATCH,
    DEFAULT_DAYS,
    DEFAULT_GROUPING,
    DEPTH_DAYS,
    GROUPINGS,
    UNKNOWN,
    BroadcastLine,
    Day,
    Depth,
    Figures,
    Report,
    StepClicks,
    _iso,
    language_of,
)

if TYPE_CHECKING:  # pragma: no cover - only for annotations (app imports much)
    from ..app import Outreach


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


def _final_sends(app: Outreach, low: int, high: int) -> list[tuple[str, int, Send]]:
    """(send id, final UTC ms, send) of the sends still in Redis whose final state falls in [low, high]."""
    out = []
    for rows in app.schedule.finished_between(low, high, BATCH):
        sends = app.schedule.get_many([send_id for send_id, _ in rows])
        # A send erased (or archived) since is not in Redis: not counted here.
        out += [
            (send_id, ms, send) for (send_id, ms), send in zip(rows, sends, strict=True) if send is not None
        ]
    return out


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


def _clicks(app: Outreach, archived: Iterable[tuple[str, str, int, int]], live: Iterable[Send]
            ) -> dict[str, StepClicks]:  # fmt: skip
    """Per journey step, its sends delivered in the period and how many were clicked: the archive's
    counts, then the delivered sends only Redis holds (their clicks read with them)."""
    steps: dict[str, StepClicks] = {}
    for journey, step, delivered, clicked in archived:
        entry = steps.setdefault(f"{journey}.{step}", StepClicks(journey, step))
        entry.delivered += delivered
        entry.clicked += clicked
    sends = [send for send in live if send.state.value == "delivered"]
    for i in range(0, len(sends), BATCH):
        chunk = sends[i : i + BATCH]
        first = app.clicks.clicked_many([send.id for send in chunk])
        for send in chunk:
            entry = steps.setdefault(f"{send.journey}.{send.step}", StepClicks(send.journey, send.step))
            entry.delivered += 1
            entry.clicked += send.id in first
    return steps


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

    def fold(value: str) -> str:
        return (language_of(value) if group_by == "locale" else value) or UNKNOWN

    # What Redis holds first, then the archive in one snapshot that also says which of those it
    # holds already: a send archived meanwhile is counted once, from the archive.
    pending = _final_sends(app, low, high)
    answers = app.surveys.live_between(since, until)
    counts = archive_counts(app.archive.database, low, high, group_by, [send_id for send_id, _, _ in pending],
                            [answer.send_id for answer in answers])  # fmt: skip
    for day, value, state, reason, survey, receipt, n in counts.sends:
        for figures in (overall, day_of(day * DAY_MS), groups.setdefault(fold(value), Figures())):
            figures.add_send(state, reason, survey, receipt, n)
    for day, value, kind, score, n in counts.answers:
        for figures in (overall, day_of(day * DAY_MS), groups.setdefault(fold(value), Figures())):
            figures.add_answer(kind, score, n)

    # Then the sends only Redis holds.
    pending = [row for row in pending if row[0] not in counts.archived_sends]
    if group_by in ("locale", "country"):
        _profiles(app, (send.customer_id for _, _, send in pending), profiles)
    for _, finished_ms, send in pending:
        state = send.state.value
        if state not in FINAL_STATES:
            continue  # replayed from the dead-letter store since: not final any more
        reason = send.outcome_reason
        survey, receipt = send.survey, send.receipt
        overall.add_send(state, reason, survey, receipt)
        day_of(finished_ms).add_send(state, reason, survey, receipt)
        name = _send_group(send, group_by, profiles)
        groups.setdefault(name, Figures()).add_send(state, reason, survey, receipt)

    clicks = _clicks(app, counts.clicks, [send for _, _, send in pending])

    # Then the answers only Redis holds (their sends not archived yet).
    answers = [a for a in answers if a.send_id not in counts.archived_answers]
    answer_sends: dict[str, Send] = {}
    if group_by in ("journey", "channel"):
        missing = [a.send_id for a in answers if not getattr(a, group_by)]
        for i in range(0, len(missing), BATCH):
            chunk = missing[i : i + BATCH]
            for send_id, found in zip(chunk, app.records.get_many(chunk), strict=True):
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
        experiments=build_experiments(app, low, high),
        clicks=dict(sorted(clicks.items())),
        broadcasts=_broadcasts(app, low, high),
    )


def _broadcasts(app: Outreach, low: int, high: int) -> tuple[BroadcastLine, ...]:
    """The broadcasts created in ``[low, high]`` (UTC ms), each with its counts so far (one round
    trip each: the counters its scripts keep)."""
    lines = []
    for broadcast in app.broadcasts.all():
        if low <= broadcast.created_ms <= high:
            status = app.broadcasts.status(broadcast.id)
            lines.append(BroadcastLine(broadcast.id, broadcast.name, status.state, str(broadcast.moment),
                                       status.planned, dict(status.outcomes), status.waiting))  # fmt: skip
    return tuple(lines)
