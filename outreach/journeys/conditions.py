"""A step's conditions (``if``): it goes out only when every one of them holds at the moment it would.

Each condition is one line, ``<subject> <operator> <value>``, ``<subject>`` (it must be
true) or ``not <subject>``:

=========================  =================================================================
subject                    what it reads
=========================  =================================================================
``data.<field>[.<key>…]``  the event's data (the trigger's, for every step of the start)
``profile.<field>``        the profile now: locale, language, country, region, zone, register,
                           gender, title, channel
``attributes.<name>``      one of the profile's own ``attributes``
``consent.<category>``     whether the customer allows the category now (their word, else
                           their country's default)
``steps.<step>.<fact>``    an earlier step of the same start of the journey: ``state``,
                           ``delivered``, ``bounced``, ``clicked``, ``answered``, ``score``,
                           ``band``, ``receipt``
=========================  =================================================================

Operators: ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``in``, ``not in``. A value is a
JSON or Python literal: ``3``, ``"DE"``, ``'DE'``, ``true``, ``["de", "fr"]``, ``null``.
A comparison of values of different kinds (a number with text, anything with a missing
value) does not hold; the explanation says so. Conditions are read when a journey loads
(``parse``, with the journey's steps and its trigger's contract), and evaluated at delivery
(``delivery.conditions``), where every fact is read and written down with the verdict.
"""

from __future__ import annotations

import ast
import json
import operator
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..contracts import Contract
from ..errors import ConfigError
from ..registry import CATEGORIES

#: The profile fields a condition may read.
PROFILE_FIELDS = ("locale", "language", "country", "region", "zone", "register", "gender", "title", "channel")
#: What a condition may ask about an earlier step's send.
STEP_FACTS = ("state", "delivered", "bounced", "clicked", "answered", "score", "band", "receipt")
KINDS = ("data", "profile", "attributes", "consent", "steps")

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
    "not in": lambda a, b: a not in b,
    "in": lambda a, b: a in b,
}
_LINE = re.compile(
    r"\s*(?P<negated>not\s+)?(?P<subject>[A-Za-z_][\w]*(?:\.[\w-]+)+)"
    r"\s*(?:(?P<op>==|!=|<=|>=|<|>|not\s+in|in)\s*(?P<value>.+?))?\s*"
)
_WORDS = {"true": True, "false": False, "null": None}


@dataclass(frozen=True)
class Condition:
    #: The line as configured.
    text: str
    #: ``data.total``, ``steps.checkin_email.clicked``…
    subject: str
    #: One of ``_OPERATORS``; "truthy" for a bare subject.
    op: str
    value: Any = None
    negated: bool = False

    @property
    def kind(self) -> str:
        return self.subject.split(".", 1)[0]

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.subject.split(".")[1:])

    def holds(self, actual: Any) -> tuple[bool, str]:
        """Whether the condition holds for the subject's value ``actual``, and a sentence saying why."""
        shown = _show(actual)
        if self.op == "truthy":
            verdict = bool(actual) != self.negated
            return verdict, f"{self.subject} is {shown}"
        compare = _OPERATORS[self.op]
        try:
            if actual is None and self.op not in ("==", "!=", "in", "not in"):
                raise TypeError
            if isinstance(actual, bool) != isinstance(self.value, bool) and self.op not in ("in", "not in"):
                verdict = self.op == "!="  # true is not 1: different kinds are simply unequal
            else:
                verdict = bool(compare(actual, self.value))
        except TypeError:
            return False, f"{self.subject} is {shown}, which cannot be compared with {_show(self.value)}"
        return verdict, f"{self.subject} is {shown}"


def _show(value: Any) -> str:
    if value is None:
        return "missing"
    return json.dumps(value, ensure_ascii=False, default=str)


def _literal(text: str) -> Any:
    if text in _WORDS:
        return _WORDS[text]
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise ValueError(text) from None
    if isinstance(value, tuple | set | frozenset):
        value = list(value)
    return value


def parse_line(text: str) -> Condition:
    """One condition as written (its subject not checked against a journey yet: ``parse``)."""
    if not isinstance(text, str):
        raise ValueError('must be a line of text, e.g. "data.total >= 100"')
    match = _LINE.fullmatch(text)
    if match is None:
        raise ValueError('must read "<subject> <operator> <value>", "<subject>" or "not <subject>"')
    subject, op, raw = match["subject"], match["op"], match["value"]
    if op is None:
        return Condition(text, subject, "truthy", negated=bool(match["negated"]))
    if match["negated"]:
        raise ValueError(f'"not" goes with a bare subject ("not {subject}"), not with a comparison')
    op = "not in" if op.startswith("not") else op
    try:
        value = _literal(raw.strip())
    except ValueError:
        hint = 'quote text: "DE", lists: ["de", "fr"]'
        raise ValueError(f"{raw.strip()!r} is not a value ({hint})") from None
    if op in ("in", "not in") and not isinstance(value, list | str):
        raise ValueError(f"{op} needs a list or a text after it, not {raw.strip()}")
    return Condition(text, subject, op, value)


def parse(
    raw: object, *, step: str, earlier: Sequence[str], later: Collection[str], contract: Contract,
    trigger: str,
) -> tuple[Condition, ...]:  # fmt: skip
    """A step's ``if`` list, every subject checked against the journey; ConfigError names the line."""
    lines = [raw] if isinstance(raw, str) else raw
    if not isinstance(lines, list) or not lines:
        raise ConfigError(f'if={raw!r}: must be a list of conditions, e.g. ["data.total >= 100"]')
    found = []
    for line in lines:
        try:
            condition = parse_line(line)
            _check(condition, step, earlier, later, contract, trigger)
        except ValueError as exc:
            raise ConfigError(f"if={line!r}: {exc}") from None
        found.append(condition)
    return tuple(found)


def _check(
    condition: Condition, step: str, earlier: Sequence[str], later: Collection[str], contract: Contract,
    trigger: str,
) -> None:  # fmt: skip
    kind, path = condition.kind, condition.path
    if kind not in KINDS:
        raise ValueError(f"{kind!r} is not something a condition reads ({', '.join(KINDS)})")
    if kind == "data" and path[0] not in contract.fields and not contract.open:
        raise ValueError(f"{trigger} carries no field {path[0]!r} ({', '.join(contract.fields)})")
    if kind == "profile" and (len(path) != 1 or path[0] not in PROFILE_FIELDS):
        raise ValueError(f"profile.{'.'.join(path)} is not a profile field ({', '.join(PROFILE_FIELDS)})")
    if kind in ("attributes", "consent") and len(path) != 1:
        raise ValueError(f"{kind} takes one name ({kind}.<name>)")
    if kind == "consent" and path[0] not in CATEGORIES:
        raise ValueError(f"{path[0]!r} is not a category ({', '.join(CATEGORIES)})")
    if kind == "steps":
        if len(path) != 2 or path[1] not in STEP_FACTS:
            raise ValueError(f"reads steps.<step>.<fact>, the fact one of {', '.join(STEP_FACTS)}")
        if path[0] == step:
            raise ValueError("a step cannot depend on its own outcome")
        if path[0] in later:
            raise ValueError(f"{path[0]} comes after {step} in the journey: name an earlier step")
        if path[0] not in earlier:
            raise ValueError(f"the journey has no step {path[0]!r} ({', '.join(earlier) or 'none before'})")


def dig(data: Mapping[str, Any], path: Sequence[str]) -> Any:
    """The value at ``path`` inside nested objects (None where a part is missing)."""
    value: Any = data
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value
