"""The statistics of the experiments report, from SciPy (docs/INSIGHTS.md, "Experiments").

- a rate: its Wilson score interval (``scipy._stats().binomtest(k, n).proportion_ci("wilson")``);
- a variant's rate against the control's: Newcombe's hybrid score interval for the difference of
  two proportions (Newcombe 1998, method 10), built from the two Wilson intervals;
- a mean score, and a variant's against the control's: Student's t interval, and Welch's
  (``scipy._stats().ttest_ind(..., equal_var=False).confidence_interval()``);
- the sample size per arm a fixed-horizon test needs to detect a difference of rates (the
  stopping rule: decided up front, read once).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any


@cache
def _stats() -> Any:
    """``scipy.stats``, imported when a report first needs it: the web process, the scheduler and the
    CLI load without SciPy (and its BLAS threads) until then."""
    from scipy import stats

    return stats


#: The confidence level of every interval the report shows.
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """An estimate and its confidence interval (rates as fractions, scores as they are)."""

    value: float
    low: float
    high: float

    def verdict(self) -> str:
        """What a difference's interval says: better, worse, or not yet distinguishable (it holds 0)."""
        if self.low > 0:
            return "better"
        if self.high < 0:
            return "worse"
        return "not yet distinguishable"


def rate(k: int, n: int) -> Interval | None:
    """k of n, with its Wilson score interval; None without any n."""
    if n <= 0:
        return None
    ci = _stats().binomtest(k, n).proportion_ci(confidence_level=LEVEL, method="wilson")
    return Interval(k / n, float(ci.low), float(ci.high))


def rate_difference(k1: int, n1: int, k0: int, n0: int) -> Interval | None:
    """p1 - p0 with Newcombe's hybrid score interval (from the Wilson intervals of both)."""
    one, zero = rate(k1, n1), rate(k0, n0)
    if one is None or zero is None:
        return None
    d = one.value - zero.value
    low = d - math.sqrt((one.value - one.low) ** 2 + (zero.high - zero.value) ** 2)
    high = d + math.sqrt((one.high - one.value) ** 2 + (zero.value - zero.low) ** 2)
    return Interval(d, low, high)


def mean(scores: Sequence[float]) -> Interval | None:
    """The mean score with Student's t interval; None under two scores or when they are all the same
    (no spread to go by)."""
    if len(scores) < 2:
        return None
    average = sum(scores) / len(scores)
    if len(set(scores)) == 1:
        return None  # no spread: no interval to give (never one of zero width)
    ci = _stats().ttest_1samp(scores, 0.0).confidence_interval(confidence_level=LEVEL)
    return Interval(average, float(ci.low), float(ci.high))


def mean_difference(scores: Sequence[float], control: Sequence[float]) -> Interval | None:
    """mean(scores) - mean(control) with Welch's interval; None under two scores on either side."""
    if len(scores) < 2 or len(control) < 2:
        return None
    d = sum(scores) / len(scores) - sum(control) / len(control)
    if len(set(scores)) == 1 and len(set(control)) == 1:
        return None  # no spread on either side: a difference of two constants is no evidence
    result = _stats().ttest_ind(scores, control, equal_var=False)
    ci = result.confidence_interval(confidence_level=LEVEL)
    return Interval(d, float(ci.low), float(ci.high))


def sample_size(baseline: float, effect: float, power: float = 0.8, level: float = LEVEL) -> int:
    """Sends per arm to detect a change of ``effect`` (absolute, e.g. 0.02) from a ``baseline`` rate
    with a two-sided test at ``level`` and the given power:

    n = (z₁₋α/₂·√(2·p̄(1−p̄)) + z₁₋β·√(p₀(1−p₀) + p₁(1−p₁)))² / δ², p̄ = (p₀ + p₁) / 2.
    """
    p0, p1 = baseline, baseline + effect
    if not (0 < p0 < 1 and 0 < p1 < 1) or effect == 0:
        raise ValueError(f"baseline {baseline} and baseline + effect {p1} must be rates in (0, 1), apart")
    if not 0 < power < 1 or not 0 < level < 1:
        raise ValueError(f"power {power} and level {level} must be in (0, 1)")
    z_a = float(_stats().norm.ppf(1 - (1 - level) / 2))
    z_b = float(_stats().norm.ppf(power))
    p = (p0 + p1) / 2
    root = z_a * math.sqrt(2 * p * (1 - p)) + z_b * math.sqrt(p0 * (1 - p0) + p1 * (1 - p1))
    return math.ceil(root**2 / effect**2)
