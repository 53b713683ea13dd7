"""A non-editable install, used from folders that are not the repository, as a new user would.

The wheel is built from this checkout and installed (without its dependencies) into a
fresh virtualenv that borrows the test environment's packages for those dependencies,
so ``import outreach`` finds the installed wheel, never this checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from .conftest import ROOT


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, str]:
    """A virtualenv with the wheel installed; the environment to run its commands with."""
    base = tmp_path_factory.mktemp("install")
    wheels = base / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = wheels.glob("outreach-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip
    # The dependencies come from the test environment (a plain path: its .pth files, and with
    # them any editable install of this checkout, are not read).
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OUTREACH_", "PYTHON"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def run(env: dict[str, str], cwd: Path, *argv: str, ok: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(list(argv), env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    if ok:
        assert done.returncode == 0, f"{argv}: {done.stdout}\n{done.stderr}"
    return done


def test_the_installed_package_is_the_wheel(installed, tmp_path):
    where = run(installed, tmp_path, "python", "-c", "import outreach; print(outreach.__file__)").stdout
    assert "site-packages" in where and str(ROOT) not in where


def test_the_demo_runs_in_an_empty_folder(installed, tmp_path):
    done = run(installed, tmp_path, "outreach", "demo", "--json")
    rows = json.loads(done.stdout)["deliveries"]
    assert {"onboarding", "order_delay", "survey", "checkin"} <= {r["journey"] for r in rows}
    assert not (tmp_path / "config").exists()  # the starter inside the package was used, not copied


def test_init_makes_a_project_that_runs_from_its_own_folder(installed, tmp_path):
    run(installed, tmp_path, "outreach", "init", "shop")
    shop = tmp_path / "shop"
    assert (shop / "config" / "journeys").is_dir() and (shop / "templates" / "_web").is_dir()
    # The project's own files are used: a changed sample shows up in the preview.
    journey = shop / "config" / "journeys" / "order_delay.toml"
    journey.write_text(journey.read_text().replace('order_id = "A-1001"', 'order_id = "SHOP-7"'))
    run(installed, shop, "outreach", "customers", "import", "customers.example.jsonl")
    run(installed, shop, "outreach", "emit", "order.delayed", "--customer", "c-amelia",
        "--data", '{"order_id": "A-2", "new_eta": "2030-01-02"}')  # fmt: skip
    run(installed, shop, "outreach", "run", "--until-idle")
    # Whether the notice waits for the customer's send window or went out depends on the hour
    # in New York: either way the project's own journey planned it.
    listing = run(installed, shop, "outreach", "schedule", "list", "--json").stdout
    waiting = [row["journey"] for row in json.loads(listing)["due"]]
    outbox = shop / "outbox" / "deliveries.jsonl"
    lines = outbox.read_text().splitlines() if outbox.exists() else []
    sent = [json.loads(line)["journey"] for line in lines]
    assert "order_delay" in waiting + sent
    shown = run(installed, shop, "outreach", "preview", "order_delay.notice", "--locale", "de").stdout
    assert "SHOP-7" in shown
    # A second init into the same folder writes nothing.
    again = run(installed, tmp_path, "outreach", "init", "shop", ok=False)
    assert again.returncode == 1 and "nothing was written" in again.stderr


def test_a_worker_without_redis_says_what_it_needs_in_one_line(installed, tmp_path):
    done = run(installed, tmp_path, "dramatiq", "outreach.worker", "--processes", "1", ok=False)
    assert done.returncode != 0
    assert "OUTREACH_REDIS_URL" in done.stdout + done.stderr


TRIAL_EVENT = """
[event."trial.started"]
description = "A free trial began."
data.ends_at = { type = "datetime", required = true, example = "2026-12-21T09:00:00+09:00" }
"""

TRIAL_JOURNEY = """
[journey]
name = "trial_ending"
description = "Remind a customer three days before the trial ends."
category = "lifecycle"
trigger = "trial.started"

[[journey.steps]]
name = "reminder"
before = "ends_at"
days = 3
at = "10:00"
weekdays = ["mon", "tue", "wed", "thu", "fri"]
"""


def test_a_new_user_adopts_it_for_their_own_trial_reminder(installed, tmp_path):
    """The whole path of a company's own outreach, from a non-editable install in an empty folder."""
    run(installed, tmp_path, "outreach", "init", "shop")
    shop = tmp_path / "shop"
    with (shop / "config" / "events.toml").open("a") as fh:
        fh.write(TRIAL_EVENT)
    (shop / "config" / "journeys" / "trial_ending.toml").write_text(TRIAL_JOURNEY)
    step = shop / "templates" / "trial_ending" / "reminder"
    step.mkdir(parents=True)
    (step / "subject.txt").write_text("{% trans %}Your trial ends soon{% endtrans %}")
    ends = "{% trans ends=data.ends_at|datetime %}Your trial ends on {{ ends }}.{% endtrans %}"
    (step / "body.txt").write_text(f'{{{{ salutation }}}}\n\n{ends}\n{{% include "_layouts/footer.txt" %}}\n')
    (step / "body.html").write_text(
        '{% extends "_layouts/email.html" %}{% block content %}<p>{{ salutation }}</p>'
        f"<p>{ends}</p>{{% endblock %}}"
    )
    locales = shop / "config" / "locales.toml"
    locales.write_text(locales.read_text().replace("shipped = [", 'required = ["en"]\nshipped = [', 1))
    run(installed, shop, "outreach", "i18n", "update")
    assert " ok " in run(installed, shop, "outreach", "i18n", "check").stdout

    (shop / "trial.csv").write_text("id,first_name,last_name,email,timezone,country\n"
                                    "t-yuki,Yuki,Tanaka,yuki@example.com,Asia/Tokyo,JP\n")  # fmt: skip
    assert (
        "imported 1 customers" in run(installed, shop, "outreach", "customers", "import", "trial.csv").stdout
    )
    # Ends Monday 2027-01-11 09:00 in Tokyo: three days before, on a weekday, is Friday the 8th at 10:00.
    run(installed, shop, "outreach", "emit", "trial.started", "--customer", "t-yuki",
        "--data", '{"ends_at": "2027-01-11T09:00:00+09:00"}')  # fmt: skip
    bad = run(installed, shop, "outreach", "emit", "trial.started", "--customer", "t-yuki",
              "--data", '{"ends_on": "2027-01-11"}', ok=False)  # fmt: skip
    assert bad.returncode == 1 and "data.ends_at" in bad.stderr and "Traceback" not in bad.stderr

    out = json.loads(
        run(installed, shop, "outreach", "simulate", "--until", "2027-01-12T00:00:00Z", "--json").stdout
    )
    (reminder,) = [r for r in out["sent"] if r["journey"] == "trial_ending"]
    assert reminder["local"].startswith("2027-01-08T10:00:00+09:00") and reminder["zone"] == "Asia/Tokyo"
    assert reminder["subject"] == "Your trial ends soon" and "http" in reminder["body"]
    # Nothing was sent for real, and the real schedule has not moved.
    assert not (shop / "outbox").exists()
