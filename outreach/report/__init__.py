"""Insights: CSAT, NPS, CES, response rates and delivery outcomes for a period, overall and by group.

``build_report(app, since, until, by)`` reads two things for the period
``[since, until]`` (both ends included, UTC milliseconds):

- the survey answers whose latest change falls in it (``Surveys.between``);
- the sends whose *final* state was recorded in it: the ``outcomes`` zset by
  score, their hashes read with ``HMGET`` in pipelined batches.

It also counts the sends due over the coming days from the ``due`` zset, one
``ZCOUNT`` per UTC day, never loading the set. ``render_html`` turns a report
into one self-contained page (inline CSS, hand-written SVG, no JavaScript) and
``report_command`` is ``outreach report``. docs/INSIGHTS.md has the definitions.

The code is split by concern: ``figures`` (the data model and ``build_report``),
``formatting`` (scores and rates as shown), ``text`` (``render_text``), ``svg``
(the charts), ``html`` (``render_html``) and ``command`` (``outreach report``).
Everything public is re-exported here, so ``from outreach.report import ...`` is
the one import callers need.
"""

from __future__ import annotations

from ..cli.report import parse_bound, report, report_command
from .figures import (
    BATCH,
    DASH,
    DEFAULT_DAYS,
    DEFAULT_GROUPING,
    DEPTH_DAYS,
    GROUPINGS,
    KINDS,
    SEND_FIELDS,
    STATES,
    UNKNOWN,
    Day,
    Depth,
    Figures,
    Report,
    build_report,
    language_of,
)
from .formatting import LABELS, format_rate, format_score
from .html import CSS, FIGURE_HEADER, TITLES, TREND_HEADER, render_html
from .svg import COLOURS, DOMAINS, TICKS
from .text import render_text

__all__ = [
    # The report and how it is built (figures.py).
    "build_report",
    "Report",
    "Figures",
    "Day",
    "Depth",
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
    "SEND_FIELDS",
    # Scores and rates as shown (formatting.py).
    "format_score",
    "format_rate",
    "LABELS",
    # Plain text (text.py).
    "render_text",
    # HTML and its SVG charts (html.py, svg.py).
    "render_html",
    "TITLES",
    "FIGURE_HEADER",
    "TREND_HEADER",
    "CSS",
    "COLOURS",
    "DOMAINS",
    "TICKS",
    # The command (command.py).
    "report_command",
    "report",
    "parse_bound",
]
