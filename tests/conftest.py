"""Fixtures: one application per test on fakeredis and on a throwaway real Redis."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import fakeredis
import pytest
import redis
from redis.cluster import RedisCluster

from outreach import Outreach, Settings, SimulatedClock
from outreach.declarations import declare
from outreach.settings import STARTER
from outreach.store.connections import connect
from outreach.timing import parse_instant

ROOT = Path(__file__).resolve().parent.parent
ON_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

# Modules that build customers or journeys when they are imported find the starter's declarations.
declare(STARTER / "config")

#: A Friday morning in UTC; tests fast-forward from here.
T0 = "2026-03-20T06:00:00Z"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _free_ports(count: int, bus: bool = False) -> list[int]:
    """Free loopback ports (with ``bus``, each port + 10000 free too, for Redis Cluster's bus)."""
    ports: list[int] = []
    while len(ports) < count:
        port = _free_port()
        if port in ports or (bus and port + 10000 > 65535):
            continue
        if bus:
            try:
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        ports.append(port)
    return ports


def _installed(command: str, path: Path | None = None) -> str:
    """Where a server's program is; a test needing a missing one is skipped, or fails on CI."""
    found = (
        str(path) if path is not None and path.exists() else shutil.which(command) if path is None else None
    )
    if found is None:
        if ON_CI:
            pytest.fail(f"{command} is not installed (.ci/run installs it)")
        pytest.skip(f"{command} is not installed")
    return found


def _redis_server(binary: str, port: int, folder: Path, *options: str) -> subprocess.Popen:
    """A redis-server on a loopback port, keeping nothing on disk."""
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(folder), *options]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_for(check, what: str, seconds: float = 30) -> None:
    """Wait for a server this session started (real seconds: another process is getting ready)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, redis.RedisError):
            pass
        time.sleep(0.05)
    pytest.fail(f"{what} did not get ready within {seconds:g} s")


@pytest.fixture(autouse=True)
def starter_declarations():
    """Each test starts with the starter project's event types, categories and channels declared
    (a test that loads a project of its own changes the registries for the rest of the process)."""
    declare(STARTER / "config")
    yield


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[str]:
    """A throwaway redis-server on a free loopback port (never a developer's Redis)."""
    port = _free_port()
    proc = _redis_server(_installed("redis-server"), port, tmp_path_factory.mktemp("redis"))
    client = redis.Redis(port=port)
    try:
        _wait_for(client.ping, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory) -> Iterator[str]:
    """A throwaway three-node Redis Cluster on loopback ports; yields the URL of one node."""
    binary = _installed("redis-server")
    ports = _free_ports(3, bus=True)
    procs = [
        _redis_server(binary, port, tmp_path_factory.mktemp(f"cluster{port}"), "--cluster-enabled", "yes",
                      "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000")
        for port in ports
    ]  # fmt: skip
    nodes = [redis.Redis(port=port) for port in ports]
    try:
        for node in nodes:
            _wait_for(node.ping, "a cluster node")
        # Three equal slot ranges, one per node, then the nodes meet.
        bounds = [0, 5461, 10923, 16384]
        for i, node in enumerate(nodes):
            node.execute_command("CLUSTER ADDSLOTSRANGE", bounds[i], bounds[i + 1] - 1)
        for port in ports[1:]:
            nodes[0].execute_command("CLUSTER MEET", "127.0.0.1", port)
        _wait_for(
            lambda: all(n.execute_command("CLUSTER INFO")["cluster_state"] == "ok" for n in nodes),
            "the Redis Cluster",
        )  # fmt: skip
        yield f"redis://127.0.0.1:{ports[0]}/0"
    finally:
        for node in nodes:
            node.close()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


#: RabbitMQ's server script that runs as the calling user (Debian's /usr/sbin one switches user).
RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")


@pytest.fixture(scope="session")
def rabbitmq_url(tmp_path_factory) -> Iterator[str]:
    """A throwaway RabbitMQ node on free loopback ports (never a developer's broker)."""
    server = _installed("rabbitmq-server", RABBITMQ_SERVER)
    port, dist = _free_ports(2)
    folder = tmp_path_factory.mktemp("rabbitmq")
    (folder / "enabled_plugins").write_text("[].\n")
    env = {
        **os.environ,
        "HOME": str(folder),
        "RABBITMQ_NODENAME": f"outreach-test-{port}@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist),
        "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
        "RABBITMQ_LOG_BASE": str(folder / "log"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
        "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq"),
    }
    log = open(folder / "server.log", "wb")  # noqa: SIM115 - closed at the end of the session
    proc = subprocess.Popen([server], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def listening() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True

    try:
        _wait_for(listening, "the RabbitMQ node", seconds=60)
        yield f"amqp://guest:guest@127.0.0.1:{port}/%2F"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


def _postgres_bin(command: str) -> str:
    """A PostgreSQL server program: on the PATH, else where Debian puts it."""
    found = shutil.which(command)
    if found is None:
        versions = sorted(
            Path("/usr/lib/postgresql").glob(f"*/bin/{command}"), key=lambda p: int(p.parts[-3])
        )
        found = str(versions[-1]) if versions else None
    return _installed(command, Path(found) if found else Path("/nonexistent") / command)


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory) -> Iterator[str]:
    """A throwaway PostgreSQL cluster (``initdb`` + ``pg_ctl``) on a free loopback port; yields the URL
    of an empty database in it. PostgreSQL refuses to run as root: as root it runs as ``postgres``."""
    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    # Its own folder in the temp dir: pytest's is private to this user, which PostgreSQL may not be.
    folder = Path(tempfile.mkdtemp(prefix="outreach-postgres-"))
    data = folder / "data"
    port = _free_port()
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(folder, "postgres")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.STDOUT, "check": True}
    subprocess.run([*as_user, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                    "--locale=C.UTF-8"], **quiet)  # fmt: skip
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "server.log"), "-w",
                    "start"], **quiet)  # fmt: skip
    try:
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE outreach")
        yield f"postgresql://postgres@127.0.0.1:{port}/outreach"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], **quiet)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["fakeredis", "redis"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def client(backend, request) -> Iterator[redis.Redis]:
    if backend == "fakeredis":
        yield fakeredis.FakeRedis(server=fakeredis.FakeServer())
        return
    if backend == "cluster":
        conn = connect(request.getfixturevalue("redis_cluster"))
        assert isinstance(conn, RedisCluster)
    else:
        conn = redis.Redis.from_url(request.getfixturevalue("redis_server"))
    yield conn
    conn.close()


def make_settings(tmp_path: Path, **overrides) -> Settings:
    values = {
        "prefix": f"t{uuid.uuid4().hex[:10]}:",
        "config_dir": STARTER / "config",
        "templates_dir": STARTER / "templates",
        "outbox_dir": tmp_path / "outbox",
        "archive_url": "sqlite://",  # in memory: each test its own archive
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


@pytest.fixture
def runner(tmp_path, monkeypatch):
    """The command line on the embedded store and the starter project, in a folder of its own."""
    from click.testing import CliRunner

    monkeypatch.chdir(tmp_path)
    for name in ("OUTREACH_REDIS_URL", "OUTREACH_PREFIX", "OUTREACH_OUTBOX_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OUTREACH_CONFIG_DIR", str(STARTER / "config"))
    monkeypatch.setenv("OUTREACH_TEMPLATES_DIR", str(STARTER / "templates"))
    return CliRunner()
