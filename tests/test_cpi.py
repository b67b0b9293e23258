"""The CPI theory check: estimators against closed forms on the thought tree."""

import numpy as np
import pytest

from resetrl.analysis.cpi import (
    ThoughtTree,
    caro_samples,
    cpi_improvement,
    loglog_slope,
    measure,
    rr_samples,
    samples_needed,
)


def test_both_estimators_are_unbiased_for_their_advantage():
    tree = ThoughtTree(p=0.5, tau=0.5, q=0.2)
    rng = np.random.default_rng(0)
    assert tree.advantage_star == pytest.approx(0.4)
    assert rr_samples(tree, 2_000_000, rng).mean() == pytest.approx(tree.policy_advantage, rel=0.05)
    assert caro_samples(tree, 500_000, rng).mean() == pytest.approx(tree.advantage_star, rel=0.02)


def test_samples_needed_is_the_squared_relative_noise():
    # mean 1, sample std 2: the SE of n samples is 2 / sqrt(n); half the mean needs n = 16.
    estimates = np.array([-1.0, 3.0] * 1000)
    assert samples_needed(estimates) == pytest.approx(16.0, rel=0.01)


def test_improvement_is_exact_on_the_tree():
    tree = ThoughtTree(p=0.25, tau=0.5, q=0.2, horizon=4)
    # alpha = 0.4 / (4 * 4) = 0.025; q rises by alpha (1 - q) = 0.02; value rises by p tau 0.02
    assert cpi_improvement(tree, 0.4) == pytest.approx(0.25 * 0.5 * 0.02)
    assert cpi_improvement(tree, -1.0) == 0.0  # a negative estimate takes no step


def test_measured_slopes_follow_the_theorem():
    rows = measure([0.1, 0.2, 0.4, 0.8], 400_000, seed=1)
    ps = [r["p"] for r in rows]
    assert loglog_slope(ps, [r["samples_ratio"] for r in rows]) == pytest.approx(-2.0, abs=0.4)
    assert loglog_slope(ps, [r["improvement_ratio"] for r in rows]) == pytest.approx(-1.0, abs=0.25)


def test_loglog_slope_of_a_power_law():
    xs = [0.1, 0.3, 1.0]
    assert loglog_slope(xs, [5 * x ** -2 for x in xs]) == pytest.approx(-2.0)
