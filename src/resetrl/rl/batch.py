"""Training batches: (prompt, response) pairs packed right-padded, with a mask of trained tokens."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from resetrl.rl.losses import token_logprobs_BT


@dataclass(frozen=True)
class PackedBatch:
    """ids_BL = prompt + response tokens; mask_BT (T = L - 1) marks the predicted tokens trained on
    (response tokens after the first `n_masked` of each response); adv_BT holds each response
    token's advantage (0 elsewhere)."""

    ids_BL: torch.Tensor
    attn_BL: torch.Tensor
    mask_BT: torch.Tensor
    adv_BT: torch.Tensor
    sampled_logp_BT: torch.Tensor | None = None  # the engine's raw (T = 1) log-prob of each generated token
    sampled_BT: torch.Tensor | None = None  # 1 where sampled_logp_BT holds a generated token

    def __len__(self) -> int:
        return self.ids_BL.shape[0]

    def micro_batches(self, size: int) -> list[tuple[torch.Tensor, "PackedBatch"]]:
        """(row index, rows at full width) chunks of at most `size` rows (0: one chunk): a large
        model's minibatch is run a few sequences at a time to fit in accelerator memory."""
        chunks = torch.arange(len(self)).split(size) if size else [torch.arange(len(self))]
        return [(i, PackedBatch(*(None if t is None else t[i] for t in (self.ids_BL, self.attn_BL, self.mask_BT,
                                                                     self.adv_BT, self.sampled_logp_BT,
                                                                     self.sampled_BT))))
                for i in chunks]

    def rows(self, index_B: torch.Tensor) -> "PackedBatch":
        """A minibatch, trimmed to its longest row so short minibatches cost less."""
        width = int(self.attn_BL[index_B].sum(-1).max())
        sampled = [None if t is None else t[index_B, :width - 1] for t in (self.sampled_logp_BT, self.sampled_BT)]
        return PackedBatch(self.ids_BL[index_B, :width], self.attn_BL[index_B, :width],
                           self.mask_BT[index_B, :width - 1], self.adv_BT[index_B, :width - 1], *sampled)


def pack_sequences(prompts: list[list[int]], responses: list[list[int]], n_masked: list[int],
                   pad_id: int, sampled_logprobs: list[list[float]] | None = None,
                   advantages: list[torch.Tensor] | None = None) -> PackedBatch:
    """`sampled_logprobs[i]` (optional) holds the engine's log-probs of the generated tail of
    response i (after its reused prefix); `advantages[i]` (optional, else 0) one advantage per token
    of response i."""
    width = max(len(p) + len(r) for p, r in zip(prompts, responses))
    ids_BL = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    attn_BL = torch.zeros((len(prompts), width), dtype=torch.long)
    mask_BT = torch.zeros((len(prompts), width - 1))
    adv_BT = torch.zeros((len(prompts), width - 1))
    sampled_logp_BT, sampled_BT = torch.zeros((len(prompts), width - 1)), torch.zeros((len(prompts), width - 1))
    for i, (p, r, skip) in enumerate(zip(prompts, responses, n_masked)):
        ids_BL[i, :len(p) + len(r)] = torch.tensor(p + r)
        attn_BL[i, :len(p) + len(r)] = 1
        # Logits at position t predict token t + 1: response token j sits at len(p) + j.
        mask_BT[i, len(p) - 1 + skip:len(p) + len(r) - 1] = 1.0
        if advantages is not None:
            adv_BT[i, len(p) - 1:len(p) + len(r) - 1] = advantages[i]
        if sampled_logprobs is not None and sampled_logprobs[i]:
            end = len(p) + len(r) - 1
            sampled_logp_BT[i, end - len(sampled_logprobs[i]):end] = torch.tensor(sampled_logprobs[i])
            sampled_BT[i, end - len(sampled_logprobs[i]):end] = 1.0
    if sampled_logprobs is None:
        return PackedBatch(ids_BL, attn_BL, mask_BT, adv_BT)
    return PackedBatch(ids_BL, attn_BL, mask_BT, adv_BT, sampled_logp_BT, sampled_BT)


def sampling_mismatch(batches: list[PackedBatch], trainer_logps_BT: list[torch.Tensor]) -> dict[str, float]:
    """|engine log-prob - trainer log-prob| (both raw, T = 1) on the same generated tokens: ~1e-6
    for an on-policy engine; larger values mean stale weights, a stale prefix cache or a precision gap."""
    gaps = torch.cat([(logp_BT - b.sampled_logp_BT).abs()[b.sampled_BT.bool()]
                      for b, logp_BT in zip(batches, trainer_logps_BT)])
    if gaps.numel() == 0:
        return {}
    return {"rollout/logprob_mismatch_mean": float(gaps.mean()), "rollout/logprob_mismatch_max": float(gaps.max())}


def policy_logprobs_BT(model, batch: PackedBatch, *temperatures: float,
                       micro_batch: int = 0) -> torch.Tensor | list[torch.Tensor]:
    """Log-probability of every next token under the policy at a temperature (1 if none given);
    several temperatures share one forward pass and give a list. `micro_batch` rows per forward
    pass bounds the [rows, length, vocab] logits (use it without gradients: a backward pass would
    keep every chunk's activations anyway)."""
    # The model may sit on a GPU; log-probs come back to the CPU (fp32), where masks and advantages live.
    device = next(model.parameters()).device
    temperatures = temperatures or (1.0,)
    parts = []
    for _, chunk in batch.micro_batches(micro_batch):
        ids_BL = chunk.ids_BL.to(device)
        logits_BLV = model(input_ids=ids_BL, attention_mask=chunk.attn_BL.to(device)).logits
        parts.append([token_logprobs_BT(logits_BLV[:, :-1], ids_BL[:, 1:], t).float().cpu() for t in temperatures])
    out = [torch.cat(column) for column in zip(*parts)]
    return out if len(out) > 1 else out[0]
