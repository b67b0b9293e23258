"""The credit-assignment family on hand-built chains with known answers: VinePPO's Monte-Carlo values
and their token accounting, the process oracle's and first-error credit's per-thought advantages, and
a method registered in this file appearing in the claims."""

import dataclasses
import math
import random
from types import SimpleNamespace

import pytest
import torch

from resetrl.analysis.claims import all_claims
from resetrl.rl.methods import FAMILIES, Comparison, Method, build_method
from resetrl.rl.methods.base import segment_advantages
from resetrl.rl.methods.process import process_advantages, return_to_go, thought_labels
from resetrl.rl.methods.vine import leave_one_out_G
from resetrl.rollout.engine import Chain, RolloutEngine
from resetrl.tasks.procedural import Problem, corrupt_chain
from test_claims import ARMS, arm, study

PROBLEM = Problem("p", 13, (("*", 3), ("*", 2), ("-", 13), ("-", 3)), 62)  # four thoughts


def wrong(at: int) -> str:
    return corrupt_chain(PROBLEM, random.Random(0), at=at)[0]


class Engine(RolloutEngine):
    """Fresh draws from `fresh` in order (True: the solution, an int: a chain wrong from that thought);
    a continuation of a clean prefix of j thoughts follows `clean[j]` in turn (True: it succeeds, else it
    fails at thought j + 1); a continuation of an erroneous prefix repeats its own chain."""

    def __init__(self, tokenizer, fresh: list, clean: dict[int, list[bool]]):
        super().__init__(tokenizer)
        self.fresh, self.clean = iter(fresh), {j: iter(v * 100) for j, v in clean.items()}
        self.texts: list[tuple[int, str]] = []  # (prefix tokens, full text) of every continuation

    def _sample(self, groups, settings, generator):
        for group in groups:
            for chain in group:
                prefix = self.tokenizer.decode(chain.prefix_ids)
                if not chain.prefix_ids:
                    outcome = next(self.fresh)
                    text = PROBLEM.solution if outcome is True else wrong(outcome)
                elif PROBLEM.solution.startswith(prefix):
                    j = prefix.count("</thought>")
                    text = PROBLEM.solution if next(self.clean[j]) else wrong(j + 1)
                    self.texts.append((len(chain.prefix_ids), text))
                else:
                    text = next(t for t in (wrong(2), wrong(3)) if t.startswith(prefix))
                    self.texts.append((len(chain.prefix_ids), text))
                assert text.startswith(prefix)
                ids = self.tokenizer.encode(text, add_special_tokens=False)
                chain.gen_ids = ids[len(chain.prefix_ids):]
                chain.gen_logprobs, chain.finish = [0.0] * len(chain.gen_ids), "answer"
                chain.n_generated = len(chain.gen_ids)


def per_thought(group, i: int) -> list[float]:
    """The advantage of each thought of chain i (its first token's)."""
    chain = group.chains[i]
    return [float(group.adv_T[i][a]) for a in [0, *chain.thought_ends[:-1]]]


def test_leave_one_out_baseline_excludes_the_chain_itself():
    torch.testing.assert_close(leave_one_out_G(torch.tensor([1.0, 0.0, 1.0, 0.0])),
                               torch.tensor([1 / 3, 2 / 3, 1 / 3, 2 / 3]))
    assert leave_one_out_G(torch.tensor([1.0])).tolist() == [0.0]


def test_vineppo_values_every_thought_from_its_rollouts_and_counts_every_token(tokenizer, smoke_params):
    params = dataclasses.replace(smoke_params, arms={
        **smoke_params.arms, "vineppo": dataclasses.replace(smoke_params.arms["vineppo"], mc_rollouts=2)})
    # After 1 clean thought half the rollouts succeed, after 2 or 3 all do; an erroneous prefix never does.
    engine = Engine(tokenizer, [True, 2, True, 2], {1: [True, False], 2: [True], 3: [True]})
    collected = build_method("vineppo", engine, params, torch.Generator()).collect([PROBLEM], step=0)
    (group,) = collected.groups
    assert group.rewards_G.tolist() == [1.0, 0.0, 1.0, 0.0]
    # V(s0) leave-one-out 1/3 | V after thoughts 1..3 = 1/2, 1, 1 | outcome 1
    assert per_thought(group, 0) == pytest.approx([1 / 6, 1 / 2, 0.0, 0.0])
    # wrong from thought 2: V(s0) 2/3 | 1/2 (clean), 0, 0 (erroneous prefixes) | outcome 0: the error takes -1/2
    assert per_thought(group, 1) == pytest.approx([-1 / 6, -1 / 2, 0.0, 0.0])
    # every token of a thought carries its thought's advantage
    chain, adv_T = group.chains[1], group.adv_T[1]
    assert len(adv_T) == len(chain.response_ids) and adv_T[chain.thought_ends[0]:chain.thought_ends[1]].eq(-0.5).all()
    # 4 chains x 3 boundaries x 2 rollouts, every generated token counted, the fed prefixes apart
    assert len(engine.texts) == 24
    n_ids = lambda text: len(tokenizer.encode(text, add_special_tokens=False))  # noqa: E731
    assert collected.tokens == {
        "fresh": 2 * n_ids(PROBLEM.solution) + 2 * n_ids(wrong(2)),
        "mc": sum(n_ids(text) - prefix for prefix, text in engine.texts),
        "prefix_reused": sum(prefix for prefix, _ in engine.texts)}
    assert collected.generated == collected.tokens["fresh"] + collected.tokens["mc"]


def test_thought_labels_come_from_the_step_checker():
    solved = Chain([], [], text=PROBLEM.solution, thought_ends=[1, 2, 3, 4])
    assert thought_labels(PROBLEM, solved, 1.0) == [1.0, 1.0, 1.0, 1.0]
    for at in (1, 2, 3, 4):
        chain = Chain([], [], text=wrong(at), thought_ends=[1, 2, 3, 4])
        assert thought_labels(PROBLEM, chain, 0.0) == [1.0] * (at - 1) + [0.0] * (5 - at)


def test_process_advantages_z_score_the_group_s_thoughts():
    labels = [[1.0] * 4, [1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0], [1.0] * 4]  # 11 right, 5 wrong thoughts
    right, bad = 5 / math.sqrt(55), -11 / math.sqrt(55)  # (label - 11/16) / population std sqrt(55)/16
    first_error = process_advantages(labels, "first_error")
    assert first_error[1] == pytest.approx([right, bad, bad, bad])  # the good prefix is credited, the rest not
    assert first_error[0] == pytest.approx([right] * 4)
    step = process_advantages(labels, "step")  # DeepSeekMath's process supervision: normalised rewards to go
    assert step[1] == pytest.approx([right + 3 * bad, 3 * bad, 2 * bad, bad])
    assert step[2] == pytest.approx(return_to_go([right, right, bad, bad]))
    assert process_advantages([[1.0, 1.0], [1.0]], "step") == [[0.0, 0.0], [0.0]]  # all right: no signal


@pytest.mark.parametrize("name, credit", [("process_oracle", "step"), ("first_error_credit", "first_error")])
def test_process_arms_credit_each_thought_of_the_sampled_chains(tokenizer, smoke_params, name, credit):
    engine = Engine(tokenizer, [True, 2, 3, True], {})
    collected = build_method(name, engine, smoke_params, torch.Generator()).collect([PROBLEM], step=0)
    (group,) = collected.groups
    expected = process_advantages([[1.0] * 4, [1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0], [1.0] * 4], credit)
    for i in range(4):
        assert per_thought(group, i) == pytest.approx(expected[i])
    assert engine.texts == [] and set(collected.tokens) == {"fresh"}  # no extra sampling


def test_segment_advantages_put_an_unfinished_tail_in_the_last_thought():
    chain = Chain([], [], gen_ids=list(range(7)), thought_ends=[2, 5])
    assert segment_advantages(chain, [1.0, -1.0]).tolist() == [1.0, 1.0, -1.0, -1.0, -1.0, -1.0, -1.0]


class Toy(Method):
    """A method defined outside the package: only the registry and an arm name it."""

    comparisons = (Comparison("toy_vs_rrpo", "toy", "rrpo", "greater", "Toy beats RRPO"),)

    @staticmethod
    def role(arm) -> str | None:
        return "toy"


def test_a_method_registered_here_appears_in_the_claims(monkeypatch):
    monkeypatch.setitem(FAMILIES, "toy", Toy)
    monkeypatch.setitem(ARMS, "mine", SimpleNamespace(**{**vars(arm(None)), "family": "toy"}))
    flat = [0.3, 0.3, 0.3]
    runs = study({"grpo": flat, "rrpo": flat, "mine": [0.3, 0.6, 0.9]})
    claims = {c["id"]: c for c in all_claims(runs, {"grad_signal": {}}, list(runs), ARMS, 0.05, 0.02)}
    assert claims["toy_vs_rrpo"]["verdict"] == "reproduced" and claims["toy_vs_rrpo"]["arm"] == "mine"
    # no comparison with GRPO declared: the generic one is made
    assert claims["toy_vs_grpo"]["claim"].startswith("toy beats GRPO") and claims["toy_vs_grpo"]["ci_low"] > 0


def test_the_family_table_ranks_arms_by_their_compute_matched_gain(tmp_path):
    from resetrl.analysis.figures import family_gains
    from resetrl.analysis.report import family_rows

    flat = [0.3, 0.3, 0.3]
    runs = study({"grpo": flat, "rrpo": flat, "oracle": [0.3, 0.5, 0.7], "demo": [0.3, 0.7, 0.9]})
    rows = family_rows(runs, ARMS, alpha=0.05, min_effect=0.02)
    assert [r["arm"] for r in rows] == ["grpo", "demo", "oracle", "rrpo"]  # the baseline, then best first
    assert "auc" not in rows[0] and rows[1]["verdict"] == "gains" and rows[1]["auc"]["ci_low"] > 0
    assert rows[3]["verdict"] != "gains" and rows[3]["auc"]["estimate"] == pytest.approx(0.0, abs=0.05)
    assert rows[1]["tokens"] == 2000.0  # the last history record's cumulative tokens
    family_gains(rows, tmp_path / "family")
    assert (tmp_path / "family.png").stat().st_size > 0 and (tmp_path / "family.pdf").exists()


def test_the_family_leaves_out_what_a_real_data_task_cannot_run(repo_root, tmp_path):
    from resetrl.core.config import family_arms, load_params

    overlay = tmp_path / "real.yaml"
    overlay.write_text("task: {source: numina, eval_files: {bench: b.jsonl}}\nsft: {steps: 0}\n"
                       "study: {methods: [grpo, srpo], ablations: []}\n")
    real = load_params([repo_root / "params.yaml", overlay])  # study.family keeps its default: no error
    assert family_arms(real) == ["grpo", "rrpo", "srpo", "vineppo"]
    assert family_arms(load_params(repo_root / "params.yaml")) == list(real.study.family)
