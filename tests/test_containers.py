"""The container files name only what exists: every command a service runs is one this package
has, every file the image copies is in the repository, and Redis is configured as the system of
record (docs/RUNNING.md). (The image itself is not built here: no base image can be pulled.)"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from click.testing import CliRunner

from outreach.cli import main
from outreach.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_every_file_the_image_copies_exists():
    copies = re.findall(r"^COPY (.+) \S+$", (ROOT / "Dockerfile").read_text(), flags=re.M)
    sources = [name for line in copies for name in line.split()]
    assert sources and all((ROOT / name).exists() for name in sources), sources


def test_the_image_runs_on_a_project_that_init_made():
    dockerfile = (ROOT / "Dockerfile").read_text()
    init = re.search(r"outreach init (\S+)", dockerfile)
    assert init and f"OUTREACH_PROJECT={init.group(1)}" in dockerfile
    assert CliRunner().invoke(main, ["init", "--help"]).exit_code == 0


def test_every_service_runs_a_command_this_package_has():
    services = compose()["services"]
    assert set(services) == {"redis", "archive", "worker", "scheduler", "web"}
    for name in ("scheduler", "web"):
        command = services[name]["command"]
        assert command[0] == "outreach"
        help_text = CliRunner().invoke(main, [command[1], "--help"])
        assert help_text.exit_code == 0, help_text.output
        for option in (o for o in command[2:] if o.startswith("--")):
            assert option in help_text.output, (name, option)
    worker = services["worker"]["command"]
    assert worker[:2] == ["dramatiq", "outreach.worker"]
    assert (ROOT / "outreach" / "worker.py").exists()
    queues = worker[worker.index("--queues") + 1 :]
    assert queues == ["outreach.ingest", "outreach.deliver"]


def test_the_processes_run_in_production_on_a_redis_that_keeps_the_schedule():
    services = compose()["services"]
    redis = services["redis"]["command"]
    assert redis[redis.index("--appendonly") + 1] == "yes"
    assert redis[redis.index("--maxmemory-policy") + 1] == "noeviction"
    for name in ("worker", "scheduler", "web"):
        environment = services[name]["environment"]
        settings = {key.removeprefix("OUTREACH_").lower() for key in environment}
        assert settings <= {f.lower() for f in Settings.__dataclass_fields__} | {"api_tokens"}
        assert environment["OUTREACH_MODE"] == "production"
        # One archive for every process, on the database service (docs/ARCHIVE.md).
        assert environment["OUTREACH_ARCHIVE_URL"].startswith("postgresql://")
        assert environment["OUTREACH_ARCHIVE_URL"].endswith("@archive:5432/outreach")
