"""Statistics for `invoke bench`: medians, exact intervals for them, paired ratios, sign tests.

Pure functions over lists of numbers; nothing here runs a process or reads a file. Medians
rather than means because a benchmark sample has a long right tail (a scheduler hiccup, a
page-cache miss). Their intervals are the exact, distribution-free ones built from order
statistics: the number of samples below the population median is Binomial(n, 1/2) whatever the
distribution, so the k-th smallest sample is a lower bound that is wrong with probability
P(Binomial(n, 1/2) <= k - 1), exactly. A percentile bootstrap claims 95% but at n = 5 its
interval is the sample's min..max, whose real coverage is 93.8% (75% at n = 3); here every
interval carries the coverage it really has.

Two variants are compared by the ratio of their figures within each round (every round runs
every cell once, in a fresh shuffle), so slow drift of the machine cancels in the ratio; the
interval is the median's interval of those paired ratios, and p is the exact sign test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom, binomtest

DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """A median with an exact distribution-free interval for the population median."""

    point: float
    low: float
    high: float
    n: int
    coverage: float  # the interval's exact two-sided coverage (not the requested one)

    @property
    def tail_error(self) -> float:
        """The chance that one bound is on the wrong side of the true median."""
        return (1.0 - self.coverage) / 2.0

    def bounds(self, alpha: float) -> bool:
        """Each bound is wrong with probability at most `alpha` (n is large enough)."""
        return self.tail_error <= alpha * (1 + 1e-9)

    def label(self) -> str:
        return f"{self.coverage:.1%}"


def _array(values: Sequence[float], what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{what} needs at least one sample, got {len(arr)}")
    return arr


def median(values: Sequence[float]) -> float:
    return float(np.median(_array(values, "median")))


def bound_rank(n: int, alpha: float) -> int:
    """The largest k with P(Binomial(n, 1/2) <= k - 1) <= alpha: the k-th smallest of n samples
    is then a lower bound of the median wrong with probability at most alpha (and the k-th
    largest an upper bound); 0 when even the minimum is not (0.5 ** n > alpha)."""
    k = 0
    while k < (n + 1) // 2 and binom.cdf(k, n, 0.5) <= alpha:
        k += 1
    return k


def min_rounds(alpha: float) -> int:
    """The fewest samples for which the minimum is a bound wrong with probability <= alpha."""
    n = 1
    while 0.5**n > alpha:
        n += 1
    return n


def median_interval(values: Sequence[float], alpha: float | None = None) -> Interval:
    """The median with the narrowest order-statistic interval whose bounds are each wrong with
    probability at most `alpha` (default: a 95% two-sided interval). Where n is too small for
    that, the interval is the sample's min..max and its coverage says how far it falls short."""
    arr = np.sort(_array(values, "median_interval"))
    n = int(arr.size)
    tail = (1 - DEFAULT_CONFIDENCE) / 2 if alpha is None else alpha
    k = max(bound_rank(n, tail), 1)
    error = float(binom.cdf(k - 1, n, 0.5))
    return Interval(float(np.median(arr)), float(arr[k - 1]), float(arr[n - k]), n, 1 - 2 * error)


def paired_ratios(
    a: Mapping[int, float], b: Mapping[int, float], *, higher_is_better: bool = True
) -> list[float]:
    """a over b in every round both ran, oriented so that above 1 means a is better: a/b when
    higher is better, b/a (a speed-up) when lower is better. Rounds with a zero are skipped."""
    out = []
    for r in sorted(a.keys() & b.keys()):
        num, den = (a[r], b[r]) if higher_is_better else (b[r], a[r])
        if den:
            out.append(num / den)
    return out


def sign_test(ratios: Sequence[float]) -> float:
    """Two-sided exact sign test of "the median ratio is 1" (ties dropped); 1.0 when all tie."""
    above = sum(r > 1 for r in ratios)
    below = sum(r < 1 for r in ratios)
    if above + below == 0:
        return 1.0
    return float(binomtest(above, above + below, 0.5).pvalue)


@dataclass(frozen=True)
class PairedRatio:
    """a against b, paired by round, with the exact interval of the median ratio."""

    interval: Interval
    p_value: float

    @property
    def ratio(self) -> float:
        return self.interval.point

    def as_dict(self) -> dict[str, object]:
        iv = self.interval
        return {
            "ratio": iv.point,
            "ci": [iv.low, iv.high],
            "coverage": iv.coverage,
            "rounds": iv.n,
            "p_value": self.p_value,
        }


def paired_ratio(
    a: Mapping[int, float],
    b: Mapping[int, float],
    *,
    higher_is_better: bool = True,
    alpha: float | None = None,
) -> PairedRatio | None:
    """a against b by round (see `paired_ratios`); None when no round has both."""
    ratios = paired_ratios(a, b, higher_is_better=higher_is_better)
    if not ratios:
        return None
    return PairedRatio(median_interval(ratios, alpha), sign_test(ratios))


def format_value(x: float, unit: str = "") -> str:
    """A measured figure for a sentence or a table cell: 12.35 M, 10,255, 0.482."""
    if abs(x) >= 1e6:
        text = f"{x / 1e6:.2f} M"
    elif abs(x) >= 100:
        text = f"{x:,.0f}"
    else:
        text = f"{x:.3g}"
    return f"{text} {unit}".strip() if unit else text
