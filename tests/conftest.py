"""Fixtures: one application per test on fakeredis and on a throwaway real Redis."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import fakeredis
import pytest
import redis

from outreach import Outreach, Settings, SimulatedClock
from outreach.timing import parse_instant

ROOT = Path(__file__).resolve().parent.parent
ON_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

#: A Friday morning in UTC; tests fast-forward from here.
T0 = "2026-03-20T06:00:00Z"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[str]:
    """A throwaway redis-server on a free loopback port (never a developer's Redis)."""
    binary = shutil.which("redis-server")
    if binary is None:
        if ON_CI:
            pytest.fail("redis-server is not installed (.ci/run installs it)")
        pytest.skip("redis-server is not installed")
    port = _free_port()
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.02)
    else:
        proc.kill()
        pytest.fail("redis-server did not start")
    yield url
    client.close()
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(params=["fakeredis", "redis"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def client(backend, request) -> Iterator[redis.Redis]:
    if backend == "fakeredis":
        yield fakeredis.FakeRedis(server=fakeredis.FakeServer())
        return
    url = request.getfixturevalue("redis_server")
    conn = redis.Redis.from_url(url)
    yield conn
    conn.close()


def make_settings(tmp_path: Path, **overrides) -> Settings:
    values = {
        "prefix": f"t{uuid.uuid4().hex[:10]}:",
        "config_dir": ROOT / "config",
        "templates_dir": ROOT / "templates",
        "outbox_dir": tmp_path / "outbox",
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(parse_instant(T0))


@pytest.fixture
def app(client, clock, tmp_path) -> Outreach:
    return Outreach(make_settings(tmp_path), client=client, clock=clock)


@pytest.fixture
def worker(app):
    w = app.worker(threads=2)
    yield w
    w.stop()


CUSTOMERS = {
    "c-amelia": {
        "id": "c-amelia",
        "name": "Amelia",
        "email": "amelia@example.com",
        "locale": "en_US",
        "zone": "America/New_York",
        "country": "US",
    },
    "c-jonas": {
        "id": "c-jonas",
        "name": "Jonas",
        "email": "jonas@example.de",
        "phone": "+4915205550102",
        "locale": "de_DE",
        "zone": "Europe/Berlin",
        "country": "DE",
        "channel": "sms",
    },
    "c-haruto": {
        "id": "c-haruto",
        "name": "Haruto",
        "email": "haruto@example.jp",
        "locale": "ja_JP",
        "zone": "Asia/Tokyo",
        "country": "JP",
    },
}


@pytest.fixture
def customers(app) -> dict:
    for data in CUSTOMERS.values():
        app.upsert_customer(data)
    return CUSTOMERS
