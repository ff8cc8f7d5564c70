"""Seed statistics against hand values: IQM of known data, CI coverage in a seeded simulation, probability of
improvement for separated / identical groups, and conclusions that only claim what the CI shows."""

import numpy as np
import pytest

from trackrl.analysis import statistics as S


def test_iqm_is_the_mean_of_the_middle_half():
    # 8 values: the 2 lowest and 2 highest are cut, the mean of 3, 4, 5, 6 is 4.5; the outlier 100 does not count
    values = np.array([7.0, 1, 100, 3, 5, 2, 6, 4])
    assert S.aggregate(values, "iqm").value == pytest.approx(4.5)
    assert S.aggregate(values, "mean").value == pytest.approx(128 / 8)
    assert S.aggregate(values, "median").value == pytest.approx(4.5)


def test_aggregates_pool_tasks_and_skip_unfinished_seeds():
    scores = np.array([[1.0, 2.0], [3.0, np.inf], [5.0, 6.0]])  # seeds x tasks; one seed never finished task 1
    assert S.aggregate(scores, "mean").value == pytest.approx((1 + 2 + 3 + 5 + 6) / 5)


def test_ci_contains_the_true_mean_in_most_seeded_simulations():
    rng = np.random.default_rng(123)
    true_mean, n_trials = 1.05, 100
    covered = 0
    for trial in range(n_trials):
        sample = rng.normal(true_mean, 0.02, size=10)
        low, high = S.aggregate(sample, "mean", n_resamples=500, seed=trial).ci
        covered += low <= true_mean <= high
    # a 95% percentile interval with 10 seeds under-covers a little; far below 85% would mean a broken interval
    assert 85 <= covered <= 100


def test_ci_is_none_with_one_seed():
    assert S.aggregate(np.array([1.02]), "iqm").ci is None


def test_probability_of_improvement_separated_identical_and_ties():
    fast, slow = np.array([1.00, 1.01, 1.02]), np.array([1.10, 1.11, 1.12])
    separated = S.probability_of_improvement(fast, slow)
    assert separated.value == 1.0 and separated.ci == (1.0, 1.0)
    assert S.probability_of_improvement(slow, fast).value == 0.0
    same = S.probability_of_improvement(fast, fast)
    assert same.value == pytest.approx(0.5)
    assert same.ci[0] < 0.5 < same.ci[1]
    # hand count over the 2 x 2 pairs: (1.0 < 1.05) 1, (1.0 < inf) 1, (inf vs 1.05) 0, (inf = inf) 0.5 -> 2.5 / 4
    assert S.probability_lower(np.array([1.0, np.inf]), np.array([1.05, np.inf])) == pytest.approx(0.625)


def test_conclusion_claims_a_difference_only_when_the_ci_excludes_half():
    fast, slow = np.linspace(1.0, 1.02, 5), np.linspace(1.10, 1.12, 5)
    claim = S.conclusion("a01", "a01_btr", S.probability_of_improvement(fast, slow), "1 h", 5)
    assert claim.startswith("a01 is faster than a01_btr at 1 h: P(a01 faster) = 1.00 [1.00, 1.00]")
    reverse = S.conclusion("a01_btr", "a01", S.probability_of_improvement(slow, fast), "1 h", 5)
    assert reverse.startswith("a01 is faster than a01_btr at 1 h")
    overlap = S.probability_of_improvement(np.array([1.0, 1.1, 1.2, 1.3, 1.4]), np.array([1.05, 1.15, 1.25, 1.35, 1.0]))
    assert not S.difference_detected(overlap)
    assert "no difference detectable with 5 seeds" in S.conclusion("a", "b", overlap, "1 h", 5)
    single = S.probability_of_improvement(np.array([1.0]), np.array([2.0]))
    assert "one run per group" in S.conclusion("a", "b", single, "1 h", 1)
