"""VinePPO (Kazemnejad et al. 2024): Monte-Carlo values at every thought boundary. Each prompt gets
`rl.group_size` chains; from the state after each complete thought j (but the last) of each chain,
`mc_rollouts` continuations are sampled, and V(s_j) is the mean of their outcomes. V(s_0) is the
mean outcome of the prompt's other chains (leave-one-out: no extra sampling, unbiased), the value
after the last thought is the chain's own outcome. Thought j's tokens get V(s_j) - V(s_{j-1}), raw
(not normalised, as VinePPO); the rollouts are compute, never trained on."""

from __future__ import annotations

import torch

from resetrl.core.params import ArmConfig
from resetrl.rl.methods.base import Collected, Comparison, Method, TrainGroup, sample_groups, segment_advantages
from resetrl.tasks.scoring import group_rewards


def leave_one_out_G(rewards_G: torch.Tensor) -> torch.Tensor:
    """Each chain's baseline: the mean reward of the other chains of its group (0 for a lone chain)."""
    n = rewards_G.numel()
    if n < 2:
        return torch.zeros_like(rewards_G)
    return (rewards_G.sum() - rewards_G) / (n - 1)


def thought_values(v0: float, boundary_values: list[float], reward: float) -> list[float]:
    """Per-segment advantages V(s_j) - V(s_{j-1}) from V(s_0), the values after thoughts 1..m-1 and
    the outcome (the value after the last thought)."""
    values = [v0, *boundary_values, reward]
    return [b - a for a, b in zip(values, values[1:])]


class Vine(Method):
    comparisons = (
        Comparison("vineppo_vs_grpo", "vineppo", "grpo", "greater",
                   "VinePPO (Monte-Carlo values at every thought) beats GRPO"),
    )

    @staticmethod
    def role(arm: ArmConfig) -> str | None:
        return "vineppo"

    def collect(self, problems: list, step: int) -> Collected:
        ctx, k = self.ctx, self.arm.mc_rollouts
        groups, scores = sample_groups(ctx, problems)
        # One request per (chain, boundary after thought j < m): its prefix is the chain up to there.
        boundaries = [(p, c, j) for p, g in zip(problems, groups) for c in g for j in range(1, len(c.thought_ends))]
        mc_requests = [(c.prompt_ids, c.response_ids[:c.thought_ends[j - 1]]) for _, c, j in boundaries]
        rollouts = ctx.engine.generate(mc_requests, k, ctx.sampling, ctx.generator) if mc_requests else []
        mc_scores = group_rewards([p for p, _, _ in boundaries], rollouts, ctx.verifier) if rollouts else []
        values = iter(sum(s) / len(s) for s in mc_scores)
        out = []
        for g, s in zip(groups, scores):
            rewards_G = torch.tensor(s)
            adv_T = []
            for chain, v0, reward in zip(g, leave_one_out_G(rewards_G).tolist(), s):
                boundary_values = [next(values) for _ in range(1, len(chain.thought_ends))]
                adv_T.append(segment_advantages(chain, thought_values(v0, boundary_values, reward)))
            out.append(TrainGroup.per_token("vine", g, rewards_G, adv_T))
        tokens = {"fresh": sum(c.n_generated for g in groups for c in g),
                  "mc": sum(c.n_generated for g in rollouts for c in g),
                  "prefix_reused": sum(len(prefix) * k for _, prefix in mc_requests)}
        metrics = {"vine/boundaries_per_chain": len(boundaries) / max(sum(len(g) for g in groups), 1)}
        if mc_scores:
            metrics["vine/value_mean"] = sum(sum(s) / len(s) for s in mc_scores) / len(mc_scores)
        return Collected(out, tokens, metrics, [])
