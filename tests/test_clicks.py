"""Click tracking, privacy first: signed ``/c/`` links that redirect only where they were signed to,
clicks kept with their send in Redis or in the archive (and moved with it), one first click however
many come at once, opens only where a category opts in, nothing left once a customer is erased."""

from __future__ import annotations

import re
import threading
import uuid
from datetime import timedelta
from urllib.parse import unquote, urlsplit

import fakeredis
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from outreach import Outreach, SimulatedClock
from outreach.clicks import MAX_KEPT, Clicks
from outreach.customers.engagement import Engagement
from outreach.declarations import declare
from outreach.errors import ConfigError, InputError
from outreach.journeys.preview import preview
from outreach.links import InvalidToken, click_token, make_token, read_token, tracker, untracked
from outreach.store.keys import send_id_for
from outreach.timing import parse_instant

from .conftest import CUSTOMERS, T0, make_settings
from .helpers import outbox, plan_send, starter_project
from .test_archive import deliver_all
from .test_web_pages import web_client

ORDER_URL = "https://shop.example.com/orders/B-2002?from=mail&lang=en"
ORDER = {"order_id": "B-2002", "new_eta": "2026-03-27", "order_url": ORDER_URL}
SECRET = "s3cret-for-links"
LATER = parse_instant("2027-01-01T00:00:00Z")


def make_app(tmp_path, client=None, archive_url: str = "sqlite://", config_dir=None) -> Outreach:
    overrides = {"archive_url": archive_url, "archive_after_seconds": 0}
    if config_dir is not None:
        overrides["config_dir"] = config_dir
    app = Outreach(
        make_settings(tmp_path, **overrides),
        client=client if client is not None else fakeredis.FakeRedis(server=fakeredis.FakeServer()),
        clock=SimulatedClock(parse_instant(T0)),
    )
    for profile in CUSTOMERS.values():
        app.upsert_customer(profile)
    return app


def delivered(app: Outreach, label: str = "e1", customer_id: str = "c-amelia", **intent) -> str:
    """An order-delay email with an order link, delivered; its send id."""
    send_id = plan_send(app, f"{label}-{uuid.uuid4().hex[:6]}", app.clock.now(), customer_id, data=ORDER,
                        **intent)  # fmt: skip
    deliver_all(app, [send_id])
    assert app.records.get(send_id).state.value == "delivered"
    return send_id


def email_of(app: Outreach, send_id: str) -> dict:
    return next(row for row in outbox(app) if row["send_id"] == send_id)


def tracked_paths(html: str, kind: str = "c") -> list[str]:
    """The paths of the tracked links (``c``) or open images (``o``) in an email's HTML."""
    return [urlsplit(url).path for url in re.findall(rf'"(http://localhost:8000/{kind}/[^"]+)"', html)]


# -- tokens -----------------------------------------------------------------------------------

_hosts = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z]{2,6}){1,2}", fullmatch=True)
_paths = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp")), max_size=40)


@given(
    scheme=st.sampled_from(["http", "https", "HTTPS"]),
    host=_hosts,
    port=st.none() | st.integers(1, 65535),
    path=_paths,
    query=_paths,
)
def test_any_http_url_signed_into_a_click_token_comes_back_unchanged(scheme, host, port, path, query):
    url = f"{scheme}://{host}{f':{port}' if port else ''}/{path.replace(' ', '')}?{query.replace(' ', '')}"
    url = "".join(ch for ch in url if not ch.isspace())
    token = click_token(SECRET, "s0123456789ab012345.c-1", "c-1", url, LATER)
    fields = read_token([SECRET, "older"], "click", token, parse_instant(T0))
    assert fields == {"s": "s0123456789ab012345.c-1", "c": "c-1", "u": url}


def test_the_redirect_goes_to_the_signed_url_itself_non_ascii_percent_encoded(tmp_path):
    app = make_app(tmp_path)
    secret, send_id = app.settings.secret, send_id_for("ev", "j", "s", "c-amelia")

    @settings(max_examples=40, deadline=None)
    @given(host=_hosts, path=_paths, query=_paths)
    def check(host, path, query):
        url = "".join(ch for ch in f"https://{host}/{path}?{query}" if not ch.isspace())
        token = click_token(secret, send_id, "c-amelia", url, LATER)
        got = web.get(f"/c/{token}")
        assert got.status_code == 302
        location = got.headers["location"]
        assert unquote(location) == unquote(url) and location.isascii()
        if url.isascii():
            assert location == url

    with web_client(app) as web:
        check()


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "/orders/1",
        "//evil.example/x",
        "mailto:help@example.com",
        "https://user:pw@shop.example.com/",
        "https://shop.example.com/a b",
        "https://shop.example.com/\r\nLocation: https://evil.example/",
        "https:///nohost",
        "https://shop.example.com/" + "x" * 2000,
    ],
)
def test_only_an_http_or_https_target_is_signed(url):
    with pytest.raises(InputError) as caught:
        click_token(SECRET, "s0123456789ab012345.c-1", "c-1", url, LATER)
    assert caught.value.field == "url" and caught.value.value == url


def test_a_click_token_is_refused_when_altered_expired_or_made_for_another_purpose():
    now = parse_instant(T0)
    token = click_token(SECRET, "s0123456789ab012345.c-1", "c-1", ORDER_URL, now + timedelta(days=1))
    body, mac = token.split(".")
    forged = make_token("not-the-secret", "click", {"s": "x", "c": "c-1", "u": "https://evil.example"})
    for bad, problem in (
        (body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + mac, "signature"),
        (forged, "signature"),
    ):
        with pytest.raises(InvalidToken, match=problem):
            read_token(SECRET, "click", bad, now)
    for purpose in ("answer", "unsubscribe", "open"):  # the purpose is signed: another one never matches
        with pytest.raises(InvalidToken):
            read_token(SECRET, purpose, token, now)
    with pytest.raises(InvalidToken, match="expired"):
        read_token(SECRET, "click", token, now + timedelta(days=2))


# -- templates --------------------------------------------------------------------------------


def test_track_signs_a_link_when_the_category_tracks_clicks_and_leaves_it_alone_otherwise():
    now = parse_instant(T0)
    on = tracker(SECRET, "https://out.example.com/", "s0123456789ab012345.c-1", "c-1", now + timedelta(1))
    link = on(ORDER_URL)
    assert link.startswith("https://out.example.com/c/")
    assert read_token(SECRET, "click", link.rsplit("/", 1)[1], now)["u"] == ORDER_URL
    off = tracker(SECRET, "https://out.example.com", "s0123456789ab012345.c-1", "c-1", now, enabled=False)
    assert off(ORDER_URL) == ORDER_URL == untracked(ORDER_URL)


def test_an_order_delay_email_carries_a_tracked_order_link_in_its_html_and_text(tmp_path):
    app = make_app(tmp_path)
    send_id = delivered(app)
    row = email_of(app, send_id)
    [html_link] = tracked_paths(row["html"])
    assert ORDER_URL not in row["html"] and "/c/" in row["body"]
    token = html_link.rsplit("/", 1)[1]
    assert read_token(app.settings.secrets, "click", token, app.clock.now()) == {
        "s": send_id, "c": "c-amelia", "u": ORDER_URL,
    }  # fmt: skip
    # No open image unless the category asks for one.
    assert tracked_paths(row["html"], "o") == [] and "/o/" not in row["html"]


def test_previews_and_checks_render_track_as_the_url_itself(tmp_path):
    app = make_app(tmp_path)
    rendered, _ = preview(app.renderer, app.journeys, "order_delay.notice", locale="en_US", channel="email")
    assert 'href="https://shop.example.com/orders/A-1001"' in rendered.html
    assert "/c/" not in rendered.html


def test_a_link_that_is_not_http_fails_the_render_naming_the_url(tmp_path):
    app = make_app(tmp_path)
    send_id = plan_send(app, "js", app.clock.now(), data={**ORDER, "order_url": "javascript:alert(1)"})
    deliver_all(app, [send_id])
    send = app.records.get(send_id)
    assert (send.state.value, send.reason) == ("failed", "template_error")
    assert "url='javascript:alert(1)'" in app.records.history(send_id)[-1]["text"]
    assert outbox(app) == []


def test_the_access_log_never_holds_a_click_or_open_token():
    import logging

    from outreach.web.security import RedactPageTokens

    for path in ("/c/eyJwIjoiY2xpY2sifQ.c2ln", "/o/eyJwIjoib3BlbiJ9.c2ln?x=1"):
        record = logging.LogRecord("uvicorn.access", 20, "", 0, "%s %s %s", ("1.2.3.4", "GET", path), None)
        RedactPageTokens().filter(record)
        assert record.args[2] in ("/c/…", "/o/…?x=1")


def project_with(tmp_path, **lifecycle: str):
    """A copy of the starter project whose categories.toml adds ``key = value`` lines to
    ``[lifecycle]`` (the category of the sends these tests plan)."""
    config, _ = starter_project(tmp_path / "project")
    path = config / "categories.toml"
    lines = "".join(f"{key} = {value}\n" for key, value in lifecycle.items())
    path.write_text(path.read_text().replace("[lifecycle]\n", f"[lifecycle]\n{lines}"))
    return config


def test_a_category_that_tracks_no_clicks_keeps_its_links_as_they_are(tmp_path):
    app = make_app(tmp_path, config_dir=project_with(tmp_path, track_clicks="false"))
    send_id = delivered(app)
    row = email_of(app, send_id)
    assert f'href="{ORDER_URL.replace("&", "&amp;")}"' in row["html"] and "/c/" not in row["html"]


def test_the_open_image_is_only_in_the_emails_of_a_category_that_opts_in(tmp_path):
    app = make_app(tmp_path, config_dir=project_with(tmp_path, open_pixel="true"))
    send_id = delivered(app)
    row = email_of(app, send_id)
    [image] = tracked_paths(row["html"], "o")
    assert row["html"].index(image) < row["html"].index("</body>")
    assert "/o/" not in row["body"]
    with web_client(app) as web:
        got = web.get(image)
        assert got.status_code == 200 and got.headers["content-type"] == "image/gif"
        assert got.content.startswith(b"GIF89a")
        bad = web.get(image[:-3] + "xyz")
        assert bad.status_code == 400 and bad.headers["content-type"] == "image/gif"
    assert app.clicks.clicked_many([send_id], "open") == {send_id: app.clock.now()}
    assert app.clicks.first_click(send_id) is None, "an open is not a click"
    assert [e["what"] for e in app.records.history(send_id)][-1] == "opened"
    assert sum(Engagement(app.client, app.keys).hours("c-amelia")["click"].values()) == 0


@pytest.mark.parametrize(
    ("key", "value"), [("track_clicks", '"yes"'), ("open_pixel", "1"), ("track_clicks", "[true]")]
)
def test_the_category_switches_must_be_true_or_false(tmp_path, key, value):
    config = project_with(tmp_path, **{key: value})
    with pytest.raises(ConfigError, match=rf"\[lifecycle\]: {key}=.*must be true or false"):
        declare(config)


# -- the redirect -----------------------------------------------------------------------------


def test_a_click_is_recorded_with_its_send_and_redirects_to_the_signed_target(tmp_path):
    app = make_app(tmp_path)
    send_id = delivered(app)
    [path] = tracked_paths(email_of(app, send_id)["html"])
    app.clock.advance(timedelta(hours=5))
    clicked_at = app.clock.now()
    with web_client(app) as web:
        got = web.get(path)
        assert got.status_code == 302 and got.headers["location"] == ORDER_URL
        assert got.headers["referrer-policy"] == "no-referrer"
        assert got.headers["cache-control"] == "no-store"
        # Nothing in the request changes the target: no open redirect.
        again = web.get(path + "?next=https://evil.example/", headers={"Referer": "https://evil.example"})
        assert again.headers["location"] == ORDER_URL
    assert app.clicks.first_click(send_id) == clicked_at
    assert app.client.hget(app.keys.send(send_id), "clicks") == b"2"
    entries = [e for e in app.records.history(send_id) if e["what"] == "clicked"]
    assert [(e["url"], e["text"]) for e in entries] == [(ORDER_URL, f"a link to {ORDER_URL}")] * 2
    stats = app.stats()
    assert (stats["clicks:click"], stats["clicked:click"]) == (2, 1)
    with web_client(app) as web:
        metrics = web.get("/metrics").text
    assert 'outreach_clicks_total{kind="click"} 2.0' in metrics
    assert 'outreach_clicked_sends_total{kind="click"} 1.0' in metrics


def test_explain_shows_the_click(tmp_path, monkeypatch):
    from .test_delivery import run_cli

    app = make_app(tmp_path)
    send_id = delivered(app)
    app.clicks.record(send_id, "c-amelia", ORDER_URL)
    explained = run_cli(monkeypatch, app, "explain", send_id)
    assert re.search(rf"clicked\s+a link to {re.escape(ORDER_URL)}", explained), explained


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-4] + ("AAAA" if not t.endswith("AAAA") else "BBBB"),
        lambda t: "x" + t,
        lambda t: "not-a-token",
    ],
)
def test_a_bad_token_gets_a_page_never_a_redirect(tmp_path, tamper):
    app = make_app(tmp_path)
    send_id = delivered(app)
    [path] = tracked_paths(email_of(app, send_id)["html"])
    with web_client(app) as web:
        got = web.get("/c/" + tamper(path.rsplit("/", 1)[1]))
    assert got.status_code == 400 and "location" not in got.headers
    assert got.headers["content-type"].startswith("text/html")
    assert app.clicks.first_click(send_id) is None


def test_an_expired_link_or_one_for_another_page_gets_a_page_never_a_redirect(tmp_path):
    app = make_app(tmp_path)
    send_id = delivered(app)
    [path] = tracked_paths(email_of(app, send_id)["html"])
    token = path.rsplit("/", 1)[1]
    with web_client(app) as web:
        # A survey answer's token is genuine, but not for this page.
        answer = make_token(
            app.settings.secret, "answer", {"s": send_id, "c": "c-amelia", "k": "csat", "v": 5}
        )
        assert web.get("/c/" + answer).status_code == 400
        app.clock.advance(timedelta(days=app.settings.link_days + 1))
        got = web.get("/c/" + token)
    assert got.status_code == 410 and "location" not in got.headers
    assert app.clicks.first_click(send_id) is None


def test_a_head_request_or_a_prefetch_is_answered_without_counting(tmp_path):
    app = make_app(tmp_path)
    send_id = delivered(app)
    [path] = tracked_paths(email_of(app, send_id)["html"])
    with web_client(app) as web:
        head = web.head(path)
        assert head.status_code == 302 and head.headers["location"] == ORDER_URL
        for header in ({"Sec-Purpose": "prefetch"}, {"Purpose": "prefetch"}, {"X-Moz": "prefetch"}):
            assert web.get(path, headers=header).status_code == 302
    assert app.clicks.first_click(send_id) is None
    assert app.client.hget(app.keys.send(send_id), "clicks") is None
    assert not any(e["what"] == "clicked" for e in app.records.history(send_id))


def test_a_click_counts_in_the_customers_engagement_at_their_local_hour(tmp_path):
    app = make_app(tmp_path)
    send_id = delivered(app)
    [path] = tracked_paths(email_of(app, send_id)["html"])
    app.clock.set(parse_instant("2026-03-21T23:30:00Z"))  # 19:30 in New York (EDT)
    with web_client(app) as web:
        web.get(path)
    # The customer moved to Tokyo since the send was planned: the hour is read in the zone they have now.
    app.upsert_customer({**CUSTOMERS["c-amelia"], "zone": "Asia/Tokyo"})
    with web_client(app) as web:
        web.get(path)  # 08:30 in Tokyo
    hours = Engagement(app.client, app.keys).hours("c-amelia")["click"]
    assert dict(hours) == {19: 1, 8: 1}


# -- where clicks are kept ----------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def archive_url(request, tmp_path) -> str:
    """A fresh, empty archive database of each kind (PostgreSQL: a throwaway server)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'archive.sqlite3'}"
    import psycopg

    server = request.getfixturevalue("postgres_url")
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.rsplit("/", 1)[0] + f"/{name}"


def clicks_rows(app: Outreach) -> list[tuple]:
    return app.archive.database.rows(
        "SELECT send_id, customer_id, kind, at_ms, url FROM clicks ORDER BY at_ms"
    )


def test_clicks_move_to_the_archive_with_their_send_and_read_the_same(tmp_path, archive_url):
    app = make_app(tmp_path, archive_url=archive_url)
    clicked, quiet = delivered(app, "a"), delivered(app, "b")
    app.clock.advance(timedelta(minutes=3))
    first = app.clock.now()
    assert app.clicks.record(clicked, "c-amelia", ORDER_URL) is True
    app.clock.advance(timedelta(minutes=1))
    assert app.clicks.record(clicked, "c-amelia", "https://shop.example.com/help") is False
    before = (app.clicks.first_click(clicked), app.clicks.clicked_many([clicked, quiet]))
    history = app.records.history(clicked)
    assert app.archive_finished() == 2 and app.archive_finished() == 0
    assert app.schedule.get(clicked) is None
    assert (app.clicks.first_click(clicked), app.clicks.clicked_many([clicked, quiet])) == before
    assert before == (first, {clicked: first})
    assert app.records.history(clicked) == history
    rows = clicks_rows(app)
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == [
        (clicked, "c-amelia", "click", ORDER_URL), (clicked, "c-amelia", "click", "https://shop.example.com/help"),
    ]  # fmt: skip
    # The move written again (a mover that crashed before Redis let go) adds no row.
    app.archive.write([], 0)
    assert len(clicks_rows(app)) == 2


def test_a_click_on_an_archived_send_is_kept_in_the_archive(tmp_path, archive_url):
    app = make_app(tmp_path, archive_url=archive_url)
    send_id = delivered(app)
    [path] = tracked_paths(email_of(app, send_id)["html"])
    assert app.archive_finished() == 1
    app.clock.advance(timedelta(days=2))
    with web_client(app) as web:
        assert web.get(path).headers["location"] == ORDER_URL
    assert app.clicks.first_click(send_id) == app.clock.now()
    app.clock.advance(timedelta(seconds=1))
    assert app.clicks.record(send_id, "c-amelia", ORDER_URL) is False
    assert len(clicks_rows(app)) == 2
    assert [e["what"] for e in app.records.history(send_id)][-2:] == ["clicked", "clicked"]
    assert app.stats()["clicked:click"] == 1
    with pytest.raises(InputError, match="no such send"):
        app.clicks.record(send_id_for("never-sent", "j", "s", "c-amelia"), "c-amelia", ORDER_URL)


def test_a_click_between_the_movers_read_and_release_is_archived_next_round(tmp_path):
    app = make_app(tmp_path)
    send_id = delivered(app)
    shard = app.keys.shard_of("c-amelia")
    captures = app.mover.capture([send_id])
    app.archive.write(captures, 0)
    app.clicks.record(send_id, "c-amelia", ORDER_URL)
    assert app.mover.release(shard, [send_id], captures) == 0, "changed since it was read: kept"
    assert app.archive_finished() == 1
    assert len(clicks_rows(app)) == 1 and app.clicks.first_click(send_id) == app.clock.now()


def test_a_send_keeps_its_first_clicks_and_counts_the_rest(tmp_path):
    app = make_app(tmp_path)
    send_id = delivered(app)
    for _ in range(MAX_KEPT + 5):
        app.clock.advance(timedelta(seconds=1))
        app.clicks.record(send_id, "c-amelia", ORDER_URL)
    assert app.client.hget(app.keys.send(send_id), "clicks") == str(MAX_KEPT + 5).encode()
    assert sum(e["what"] == "clicked" for e in app.records.history(send_id)) == MAX_KEPT
    app.archive_finished()
    assert len(clicks_rows(app)) == MAX_KEPT
    app.clicks.record(send_id, "c-amelia", ORDER_URL)
    assert len(clicks_rows(app)) == MAX_KEPT


def test_a_replayed_send_brings_its_clicks_back_to_redis(tmp_path):
    app = make_app(tmp_path)
    send_id = delivered(app)
    app.clicks.record(send_id, "c-amelia", ORDER_URL)
    first = app.clicks.first_click(send_id)
    app.archive_finished()
    assert app.records.restore(send_id)
    assert app.client.hget(app.keys.send(send_id), "clicked_ms") is not None
    assert app.clicks.first_click(send_id) == first and clicks_rows(app) == []


def test_bad_input_is_refused_naming_the_field(tmp_path):
    app = make_app(tmp_path)
    send_id = delivered(app)
    for call, field in (
        (lambda: app.clicks.record(send_id, "c-amelia", ORDER_URL, kind="hover"), "kind"),
        (lambda: app.clicks.record(send_id, "c-amelia", "javascript:alert(1)"), "url"),
        (lambda: app.clicks.record(send_id, "c-jonas", ORDER_URL), "send_id"),
        (lambda: app.clicks.record("not-a-send", "c-amelia", ORDER_URL), "send_id"),
    ):
        with pytest.raises(InputError) as caught:
            call()
        assert caught.value.field == field
    assert app.clicks.first_click(send_id) is None


@pytest.mark.redis_server
def test_clicks_at_the_same_moment_make_one_first_click(tmp_path, redis_server):
    client = redis.Redis.from_url(redis_server)
    app = make_app(tmp_path, client=client)
    send_id = delivered(app)
    count = 8
    start = threading.Barrier(count)
    firsts: list[bool] = []

    def click() -> None:
        own = Clicks(redis.Redis.from_url(redis_server), app.keys, app.clock, app.records)
        start.wait()
        firsts.append(own.record(send_id, "c-amelia", ORDER_URL, zone="UTC"))

    threads = [threading.Thread(target=click) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(firsts) == [False] * (count - 1) + [True]
    assert client.hget(app.keys.send(send_id), "clicks") == str(count).encode()
    assert app.stats()["clicked:click"] == 1
    client.close()


def test_clicks_at_the_same_moment_on_an_archived_send_make_one_first_click(tmp_path, archive_url):
    from outreach.archive import Archive, Records, open_database

    app = make_app(tmp_path, archive_url=archive_url)
    send_id = delivered(app)
    assert app.archive_finished() == 1
    count = 6
    # Each its own connection to the archive, as web processes have.
    own = [Clicks(app.client, app.keys, app.clock, Records(app.schedule, Archive(open_database(archive_url))))
           for _ in range(count)]  # fmt: skip
    start = threading.Barrier(count)
    firsts: list[bool] = []

    def click(clicks: Clicks) -> None:
        start.wait()
        firsts.append(clicks.record(send_id, "c-amelia", ORDER_URL, zone="UTC"))

    threads = [threading.Thread(target=click, args=(c,)) for c in own]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for clicks in own:
        clicks.archive.database.close()
    assert sorted(firsts) == [False] * (count - 1) + [True]
    # The same millisecond and link: one row, one history entry after the delivery.
    assert len(clicks_rows(app)) == 1
    assert [e["what"] for e in app.records.history(send_id)].count("clicked") == 1


# -- rights and the report ------------------------------------------------------------------------


def test_export_shows_the_clicks_and_erasure_leaves_none(tmp_path, archive_url):
    app = make_app(tmp_path, archive_url=archive_url)
    archived, live = delivered(app, "a"), delivered(app, "b")
    other = delivered(app, "c", "c-haruto")
    for send_id, customer_id in ((archived, "c-amelia"), (other, "c-haruto")):
        app.clicks.record(send_id, customer_id, ORDER_URL)
    app.archive_finished()
    app.clock.advance(timedelta(minutes=1))
    fresh = delivered(app, "d")
    app.clicks.record(fresh, "c-amelia", ORDER_URL)
    exported = app.export_customer("c-amelia")["clicks"]
    assert [(c["send_id"], c["kind"], c["url"]) for c in exported] == [
        (archived, "click", ORDER_URL), (fresh, "click", ORDER_URL),
    ]  # fmt: skip
    assert live not in {c["send_id"] for c in exported}
    engagement = app.keys.engagement("c-amelia")
    assert app.client.exists(engagement)
    app.erase_customer("c-amelia")
    assert [r[1] for r in clicks_rows(app)] == ["c-haruto"]
    assert not app.client.exists(engagement, app.keys.send(fresh), app.keys.send_log(fresh))
    assert app.clicks.clicked_many([archived, fresh, other]).keys() == {other}


def test_a_click_after_erasure_keeps_nothing_and_still_redirects(tmp_path):
    app = make_app(tmp_path)
    send_id = delivered(app)
    [path] = tracked_paths(email_of(app, send_id)["html"])
    app.erase_customer("c-amelia")
    with web_client(app) as web:
        got = web.get(path)
    assert got.status_code == 302 and got.headers["location"] == ORDER_URL
    assert not app.client.exists(app.keys.send(send_id), app.keys.engagement("c-amelia"))
    assert clicks_rows(app) == []


def test_the_report_shows_sends_delivered_and_clicked_per_step(tmp_path):
    from outreach.report import build_report, render_html, render_text

    app = make_app(tmp_path)
    ids = [delivered(app, f"n{i}") for i in range(4)]
    app.clicks.record(ids[0], "c-amelia", ORDER_URL)
    app.clicks.record(ids[0], "c-amelia", ORDER_URL)
    app.archive_finished()
    app.clicks.record(ids[1], "c-amelia", ORDER_URL)  # archived, clicked after
    more = delivered(app, "live")  # still in Redis
    app.clicks.record(more, "c-amelia", ORDER_URL)
    report = build_report(app, since=parse_instant(T0), until=app.clock.now())
    step = report.clicks["j.s"]
    assert (step.delivered, step.clicked, step.rate) == (5, 3, 60.0)
    assert report.to_mapping()["clicks"] == [
        {"journey": "j", "step": "s", "delivered": 5, "clicked": 3, "click_rate": 60.0}
    ]
    assert "j.s  delivered 5  clicked 3  click rate 60.0 %" in render_text(report)
    assert "Clicks per step" in render_html(report) and "60.0 %" in render_html(report)


def test_a_click_racing_the_customer_erasure_keeps_no_hour(app, clock):
    """The engagement hour is counted only while the customer is there (one step with the check)."""
    from outreach.customers.engagement import Engagement

    app.upsert_customer({"id": "c-gone", "name": "Gone", "email": "g@example.com", "zone": "Europe/Berlin"})
    app.erase_customer("c-gone")
    assert Engagement(app.client, app.keys).record("c-gone", "Europe/Berlin", "click", clock.now()) is False
    assert not app.client.exists(app.keys.engagement("c-gone"))
    assert not app.client.exists(app.keys.customer_keys("c-gone"))
