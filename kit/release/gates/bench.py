"""The bench gate: a current winner exists, and it did not regress against the baseline."""

from __future__ import annotations

from typing import Any

from kit.bench.winner import Winner, read_baseline, read_winner
from kit.core.paths import Paths
from kit.core.records import RecordError
from kit.release.context import Context
from kit.release.model import NotRun, Outcome


def bench_regression(current: Winner, baseline: Winner, margin: float) -> Outcome:
    """The winner must not be slower than the baseline's by more than `margin` (pure).

    Compared as ratios against the glibc baseline measured in the same run, not as absolute
    requests per second: absolute figures move with the machine and its load, a same-run ratio
    much less. And judged on evidence: it is a regression only when the whole 95% interval of
    the current ratio lies below the baseline ratio less the margin, so noise alone cannot fail
    the gate (and a real drop of that size cannot hide inside a narrow interval).
    """
    now = current.metrics.ratio_vs_glibc_system
    then = baseline.metrics.ratio_vs_glibc_system
    figures: dict[str, Any] = {
        "winner": current.allocator,
        "outcome": current.outcome,
        "baseline_winner": baseline.allocator,
        "margin": margin,
    }
    if now is None:
        return Outcome(False, "the winner has no ratio against glibc", figures)
    if then is None or then.ratio <= 0:
        return Outcome(False, "the baseline has no ratio against glibc for its winner", figures)
    lo, hi = now.ci
    floor = then.ratio * (1 - margin)
    figures |= {
        "ratio_vs_glibc": now.ratio,
        "ci95": [lo, hi],
        "baseline_ratio_vs_glibc": then.ratio,
        "floor": floor,
        "change": round(now.ratio / then.ratio - 1, 4),
    }
    outcome = f" ({current.outcome})" if current.outcome and current.outcome != "winner" else ""
    text = (
        f"winner {current.allocator}{outcome} at {now.ratio:.2f}x glibc [{lo:.2f}, {hi:.2f}] vs "
        f"baseline {baseline.allocator} at {then.ratio:.2f}x "
        f"(floor {floor:.2f}x = -{margin:.0%})"
    )
    return Outcome(hi >= floor, text, figures)


def gate_bench(ctx: Context) -> Outcome:
    """A winner.json that exists but cannot be read fails the gate (RecordError, the message
    says why): it must be fixed or produced again. A baseline that is missing or unreadable
    makes the gate not-run: there is nothing trusted to compare against yet."""
    opts = ctx.opts
    paths = Paths.of(opts)
    winner_at = paths.relative(paths.winner)
    current = read_winner(opts)
    if current is None:
        return Outcome(False, f"no bench winner at {winner_at}: run `nox -s bench`", {})
    try:
        baseline = read_baseline(opts)
    except RecordError as e:
        baseline_at = paths.relative(opts.path(opts.bench_baseline))
        raise NotRun(
            f"no usable bench baseline: {e.message} Store a trusted winner there: "
            f"cp {winner_at} {baseline_at}"
        ) from None
    return bench_regression(current, baseline, opts.bench_regression_margin)
