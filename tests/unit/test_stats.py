from __future__ import annotations

import numpy as np
import pytest

from kit.bench.stats import (
    Candidate,
    bootstrap_median_ci,
    decide_winner,
    mann_whitney,
    median,
    min_p_value,
    ratio_ci,
    rule_text,
)


def test_median_of_odd_and_even_counts():
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 3, 2]) == 2.5


def test_median_needs_a_sample():
    with pytest.raises(ValueError):
        median([])


def test_bootstrap_interval_brackets_the_median_and_is_reproducible():
    xs = [98.0, 101.0, 100.0, 103.0, 99.0, 102.0, 97.0]
    a = bootstrap_median_ci(xs, resamples=2000, seed=7)
    b = bootstrap_median_ci(xs, resamples=2000, seed=7)
    assert a == b
    assert a.point == 100.0
    assert a.low <= a.point <= a.high
    # A bootstrap median can only be one of the samples: the bounds are observed values.
    assert a.low in xs and a.high in xs
    assert min(xs) <= a.low < a.high <= max(xs)


def test_bootstrap_interval_of_identical_samples_is_a_point():
    ci = bootstrap_median_ci([5.0] * 6, resamples=500)
    assert (ci.low, ci.point, ci.high) == (5.0, 5.0, 5.0)


def test_bootstrap_interval_covers_the_true_median_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    hits = 0
    trials = 200
    for i in range(trials):
        xs = rng.normal(10.0, 1.0, size=25)
        ci = bootstrap_median_ci(xs, resamples=1000, seed=i)
        hits += ci.low <= 10.0 <= ci.high
    assert 0.88 <= hits / trials <= 0.99


def test_bootstrap_interval_narrows_with_more_samples():
    rng = np.random.default_rng(3)
    small = bootstrap_median_ci(rng.normal(0, 1, 8), resamples=2000)
    large = bootstrap_median_ci(rng.normal(0, 1, 400), resamples=2000)
    assert (large.high - large.low) < (small.high - small.low)


def test_ratio_interval_of_a_clear_speedup():
    fast = [200.0, 205.0, 198.0, 202.0, 201.0]
    slow = [100.0, 101.0, 99.0, 102.0, 100.0]
    r = ratio_ci(fast, slow, resamples=2000, seed=1)
    assert r.point == pytest.approx(201.0 / 100.0)
    assert 1.9 < r.low <= r.point <= r.high < 2.1


def test_ratio_rejects_a_zero_denominator():
    with pytest.raises(ValueError):
        ratio_ci([1.0], [0.0, 0.0])


def test_mann_whitney_separates_disjoint_groups_and_not_equal_ones():
    assert mann_whitney([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]).p_value == pytest.approx(2 / 252)
    assert mann_whitney([1, 2, 3], [1, 2, 3]).p_value == 1.0
    assert mann_whitney([4.0] * 5, [4.0] * 5).p_value == 1.0  # no warning, no nan


def test_min_p_value_explains_why_three_repetitions_cannot_be_significant():
    assert min_p_value(3, 3) == pytest.approx(0.1)
    assert min_p_value(5, 5) == pytest.approx(2 / 252)
    assert min_p_value(2, 2) == pytest.approx(1 / 3)


def cand(name, tput, rss=50_000, size=3_000_000):
    return Candidate(
        name,
        name.split("-")[1],
        "x86_64-unknown-linux-musl",
        tuple(float(x) for x in tput),
        (float(rss),) * len(tput),
        size,
    )


SLOW = [1000, 1010, 990, 1005, 995]


def test_clear_significant_lead_wins_outright():
    d = decide_winner(
        [
            cand("musl-system", SLOW),
            cand("musl-mimalloc", [x * 1.5 for x in SLOW], rss=90_000),
            cand("musl-jemalloc", [x * 1.3 for x in SLOW]),
        ],
        noise_margin=0.05,
    )
    assert d.winner.name == "musl-mimalloc"
    assert d.outright and d.tied == ("musl-mimalloc",)
    assert "50.0% ahead" not in d.reason  # the next best is jemalloc, not system
    assert "musl-jemalloc" in d.reason and "p = " in d.reason


def test_significant_but_inside_the_noise_margin_is_a_tie_broken_by_rss():
    # 3% faster every time: significant with 5 vs 5, but below the 5% margin.
    d = decide_winner(
        [
            cand("musl-mimalloc", [x * 1.03 for x in SLOW], rss=80_000),
            cand("musl-jemalloc", SLOW, rss=60_000),
        ],
        noise_margin=0.05,
    )
    assert d.gaps[0].test.significant()
    assert not d.gaps[0].decisive
    assert not d.outright
    assert d.leader == "musl-mimalloc"
    assert d.winner.name == "musl-jemalloc"
    assert "inside the 5% margin" in d.reason and "peak RSS" in d.reason


def test_large_but_noisy_lead_is_a_tie():
    # Median 20% ahead but overlapping samples: not significant.
    noisy = [700, 1600, 1200, 800, 1500]
    d = decide_winner(
        [cand("musl-mimalloc", noisy, rss=70_000), cand("musl-system", SLOW, rss=40_000)],
        noise_margin=0.05,
    )
    assert d.gaps[0].lead > 0.05
    assert not d.gaps[0].test.significant()
    assert d.winner.name == "musl-system"
    assert "not significant" in d.reason


def test_tie_with_equal_rss_goes_to_the_smaller_binary():
    d = decide_winner(
        [
            cand("musl-mimalloc", SLOW, size=3_500_000),
            cand("musl-jemalloc", SLOW, size=3_900_000),
            cand("musl-system", SLOW, size=3_100_000),
        ],
        noise_margin=0.05,
    )
    assert d.winner.name == "musl-system"
    assert "smaller binary" in d.reason


def test_tie_includes_only_variants_whose_gap_is_not_decisive():
    d = decide_winner(
        [
            cand("musl-mimalloc", [x * 2 for x in SLOW], rss=90_000),
            cand("musl-jemalloc", [x * 1.98 for x in SLOW], rss=50_000),
            cand("musl-system", SLOW, rss=10_000),
        ],
        noise_margin=0.05,
    )
    # system has the lowest RSS but is decisively slower, so it is not in the tie.
    assert set(d.tied) == {"musl-mimalloc", "musl-jemalloc"}
    assert d.winner.name == "musl-jemalloc"


def test_decision_does_not_depend_on_input_order():
    cs = [
        cand("musl-mimalloc", SLOW, rss=1),
        cand("musl-jemalloc", SLOW, rss=1),
        cand("musl-system", SLOW, rss=1),
    ]
    names = {
        decide_winner(order, noise_margin=0.05).winner.name
        for order in (cs, cs[::-1], cs[1:] + cs[:1])
    }
    assert len(names) == 1


def test_single_candidate_wins_and_the_rule_states_the_margin():
    d = decide_winner([cand("musl-system", SLOW)], noise_margin=0.05)
    assert d.winner.name == "musl-system" and d.outright
    assert "(5%)" in d.rule and "(12%)" in rule_text(0.12)
    assert d.as_dict()["allocator"] == "system"


def test_quick_run_cannot_test_significance_so_the_margin_decides():
    # 3 against 3: the smallest possible p is 0.1. A variant six times slower must not end up
    # "tied" with the leader and win on memory.
    d = decide_winner(
        [
            cand("musl-system", [1_600, 1_700, 1_650], rss=4_000),
            cand("musl-jemalloc", [9_000, 9_300, 9_100], rss=7_000),
            cand("musl-mimalloc", [10_100, 10_300, 10_200], rss=15_000),
        ],
        noise_margin=0.05,
    )
    assert d.winner.name == "musl-mimalloc"  # 11% ahead of jemalloc: beyond the 5% margin
    assert not d.outright  # but not established by a test
    assert all(not g.testable for g in d.gaps)
    assert "could not be tested" in d.reason and "smallest possible p is 0.1" in d.reason


def test_quick_run_inside_the_margin_is_still_a_tie():
    d = decide_winner(
        [
            cand("musl-jemalloc", [9_900, 10_000, 10_100], rss=7_000),
            cand("musl-mimalloc", [10_000, 10_200, 10_300], rss=15_000),
        ],
        noise_margin=0.05,
    )
    assert d.winner.name == "musl-jemalloc" and not d.outright
