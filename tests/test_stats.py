"""Study statistics on hand-made inputs with known answers."""

import math

import numpy as np
import pytest

from resetrl.analysis.stats import (
    area_under_curve,
    boundary_distance_se,
    first_reach,
    mean_std_se,
    one_sample_interval,
    paired_bootstrap,
    seed_bootstrap,
    speedup,
    t_quantile,
    verdict,
    wilson_interval,
)


def test_mean_std_se_of_known_values():
    mean, std, se = mean_std_se([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5
    assert std == pytest.approx(math.sqrt(5 / 3))  # sample std: squared deviations 6.5... / (n - 1) = 5/3
    assert se == pytest.approx(math.sqrt(5 / 3) / 2)
    assert mean_std_se([0.7]) == (0.7, 0.0, 0.0)
    with pytest.raises(ValueError):
        mean_std_se([])


def test_wilson_interval_matches_the_textbook_value():
    # 8 of 10 at 95%: the Wilson interval is (0.4902, 0.9433) (Agresti & Coull 1998 style tables).
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)


def test_wilson_interval_stays_in_unit_range_at_the_extremes():
    low, high = wilson_interval(0, 5)
    assert low == 0.0 and 0.0 < high < 0.6
    low, high = wilson_interval(5, 5)
    assert high == 1.0 and 0.4 < low < 1.0
    with pytest.raises(ValueError):
        wilson_interval(3, 2)
    with pytest.raises(ValueError):
        wilson_interval(0, 0)


def test_first_reach_interpolates_between_the_points_around_the_crossing():
    xs, ys = [0, 10, 20, 30], [0.2, 0.4, 0.6, 0.8]
    assert first_reach(xs, ys, 0.5) == pytest.approx(15.0)
    assert first_reach(xs, ys, 0.1) == 0.0  # already there at the first point
    assert first_reach(xs, ys, 0.9) is None
    assert first_reach([0, 10, 20], [0.5, 0.3, 0.7], 0.6) == pytest.approx(17.5)  # the first crossing counts


def test_speedup_is_reference_over_method():
    assert speedup(100.0, 25.0) == 4.0
    assert speedup(None, 25.0) is None and speedup(100.0, None) is None


def test_t_quantiles_match_the_tables():
    assert t_quantile(0.975, 4) == pytest.approx(2.7764, abs=1e-3)
    assert t_quantile(0.8, 4) == pytest.approx(0.9410, abs=1e-3)
    assert t_quantile(0.975, 1) == pytest.approx(12.706, abs=1e-2)
    assert t_quantile(0.975, 10_000) == pytest.approx(1.960, abs=1e-3)


def test_paired_bootstrap_recovers_a_known_difference_and_its_spread():
    rng = np.random.default_rng(0)
    # 5 seeds x 2000 problems: a true gain of 0.05, seed effects of sd 0.01, problem noise of sd 0.1
    diff = 0.05 + rng.normal(0, 0.01, (5, 1)) + rng.normal(0, 0.1, (5, 2000))
    result = paired_bootstrap(diff, alpha=0.05)
    assert result["estimate"] == pytest.approx(diff.mean())
    expected_se = diff.mean(1).std(ddof=1) / np.sqrt(5)  # the seed means' spread dominates
    assert result["se"] == pytest.approx(expected_se, rel=0.35)
    assert result["ci_low"] < 0.05 < result["ci_high"] and result["ci_low"] > 0
    assert result["mde"] == pytest.approx((2.7764 + 0.9410) * result["se"], rel=1e-3)
    assert verdict(result, "greater", 0.02) == "reproduced"


def test_paired_bootstrap_of_identical_arms_gives_no_interval_and_of_near_identical_ones_holds_zero():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 2, (5, 500))
    result = paired_bootstrap(a - a, alpha=0.05)
    # every resample is 0: no interval (a [0, 0] one would claim a certain tie), and the reason says why
    assert result["estimate"] == 0.0 and result["ci_low"] is None and "identical" in result["reason"]
    assert verdict(result, "equal", 0.02) == "n/a"
    shifted = paired_bootstrap(a - a + rng.normal(0, 0.01, a.shape), alpha=0.05)
    assert shifted["ci_low"] < 0 < shifted["ci_high"] and shifted["reason"] is None


def test_one_seed_gives_no_interval_and_verdict_na():
    result = paired_bootstrap(np.full((1, 100), 0.3), alpha=0.05)
    assert result["n_seeds"] == 1 and result["ci_low"] is None and result["mde"] is None
    assert verdict(result, "greater", 0.02) == "n/a"
    assert verdict(one_sample_interval([1.4], 0.05, null=1.0), "greater", 0.1) == "n/a"


def ci(low, high, n=5):
    return {"ci_low": low, "ci_high": high, "n_seeds": n}


@pytest.mark.parametrize(("interval", "claim", "expected"), [
    (ci(0.001, 0.05), "greater", "reproduced"),  # excludes 0 from above
    (ci(-0.03, 0.019), "greater", "not reproduced"),  # excludes a gain of min_effect = 0.02
    (ci(-0.01, 0.03), "greater", "inconclusive"),  # neither
    (ci(-0.05, -0.001), "less", "reproduced"),
    (ci(-0.019, 0.04), "less", "not reproduced"),
    (ci(-0.01, 0.015), "equal", "reproduced"),  # inside +- 0.02
    (ci(0.025, 0.06), "equal", "not reproduced"),  # wholly outside
    (ci(0.01, 0.03), "equal", "inconclusive"),
    (ci(0.01, 0.03, n=1), "greater", "n/a"),
])
def test_verdict_rules(interval, claim, expected):
    assert verdict(interval, claim, min_effect=0.02) == expected


@pytest.mark.parametrize(("interval", "claim", "distance"), [
    ({**ci(-0.014, 0.017), "se": 0.005}, "greater", 0.6),  # high end 0.003 below the margin 0.02
    ({**ci(0.03, 0.09), "se": 0.01}, "greater", 3.0),  # low end 0.03 above 0: firm
    ({**ci(-0.09, -0.03), "se": 0.01}, "less", 3.0),  # the mirror
    ({**ci(-0.01, 0.015), "se": 0.005}, "equal", 1.0),  # high end 0.005 inside the +0.02 bound
    ({**ci(-0.01, 0.015, n=1), "se": 0.005}, "greater", None),  # one seed: no interval
])
def test_boundary_distance_in_standard_errors(interval, claim, distance):
    got = boundary_distance_se(interval, claim, min_effect=0.02)
    assert got == (None if distance is None else pytest.approx(distance))


def test_one_sample_interval_uses_student_t():
    result = one_sample_interval([1.2, 1.5, 1.3], alpha=0.05, null=1.0)
    se = np.std([0.2, 0.5, 0.3], ddof=1) / np.sqrt(3)
    assert result["estimate"] == pytest.approx(1 / 3)
    assert result["ci_high"] - result["estimate"] == pytest.approx(4.3027 * se, rel=1e-3)


def test_seed_bootstrap_averages_per_seed_differences():
    result = seed_bootstrap([[1, 2, 3], [2, 2]], [[0, 1, 2], [1]], alpha=0.05)
    assert result["estimate"] == pytest.approx(1.0) and result["n_seeds"] == 2


def test_area_under_curve_interpolates_to_the_budget():
    assert area_under_curve([0, 10, 20], np.array([0.0, 1.0, 1.0]), 15) == pytest.approx(10 / 15)
    per_problem = area_under_curve([0, 10, 20], np.array([[0, 1], [1, 1], [1, 1]]), 10)
    assert per_problem.tolist() == [0.5, 1.0]
    with pytest.raises(ValueError, match="budget"):
        area_under_curve([0, 10], np.array([0.0, 1.0]), 11)
