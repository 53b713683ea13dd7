"""Config changes that are safe: the whole project is checked before any of it is used.

``check(settings)`` loads every part of a project (declarations, journeys and their
templates, policy, channels with the environment, locales, the required catalogs)
and renders every step in every channel and register with its sample data; it
returns the problems, each naming its file (``outreach config check``).

``reload(app)`` runs that check in a process of its own and, only when nothing is
wrong, loads the project and swaps the new parts in; otherwise it keeps the old ones
and says why in the log (the registries of this process never see a refused change).
``Watcher`` calls it when a file of the project changes (every
``OUTREACH_RELOAD_SECONDS``); ``outreach run`` and ``outreach scheduler`` also call it
on SIGHUP.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .app import Outreach
from .channels import Transport
from .channels.config import ChannelsConfig, build_transports, check_bound, load_channels
from .declarations import restore, snapshot
from .errors import OutreachError
from .journeys.config import Journeys, load_journeys
from .journeys.preview import preview
from .localization.catalogs import check_catalog
from .localization.locales import LocalesConfig, load_locales
from .localization.render import Renderer
from .policy.config import PolicyConfig, load_policy
from .registry import FORMALITIES
from .settings import Settings

logger = logging.getLogger(__name__)


@dataclass
class Project:
    """Everything a process reads from the project's files."""

    journeys: Journeys
    policy: PolicyConfig
    locales: LocalesConfig
    renderer: Renderer
    channels: ChannelsConfig
    transports: Mapping[str, Transport] | None


def load(settings: Settings, *, with_transports: bool) -> Project:
    """Every part of the project, checked (the journeys declare its event types, categories and
    channels first); raises the first OutreachError."""
    journeys = load_journeys(settings.config_dir, settings.templates_dir)
    policy = load_policy(settings.config_dir, settings.late_grace_seconds)
    locales = load_locales(settings.config_dir)
    channels = load_channels(settings.config_dir)
    check_bound(channels, journeys.channels(), steps=journeys.steps())
    transports = (
        build_transports(settings.config_dir, settings.outbox_dir, config=channels)
        if with_transports
        else None
    )
    return Project(journeys, policy, locales, Renderer(settings.templates_dir, locales), channels, transports)


def render_problems(project: Project) -> list[str]:
    """Every step in every channel and register of the default locale, with its sample data."""
    problems = []
    for journey in project.journeys:
        for step in journey.steps:
            ref = f"{journey.name}.{step.name}"
            for channel in step.channels:
                for register in FORMALITIES:
                    try:
                        preview(project.renderer, project.journeys, ref, locale=project.locales.default,
                                channel=channel, formality=register)  # fmt: skip
                    except OutreachError as exc:
                        problems.append(f"{journey.source}: {ref} ({channel}, {register}): {exc}")
    return problems


def check(settings: Settings) -> dict[str, list[str]]:
    """The problems of each part of the project (empty lists when it is sound); touches nothing."""
    before = snapshot()
    found: dict[str, list[str]] = {}
    try:
        try:
            project = load(settings, with_transports=False)
        except OutreachError as exc:
            found["project"] = [str(exc)]
            return found
        found["project"] = []
        found["templates"] = render_problems(project)
        found["catalogs"] = []
        for tag in project.locales.required:
            report = check_catalog(settings.templates_dir, tag)
            if not report.complete:
                missing = (
                    ", ".join(report.missing[:3])
                    or ", ".join(report.errors[:1])
                    or ", ".join(report.fuzzy[:3])
                )
                found["catalogs"].append(f"{tag}: required and incomplete ({missing})")
        return found
    finally:
        restore(before)


def _checked_apart(settings: Settings) -> list[str]:
    """``check`` in a process of its own: a change is never declared in this one before it passed."""
    env = {**os.environ, "OUTREACH_CONFIG_DIR": str(settings.config_dir),
           "OUTREACH_TEMPLATES_DIR": str(settings.templates_dir)}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "outreach.cli.commands", "config", "check", "--json"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    try:
        found = json.loads(done.stdout)
    except ValueError:
        return [f"the check could not run: {done.stderr.strip()[-500:] or done.returncode}"]
    # An incomplete catalog falls back string by string: it fails `config check`, never a reload.
    return [p for key in ("project", "templates") for p in found.get(key, [])]


def reload(app: Outreach) -> bool:
    """Swap in the project as its files say now, if all of it is sound; else keep the old and log why.

    The project is checked in a process of its own first, so that the registries live traffic
    reads here never hold a change that is then refused; only then is it loaded here.
    """
    problems = _checked_apart(app.settings)
    if problems:
        logger.error("config change refused; the previous config stays in use: %s", problems[0])
        return False
    before = snapshot()
    try:
        project = load(app.settings, with_transports=app.owns_transports)
    except Exception as exc:  # noqa: BLE001 - whatever happens, the previous config stays whole
        restore(before)
        logger.error("config change refused; the previous config stays in use: %s", exc)
        return False
    old_transports = app.transports
    app.journeys = app.ingestor.journeys = app.deliverer.journeys = app.datarights.journeys = project.journeys
    app.recurring.journeys = project.journeys.recurring()
    app.policy.config = project.policy
    app.locales = project.locales
    app.renderer = app.deliverer.renderer = project.renderer
    app.channels = app.deliverer.channels = project.channels
    if project.transports is not None:
        app.transports = app.deliverer.transports = dict(project.transports)
        app.deliverer._available = frozenset(project.transports)  # noqa: SLF001 - its own copy
        # Closed a lease later: a batch handed to the old ones may still be talking to its provider.
        timer = threading.Timer(app.settings.lease_seconds, _close, args=(old_transports,))
        timer.daemon = True
        timer.start()
    logger.warning("config reloaded from %s: %d journeys", app.settings.config_dir, len(project.journeys.all))
    return True


def _close(transports: Mapping[str, Transport]) -> None:
    for transport in {id(t): t for t in transports.values()}.values():
        close = getattr(transport, "close", None)
        if close is not None:
            close()


def fingerprint(settings: Settings) -> tuple[tuple[str, int, int], ...]:
    """Every file of the project with its modification time and size."""
    files = []
    for folder in (settings.config_dir, settings.templates_dir):
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file() and path.suffix != ".mo":
                stat = path.stat()
                files.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(files)


class Watcher(threading.Thread):
    """Reloads the application when a file of its project changes (checked every ``interval`` s)."""

    def __init__(self, app: Outreach, interval: float) -> None:
        super().__init__(name="outreach-config-watcher", daemon=True)
        self.app = app
        self.interval = interval
        self.seen = fingerprint(app.settings)
        self.stopped = threading.Event()

    def check_once(self) -> bool | None:
        """Reload if the files changed since last seen: True reloaded, False refused, None unchanged."""
        now = fingerprint(self.app.settings)
        if now == self.seen:
            return None
        self.seen = now
        return reload(self.app)

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.check_once()
            except Exception:  # noqa: BLE001 - a watcher that dies would stop every later reload
                logger.exception("checking the project's files for changes failed")

    def stop(self) -> None:
        self.stopped.set()


def watch(app: Outreach) -> Watcher | None:
    """A started watcher for the application (None when ``OUTREACH_RELOAD_SECONDS`` is 0)."""
    if app.settings.reload_seconds <= 0:
        return None
    watcher = Watcher(app, app.settings.reload_seconds)
    watcher.start()
    return watcher
