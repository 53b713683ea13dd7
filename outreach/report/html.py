"""``render_html``: one self-contained page (inline CSS, inline SVG charts, a table per chart, no script)."""

from __future__ import annotations

from collections.abc import Iterable

from ..surveys.scales import SCALES
from .experiments import HEADER, arm_row, notes, title
from .figures import DASH, DEPTH_DAYS, KINDS, STATES, Figures, Report, _iso
from .formatting import format_rate, format_score
from .svg import _bars_svg, _depth_svg, _e, _Ids, _trend_svg


def _table(caption: str, header: list[str], rows: list[list[str]], numeric_from: int = 1) -> str:
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in header)
    body = []
    for row in rows:
        cells = [f'<th scope="row">{_e(row[0])}</th>']
        cells += [
            f'<td class="{"num" if i >= numeric_from else ""}">{_e(c)}</td>' for i, c in enumerate(row) if i
        ]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="scroll"><table><caption>{_e(caption)}</caption><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _figure_rows(items: Iterable[tuple[str, Figures]]) -> list[list[str]]:
    rows = []
    for name, f in items:
        rows.append(
            [
                name,
                *(format_score(k, f.score(k)) for k in KINDS),
                *(str(f.answers[k]) for k in KINDS),
                *(format_rate(f.response_rate(k)) for k in KINDS),
                str(f.sends),
                *(str(f.states.get(s, 0)) for s in STATES),
            ]
        )
    return rows


FIGURE_HEADER = [
    "",
    "CSAT %",
    "NPS",
    "CES",
    "CSAT answers",
    "NPS answers",
    "CES answers",
    "CSAT response",
    "NPS response",
    "CES response",
    "sends",
    *STATES,
]

TREND_HEADER = [
    "day",
    "CSAT %",
    "NPS",
    "CES",
    "CSAT answers",
    "NPS answers",
    "CES answers",
    "sends",
    "delivered",
]

CSS = """
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif;
       color: #1a1a1a; background: #fff; margin: 0 auto; padding: 1rem 1.5rem 3rem; max-width: 80rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.25rem; margin-top: 2rem; }
h3 { font-size: 1.05rem; margin: 1.2rem 0 .3rem; }
.meta { color: #444; margin-top: 0; }
.cards { display: flex; flex-wrap: wrap; gap: .8rem; padding: 0; list-style: none; }
.cards li { border: 1px solid #bbb; border-radius: 6px; padding: .6rem 1rem; min-width: 9rem; }
.cards .big { display: block; font-size: 1.6rem; font-weight: 600; }
table { border-collapse: collapse; margin: .6rem 0 1.2rem; font-size: .9rem; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; }
th, td { border: 1px solid #bbb; padding: .25rem .5rem; text-align: left; }
thead th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.scroll { overflow-x: auto; max-width: 100%; }
svg.chart { display: block; max-width: 100%; height: auto; margin: .4rem 0; }
svg .grid { stroke: #d0d0d0; stroke-width: 1; } svg .axis { stroke: #555; stroke-width: 1; }
svg text { font: 12px system-ui, sans-serif; fill: #1a1a1a; }
svg .tick, svg .empty { fill: #444; }
details { margin: .4rem 0 1rem; } summary { cursor: pointer; font-weight: 600; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(30rem, 1fr)); gap: 0 1.5rem; }
"""


def _experiments(report: Report) -> list[str]:
    """The experiments section: a table per experiment, its verdicts and the sample's state."""
    if not report.experiments:
        return []
    out = ['<section aria-labelledby="h-experiments"><h2 id="h-experiments">Experiments</h2>',
           "<p>Rates with their 95 % confidence intervals in brackets (docs/INSIGHTS.md).</p>"]  # fmt: skip
    for experiment in report.experiments:
        rows = [arm_row(a, bool(experiment.goal)) for a in experiment.arms.values()]
        out += [f"<h3>{_e(title(experiment))}</h3>", _table(experiment.name, HEADER, rows)]
        out += ["<ul>", *(f"<li>{_e(note)}</li>" for note in notes(experiment)), "</ul>"]
    return [*out, "</section>"]


def _clicks_section(report: Report) -> list[str]:
    """Per journey step: sends delivered in the period, those clicked, the click rate (none: no section)."""
    if not report.clicks:
        return []
    rows = [
        [name, str(s.delivered), str(s.clicked), format_rate(s.rate)] for name, s in report.clicks.items()
    ]
    return [
        '<section aria-labelledby="h-clicks"><h2 id="h-clicks">Clicks per step</h2>',
        "<p>Sends delivered in the period and how many were clicked at least once (tracked links).</p>",
        _table("Clicks per step", ["step", "delivered", "clicked", "click rate"], rows),
        "</section>",
    ]


def render_html(report: Report, *, title: str = "Outreach report") -> str:
    """One self-contained page: inline CSS, inline SVG charts, a table for each chart, no script."""
    ids = _Ids()
    o = report.overall
    group_by = report.group_by
    cards = "".join(
        f'<li><span class="big">{_e(format_score(k, o.score(k)))}</span>{_e(SCALES[k].title)}<br>'
        f"{o.answers[k]} answers, response {_e(format_rate(o.response_rate(k)))}</li>"
        for k in KINDS
    )
    cards += (
        f'<li><span class="big">{o.states["delivered"]}</span>delivered of {o.sends} sends<br>'
        f"{o.states['suppressed']} suppressed, {o.states['failed']} failed, "
        f"{o.states['cancelled']} cancelled</li>"
    )
    reasons = [[reason, str(count)] for reason, count in sorted(o.reasons.items())]
    note = "" if report.by else f"<p>No grouping was chosen: the breakdown is by {group_by}.</p>"

    trend_rows = [
        [
            d.day.isoformat(),
            *(format_score(k, d.figures.score(k)) for k in KINDS),
            *(str(d.figures.answers[k]) for k in KINDS),
            str(d.figures.sends),
            str(d.figures.states["delivered"]),
        ]
        for d in report.days
    ]
    depth = report.depth
    depth_rows = [[d.isoformat(), str(n)] for d, n in depth.days]
    depth_rows += [
        ["overdue (due before now)", str(depth.overdue)],
        [f"later than {DEPTH_DAYS} days", str(depth.later)],
        ["in flight", str(depth.in_flight)],
    ]

    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">Period {_e(_iso(report.since))} to {_e(_iso(report.until))} (UTC, both included); '
        f"generated {_e(_iso(report.generated_at))}.</p>",
        '<section aria-labelledby="h-overall"><h2 id="h-overall">Overall</h2>',
        f'<ul class="cards">{cards}</ul>',
        _table("Overall figures", FIGURE_HEADER, _figure_rows([("overall", o)])),
        _table("Sends by reason", ["reason", "sends"], reasons or [[DASH, "0"]]),
        "</section>",
        '<section aria-labelledby="h-trend"><h2 id="h-trend">Trend per UTC day</h2><div class="charts">',
        *(f"<div><h3>{_e(SCALES[k].title)}</h3>{_trend_svg(ids, report, k)}</div>" for k in KINDS),
        "</div>",
        "<details><summary>Trend as a table</summary>",
        _table("Trend per UTC day", TREND_HEADER, trend_rows),
        "</details></section>",
        f'<section aria-labelledby="h-groups"><h2 id="h-groups">By {_e(group_by)}</h2>{note}',
        '<div class="charts">',
        *(f"<div><h3>{_e(SCALES[k].title)}</h3>{_bars_svg(ids, report, k)}</div>" for k in KINDS),
        "</div>",
        _table(f"Figures by {group_by}", [group_by, *FIGURE_HEADER[1:]], _figure_rows(report.groups.items())),
        "</section>",
        *_experiments(report),
        *_clicks_section(report),
        '<section aria-labelledby="h-depth"><h2 id="h-depth">Schedule depth</h2>',
        f"<p>Sends waiting in the schedule per UTC day, counted at {_e(_iso(depth.start))}.</p>",
        _depth_svg(ids, depth),
        _table("Sends due per UTC day", ["day", "due"], depth_rows),
        "</section>",
    ]
    if report.broadcasts:
        rows = [
            [b.id, b.name, b.state, b.moment, str(b.recipients), *(str(b.states.get(s, 0)) for s in STATES),
             str(b.waiting)]
            for b in report.broadcasts
        ]  # fmt: skip
        body += [
            '<section aria-labelledby="h-broadcasts"><h2 id="h-broadcasts">Broadcasts</h2>',
            "<p>Broadcasts created in the period, with their counts so far.</p>",
            _table(
                "Broadcasts",
                ["broadcast", "name", "state", "at (local)", "recipients", *STATES, "waiting"],
                rows,
            ),  # fmt: skip
            "</section>",
        ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>\n<body><main>\n"
        + "\n".join(body)
        + "\n</main></body></html>\n"
    )
