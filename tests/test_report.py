"""Insights: a simulated month of surveys, checked against figures computed here independently."""

from __future__ import annotations

import json
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import fakeredis
import pytest
from click.testing import CliRunner

from outreach import InputError, Outreach, SimulatedClock
from outreach.cli.report import report_command
from outreach.clock import from_ms, to_ms
from outreach.demo import fast_forward
from outreach.report import (
    DEPTH_DAYS,
    GROUPINGS,
    build_report,
    language_of,
    render_html,
    render_text,
)
from outreach.store.embedded import embedded_client
from outreach.surveys.scales import SCALES

from .conftest import STARTER, make_settings
from .helpers import at, ingest, outbox, plan_send

START = at("2026-03-02T00:00:00Z")  # a Monday
END = at("2026-04-02T00:00:00Z")
SURVEY_KIND = {"survey": "csat", "nps": "nps", "ces": "ces"}
FINAL = {"delivered", "suppressed", "failed", "cancelled"}

#: id -> (locale, country, zone, survey consent or None for the country's default)
PEOPLE = {
    "us-a": ("en_US", "US", "America/New_York", None),
    "us-b": ("en_US", "US", "America/Chicago", None),
    "us-c": ("en_US", "US", "America/Los_Angeles", None),
    "gb-a": ("en_GB", "GB", "Europe/London", None),
    "jp-a": ("ja_JP", "JP", "Asia/Tokyo", None),
    "jp-b": ("ja_JP", "JP", "Asia/Tokyo", None),
    "br-a": ("pt_BR", "BR", "America/Sao_Paulo", None),
    "br-b": ("pt_BR", "BR", "America/Sao_Paulo", None),
    "br-c": ("pt_BR", "BR", "America/Sao_Paulo", None),
    "pt-a": ("pt_PT", "PT", "Europe/Lisbon", None),
    "il-a": ("he_IL", "IL", "Asia/Jerusalem", None),
    "de-a": ("de_DE", "DE", "Europe/Berlin", True),  # Germany: surveys need a yes
    "de-b": ("de_DE", "DE", "Europe/Berlin", None),  # ... and without one they are suppressed
    "cn-a": ("zh_Hans_CN", "CN", "Asia/Shanghai", None),
    "cn-b": ("zh_Hans_CN", "CN", "Asia/Shanghai", None),
    "kr-a": ("ko_KR", "KR", "Asia/Seoul", None),
}
#: The grouping the report should find, written out by hand.
LANGUAGE = {"en_US": "en", "en_GB": "en", "ja_JP": "ja", "pt_BR": "pt", "pt_PT": "pt", "he_IL": "he",
            "de_DE": "de", "zh_Hans_CN": "zh_Hans", "ko_KR": "ko"}  # fmt: skip

#: (day, hour UTC, event type, customer, data)
EVENTS = [
    # Sign-ups on day 0: onboarding now, NPS on day 28 (2026-03-30, a Monday).
    *(
        (0, 8 + i, "customer.signed_up", c, {})
        for i, c in enumerate(["us-a", "gb-a", "jp-a", "br-a", "pt-a", "il-a", "de-a", "cn-a"])
    ),  # fmt: skip
    # CSAT after resolved interactions; us-a's second survey and NPS meet survey fatigue.
    (3, 15, "interaction.resolved", "us-b", {"interaction_id": "T-1"}),
    (4, 2, "interaction.resolved", "jp-b", {"interaction_id": "T-2"}),
    (5, 9, "interaction.resolved", "de-b", {"interaction_id": "T-3"}),  # no consent
    (6, 13, "interaction.resolved", "br-b", {"interaction_id": "T-4"}),
    (8, 14, "interaction.resolved", "us-a", {"interaction_id": "T-5"}),
    (15, 14, "interaction.resolved", "us-a", {"interaction_id": "T-6"}),  # fatigue
    (20, 10, "interaction.resolved", "de-a", {"interaction_id": "T-7"}),  # de-a's NPS: fatigue
    (23, 16, "interaction.resolved", "cn-a", {"interaction_id": "T-8"}),  # cn-a's NPS: fatigue
    # CES the day after activation; jp-b already had a survey this month.
    (2, 12, "customer.activated", "kr-a", {}),
    (9, 1, "customer.activated", "jp-b", {}),
    (16, 18, "customer.activated", "us-c", {}),
    (18, 12, "customer.activated", "br-c", {}),
    # Later sign-ups: their NPS is still planned when the month ends (schedule depth).
    (8, 3, "customer.signed_up", "cn-b", {}),
    (12, 1, "customer.signed_up", "kr-a", {}),
    (15, 17, "customer.signed_up", "us-c", {}),
    (22, 14, "customer.signed_up", "br-c", {}),
    # Transactional noise.
    (9, 12, "order.delayed", "us-a", {"order_id": "A-1", "new_eta": "2026-03-20"}),
    (11, 4, "order.delayed", "jp-a", {"order_id": "J-1", "new_eta": "2026-03-25"}),
]


@dataclass
class Month:
    app: Outreach
    clock: SimulatedClock
    #: send id -> (customer, kind, score, when): the latest answer to each survey send.
    answers: dict[str, tuple[str, str, int, datetime]] = field(default_factory=dict)
    #: send id -> (state, reason, when): the final outcome the deliverer returned.
    finals: dict[str, tuple[str, str, datetime]] = field(default_factory=dict)
    #: survey sends delivered and left unanswered on purpose.
    skipped: list[str] = field(default_factory=list)
    #: the send whose answer was changed.
    updated: str = ""


@pytest.fixture(scope="module")
def month(tmp_path_factory) -> Month:
    """A month of traffic for 16 customers in 7 languages and 9 countries, answered as it goes."""
    tmp = tmp_path_factory.mktemp("month")
    clock = SimulatedClock(START)
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    # The archive in a file: the command-line tests read it from another application.
    app = Outreach(
        make_settings(tmp, archive_url=f"sqlite:///{tmp / 'archive.sqlite3'}"), client=client, clock=clock
    )
    result = Month(app, clock)

    real_deliver = app.deliverer.deliver

    def recording(claims):
        outcomes = real_deliver(claims)
        now = clock.now()
        for o in outcomes:
            if o.state in FINAL and o.reason != "not attempted":
                result.finals[o.send_id] = (o.state, "ok" if o.state == "delivered" else o.reason, now)
        return outcomes

    app.deliverer.deliver = recording
    real_cancel = app.schedule.cancel

    def cancelling(send_id, reason, text):
        # Exits and supersedes end sends outside delivery: their final state is "cancelled".
        state = real_cancel(send_id, reason, text)
        if state and state not in FINAL and state != "sending":
            result.finals[send_id] = ("cancelled", reason, clock.now())
        return state

    app.schedule.cancel = cancelling

    for cid, (locale, country, zone, consent) in PEOPLE.items():
        app.upsert_customer({
            "id": cid, "name": cid, "email": f"{cid}@example.com", "locale": locale, "zone": zone,
            "country": country, "consent": {} if consent is None else {"survey": consent},
        })  # fmt: skip

    timeline = []
    for day, hour, event_type, cid, data in EVENTS:
        when = START + timedelta(days=day, hours=hour)
        timeline.append((when, lambda e=event_type, c=cid, d=data, w=when: app.emit(e, c, d, occurred_at=w)))
    # br-b withdraws survey consent on day 12, so her resolved ticket on day 14 gets no survey.
    timeline.append(
        (START + timedelta(days=12), lambda: app.set_consent("br-b", category="survey", allowed=False))
    )
    timeline.append((START + timedelta(days=14, hours=12), lambda: app.emit(
        "interaction.resolved", "br-b", {"interaction_id": "T-9"}, occurred_at=clock.now())))  # fmt: skip

    # A seeded score pattern per customer and kind; about one survey in five stays unanswered.
    patterns: dict[tuple[str, str], random.Random] = {}
    seen: set[str] = set()
    to_change = ""
    worker = app.worker(threads=2)
    try:
        chunk = START
        while chunk < END:
            chunk += timedelta(hours=12)
            now_due = [pair for pair in timeline if pair[0] < chunk]
            timeline = [pair for pair in timeline if pair[0] >= chunk]
            fast_forward(app, worker, chunk, now_due)
            if to_change:  # the first answer of all is changed half a day later: it counts once, changed
                cid, kind, score, _ = result.answers[to_change]
                new = SCALES[kind].high if score != SCALES[kind].high else SCALES[kind].low
                app.answer_survey(to_change, cid, kind, new)
                result.answers[to_change] = (cid, kind, new, clock.now())
                result.updated, to_change = to_change, ""
            for row in outbox(app):
                kind = SURVEY_KIND.get(row["journey"])
                if kind is None or row["send_id"] in seen:
                    continue
                seen.add(row["send_id"])
                rng = patterns.setdefault(
                    (row["customer_id"], kind), random.Random(f"{row['customer_id']}/{kind}")
                )
                if rng.random() < 0.2:
                    result.skipped.append(row["send_id"])
                    continue
                score = rng.choice(list(SCALES[kind].scores()))
                app.answer_survey(row["send_id"], row["customer_id"], kind, score)
                result.answers[row["send_id"]] = (row["customer_id"], kind, score, clock.now())
            if result.answers and not result.updated and not to_change:
                to_change = next(iter(result.answers))
        app.drain(worker)
    finally:
        worker.stop()
    return result


# -- the independent computation --------------------------------------------------------------


def within(when: datetime, since: datetime, until: datetime) -> bool:
    return to_ms(since) <= to_ms(when) <= to_ms(until)


def expected(month: Month, since: datetime, until: datetime, by: str | None) -> dict[str, dict]:
    """Figures per group, from the answers given and the outbox and outcomes seen here."""

    def group(cid: str) -> str:
        locale, country, _, _ = PEOPLE[cid]
        return {None: "all", "locale": LANGUAGE[locale], "country": country}[by]

    def empty() -> dict:
        return {"scores": defaultdict(list), "delivered_surveys": Counter(), "states": Counter(),
                "reasons": Counter()}  # fmt: skip

    out: dict[str, dict] = defaultdict(empty)
    for cid, kind, score, when in month.answers.values():
        if within(when, since, until):
            out[group(cid)]["scores"][kind].append(score)
    for row in outbox(month.app):
        kind = SURVEY_KIND.get(row["journey"])
        if kind and within(at(row["utc"]), since, until):
            out[group(row["customer_id"])]["delivered_surveys"][kind] += 1
    owners = {s: month.app.records.get(s).customer_id for s in month.finals}
    for send_id, (state, reason, when) in month.finals.items():
        if within(when, since, until):
            g = out[group(owners[send_id])]
            g["states"][state] += 1
            g["reasons"][reason] += 1
    result = {}
    for name, g in out.items():
        scores = g["scores"]
        csat, nps, ces = scores["csat"], scores["nps"], scores["ces"]
        result[name] = {
            "answers": {k: len(scores[k]) for k in ("csat", "nps", "ces")},
            "csat": 100 * sum(s >= 4 for s in csat) / len(csat) if csat else None,
            "nps": (100 * sum(s >= 9 for s in nps) - 100 * sum(s <= 6 for s in nps)) / len(nps)
            if nps
            else None,
            "ces": sum(ces) / len(ces) if ces else None,
            "response_rate": {
                k: 100 * len(scores[k]) / g["delivered_surveys"][k] if g["delivered_surveys"][k] else None
                for k in ("csat", "nps", "ces")
            },
            "delivered_surveys": {k: g["delivered_surveys"][k] for k in ("csat", "nps", "ces")},
            "states": {s: g["states"][s] for s in ("delivered", "suppressed", "failed", "cancelled")},
            "reasons": dict(g["reasons"]),
        }
    return result


def approx(value):
    return None if value is None else pytest.approx(value)


def assert_figures(actual, want: dict) -> None:
    got = actual.to_mapping()
    assert {k: got["answers"][k] for k in ("csat", "nps", "ces")} == want["answers"]
    assert got["csat"] == approx(want["csat"])
    assert got["nps"] == approx(want["nps"])
    assert got["ces"] == approx(want["ces"])
    assert got["delivered_surveys"] == want["delivered_surveys"]
    assert got["response_rate"] == {k: approx(v) for k, v in want["response_rate"].items()}
    assert got["outcomes"]["states"] == want["states"]
    assert got["outcomes"]["reasons"] == want["reasons"]
    assert got["outcomes"]["sends"] == sum(want["states"].values())


# -- the month ----------------------------------------------------------------------------------


def test_the_month_has_what_the_report_must_cope_with(month):
    """Guard the scenario itself: every kind answered, skips, suppressions of several kinds."""
    kinds = Counter(kind for _, kind, _, _ in month.answers.values())
    assert min(kinds[k] for k in ("csat", "nps", "ces")) >= 2, kinds
    assert month.skipped and month.updated
    reasons = Counter(reason for _, reason, _ in month.finals.values())
    assert {"ok", "no_consent", "survey_fatigue"} <= set(reasons), reasons
    delivered = {s for s, (state, _, _) in month.finals.items() if state == "delivered"}
    assert delivered == {row["send_id"] for row in outbox(month.app)}
    bands = {SCALES[k].band(s) for _, k, s, _ in month.answers.values()}
    assert bands == {"positive", "neutral", "detractor"}


def test_overall_figures_match_an_independent_count(month):
    report = build_report(month.app, START, END)
    assert_figures(report.overall, expected(month, START, END, None)["all"])
    assert report.by is None and report.group_by == "locale"  # the default breakdown for the charts
    # The changed answer counts once, with its new score.
    changed = month.app.surveys.get(month.updated)
    assert changed.version == 2 and changed.score == month.answers[month.updated][2]
    assert changed.updated_at > changed.answered_at


@pytest.mark.parametrize("by", ["locale", "country"])
def test_figures_by_locale_and_country_match(month, by):
    report = build_report(month.app, START, END, by=by)
    want = expected(month, START, END, by)
    assert list(report.groups) == sorted(want)
    for name, figures in report.groups.items():
        assert_figures(figures, want[name])
    if by == "locale":  # en_US and en_GB are one language, pt_BR and pt_PT too; the script stays
        assert {"en", "pt", "zh_Hans", "he"} <= set(report.groups)


def test_a_shorter_period_counts_only_what_falls_in_it(month):
    since, until = START + timedelta(days=9, hours=6), START + timedelta(days=20, hours=6)
    report = build_report(month.app, since, until, by="country")
    assert_figures(report.overall, expected(month, since, until, None)["all"])
    want = expected(month, since, until, "country")
    assert list(report.groups) == sorted(want)
    for name, figures in report.groups.items():
        assert_figures(figures, want[name])
    assert report.days[0].day == date(2026, 3, 11) and report.days[-1].day == date(2026, 3, 22)


def test_journey_and_channel_groups_cover_every_answer_and_send(month):
    for by in ("journey", "channel"):
        report = build_report(month.app, START, END, by=by)
        assert sum(f.total_answers for f in report.groups.values()) == report.overall.total_answers
        assert sum(f.sends for f in report.groups.values()) == report.overall.sends
    report = build_report(month.app, START, END, by="journey")
    assert report.groups["nps"].answers["nps"] == report.overall.answers["nps"]
    assert report.groups["survey"].answers["csat"] == report.overall.answers["csat"]
    assert report.groups["onboarding"].total_answers == 0 and report.groups["onboarding"].csat is None
    channels = build_report(month.app, START, END, by="channel").groups
    assert channels["email"].states["delivered"] > 0
    assert channels["(none)"].states["delivered"] == 0  # never sent: no channel


def test_daily_trend(month):
    report = build_report(month.app, START, END)
    assert [d.day for d in report.days] == [START.date() + timedelta(days=i) for i in range(32)]
    per_day: dict[date, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for _, kind, score, when in month.answers.values():
        per_day[when.date()][kind].append(score)
    sends = Counter(when.date() for _, _, when in month.finals.values())
    for day in report.days:
        scores = per_day[day.day]
        assert day.figures.answers == {k: len(scores[k]) for k in ("csat", "nps", "ces")}
        csat = scores["csat"]
        assert day.figures.csat == approx(100 * sum(s >= 4 for s in csat) / len(csat) if csat else None)
        ces = scores["ces"]
        assert day.figures.ces == approx(sum(ces) / len(ces) if ces else None)
        assert day.figures.sends == sends[day.day]
    assert sum(d.figures.total_answers for d in report.days) == report.overall.total_answers


def test_schedule_depth_counts_planned_future_sends(month):
    app = month.app
    report = build_report(app, START, END)
    now = month.clock.now()
    assert report.depth.start == now == END
    rows = app.schedule.due_between(None, None, limit=10**6)  # the test may load it all
    want = Counter()
    for score in (to_ms(due) for _, due in rows):
        offset = (from_ms(score).date() - now.date()).days
        want["overdue" if score < to_ms(now) else offset if offset < DEPTH_DAYS else "later"] += 1
    assert [n for _, n in report.depth.days] == [want[i] for i in range(DEPTH_DAYS)]
    assert (report.depth.overdue, report.depth.later) == (want["overdue"], want["later"])
    assert [d for d, _ in report.depth.days] == [
        date(2026, 4, 2) + timedelta(days=i) for i in range(DEPTH_DAYS)
    ]
    # cn-b and kr-a signed up on days 8 and 12: their NPS is due on 7 and 11 April.
    due = dict(report.depth.days)
    assert due[date(2026, 4, 7)] >= 1 and due[date(2026, 4, 11)] >= 1
    assert report.depth.later >= 1  # br-c's NPS (19 April)


def test_html_report(month):
    report = build_report(month.app, START, END, by="locale")
    page = render_html(report, title="March <report>")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<title>March &lt;report&gt;</title>" in page
    svgs = re.findall(r"<svg\b[^>]*>", page)
    labels = [re.search(r'aria-label="([^"]*)"', s).group(1) for s in svgs]
    assert labels == [
        "Trend of CSAT % per UTC day", "Trend of NPS per UTC day", "Trend of CES (avg) per UTC day",
        "CSAT % by locale", "NPS by locale", "CES (avg) by locale",
        f"Sends due per UTC day, next {DEPTH_DAYS} days",
    ]  # fmt: skip
    assert page.count("<title>") >= len(svgs) + 1 and page.count("<desc ") == len(svgs)
    # One bar per group with a score, per chart; one bar per day of schedule depth.
    for kind in ("csat", "nps", "ces"):
        with_score = sum(f.score(kind) is not None for f in report.groups.values())
        assert page.count(f'class="bar {kind}"') == with_score > 0
        days = sum(d.figures.score(kind) is not None for d in report.days)
        assert page.count(f'class="point {kind}"') == days > 0
    assert page.count('<polyline class="series') >= 1
    assert page.count('class="bar depth"') == DEPTH_DAYS
    # Each chart has a table with the same figures; an empty figure shows a dash.
    assert page.count("<table>") >= 5 and '<td class="num">–</td>' in page
    assert ">zh_Hans<" in page and ">ko<" in page


def test_to_mapping_is_json(month):
    data = json.loads(json.dumps(build_report(month.app, START, END, by="country").to_mapping()))
    assert data["period"] == {"since": "2026-03-02T00:00:00.000Z", "until": "2026-04-02T00:00:00.000Z"}
    assert data["by"] == "country" and set(data["groups"]) == set(expected(month, START, END, "country"))
    assert len(data["trend"]) == 32 and len(data["schedule_depth"]["days"]) == DEPTH_DAYS
    assert data["overall"]["answers"]["total"] == len(month.answers)


def test_text_output(month):
    text = render_text(build_report(month.app, START, END, by="country"))
    assert "overall" in text and "country=JP" in text and "Schedule depth" in text


# -- the command ---------------------------------------------------------------------------------


@pytest.fixture
def cli(month, tmp_path, monkeypatch):
    """The month copied into an embedded store, and the environment the command reads."""
    app = month.app
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OUTREACH_REDIS_URL", raising=False)
    monkeypatch.setenv("OUTREACH_PREFIX", app.settings.prefix)
    monkeypatch.setenv("OUTREACH_CONFIG_DIR", str(app.settings.config_dir))
    monkeypatch.setenv("OUTREACH_TEMPLATES_DIR", str(STARTER / "templates"))
    monkeypatch.setenv("OUTREACH_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setenv("OUTREACH_ARCHIVE_URL", app.settings.archive_url)
    with embedded_client() as client:
        for key in app.client.scan_iter(match=app.settings.prefix + "*", count=1000):
            value = app.client.dump(key)
            if value is not None:
                client.restore(key, 0, value, replace=True)
    return CliRunner()


def test_command_writes_html_and_prints_json(month, cli, tmp_path):
    args = ["--since", "2026-03-02", "--until", "2026-04-02T00:00:00Z", "--by", "country", "--json",
            "--html", "out/report.html"]  # fmt: skip
    result = cli.invoke(report_command, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    want = build_report(month.app, START, END, by="country").to_mapping()
    for key in ("period", "by", "overall", "groups", "trend"):
        assert data[key] == want[key], key
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 7 and "CSAT % by country" in page


def test_command_prints_a_table_and_defaults_to_the_last_30_days(month, cli):
    result = cli.invoke(report_command, ["--since", "2026-03-02", "--until", "2026-04-01"])
    assert result.exit_code == 0, result.output
    assert "Outreach report 2026-03-02T00:00:00.000Z .. 2026-04-01T23:59:59.999Z (by locale)" in result.output
    assert re.search(r"^locale=ja\s", result.output, re.M)
    result = cli.invoke(report_command, ["--json"])  # the real clock: today, and nothing in it
    assert result.exit_code == 0, result.output
    period = json.loads(result.output)["period"]
    since, until = (datetime.fromisoformat(period[k]) for k in ("since", "until"))
    assert until - since == timedelta(days=30) and abs(until - datetime.now(UTC)) < timedelta(minutes=5)
    bad = cli.invoke(report_command, ["--since", "2026-03-02T10:00"])
    assert bad.exit_code == 1 and "needs a UTC offset" in bad.output
    bad = cli.invoke(report_command, ["--by", "planet"])
    assert bad.exit_code == 2 and "planet" in bad.output


# -- small cases, on fakeredis and on a real Redis ---------------------------------------------------


def test_bad_by_and_periods_raise_input_error(app):
    with pytest.raises(InputError) as err:
        build_report(app, by="planet")
    assert err.value.field == "by" and err.value.value == "planet"
    assert set(GROUPINGS) == {"locale", "journey", "channel", "country"}
    with pytest.raises(InputError, match="since"):
        build_report(app, at("2026-03-10T00:00:00Z"), at("2026-03-01T00:00:00Z"))
    with pytest.raises(InputError, match="since"):
        build_report(app, datetime(2026, 3, 1))


def test_an_empty_period_divides_by_nothing(app):
    report = build_report(app, by="journey")
    assert report.overall.csat is None and report.overall.nps is None and report.overall.ces is None
    assert report.overall.response_rate("csat") is None and report.groups == {}
    assert len(report.days) == 31 and all(d.figures.sends == 0 for d in report.days)
    page = render_html(report)
    assert page.count("– no answers") == 3 and page.count("<svg") == 7
    assert not any(f'class="bar {kind}"' in page for kind in ("csat", "nps", "ces"))
    assert "overall" in render_text(report)
    json.dumps(report.to_mapping())


def test_schedule_depth_counts_each_utc_day_at_its_edges(app, clock):
    now = clock.now()  # 2026-03-20T06:00:00Z
    planned = {
        "overdue": "2026-03-20T05:59:59.999Z",
        "now": "2026-03-20T06:00:00Z",
        "last-ms-of-day-0": "2026-03-20T23:59:59.999Z",
        "day-1": "2026-03-21T00:00:00Z",
        "day-1-late": "2026-03-21T18:00:00Z",
        "day-13": "2026-04-02T23:59:59.999Z",
        "later": "2026-04-03T00:00:00Z",
        "much-later": "2026-09-01T00:00:00Z",
        "claimed": "2026-03-20T06:00:00Z",
    }
    ids = {label: plan_send(app, label, at(due)) for label, due in planned.items()}
    claims = app.schedule.claim(1)
    assert [c.send_id for c in claims] == [ids["overdue"]]  # in flight now, no longer due
    depth = build_report(app).depth
    assert depth.start == now and [d for d, _ in depth.days][:2] == [date(2026, 3, 20), date(2026, 3, 21)]
    assert [n for _, n in depth.days] == [3, 2] + [0] * 11 + [1]
    assert (depth.overdue, depth.later, depth.in_flight, depth.total) == (0, 2, 1, 8)
    clock.set(at("2026-03-21T12:00:00Z"))  # nothing was claimed: yesterday's sends are overdue now
    depth = build_report(app).depth
    assert depth.days[0] == (date(2026, 3, 21), 1) and depth.overdue == 4 and depth.later == 1


def test_labels_are_escaped(app, customers, clock):
    planned = ingest(app, "interaction.resolved", "c-amelia", "2026-03-20T06:00:00Z", id="r").planned
    app.answer_survey(planned[0], "c-amelia", "csat", 5)
    hostile = '"><script>alert(1)</script>'
    app.client.hset(app.keys.answer(planned[0]), mapping={"locale": hostile, "journey": "j<b>&amp;"})
    escaped = {"locale": "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;", "journey": "j&lt;b&gt;&amp;amp;"}
    for by, raw in (("locale", hostile), ("journey", "j<b>&amp;")):
        report = build_report(app, by=by)
        assert list(report.groups) == [raw]
        page = render_html(report)
        assert "<script>" not in page and "<b>" not in page
        assert escaped[by] in page


def test_a_comment_after_the_period_keeps_the_answer_in_it(app, customers, clock):
    planned = ingest(app, "interaction.resolved", "c-amelia", "2026-03-20T06:00:00Z", id="r").planned
    app.answer_survey(planned[0], "c-amelia", "csat", 4)
    clock.set(at("2026-03-25T00:00:00Z"))
    app.surveys.comment(planned[0], "quick and friendly")  # updated_at moves, the index does not
    report = build_report(app, at("2026-03-19T00:00:00Z"), at("2026-03-21T00:00:00Z"))
    assert report.overall.answers["csat"] == 1 and report.overall.csat == 100.0
    assert [d.figures.answers["csat"] for d in report.days] == [0, 0, 1]


def test_language_of():
    tags = ("he_IL", "pt-BR", "zh_CN", "zh_Hans_CN", "zh_TW", "en", "", "xx_??")
    assert [language_of(t) for t in tags] == [
        "he", "pt", "zh_Hans", "zh_Hans", "zh_Hant", "en", "", "xx_??",
    ]  # fmt: skip
