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
    listing = run(installed, shop, "outreach", "schedule", "list", "--json").stdout
    assert any(row["journey"] == "order_delay" for row in json.loads(listing)["due"])
    shown = run(installed, shop, "outreach", "preview", "order_delay.notice", "--locale", "de").stdout
    assert "SHOP-7" in shown
    # A second init into the same folder writes nothing.
    again = run(installed, tmp_path, "outreach", "init", "shop", ok=False)
    assert again.returncode == 1 and "nothing was written" in again.stderr


def test_a_worker_without_redis_says_what_it_needs_in_one_line(installed, tmp_path):
    done = run(installed, tmp_path, "dramatiq", "outreach.worker", "--processes", "1", ok=False)
    assert done.returncode != 0
    assert "OUTREACH_REDIS_URL" in done.stdout + done.stderr
