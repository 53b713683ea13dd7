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

Operators: ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``in``, ``not in`` (a list after
it). A value is a JSON or Python literal: ``3``, ``"DE"``, ``'DE'``, ``true``, ``["de",
"fr"]``, ``null``. A comparison of values of different kinds (a number with text, anything
with a missing value but ``null``) does not hold, whatever the operator; the explanation
says so. Conditions are read when a journey loads
(``parse``, with the journey's steps and its trigger's contract), and evaluated at delivery
(``delivery.conditions``), where every fact is read and written down with the verdict.
"""

from __future__ import annotations

import ast
import json
import math
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
#: The longest condition line.
MAX_LINE = 500

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
        """Whether the condition holds for the subject's value ``actual``, and a sentence saying why.

        Values compare only with values of their kind (numbers with numbers, text with text, true
        and false with each other); a missing value only with ``null``. Anything else does not
        hold, whatever the operator, ``!=`` and ``not in`` too: a filter never lets through a
        customer because a value is missing or of another kind.
        """
        shown = f"{self.subject} is {_show(actual)}"
        if self.op == "truthy":
            return bool(actual) != self.negated, shown
        if self.value is None:  # == null, != null: whether the value is there
            return (actual is None) == (self.op == "=="), shown
        if self.op in ("in", "not in"):
            listed = any(_kind(actual) == _kind(v) and actual == v for v in self.value)
            if actual is None or _kind(actual) in ("list", "object"):
                return False, f"{shown}, which cannot be looked up in a list"
            return listed == (self.op == "in"), shown
        if actual is None or _kind(actual) != _kind(self.value):
            return False, f"{shown}, which cannot be compared with {_show(self.value)}"
        try:
            return bool(_OPERATORS[self.op](actual, self.value)), shown
        except TypeError:  # lists and objects have no order
            return False, f"{shown}, which cannot be compared with {_show(self.value)}"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    return "list" if isinstance(value, list) else "object"


def _show(value: Any) -> str:
    if value is None:
        return "missing"
    return json.dumps(value, ensure_ascii=False, default=str)


def _literal(text: str) -> Any:
    if text in _WORDS:
        return _WORDS[text]
    try:
        value = json.loads(text, parse_constant=_refuse)
    except (ValueError, RecursionError):
        try:
            value = ast.literal_eval(text)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise ValueError(text) from None
    if isinstance(value, tuple | set | frozenset):
        value = list(value)
    if not _plain(value):
        raise ValueError(text)
    return value


def _refuse(name: str) -> Any:
    raise ValueError(name)


def _plain(value: Any, depth: int = 0) -> bool:
    """A value a condition compares with: finite numbers, text, true, false, null, lists of them."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return depth < 1 and all(_plain(v, depth + 1) for v in value)
    return value is None or isinstance(value, bool | int | str)


def parse_line(text: str) -> Condition:
    """One condition as written (its subject not checked against a journey yet: ``parse``)."""
    if not isinstance(text, str):
        raise ValueError('must be a line of text, e.g. "data.total >= 100"')
    if len(text) > MAX_LINE:
        raise ValueError(f"is {len(text)} characters long: a condition has at most {MAX_LINE}")
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
    if op in ("in", "not in") and not isinstance(value, list):
        raise ValueError(f'{op} needs a list after it (["DE", "AT"]), not {raw.strip()}')
    if op not in ("in", "not in", "==", "!=") and (isinstance(value, list) or value is None):
        raise ValueError(f"{op} compares with a number or a text, not {raw.strip()}")
    return Condition(text, subject, op, value)


def parse(
    raw: object, *, step: str, earlier: Sequence[str], later: Collection[str], contract: Contract,
    trigger: str, digests: Collection[str] = (),
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
            if condition.kind == "steps" and condition.path[0] in digests:
                raise ValueError(f"{condition.path[0]} is a digest: it has no send of this start to read")
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
