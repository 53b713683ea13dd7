"""Which event data fields a template uses, and whether each use is guarded.

A journey's templates may use only fields their trigger's contract names, and an
optional field only where the template checks for it first (``{% if data.credit is
defined %}``, ``data.note|default("")``, ``data.get("note")``; a plain ``{% if data.note %}``
is no check: reading a missing field raises). Checked when the
journeys load, so an edit never becomes a render error days later.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2
from jinja2 import nodes

from ..contracts import Contract

#: Tests that guard the field they test (``is none`` does not: reading a missing field raises).
_GUARD_TESTS = {"defined", "undefined"}
#: Parses templates only: no filters or globals are needed to find the fields.
_PARSER = jinja2.Environment(extensions=["jinja2.ext.i18n"], autoescape=True)


@dataclass(frozen=True)
class Use:
    field: str
    guarded: bool
    line: int


def _field_of(node: nodes.Node) -> str | None:
    """The data field a node reads (``data.x``, ``data["x"]``), if it is one."""
    if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name) and node.node.name == "data":
        return None if node.attr == "get" else node.attr
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.node, nodes.Name)
        and node.node.name == "data"
        and isinstance(node.arg, nodes.Const)
        and isinstance(node.arg.value, str)
    ):
        return node.arg.value
    return None


def _fields_in(node: nodes.Node) -> set[str]:
    found = {_field_of(node)} - {None}
    for child in node.find_all((nodes.Getattr, nodes.Getitem)):
        found |= {_field_of(child)} - {None}
    return found  # type: ignore[return-value]


def _tested(test: nodes.Node) -> set[str]:
    """The fields a condition checks for (``data.x is defined``): only those are guarded inside it. A
    plain ``{% if data.x %}`` is no guard: the renderer's strict undefined raises on reading it."""
    found: set[str] = set()
    for child in [test, *test.find_all(nodes.Test)]:
        if isinstance(child, nodes.Test) and child.name in _GUARD_TESTS:
            found |= _fields_in(child.node)
    return found


def _visit(node: nodes.Node, guards: frozenset[str], out: list[Use]) -> None:
    field = _field_of(node)
    if field is not None:
        out.append(Use(field, field in guards, node.lineno))
        return
    if isinstance(node, nodes.If):
        tested = guards | _tested(node.test)
        _visit(node.test, tested, out)
        for child in (*node.body, *node.elif_, *node.else_):
            _visit(child, tested, out)
        return
    if isinstance(node, nodes.CondExpr):
        tested = guards | _tested(node.test)
        for child in node.iter_child_nodes():
            _visit(child, tested, out)
        return
    if isinstance(node, nodes.Filter) and node.name == "default" and node.node is not None:
        _visit(node.node, guards | _fields_in(node.node), out)
        for child in (*node.args, *(k.value for k in node.kwargs)):
            _visit(child, guards, out)
        return
    if isinstance(node, nodes.Test) and node.name in _GUARD_TESTS:
        _visit(node.node, guards | _fields_in(node.node), out)
        return
    if (
        isinstance(node, nodes.Call)
        and isinstance(node.node, nodes.Getattr)
        and node.node.attr == "get"
        and isinstance(node.node.node, nodes.Name)
        and node.node.node.name == "data"
    ):
        for arg in node.args[:1]:
            if isinstance(arg, nodes.Const) and isinstance(arg.value, str):
                out.append(Use(arg.value, True, node.lineno))
        return
    for child in node.iter_child_nodes():
        _visit(child, guards, out)


def uses(source: str) -> list[Use]:
    """Every read of an event data field in a template's source."""
    out: list[Use] = []
    _visit(_PARSER.parse(source), frozenset(), out)
    return out


def problems(path: Path, contract: Contract, event_type: str) -> list[str]:
    """What a template does with event data that its trigger's contract does not allow."""
    try:
        found = uses(path.read_text(encoding="utf-8"))
    except jinja2.TemplateSyntaxError as exc:
        return [f"{path}:{exc.lineno}: {exc.message}"]
    out = []
    for use in found:
        spec = contract.fields.get(use.field)
        if spec is None:
            if not contract.open:
                known = ", ".join(contract.fields) or "none"
                out.append(f"{path}:{use.line}: uses data.{use.field}, which {event_type} does not carry "
                           f"(its fields: {known}; config/events.toml)")  # fmt: skip
        elif not spec.required and not use.guarded:
            guard = f"{{% if data.{use.field} is defined %}}"
            out.append(
                f"{path}:{use.line}: uses data.{use.field} outside {guard}: it is optional in {event_type}"
            )
    return out
