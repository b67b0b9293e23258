"""The reset buffer: draw rule, fallback, prefixes cut at thought boundaries, selectors, accounting."""

import dataclasses
import math
import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from resetrl.core.response_format import THOUGHT_END
from resetrl.rl.methods import build_method
from resetrl.rl.methods.grpo import GRPO
from resetrl.rl.methods.reset import Reset
from resetrl.rl.resets import (
    OracleSelector,
    PromptBuffer,
    RandomSelector,
    SelfSelector,
    clamp_step,
    demonstration_resets,
    draw_fresh,
    make_resets,
    thought_texts,
)
from resetrl.rollout.engine import Chain, RolloutEngine, SamplingSettings
from resetrl.tasks.procedural import Problem, check_chain, corrupt_chain

PROBLEM = Problem("p", 13, (("*", 3), ("*", 2), ("-", 13), ("-", 3)), 62)
SETTINGS = SamplingSettings(0.7, 0.95, 8, 32, 16)


def wrong_chain(at: int = 2) -> str:
    return corrupt_chain(PROBLEM, random.Random(0), at=at)[0]


class ScriptedEngine(RolloutEngine):
    """Stands in for a rollout engine: scripted responses per prompt, in draw order (True: the
    solution, False: a chain failing at thought 2, a string: that text)."""

    def __init__(self, tokenizer, outcomes: list[bool]):
        super().__init__(tokenizer)
        self.outcomes, self.calls = iter(outcomes), 0

    def _sample(self, groups, settings, generator):
        self.calls += 1
        for group in groups:
            for chain in group:
                outcome = True if chain.prefix_ids else next(self.outcomes)
                text = outcome if isinstance(outcome, str) else PROBLEM.solution if outcome else wrong_chain()
                ids = self.tokenizer.encode(text, add_special_tokens=False)
                chain.gen_ids = ids[len(chain.prefix_ids):]
                chain.gen_logprobs, chain.finish = [0.0] * len(chain.gen_ids), "answer"
                chain.n_generated = len(chain.gen_ids)


@pytest.fixture()
def scripted(tokenizer):
    return lambda outcomes: ScriptedEngine(tokenizer, outcomes)


def test_first_failure_is_the_parent_and_others_fill_the_base(scripted, tokenizer):
    engine = scripted([True, False, True, True, False, True, True])
    (b,) = draw_fresh(engine, [PROBLEM], "1x4", 12, 8, SETTINGS, None)
    assert len(b.drawn) == 5  # 4 base + 1 parent; the second failure joins the base group
    assert b.parents == [b.drawn[1]]
    assert b.base == [b.drawn[0], b.drawn[2], b.drawn[3], b.drawn[4]]
    assert not b.fallback


def test_no_failure_in_max_draws_keeps_four_and_draws_four_unconditioned(scripted, tokenizer):
    engine = scripted([True] * 12 + [False, True, True, False])
    (b,) = draw_fresh(engine, [PROBLEM], "1x4", 12, 8, SETTINGS, None)
    assert len(b.drawn) == 16  # the release's phase 2: up to 16 draws in all
    assert b.fallback and b.parents == []
    assert b.base == b.drawn[:4] + b.drawn[12:]


@pytest.mark.parametrize("group_size", [4, 6, 8])
def test_fallback_group_follows_the_group_size(scripted, tokenizer, group_size):
    engine = scripted([True] * 12 + [False] * group_size)
    (b,) = draw_fresh(engine, [PROBLEM], "1x4", 12, group_size, SETTINGS, None)
    assert len(b.base) == group_size and len(b.drawn) == 12 + group_size - group_size // 2


def test_fallback_group_can_carry_nonzero_advantage(scripted, tokenizer, smoke_params):
    # 12 correct draws, then the unconditioned fallback draws fail: the group has signal.
    engine = scripted([True] * 12 + [False] * 2)
    (group,) = build_method("oracle", engine, smoke_params, torch.Generator()).collect([PROBLEM], step=0).groups
    assert group.label == "fresh" and group.rewards_G.tolist() == [1.0, 1.0, 0.0, 0.0]
    assert group.adv_G.tolist() == [1.0, 1.0, -1.0, -1.0]


def test_failure_without_a_complete_thought_joins_the_base_group_and_is_never_a_parent(scripted, tokenizer):
    engine = scripted(["12 + 3 = 1", True, "", False, True, True])
    (b,) = draw_fresh(engine, [PROBLEM], "1x4", 12, 8, SETTINGS, None)
    assert b.parents == [b.drawn[3]] and b.drawn[3].thought_ends
    assert b.drawn[0] in b.base and b.drawn[2] in b.base and len(b.base) == 4


def test_only_thoughtless_failures_fall_back(scripted, tokenizer):
    engine = scripted(["no thought"] * 12 + [True] * 4)
    (b,) = draw_fresh(engine, [PROBLEM], "1x4", 12, 8, SETTINGS, None)
    assert b.fallback and all(not c.thought_ends for c in b.drawn[:12])


def test_parent_in_base_trains_every_fresh_draw(scripted, tokenizer, smoke_params):
    engine = scripted([True, False, True, True, True])
    params = dataclasses.replace(smoke_params, arms={
        **smoke_params.arms, "oracle": dataclasses.replace(smoke_params.arms["oracle"], parent_in_base=True)})
    base, reset = build_method("oracle", engine, params, torch.Generator()).collect([PROBLEM], step=0).groups
    assert base.label == "base" and len(base.chains) == 5  # the failed parent too: nothing is discarded
    assert base.rewards_G.tolist() == [1.0, 0.0, 1.0, 1.0, 1.0] and base.adv_G[1] < 0
    assert reset.label == "reset" and len(reset.chains) == 4


def test_two_parents_layout_has_no_base_group(scripted, tokenizer):
    engine = scripted([False, True, True, False])
    (b,) = draw_fresh(engine, [PROBLEM], "2x4", 12, 8, SETTINGS, None)
    assert len(b.drawn) == 4 and len(b.parents) == 2 and b.base == []


def test_draws_never_exceed_the_one_at_a_time_rule(scripted, tokenizer):
    engine = scripted([True] * 3 + [False] + [True] * 20)
    (b,) = draw_fresh(engine, [PROBLEM], "1x4", 12, 8, SETTINGS, None)
    assert len(b.drawn) == 5  # sequentially: draws 1-3 base, 4 parent, 5 base -> done


def test_prefix_is_the_parent_thoughts_before_the_reset_step(scripted, tokenizer):
    engine = scripted([False] + [True] * 4)
    buffers = draw_fresh(engine, [PROBLEM], "1x4", 12, 8, SETTINGS, None)
    make_resets(buffers, [(3, None, False)])
    (r,) = buffers[0].resets
    assert r.n_thoughts == 4 and r.step == 3 and r.oracle_step == 2
    assert tokenizer.decode(r.prefix_ids) == THOUGHT_END.join(wrong_chain().split(THOUGHT_END)[:2]) + THOUGHT_END
    assert r.deviation == 1 and not r.clean_prefix
    make_resets(buffers, [(1, None, False)])
    assert buffers[0].resets[-1].prefix_ids == []  # e = 1: the reset group is a fresh group


def test_clamp_step_keeps_steps_in_range():
    assert clamp_step(None, 4) == 1 and clamp_step(0, 4) == 1 and clamp_step(9, 4) == 4 and clamp_step(3, 0) == 1


@settings(max_examples=50, deadline=None)
@given(n_thoughts=st.integers(0, 12), seed=st.integers(0, 1000))
def test_random_selector_stays_in_range(tokenizer, n_thoughts, seed):
    delimiter = tokenizer.convert_tokens_to_ids(THOUGHT_END)
    parent = Chain([], [], [7, delimiter] * n_thoughts, thought_ends=[2 * (i + 1) for i in range(n_thoughts)])
    selector = RandomSelector(torch.Generator().manual_seed(seed))
    ((step, call, fell_back),) = selector.select([(PROBLEM, parent)])
    assert 1 <= step <= max(n_thoughts, 1) and call is None and not fell_back


@pytest.mark.parametrize("at", [1, 2, 3, 4])
def test_oracle_selector_finds_the_known_first_error(at):
    text, first = corrupt_chain(PROBLEM, random.Random(at), at=at)
    ((step, _, _),) = OracleSelector().select([(PROBLEM, Chain([], [], [], text=text))])
    assert step == first == at == check_chain(PROBLEM, text).first_error


def test_thought_spans_come_from_delimiter_tokens(scripted, tokenizer):
    ((chain,),) = scripted([True]).generate([([1], [])], 1, SETTINGS)
    assert chain.response_ids == tokenizer.encode(PROBLEM.solution, add_special_tokens=False)
    assert len(chain.thought_ends) == 4
    assert thought_texts(tokenizer, chain) == PROBLEM.solution.split(THOUGHT_END)[:4]


def test_token_accounting_counts_every_sampled_token(scripted, tokenizer, smoke_params):
    engine = scripted([True, False, True, True, True] + [True] * 14)
    collected = build_method("oracle", engine, smoke_params, torch.Generator()).collect([PROBLEM, PROBLEM], step=0)
    solution = len(tokenizer.encode(PROBLEM.solution, add_special_tokens=False))
    failed = len(tokenizer.encode(wrong_chain(), add_special_tokens=False))
    base, reset, fallback = collected.groups
    assert [g.label for g in collected.groups] == ["base", "reset", "fresh"]
    prefix = len(reset.chains[0].prefix_ids)
    assert tokenizer.decode(reset.chains[0].prefix_ids) == wrong_chain().split(THOUGHT_END)[0] + THOUGHT_END
    # 4 base + 1 parent for the first prompt; 12 correct draws (2 kept) and 2 new for the second
    assert collected.tokens == {"fresh": 18 * solution, "parent": failed, "suffix": 4 * (solution - prefix),
                                "localization": 0, "prefix_reused": 4 * prefix}
    assert reset.n_masked == [prefix] * 4 and base.n_masked == [0] * 4 and len(fallback.chains) == 4
    assert collected.metrics["reset/rate"] == 0.5 and collected.metrics["loc/exact_match"] == 1.0
    assert collected.metrics["reset/draws_per_prompt"] == (5 + 14) / 2
    assert [r["reset_step"] for r in collected.records] == [2]


def test_the_arm_built_from_its_config_owns_grouping_and_loss(smoke_params):
    # Two sequences: 3 and 1 trained tokens, log p = log 0.5 everywhere, ratio 1 (old = new).
    logp_BT = torch.full((2, 3), math.log(0.5))
    mask_BT = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    adv_BT = torch.tensor([[1.0] * 3, [-1.0] * 3])
    grpo, srpo, kl = (build_method(name, None, smoke_params, torch.Generator())
                      for name in ("grpo", "srpo", "srpo_clip_kl"))
    assert isinstance(grpo, GRPO) and isinstance(srpo, Reset) and isinstance(srpo.selector, SelfSelector)
    # GRPO: clipped surrogate, token mean: -(3 * 1 + 1 * -1) / 4 = -0.5, with its clip statistics.
    loss, stats = grpo.loss(logp_BT, logp_BT, adv_BT, mask_BT)
    assert loss.item() == pytest.approx(-0.5) and stats == {"clip_frac": 0.0}
    # SRPO (the paper's reset loss): -(1/B) sum_i A_i mean_t log p = -(log 0.5 - log 0.5) / 2 = 0, no ratio.
    loss, stats = srpo.loss(logp_BT, logp_BT, adv_BT, mask_BT)
    assert loss.item() == pytest.approx(0.0) and stats == {}
    # A micro-batch's share follows what the loss averages: tokens for GRPO, sequences for SRPO.
    assert grpo.micro_batch_share(mask_BT[:1], mask_BT) == pytest.approx(0.75)
    assert srpo.micro_batch_share(mask_BT[:1], mask_BT) == pytest.approx(0.5)
    assert kl.uses_reference and not grpo.uses_reference and not srpo.uses_reference
    _, stats = kl.loss(logp_BT, logp_BT, adv_BT, mask_BT, ref_logp_BT=logp_BT)
    assert stats["kl"] == pytest.approx(0.0)  # the policy is its own reference here


def test_the_positive_control_resets_into_the_solution_and_counts_only_what_it_generates(scripted, tokenizer,
                                                                                       smoke_params):
    engine = scripted([False, False, True, True])  # the base group's draws; suffixes follow the solution
    collected = build_method("demo", engine, smoke_params, torch.Generator().manual_seed(0)).collect([PROBLEM], step=0)
    base, reset = collected.groups
    assert [g.label for g in collected.groups] == ["base", "reset"] and len(base.chains) == 4
    # At the start of the run the window is the last thought: the prefix is thoughts 1-3 of the solution.
    solution_ids = tokenizer.encode(PROBLEM.solution, add_special_tokens=False)
    prefix = reset.chains[0].prefix_ids
    assert tokenizer.decode(prefix) == THOUGHT_END.join(PROBLEM.solution.split(THOUGHT_END)[:3]) + THOUGHT_END
    assert solution_ids[:len(prefix)] == prefix and reset.n_masked == [len(prefix)] * 4
    failed = len(tokenizer.encode(wrong_chain(), add_special_tokens=False))
    assert collected.tokens == {"fresh": 2 * failed + 2 * len(solution_ids), "parent": 0,
                                "suffix": 4 * (len(solution_ids) - len(prefix)), "localization": 0,
                                "prefix_reused": 4 * len(prefix)}
    assert collected.metrics["reset/rate"] == 1.0 and collected.records[0]["reset_step"] == 4


def test_the_demonstration_window_widens_to_the_whole_chain(tokenizer):
    generator = torch.Generator().manual_seed(0)

    def steps(progress):
        buffers = [PromptBuffer(PROBLEM) for _ in range(200)]
        demonstration_resets(tokenizer, buffers, progress, generator)
        return {b.resets[0].step for b in buffers}

    assert steps(0.0) == {4}
    assert steps(0.5) == {3, 4}  # a window of 1 + int(0.5 * 3) = 2 thoughts
    assert steps(1.0) == {1, 2, 3, 4}
