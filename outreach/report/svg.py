"""The report's charts as hand-written, accessible SVG: trend lines, bars by group, schedule depth.

Each chart has a ``<title>`` and a ``<desc>``; ``render_html`` puts a table with the same
figures next to each one.
"""

from __future__ import annotations

import html

from ..surveys.scales import SCALES
from .figures import DASH, Depth, Report
from .formatting import format_score

#: The colour of the schedule-depth bars, at least 4.5:1 against white (each survey kind has its
#: own: ``Scale.colour``).
DEPTH_COLOUR = "#5b3fa8"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


class _Ids:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, stem: str) -> str:
        self.count += 1
        return f"{stem}-{self.count}"


def _svg_open(ids: _Ids, width: int, height: int, title: str, desc: str) -> tuple[str, str]:
    chart = ids("chart")
    return chart, (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{chart}" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'aria-label="{_e(title)}" aria-describedby="{chart}-desc">'
        f'<title>{_e(title)}</title><desc id="{chart}-desc">{_e(desc)}</desc>'
    )


def _trend_svg(ids: _Ids, report: Report, kind: str) -> str:
    width, height, left, right, top, bottom = 640, 190, 52, 16, 16, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    lo, hi = SCALES[kind].domain
    n = len(report.days)

    def x(i: int) -> float:
        return left + (plot_w / 2 if n == 1 else i * plot_w / (n - 1))

    def y(v: float) -> float:
        return top + plot_h * (hi - min(max(v, lo), hi)) / (hi - lo)

    values = [d.figures.score(kind) for d in report.days]
    shown = sum(v is not None for v in values)
    title = f"Trend of {SCALES[kind].label} per UTC day"
    desc = (
        f"{shown} of {n} days have {kind.upper()} answers; the table below lists every value."
        if shown
        else f"No {kind.upper()} answers in the period."
    )
    _, out = _svg_open(ids, width, height, title, desc)
    parts = [out]
    for tick in SCALES[kind].ticks:
        ty = y(tick)
        parts.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{ty:.1f}" y2="{ty:.1f}"/>')
        parts.append(f'<text class="tick" x="{left - 6}" y="{ty + 4:.1f}" text-anchor="end">{tick}</text>')
    step = max(1, -(-n // 8))
    for i, day in enumerate(report.days):
        # Every step-th day and the last one, unless the last would crowd the one before.
        if i % step == 0 if i < n - 1 - step // 2 else i == n - 1:
            parts.append(
                f'<text class="tick" x="{x(i):.1f}" y="{height - bottom + 16}" '
                f'text-anchor="middle">{day.day:%m-%d}</text>'
            )
    segment: list[str] = []
    segments: list[list[str]] = []
    for i, v in enumerate(values):
        if v is None:
            if segment:
                segments.append(segment)
            segment = []
        else:
            segment.append(f"{x(i):.1f},{y(v):.1f}")
    if segment:
        segments.append(segment)
    colour = SCALES[kind].colour
    for seg in segments:
        if len(seg) > 1:
            parts.append(
                f'<polyline class="series {kind}" fill="none" stroke="{colour}" stroke-width="2" '
                f'points="{" ".join(seg)}"/>'
            )
    for i, v in enumerate(values):
        if v is not None:
            label = f"{report.days[i].day.isoformat()}: {format_score(kind, v)}"
            parts.append(
                f'<circle class="point {kind}" cx="{x(i):.1f}" cy="{y(v):.1f}" r="3.5" '
                f'fill="{colour}"><title>{_e(label)}</title></circle>'
            )
    if not shown:
        parts.append(
            f'<text class="empty" x="{left + plot_w / 2}" y="{top + plot_h / 2}" '
            f'text-anchor="middle">{DASH} no answers</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _bars_svg(ids: _Ids, report: Report, kind: str) -> str:
    rows = list(report.groups.items())
    label_w, plot_w, value_w, row_h, top = 150, 360, 80, 24, 8
    width = label_w + plot_w + value_w
    height = top * 2 + row_h * max(len(rows), 1)
    lo, hi = SCALES[kind].domain
    lo = min(lo, 0.0)

    def x(v: float) -> float:
        return label_w + plot_w * (min(max(v, lo), hi) - lo) / (hi - lo)

    title = f"{SCALES[kind].label} by {report.group_by}"
    shown = [name for name, f in rows if f.score(kind) is not None]
    desc = (
        f"{len(shown)} of {len(rows)} groups have {kind.upper()} answers; the table below lists them."
        if rows
        else "No groups in the period."
    )
    _, out = _svg_open(ids, width, height, title, desc)
    parts = [out]
    zero = x(0.0)
    parts.append(f'<line class="axis" x1="{zero:.1f}" x2="{zero:.1f}" y1="{top}" y2="{height - top}"/>')
    for i, (name, figures) in enumerate(rows):
        value = figures.score(kind)
        cy = top + i * row_h
        label = name if len(name) <= 22 else name[:21] + "…"
        parts.append(
            f'<text class="label" x="{label_w - 8}" y="{cy + 16}" text-anchor="end">{_e(label)}'
            f"<title>{_e(name)}</title></text>"
        )
        text = format_score(kind, value)
        if value is not None:
            x0, x1 = sorted((zero, x(value)))
            parts.append(
                f'<rect class="bar {kind}" x="{x0:.1f}" y="{cy + 4}" width="{max(x1 - x0, 1):.1f}" '
                f'height="{row_h - 8}" fill="{SCALES[kind].colour}">'
                f"<title>{_e(f'{name}: {text} ({figures.answers[kind]} answers)')}</title></rect>"
            )
        parts.append(f'<text class="value" x="{label_w + plot_w + 8}" y="{cy + 16}">{_e(text)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _depth_svg(ids: _Ids, depth: Depth) -> str:
    width, height, left, right, top, bottom = 640, 200, 40, 16, 20, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(depth.days)
    peak = max([c for _, c in depth.days] + [1])
    slot = plot_w / n
    title = f"Sends due per UTC day, next {n} days"
    desc = f"{sum(c for _, c in depth.days)} sends due in the next {n} days; the table below lists each day."
    _, out = _svg_open(ids, width, height, title, desc)
    parts = [out]
    base = top + plot_h
    parts.append(f'<line class="axis" x1="{left}" x2="{width - right}" y1="{base}" y2="{base}"/>')
    for i, (day, count) in enumerate(depth.days):
        bar_h = plot_h * count / peak
        bx = left + i * slot + slot * 0.15
        parts.append(
            f'<rect class="bar depth" x="{bx:.1f}" y="{base - bar_h:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{bar_h:.1f}" fill="{DEPTH_COLOUR}">'
            f"<title>{day.isoformat()}: {count} due</title></rect>"
        )
        cx = left + i * slot + slot / 2
        parts.append(
            f'<text class="value" x="{cx:.1f}" y="{base - bar_h - 4:.1f}" text-anchor="middle">{count}</text>'
        )
        parts.append(
            f'<text class="tick" x="{cx:.1f}" y="{base + 16}" text-anchor="middle">{day:%m-%d}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
