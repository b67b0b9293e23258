"""Study statistics on hand-made inputs with known answers."""

import math

import pytest

from resetrl.stats import first_reach, mean_std_se, speedup, wilson_interval


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
