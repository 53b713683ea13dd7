"""Insights: CSAT, NPS, CES, response rates and delivery outcomes for a period, overall and by group.

``build_report(app, since, until, by)`` reads two things for the period
``[since, until]`` (both ends included, UTC milliseconds):

- the survey answers whose latest change falls in it (``Surveys.between``);
- the sends whose *final* state was recorded in it: the ``outcomes`` zset by
  score, their hashes read with ``HMGET`` in pipelined batches.

It also counts the sends due over the coming days from the ``due`` zset, one
``ZCOUNT`` per UTC day, never loading the set. ``render_html`` turns a report
into one self-contained page (inline CSS, hand-written SVG, no JavaScript);
``outreach report`` is ``outreach.cli.report``. docs/INSIGHTS.md has the definitions.

The code is split by concern: ``figures`` (the data model), ``build``
(``build_report``: the archive's counts in SQL and what Redis still holds),
``formatting`` (scores and rates as shown), ``text`` (``render_text``), ``svg``
(the charts), ``html`` (``render_html``) and ``period`` (``parse_bound``).
Everything public is re-exported here, so ``from outreach.report import ...`` is
the one import callers need.
"""

from __future__ import annotations

from .build import build_report
from .figures import (
    BATCH,
    DASH,
    DEFAULT_DAYS,
    DEFAULT_GROUPING,
    DEPTH_DAYS,
    GROUPINGS,
    KINDS,
    STATES,
    UNKNOWN,
    Day,
    Depth,
    Figures,
    Report,
    StepClicks,
    language_of,
)
from .formatting import format_rate, format_score
from .html import CSS, FIGURE_HEADER, TREND_HEADER, render_html
from .period import parse_bound
from .text import render_text

__all__ = [
    # The report and how it is built (figures.py).
    "build_report",
    "Report",
    "Figures",
    "Day",
    "Depth",
    "StepClicks",
    "language_of",
    "GROUPINGS",
    "DEFAULT_GROUPING",
    "KINDS",
    "STATES",
    "DEFAULT_DAYS",
    "DEPTH_DAYS",
    "BATCH",
    "UNKNOWN",
    "DASH",
    # Scores and rates as shown (formatting.py).
    "format_score",
    "format_rate",
    # Plain text (text.py).
    "render_text",
    # HTML and its SVG charts (html.py, svg.py).
    "render_html",
    "FIGURE_HEADER",
    "TREND_HEADER",
    "CSS",
    # The period (period.py).
    "parse_bound",
]
