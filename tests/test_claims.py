"""Claims on hand-built runs with known answers: paired arm comparisons on both measures, the
token budget of the compute-matched one, the reset claims, the one-seed case, and the page."""

from types import SimpleNamespace

import numpy as np
import pytest

from resetrl.analysis.claims import all_claims, arm_roles, auc_budget
from resetrl.analysis.report import claims_section, plain_words
from resetrl.analysis.summaries import Run


def arm(selector: str | None, loss: str = "pg_seq_mean", parent_in_base: bool = False, layout: str = "1x4"):
    return SimpleNamespace(family="grpo" if selector is None else "reset", selector=selector, loss=loss,
                           parent_in_base=parent_in_base, layout=layout)


ARMS = {"grpo": arm(None, "clip_token_mean"), "grpo_pgseq": arm(None), "rrpo": arm("random"),
        "srpo": arm("self"), "srpo_parent": arm("self", parent_in_base=True), "srpo_2x4": arm("self", layout="2x4"),
        "oracle": arm("oracle"), "demo": arm("demo", "clip_token_mean"),
        "oracle_1x8": arm("oracle", "clip_token_mean", layout="1x8"),
        "oracle_parent": arm("oracle", "clip_token_mean", parent_in_base=True)}
N_PROBLEMS = 200


def outcomes(rate: float, rng: np.random.Generator) -> str:
    return "".join(str(int(x)) for x in rng.random(N_PROBLEMS) < rate)


def run(method: str, seed: int, rates: list[float], tokens_per_step: float = 100.0, resets=()) -> Run:
    """Validation every 10 steps at the given accuracies (per-problem outcomes drawn at that rate),
    final test accuracy = the last rate."""
    rng = np.random.default_rng(hash((method, seed)) % 2**32)
    history = [{"step": 10 * i, "compute/tokens_generated": 10 * i * tokens_per_step} for i in range(len(rates))]
    by_step = {str(10 * i): outcomes(r, rng) for i, r in enumerate(rates)}
    test = [int(c) for c in outcomes(rates[-1], rng)]
    return Run(method, seed, history, list(resets), {}, {"ids": [], "by_step": by_step},
               {"test": {"greedy": test}})


def study(rates: dict[str, list[float]], seeds=(0, 1, 2, 3, 4), **kw) -> dict:
    return {m: [run(m, s, r, **kw.get(m, {})) for s in seeds] for m, r in rates.items()}


def claims_of(runs: dict, grad_signal: dict | None = None) -> dict[str, dict]:
    summary = {"grad_signal": grad_signal or {}}
    return {c["id"]: c for c in all_claims(runs, summary, list(runs), ARMS, alpha=0.05, min_effect=0.02)}


def test_roles_take_the_first_arm_of_each_kind_and_name_beyond_paper_variants_by_themselves():
    roles = arm_roles(["grpo", "grpo_pgseq", "rrpo", "srpo_parent", "srpo_2x4", "srpo", "oracle"], ARMS)
    assert roles == {"grpo": "grpo", "grpo_pg": "grpo_pgseq", "rrpo": "rrpo", "srpo_parent": "srpo_parent",
                     "srpo_2x4": "srpo_2x4", "srpo": "srpo", "oracle": "oracle"}
    # the positive control and the oracle's layouts have roles of their own, whatever their order
    roles = arm_roles(["grpo", "oracle_1x8", "oracle_parent", "demo", "oracle"], ARMS)
    assert roles == {"grpo": "grpo", "oracle_1x8": "oracle_1x8", "oracle_parent": "oracle_parent", "demo": "demo",
                     "oracle": "oracle"}


def test_the_positive_control_and_the_sampled_measure_are_claimed():
    flat = [0.3, 0.3, 0.3]
    runs = study({"grpo": flat, "demo": [0.3, 0.7, 0.9]})
    for r in (r for rs in runs.values() for r in rs):  # sampled curves: the same outcomes
        r.val_outcomes["by_step_sampled"] = dict(r.val_outcomes["by_step"])
    c = claims_of(runs)
    for key in ("demo_vs_grpo", "demo_vs_grpo_sampled", "demo_vs_grpo_final"):
        assert c[key]["verdict"] == "reproduced" and c[key]["ci_low"] > 0, key
    assert c["demo_vs_grpo_sampled"]["estimate"] == pytest.approx(c["demo_vs_grpo"]["estimate"])
    assert "oracle_vs_grpo" not in c


def test_a_clear_gain_is_reproduced_on_both_measures_and_a_tie_is_a_tie():
    flat = [0.5, 0.5, 0.5]
    runs = study({"grpo": flat, "grpo_pgseq": flat, "rrpo": flat, "srpo": flat, "oracle": [0.5, 0.8, 0.9]})
    c = claims_of(runs)
    for key in ("oracle_vs_grpo", "oracle_vs_grpo_final", "oracle_vs_grpo_pg"):
        assert c[key]["verdict"] == "reproduced" and c[key]["ci_low"] > 0, key
    assert c["oracle_vs_grpo_final"]["estimate"] == pytest.approx(0.4, abs=0.05)
    # The area under 0.5 -> 0.8 -> 0.9 over two equal token spans: (0.65 + 0.85) / 2 = 0.75.
    assert c["oracle_vs_grpo"]["estimate"] == pytest.approx(0.25, abs=0.04)
    # Arms drawn at the same rate: the interval holds 0 and rules out the gain of interest only
    # when it is narrow enough; either way never "reproduced".
    assert c["srpo_vs_grpo"]["verdict"] != "reproduced"
    assert c["srpo_vs_grpo"]["ci_low"] < 0 < c["srpo_vs_grpo"]["ci_high"]
    assert c["srpo_vs_grpo"]["mde"] > 0 and c["srpo_vs_grpo"]["n_seeds"] == 5


def test_a_worse_method_is_not_reproduced_and_identical_arms_get_no_verdict():
    runs = study({"grpo": [0.6, 0.7, 0.8], "rrpo": [0.6, 0.7, 0.8], "srpo": [0.4, 0.4, 0.4]})
    runs["rrpo"] = [Run("rrpo", r.seed, r.history, [], {}, r.val_outcomes, r.outcomes) for r in runs["grpo"]]
    c = claims_of(runs)
    assert c["srpo_vs_grpo"]["verdict"] == "not reproduced" and c["srpo_vs_grpo"]["ci_high"] < 0
    assert c["srpo_vs_grpo_final"]["verdict"] == "not reproduced"
    # Identical runs: every paired difference is 0 and so is every resample: a [0, 0] interval would claim a
    # certain tie that no data gives (two copies of one run), so there is no verdict, and the reason says so.
    assert c["rrpo_vs_grpo"]["estimate"] == 0 and c["rrpo_vs_grpo"]["verdict"] == "n/a"
    assert "identical" in c["rrpo_vs_grpo"]["reason"]
    assert "oracle_vs_grpo" not in c  # no oracle arm: no claim about it


def test_the_compute_matched_measure_stops_at_the_budget_every_arm_reaches():
    # SRPO spends twice the tokens per step: at GRPO's final budget it has made half its steps.
    runs = study({"grpo": [0.5, 0.5, 0.5], "srpo": [0.5, 0.5, 0.9]}, srpo={"tokens_per_step": 200.0})
    assert auc_budget(runs) == 2000.0
    c = claims_of(runs)
    assert abs(c["srpo_vs_grpo"]["estimate"]) < 0.04  # its late gain lies beyond the budget
    assert c["srpo_vs_grpo_final"]["estimate"] == pytest.approx(0.4, abs=0.05)  # but not beyond the final test


def test_one_seed_gives_estimates_without_intervals_or_verdicts():
    runs = study({"grpo": [0.5, 0.5], "oracle": [0.5, 0.9]}, seeds=(0,))
    c = claims_of(runs)
    assert c["oracle_vs_grpo_final"]["estimate"] > 0.3
    assert all(x["verdict"] == "n/a" and x["ci_low"] is None and x["mde"] is None for x in c.values())
    lines = claims_section(list(c.values()), [0])
    assert any("every verdict is n/a" in line for line in lines)
    assert "In words:" not in lines  # every sentence would only repeat "no verdict"
    assert "no verdict" in plain_words(c["oracle_vs_grpo"])


def reset(e: int, oracle: int, n: int, rewards: list[float]) -> dict:
    return {"step": 0, "n_thoughts": n, "reset_step": e, "oracle_step": oracle, "deviation": e - oracle,
            "clean_prefix": e <= oracle, "suffix_rewards": rewards}


def test_reset_claims_compare_against_the_true_first_errors_and_random_resets():
    rng = np.random.default_rng(0)
    srpo = [run("srpo", s, [0.5, 0.5], resets=[reset(3, 3, 4, [1, 1, 0, 1])] * 20 + [reset(4, 3, 4, [0, 0, 0, 0])] * 5)
            for s in range(4)]
    rrpo = [run("rrpo", s, [0.5, 0.5], resets=[reset(int(e), 3, 4, [0, 1, 0, 0]) for e in rng.integers(1, 5, 25)])
            for s in range(4)]
    grpo = [run("grpo", s, [0.5, 0.5]) for s in range(4)]
    c = claims_of({"grpo": grpo, "rrpo": rrpo, "srpo": srpo},
                  grad_signal={"srpo": {"run_ratios": [2.4, 2.6, 2.5, 2.5]},
                               "rrpo": {"run_ratios": [1.1, 0.8, 1.0, 1.2]}})
    # Reset positions 3/4 (x20) and 4/4 (x5) against first errors at 3/4: +0.05 on average.
    assert c["srpo_at_first_error"]["estimate"] == pytest.approx(0.05)
    assert c["srpo_exact_vs_rrpo"]["verdict"] == "reproduced"  # 80% exact vs ~25% for a uniform draw
    assert c["clean_vs_erroneous"]["verdict"] == "reproduced"  # 0.75 vs 0.0 suffix accuracy
    assert c["grad_signal_srpo"]["estimate"] == pytest.approx(1.5) and c["grad_signal_srpo"]["verdict"] == "reproduced"
    assert c["grad_signal_rrpo"]["verdict"] != "reproduced"  # every arm's ratio is reported, also when it is ~1
