"""What every credit-assignment method shares: the training groups it hands the trainer, the loss
it names, and what the analysis reads from it (its role in the claims, its label, its claims).

A method turns a batch of prompts into `TrainGroup`s: chains with their outcome rewards and an
advantage for every response token (`token_advantages`). Sequence-level methods (GRPO, the resets)
give each chain one number; per-token methods (VinePPO, the process rewards) give each thought its
own. The trainer packs them into `adv_BT` and never asks which method made them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

from resetrl.core.params import ArmConfig, RLConfig
from resetrl.rl.distributed import weighted_mean
from resetrl.rl.losses import loss_units, micro_batch_share, policy_loss
from resetrl.rollout.engine import Chain, RolloutEngine, SamplingSettings, prompt_ids
from resetrl.tasks.scoring import group_rewards
from resetrl.tasks.verify import VerifierPool

# Token counts that were fed, not generated: reported, never charged as compute.
REUSED_KINDS = ("prefix_reused",)


@dataclass
class TrainGroup:
    """Chains normalised together. `label` names the group in the per-group metrics
    (train/adv_mean_LABEL, ...)."""

    label: str
    chains: list[Chain]
    rewards_G: torch.Tensor
    n_masked: list[int]  # leading response tokens not trained on (a reused prefix)
    adv_G: torch.Tensor = field(default=None)  # each chain's advantage (per-token methods: its mean over tokens)
    adv_T: list[torch.Tensor] | None = None  # per response token, where credit varies within a chain

    @classmethod
    def per_token(cls, label: str, chains: list[Chain], rewards_G: torch.Tensor, adv_T: list[torch.Tensor]
                  ) -> TrainGroup:
        """A group trained on every response token, with an advantage per token (adv_G: each chain's mean)."""
        adv_G = torch.tensor([float(a.mean()) if a.numel() else 0.0 for a in adv_T])
        return cls(label, chains, rewards_G, [0] * len(chains), adv_G, adv_T)

    def token_advantages(self) -> list[torch.Tensor]:
        """Each chain's advantage at every response token."""
        if self.adv_T is not None:
            return self.adv_T
        return [torch.full((len(c.response_ids),), float(a)) for c, a in zip(self.chains, self.adv_G)]


@dataclass
class Collected:
    groups: list[TrainGroup]
    tokens: dict[str, int]  # tokens by kind: generated ones, plus REUSED_KINDS
    metrics: dict[str, float]
    records: list[dict]  # one per reset, for the analyses (resets.jsonl)

    @property
    def generated(self) -> int:
        return sum(v for k, v in self.tokens.items() if k not in REUSED_KINDS)

    @classmethod
    def merged(cls, parts: list[Collected]) -> Collected:
        """Several ranks' collections as one step's: groups and records in rank order, token counts summed, the
        method's metrics averaged with each rank weighted by its groups."""
        tokens: dict[str, int] = {}
        for part in parts:
            for kind, n in part.tokens.items():
                tokens[kind] = tokens.get(kind, 0) + n
        return cls([g for p in parts for g in p.groups], tokens,
                   weighted_mean([p.metrics for p in parts], [len(p.groups) for p in parts]),
                   [r for p in parts for r in p.records])


@dataclass(frozen=True)
class Comparison:
    """A claim the analysis tests: the arm playing role `better` against the one playing `baseline`."""

    id: str
    better: str
    baseline: str
    kind: str  # greater | equal
    claim: str


@dataclass(frozen=True)
class Context:
    """What a method samples and scores with: the run's engine, generator, verifier and settings."""

    engine: RolloutEngine
    generator: torch.Generator
    verifier: VerifierPool | None
    rl: RLConfig
    sampling: SamplingSettings


class Method:
    """One arm's method: collect training groups for a batch of prompts; the loss is the arm's config."""

    #: Claims this family adds to the results page (roles from `role`; "grpo" is the study's first arm).
    comparisons: ClassVar[tuple[Comparison, ...]] = ()
    #: Group labels whose gradient-signal ratio is logged (train/grad_signal_ratio), or None.
    signal_ratio: ClassVar[tuple[str, str] | None] = None
    #: Whether its runs record resets (resets.jsonl), which the reset analyses and figures read.
    records_resets: ClassVar[bool] = False

    def __init__(self, arm: ArmConfig, ctx: Context):
        self.arm, self.ctx = arm, ctx

    @staticmethod
    def role(arm: ArmConfig) -> str | None:
        """The role an arm of this family plays in the claims (None: none)."""
        return None

    @staticmethod
    def label(name: str, arm: ArmConfig) -> str:
        """How figures name the arm."""
        return name

    @property
    def uses_reference(self) -> bool:
        """Whether the loss needs the warm start's log-probs (a KL penalty towards it)."""
        return self.arm.kl_coef > 0

    def collect(self, problems: list, step: int) -> Collected:
        raise NotImplementedError

    def loss(self, logp_BT: torch.Tensor, old_logp_BT: torch.Tensor, adv_BT: torch.Tensor, mask_BT: torch.Tensor,
             ref_logp_BT: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        rl = self.ctx.rl
        return policy_loss(self.arm.loss, logp_BT, old_logp_BT, adv_BT, mask_BT, clip_eps=rl.clip_eps,
                           dual_clip=rl.dual_clip, kl_coef=self.arm.kl_coef, ref_logp_BT=ref_logp_BT)

    def micro_batch_share(self, micro_mask_BT: torch.Tensor, mask_BT: torch.Tensor) -> float:
        """Weight of a micro-batch's loss in its minibatch's (tokens or sequences, as the loss averages)."""
        return micro_batch_share(self.arm.loss, micro_mask_BT, mask_BT)

    def loss_units(self, mask_BT: torch.Tensor) -> float:
        """What the loss averages over in a batch: its trained tokens or its sequences."""
        return loss_units(self.arm.loss, mask_BT)


def sample_groups(ctx: Context, problems: list) -> tuple[list[list[Chain]], list[list[float]]]:
    """`rl.group_size` fresh chains per prompt and their outcome rewards."""
    requests = [(prompt_ids(ctx.engine.tokenizer, p), []) for p in problems]
    groups = ctx.engine.generate(requests, ctx.rl.group_size, ctx.sampling, ctx.generator)
    return groups, group_rewards(problems, groups, ctx.verifier)


def mean_or_none(values) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def segment_advantages(chain: Chain, per_segment: list[float]) -> torch.Tensor:
    """Per-token advantages of a chain from one value per thought: thought i spans its token range;
    tokens after the last complete thought (the answer's end, an overflow) join the last segment."""
    ends = chain.thought_ends
    n = len(chain.response_ids)
    bounds = [0, *ends[:len(per_segment) - 1], n]
    adv_T = torch.zeros(n)
    for value, (a, b) in zip(per_segment, zip(bounds, bounds[1:])):
        adv_T[a:b] = value
    return adv_T
