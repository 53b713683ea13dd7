"""Experiments: variants of a step (template or timing), a holdout group, deterministic assignment,
the arm recorded with the send and archived, goal events, and the report per arm with its intervals."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from outreach import ConfigError, Outreach
from outreach.journeys.config import load_journeys
from outreach.journeys.experiments import Experiment, Variant, bucket
from outreach.report import build_report, render_html, render_text
from outreach.report.experiments import Arm, ExperimentFigures
from outreach.report.stats import mean, mean_difference, rate, rate_difference, sample_size
from outreach.schedule import Intent
from outreach.settings import STARTER

from .conftest import make_settings
from .helpers import deliver_due, ingest, outbox

JOURNEY = """
[journey]
name = "welcome"
category = "lifecycle"
trigger = "customer.signed_up"

[[journey.steps]]
name = "tips"
days = 2
at = "10:00"
template = "onboarding/tips"
experiment = "tips_tone"
holdout = 0.2
goal = "customer.activated"
goal_days = 7
sample_size = 50

[[journey.steps.variants]]
name = "control"

[[journey.steps.variants]]
name = "short"
template = "onboarding/welcome"

[[journey.steps.variants]]
name = "evening"
at = "19:00"
"""


def project(tmp_path, journey: str = JOURNEY):
    config = tmp_path / "config"
    shutil.copytree(STARTER / "config", config)
    for path in (config / "journeys").glob("*.toml"):
        path.unlink()  # only the experiment's journey: nothing else shares the caps
    (config / "journeys" / "welcome.toml").write_text(journey)
    return config


def app_with(tmp_path, client, clock, customers: int = 0) -> Outreach:
    app = Outreach(make_settings(tmp_path, config_dir=project(tmp_path), archive_after_seconds=0),
                   client=client, clock=clock)  # fmt: skip
    for n in range(customers):
        app.upsert_customer(
            {"id": f"c{n}", "name": "Ana", "email": f"c{n}@example.com", "zone": "Europe/Lisbon"}
        )
    return app


def experiment_of(app: Outreach) -> Experiment:
    experiment = app.journeys.experiments["tips_tone"][1].experiment
    assert experiment is not None
    return experiment


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        (('name = "short"', 'name = "control"'), "variants", "variant names must be unique"),
        (('name = "short"\n', 'name = "short"\nweight = 0\n'), "weight", "must be a number > 0"),
        (('name = "short"\n', 'name = "short"\nweight = -2\n'), "weight", "must be a number > 0"),
        (('template = "onboarding/welcome"', 'template = "onboarding/nope"'), "template", "missing"),
        (('goal = "customer.activated"', 'goal = "order.placed"'), "goal", "declared event type"),
        (("holdout = 0.2", "holdout = 1.0"), "holdout", "0 <= holdout < 1"),
        (("holdout = 0.2", "holdout = -0.1"), "holdout", "0 <= holdout < 1"),
        (('name = "evening"', 'name = "holdout"'), "name", "holdout group's name"),
        (('at = "19:00"', 'at = "25:00"'), "at", ""),
        (("goal_days = 7", "goal_days = 0"), "goal_days", "from 1 to 366"),
        (("sample_size = 50", "sample_size = -1"), "sample_size", "whole number"),
        (('experiment = "tips_tone"', 'experiment = "tips tone"'), "experiment", "without spaces"),
        (
            ('[[journey.steps.variants]]\nname = "short"', '[[journey.steps.variants]]\nname = "2short"'),
            "name",
            "must be an identifier",
        ),
    ],
)
def test_a_bad_experiment_is_refused_naming_file_journey_step_and_field(tmp_path, change, field, problem):
    config = project(tmp_path, JOURNEY.replace(*change))
    with pytest.raises(ConfigError) as caught:
        load_journeys(config, STARTER / "templates")
    message = str(caught.value)
    assert "welcome.toml" in message and "journey 'welcome'" in message and "(tips)" in message
    assert f"{field}=" in message and problem in message


def test_an_experiment_needs_two_variants_and_variants_need_an_experiment(tmp_path):
    one = JOURNEY[: JOURNEY.index('[[journey.steps.variants]]\nname = "short"')]
    with pytest.raises(ConfigError, match=r"variants=.*at least 2"):
        load_journeys(project(tmp_path, one), STARTER / "templates")
    plain = JOURNEY[: JOURNEY.index("[[journey.steps.variants]]")].replace('experiment = "tips_tone"\n', "")
    with pytest.raises(ConfigError, match=r"\(tips\): .*only a step with \[\[journey.steps.variants\]\]"):
        load_journeys(project(tmp_path / "b", plain), STARTER / "templates")


def test_two_steps_may_not_share_an_experiment(tmp_path):
    second = JOURNEY[JOURNEY.index("[[journey.steps]]") :].replace('name = "tips"', 'name = "more"')
    with pytest.raises(ConfigError, match=r"step 'more'.*experiment='tips_tone'.*already welcome.tips's"):
        load_journeys(project(tmp_path, JOURNEY + second), STARTER / "templates")


def test_the_experiment_name_defaults_to_journey_and_step(tmp_path):
    journeys = load_journeys(project(tmp_path, JOURNEY.replace('experiment = "tips_tone"\n', "")),
                             STARTER / "templates")  # fmt: skip
    assert set(journeys.experiments) == {"welcome.tips"}
    assert journeys.goals == {"customer.activated"}


# -- assignment ------------------------------------------------------------------------------

EXPERIMENT = Experiment(
    "tone",
    (Variant("control", 1.0, "t", {}), Variant("short", 1.0, "t2", {}), Variant("long", 2.0, "t3", {})),
    holdout=0.1,
)


@given(st.text(min_size=1, max_size=40))
def test_assignment_is_a_pure_function_of_experiment_and_customer(customer_id):
    place = bucket("tone", customer_id)
    assert 0 <= place < 1
    arm = EXPERIMENT.assign(customer_id)
    assert EXPERIMENT.assign(customer_id) == arm
    low, high = next((lo, hi) for a, lo, hi in EXPERIMENT.ranges if a.name == arm.name)
    assert low <= place < high
    assert (arm.name == "holdout") == (place < 0.1)


@settings(max_examples=12, deadline=None)
@given(
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from([0.0, 0.05, 0.1, 0.5]),
    st.lists(st.sampled_from([0.5, 1.0, 2.0, 3.5]), min_size=2, max_size=4),
)
def test_assignment_is_balanced_by_weight_with_the_holdout_fraction(offset, holdout, weights):
    experiment = Experiment(
        f"x{offset}", tuple(Variant(f"v{i}", w, "t", {}) for i, w in enumerate(weights)), holdout=holdout
    )
    n = 20_000
    counts: dict[str, int] = {}
    for i in range(n):
        arm = experiment.assign(f"cust-{offset + i}")
        counts[arm.name] = counts.get(arm.name, 0) + 1
    expected = {f"v{i}": (1 - holdout) * w / sum(weights) for i, w in enumerate(weights)}
    if holdout:
        expected["holdout"] = holdout
    assert set(counts) == set(expected)
    for name, share in expected.items():
        # Five standard errors of a binomial share: a failure is not chance.
        assert abs(counts[name] / n - share) < 5 * (share * (1 - share) / n) ** 0.5, counts


def test_assignment_does_not_depend_on_the_process_or_its_hash_seed():
    ids = [f"c{i}" for i in range(50)]
    here = [EXPERIMENT.assign(i).name for i in ids]
    code = (
        "from outreach.journeys.experiments import Experiment, Variant\n"
        "e = Experiment('tone', (Variant('control', 1.0, 't', {}), Variant('short', 1.0, 't2', {}),"
        " Variant('long', 2.0, 't3', {})), holdout=0.1)\n"
        f"print(','.join(e.assign(i).name for i in {ids!r}))"
    )
    for seed in ("1", "12345"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": seed})  # fmt: skip
        assert out.stdout.strip().split(",") == here


# -- planning and delivery -------------------------------------------------------------------


def deliver_for(app: Outreach, clock, days: int = 3) -> dict:
    """Deliver what comes due, hour by hour, as a running scheduler would; the outcomes by send id."""
    outcomes = {}
    for _ in range(days * 24):
        clock.set(clock.now() + timedelta(hours=1))
        outcomes |= {o.send_id: o for o in deliver_due(app)}
    return outcomes


def run_experiment(tmp_path, client, clock, customers: int = 30):
    app = app_with(tmp_path, client, clock, customers)
    planned = {}
    for n in range(customers):
        result = ingest(app, "customer.signed_up", f"c{n}", clock.now().isoformat(), id=f"su{n}")
        [planned[f"c{n}"]] = result.planned
    return app, planned


def test_each_customer_gets_their_arm_holdout_recorded_never_sent(tmp_path, client, clock):
    app, planned = run_experiment(tmp_path, client, clock)
    experiment = experiment_of(app)
    arms = {}
    lisbon = ZoneInfo("Europe/Lisbon")
    for customer_id, send_id in planned.items():
        send = app.schedule.get(send_id)
        arm = experiment.assign(customer_id)
        arms[send_id] = arm.name
        assert (send.intent.experiment, send.intent.variant) == ("tips_tone", arm.name)
        assert send.template == ("onboarding/welcome" if arm.name == "short" else "onboarding/tips")
        # The timing variant moves the local hour; the holdout is planned like the control.
        assert send.due.astimezone(lisbon).hour == (19 if arm.name == "evening" else 10)
    assert set(arms.values()) == {"control", "short", "evening", "holdout"}
    outcomes = deliver_for(app, clock)
    sent = {row["send_id"]: row for row in outbox(app)}
    for send_id, arm in arms.items():
        send = app.records.get(send_id)
        if arm == "holdout":
            assert (send.state, send.reason) == ("suppressed", "holdout")
            assert send_id not in sent
            assert "holdout group of experiment tips_tone" in app.records.history(send_id)[-1]["text"]
        else:
            assert outcomes[send_id].state == "delivered" and send_id in sent
    # The content variant renders its own template (onboarding/welcome's subject, not the tips').
    short = next(s for s, a in arms.items() if a == "short")
    control = next(s for s, a in arms.items() if a == "control")
    assert sent[short]["subject"] != sent[control]["subject"]
    assert "experiment tips_tone: arm short" in app.records.history(short)[0]["text"]
    # An arm is not a change of the step: nothing is re-planned or re-templated on the way.
    assert not any(e["what"] == "step_changed" for s in arms for e in app.records.history(s))


def test_the_arm_is_archived_and_explained(tmp_path, client, clock, monkeypatch):
    from click.testing import CliRunner

    from outreach.cli import commands

    app, planned = run_experiment(tmp_path, client, clock, customers=12)
    deliver_for(app, clock)
    clock.set(clock.now() + timedelta(seconds=1))
    assert app.archive_finished() >= 12
    rows = app.archive.database.rows("SELECT id, experiment, variant, state, reason FROM sends")
    experiment = experiment_of(app)
    by_id = {r[0]: r[1:] for r in rows}
    for customer_id, send_id in planned.items():
        arm = experiment.assign(customer_id).name
        assert by_id[send_id][:2] == ("tips_tone", arm)
        assert app.schedule.get(send_id) is None  # out of Redis: read back from the archive
        assert app.records.get(send_id).intent.variant == arm
    customer_id, send_id = next(iter(planned.items()))
    monkeypatch.setattr("outreach.cli.common._app", lambda: _Keep(app))
    result = CliRunner().invoke(commands.main, ["explain", send_id])
    assert result.exit_code == 0, result.output
    arm = experiment.assign(customer_id).name
    assert (
        f"variant   {arm} of experiment tips_tone: bucket {bucket('tips_tone', customer_id):.4f}"
        in result.output
    )
    as_json = CliRunner().invoke(commands.main, ["explain", send_id, "--json"])
    assert json.loads(as_json.output)["send"]["variant"] == arm


class _Keep:
    """The test's application as ``common._app()`` gives one (not closed after the command)."""

    def __init__(self, app):
        self.app = app

    def __enter__(self):
        return self.app

    def __exit__(self, *exc):
        return False


def test_sends_outside_experiments_keep_their_intent_ref():
    """An intent without an experiment is stored as before: its ref and fields did not change."""
    intent = Intent("j", "s", "lifecycle", "t", '["email"]', "{}", "", "customer.signed_up", "UTC", "")
    assert "experiment" not in intent.to_json() and "variant" not in intent.fields
    assert Intent.of(json.loads(intent.to_json())) == intent


# -- goals and the report --------------------------------------------------------------------


def test_goal_events_are_kept_counted_within_their_window_and_erased(tmp_path, client, clock):
    app, planned = run_experiment(tmp_path, client, clock, customers=40)
    deliver_for(app, clock)
    finished = {c: app.records.get(s).finished for c, s in planned.items()}
    ids = sorted(planned)
    inside, late, before = ids[:15], ids[15:20], ids[20:23]
    for c in inside:
        ingest(app, "customer.activated", c, (finished[c] + timedelta(days=6)).isoformat(), id=f"a{c}")
    for c in late:
        ingest(app, "customer.activated", c, (finished[c] + timedelta(days=8)).isoformat(), id=f"a{c}")
    for c in before:  # before the send: not caused by it
        ingest(app, "customer.activated", c, (finished[c] - timedelta(hours=1)).isoformat(), id=f"a{c}")
    assert client.zcard(app.keys.goals(inside[0])) == 1
    clock.set(clock.now() + timedelta(days=10))
    app.archive_finished()
    experiment = experiment_of(app)
    report = build_report(app, since=clock.now() - timedelta(days=30))
    [figures] = report.experiments
    assert figures.name == "tips_tone" and figures.step == "welcome.tips"
    assert list(figures.arms) == ["control", "short", "evening", "holdout"]
    for name, arm in figures.arms.items():
        mine = [c for c in ids if experiment.assign(c).name == name]
        assert arm.sends == len(mine) == len(arm.customers)
        assert arm.goal == len([c for c in mine if c in inside])
        assert arm.delivered == (0 if name == "holdout" else len(mine))
    # An export shows them; erasure takes them with it.
    [kept] = app.export_customer(inside[0])["experiment_goals"]
    assert (kept["type"], kept["event_id"]) == ("customer.activated", f"a{inside[0]}")
    app.erase_customer(inside[0])
    assert client.exists(app.keys.goals(inside[0])) == 0
    assert client.exists(app.keys.goals(inside[1])) == 1


def test_the_report_per_arm_matches_scipy_on_a_constructed_archive(tmp_path, client, clock):
    app, planned = run_experiment(tmp_path, client, clock, customers=60)
    deliver_for(app, clock)
    clock.set(clock.now() + timedelta(seconds=1))
    app.archive_finished()
    db = app.archive.database
    sends = db.rows("SELECT id, customer_id, variant, state FROM sends WHERE experiment = 'tips_tone'")
    delivered = [r for r in sends if r[3] == "delivered"]
    clicked = {r[0] for i, r in enumerate(delivered) if i % 3 == 0}
    with db.transaction() as cursor:
        for send_id, customer_id, _, _ in delivered:
            kind = "click" if send_id in clicked else "open"
            cursor.run("INSERT INTO clicks (send_id, customer_id, kind, at_ms, url) VALUES (?, ?, ?, ?, ?)",
                       (send_id, customer_id, kind, 1, "https://example.com"))  # fmt: skip
        for i, (send_id, customer_id, _, _) in enumerate(delivered[:30]):
            cursor.run(
                "INSERT INTO answers (send_id, customer_id, kind, score, band, version, changes, answered_ms,"
                " scored_ms, updated_ms) VALUES (?, ?, 'csat', ?, 'x', 1, 1, 1, 1, 1)",
                (send_id, customer_id, 1 + i % 5),
            )
    report = build_report(app, since=clock.now() - timedelta(days=30))
    [figures] = report.experiments
    scores = {}
    for name, arm in figures.arms.items():
        rows = [r for r in sends if r[2] == name]
        arm_delivered = [r for r in rows if r[3] == "delivered"]
        k = len([r for r in arm_delivered if r[0] in clicked])
        assert (arm.sends, arm.delivered, arm.clicked) == (len(rows), len(arm_delivered), k)
        if arm.delivered:
            ci = scipy_stats.binomtest(k, len(arm_delivered)).proportion_ci(method="wilson")
            assert arm.click_rate.low == pytest.approx(ci.low) and arm.click_rate.high == pytest.approx(
                ci.high
            )
        scores[name] = arm.scores
    assert sum(len(s) for s in scores.values()) == 30
    text = render_text(report)
    assert "Experiment tips_tone on welcome.tips, goal customer.activated within 7 days" in text
    assert "vs control, 95 % CI [" in text
    assert "fewer sends than the 50 per arm planned" in text  # the stopping rule: no decision yet
    html = render_html(report)
    assert 'id="h-experiments"' in html and "tips_tone" in html
    assert report.to_mapping()["experiments"]["tips_tone"]["arms"]["holdout"]["delivered"] == 0


def test_verdicts_in_plain_words():
    figures = ExperimentFigures("e", goal="customer.activated", goal_days=7, declared=True)
    figures.arms = {
        "control": Arm("control", sends=1000, goal=100),
        "short": Arm("short", sends=1000, goal=160),
    }
    [goal] = [c for c in figures.comparisons() if c.measure == "goal rate"]
    d = rate_difference(160, 1000, 100, 1000)
    assert goal.sentence() == (f"short: +6.0 pts goal rate vs control, 95 % CI [{d.low * 100:+.1f}, "
                               f"{d.high * 100:+.1f}]: better")  # fmt: skip
    figures.arms["short"].goal = 105
    [goal] = [c for c in figures.comparisons() if c.measure == "goal rate"]
    assert goal.sentence().endswith("not yet distinguishable")
    figures.arms["short"].goal = 40
    assert [c for c in figures.comparisons() if c.measure == "goal rate"][0].sentence().endswith("worse")


# -- the statistics, against published values ------------------------------------------------


def test_wilson_and_newcombe_intervals_match_newcombes_worked_examples():
    # Newcombe (1998), Statistics in Medicine 17: 81/263 -> 0.2553 to 0.3662 (Wilson);
    # 56/70 - 48/80 -> 0.0524 to 0.3339 (method 10, hybrid score).
    one = rate(81, 263)
    assert (round(one.low, 4), round(one.high, 4)) == (0.2553, 0.3662)
    d = rate_difference(56, 70, 48, 80)
    assert d.value == pytest.approx(0.2)
    assert (round(d.low, 4), round(d.high, 4)) == (0.0524, 0.3339)
    assert rate(0, 0) is None and rate_difference(1, 2, 0, 0) is None


def test_mean_intervals_are_students_and_welchs():
    m = mean([1, 2, 3, 4, 5])
    half = scipy_stats.t.ppf(0.975, 4) * (2.5**0.5) / 5**0.5
    assert (m.value, m.low, m.high) == pytest.approx((3.0, 3.0 - half, 3.0 + half))
    d = mean_difference([1, 2, 3, 4], [2, 3, 4, 5, 6])
    expected = scipy_stats.ttest_ind([1, 2, 3, 4], [2, 3, 4, 5, 6], equal_var=False).confidence_interval()
    assert (d.value, d.low, d.high) == pytest.approx((-1.5, expected.low, expected.high))
    assert mean([4]) is None and mean_difference([1, 2], [3]) is None


def test_sample_size_per_arm_for_a_fixed_horizon():
    # 10 % -> 12 % at 5 % two-sided and 80 % power: 3,841 per arm (Fleiss, no continuity correction).
    assert sample_size(0.10, 0.02) == 3841
    assert sample_size(0.10, 0.02, power=0.9) > 3841 > sample_size(0.10, 0.04)
    with pytest.raises(ValueError):
        sample_size(0.99, 0.02)


def test_the_size_command_says_how_many_sends_per_arm():
    from click.testing import CliRunner

    from outreach.cli import commands

    result = CliRunner().invoke(
        commands.main, ["experiments", "size", "--baseline", "0.1", "--effect", "0.02"]
    )
    assert result.exit_code == 0 and result.output.startswith("3841 sends per arm (10.0% -> 12.0%")
    bad = CliRunner().invoke(commands.main, ["experiments", "size", "--baseline", "1.5", "--effect", "0.02"])
    assert bad.exit_code != 0 and "must be rates in (0, 1)" in bad.output


def test_a_variant_is_previewed_and_checked_with_its_own_template(tmp_path, monkeypatch):
    from outreach.errors import OutreachError
    from outreach.journeys import quality
    from outreach.journeys.preview import preview
    from outreach.localization.locales import load_locales
    from outreach.localization.render import Renderer

    config = project(tmp_path)
    journeys = load_journeys(config, STARTER / "templates")
    locales = load_locales(config)
    renderer = Renderer(STARTER / "templates", locales)
    plain, _ = preview(renderer, journeys, "welcome.tips", locale="en")
    short, _ = preview(renderer, journeys, "welcome.tips:short", locale="en")
    evening, _ = preview(renderer, journeys, "welcome.tips:evening", locale="en")
    assert short.subject != plain.subject and evening.subject == plain.subject
    with pytest.raises(
        OutreachError, match=r"welcome.tips:nope.*no such variant \(variants: control, short, evening\)"
    ):
        preview(renderer, journeys, "welcome.tips:nope", locale="en")
    # `i18n check` renders the variants that have a template of their own, too.
    seen = set()

    def record(renderer, journeys, ref, **kwargs):
        seen.add(ref)
        raise OutreachError("not rendered here")

    monkeypatch.setattr(quality, "preview", record)
    monkeypatch.setattr(quality, "page_problems", lambda renderer, tag: [])
    quality.rendering_report(renderer, journeys, locales)
    assert seen == {"welcome.tips", "welcome.tips:short"}


def test_the_experiments_query_runs_on_postgresql(postgres_url, tmp_path, clock):
    """The migration and the report's one query, on the archive's other database."""
    import uuid

    import fakeredis
    import psycopg

    name = f"x_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = postgres_url.rsplit("/", 1)[0] + f"/{name}"
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    settings_ = make_settings(
        tmp_path, config_dir=project(tmp_path), archive_after_seconds=0, archive_url=url
    )
    app = Outreach(settings_, client=client, clock=clock)
    try:
        for n in range(20):
            app.upsert_customer(
                {"id": f"c{n}", "name": "Ana", "email": f"c{n}@example.com", "zone": "Europe/Lisbon"}
            )
            ingest(app, "customer.signed_up", f"c{n}", clock.now().isoformat(), id=f"su{n}")
        deliver_for(app, clock)
        ingest(app, "customer.activated", "c1", clock.now().isoformat(), id="act1")
        clock.set(clock.now() + timedelta(seconds=1))
        assert app.archive_finished() == 20
        with app.archive.database.transaction() as cursor:
            clicks = "INSERT INTO clicks (send_id, customer_id, kind, at_ms, url) SELECT id, customer_id,"
            cursor.run(clicks + " 'click', 1, 'u' FROM sends WHERE state = 'delivered'")
        [figures] = build_report(app, since=clock.now() - timedelta(days=30)).experiments
        arms = figures.arms.values()
        assert sum(a.sends for a in arms) == 20 and sum(a.goal for a in arms) == 1
        assert all(a.clicked == a.delivered for a in arms)
    finally:
        app.archive.database.close()


def test_answers_without_spread_make_no_interval_and_no_winner():
    from outreach.report.stats import mean, mean_difference

    assert mean_difference([5, 5], [4, 4]) is None
    assert mean([4, 4, 4]) is None


def test_an_experiment_no_step_declares_any_more_compares_no_arms():
    from outreach.archive.queries import ExperimentSend
    from outreach.report.experiments import fold

    def send(i, variant, state="delivered"):
        return ExperimentSend(f"s{i:04}", f"c{i}", "gone_exp", variant, state, 1000, False, "", None)

    [figures] = fold([send(1, "holdout", "suppressed"), send(2, "control"), send(3, "short")], {}, {})
    assert figures.control is None and figures.comparisons() == []
