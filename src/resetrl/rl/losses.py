"""Advantages and policy losses as small pure functions. Shape suffixes: B sequences, T tokens,
G members of one group, V vocabulary."""

from __future__ import annotations

import torch

# Log-ratios are clamped before exp (as verl does): fp32 exp overflows above ~88.7, and an inf on a
# masked token still turns the gradient into NaN (inf * 0).
LOG_RATIO_CLAMP = 20.0


def group_zscore_G(rewards_G: torch.Tensor, *, unbiased: bool, eps: float = 0.0,
                   min_std: float = 0.0) -> torch.Tensor:
    """(r - mean) / (std + eps) over one group; zero when std <= min_std (no signal in the group).

    GRPO (paper): unbiased std, eps 1e-6. Reset groups (RRPO/SRPO): population std, zero below 1e-8.
    """
    if rewards_G.numel() < 2:
        return torch.zeros_like(rewards_G)
    std = rewards_G.std(unbiased=unbiased)
    if std <= min_std:
        return torch.zeros_like(rewards_G)
    return (rewards_G - rewards_G.mean()) / (std + eps)


def grpo_advantages_G(rewards_G: torch.Tensor) -> torch.Tensor:
    return group_zscore_G(rewards_G, unbiased=True, eps=1e-6)


def token_logprobs_BT(logits_BTV: torch.Tensor, targets_BT: torch.Tensor,
                      temperature: float) -> torch.Tensor:
    """Log-probability of each target under the temperature-scaled policy (the one sampled from)."""
    logp_BTV = torch.log_softmax(logits_BTV.float() / temperature, dim=-1)
    return logp_BTV.gather(-1, targets_BT.unsqueeze(-1)).squeeze(-1)


def masked_mean(x_BT: torch.Tensor, mask_BT: torch.Tensor) -> torch.Tensor:
    """Token-mean over the masked tokens of the whole batch."""
    return (x_BT * mask_BT).sum() / mask_BT.sum().clamp(min=1)


def ppo_clip_loss_BT(logp_BT: torch.Tensor, old_logp_BT: torch.Tensor, adv_BT: torch.Tensor,
                     clip_eps: float, dual_clip: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token PPO clipped surrogate with dual clip for negative advantages, and clipped flags.

    max(-A r, -A clip(r, 1-eps, 1+eps)); for A < 0 the loss is further capped at -A * dual_clip so a
    huge ratio on a bad token cannot dominate the update.
    """
    ratio_BT = torch.exp((logp_BT - old_logp_BT).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP))
    unclipped_BT = -adv_BT * ratio_BT
    clipped_BT = -adv_BT * ratio_BT.clamp(1.0 - clip_eps, 1.0 + clip_eps)
    loss_BT = torch.maximum(unclipped_BT, clipped_BT)
    dual_BT = torch.minimum(loss_BT, -adv_BT * dual_clip)
    loss_BT = torch.where(adv_BT < 0, dual_BT, loss_BT)
    return loss_BT, (clipped_BT > unclipped_BT).float()


def kl_k3_BT(logp_BT: torch.Tensor, ref_logp_BT: torch.Tensor) -> torch.Tensor:
    """Unbiased, non-negative per-token estimate of KL(policy || reference) (Schulman's k3)."""
    log_ratio_BT = (ref_logp_BT - logp_BT).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
    return torch.exp(log_ratio_BT) - log_ratio_BT - 1.0


def seq_mean_B(x_BT: torch.Tensor, mask_BT: torch.Tensor) -> torch.Tensor:
    """Per-sequence mean over its masked tokens."""
    return (x_BT * mask_BT).sum(-1) / mask_BT.sum(-1).clamp(min=1)


def seq_weighted_mean_B(w_BT: torch.Tensor, x_BT: torch.Tensor, mask_BT: torch.Tensor) -> torch.Tensor:
    """Per-sequence mean of w * x over its masked tokens, computed as w_b * mean_t x + mean_t (w - w_b) x
    with w_b the weight at the sequence's first masked token: a sequence-level weight (a constant row)
    then computes exactly as w_b * mean_t x, bit for bit, forward and backward."""
    first_B1 = w_BT.gather(1, mask_BT.argmax(-1, keepdim=True))
    return first_B1[:, 0] * seq_mean_B(x_BT, mask_BT) + seq_mean_B((w_BT - first_B1) * x_BT, mask_BT)


def seq_mean_token_mean(x_BT: torch.Tensor, mask_BT: torch.Tensor) -> torch.Tensor:
    """Mean over sequences of each sequence's token mean: every sequence weighs the same."""
    return seq_mean_B(x_BT, mask_BT).mean()


# Policy losses selectable per arm. "pg_seq_mean" is the paper's RRPO/SRPO loss:
# L = -(1/B) sum_i mean_t A_it log p(y_it), no ratio, no clipping (A_it = A_i for a sequence-level method).
LOSS_AGGREGATION = {
    "clip_token_mean": masked_mean,
    "clip_seq_mean_token_mean": seq_mean_token_mean,
    "pg_seq_mean": seq_mean_token_mean,
}


def policy_loss(kind: str, logp_BT, old_logp_BT, adv_BT, mask_BT, *, clip_eps: float, dual_clip: float,
                kl_coef: float = 0.0, ref_logp_BT=None) -> tuple[torch.Tensor, dict[str, float]]:
    """One minibatch's loss for the arm's loss kind (+ optional k3 KL, aggregated the same way)."""
    aggregate = LOSS_AGGREGATION[kind]
    stats: dict[str, float] = {}
    if kind == "pg_seq_mean":
        loss = -seq_weighted_mean_B(adv_BT, logp_BT, mask_BT).mean()
    else:
        pg_BT, clipped_BT = ppo_clip_loss_BT(logp_BT, old_logp_BT, adv_BT, clip_eps, dual_clip)
        loss = aggregate(pg_BT, mask_BT)
        stats["clip_frac"] = float(masked_mean(clipped_BT, mask_BT))
    if kl_coef > 0.0:
        kl = aggregate(kl_k3_BT(logp_BT, ref_logp_BT), mask_BT)
        loss = loss + kl_coef * kl
        stats["kl"] = kl.item()
    return loss, stats


def micro_batch_share(kind: str, micro_mask_BT: torch.Tensor, mask_BT: torch.Tensor) -> float:
    """Weight of a micro-batch's loss so that the weighted micro-batch losses sum to the minibatch's:
    its share of the tokens for a token mean, of the sequences for a sequence mean."""
    if LOSS_AGGREGATION[kind] is masked_mean:
        return float(micro_mask_BT.sum() / mask_BT.sum().clamp(min=1))
    return micro_mask_BT.shape[0] / mask_BT.shape[0]


def loss_units(kind: str, mask_BT: torch.Tensor) -> float:
    """What a loss averages over in a batch: its trained tokens (a token mean) or its sequences."""
    return float(mask_BT.sum()) if LOSS_AGGREGATION[kind] is masked_mean else float(mask_BT.shape[0])


def gradient_signal_B(adv_BT: torch.Tensor, logp_BT: torch.Tensor, mask_BT: torch.Tensor) -> torch.Tensor:
    """Per-sequence gradient signal sum_t (|A_t|/T)(1 - p_t): the paper's measure of how much a
    sequence can move the policy (a confident token, p ~ 1, carries none)."""
    return seq_weighted_mean_B(adv_BT.abs(), 1.0 - logp_BT.exp(), mask_BT)
