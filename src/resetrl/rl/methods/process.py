"""Process rewards from the step checker (procedural task only), on GRPO's groups with no extra
sampling. Every thought of a chain is labelled by the checker: right (1) before the chain's first
error, wrong (0) from it on (a failed chain with no flagged step: its last thought is wrong).

- `credit: step` (process_oracle, the credit-assignment ceiling: a perfect PRM): DeepSeekMath's process
  supervision: the labels are z-scored over all thoughts of the group, and a token's advantage is the
  sum of the normalised rewards of its thought and every later one (return to go).
- `credit: first_error` (first_error_credit, VPPO-style: save the good prefix): each thought's tokens
  get its own z-scored label, so a failed chain's prefix before the first error is credited like a
  correct chain and only the thoughts from the error on are penalised; beside the oracle reset it
  separates knowing *where* the error is from *resampling* there.
"""

from __future__ import annotations

import torch

from resetrl.core.params import ArmConfig
from resetrl.rl.losses import group_zscore_G
from resetrl.rl.methods.base import Collected, Comparison, Method, TrainGroup, sample_groups, segment_advantages
from resetrl.rollout.engine import Chain
from resetrl.tasks.scoring import first_error

ROLES = {"step": "process_oracle", "first_error": "first_error_credit"}


def thought_labels(problem, chain: Chain, reward: float) -> list[float]:
    """1 for each thought before the first error, 0 from it on; one label per segment (at least one)."""
    n = max(len(chain.thought_ends), 1)
    error = first_error(problem, chain.text)
    if error is None:
        return [1.0] * n if reward > 0 else [1.0] * (n - 1) + [0.0]
    error = min(max(error, 1), n)
    return [1.0] * (error - 1) + [0.0] * (n - error + 1)


def return_to_go(values: list[float]) -> list[float]:
    """Each position's sum of itself and every later value."""
    out, total = [], 0.0
    for v in reversed(values):
        total += v
        out.append(total)
    return out[::-1]


def process_advantages(labels: list[list[float]], credit: str) -> list[list[float]]:
    """Per-thought advantages of a group's chains from their thought labels (see the module docstring)."""
    flat = torch.tensor([v for chain in labels for v in chain])
    normalised = iter(group_zscore_G(flat, unbiased=False, min_std=1e-8).tolist())
    per_thought = [[next(normalised) for _ in chain] for chain in labels]
    return [return_to_go(r) for r in per_thought] if credit == "step" else per_thought


class Process(Method):
    comparisons = (
        Comparison("process_oracle_vs_grpo", "process_oracle", "grpo", "greater",
                   "Exact per-step rewards (what a perfect PRM gives) beat GRPO"),
        Comparison("first_error_credit_vs_grpo", "first_error_credit", "grpo", "greater",
                   "Crediting a failed chain's prefix before its first error (no resampling) beats GRPO"),
        Comparison("oracle_vs_first_error_credit", "oracle", "first_error_credit", "greater",
                   "Resampling at the first error adds to knowing where it is (oracle reset over first-error credit)"),
    )

    @staticmethod
    def role(arm: ArmConfig) -> str | None:
        return ROLES[arm.credit]

    def collect(self, problems: list, step: int) -> Collected:
        ctx = self.ctx
        groups, scores = sample_groups(ctx, problems)
        out, wrong = [], []
        for problem, g, s in zip(problems, groups, scores):
            labels = [thought_labels(problem, c, r) for c, r in zip(g, s)]
            adv_T = [segment_advantages(c, a) for c, a in zip(g, process_advantages(labels, self.arm.credit))]
            out.append(TrainGroup.per_token("process", g, torch.tensor(s), adv_T))
            wrong += [1.0 - sum(chain) / len(chain) for chain, r in zip(labels, s) if r == 0]
        metrics = {"process/wrong_thought_share_failed": sum(wrong) / len(wrong)} if wrong else {}
        return Collected(out, {"fresh": sum(c.n_generated for g in groups for c in g)}, metrics, [])
