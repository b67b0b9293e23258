"""Training batches: (prompt, response) pairs packed right-padded, with a mask of trained tokens."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from resetrl.losses import token_logprobs_BT


@dataclass(frozen=True)
class PackedBatch:
    """ids_BL = prompt + response tokens; mask_BT (T = L - 1) marks the predicted tokens trained on
    (response tokens after the first `n_masked` of each response)."""

    ids_BL: torch.Tensor
    attn_BL: torch.Tensor
    mask_BT: torch.Tensor

    def __len__(self) -> int:
        return self.ids_BL.shape[0]

    def rows(self, index_B: torch.Tensor) -> "PackedBatch":
        """A minibatch, trimmed to its longest row so short minibatches cost less."""
        width = int(self.attn_BL[index_B].sum(-1).max())
        return PackedBatch(self.ids_BL[index_B, :width], self.attn_BL[index_B, :width],
                           self.mask_BT[index_B, :width - 1])


def pack_sequences(prompts: list[list[int]], responses: list[list[int]], n_masked: list[int],
                   pad_id: int) -> PackedBatch:
    width = max(len(p) + len(r) for p, r in zip(prompts, responses))
    ids_BL = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    attn_BL = torch.zeros((len(prompts), width), dtype=torch.long)
    mask_BT = torch.zeros((len(prompts), width - 1))
    for i, (p, r, skip) in enumerate(zip(prompts, responses, n_masked)):
        ids_BL[i, :len(p) + len(r)] = torch.tensor(p + r)
        attn_BL[i, :len(p) + len(r)] = 1
        # Logits at position t predict token t + 1: response token j sits at len(p) + j.
        mask_BT[i, len(p) - 1 + skip:len(p) + len(r) - 1] = 1.0
    return PackedBatch(ids_BL, attn_BL, mask_BT)


def policy_logprobs_BT(model, batch: PackedBatch, temperature: float = 1.0) -> torch.Tensor:
    """Log-probability of every next token under the (temperature-scaled) policy."""
    logits_BLV = model(input_ids=batch.ids_BL, attention_mask=batch.attn_BL).logits
    return token_logprobs_BT(logits_BLV[:, :-1], batch.ids_BL[:, 1:], temperature)
