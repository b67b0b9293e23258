"""GRPO: `rl.group_size` independent chains per prompt, one outcome advantage per chain (the group
z-score with GRPO's sample std), every token of a chain credited alike."""

from __future__ import annotations

import torch

from resetrl.core.params import ArmConfig
from resetrl.rl.losses import grpo_advantages_G
from resetrl.rl.methods.base import Collected, Comparison, Method, TrainGroup, sample_groups


class GRPO(Method):
    # grpo_pg: GRPO's grouping with the reset arms' loss, the matched-loss control.
    comparisons = (
        Comparison("grpo_pg_vs_grpo", "grpo_pg", "grpo", "equal",
                   "Control: the reset loss alone (no resets) leaves GRPO unchanged"),
        Comparison("oracle_vs_grpo_pg", "oracle", "grpo_pg", "greater",
                   "Control: the oracle reset beats GRPO trained with the same loss"),
        Comparison("srpo_vs_grpo_pg", "srpo", "grpo_pg", "greater",
                   "Control: SRPO beats GRPO trained with the same loss"),
    )

    @staticmethod
    def role(arm: ArmConfig) -> str | None:
        return "grpo_pg" if arm.loss == "pg_seq_mean" else None

    def collect(self, problems: list, step: int) -> Collected:
        ctx = self.ctx
        groups, scores = sample_groups(ctx, problems)
        out = []
        for g, s in zip(groups, scores):
            rewards_G = torch.tensor(s)
            out.append(TrainGroup("fresh", g, rewards_G, [0] * len(g), grpo_advantages_G(rewards_G)))
        fresh = sum(c.n_generated for g in groups for c in g)
        return Collected(out, {"fresh": fresh, "parent": 0, "suffix": 0, "localization": 0, "prefix_reused": 0},
                         {}, [])
