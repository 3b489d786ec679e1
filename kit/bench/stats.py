"""Statistics for `invoke bench`: medians, bootstrap intervals, rank tests and the winner rule.

Pure functions over lists of numbers; nothing here runs a process or reads a file, so every
decision the benchmark makes can be unit-tested. Medians rather than means because a benchmark
sample has a long right tail (a scheduler hiccup, a page-cache miss); percentile bootstrap
intervals because nothing here is normally distributed; Mann-Whitney U because it assumes no
distribution either (issue 3, "Rigour").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.stats import mannwhitneyu

from kit.core.workloads import THROUGHPUT, Measure

DEFAULT_RESAMPLES = 10_000
DEFAULT_CONFIDENCE = 0.95
DEFAULT_ALPHA = 0.05


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval."""

    point: float
    low: float
    high: float


def _array(values: Sequence[float], what: str) -> NDArray[np.float64]:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{what} needs at least one sample, got {len(arr)}")
    return arr


def median(values: Sequence[float]) -> float:
    return float(np.median(_array(values, "median")))


def _bootstrap_medians(
    arr: NDArray[np.float64], resamples: int, rng: np.random.Generator
) -> NDArray[np.float64]:
    # Vectorised: one (resamples x n) index matrix, one median per row.
    idx = rng.integers(0, arr.size, size=(resamples, arr.size))
    medians: NDArray[np.float64] = np.median(arr[idx], axis=1)
    return medians


def _bounds(dist: NDArray[np.float64], confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(dist, [tail, 100.0 - tail])
    return float(low), float(high)


def bootstrap_median_ci(
    values: Sequence[float],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int | np.random.Generator = 0,
) -> Interval:
    """Percentile bootstrap interval of the median (same seed, same interval)."""
    arr = _array(values, "bootstrap_median_ci")
    rng = np.random.default_rng(seed)
    low, high = _bounds(_bootstrap_medians(arr, resamples, rng), confidence)
    return Interval(float(np.median(arr)), low, high)


def ratio_ci(
    numerator: Sequence[float],
    denominator: Sequence[float],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int | np.random.Generator = 0,
) -> Interval:
    """median(numerator) / median(denominator) with a bootstrap interval.

    The two groups come from independent processes, so each is resampled on its own and the
    ratio of the two resampled medians forms the distribution.
    """
    num = _array(numerator, "ratio_ci numerator")
    den = _array(denominator, "ratio_ci denominator")
    if np.median(den) == 0:
        raise ValueError("ratio_ci: the denominator's median is zero")
    rng = np.random.default_rng(seed)
    top = _bootstrap_medians(num, resamples, rng)
    bottom = _bootstrap_medians(den, resamples, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        dist = top / bottom
    dist = dist[np.isfinite(dist)]
    low, high = _bounds(dist, confidence)
    return Interval(float(np.median(num) / np.median(den)), low, high)


@dataclass(frozen=True)
class RankTest:
    """Two-sided Mann-Whitney U between two independent groups of samples."""

    u: float
    p_value: float
    n_a: int
    n_b: int

    def significant(self, alpha: float = DEFAULT_ALPHA) -> bool:
        return self.p_value < alpha

    def as_dict(self) -> dict[str, float | int]:
        return {"u": self.u, "p_value": self.p_value, "n_a": self.n_a, "n_b": self.n_b}


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> RankTest:
    xa, xb = _array(a, "mann_whitney a"), _array(b, "mann_whitney b")
    if np.ptp(np.concatenate([xa, xb])) == 0:
        # Every sample identical: no evidence of a difference (scipy would warn and give nan).
        return RankTest(xa.size * xb.size / 2.0, 1.0, xa.size, xb.size)
    res = mannwhitneyu(xa, xb, alternative="two-sided")
    return RankTest(float(res.statistic), float(res.pvalue), xa.size, xb.size)


def min_p_value(n_a: int, n_b: int) -> float:
    """The smallest two-sided p the exact Mann-Whitney test can give for these group sizes.

    With 3 vs 3 samples it is 0.1, so no difference can ever be significant at 0.05; the
    report says so instead of letting a quick run look like evidence.
    """
    from math import comb

    return min(1.0, 2.0 / comb(n_a + n_b, n_a))


# --- the winner rule (issue 3, "Rigour") ------------------------------------------------------

WINNER_RULE = (
    "Among the musl variants, the winner is the one with the best median {figure} ({better} is "
    "better) on the decision scenario, if its lead over every other musl variant is "
    "significant (two-sided Mann-Whitney U, p < {alpha}) and larger than the noise margin "
    "({margin:.0%}). Variants whose gap to the leader fails either test are tied with it; a tie "
    "is broken by lower median peak RSS (of the server, or of the command's process), then by "
    "smaller binary. With too few repetitions for the test to ever reach p < {alpha} (fewer "
    "than 4 per variant), significance cannot be tested: the noise margin alone decides, and "
    "no winner is called outright."
)


def rule_text(
    noise_margin: float, alpha: float = DEFAULT_ALPHA, measure: Measure = THROUGHPUT
) -> str:
    return WINNER_RULE.format(
        figure=measure.label,
        better="higher" if measure.higher_is_better else "lower",
        alpha=alpha,
        margin=noise_margin,
    )


def format_value(x: float, unit: str = "") -> str:
    """A measured figure for a sentence or a table cell: 12.35 M, 10,255, 0.482."""
    if abs(x) >= 1e6:
        text = f"{x / 1e6:.2f} M"
    elif abs(x) >= 100:
        text = f"{x:,.0f}"
    else:
        text = f"{x:.3g}"
    return f"{text} {unit}".strip() if unit else text


@dataclass(frozen=True)
class Candidate:
    """One musl variant as the winner rule sees it."""

    name: str  # the variant key, e.g. "musl-mimalloc"
    allocator: str
    triple: str
    values: tuple[float, ...]  # the decision scenario's figure, one per repetition
    peak_rss_kb: tuple[float, ...]  # peak RSS, one per repetition (may be empty: unknown)
    binary_size: int


@dataclass(frozen=True)
class Gap:
    """The leader against one other candidate."""

    other: str
    lead: float  # how much better the leader's median is, as a fraction of the other's
    test: RankTest
    decisive: bool  # significant (where testable) AND lead > margin
    testable: bool = True  # the sample sizes allow p < alpha at all

    def as_dict(self) -> dict[str, object]:
        return {
            "other": self.other,
            "lead": self.lead,
            "decisive": self.decisive,
            "testable": self.testable,
            **self.test.as_dict(),
        }


@dataclass(frozen=True)
class Decision:
    winner: Candidate
    outright: bool  # True: won on the figure; False: won a tie-break
    tied: tuple[str, ...]  # candidates inside the margin (the winner among them), by name
    leader: str  # best median figure
    gaps: tuple[Gap, ...]
    reason: str
    rule: str
    medians: Mapping[str, dict[str, float]] = field(default_factory=dict)
    measure: Measure = THROUGHPUT

    def as_dict(self) -> dict[str, object]:
        return {
            "winner": self.winner.name,
            "allocator": self.winner.allocator,
            "triple": self.winner.triple,
            "outright": self.outright,
            "tied": list(self.tied),
            "leader": self.leader,
            "gaps": [g.as_dict() for g in self.gaps],
            "reason": self.reason,
            "rule": self.rule,
            "measure": asdict(self.measure),
            "medians": {k: dict(v) for k, v in self.medians.items()},
        }


def _mb(kb: float) -> str:
    return f"{kb / 1024:.1f} MiB"


def lead_of(best: float, other: float, higher_is_better: bool) -> float:
    """How much better `best` is than `other`: 0.1 = 10% more throughput, or 10% more of the
    other's time (other / best - 1 when lower is better)."""
    num, den = (best, other) if higher_is_better else (other, best)
    return num / den - 1 if den else float("inf")


def _gaps(
    leader: Candidate,
    others: Sequence[Candidate],
    med: Mapping[str, float],
    noise_margin: float,
    alpha: float,
    higher_is_better: bool,
) -> list[Gap]:
    gaps = []
    for other in others:
        lead = lead_of(med[leader.name], med[other.name], higher_is_better)
        test = mann_whitney(leader.values, other.values)
        # Where p < alpha is unreachable (quick runs), a failed test says nothing about the
        # gap: counting it as a tie would let a variant several times slower win on RSS.
        testable = min_p_value(len(leader.values), len(other.values)) < alpha
        significant = test.significant(alpha) if testable else True
        gaps.append(Gap(other.name, lead, test, significant and lead > noise_margin, testable))
    return gaps


def _caveat(n: int, noise_margin: float) -> str:
    return (
        f" Significance could not be tested (n = {n}: the smallest "
        f"possible p is {min_p_value(n, n):.2g}); "
        f"decided on the {noise_margin:.0%} noise margin alone, not outright."
    )


def _outright_reason(
    leader: Candidate,
    gaps: Sequence[Gap],
    value: float,
    measure: Measure,
    noise_margin: float,
    alpha: float,
) -> str:
    if not gaps:
        return f"{leader.name} is the only musl variant measured."
    closest = gaps[0]
    best = "highest" if measure.higher_is_better else "lowest"
    return (
        f"{leader.name} has the {best} median {measure.label} "
        f"({format_value(value, measure.unit)}), "
        f"{closest.lead:.1%} ahead of the next best, {closest.other} "
        + (
            f"(p = {closest.test.p_value:.3g} < {alpha}, lead > {noise_margin:.0%} margin)."
            if closest.testable
            else f"(lead > {noise_margin:.0%} margin)."
        )
    )


def _tie_reason(
    tied: Sequence[Candidate],
    winner: Candidate,
    gaps: Sequence[Gap],
    rss: Mapping[str, float],
    noise_margin: float,
    alpha: float,
) -> str:
    why_tied = "; ".join(
        f"lead over {g.other} {g.lead:.1%} (p = {g.test.p_value:.3g}"
        + (", not significant" if g.testable and not g.test.significant(alpha) else "")
        + (f", inside the {noise_margin:.0%} margin" if g.lead <= noise_margin else "")
        + ")"
        for g in gaps
        if not g.decisive
    )
    if all(rss[c.name] == rss[winner.name] for c in tied if c is not winner):
        breaker = f"equal peak RSS, smaller binary ({winner.binary_size / 1e6:.2f} MB)"
    else:
        breaker = f"lowest median peak RSS ({_mb(rss[winner.name])})"
    return f"{why_tied}. Tie broken by {breaker}: {winner.name}."


def decide_winner(
    candidates: Sequence[Candidate],
    *,
    noise_margin: float,
    alpha: float = DEFAULT_ALPHA,
    measure: Measure = THROUGHPUT,
) -> Decision:
    """Apply the winner rule to `measure`'s values. Deterministic: equal inputs give the same
    decision."""
    if not candidates:
        raise ValueError("decide_winner needs at least one candidate")
    up = measure.higher_is_better
    med = {c.name: median(c.values) for c in candidates}
    # Unknown peak RSS (no sample) ranks as equal, so the binary size breaks the tie.
    rss = {c.name: median(c.peak_rss_kb) if c.peak_rss_kb else 0.0 for c in candidates}
    # Best first, name as a stable last resort so the result never depends on order.
    ranked = sorted(candidates, key=lambda c: (-med[c.name] if up else med[c.name], c.name))
    leader = ranked[0]
    gaps = _gaps(leader, ranked[1:], med, noise_margin, alpha, up)
    untestable = any(not g.testable for g in gaps)
    caveat = _caveat(len(leader.values), noise_margin) if untestable else ""
    tied = [leader] + [c for c, g in zip(ranked[1:], gaps, strict=True) if not g.decisive]
    medians = {
        c.name: {
            measure.name: med[c.name],
            "peak_rss_kb": rss[c.name],
            "binary_size": float(c.binary_size),
        }
        for c in candidates
    }
    rule = rule_text(noise_margin, alpha, measure)
    if len(tied) == 1:
        reason = (
            _outright_reason(leader, gaps, med[leader.name], measure, noise_margin, alpha) + caveat
        )
        return Decision(
            leader,
            not untestable,
            (leader.name,),
            leader.name,
            tuple(gaps),
            reason,
            rule,
            medians,
            measure,
        )
    winner = min(tied, key=lambda c: (rss[c.name], c.binary_size, c.name))
    reason = (
        f"Tie on {measure.label} between {', '.join(c.name for c in tied)}: leader "
        f"{leader.name} ({format_value(med[leader.name], measure.unit)}), "
        + _tie_reason(tied, winner, gaps, rss, noise_margin, alpha)
        + caveat
    )
    return Decision(
        winner,
        False,
        tuple(c.name for c in tied),
        leader.name,
        tuple(gaps),
        reason,
        rule,
        medians,
        measure,
    )
