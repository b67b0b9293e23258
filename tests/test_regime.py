import random

import pytest

from resetrl.core.config import load_params
from resetrl.rl.probe import first_error_positions, group_signal, measure, reach_probability, step_error_rates
from resetrl.rollout.engine import RolloutEngine
from resetrl.tasks.procedural import Problem, check_chain, corrupt_chain

PROBLEM = Problem("p", 13, (("+", 3), ("*", 2), ("-", 13)), 19)


def failing_at(at: int) -> str:
    return corrupt_chain(PROBLEM, random.Random(at), at=at)[0]


def checks(*ats: int | None):
    return [check_chain(PROBLEM, PROBLEM.solution if at is None else failing_at(at)) for at in ats]


def test_step_error_rates_count_steps_reached_with_a_clean_prefix():
    rates = step_error_rates([PROBLEM], [checks(None, 2, 3)])
    # correct: + * - reached; fails at 2: + * reached, * wrong; fails at 3: all reached, - wrong
    assert rates["+"] == {"reached": 3, "wrong": 0, "rate": 0.0}
    assert rates["*"] == {"reached": 3, "wrong": 1, "rate": pytest.approx(1 / 3)}
    assert rates["-"] == {"reached": 2, "wrong": 1, "rate": 0.5}


def test_a_chain_that_runs_on_is_charged_to_overrun():
    long = PROBLEM.solution + "19+1=20 \\boxed{20}</thought>"  # right through the last operation
    rates = step_error_rates([PROBLEM], [[check_chain(PROBLEM, long)]])
    assert rates["overrun"] == {"reached": 1, "wrong": 1, "rate": 1.0}


def test_first_error_positions():
    out = first_error_positions([PROBLEM], [checks(None, 1, 3, 3)])
    assert out["failed"] == 3
    assert out["by_thought"] == {"1": pytest.approx(1 / 3), "3": pytest.approx(2 / 3)}
    assert out["at_last_step"] == pytest.approx(2 / 3)
    assert out["mean_relative"] == pytest.approx((1 / 3 + 1 + 1) / 3)
    assert first_error_positions([PROBLEM], [checks(None)]) == {"failed": 0}


def test_reach_probability_is_the_share_of_other_chains_clean_before_the_error():
    # fails at 2: both others are clean through thought 1; fails at 3: the correct chain is clean
    # through thought 2, the one failing at 2 is not.
    assert reach_probability([checks(None, 2, 3)]) == pytest.approx((1.0 + 0.5) / 2)
    assert reach_probability([checks(None, None)]) is None


def test_errors_that_cancel_are_errors_not_clean_chains():
    # 13+3 stated as 15 (one low), then 15*2 stated as 32 (two high): the final answer is right
    cancelling = PROBLEM.solution.replace("13+3=16", "13+3=15").replace("16*2=32", "15*2=32")
    check = check_chain(PROBLEM, cancelling)
    assert check.correct and check.first_error == 1
    rates = step_error_rates([PROBLEM], [[check]])
    assert rates["+"] == {"reached": 1, "wrong": 1, "rate": 1.0} and "*" not in rates
    assert first_error_positions([PROBLEM], [[check]])["by_thought"] == {"1": 1.0}
    # Beside a chain failing at thought 2, both chains are failed ones: the one failing at 2 has no sibling
    # clean through thought 1 (the rewarded chain erred there; judged by the reward it would count as 1).
    assert reach_probability([[check, checks(2)[0]]]) == pytest.approx((1.0 + 0.0) / 2)


def test_group_signal():
    out = group_signal([checks(None, None), checks(2, 3), checks(None, 2), checks(None, 1)])
    assert out == {"all_wrong": 0.25, "all_right": 0.25, "mixed": 0.5}


class FixedEngine(RolloutEngine):
    """Fresh chains fail at thought 2 (every other one) or solve the problem; every suffix (a
    request with a prefix) completes the solution, and a localization call answers 2."""

    def __init__(self, tokenizer):
        super().__init__(tokenizer)
        self.draws = 0

    def _sample(self, groups, settings, generator):
        for group in groups:
            for chain in group:
                if settings.free_text:
                    text = "\\boxed{2}"
                elif chain.prefix_ids:
                    text = PROBLEM.solution
                else:
                    self.draws += 1
                    text = failing_at(2) if self.draws % 2 else PROBLEM.solution
                ids = self.tokenizer.encode(text, add_special_tokens=False)
                chain.gen_ids = ids[len(chain.prefix_ids):]
                chain.gen_logprobs, chain.finish = [0.0] * len(chain.gen_ids), "answer"
                chain.n_generated = len(chain.gen_ids)


def test_measure_on_a_scripted_policy(tokenizer, repo_root):
    params = load_params([repo_root / "params.yaml"])
    out = measure(FixedEngine(tokenizer), [PROBLEM] * 3, params.rollout, group_size=4, n_suffixes=2,
                  loc_max_tokens=8, seed=0)
    assert out["fresh_success"] == 0.5
    assert out["groups"] == {"all_wrong": 0.0, "all_right": 0.0, "mixed": 1.0}
    assert out["p_reach"] == 1.0  # every other chain is clean through thought 1
    rs = out["reset_state"]
    assert rs["parents"] == 3 and rs["suffix_success"] == 1.0 and rs["fresh_success_same_problems"] == 0.5
    assert out["localization"]["self"]["exact_match"] == 1.0
    assert out["localization"]["random"] == {"exact_match": pytest.approx(1 / 3), "clean_rate": pytest.approx(2 / 3)}
    assert out["step_error_rate"]["*"]["rate"] == 0.5


def measured_seed(fresh: float, suffix: float, p: float) -> dict:
    """One seed's task measurements as `regime.measure` writes them."""
    return {"problems": 4, "group_size": 8, "fresh_success": fresh, "p_reach": p,
            "step_error_rate": {"+": {"reached": 10, "wrong": 1, "rate": 0.1},
                                "*": {"reached": 4, "wrong": 2, "rate": 0.5}},
            "first_error": {"failed": 2, "by_thought": {"1": 0.5, "3": 0.5}, "at_last_step": 0.5, "mean_relative": 0.6},
            "groups": {"all_wrong": 0.25, "all_right": 0.25, "mixed": 0.5},
            "reset_state": {"parents": 2, "suffix_success": suffix, "fresh_success_same_problems": fresh},
            "localization": {"self": {"exact_match": 0.5, "clean_rate": 0.75, "fallback_rate": 0.0},
                             "random": {"exact_match": 0.25, "clean_rate": 0.5}}}


def test_task_section_reports_seed_means_and_pooled_step_rates():
    from resetrl.analysis.report import task_section, task_summary

    measured = [measured_seed(0.2, 0.5, 0.6), measured_seed(0.4, 0.5, 0.8)]
    assert task_summary(measured)["p_reach"] == pytest.approx(0.7)
    text = "\n".join(task_section(measured, 0.05))
    assert "**p = 0.700**" in text and "solve **0.300**" in text
    assert "`*` 0.500, `+` 0.100" in text  # (2 + 2) / (4 + 4) and (1 + 1) / (10 + 10)
    assert "difference +0.200" in text and "1: 0.50, 3: 0.50" in text
    assert task_section([], 0.05) == []
    # A warm start that left no failed chain to reset from (a short SFT): n/a with its reason, no crash.
    empty = measured_seed(0.0, None, None)
    empty["reset_state"] = {"parents": 0, "suffix_success": None, "fresh_success_same_problems": None}
    empty["first_error"] = {"failed": 0, "by_thought": {}, "at_last_step": None, "mean_relative": None}
    text = "\n".join(task_section([empty, empty], 0.05))
    assert "p = n/a" in text and "difference n/a, n/a: no warm start left a failed chain to reset from" in text


def test_profile_section_puts_the_measured_rates_beside_the_designed_ones():
    from resetrl.analysis.report import profile_section

    def seed(wrong_last):
        return {"position_error_rate": {"1": {"reached": 100, "wrong": 15, "rate": 0.15},
                                        "2": {"reached": 80, "wrong": wrong_last, "rate": wrong_last / 80}},
                "designed_error_rate": {"1": 0.15, "2": 0.9}, "sampling": {"temperature": 1.0, "top_p": 1.0}}

    lines = profile_section([seed(64), seed(72)])
    assert "| 1 | 0.150 | 0.150 | 0.150-0.150 | 200 |" in lines
    assert "| 2 | 0.900 | 0.850 | 0.800-0.900 | 160 |" in lines  # pooled (64 + 72) / 160
    assert profile_section([{"fresh_success": 0.1}]) == []  # measured before profiles existed: no section


def test_prediction_section_marks_predictions_outside_the_measured_interval():
    from resetrl.analysis.report import prediction_section

    row = {"gain_greedy": 0.2, "se_greedy": 0.01, "gain_sampled": 0.1, "se_sampled": 0.01, "mde_greedy": 0.05}
    prediction = {"regime": {"n_steps": 8, "slip": 0.15, "hard_q": 0.1, "hard_share": 1.0}, "p_reach_hard_step": 0.32,
                  "schedule": {"steps": 50}, "seeds": 8, "arms": {"grpo": {}, "demo": row, "oracle": row}}
    claim = lambda arm, low, high: {"arm": arm, "baseline": "grpo", "measure_key": "auc", "estimate": (low + high) / 2,  # noqa: E731
                                    "ci_low": low, "ci_high": high, "mde": 0.04}
    lines = prediction_section(prediction, [claim("demo", 0.1, 0.3), claim("oracle", 0.0, 0.1)])
    demo, oracle = (next(x for x in lines if x.startswith(f"| {arm} |")) for arm in ("demo", "oracle"))
    assert demo.endswith("| yes / – |") and oracle.endswith("| **no** / – |")
    assert not any(x.startswith("| grpo |") for x in lines)  # the baseline has no gain over itself
    assert prediction_section(None, []) == []


def test_regime_table_shows_gains_with_intervals():
    from resetrl.analysis.regimes import regime_table

    gain = {"estimate": 0.03, "ci_low": 0.01, "ci_high": 0.05, "verdict": "reproduced", "mde": 0.02}
    settings = {"q10": {"chain_length": [8, 8], "designed": {"slip_rate": 0.15, "final_step_accuracy": 0.1},
                        "task": {"fresh_success": 0.1, "p_reach": 0.5, "suffix_success": 0.3,
                                 "fresh_success_same_problems": 0.1, "all_wrong_groups": 0.4,
                                 "first_error_at_last_step": 0.1},
                        "gains": {"oracle": gain}, "predicted": {"oracle": 0.08, "demo": 0.25}}}
    row = regime_table(settings).splitlines()[-1]
    assert row.startswith("| q10 | 8-8 | 0.15 / 0.1 | 0.100 | 0.500 | 0.300 / 0.100 | 0.40 |")
    # demo: predicted but not run; oracle: measured beside its prediction; srpo, rrpo: neither
    assert "| -; +0.250 | +0.030 [+0.010, +0.050] (reproduced); +0.080 |" in row
    assert row.endswith("| - | - | 0.020 |")
