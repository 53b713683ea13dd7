"""Log lines an operator can search: one per decision and outcome and per refused input, as text
or as one JSON object a line (``OUTREACH_LOG_FORMAT=json``), never with addresses, names or
message text in them.

A line's own fields travel as ``extra={"fields": {...}}``; the JSON form puts them at the top
level next to ``time``, ``level``, ``logger`` and ``message``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

#: ``OUTREACH_LOG_FORMAT``: ``text`` (one readable line) or ``json`` (one object a line).
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **(getattr(record, "fields", None) or {}),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def formatter(form: str) -> logging.Formatter:
    return JsonFormatter() if form == "json" else logging.Formatter(TEXT_FORMAT)


def configure(form: str, level: int) -> None:
    """Log to stderr in ``form``; handlers already there (a worker's) get the same format."""
    logging.basicConfig(level=level, format=TEXT_FORMAT)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter(form))
