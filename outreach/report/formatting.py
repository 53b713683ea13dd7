"""Scores, rates and score labels as the text table, the HTML page and its charts show them."""

from __future__ import annotations

from ..surveys.scales import SCALES
from .figures import DASH


def format_score(kind: str, value: float | None) -> str:
    """A score as shown: CSAT ``83.3 %``, NPS ``+12.5``, CES ``5.25``; ``–`` for none."""
    if value is None:
        return DASH
    return SCALES[kind].show(value)


def format_rate(value: float | None) -> str:
    return DASH if value is None else f"{value:.1f} %"
