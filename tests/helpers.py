"""Small helpers shared by tests."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from outreach import Outreach
from outreach.channels.outbox import read_outbox
from outreach.journeys.config import Journey, Step
from outreach.schedule import Intent
from outreach.settings import STARTER
from outreach.store.keys import send_id_for
from outreach.timing import parse_instant


def at(text: str) -> datetime:
    return parse_instant(text)


def outbox(app: Outreach) -> list[dict]:
    return read_outbox(app.settings.outbox_dir)


def sent_ids(app: Outreach) -> Counter:
    return Counter(row["send_id"] for row in outbox(app))


def ingest(app: Outreach, type: str, customer_id: str, when: str, data=None, id=None):
    """Ingest one event synchronously, as the ingest actor would."""
    return app.ingest(
        {"id": id, "type": type, "customer_id": customer_id, "occurred_at": when, "data": data or {}}
    )


def deliver_due(app: Outreach) -> list:
    """Claim what is due now and deliver it in this thread (as a worker would)."""
    outcomes = []
    while claims := app.schedule.claim(app.settings.claim_limit):
        outcomes += app.deliver(claims)
    return outcomes


def by_step(app: Outreach, send_ids: list[str]) -> dict[str, str]:
    """Planned send ids keyed by step name (journeys plan in no fixed order)."""
    return {app.schedule.get(s).step: s for s in send_ids}


def adhoc_journey(
    app: Outreach, journey: str = "j", step: str = "s", template: str = "order_delay/notice"
) -> None:
    """A journey no event starts, for sends planned straight into the schedule: a send whose step is
    not in the journeys is cancelled as ``step_removed`` when it comes due."""
    if journey not in app.journeys.all:
        app.journeys.all[journey] = Journey(
            journey, "lifecycle", "(none)", (Step(step, template, ("email",), {}),)
        )


def plan_send(
    app: Outreach,
    label: str,
    due: datetime,
    customer_id: str = "c-amelia",
    data: dict | None = None,
    **intent,
) -> str:
    """Plan one send straight into the schedule (no event), of the ad hoc journey; returns its id."""
    fields = {
        "journey": "j", "step": "s", "category": "lifecycle", "template": "order_delay/notice",
        "channels": '["email"]', "rule": "{}", "survey": "", "event_type": "order.delayed",
        "zone": "UTC", "country": "", **intent,
    }  # fmt: skip
    adhoc_journey(app, fields["journey"], fields["step"], fields["template"])
    send_id = send_id_for(label, fields["journey"], fields["step"], customer_id)
    assert app.schedule.plan(send_id, due, Intent(**fields), event_id=label, start=due, data=data or {})
    return send_id


def zone_at_noon() -> str:
    """An Etc/GMT zone where it is about midday now, so the send window is open (real processes)."""
    offset = (12 - datetime.now(UTC).hour) % 24
    offset = offset - 24 if offset > 12 else offset
    # Etc/GMT signs are inverted: Etc/GMT-3 is UTC+3.
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "")


#: The starter project's channels and the profile field each sends to.
STARTER_CHANNELS = {"email": "email", "sms": "phone", "whatsapp": "whatsapp", "webhook": "id"}


def declared(text: str, *, outbox: bool = True) -> str:
    """A channels.toml text with the starter's four channels declared: each ``[name]`` in the text
    gets its ``address``, and the channels it leaves out are added (with ``outbox``: writing to
    the outbox, as the starter's do)."""
    lines = text.splitlines()
    out: list[str] = []
    for line in lines:
        out.append(line)
        name = line.strip()[1:-1] if line.strip().startswith("[") and "." not in line else None
        if name in STARTER_CHANNELS and f'address = "{STARTER_CHANNELS[name]}"' not in text:
            out.append(f'address = "{STARTER_CHANNELS[name]}"')
    for name, address in STARTER_CHANNELS.items():
        if f"[{name}]" not in text and not re.search(rf"(?m)^{name}\s*=", text):
            out += [f"[{name}]", f'address = "{address}"'] + (['providers = ["outbox"]'] if outbox else [])
    return "\n".join(out) + "\n"


def process_env(redis_url: str, config: Path, folder: Path, label: str, **extra: str) -> dict[str, str]:
    """The environment of a real Outreach process a test starts: this test's Redis with a prefix of
    its own, the given config, the starter's templates, an outbox in ``folder``, a quick pump."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")}
    env.update(
        {
            "OUTREACH_REDIS_URL": redis_url,
            "OUTREACH_PREFIX": f"{label}{uuid.uuid4().hex[:8]}:",
            "OUTREACH_CONFIG_DIR": str(config),
            "OUTREACH_TEMPLATES_DIR": str(STARTER / "templates"),
            "OUTREACH_OUTBOX_DIR": str(folder / "outbox"),
            "OUTREACH_PUMP_INTERVAL": "0.2",
            # One archive for the test's processes, in its folder (never a file in the working directory).
            "OUTREACH_ARCHIVE_URL": f"sqlite:///{folder / 'archive.sqlite3'}",
            **extra,
        }
    )
    return env


def starter_project(
    folder: Path, *, append: dict[str, str] | None = None, files: dict[str, str] | None = None
) -> tuple[Path, Path]:
    """A copy of the starter project in ``folder``: ``append`` adds text to config files
    (``{"events.toml": ...}``), ``files`` writes files under it (``{"templates/x/y/body.txt": ...}``).
    Returns its config and templates folders."""
    config, templates = folder / "config", folder / "templates"
    shutil.copytree(STARTER / "config", config)
    shutil.copytree(STARTER / "templates", templates)
    for name, text in (append or {}).items():
        with (config / name).open("a") as fh:
            fh.write(text)
    for name, text in (files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return config, templates
