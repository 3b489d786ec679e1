"""The benchmark's verdict (pure): decided by intervals, with three outcomes, sequentially.

Among the musl variants the leader is the one with the best median on the decision scenario.
Against every other variant, the ratio leader/other within each round gives a paired interval
(kit.bench.stats). Each pair then ends one of three ways:

- better: the interval's lower bound clears 1 + margin;
- equivalent: the whole interval lies within ±margin;
- inconclusive: anything else, including too few rounds for a bound at the error allowed.

The run's outcome is "winner" when the leader is better than every other, "equivalent" when
no pair is inconclusive but some are equivalent (among the equivalent variants, p99 latency at
a fixed rate and then peak RSS decide, each only beyond its own margin; else the smaller binary
is shipped, a preference and not a measured difference), and "inconclusive" otherwise. Throughput
comes first because it is what the allocator costs at saturation; latency at a rate every
variant sustains is what users see below it. An inconclusive run measures more rounds
of the decision scenario, look after look, up to the planned number of looks and the time
budget. The allowed error is split evenly over both sides and the planned looks (Bonferroni), so
each bound at each look is wrong with probability at most alpha / (2 looks), and the chance that
a pair gets a false verdict at any look stays under alpha however many looks the run ends up
taking: looking again cannot manufacture a winner. Quick mode follows the same rule, so it may
say "inconclusive" but never calls a winner on evidence the rule would not accept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

from kit.bench.plan import P99
from kit.bench.stats import Interval, PairedRatio, format_value, median, min_rounds, paired_ratio
from kit.core.workloads import THROUGHPUT, Measure

WINNER, EQUIVALENT, INCONCLUSIVE = "winner", "equivalent", "inconclusive"
BETTER = "better"
RSS = Measure(name="peak_rss_kb", label="peak RSS", unit="KiB", higher_is_better=False)


@dataclass(frozen=True)
class Design:
    """The decision's parameters, fixed before the first sample."""

    margin: float  # the smallest lead worth shipping for (0.05 = 5%)
    rss_margin: float  # the same for peak RSS, between equivalent variants
    latency_margin: float = 0.10  # the same for p99 at a fixed rate, before RSS
    alpha: float = 0.05  # the chance of a false verdict on a pair, over all looks together
    looks: int = 1  # the planned maximum number of looks (1: a fixed-size run)

    @property
    def alpha_per_look(self) -> float:
        """The error allowed to each bound at each look: alpha split over both sides (the
        leader is whichever variant the data put ahead, so either could be called better)
        and over the planned looks."""
        return self.alpha / (2 * self.looks)

    @property
    def rounds_needed(self) -> int:
        """The fewest paired rounds with which any pair can be decided at all."""
        return min_rounds(self.alpha_per_look)


@dataclass(frozen=True)
class Candidate:
    """One musl variant as the verdict sees it: its figures and peak RSS by round."""

    name: str  # the variant key, e.g. "musl-mimalloc"
    allocator: str
    triple: str
    values: Mapping[int, float]
    peak_rss_kb: Mapping[int, float]
    binary_size: int
    # p99 latency at the fixed (higher) rate, by round of the open-loop phase; empty: none
    p99_us: Mapping[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Comparison:
    """The leader (or an RSS contender) against one other variant."""

    other: str
    ratio: PairedRatio | None  # above 1: the first is better; None: no round has both
    verdict: str  # "better" | "equivalent" | "inconclusive"

    @property
    def interval(self) -> Interval | None:
        return self.ratio.interval if self.ratio else None

    def as_dict(self) -> dict[str, object]:
        return {
            "other": self.other,
            "verdict": self.verdict,
            **(self.ratio.as_dict() if self.ratio else {}),
        }


def compare(
    a: Mapping[int, float],
    b: Mapping[int, float],
    *,
    other: str,
    margin: float,
    alpha: float,
    higher_is_better: bool,
) -> Comparison:
    """a against b: better, equivalent or inconclusive (see the module's docstring)."""
    ratio = paired_ratio(a, b, higher_is_better=higher_is_better, alpha=alpha)
    if ratio is None or not ratio.interval.bounds(alpha):
        return Comparison(other, ratio, INCONCLUSIVE)
    iv = ratio.interval
    if iv.low > 1 + margin:
        return Comparison(other, ratio, BETTER)
    if iv.low >= 1 / (1 + margin) and iv.high <= 1 + margin:
        return Comparison(other, ratio, EQUIVALENT)
    return Comparison(other, ratio, INCONCLUSIVE)


@dataclass(frozen=True)
class Verdict:
    outcome: str  # "winner" | "equivalent" | "inconclusive"
    choice: Candidate  # what ships: the winner, or the pick among equals, or the leader
    leader: str
    comparisons: tuple[Comparison, ...]  # the leader against every other variant
    # the choice against the other equivalent variants on what decided it (p99, or RSS)
    tiebreak: tuple[Comparison, ...]
    tiebreak_by: str | None  # "p99_us" | "peak_rss_kb" | None (the smaller binary)
    reason: str
    rule: str
    look: int
    rounds: int  # paired rounds of the leader at this look
    design: Design
    measure: Measure = THROUGHPUT
    medians: Mapping[str, dict[str, float]] = field(default_factory=dict)

    @property
    def outright(self) -> bool:
        return self.outcome == WINNER

    @property
    def winner(self) -> Candidate:
        return self.choice

    def as_dict(self) -> dict[str, object]:
        return {
            "outcome": self.outcome,
            "winner": self.choice.name,
            "allocator": self.choice.allocator,
            "triple": self.choice.triple,
            "outright": self.outright,
            "leader": self.leader,
            "comparisons": [c.as_dict() for c in self.comparisons],
            "tiebreak": [c.as_dict() for c in self.tiebreak],
            "tiebreak_by": self.tiebreak_by,
            "reason": self.reason,
            "rule": self.rule,
            "look": self.look,
            "rounds": self.rounds,
            "design": {**asdict(self.design), "alpha_per_look": self.design.alpha_per_look},
            "measure": asdict(self.measure),
            "medians": {k: dict(v) for k, v in self.medians.items()},
        }


RULE = (
    "The leader is the musl variant with the best median {figure} ({better} is better) on the "
    "decision scenario. Against each other musl variant, the ratio leader/other is taken "
    "within each round (the same shuffled round ran both), and its median gets an exact "
    "order-statistic interval whose bounds are each wrong with probability at most "
    "{alpha_look:.3g} ({alpha:g} split over both sides and {looks} planned look{s}). "
    "The leader wins when every lower bound clears 1 + {margin:.0%}; a pair is equivalent "
    "when its interval lies within ±{margin:.0%}; otherwise it is inconclusive, and more "
    "rounds of the decision scenario are run, look after look, within the time budget. "
    "Between equivalent variants, p99 latency at the higher fixed rate decides next, then peak "
    "RSS, each only when its paired interval clears its own margin ({latency_margin:.0%}, "
    '{rss_margin:.0%}); else the smaller binary ships. The outcome stays "equivalent".'
)


def rule_text(design: Design, measure: Measure = THROUGHPUT) -> str:
    return RULE.format(
        figure=measure.label,
        better="higher" if measure.higher_is_better else "lower",
        alpha_look=design.alpha_per_look,
        alpha=design.alpha,
        looks=design.looks,
        s="s" if design.looks > 1 else "",
        margin=design.margin,
        rss_margin=design.rss_margin,
        latency_margin=design.latency_margin,
    )


def _describe(c: Comparison, design: Design, alpha: float) -> str:
    if c.ratio is None:
        return f"{c.other}: no paired round"
    iv = c.ratio.interval
    text = f"{c.other}: {iv.point:.3f}x [{iv.low:.3f}, {iv.high:.3f}] over {iv.n} rounds"
    if not iv.bounds(alpha):
        return text + (
            f" (too few rounds: {design.rounds_needed} are needed for a bound wrong with "
            f"probability <= {alpha:.3g})"
        )
    return text


def _pick_by(
    tied: Sequence[Candidate],
    figures: Callable[[Candidate], Mapping[int, float]],
    margin: float,
    alpha: float,
) -> tuple[Candidate | None, tuple[Comparison, ...]]:
    """The one variant better on `figures` (p99 or RSS by round, lower is better), beyond
    `margin`, than every other tied one; None when no variant is."""
    for c in tied:
        mine = figures(c)
        if not mine:
            continue
        comps = tuple(
            compare(
                mine,
                figures(o),
                other=o.name,
                margin=margin,
                alpha=alpha,
                higher_is_better=False,
            )
            for o in tied
            if o is not c
        )
        if all(x.verdict == BETTER for x in comps):
            return c, comps
    return None, ()


def decide(
    candidates: Sequence[Candidate],
    design: Design,
    *,
    look: int = 1,
    measure: Measure = THROUGHPUT,
) -> Verdict:
    """The verdict at one look. Deterministic: equal inputs give the same verdict."""
    if not candidates:
        raise ValueError("decide needs at least one candidate")
    up = measure.higher_is_better
    alpha = design.alpha_per_look
    med = {c.name: median(list(c.values.values())) for c in candidates}
    rss = {
        c.name: median(list(c.peak_rss_kb.values())) if c.peak_rss_kb else 0.0 for c in candidates
    }
    # Best first, name as a stable last resort so the result never depends on order.
    ranked = sorted(candidates, key=lambda c: (-med[c.name] if up else med[c.name], c.name))
    leader = ranked[0]
    comps = tuple(
        compare(
            leader.values,
            o.values,
            other=o.name,
            margin=design.margin,
            alpha=alpha,
            higher_is_better=up,
        )
        for o in ranked[1:]
    )
    medians = {
        c.name: {
            measure.name: med[c.name],
            "peak_rss_kb": rss[c.name],
            "binary_size": c.binary_size,
        }
        for c in candidates
    }
    rounds = max((c.interval.n for c in comps if c.interval), default=len(leader.values))

    def verdict(
        outcome: str,
        choice: Candidate,
        reason: str,
        tiebreak: tuple[Comparison, ...] = (),
        tiebreak_by: str | None = None,
    ) -> Verdict:
        return Verdict(
            outcome=outcome,
            choice=choice,
            leader=leader.name,
            comparisons=comps,
            tiebreak=tiebreak,
            tiebreak_by=tiebreak_by,
            reason=reason,
            rule=rule_text(design, measure),
            look=look,
            rounds=rounds,
            design=design,
            measure=measure,
            medians=medians,
        )

    best = (
        f"{leader.name} has the {'highest' if up else 'lowest'} median {measure.label} "
        f"({format_value(med[leader.name], measure.unit)})"
    )
    if not comps:
        return verdict(WINNER, leader, f"{leader.name} is the only musl variant measured.")
    open_pairs = [c for c in comps if c.verdict == INCONCLUSIVE]
    if open_pairs:
        reason = (
            f"Inconclusive: {best}, but its lead is neither established (lower bound above "
            f"1 + {design.margin:.0%}) nor ruled out (interval within ±{design.margin:.0%}) "
            "against "
            + "; ".join(_describe(c, design, alpha) for c in open_pairs)
            + f". {leader.name} is shipped provisionally; it is not a measured winner."
        )
        return verdict(INCONCLUSIVE, leader, reason)
    beaten = "; ".join(_describe(c, design, alpha) for c in comps if c.verdict == BETTER)
    if all(c.verdict == BETTER for c in comps):
        reason = f"{best}, ahead of every other musl variant beyond {design.margin:.0%}: {beaten}."
        return verdict(WINNER, leader, reason)
    names = {c.other for c in comps if c.verdict == EQUIVALENT}
    tied = [leader] + [c for c in ranked[1:] if c.name in names]
    same = ", ".join(_describe(c, design, alpha) for c in comps if c.verdict == EQUIVALENT)
    reason = f"Equivalent on {measure.label} within ±{design.margin:.0%}: {leader.name} vs {same}."
    if beaten:
        reason += f" {'Both' if len(tied) == 2 else f'All {len(tied)}'} beat the rest: {beaten}."
    tiebreaks: tuple[tuple[Measure, float, Callable[[Candidate], Mapping[int, float]]], ...] = (
        (P99, design.latency_margin, lambda c: c.p99_us),
        (RSS, design.rss_margin, lambda c: c.peak_rss_kb),
    )
    for what, margin, figures in tiebreaks:
        pick, by = _pick_by(tied, figures, margin, alpha)
        if pick is not None:
            reason += (
                f" {what.label[0].upper()}{what.label[1:]} decides: {pick.name} is lower than "
                + "; ".join(_describe(c, design, alpha) for c in by)
                + f" (each beyond the {margin:.0%} margin)."
            )
            return verdict(EQUIVALENT, pick, reason, by, what.name)
    pick = min(tied, key=lambda c: (c.binary_size, c.name))
    reason += (
        f" Neither p99 latency nor peak RSS separates them beyond their margins "
        f"({design.latency_margin:.0%}, {design.rss_margin:.0%}): the smallest binary ships, "
        f"{pick.name} ({pick.binary_size / 1e6:.2f} MB), a preference and not a measured "
        "difference."
    )
    return verdict(EQUIVALENT, pick, reason)
