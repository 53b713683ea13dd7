"""The API's JSON errors: one problem per bad field, naming the field and the value."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi.responses import JSONResponse

from ...payload import shown

#: One line per refused request (INFO): which fields, which problems.
refused_log = logging.getLogger("outreach.refused")
#: The problem text of a required field that is missing.
MISSING = "is required"


def _jsonable(value: Any) -> Any:
    """The value itself when strict JSON in UTF-8 can carry it (no NaN, no lone surrogate), else its repr."""
    try:
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError, RecursionError):
        return repr(value)
    return value


def _loc(field: str) -> list[str | int]:
    """``events[1].customer_id`` → ``["body", "events", 1, "customer_id"]`` (FastAPI's ``loc``)."""
    if field == "body":
        return ["body"]
    parts = re.findall(r"\[(\d+)\]|([^.\[\]]+)", field)
    return ["body", *(int(index) if index else name for index, name in parts)]


def problem(field: str, value: Any, text: str, loc: list | None = None) -> dict[str, Any]:
    """One error item; ``loc`` defaults to the body location the field name spells."""
    field, text = shown(field), shown(text)
    return {
        "field": field,
        "value": _jsonable(value),
        "problem": text,
        "loc": [shown(p) if isinstance(p, str) else p for p in loc] if loc is not None else _loc(field),
    }


def describe(item: Mapping[str, Any]) -> str:
    """An error item as the one line of ``detail`` (a missing field has no value to show)."""
    if item["problem"] == MISSING:
        return f"{item['field']}: {MISSING}"
    return f"{item['field']}={item['value']!r}: {item['problem']}"


class ApiError(Exception):
    """Ends an API request with a JSON error."""

    def __init__(
        self, status: int, errors: list[dict[str, Any]] | str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(errors)
        self.status = status
        self.errors = [] if isinstance(errors, str) else errors
        self.detail = errors if isinstance(errors, str) else "; ".join(describe(e) for e in errors)
        self.headers = headers

    def response(self) -> JSONResponse:
        if refused_log.isEnabledFor(logging.INFO):
            # The field and the problem, never the value (it may be an address or a name).
            fields = {"status": self.status, "fields": [e["field"] for e in self.errors]}
            text = "; ".join(f"{e['field']}: {e['problem']}" for e in self.errors) or str(self.detail)
            refused_log.info("refused (%s): %s", self.status, text, extra={"fields": fields})
        body: dict[str, Any] = {"detail": self.detail}
        if self.errors:
            body["errors"] = self.errors
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def _field(loc: tuple | list, prefix: str = "") -> str:
    text = prefix
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "body"


def pydantic_errors(errors: Sequence[Mapping[str, Any]], prefix: str = "") -> list[dict[str, Any]]:
    """Pydantic's errors as readable items naming the field (``events[2].type``) and the value."""
    out = []
    for error in errors:
        loc = list(error.get("loc", ()))
        where = loc[:1] if loc and loc[0] in ("body", "path", "query", "header") else []
        inner = loc[len(where) :]
        if inner and inner[-1] == "[key]":
            inner = inner[:-2]  # a bad key of a mapping: name the mapping, the value is the key
        missing = error.get("type") == "missing"
        value = None if missing else error.get("input")
        text = MISSING if missing else str(error.get("msg", "is not valid"))
        out.append(problem(_field(inner, prefix), value, text, loc=loc if where else None))
    return out
