"""Every analysis on hand-made degenerate studies: no failed parent to reset from, all-zero rewards, one
seed, an empty split. Each must write its page, tables and figures with "n/a" and a reason, never crash."""

import json
from pathlib import Path

import numpy as np
import pytest

from resetrl.analysis.report import write_family_table, write_outputs
from resetrl.core.config import load_params

METHODS = ["grpo", "rrpo", "srpo", "oracle"]
STEPS = 4  # validation at 0, 2, 4


def _write(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def fake_study(root: Path, seeds: list[int], correct: float, with_resets: bool, test_problems: int = 8) -> None:
    """What the stages write for each arm and seed, with every chain scoring `correct` (0 or 1 for a constant
    outcome). Reset arms record failed parents only `with_resets`."""
    problems = 8
    rng = np.random.default_rng(0)
    for m in METHODS:
        for s in seeds:
            outcome = "".join(str(int(x)) for x in rng.random(problems) < correct)
            run = root / "runs" / m / f"seed{s}"
            history = [{"step": k, "compute/tokens_generated": 100.0 * k, "train/reward": correct,
                        "train/frac_zero_std_fresh": 1.0 if correct in (0, 1) else 0.2, "time/step_seconds": 1.0,
                        **({"eval/val/pass1": correct, "eval/val/pass1_sampled": correct} if k % 2 == 0 else {}),
                        **({"train/grad_signal_ratio": 1.0} if m != "grpo" and with_resets else {})}
                       for k in range(STEPS + 1)]
            _write(run / "history.json", history)
            by_step = {str(k): outcome for k in range(0, STEPS + 1, 2)}
            _write(run / "val_outcomes.json", {"ids": [f"val-{i}" for i in range(problems)], "by_step": by_step,
                                               "by_step_sampled": by_step})
            resets = [{"step": 1, "problem": "train-0", "n_thoughts": 4, "reset_step": 2, "oracle_step": 2,
                       "deviation": 0, "clean_prefix": True, "loc_fell_back": False, "suffix_rewards": [0.0] * 4}
                      ] if m != "grpo" and with_resets else []
            (run / "resets.jsonl").write_text("".join(json.dumps(r) + "\n" for r in resets))
            split = {"greedy_pass1": correct, "pass@1": correct, "pass@2": correct, "response_tokens": 10.0,
                     "problems": test_problems} if test_problems else {"problems": 0}
            _write(root / "eval" / m / f"seed{s}.json", {"test": split, "ood": split})
            detail = {"ids": [f"test-{i}" for i in range(test_problems)],
                      "greedy": [int(c) for c in outcome[:test_problems]], "sampled_correct": [], "n_samples": 2}
            _write(root / "eval" / m / f"seed{s}.problems.json", {"test": detail, "ood": detail})
    for s in seeds:
        _write(root / "eval" / "sft" / f"seed{s}.json", {"test": {"greedy_pass1": correct, "problems": test_problems},
                                                          "ood": {"greedy_pass1": correct, "problems": test_problems}})


def _params(seeds: list[int]):
    return load_params("params.yaml", [f"study.methods={json.dumps(METHODS)}", f"study.seeds={json.dumps(seeds)}",
                                       f"study.family={json.dumps(METHODS)}", f"rl.steps={STEPS}"])


@pytest.mark.parametrize("case, seeds, correct, with_resets, test_problems", [
    ("no parents to reset from", [0, 1], 0.5, False, 8),
    ("all-zero rewards", [0, 1], 0.0, True, 8),
    ("one seed", [0], 0.5, True, 8),
    ("an empty test split", [0, 1], 0.5, True, 0),
])
def test_every_analysis_runs_through_a_degenerate_study(tmp_path, case, seeds, correct, with_resets, test_problems):
    fake_study(tmp_path, seeds, correct, with_resets, test_problems)
    params = _params(seeds)
    summary = write_outputs(tmp_path, params, tmp_path / "RESULTS.md")
    page = (tmp_path / "RESULTS.md").read_text()
    for figure in ("reset_positions", "localization", "suffix_correction", "clean_vs_erroneous", "grad_signal"):
        assert (tmp_path / "plots" / f"{figure}.png").stat().st_size > 0, figure
    family = write_family_table(tmp_path, params)
    assert "grpo" in family and (tmp_path / "plots" / "family.png").exists()
    verdicts = {c["verdict"] for c in summary["claims"]}
    if case == "one seed":
        assert verdicts == {"n/a"} and "every verdict is n/a" in page
    if case == "all-zero rewards":  # every group alike: the page says the regime is at the floor
        assert "at the floor" in page
        arm_claims = [c for c in summary["claims"] if "baseline" in c]
        assert arm_claims and all(c["verdict"] == "n/a" and "scores 0 on every problem" in c["reason"]
                                  for c in arm_claims)
    else:
        assert "This regime is" not in page
    if case == "an empty test split":
        finals = [c for c in summary["claims"] if c["id"].endswith("_final")]
        assert finals and all(c["verdict"] == "n/a" and "empty split" in c["reason"] for c in finals)
    if case == "no parents to reset from":  # no reset claims can be made; the arm comparisons still are
        assert not any(c["id"].startswith(("srpo_at", "clean_vs")) and c["verdict"] != "n/a"
                       for c in summary["claims"])
