"""The survey scales as plain data: CSAT, NPS and CES, each with its scores, its bands, how its
answers make one figure and how that figure is shown. The journeys, the answer pages and the
report read every scale from ``SCALES``; a new scale is one more entry here, plus the words of its
question and score hints in the survey templates (``templates/_survey/``, ``templates/_web/``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..registry import Entry, Registry

#: How a scale's answers make one figure: the % of positive answers, % positive − % detractors,
#: or the average score.
Figure = Literal["percent_positive", "net", "average"]


@dataclass(frozen=True, kw_only=True)
class Scale(Entry):
    low: int
    high: int
    #: Scores at or below this are detractors (they may start a follow-up journey).
    detractor_max: int
    #: Scores at or above this count as positive (CSAT 4–5, NPS promoters 9–10, CES 5–7).
    positive_min: int
    figure: Figure
    #: The figure's short label (charts, tables) and its title (report headings).
    label: str
    title: str
    #: The figure's range and ticks on a chart, and the colour of its bars and line.
    domain: tuple[float, float]
    ticks: tuple[int, ...]
    colour: str

    @property
    def kind(self) -> str:
        return self.name

    def scores(self) -> range:
        return range(self.low, self.high + 1)

    def band(self, score: int) -> str:
        if score <= self.detractor_max:
            return "detractor"
        return "positive" if score >= self.positive_min else "neutral"

    def compute(self, answers: int, positive: int, detractors: int, score_sum: int) -> float | None:
        """The scale's figure from counts of its answers; None without an answer."""
        if not answers:
            return None
        if self.figure == "percent_positive":
            return 100.0 * positive / answers
        if self.figure == "net":
            return 100.0 * (positive - detractors) / answers
        return score_sum / answers

    def show(self, value: float) -> str:
        """The figure as the report shows it: CSAT ``83.3 %``, NPS ``+12.5``, CES ``5.25``."""
        if self.figure == "percent_positive":
            return f"{value:.1f} %"
        if self.figure == "net":
            return f"{value:+.1f}" if value else "0.0"
        return f"{value:.2f}"


#: The survey kinds: CSAT 1–5, NPS 0–10, CES 1–7 ("how easy": 7 is easiest).
SCALES: Registry[Scale] = Registry(
    "survey scale",
    [
        Scale(
            name="csat", description="customer satisfaction", low=1, high=5, detractor_max=2,
            positive_min=4, figure="percent_positive", label="CSAT %",
            title="CSAT (% of answers scoring 4–5)", domain=(0.0, 100.0), ticks=(0, 25, 50, 75, 100),
            colour="#1f5fbf",
        ),
        Scale(
            name="nps", description="net promoter score", low=0, high=10, detractor_max=6,
            positive_min=9, figure="net", label="NPS", title="NPS (% promoters − % detractors)",
            domain=(-100.0, 100.0), ticks=(-100, -50, 0, 50, 100), colour="#a3410c",
        ),
        Scale(
            name="ces", description="customer effort score", low=1, high=7, detractor_max=3,
            positive_min=5, figure="average", label="CES (avg)", title="CES (average score, 1–7)",
            domain=(1.0, 7.0), ticks=(1, 2, 3, 4, 5, 6, 7), colour="#2e6b30",
        ),
    ],
)  # fmt: skip
