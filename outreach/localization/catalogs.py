"""Translation catalogs: extract, update, compile and check (``outreach i18n …``).

Messages are extracted from the templates with Jinja's Babel extractor (syntax
errors fail the extraction) and written once per register context. Plural
headers follow CLDR, as Babel knows it, not gettext's older table.
"""

from __future__ import annotations

import gettext
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po
from babel.plural import to_gettext

from ..errors import TemplateError
from ..languages import parse_locale
from .locales import CATALOG_FOLDER, DOMAIN, REGISTERS, VOICES, LocalesConfig, catalog_path

#: The English source locale needs no catalog: its text is the msgid.
SOURCE_LOCALE = "en"
#: Integers the plural check evaluates both rules on.
PLURAL_SAMPLES = [*range(0, 1200), 10_000, 100_000, 1_000_000, 2_000_000, 10_000_000]


def template_path(templates_dir: Path) -> Path:
    return templates_dir / CATALOG_FOLDER / f"{DOMAIN}.pot"


def cldr_plural_forms(tag: str) -> tuple[int, str]:
    """(nplurals, C expression) for a locale from CLDR's rules, for integers.

    Babel writes CLDR's operands; integers written plainly have the compact
    exponent ``e`` = 0, which makes the expression valid for gettext.
    """
    header = to_gettext(parse_locale(tag).plural_form)
    found = re.search(r"nplurals=(\d+)", header)
    assert found is not None, f"Babel's plural forms for {tag} name no nplurals: {header}"
    count = int(found.group(1))
    expr = re.sub(r"\be\b", "0", header.split("plural=", 1)[1].rstrip(";").strip())
    return count, expr


def _set_plural_forms(catalog: Catalog, tag: str) -> None:
    count, expr = cldr_plural_forms(tag)
    # Babel's Catalog starts both at None and sets them as it reads a header: mypy infers type None.
    catalog._num_plurals = count  # type: ignore[assignment]  # noqa: SLF001 - Babel's own table predates CLDR's
    catalog._plural_expr = expr  # type: ignore[assignment]  # noqa: SLF001


def extract(templates_dir: Path) -> Catalog:
    """Every message of every template, once per register; raises TemplateError on bad syntax."""
    method_map = [(f"{CATALOG_FOLDER}/**", "ignore"), ("**.txt", "jinja2"), ("**.html", "jinja2")]
    options = {"extensions": "jinja2.ext.i18n", "silent": "false", "lstrip_blocks": "true"}
    options_map = {"**.txt": options, "**.html": options}
    template = Catalog(
        project="outreach",
        version="1",
        copyright_holder="The Outreach developers",
        msgid_bugs_address="translations@outreach.invalid",
        fuzzy=False,
        # A fixed date keeps regenerated files identical when nothing changed.
        creation_date=datetime(2026, 1, 1, tzinfo=UTC),
    )
    reading: list[str] = []  # the template being read, for an error that names it

    def started(filename: str, method: str, options: dict[str, str]) -> None:
        reading[:] = [filename]

    try:
        # Babel skips folders that start with "_" by default; ours (_web, _survey,
        # _layouts) hold templates too, and _locale is ignored by the method map.
        for filename, lineno, message, comments, _context in extract_from_dir(
            str(templates_dir),
            method_map=method_map,
            options_map=options_map,
            callback=started,
            directory_filter=lambda path: not os.path.basename(path).startswith("."),
        ):
            for register in REGISTERS:
                template.add(
                    message,
                    locations=[(filename, lineno)],
                    auto_comments=comments,
                    context=register,
                    flags=["python-format"] if "%(" in str(message) else [],
                )
    except Exception as exc:  # the extractor raises the template's own syntax error
        where = f" in {reading[0]}" if reading else ""
        line = getattr(exc, "lineno", None)
        at = f", line {line}" if isinstance(line, int) else ""
        raise TemplateError(f"extraction failed{where}{at}: {exc}") from exc
    return template


def _content(catalog: Catalog) -> set[tuple]:
    """What a catalog says, without where its messages come from or which tool wrote it: two
    catalogs with the same content need no new file."""

    def text(string: object) -> object:
        # An extracted message has no string (None) where a read one has "" (or ("", "")).
        if isinstance(string, tuple):
            return tuple(s or "" for s in string)
        return string or ""

    return {
        (m.id, m.context, text(m.string), m.fuzzy, tuple(m.auto_comments), tuple(m.user_comments))
        for m in catalog
        if m.id
    } | {("Plural-Forms", catalog.plural_forms)}


def _unchanged(path: Path, catalog: Catalog, tag: str | None) -> bool:
    if not path.exists():
        return False
    with path.open("rb") as fh:
        current = read_po(fh, locale=tag)
    return _content(current) == _content(catalog) and not current.obsolete


def write_template(templates_dir: Path) -> Path | None:
    """Write ``messages.pot`` from the templates; None when its content is what the file says."""
    path = template_path(templates_dir)
    template = extract(templates_dir)
    if _unchanged(path, template, None):
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        write_po(fh, template, width=100, omit_header=False)
    return path


def update(templates_dir: Path, locales: LocalesConfig) -> list[Path]:
    """Merge the extracted messages into each shipped locale's catalog (creating it if new); a
    catalog whose content the merge does not change is left as it is, byte for byte."""
    template = extract(templates_dir)
    written = []
    for tag in locales.shipped:
        if tag == SOURCE_LOCALE:
            continue
        path = catalog_path(templates_dir, tag)
        if path.exists():
            with path.open("rb") as fh:
                catalog = read_po(fh, locale=tag)
        else:
            catalog = Catalog(
                locale=tag,
                project="outreach",
                version="1",
                copyright_holder="The Outreach developers",
                msgid_bugs_address="translations@outreach.invalid",
                fuzzy=False,
                creation_date=datetime(2026, 1, 1, tzinfo=UTC),
                revision_date=datetime(2026, 1, 1, tzinfo=UTC),
            )
        # A message's gendered texts (``informal.f``) are the translators' own: the template has only
        # the registers, so they are kept through the merge for as long as the message exists.
        flags = {m.id: m.flags for m in template if m.id}
        gendered = [m for m in catalog if m.id and m.context in VOICES[len(REGISTERS) :] and m.id in flags]
        catalog.update(template, no_fuzzy_matching=True, update_creation_date=False)
        for message in gendered:
            message.flags = set(flags[message.id]) | {f for f in message.flags if f == "fuzzy"}
            catalog[message.id] = message  # keyed by id and context
        _set_plural_forms(catalog, tag)
        catalog.obsolete.clear()
        if _unchanged(path, catalog, tag):
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            write_po(fh, catalog, width=100, sort_output=False)
        written.append(path)
    return written


def compile_all(templates_dir: Path, locales: LocalesConfig) -> list[Path]:
    """Write ``messages.mo`` beside each catalog (Outreach itself reads the .po directly)."""
    written = []
    for tag in locales.shipped:
        path = catalog_path(templates_dir, tag)
        if not path.exists():
            continue
        with path.open("rb") as fh:
            catalog = read_po(fh, locale=tag)
        target = path.with_suffix(".mo")
        with target.open("wb") as fh:
            write_mo(fh, catalog, use_fuzzy=False)
        written.append(target)
    return written


@dataclass
class CatalogReport:
    locale: str
    total: int = 0
    missing: list[str] = field(default_factory=list)
    fuzzy: list[str] = field(default_factory=list)
    obsolete: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not (self.missing or self.fuzzy or self.errors)

    def to_mapping(self) -> dict:
        return {
            "locale": self.locale,
            "complete": self.complete,
            "total": self.total,
            "missing": self.missing,
            "fuzzy": self.fuzzy,
            "obsolete": self.obsolete,
            "errors": self.errors,
        }


def _label(message) -> str:
    msgid = message.id[0] if isinstance(message.id, tuple) else message.id
    return f"[{message.context}] {msgid[:70]}"


def _plural_error(catalog: Catalog, tag: str) -> str | None:
    count, expr = cldr_plural_forms(tag)
    try:
        theirs = gettext.c2py(catalog.plural_expr)
    except ValueError as exc:
        return f"Plural-Forms {catalog.plural_forms!r} is not valid: {exc}"
    ours = gettext.c2py(expr)
    if catalog.num_plurals != count or any(theirs(n) != ours(n) for n in PLURAL_SAMPLES):
        return f"Plural-Forms {catalog.plural_forms!r} differs from CLDR: nplurals={count}; plural={expr};"
    return None


_NAMED = re.compile(r"%\((\w+)\)")


def _placeholder_problem(message) -> str | None:
    """A translation that names a value its message does not have, or that does not format: checked
    for every entry whatever its flags (a gendered entry added by hand has none), since it would fail
    only at the render of a customer it applies to."""
    ids = message.id if isinstance(message.id, tuple) else (message.id,)
    strings = message.string if isinstance(message.string, tuple) else (message.string,)
    names = {name for text in ids for name in _NAMED.findall(text)}
    values = dict.fromkeys(names, 1)
    for text in strings:
        unknown = set(_NAMED.findall(text or "")) - names
        if unknown:
            return f"names {', '.join(f'%({n})s' for n in sorted(unknown))}, which the message does not have"
        try:
            (text or "") % values
        except (KeyError, ValueError, TypeError) as exc:
            return f"does not format: {exc!r}"
    return None


def check_catalog(templates_dir: Path, tag: str) -> CatalogReport:
    """Missing, fuzzy and obsolete entries, format errors and a wrong Plural-Forms header."""
    report = CatalogReport(tag)
    template = extract(templates_dir)
    path = catalog_path(templates_dir, tag)
    report.total = len(template)
    if tag == SOURCE_LOCALE:
        return report
    if not path.exists():
        report.missing = [_label(m) for m in template if m.id]
        report.errors.append(f"{path} does not exist (run `outreach i18n update`)")
        return report
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=tag)
    plural = _plural_error(catalog, tag)
    if plural:
        report.errors.append(plural)
    for message in template:
        if not message.id:
            continue
        found = catalog.get(message.id, context=message.context)
        strings = found.string if found else None
        if isinstance(strings, tuple):
            empty = len(strings) != catalog.num_plurals or not all(strings)
        else:
            empty = not strings
        if found is None or empty:
            report.missing.append(_label(message))
        elif found.fuzzy:
            report.fuzzy.append(_label(message))
    for message, errors in catalog.check():
        for error in errors:
            report.errors.append(f"{_label(message)}: {error}")
    for message in catalog:
        problem = _placeholder_problem(message) if message.id and message.string else None
        if problem:
            report.errors.append(f"{_label(message)}: {problem}")
    known = {m.id if not isinstance(m.id, tuple) else m.id[0] for m in template if m.id}
    for message in catalog:
        msgid = message.id if not isinstance(message.id, tuple) else message.id[0]
        if message.id and (msgid not in known or message.context not in VOICES):
            report.obsolete.append(_label(message))
    report.obsolete += [_label(m) for m in catalog.obsolete.values()]
    return report
