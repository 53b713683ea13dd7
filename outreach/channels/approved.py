"""Approved template messages (``config/approved_templates.toml``), for channels whose provider
sends business-initiated messages only as templates the provider approved beforehand: WhatsApp
outside the 24-hour customer-service window that a customer's own message opens.

Per channel, each journey step names its approved template, the provider's language code for each
customer locale, and the ordered body parameters as Jinja expressions rendered like the step's own
template (``customer.given_name``, ``data.new_eta|date``)::

    [whatsapp."order_delay.notice"]
    name = "order_delayed_v2"
    parameters = ["customer.given_name", "data.order_id", "data.new_eta|date"]
    languages = { en = "en_US", pt_BR = "pt_BR", pt = "pt_BR", he = "he" }

A customer's locale is looked up as it is, then by its language alone (``pt_PT`` finds ``pt``). A
step without an approved template in the customer's language is not sent on the channel outside
the window: the send falls through to its next channel, and its history says why.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from ..configfile import read_toml
from ..errors import ConfigError

APPROVED_FILE = "approved_templates.toml"
#: A template name as Meta allows it: lower case letters, digits and underscores.
TEMPLATE_NAME = re.compile(r"^[a-z0-9_]{1,512}$")
#: A provider language code: ``en``, ``en_US``, ``pt_BR``, ``zh_Hant``...
LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(_[A-Za-z0-9]{2,8})?$")


@dataclass(frozen=True)
class Approved:
    name: str
    parameters: tuple[str, ...]
    #: Customer locale (``pt_BR``, ``pt``) -> the provider's language code.
    languages: Mapping[str, str]

    def language(self, locale: str) -> str | None:
        """The provider's language code for a customer locale, or None when none is approved."""
        tag = locale.replace("-", "_")
        return self.languages.get(tag) or self.languages.get(tag.split("_")[0])


@dataclass(frozen=True)
class ApprovedTemplates:
    source: Path | None = None
    #: (channel, "journey.step") -> its approved template.
    steps: Mapping[tuple[str, str], Approved] = field(default_factory=dict)

    def find(self, channel: str, journey: str, step: str) -> Approved | None:
        return self.steps.get((channel, f"{journey}.{step}"))

    def check(self, known_steps: Iterable[str]) -> None:
        """Refuse a template for a step no journey has (a renamed step would lose it silently)."""
        known = set(known_steps)
        for channel, ref in self.steps:
            if ref not in known:
                raise ConfigError(f'{self.source}: [{channel}."{ref}"]: no journey has the step {ref}')


def load_approved(config_dir: Path, channels: Iterable[str]) -> ApprovedTemplates:
    """Read and check the file (none: no approved templates)."""
    path = Path(config_dir) / APPROVED_FILE
    if not path.exists():
        return ApprovedTemplates()
    data = read_toml(path)
    known = set(channels)
    steps: dict[tuple[str, str], Approved] = {}
    parser = jinja2.Environment()
    for channel, table in data.items():
        if channel not in known:
            raise ConfigError(f"{path}: [{channel}]: no such channel (channels.toml)")
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {channel}={table!r}: must be a table of journey steps")
        for ref, entry in table.items():
            where = f'{path}: [{channel}."{ref}"]'
            if not isinstance(entry, dict) or set(entry) - {"name", "parameters", "languages"}:
                raise ConfigError(f"{where}: must be a table of name, parameters and languages")
            name = entry.get("name")
            if not isinstance(name, str) or not TEMPLATE_NAME.match(name):
                raise ConfigError(
                    f"{where}: name={name!r}: must be the approved template's name (a-z, 0-9, _)"
                )
            parameters = entry.get("parameters", [])
            if not isinstance(parameters, list) or not all(
                isinstance(p, str) and p.strip() for p in parameters
            ):
                raise ConfigError(f"{where}: parameters={parameters!r}: must be a list of Jinja expressions")
            for expression in parameters:
                try:
                    parser.parse("{{ " + expression + " }}")
                except jinja2.TemplateSyntaxError as exc:
                    raise ConfigError(
                        f"{where}: parameters: {expression!r} is not an expression ({exc})"
                    ) from None
            languages = entry.get("languages")
            if not isinstance(languages, dict) or not languages:
                raise ConfigError(f"{where}: languages={languages!r}: must map locales to language codes")
            for locale, code in languages.items():
                if not isinstance(code, str) or not LANGUAGE_CODE.match(code):
                    raise ConfigError(
                        f"{where}: languages.{locale}={code!r}: must be a language code (pt_BR)"
                    )
            steps[(channel, ref)] = Approved(name, tuple(parameters), dict(languages))
    return ApprovedTemplates(path, steps)
