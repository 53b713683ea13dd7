"""A project for the step kinds of docs/JOURNEYS.md: the starter's, with journeys and templates of the
test's own (digest, throttle, conditions, learned send time)."""

from __future__ import annotations

import shutil
from pathlib import Path

from outreach import Outreach
from outreach.settings import STARTER

from .conftest import make_settings

DIGEST_SUBJECT = (
    "{% trans count=digest.count %}One order is running late{% pluralize %}"
    "{{ count }} orders are running late{% endtrans %}\n"
)
DIGEST_BODY = (
    "{% for order in digest['items'] %}{{ order.order_id }} {{ order.new_eta|date('medium') }}\n{% endfor %}"
    "{{ digest.count }} in all\n"
)


def project(tmp_path: Path, journeys: dict[str, str], *, keep: tuple[str, ...] = ()) -> tuple[Path, Path]:
    """(config, templates): the starter's with only the journeys named in ``keep`` and ``journeys``
    ({file name: TOML}), and a digest template ``order_digest/list``."""
    config, templates = tmp_path / "config", tmp_path / "templates"
    shutil.copytree(STARTER / "config", config)
    shutil.copytree(STARTER / "templates", templates)
    for path in (config / "journeys").glob("*.toml"):
        if path.stem not in keep:
            path.unlink()
    for name, text in journeys.items():
        (config / "journeys" / f"{name}.toml").write_text(text)
    folder = templates / "order_digest" / "list"
    folder.mkdir(parents=True)
    (folder / "subject.txt").write_text(DIGEST_SUBJECT)
    (folder / "body.txt").write_text(DIGEST_BODY)
    (folder / "body.html").write_text(
        "<ul>{% for order in digest['items'] %}<li>{{ order.order_id }}</li>{% endfor %}</ul>\n"
    )
    (folder / "sms.body.txt").write_text(
        "{{ digest.count }} late: {{ digest['items']|map(attribute='order_id')|join(', ') }}\n"
    )
    return config, templates


def kinds_app(tmp_path: Path, client, clock, journeys: dict[str, str], **settings) -> Outreach:
    config, templates = project(tmp_path, journeys)
    app = Outreach(
        make_settings(tmp_path, config_dir=config, templates_dir=templates, **settings),
        client=client,
        clock=clock,
    )
    return app
