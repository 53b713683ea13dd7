"""``outreach init DIR``: a project of one's own, made from the starter project inside the package."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from ..settings import STARTER, is_project

#: Written into a new project beside the starter's config/ and templates/.
GITIGNORE = "# Made by outreach at run time\noutbox/\n.outreach/\n"

NEXT_STEPS = """\
Outreach project in {folder}:
  config/     events, journeys, categories, channels, policy, locales
  templates/  messages per journey step, page templates and catalogs
  customers.example.jsonl  sample customers to import

Next:
  cd {folder}
  outreach customers import customers.example.jsonl
  outreach emit customer.signed_up --customer c-amelia
  outreach run --until-idle && outreach schedule list
(docs/RUNNING.md: from here to a first message of your own)"""


@click.command("init")
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False))
def init_command(folder: Path) -> None:
    """Start a project in FOLDER: the starter config, templates and catalogs to make your own."""
    if is_project(folder) or (folder / "config").exists() or (folder / "templates").exists():
        raise click.ClickException(f"{folder}: already has config/ or templates/; nothing was written")
    folder.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.mo", "*.pyc")
    shutil.copytree(STARTER / "config", folder / "config", ignore=ignore)
    shutil.copytree(STARTER / "templates", folder / "templates", ignore=ignore)
    shutil.copyfile(Path(__file__).resolve().parent.parent / "data" / "demo_customers.jsonl",
                    folder / "customers.example.jsonl")  # fmt: skip
    gitignore = folder / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text(GITIGNORE)
    click.echo(NEXT_STEPS.format(folder=folder))
