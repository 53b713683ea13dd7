"""``outreach preview``: a journey step rendered for a locale and register, without sending."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..customers.profile import Customer
from ..journeys.preview import preview, write_html
from ..localization.render import Renderer
from ..localization.sms import sms_info
from ..registry import CHANNELS, FORMALITIES
from .common import _config, _json_object


@click.command("preview")
@click.argument("step_ref", metavar="JOURNEY.STEP[:VARIANT]")
@click.option("--locale", "locale_tag", required=True, help="Locale, e.g. de, pt-BR, he_IL, or 'pseudo'.")
@click.option("--formality", type=click.Choice(FORMALITIES.names()), default=None)
@click.option(
    "--gender",
    type=click.Choice(["feminine", "masculine", "neutral"]),
    default=None,
    help="The grammatical gender to address the customer in (default: the sample customer's).",
)
@click.option("--channel", default=None, help="Channel (default: the step's first).")
@click.option(
    "--customer",
    "customer_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A customer profile as JSON.",
)
@click.option("--data", default=None, help="Event data as JSON (default: the journey's sample).")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the HTML body to this folder.",
)
@click.option("--json", "as_json", is_flag=True)
def preview_command(
    step_ref: str,
    locale_tag: str,
    formality: str | None,
    gender: str | None,
    channel: str | None,
    customer_file: Path | None,
    data: str | None,
    out_dir: Path | None,
    as_json: bool,
) -> None:
    """Render a journey step for a locale and register without sending it."""
    settings, locales, journeys = _config()
    customer = None
    if customer_file is not None:
        text = customer_file.read_text(encoding="utf-8", errors="replace")
        customer = Customer.from_mapping(_json_object(f"--customer {customer_file}", text))
    payload = _json_object("--data", data) if data else None
    renderer = Renderer(settings.templates_dir, locales)
    rendered, used = preview(
        renderer,
        journeys,
        step_ref,
        locale=locale_tag,
        channel=channel,
        formality=formality,
        gender=gender,
        customer=customer,
        data=payload,
    )
    html_path = (
        write_html(rendered, out_dir, step_ref.replace(".", "-").replace(":", "-") + f".{locale_tag}")
        if out_dir
        else None
    )
    result: dict[str, object] = {
        "step": step_ref,
        "locale": rendered.locale,
        "register": rendered.register,
        "channel": used,
        "subject": rendered.subject,
        "text": rendered.text,
        "html": rendered.html,
        "html_file": str(html_path) if html_path else None,
    }
    if CHANNELS[used].short_text:
        info = sms_info(rendered.text)
        result["sms"] = {"encoding": info.encoding, "units": info.units, "segments": info.segments}
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    if rendered.subject is not None:
        click.echo(f"Subject: {rendered.subject}\n")
    click.echo(rendered.text)
    if html_path:
        click.echo(f"\nHTML: {html_path}")
