from __future__ import annotations

import numpy as np
import pytest

from kit.bench.stats import (
    bound_rank,
    median,
    median_interval,
    min_rounds,
    paired_ratio,
    paired_ratios,
    sign_test,
)
from kit.bench.verdict import (
    EQUIVALENT,
    INCONCLUSIVE,
    WINNER,
    Candidate,
    Design,
    decide,
    rule_text,
)


def test_median_of_odd_and_even_counts():
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 3, 2]) == 2.5


def test_median_needs_a_sample():
    with pytest.raises(ValueError):
        median([])


@pytest.mark.parametrize(
    ("n", "coverage"),
    # min..max below n = 9; the real coverage, not the requested 95%
    [(3, 0.75), (5, 0.9375), (6, 0.96875), (9, 1 - 2 * 10 / 512)],
)
def test_median_interval_states_its_exact_coverage(n, coverage):
    xs = list(range(n, 0, -1))
    iv = median_interval(xs)
    assert iv.coverage == pytest.approx(coverage)
    assert iv.low <= iv.point <= iv.high and iv.n == n


def test_median_interval_narrows_to_inner_order_statistics_when_n_allows():
    iv = median_interval(list(range(1, 21)))  # n = 20: x(6)..x(15) covers 95.9%
    assert (iv.low, iv.high) == (6, 15)
    assert iv.coverage == pytest.approx(0.9586, abs=1e-4)
    assert iv.bounds(0.025) and not median_interval([1, 2, 3]).bounds(0.025)


def test_median_interval_really_covers_the_median_as_often_as_it_says():
    rng = np.random.default_rng(3)
    for n in (5, 12):
        hits = 0
        trials = 4000
        for _ in range(trials):
            iv = median_interval(rng.lognormal(0, 0.5, n))
            hits += iv.low <= 1.0 <= iv.high  # the lognormal(0, s) median is 1
        stated = median_interval(list(range(n))).coverage
        assert abs(hits / trials - stated) < 0.015, (n, hits / trials, stated)


def test_bound_rank_and_the_fewest_rounds_for_an_error():
    assert bound_rank(5, 0.05) == 1 and bound_rank(5, 0.025) == 0
    assert bound_rank(12, 0.05 / 3) == 2 and bound_rank(18, 0.05 / 3) == 5
    assert min_rounds(0.05) == 5 and min_rounds(0.05 / 3) == 6 and min_rounds(0.05 / 6) == 7
    assert Design(0.05, 0.1, looks=3).rounds_needed == 7


def test_paired_ratios_are_oriented_and_skip_unpaired_rounds():
    a = {0: 20.0, 1: 30.0, 2: 40.0}
    b = {0: 10.0, 1: 10.0, 3: 10.0}
    assert paired_ratios(a, b) == [2.0, 3.0]
    assert paired_ratios(a, b, higher_is_better=False) == [0.5, pytest.approx(1 / 3)]
    assert paired_ratio({0: 1.0}, {1: 1.0}) is None


def test_sign_test_is_exact():
    assert sign_test([2.0] * 6) == pytest.approx(2 / 64)
    assert sign_test([1.0, 1.0]) == 1.0


def test_pairing_by_round_cancels_drift_that_unpaired_medians_cannot():
    # The machine slows down round after round; b is 10% slower than a in every round.
    drift = [1000, 800, 1200, 700, 1300, 900, 1100]
    a = dict(enumerate(drift))
    b = {r: x / 1.1 for r, x in a.items()}
    r = paired_ratio(a, b, alpha=0.05 / 3)
    assert r is not None
    assert r.interval.low == pytest.approx(1.1) and r.interval.high == pytest.approx(1.1)


def cand(name, values, rss=None, size=1_000_000):
    rss = rss if rss is not None else 50_000
    return Candidate(
        name,
        name.split("-")[1],
        "x86_64-unknown-linux-musl",
        dict(enumerate(values)),
        dict(enumerate([rss] * len(values))) if not isinstance(rss, list) else dict(enumerate(rss)),
        size,
    )


BASE = [1000, 1010, 990, 1005, 995, 1002, 1001]
DESIGN = Design(margin=0.05, rss_margin=0.10, looks=3)


def scaled(f, xs=BASE):
    return [x * f for x in xs]


def test_clear_lead_in_every_round_is_a_winner():
    v = decide(
        [
            cand("musl-system", BASE),
            cand("musl-mimalloc", scaled(1.5)),
            cand("musl-jemalloc", scaled(1.3)),
        ],
        DESIGN,
    )
    assert v.outcome == WINNER and v.outright and v.choice.name == "musl-mimalloc"
    assert [c.verdict for c in v.comparisons] == ["better", "better"]
    assert "musl-jemalloc: 1.154x" in v.reason


def test_same_speed_within_the_margin_is_equivalent_and_rss_decides_beyond_its_margin():
    v = decide(
        [
            cand("musl-jemalloc", scaled(1.01), rss=40_000),
            cand("musl-mimalloc", BASE, rss=30_000),
        ],
        DESIGN,
    )
    assert v.outcome == EQUIVALENT and not v.outright
    assert v.leader == "musl-jemalloc" and v.choice.name == "musl-mimalloc"
    assert v.tiebreak[0].verdict == "better" and "Peak RSS decides" in v.reason
    assert v.tiebreak_by == "peak_rss_kb"


def test_equivalent_with_rss_inside_its_margin_ships_the_smaller_binary():
    v = decide(
        [
            cand("musl-jemalloc", scaled(1.01), rss=31_000, size=900_000),
            cand("musl-mimalloc", BASE, rss=30_000, size=800_000),
        ],
        DESIGN,
    )
    assert v.outcome == EQUIVALENT and v.choice.name == "musl-mimalloc"
    assert "not a measured difference" in v.reason


def test_a_large_noisy_lead_is_inconclusive_not_a_tie():
    # mimalloc's median is 16% ahead, but one round in six it is behind.
    v = decide(
        [
            cand("musl-mimalloc", [1160, 1300, 900, 1200, 1150, 1250, 1170]),
            cand("musl-jemalloc", BASE),
        ],
        DESIGN,
    )
    assert v.outcome == INCONCLUSIVE and v.choice.name == "musl-mimalloc" and not v.outright
    assert "provisionally" in v.reason


def test_too_few_rounds_can_never_call_a_winner():
    three = [cand("musl-mimalloc", scaled(3.0, BASE[:3])), cand("musl-system", BASE[:3])]
    v = decide(three, DESIGN)
    assert v.outcome == INCONCLUSIVE and "too few rounds: 7 are needed" in v.reason
    # Six rounds suffice for one look, not for each of three (Bonferroni over looks).
    six = [cand("musl-mimalloc", scaled(3.0, BASE[:6])), cand("musl-system", BASE[:6])]
    assert decide(six, Design(0.05, 0.1, looks=1)).outcome == WINNER
    assert decide(six, DESIGN).outcome == INCONCLUSIVE


def test_verdict_does_not_depend_on_input_order():
    cs = [
        cand("musl-system", BASE),
        cand("musl-jemalloc", scaled(1.3)),
        cand("musl-mimalloc", scaled(1.31)),
    ]
    a, b = decide(cs, DESIGN), decide(list(reversed(cs)), DESIGN)
    assert a.as_dict() == b.as_dict()


def test_single_candidate_wins_and_the_rule_states_the_margins():
    v = decide([cand("musl-system", BASE)], DESIGN)
    assert v.outcome == WINNER and "only musl variant" in v.reason
    rule = rule_text(DESIGN)
    assert "1 + 5%" in rule and "(10%, 10%)" in rule and "3 planned looks" in rule


def test_lower_is_better_measures_orient_the_ratio():
    from kit.core.workloads import Measure

    wall = Measure(name="wall_s", label="wall time", unit="s", higher_is_better=False)
    v = decide(
        [cand("musl-system", BASE), cand("musl-mimalloc", scaled(0.5))], DESIGN, measure=wall
    )
    assert v.outcome == WINNER and v.choice.name == "musl-mimalloc"
    assert v.comparisons[0].ratio.ratio == pytest.approx(2.0)


@pytest.mark.parametrize("variants", [2, 3])
def test_sequential_looks_keep_the_false_winner_rate_under_alpha(variants):
    """Equal variants, three looks of seven rounds each, margin 0: the rule may call a winner
    only by chance, and that chance must stay under alpha (0.05) over all looks."""
    rng = np.random.default_rng(11)
    design = Design(margin=0.0, rss_margin=0.1, looks=3)
    trials, false = 600, 0
    for _ in range(trials):
        xs = rng.lognormal(0, 0.1, (variants, 21))
        for look in (1, 2, 3):
            n = 7 * look
            cands = [cand(f"musl-{i}", list(x[:n])) for i, x in enumerate(xs)]
            if decide(cands, design, look=look).outcome == WINNER:
                false += 1
                break
    assert false / trials < 0.05


def test_p99_at_a_fixed_rate_decides_between_equivalent_variants_before_rss():
    fast_tail = dict(enumerate([800.0, 810, 790, 805, 795, 802, 801]))
    slow_tail = {r: x * 1.5 for r, x in fast_tail.items()}
    a = cand("musl-jemalloc", scaled(1.01), rss=20_000)  # much less memory...
    b = cand("musl-mimalloc", BASE, rss=40_000)
    a = Candidate(**{**a.__dict__, "p99_us": slow_tail})
    b = Candidate(**{**b.__dict__, "p99_us": fast_tail})  # ...but a third shorter tail
    v = decide([a, b], DESIGN)
    assert v.outcome == EQUIVALENT and v.choice.name == "musl-mimalloc"
    assert v.tiebreak_by == "p99_us" and "P99 latency at a fixed rate decides" in v.reason
