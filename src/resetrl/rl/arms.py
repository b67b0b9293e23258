"""Arms: where the methods differ, in one place. An arm, built from its config (`arms.NAME`), owns
how a batch of prompts becomes training groups, their advantages, and the loss that trains on them:

- GRPO (`selector: none`) samples `rl.group_size` independent chains per prompt; advantages are the
  group z-score (sample std, GRPO's);
- RRPO / SRPO / oracle share the reset buffer (`resets`) and differ only in the reset selector
  (random step, the policy's own localization, the step checker's first error); the positive control
  (`demo`) resets into the task's own correct solution instead of a failed parent. A base group of
  fresh chains and each reset's suffixes are normalised separately (population std: a constant
  group carries no signal), and the reused prefix is masked out of the loss (`mask_prefix`);
- the loss (`pg_seq_mean`, `clip_token_mean`, `clip_seq_mean_token_mean`) and KL penalty are the
  arm's config; the trainer calls `arm.loss` without knowing which."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from resetrl.core.config import ArmConfig
from resetrl.rl.losses import group_zscore_G, grpo_advantages_G, micro_batch_share, policy_loss
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
from resetrl.rollout.engine import Chain, RolloutEngine, SamplingSettings, prompt_ids
from resetrl.tasks.scoring import group_rewards
from resetrl.tasks.verify import VerifierPool

TOKEN_KINDS = ("fresh", "parent", "suffix", "localization")


@dataclass
class TrainGroup:
    """Chains normalised together. kind: fresh (GRPO, or a reset arm's fallback), base, reset."""

    kind: str
    chains: list[Chain]
    rewards_G: torch.Tensor
    n_masked: list[int]  # leading response tokens not trained on (the reused prefix)
    adv_G: torch.Tensor = field(default=None)


@dataclass
class Collected:
    groups: list[TrainGroup]
    tokens: dict[str, int]  # generated tokens by kind, plus reused prefix tokens
    metrics: dict[str, float]
    records: list[dict]  # one per reset, for the analyses (resets.jsonl)


class Arm:
    """What every arm shares: its config and the loss it names. Subclasses collect training groups."""

    def __init__(self, config: ArmConfig, params):
        self.config, self.clip_eps, self.dual_clip = config, params.rl.clip_eps, params.rl.dual_clip

    @property
    def uses_reference(self) -> bool:
        """Whether the loss needs the warm start's log-probs (a KL penalty towards it)."""
        return self.config.kl_coef > 0

    def collect(self, problems: list, step: int) -> Collected:
        raise NotImplementedError

    def loss(self, logp_BT: torch.Tensor, old_logp_BT: torch.Tensor, adv_B: torch.Tensor, mask_BT: torch.Tensor,
             ref_logp_BT: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        return policy_loss(self.config.loss, logp_BT, old_logp_BT, adv_B, mask_BT, clip_eps=self.clip_eps,
                           dual_clip=self.dual_clip, kl_coef=self.config.kl_coef, ref_logp_BT=ref_logp_BT)

    def micro_batch_share(self, micro_mask_BT: torch.Tensor, mask_BT: torch.Tensor) -> float:
        """Weight of a micro-batch's loss in its minibatch's (tokens or sequences, as the loss averages)."""
        return micro_batch_share(self.config.loss, micro_mask_BT, mask_BT)


class GRPOArm(Arm):
    def __init__(self, engine: RolloutEngine, params, config: ArmConfig, generator: torch.Generator,
                 verifier: VerifierPool | None = None):
        super().__init__(config, params)
        self.engine, self.generator, self.verifier = engine, generator, verifier
        self.group_size = params.rl.group_size
        self.sampling = SamplingSettings.from_config(params.rollout)

    def collect(self, problems: list, step: int) -> Collected:
        requests = [(prompt_ids(self.engine.tokenizer, p), []) for p in problems]
        groups = self.engine.generate(requests, self.group_size, self.sampling, self.generator)
        scores = group_rewards(problems, groups, self.verifier)
        out = [TrainGroup("fresh", g, torch.tensor(s), [0] * len(g)) for g, s in zip(groups, scores)]
        for g in out:
            g.adv_G = grpo_advantages_G(g.rewards_G)
        fresh = sum(c.n_generated for g in groups for c in g)
        return Collected(out, {"fresh": fresh, "parent": 0, "suffix": 0, "localization": 0, "prefix_reused": 0},
                         {}, [])


class ResetArm(Arm):
    def __init__(self, engine: RolloutEngine, params, arm: ArmConfig, generator: torch.Generator,
                 verifier: VerifierPool | None = None):
        super().__init__(arm, params)
        self.engine, self.generator, self.arm, self.verifier = engine, generator, arm, verifier
        self.max_draws, self.group_size, self.steps = params.rl.max_draws, params.rl.group_size, params.rl.steps
        self.sampling = SamplingSettings.from_config(params.rollout)
        loc_settings = SamplingSettings.for_free_text(arm.localization_temperature, params.rollout.top_p,
                                                      params.rl.localization_max_tokens, params.rollout.batch_size)
        self.selector = {
            "random": lambda: RandomSelector(generator),
            "oracle": OracleSelector,
            "self": lambda: SelfSelector(engine, loc_settings, generator),
            "demo": lambda: None,  # no parent to select from
        }[arm.selector]()

    def buffers(self, problems: list, step: int) -> list:
        """Each prompt's fresh draws and resets, before the suffixes are sampled."""
        _, _, n_base = LAYOUTS[self.arm.layout]
        if self.arm.selector == "demo":
            buffers = draw_base(self.engine, problems, n_base, self.sampling, self.generator)
            demonstration_resets(self.engine.tokenizer, buffers, step / max(self.steps - 1, 1), self.generator)
            return buffers
        buffers = draw_fresh(self.engine, problems, self.arm.layout, self.max_draws, self.group_size, self.sampling,
                             self.generator, self.verifier)
        make_resets(buffers, self.selector.select([(b.problem, p) for b in buffers for p in b.parents]))
        return buffers

    def collect(self, problems: list, step: int) -> Collected:
        _, n_suffixes, _ = LAYOUTS[self.arm.layout]
        buffers = self.buffers(problems, step)
        sample_suffixes(self.engine, buffers, n_suffixes, self.sampling, self.generator, self.verifier)
        groups: list[TrainGroup] = []
        for b in buffers:
            # parent_in_base (beyond the paper): every fresh draw, parents included, is trained on
            base = b.drawn if self.arm.parent_in_base and not b.fallback else b.base
            if base:
                rewards_G = torch.tensor(group_rewards([b.problem], [base], self.verifier)[0])
                groups.append(TrainGroup("fresh" if b.fallback else "base", base, rewards_G, [0] * len(base)))
            for r in b.resets:
                masked = len(r.prefix_ids) if self.arm.mask_prefix else 0
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
        return Collected(groups, tokens, reset_metrics(buffers, self.arm.selector), records)


def _mean(values) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def reset_metrics(buffers, selector: str) -> dict[str, float]:
    resets = [(b, r) for b in buffers for r in b.resets]
    checked = [(b, r) for b, r in resets if r.oracle_step is not None]  # sources with a step checker
    m = {
        "reset/rate": _mean(not b.fallback for b in buffers),
        "reset/fallback_rate": _mean(b.fallback for b in buffers),
        "reset/draws_per_prompt": _mean(len(b.drawn) for b in buffers),
        "reset/step_mean": _mean(r.step for _, r in resets),
        "reset/step_frac_mean": _mean(r.step / max(r.n_thoughts, 1) for _, r in resets),
        "reset/suffix_correct_rate": _mean(float(r.suffix_rewards_G.mean()) for _, r in resets),
        "reset/suffix_group_pass": _mean(float(r.suffix_rewards_G.max()) for _, r in resets),
        "reset/suffix_tokens_mean": _mean(c.n_generated for _, r in resets for c in r.suffixes),
        "loc/exact_match": _mean(r.deviation == 0 for _, r in checked),
        "loc/deviation_mean": _mean(r.deviation for _, r in checked),
        "loc/clean_prefix_rate": _mean(r.clean_prefix for _, r in checked),
    }
    for name, clean in (("clean", True), ("erroneous", False)):
        subset = [r.suffix_rewards_G for _, r in checked if r.clean_prefix == clean]
        m[f"reset/suffix_correct_rate_{name}"] = _mean(float(s.mean()) for s in subset)
        m[f"reset/suffix_group_pass_{name}"] = _mean(float(s.max()) for s in subset)
    if selector == "self":
        m["loc/fallback_rate"] = _mean(r.loc_fell_back for _, r in resets)
    return {k: float(v) for k, v in m.items() if v is not None}


def build_arm(method: str, engine: RolloutEngine, params, generator: torch.Generator,
              verifier: VerifierPool | None = None) -> Arm:
    config = params.arms[method]
    if config.selector == "none":
        return GRPOArm(engine, params, config, generator, verifier)
    return ResetArm(engine, params, config, generator, verifier)
