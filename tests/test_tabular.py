"""The tabular buffer simulation: chains, the 1x4 buffer and its compute, the REINFORCE gradient."""

import numpy as np
import pytest

from resetrl.analysis.tabular import Regime, Schedule, first_failure, groups_for, reinforce_grad, simulate

SURE = 50.0  # a logit that makes a step certain


def test_first_failure_starts_where_asked():
    rng = np.random.default_rng(0)
    row = np.array([SURE, SURE, -SURE, SURE])
    assert first_failure(row, 0, rng) == 2
    assert first_failure(row, 3, rng) == 4  # from past the wrong step the chain is correct


def test_the_oracle_buffer_resets_at_the_first_error_and_counts_only_suffix_steps():
    rng = np.random.default_rng(0)
    always_last_wrong = np.array([SURE] * 5 + [-SURE])
    groups, cost = groups_for("oracle", always_last_wrong, Schedule(), rng)
    assert groups == [(0, [5, 5, 5, 5]), (5, [5, 5, 5, 5])]
    assert cost == 5 * 6 + 4 * 1  # five fresh draws (parent + 4 base), four one-step suffixes


def test_without_a_failure_the_buffer_falls_back_to_one_fresh_group():
    rng = np.random.default_rng(0)
    groups, cost = groups_for("oracle", np.full(6, SURE), Schedule(max_draws=12), rng)
    assert groups == [(0, [6] * 8)] and cost == (12 + 4) * 6
    grpo, grpo_cost = groups_for("grpo", np.full(6, SURE), Schedule(), rng)
    assert grpo == [(0, [6] * 8)] and grpo_cost == 8 * 6


def test_reinforce_gradient_on_a_hand_built_group():
    theta = np.zeros(2)  # every step right with probability 1/2
    # chain 1 right at both steps (reward 1, advantage +1), chain 2 wrong at step 0 (advantage -1)
    grad = reinforce_grad(theta, [(0, [2, 0])])
    assert grad == pytest.approx([0.5 + 0.5, 0.5])
    assert not reinforce_grad(theta, [(0, [2, 2])]).any()  # a constant group carries no signal
    # a suffix group only moves the states from its reset step on
    assert reinforce_grad(np.zeros(3), [(1, [3, 1])])[0] == 0.0


def test_learning_raises_greedy_accuracy_and_compute_grows():
    regime = Regime(n_steps=4, slip=0.05, hard_share=1.0, hard_q=0.4, hard_last=True)
    for method in ("grpo", "oracle"):
        curve = simulate(method, regime, Schedule(n_problems=32, steps=60), seed=0)
        spent = [c[0] for c in curve]
        assert spent == sorted(spent) and spent[-1] > 0
        assert curve[0][1] < 0.2 and curve[-1][1] > curve[0][1] + 0.3
