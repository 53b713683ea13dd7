"""Insights: CSAT, NPS, CES, response rates and delivery outcomes for a period, overall and by group.

``build_report(app, since, until, by)`` reads two things for the period
``[since, until]`` (both ends included, UTC milliseconds):

- the survey answers whose latest change falls in it (``Surveys.between``);
- the sends whose *final* state was recorded in it: the ``outcomes`` zset by
  score, their hashes read with ``HMGET`` in pipelined batches.

It also counts the sends due over the coming days from the ``due`` zset, one
``ZCOUNT`` per UTC day, never loading the set. ``render_html`` turns a report
into one self-contained page (inline CSS, hand-written SVG, no JavaScript) and
``report_command`` is ``outreach report``. docs/INSIGHTS.md has the definitions.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .clock import from_ms, to_ms
from .errors import InputError, OutreachError
from .models import parse_locale
from .schedule import FINAL_STATES
from .surveys import SCALES, Answer

if TYPE_CHECKING:  # pragma: no cover - only for annotations (app imports much)
    from .app import Outreach

#: What a report may be grouped by.
GROUPINGS = ("locale", "journey", "channel", "country")
#: The breakdown a report carries when no grouping is asked for.
DEFAULT_GROUPING = "locale"
#: Survey kinds, in display order.
KINDS = ("csat", "nps", "ces")
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
#: Send hash fields a report reads.
SEND_FIELDS = (
    "journey",
    "step",
    "category",
    "state",
    "reason",
    "channel",
    "customer_id",
    "survey",
    "finished_ms",
    "cancelled",
)
#: Survey journey -> kind, for answers that lack the kind (never in practice) and for the docs.
JOURNEY_KIND = {"survey": "csat", "nps": "nps", "ces": "ces"}


def _decode(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


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

    def add_send(self, state: str, reason: str, survey: str) -> None:
        self.states[state] = self.states.get(state, 0) + 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1
        if state == "delivered" and survey in self.delivered_surveys:
            self.delivered_surveys[survey] += 1

    # -- scores -----------------------------------------------------------------------------

    @property
    def csat(self) -> float | None:
        """% of CSAT answers scoring 4 or 5."""
        return _percent(self.positive["csat"], self.answers["csat"])

    @property
    def nps(self) -> float | None:
        """% promoters (9–10) minus % detractors (0–6), from −100 to 100."""
        n = self.answers["nps"]
        return 100.0 * (self.positive["nps"] - self.detractors["nps"]) / n if n else None

    @property
    def ces(self) -> float | None:
        """Average CES score (1–7, 7 is easiest)."""
        n = self.answers["ces"]
        return self.score_sums["ces"] / n if n else None

    def score(self, kind: str) -> float | None:
        return {"csat": self.csat, "nps": self.nps, "ces": self.ces}[kind]

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
            "csat": self.csat,
            "nps": self.nps,
            "ces": self.ces,
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


def _final_sends(app: Outreach, low: int, high: int) -> Iterable[list[tuple[str, int, dict[str, str]]]]:
    """Batches of (send id, final UTC ms, hash fields) from the outcomes zset, by score."""
    offset = 0
    while True:
        rows = app.client.zrangebyscore(
            app.keys.outcomes, low, high, start=offset, num=BATCH, withscores=True
        )
        if not rows:
            return
        pipe = app.client.pipeline(transaction=False)
        for member, _ in rows:
            pipe.hmget(app.keys.send(_decode(member)), SEND_FIELDS)
        batch = []
        for (member, score), values in zip(rows, pipe.execute(), strict=True):
            if values[0] is None and values[3] is None:
                continue  # the send was erased since; only its outcome id is left
            batch.append(
                (_decode(member), int(score), dict(zip(SEND_FIELDS, map(_decode, values), strict=True)))
            )
        yield batch
        if len(rows) < BATCH:
            return
        offset += len(rows)


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


def _send_group(send: Mapping[str, str], group_by: str, profiles: Mapping[str, tuple[str, str]]) -> str:
    if group_by == "journey":
        value = send.get("journey", "")
    elif group_by == "channel":
        value = send.get("channel", "")
    else:
        language, country = profiles.get(send.get("customer_id", ""), ("", ""))
        value = language if group_by == "locale" else country
    return value or UNKNOWN


def _answer_group(
    answer: Answer,
    group_by: str,
    profiles: Mapping[str, tuple[str, str]],
    sends: Mapping[str, Mapping[str, str]],
) -> str:
    if group_by in ("journey", "channel"):
        value = getattr(answer, group_by) or sends.get(answer.send_id, {}).get(group_by, "")
    elif group_by == "locale":
        value = language_of(answer.locale) or profiles.get(answer.customer_id, ("", ""))[0]
    else:
        value = answer.country or profiles.get(answer.customer_id, ("", ""))[1]
    return value or UNKNOWN


def _depth(app: Outreach, now: datetime) -> Depth:
    """Sends due per UTC day ahead: one ZCOUNT per day, in one round trip."""
    first_midnight = datetime.combine(now.date() + timedelta(days=1), time(0), tzinfo=UTC)
    bounds = [now] + [first_midnight + timedelta(days=i) for i in range(DEPTH_DAYS)]
    pipe = app.client.pipeline(transaction=False)
    pipe.zcount(app.keys.due, "-inf", f"({to_ms(now)}")
    for low, high in zip(bounds, bounds[1:], strict=False):
        pipe.zcount(app.keys.due, to_ms(low), f"({to_ms(high)}")
    pipe.zcount(app.keys.due, to_ms(bounds[-1]), "+inf")
    pipe.zcard(app.keys.inflight)
    counts = [int(n) for n in pipe.execute()]
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
            _profiles(app, (send["customer_id"] for _, _, send in batch), profiles)
        for _, finished_ms, send in batch:
            state = send["state"]
            if state not in FINAL_STATES:
                continue  # replayed from the dead-letter store since: not final any more
            reason = "ok" if state == "delivered" else (send["reason"] or send["cancelled"] or state)
            survey = send["survey"]
            overall.add_send(state, reason, survey)
            day_of(finished_ms).add_send(state, reason, survey)
            name = _send_group(send, group_by, profiles)
            groups.setdefault(name, Figures()).add_send(state, reason, survey)

    # Answers whose latest change falls in the period.
    answers = app.surveys.between(since, until)
    answer_sends: dict[str, dict[str, str]] = {}
    if group_by in ("journey", "channel"):
        missing = [a.send_id for a in answers if not getattr(a, group_by)]
        for i in range(0, len(missing), BATCH):
            chunk = missing[i : i + BATCH]
            for send_id, send in zip(chunk, app.schedule.get_many(chunk), strict=True):
                answer_sends[send_id] = send or {}
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


# -- formatting -----------------------------------------------------------------------------


def format_score(kind: str, value: float | None) -> str:
    """A score as shown: CSAT ``83.3 %``, NPS ``+12.5``, CES ``5.25``; ``–`` for none."""
    if value is None:
        return DASH
    if kind == "csat":
        return f"{value:.1f} %"
    if kind == "nps":
        return f"{value:+.1f}" if value else "0.0"
    return f"{value:.2f}"


def format_rate(value: float | None) -> str:
    return DASH if value is None else f"{value:.1f} %"


LABELS = {"csat": "CSAT %", "nps": "NPS", "ces": "CES (avg)"}


def render_text(report: Report) -> str:
    """A plain-text table of the report (what ``outreach report`` prints)."""
    lines = [
        f"Outreach report {_iso(report.since)} .. {_iso(report.until)} (by {report.group_by})",
        "",
    ]
    header = (
        "",
        "CSAT %",
        "NPS",
        "CES",
        "answers c/n/e",
        "response c/n/e",
        "sends",
        "delivered",
        "suppressed",
        "failed",
        "cancelled",
    )

    def row(name: str, f: Figures) -> tuple[str, ...]:
        return (
            name,
            *(format_score(kind, f.score(kind)) for kind in KINDS),
            "/".join(str(f.answers[k]) for k in KINDS),
            "/".join(format_rate(f.response_rate(k)).replace(" %", "%") for k in KINDS),
            str(f.sends),
            *(str(f.states.get(s, 0)) for s in STATES),
        )

    table = [header, row("overall", report.overall)]
    table += [row(f"{report.group_by}={name}", figures) for name, figures in report.groups.items()]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for r in table:
        cells = [r[0].ljust(widths[0])] + [c.rjust(widths[i]) for i, c in enumerate(r) if i]
        lines.append("  ".join(cells).rstrip())
    reasons = report.overall.reasons
    lines += ["", "Reasons: " + (", ".join(f"{k} {v}" for k, v in sorted(reasons.items())) or DASH)]
    lines += ["", "Per UTC day (days with answers or sends):"]
    for day in report.days:
        f = day.figures
        if f.total_answers or f.sends:
            scores = "  ".join(f"{k.upper()} {format_score(k, f.score(k)):>7}" for k in KINDS)
            lines.append(
                f"  {day.day.isoformat()}  answers {f.total_answers:>3}  {scores}  sends {f.sends:>3}"
            )
    depth = report.depth
    lines += ["", f"Schedule depth from {_iso(depth.start)} (sends due per UTC day):"]
    lines.append("  " + "  ".join(f"{d:%m-%d} {n}" for d, n in depth.days))
    lines.append(f"  overdue {depth.overdue}, later {depth.later}, in flight {depth.in_flight}")
    return "\n".join(lines) + "\n"


# -- HTML and SVG ---------------------------------------------------------------------------

#: Chart colours, each at least 4.5:1 against white.
COLOURS = {"csat": "#1f5fbf", "nps": "#a3410c", "ces": "#2e6b30", "depth": "#5b3fa8"}
#: Value ranges of the charts.
DOMAINS = {"csat": (0.0, 100.0), "nps": (-100.0, 100.0), "ces": (1.0, 7.0)}
TICKS = {"csat": (0, 25, 50, 75, 100), "nps": (-100, -50, 0, 50, 100), "ces": (1, 2, 3, 4, 5, 6, 7)}
TITLES = {
    "csat": "CSAT (% of answers scoring 4–5)",
    "nps": "NPS (% promoters − % detractors)",
    "ces": "CES (average score, 1–7)",
}


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


class _Ids:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, stem: str) -> str:
        self.count += 1
        return f"{stem}-{self.count}"


def _svg_open(ids: _Ids, width: int, height: int, title: str, desc: str) -> tuple[str, str]:
    chart = ids("chart")
    return chart, (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{chart}" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'aria-label="{_e(title)}" aria-describedby="{chart}-desc">'
        f'<title>{_e(title)}</title><desc id="{chart}-desc">{_e(desc)}</desc>'
    )


def _trend_svg(ids: _Ids, report: Report, kind: str) -> str:
    width, height, left, right, top, bottom = 640, 190, 52, 16, 16, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    lo, hi = DOMAINS[kind]
    n = len(report.days)

    def x(i: int) -> float:
        return left + (plot_w / 2 if n == 1 else i * plot_w / (n - 1))

    def y(v: float) -> float:
        return top + plot_h * (hi - min(max(v, lo), hi)) / (hi - lo)

    values = [d.figures.score(kind) for d in report.days]
    shown = sum(v is not None for v in values)
    title = f"Trend of {LABELS[kind]} per UTC day"
    desc = (
        f"{shown} of {n} days have {kind.upper()} answers; the table below lists every value."
        if shown
        else f"No {kind.upper()} answers in the period."
    )
    _, out = _svg_open(ids, width, height, title, desc)
    parts = [out]
    for tick in TICKS[kind]:
        ty = y(tick)
        parts.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{ty:.1f}" y2="{ty:.1f}"/>')
        parts.append(f'<text class="tick" x="{left - 6}" y="{ty + 4:.1f}" text-anchor="end">{tick}</text>')
    step = max(1, -(-n // 8))
    for i, day in enumerate(report.days):
        # Every step-th day and the last one, unless the last would crowd the one before.
        if i % step == 0 if i < n - 1 - step // 2 else i == n - 1:
            parts.append(
                f'<text class="tick" x="{x(i):.1f}" y="{height - bottom + 16}" '
                f'text-anchor="middle">{day.day:%m-%d}</text>'
            )
    segment: list[str] = []
    segments: list[list[str]] = []
    for i, v in enumerate(values):
        if v is None:
            if segment:
                segments.append(segment)
            segment = []
        else:
            segment.append(f"{x(i):.1f},{y(v):.1f}")
    if segment:
        segments.append(segment)
    colour = COLOURS[kind]
    for seg in segments:
        if len(seg) > 1:
            parts.append(
                f'<polyline class="series {kind}" fill="none" stroke="{colour}" stroke-width="2" '
                f'points="{" ".join(seg)}"/>'
            )
    for i, v in enumerate(values):
        if v is not None:
            label = f"{report.days[i].day.isoformat()}: {format_score(kind, v)}"
            parts.append(
                f'<circle class="point {kind}" cx="{x(i):.1f}" cy="{y(v):.1f}" r="3.5" '
                f'fill="{colour}"><title>{_e(label)}</title></circle>'
            )
    if not shown:
        parts.append(
            f'<text class="empty" x="{left + plot_w / 2}" y="{top + plot_h / 2}" '
            f'text-anchor="middle">{DASH} no answers</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _bars_svg(ids: _Ids, report: Report, kind: str) -> str:
    rows = list(report.groups.items())
    label_w, plot_w, value_w, row_h, top = 150, 360, 80, 24, 8
    width = label_w + plot_w + value_w
    height = top * 2 + row_h * max(len(rows), 1)
    lo, hi = DOMAINS[kind]
    lo = min(lo, 0.0)

    def x(v: float) -> float:
        return label_w + plot_w * (min(max(v, lo), hi) - lo) / (hi - lo)

    title = f"{LABELS[kind]} by {report.group_by}"
    shown = [name for name, f in rows if f.score(kind) is not None]
    desc = (
        f"{len(shown)} of {len(rows)} groups have {kind.upper()} answers; the table below lists them."
        if rows
        else "No groups in the period."
    )
    _, out = _svg_open(ids, width, height, title, desc)
    parts = [out]
    zero = x(0.0)
    parts.append(f'<line class="axis" x1="{zero:.1f}" x2="{zero:.1f}" y1="{top}" y2="{height - top}"/>')
    for i, (name, figures) in enumerate(rows):
        value = figures.score(kind)
        cy = top + i * row_h
        label = name if len(name) <= 22 else name[:21] + "…"
        parts.append(
            f'<text class="label" x="{label_w - 8}" y="{cy + 16}" text-anchor="end">{_e(label)}'
            f"<title>{_e(name)}</title></text>"
        )
        text = format_score(kind, value)
        if value is not None:
            x0, x1 = sorted((zero, x(value)))
            parts.append(
                f'<rect class="bar {kind}" x="{x0:.1f}" y="{cy + 4}" width="{max(x1 - x0, 1):.1f}" '
                f'height="{row_h - 8}" fill="{COLOURS[kind]}">'
                f"<title>{_e(f'{name}: {text} ({figures.answers[kind]} answers)')}</title></rect>"
            )
        parts.append(f'<text class="value" x="{label_w + plot_w + 8}" y="{cy + 16}">{_e(text)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _depth_svg(ids: _Ids, depth: Depth) -> str:
    width, height, left, right, top, bottom = 640, 200, 40, 16, 20, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(depth.days)
    peak = max([c for _, c in depth.days] + [1])
    slot = plot_w / n
    title = f"Sends due per UTC day, next {n} days"
    desc = f"{sum(c for _, c in depth.days)} sends due in the next {n} days; the table below lists each day."
    _, out = _svg_open(ids, width, height, title, desc)
    parts = [out]
    base = top + plot_h
    parts.append(f'<line class="axis" x1="{left}" x2="{width - right}" y1="{base}" y2="{base}"/>')
    for i, (day, count) in enumerate(depth.days):
        bar_h = plot_h * count / peak
        bx = left + i * slot + slot * 0.15
        parts.append(
            f'<rect class="bar depth" x="{bx:.1f}" y="{base - bar_h:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{bar_h:.1f}" fill="{COLOURS["depth"]}">'
            f"<title>{day.isoformat()}: {count} due</title></rect>"
        )
        cx = left + i * slot + slot / 2
        parts.append(
            f'<text class="value" x="{cx:.1f}" y="{base - bar_h - 4:.1f}" text-anchor="middle">{count}</text>'
        )
        parts.append(
            f'<text class="tick" x="{cx:.1f}" y="{base + 16}" text-anchor="middle">{day:%m-%d}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(caption: str, header: list[str], rows: list[list[str]], numeric_from: int = 1) -> str:
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in header)
    body = []
    for row in rows:
        cells = [f'<th scope="row">{_e(row[0])}</th>']
        cells += [
            f'<td class="{"num" if i >= numeric_from else ""}">{_e(c)}</td>' for i, c in enumerate(row) if i
        ]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="scroll"><table><caption>{_e(caption)}</caption><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _figure_rows(items: Iterable[tuple[str, Figures]]) -> list[list[str]]:
    rows = []
    for name, f in items:
        rows.append(
            [
                name,
                *(format_score(k, f.score(k)) for k in KINDS),
                *(str(f.answers[k]) for k in KINDS),
                *(format_rate(f.response_rate(k)) for k in KINDS),
                str(f.sends),
                *(str(f.states.get(s, 0)) for s in STATES),
            ]
        )
    return rows


FIGURE_HEADER = [
    "",
    "CSAT %",
    "NPS",
    "CES",
    "CSAT answers",
    "NPS answers",
    "CES answers",
    "CSAT response",
    "NPS response",
    "CES response",
    "sends",
    *STATES,
]

TREND_HEADER = [
    "day",
    "CSAT %",
    "NPS",
    "CES",
    "CSAT answers",
    "NPS answers",
    "CES answers",
    "sends",
    "delivered",
]

CSS = """
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif;
       color: #1a1a1a; background: #fff; margin: 0 auto; padding: 1rem 1.5rem 3rem; max-width: 80rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.25rem; margin-top: 2rem; }
h3 { font-size: 1.05rem; margin: 1.2rem 0 .3rem; }
.meta { color: #444; margin-top: 0; }
.cards { display: flex; flex-wrap: wrap; gap: .8rem; padding: 0; list-style: none; }
.cards li { border: 1px solid #bbb; border-radius: 6px; padding: .6rem 1rem; min-width: 9rem; }
.cards .big { display: block; font-size: 1.6rem; font-weight: 600; }
table { border-collapse: collapse; margin: .6rem 0 1.2rem; font-size: .9rem; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; }
th, td { border: 1px solid #bbb; padding: .25rem .5rem; text-align: left; }
thead th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.scroll { overflow-x: auto; max-width: 100%; }
svg.chart { display: block; max-width: 100%; height: auto; margin: .4rem 0; }
svg .grid { stroke: #d0d0d0; stroke-width: 1; } svg .axis { stroke: #555; stroke-width: 1; }
svg text { font: 12px system-ui, sans-serif; fill: #1a1a1a; }
svg .tick, svg .empty { fill: #444; }
details { margin: .4rem 0 1rem; } summary { cursor: pointer; font-weight: 600; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(30rem, 1fr)); gap: 0 1.5rem; }
"""


def render_html(report: Report, *, title: str = "Outreach report") -> str:
    """One self-contained page: inline CSS, inline SVG charts, a table for each chart, no script."""
    ids = _Ids()
    o = report.overall
    group_by = report.group_by
    cards = "".join(
        f'<li><span class="big">{_e(format_score(k, o.score(k)))}</span>{_e(TITLES[k])}<br>'
        f"{o.answers[k]} answers, response {_e(format_rate(o.response_rate(k)))}</li>"
        for k in KINDS
    )
    cards += (
        f'<li><span class="big">{o.states["delivered"]}</span>delivered of {o.sends} sends<br>'
        f"{o.states['suppressed']} suppressed, {o.states['failed']} failed, "
        f"{o.states['cancelled']} cancelled</li>"
    )
    reasons = [[reason, str(count)] for reason, count in sorted(o.reasons.items())]
    note = "" if report.by else f"<p>No grouping was chosen: the breakdown is by {group_by}.</p>"

    trend_rows = [
        [
            d.day.isoformat(),
            *(format_score(k, d.figures.score(k)) for k in KINDS),
            *(str(d.figures.answers[k]) for k in KINDS),
            str(d.figures.sends),
            str(d.figures.states["delivered"]),
        ]
        for d in report.days
    ]
    depth = report.depth
    depth_rows = [[d.isoformat(), str(n)] for d, n in depth.days]
    depth_rows += [
        ["overdue (due before now)", str(depth.overdue)],
        [f"later than {DEPTH_DAYS} days", str(depth.later)],
        ["in flight", str(depth.in_flight)],
    ]

    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">Period {_e(_iso(report.since))} to {_e(_iso(report.until))} (UTC, both included); '
        f"generated {_e(_iso(report.generated_at))}.</p>",
        '<section aria-labelledby="h-overall"><h2 id="h-overall">Overall</h2>',
        f'<ul class="cards">{cards}</ul>',
        _table("Overall figures", FIGURE_HEADER, _figure_rows([("overall", o)])),
        _table("Sends by reason", ["reason", "sends"], reasons or [[DASH, "0"]]),
        "</section>",
        '<section aria-labelledby="h-trend"><h2 id="h-trend">Trend per UTC day</h2><div class="charts">',
        *(f"<div><h3>{_e(TITLES[k])}</h3>{_trend_svg(ids, report, k)}</div>" for k in KINDS),
        "</div>",
        "<details><summary>Trend as a table</summary>",
        _table("Trend per UTC day", TREND_HEADER, trend_rows),
        "</details></section>",
        f'<section aria-labelledby="h-groups"><h2 id="h-groups">By {_e(group_by)}</h2>{note}',
        '<div class="charts">',
        *(f"<div><h3>{_e(TITLES[k])}</h3>{_bars_svg(ids, report, k)}</div>" for k in KINDS),
        "</div>",
        _table(f"Figures by {group_by}", [group_by, *FIGURE_HEADER[1:]], _figure_rows(report.groups.items())),
        "</section>",
        '<section aria-labelledby="h-depth"><h2 id="h-depth">Schedule depth</h2>',
        f"<p>Sends waiting in the schedule per UTC day, counted at {_e(_iso(depth.start))}.</p>",
        _depth_svg(ids, depth),
        _table("Sends due per UTC day", ["day", "due"], depth_rows),
        "</section>",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>\n<body><main>\n"
        + "\n".join(body)
        + "\n</main></body></html>\n"
    )


# -- the command ----------------------------------------------------------------------------


def parse_bound(name: str, text: str, *, end: bool = False) -> datetime:
    """``--since`` / ``--until``: ISO 8601 with an offset, or a date (UTC; an end date includes its day)."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    if day is not None and len(text) <= 10:
        start = datetime.combine(day, time(0), tzinfo=UTC)
        return start + timedelta(days=1) - timedelta(milliseconds=1) if end else start
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            name, text, "expected ISO 8601 (2026-03-01T00:00:00Z) or a date (2026-03-01)"
        ) from None
    if value.utcoffset() is None:
        raise InputError(name, text, "needs a UTC offset or 'Z' (or give a date)")
    return value


@click.option("--since", default=None, metavar="ISO", help="Start (ISO 8601 with offset, or a date).")
@click.option("--until", default=None, metavar="ISO", help="End, included (ISO 8601 or a date; default now).")
@click.option("--by", type=click.Choice(GROUPINGS), default=None, help="Group the figures (default: locale).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Write the HTML report to FILE.",
)
def report(since: str | None, until: str | None, by: str | None, as_json: bool, html_file: Path | None):
    """Survey scores, response rates, delivery outcomes and schedule depth for a period.

    --since and --until take ISO 8601 with an offset (2026-03-01T00:00:00Z) or dates
    (2026-03-01, UTC; an --until date includes that day). Default: the last 30 days.
    """
    from .cli import _app  # the command module imports this one

    try:
        start = parse_bound("since", since) if since else None
        end = parse_bound("until", until, end=True) if until else None
        with _app() as app:
            report = build_report(app, start, end, by)
    except OutreachError as exc:
        raise click.ClickException(str(exc)) from None
    if html_file is not None:
        html_file.parent.mkdir(parents=True, exist_ok=True)
        html_file.write_text(render_html(report), encoding="utf-8")
    if as_json:
        click.echo(json.dumps(report.to_mapping(), ensure_ascii=False, indent=2))
    elif html_file is not None:
        click.echo(f"wrote {html_file}")
    else:
        click.echo(render_text(report), nl=False)


#: ``outreach report``; cli.py registers it with ``main.add_command(report_command)``.
report_command = click.command("report")(report)
