"""``render_text``: the plain-text table ``outreach report`` prints."""

from __future__ import annotations

from .experiments import HEADER, arm_row, notes, title
from .figures import DASH, KINDS, STATES, Figures, Report, _iso
from .formatting import format_rate, format_score


def render_text(report: Report) -> str:
    """A plain-text table of the report (what ``outreach report`` prints)."""
    lines = [
        f"Outreach report {_iso(report.since)} .. {_iso(report.until)} (by {report.group_by})",
        "",
    ]
    header = (
        "",
        "CSAT %",
        "NPS",
        "CES",
        "answers c/n/e",
        "response c/n/e",
        "sends",
        "delivered",
        "suppressed",
        "failed",
        "cancelled",
    )

    def row(name: str, f: Figures) -> tuple[str, ...]:
        return (
            name,
            *(format_score(kind, f.score(kind)) for kind in KINDS),
            "/".join(str(f.answers[k]) for k in KINDS),
            "/".join(format_rate(f.response_rate(k)).replace(" %", "%") for k in KINDS),
            str(f.sends),
            *(str(f.states.get(s, 0)) for s in STATES),
        )

    table = [header, row("overall", report.overall)]
    table += [row(f"{report.group_by}={name}", figures) for name, figures in report.groups.items()]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for r in table:
        cells = [r[0].ljust(widths[0])] + [c.rjust(widths[i]) for i, c in enumerate(r) if i]
        lines.append("  ".join(cells).rstrip())
    reasons = report.overall.reasons
    lines += ["", "Reasons: " + (", ".join(f"{k} {v}" for k, v in sorted(reasons.items())) or DASH)]
    receipts = report.overall.receipts
    lines += ["Receipts: " + (", ".join(f"{k} {v}" for k, v in sorted(receipts.items())) or DASH)]
    if report.clicks:
        lines += ["", "Clicks per step (sends delivered in the period, clicked at least once):"]
        for name, step in report.clicks.items():
            rate = format_rate(step.rate)
            lines.append(f"  {name}  delivered {step.delivered}  clicked {step.clicked}  click rate {rate}")
    lines += ["", "Per UTC day (days with answers or sends):"]
    for day in report.days:
        f = day.figures
        if f.total_answers or f.sends:
            scores = "  ".join(f"{k.upper()} {format_score(k, f.score(k)):>7}" for k in KINDS)
            lines.append(
                f"  {day.day.isoformat()}  answers {f.total_answers:>3}  {scores}  sends {f.sends:>3}"
            )
    for experiment in report.experiments:
        arms = [HEADER] + [arm_row(a, bool(experiment.goal)) for a in experiment.arms.values()]
        sizes = [max(len(r[i]) for r in arms) for i in range(len(HEADER))]
        lines += ["", f"{title(experiment)} (95 % intervals in brackets):"]
        lines += ["  " + "  ".join(c.ljust(sizes[i]) for i, c in enumerate(r)).rstrip() for r in arms]
        lines += [f"  {note}" for note in notes(experiment)]
    depth = report.depth
    lines += ["", f"Schedule depth from {_iso(depth.start)} (sends due per UTC day):"]
    lines.append("  " + "  ".join(f"{d:%m-%d} {n}" for d, n in depth.days))
    lines.append(f"  overdue {depth.overdue}, later {depth.later}, in flight {depth.in_flight}")
    if report.broadcasts:
        lines += ["", "Broadcasts created in the period (counts so far):"]
        for b in report.broadcasts:
            states = ", ".join(f"{s} {b.states.get(s, 0)}" for s in STATES)
            lines.append(f"  {b.id} ({b.name}, {b.state}, at {b.moment}): recipients {b.recipients}, "
                         f"{states}, waiting {b.waiting}")  # fmt: skip
    return "\n".join(lines) + "\n"
