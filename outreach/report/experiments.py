"""The report's experiments section: per experiment and arm (the holdout group included), the sends
assigned, delivered, clicked, answered and the goal reached, each rate with its 95 % interval, and
each variant against the control in plain words (docs/INSIGHTS.md, "Experiments").

It reads the archive (``archive.queries.experiment_sends``: the sends that finished in the
period) and the customers' goal events in Redis (``customer:<id>:goals``, kept by ingestion).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..archive.queries import ExperimentSend, experiment_sends
from ..schedule import HOLDOUT
from ..store.keys import DAY_MS
from ..store.replies import text
from .stats import Interval, mean, mean_difference, rate, rate_difference

if TYPE_CHECKING:  # pragma: no cover - only for annotations (app imports much)
    from ..app import Outreach

#: Customers whose goal events are read per round trip.
GOAL_BATCH = 500


@dataclass
class Arm:
    """The counts of one arm; the rates and intervals are computed from them."""

    name: str
    sends: int = 0
    customers: set[str] = field(default_factory=set)
    delivered: int = 0
    clicked: int = 0
    scores: list[int] = field(default_factory=list)
    goal: int = 0

    @property
    def delivered_rate(self) -> Interval | None:
        return rate(self.delivered, self.sends)

    @property
    def click_rate(self) -> Interval | None:
        """Of the delivered sends, those clicked."""
        return rate(self.clicked, self.delivered)

    @property
    def goal_rate(self) -> Interval | None:
        """Of the sends assigned (delivered or not: the holdout's too), those followed by the goal."""
        return rate(self.goal, self.sends)

    @property
    def score(self) -> Interval | None:
        return mean(self.scores)

    def to_mapping(self) -> dict[str, Any]:
        def shown(interval: Interval | None) -> dict[str, float] | None:
            return None if interval is None else {"value": interval.value, "low": interval.low,
                                                  "high": interval.high}  # fmt: skip

        return {
            "sends": self.sends, "customers": len(self.customers), "delivered": self.delivered,
            "clicked": self.clicked, "answers": len(self.scores), "goal": self.goal,
            "delivered_rate": shown(self.delivered_rate), "click_rate": shown(self.click_rate),
            "goal_rate": shown(self.goal_rate), "mean_score": shown(self.score),
        }  # fmt: skip


@dataclass(frozen=True)
class Comparison:
    """A variant (or the holdout) against the control, on one measure."""

    arm: str
    measure: str
    difference: Interval
    #: In points for rates (percentage points), in score units for scores.
    points: bool = True

    def sentence(self) -> str:
        scale = 100.0 if self.points else 1.0
        unit = " pts" if self.points else ""
        d = self.difference
        return (f"{self.arm}: {d.value * scale:+.1f}{unit} {self.measure} vs control, 95 % CI "
                f"[{d.low * scale:+.1f}, {d.high * scale:+.1f}]: {d.verdict()}")  # fmt: skip


@dataclass
class ExperimentFigures:
    name: str
    #: "journey.step" of the experiment as configured now ('' when no step declares it any more).
    step: str = ""
    goal: str | None = None
    goal_days: int = 0
    #: Sends per arm decided up front (0: not said).
    sample_size: int = 0
    arms: dict[str, Arm] = field(default_factory=dict)
    #: Whether a step of the journeys declares it now (its arms in their declared order).
    declared: bool = False

    @property
    def control(self) -> Arm | None:
        """The first arm the experiment declares; None when no step declares it any more (its arms'
        order is not known then: no arm is compared against another) or it is the holdout."""
        if not self.declared:
            return None
        first = next(iter(self.arms.values()), None)
        return first if first is not None and first.name != HOLDOUT else None

    def comparisons(self) -> list[Comparison]:
        """Every other arm against the control: the goal rate, the click rate and the mean score."""
        control = self.control
        out: list[Comparison] = []
        if control is None:
            return out
        for arm in list(self.arms.values())[1:]:
            goal = rate_difference(arm.goal, arm.sends, control.goal, control.sends) if self.goal else None
            clicks = rate_difference(arm.clicked, arm.delivered, control.clicked, control.delivered)
            found = [("goal rate", goal), ("click rate", None if arm.name == HOLDOUT else clicks)]
            out += [Comparison(arm.name, m, d) for m, d in found if d is not None]
            score = mean_difference(arm.scores, control.scores)
            if score is not None:
                out.append(Comparison(arm.name, "mean score", score, points=False))
        return out

    def short_arms(self) -> list[str]:
        """The arms with fewer sends than the sample size decided up front."""
        if not self.sample_size:
            return []
        return [a.name for a in self.arms.values() if a.sends < self.sample_size]

    def to_mapping(self) -> dict[str, Any]:
        return {
            "step": self.step, "goal": self.goal, "goal_days": self.goal_days,
            "sample_size": self.sample_size, "arms": {n: a.to_mapping() for n, a in self.arms.items()},
            "comparisons": [c.sentence() for c in self.comparisons()], "short_of_sample": self.short_arms(),
        }  # fmt: skip


def _goal_times(app: Outreach, customers: Iterable[str], goals: set[str]) -> dict[str, dict[str, list[int]]]:
    """customer id -> goal event type -> UTC ms of each, read in pipelined batches."""
    wanted = list(dict.fromkeys(customers))
    out: dict[str, dict[str, list[int]]] = {}
    for i in range(0, len(wanted), GOAL_BATCH):
        chunk = wanted[i : i + GOAL_BATCH]
        pipe = app.client.pipeline(transaction=False)
        for customer_id in chunk:
            pipe.zrange(app.keys.goals(customer_id), 0, -1, withscores=True)
        for customer_id, members in zip(chunk, pipe.execute(), strict=True):
            for member, score in members:
                event_type = text(member).split("|", 1)[0]
                if event_type in goals:
                    out.setdefault(customer_id, {}).setdefault(event_type, []).append(int(score))
    return out


def fold(sends: Sequence[ExperimentSend], configured: Mapping[str, tuple[str, Any]],
         goal_times: Mapping[str, Mapping[str, list[int]]]) -> list[ExperimentFigures]:  # fmt: skip
    """The figures of each experiment from its sends; ``configured``: name -> ("journey.step",
    ``Experiment``) as the journeys declare it now (its arms' order, goal and sample size)."""
    out: dict[str, ExperimentFigures] = {}
    for send in sends:
        figures = out.get(send.experiment)
        if figures is None:
            step, experiment = configured.get(send.experiment, ("", None))
            figures = out[send.experiment] = ExperimentFigures(send.experiment, step)
            if experiment is not None:
                figures.goal, figures.goal_days = experiment.goal, experiment.goal_days
                figures.sample_size = experiment.sample_size
                figures.arms = {a.name: Arm(a.name) for a in experiment.arms()}
                figures.declared = True
        arm = figures.arms.setdefault(send.variant, Arm(send.variant))
        arm.sends += 1
        arm.customers.add(send.customer_id)
        delivered = send.state == "delivered"
        arm.delivered += delivered
        arm.clicked += delivered and send.clicked
        if send.score is not None:
            arm.scores.append(send.score)
        if figures.goal:
            end = send.finished_ms + figures.goal_days * DAY_MS
            times = goal_times.get(send.customer_id, {}).get(figures.goal, [])
            arm.goal += any(send.finished_ms <= t <= end for t in times)
    return [out[name] for name in sorted(out)]


def build_experiments(app: Outreach, low: int, high: int) -> list[ExperimentFigures]:
    """The experiments section for [low, high] (UTC ms): the archive's sends and Redis's goals."""
    sends = experiment_sends(app.archive.database, low, high)
    if not sends:
        return []
    configured = {
        name: (f"{journey.name}.{step.name}", step.experiment)
        for name, (journey, step) in app.journeys.experiments.items()
    }
    goals = {e.goal for _, e in configured.values() if e is not None and e.goal}
    wanted = {name for name, (_, e) in configured.items() if e is not None and e.goal}
    customers = (s.customer_id for s in sends if s.experiment in wanted)
    return fold(sends, configured, _goal_times(app, customers, goals) if goals else {})


# -- as shown -------------------------------------------------------------------------------

#: The columns of an experiment's table (text and HTML).
HEADER = ["arm", "sends", "customers", "delivered", "clicked", "answers", "mean score", "goal"]


def _shown(interval: Interval | None, percent: bool = True) -> str:
    if interval is None:
        return "–"
    scale, unit = (100.0, " %") if percent else (1.0, "")
    return f"{interval.value * scale:.1f}{unit} [{interval.low * scale:.1f}, {interval.high * scale:.1f}]"


def arm_row(arm: Arm, goal: bool) -> list[str]:
    """An arm's row: counts, each rate with its 95 % interval in brackets."""
    return [
        arm.name, str(arm.sends), str(len(arm.customers)),
        f"{arm.delivered} ({_shown(arm.delivered_rate)})", f"{arm.clicked} ({_shown(arm.click_rate)})",
        str(len(arm.scores)), _shown(arm.score, percent=False),
        f"{arm.goal} ({_shown(arm.goal_rate)})" if goal else "–",
    ]  # fmt: skip


def title(figures: ExperimentFigures) -> str:
    step = f" on {figures.step}" if figures.step else " (no step declares it now)"
    goal = f", goal {figures.goal} within {figures.goal_days} days" if figures.goal else ""
    return f"Experiment {figures.name}{step}{goal}"


def notes(figures: ExperimentFigures) -> list[str]:
    """The verdicts, then what the stopping rule says about the sample."""
    out = [c.sentence() for c in figures.comparisons()]
    short = figures.short_arms()
    if short:
        out.append(f"fewer sends than the {figures.sample_size} per arm planned in {', '.join(short)}: "
                   "keep it running, do not decide on this peek")  # fmt: skip
    elif not figures.sample_size:
        out.append("no sample_size planned: decide it up front (docs/JOURNEYS.md, the stopping rule)")
    return out
