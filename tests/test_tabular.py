"""The tabular buffer simulation: chains, each arm's buffer and its compute, the REINFORCE gradient, the
prediction for the study's params."""

from types import SimpleNamespace

import numpy as np
import pytest

from resetrl.analysis.tabular import (
    Buffer,
    Regime,
    Schedule,
    buffer_of,
    compare,
    first_failure,
    groups_for,
    mde,
    regime_of,
    reinforce_grad,
    simulate,
)

SURE = 50.0  # a logit that makes a step certain
LAST_WRONG = np.array([SURE] * 5 + [-SURE])  # six steps, only the last one always wrong


def test_first_failure_starts_where_asked():
    rng = np.random.default_rng(0)
    row = np.array([SURE, SURE, -SURE, SURE])
    assert first_failure(row, 0, rng) == 2
    assert first_failure(row, 3, rng) == 4  # from past the wrong step the chain is correct


def test_the_oracle_buffer_resets_at_the_first_error_and_counts_only_suffix_steps():
    groups, cost = groups_for(Buffer("oracle"), LAST_WRONG, Schedule(), np.random.default_rng(0))
    assert groups == [(0, [5, 5, 5, 5]), (5, [5, 5, 5, 5])]
    assert cost == 5 * 6 + 4 * 1  # five fresh draws (parent + 4 base), four one-step suffixes


def test_the_1x8_layout_and_the_parent_in_base():
    rng = np.random.default_rng(0)
    groups, cost = groups_for(Buffer("oracle", "1x8"), LAST_WRONG, Schedule(), rng)
    assert groups == [(5, [5] * 8)] and cost == 6 + 8 * 1  # one parent, eight suffixes, no base group
    groups, _ = groups_for(Buffer("oracle", parent_in_base=True), LAST_WRONG, Schedule(), rng)
    assert groups[0] == (0, [5] * 5)  # the failed parent is trained on beside the four fresh chains


def test_the_demo_window_widens_from_the_last_step_to_the_whole_chain():
    rng = np.random.default_rng(0)
    starts = {groups_for(Buffer("demo"), LAST_WRONG, Schedule(), rng, 0.0)[0][1][0] for _ in range(50)}
    assert starts == {5}  # at the start of the run: only the last step is left to the policy
    starts = {groups_for(Buffer("demo"), LAST_WRONG, Schedule(), rng, 1.0)[0][1][0] for _ in range(400)}
    assert starts == set(range(6))
    groups, cost = groups_for(Buffer("demo"), LAST_WRONG, Schedule(), np.random.default_rng(1), 0.0)
    assert cost == 4 * 6 + 4 * 1  # no parent: four fresh chains and four one-step suffixes


def test_random_resets_past_the_first_error_cannot_succeed():
    row = np.array([SURE, -SURE] + [SURE] * 4)  # step 1 always wrong
    rng = np.random.default_rng(0)
    for _ in range(30):
        groups, _ = groups_for(Buffer("random"), row, Schedule(), rng)
        reset, ends = groups[-1]
        assert ends == ([1] * 4 if reset <= 1 else [-1] * 4)


def test_without_a_failure_the_buffer_falls_back_to_one_fresh_group():
    rng = np.random.default_rng(0)
    groups, cost = groups_for(Buffer("oracle"), np.full(6, SURE), Schedule(max_draws=12), rng)
    assert groups == [(0, [6] * 8)] and cost == (12 + 4) * 6
    grpo, grpo_cost = groups_for(Buffer(), np.full(6, SURE), Schedule(), rng)
    assert grpo == [(0, [6] * 8)] and grpo_cost == 8 * 6


def test_reinforce_gradient_on_a_hand_built_group():
    theta = np.zeros(2)  # every step right with probability 1/2
    # chain 1 right at both steps (reward 1, advantage +1), chain 2 wrong at step 0 (advantage -1)
    grad = reinforce_grad(theta, [(0, [2, 0])])
    assert grad == pytest.approx([0.5 + 0.5, 0.5])
    assert not reinforce_grad(theta, [(0, [2, 2])]).any()  # a constant group carries no signal
    # a suffix group only moves the states from its reset step on
    assert reinforce_grad(np.zeros(3), [(1, [3, 1])])[0] == 0.0


def test_learning_raises_accuracy_and_compute_grows():
    regime = Regime(n_steps=4, slip=0.05, hard_q=0.3)
    for buffer in (Buffer(), Buffer("oracle"), Buffer("demo")):
        curve = simulate(buffer, regime, Schedule(n_problems=32, steps=40, lr=0.5), seed=0)
        spent = [c[0] for c in curve]
        assert spent == sorted(spent) and spent[-1] > 0
        assert curve[0][1] < 0.2 and curve[-1][1] > curve[0][1] + 0.3  # greedy
        assert curve[-1][2] > curve[0][2] + 0.3  # sampled


def test_unlearnable_slips_stay_put():
    regime = Regime(n_steps=4, slip=0.2, hard_q=0.3, slips_learnable=False)
    curve = simulate(Buffer(), regime, Schedule(n_problems=32, steps=40, lr=0.5), seed=0)
    assert curve[-1][2] < 0.8 ** 3 + 0.05  # sampled accuracy is capped by the slips RL cannot remove


def test_the_positive_control_beats_grpo_in_the_table():
    out = compare(Regime(n_steps=6, slip=0.15, hard_q=0.2), Schedule(n_problems=64, steps=40, lr=0.3),
                  {"grpo": Buffer(), "demo": Buffer("demo")}, seeds=3)
    demo = out["arms"]["demo"]
    assert demo["gain_sampled"] > 3 * demo["se_sampled"] > 0
    assert "gain_greedy" not in out["arms"]["grpo"]  # the baseline has no gain over itself


def test_mde_shrinks_with_pairs_and_grows_with_spread():
    assert mde(0.1, 4, 0.05) == pytest.approx((1.959964 + 0.841621) * 0.1 / 2, rel=1e-5)
    assert mde(0.1, 16, 0.05) < mde(0.1, 4, 0.05) < mde(0.2, 4, 0.05)


def test_regime_and_buffers_come_from_the_params():
    task = SimpleNamespace(max_steps=8, slip_rate=0.15, final_step_accuracy=0.3)
    assert regime_of(task) == Regime(n_steps=8, slip=0.15, hard_q=0.3, hard_share=1.0)
    plain = regime_of(SimpleNamespace(max_steps=5, slip_rate=0.0, final_step_accuracy=None))
    assert plain.hard_share == 0.0 and 0 < plain.slip < 0.01  # kept off a rate of 0, where a logit is infinite
    arm = lambda **kw: SimpleNamespace(**{"family": "reset", "selector": "random", "layout": "1x4",  # noqa: E731
                                          "parent_in_base": False, **kw})
    assert buffer_of(arm(family="grpo")) == Buffer()
    assert buffer_of(arm(family="vine")) is None  # per-token credit: no table model
    assert buffer_of(arm(selector="oracle", layout="1x8")) == Buffer("oracle", "1x8")
    assert buffer_of(arm(selector="self")) is None  # self-localization is a learned skill the table has no model of
    assert buffer_of(arm(selector="random", layout="2x4")) is None
