"""Resets (RRPO, SRPO, the oracle, the positive control): the paper's reset buffer (`rl.resets`),
one advantage per chain. A base group of fresh chains and each reset's suffixes are normalised
separately (population std: a constant group carries no signal), and the reused prefix is masked out
of the loss (`mask_prefix`). The arms differ only in the selector of the reset step: random (RRPO),
self (SRPO: the policy localizes its own first error), oracle (the step checker's first error), demo
(the positive control: a reset into the task's own correct solution, no failed parent)."""

from __future__ import annotations

import torch

from resetrl.core.params import ArmConfig
from resetrl.rl.losses import group_zscore_G
from resetrl.rl.methods.base import Collected, Comparison, Context, Method, TrainGroup, mean_or_none
from resetrl.rl.resets import (
    LAYOUTS,
    OracleSelector,
    RandomSelector,
    SelfSelector,
    demonstration_resets,
    draw_base,
    draw_fresh,
    make_resets,
    sample_suffixes,
)
from resetrl.rollout.engine import SamplingSettings
from resetrl.tasks.scoring import group_rewards

# The role each selector plays in the claims (in the paper's 1x4 layout, parent not trained).
SELECTOR_ROLES = {"random": "rrpo", "self": "srpo", "oracle": "oracle", "demo": "demo"}


class Reset(Method):
    comparisons = (
        Comparison("oracle_vs_grpo", "oracle", "grpo", "greater",
                   "Resetting at the exact first error beats GRPO (the upper bound of every reset method)"),
        Comparison("demo_vs_grpo", "demo", "grpo", "greater",
                   "Positive control: resetting into the task's own correct solution beats GRPO (the instrument "
                   "can see a credit-assignment gain)"),
        Comparison("oracle_1x8_vs_grpo", "oracle_1x8", "grpo", "greater",
                   "The oracle reset with 8 suffixes per parent (1x8) beats GRPO"),
        Comparison("oracle_parent_vs_grpo", "oracle_parent", "grpo", "greater",
                   "The oracle reset training its failed parent in the base group beats GRPO"),
        Comparison("srpo_vs_grpo", "srpo", "grpo", "greater", "SRPO beats GRPO"),
        Comparison("srpo_vs_rrpo", "srpo", "rrpo", "greater", "SRPO beats RRPO (self-localized over random resets)"),
        Comparison("rrpo_vs_grpo", "rrpo", "grpo", "equal", "RRPO is about equal to GRPO"),
    )
    signal_ratio = ("reset", "base")
    records_resets = True

    @staticmethod
    def role(arm: ArmConfig) -> str | None:
        if arm.selector == "oracle" and arm.layout == "1x8":
            return "oracle_1x8"
        if arm.selector == "oracle" and arm.parent_in_base and arm.layout == "1x4":
            return "oracle_parent"
        return SELECTOR_ROLES[arm.selector] if arm.layout == "1x4" and not arm.parent_in_base else None

    @staticmethod
    def label(name: str, arm: ArmConfig) -> str:
        """The selector where the name does not already say it."""
        return name if name == SELECTOR_ROLES[arm.selector] else f"{name} ({arm.selector})"

    def __init__(self, arm: ArmConfig, ctx: Context):
        super().__init__(arm, ctx)
        loc_settings = SamplingSettings.for_free_text(arm.localization_temperature, ctx.sampling.top_p,
                                                      ctx.rl.localization_max_tokens, ctx.sampling.batch_size)
        self.selector = {
            "random": lambda: RandomSelector(ctx.generator),
            "oracle": OracleSelector,
            "self": lambda: SelfSelector(ctx.engine, loc_settings, ctx.generator),
            "demo": lambda: None,  # no parent to select from
        }[arm.selector]()

    def buffers(self, problems: list, step: int) -> list:
        """Each prompt's fresh draws and resets, before the suffixes are sampled."""
        ctx, arm = self.ctx, self.arm
        _, _, n_base = LAYOUTS[arm.layout]
        if arm.selector == "demo":
            buffers = draw_base(ctx.engine, problems, n_base, ctx.sampling, ctx.generator)
            demonstration_resets(ctx.engine.tokenizer, buffers, step / max(ctx.rl.steps - 1, 1), ctx.generator)
            return buffers
        buffers = draw_fresh(ctx.engine, problems, arm.layout, ctx.rl.max_draws, ctx.rl.group_size, ctx.sampling,
                             ctx.generator, ctx.verifier)
        make_resets(buffers, self.selector.select([(b.problem, p) for b in buffers for p in b.parents]))
        return buffers

    def collect(self, problems: list, step: int) -> Collected:
        ctx, arm = self.ctx, self.arm
        _, n_suffixes, _ = LAYOUTS[arm.layout]
        buffers = self.buffers(problems, step)
        sample_suffixes(ctx.engine, buffers, n_suffixes, ctx.sampling, ctx.generator, ctx.verifier)
        groups: list[TrainGroup] = []
        for b in buffers:
            # parent_in_base (beyond the paper): every fresh draw, parents included, is trained on
            base = b.drawn if arm.parent_in_base and not b.fallback else b.base
            if base:
                rewards_G = torch.tensor(group_rewards([b.problem], [base], ctx.verifier)[0])
                groups.append(TrainGroup("fresh" if b.fallback else "base", base, rewards_G, [0] * len(base)))
            for r in b.resets:
                masked = len(r.prefix_ids) if arm.mask_prefix else 0
                groups.append(TrainGroup("reset", r.suffixes, r.suffix_rewards_G, [masked] * len(r.suffixes)))
        for g in groups:  # per-group z-score with population std; no signal in a constant group
            g.adv_G = group_zscore_G(g.rewards_G, unbiased=False, min_std=1e-8)
        resets = [(b, r) for b in buffers for r in b.resets]
        parent_tokens = sum(r.parent.n_generated for _, r in resets if r.parent is not None)
        tokens = {
            "fresh": sum(c.n_generated for b in buffers for c in b.drawn) - parent_tokens,
            "parent": parent_tokens,
            "suffix": sum(c.n_generated for _, r in resets for c in r.suffixes),
            "localization": sum(r.localization.n_generated for _, r in resets if r.localization is not None),
            "prefix_reused": sum(len(r.prefix_ids) * len(r.suffixes) for _, r in resets),
        }
        records = [{"step": step, "problem": b.problem.id, "n_thoughts": r.n_thoughts, "reset_step": r.step,
                    "oracle_step": r.oracle_step, "deviation": r.deviation, "clean_prefix": r.clean_prefix,
                    "loc_fell_back": r.loc_fell_back, "suffix_rewards": r.suffix_rewards_G.tolist()}
                   for b, r in resets]
        return Collected(groups, tokens, reset_metrics(buffers, arm.selector), records)


def reset_metrics(buffers, selector: str) -> dict[str, float]:
    resets = [(b, r) for b in buffers for r in b.resets]
    checked = [(b, r) for b, r in resets if r.oracle_step is not None]  # sources with a step checker
    m = {
        "reset/rate": mean_or_none(not b.fallback for b in buffers),
        "reset/fallback_rate": mean_or_none(b.fallback for b in buffers),
        "reset/draws_per_prompt": mean_or_none(len(b.drawn) for b in buffers),
        "reset/step_mean": mean_or_none(r.step for _, r in resets),
        "reset/step_frac_mean": mean_or_none(r.step / max(r.n_thoughts, 1) for _, r in resets),
        "reset/suffix_correct_rate": mean_or_none(float(r.suffix_rewards_G.mean()) for _, r in resets),
        "reset/suffix_group_pass": mean_or_none(float(r.suffix_rewards_G.max()) for _, r in resets),
        "reset/suffix_tokens_mean": mean_or_none(c.n_generated for _, r in resets for c in r.suffixes),
        "loc/exact_match": mean_or_none(r.deviation == 0 for _, r in checked),
        "loc/deviation_mean": mean_or_none(r.deviation for _, r in checked),
        "loc/clean_prefix_rate": mean_or_none(r.clean_prefix for _, r in checked),
    }
    for name, clean in (("clean", True), ("erroneous", False)):
        subset = [r.suffix_rewards_G for _, r in checked if r.clean_prefix == clean]
        m[f"reset/suffix_correct_rate_{name}"] = mean_or_none(float(s.mean()) for s in subset)
        m[f"reset/suffix_group_pass_{name}"] = mean_or_none(float(s.max()) for s in subset)
    if selector == "self":
        m["loc/fallback_rate"] = mean_or_none(r.loc_fell_back for _, r in resets)
    return {k: float(v) for k, v in m.items() if v is not None}
