"""Sampling chains of thoughts from the policy, with the paper's stop rules and token accounting.

A request is (prompt ids, prefix ids): the prefix holds reused thoughts of a parent chain (empty for
a fresh chain) and is fed, not generated. Thought and token budgets include the prefix.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import DynamicCache

from resetrl.tokenizer import thought_end_id

BOXED = "\\boxed{"


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float
    top_p: float
    max_thoughts: int
    max_thought_tokens: int
    batch_size: int
    greedy: bool = False
    free_text: bool = False  # an answer, not a chain: stop only at EOS or the token budget

    @property
    def response_budget(self) -> int:
        return self.max_thoughts * self.max_thought_tokens

    @classmethod
    def from_config(cls, rollout, greedy: bool = False) -> "SamplingSettings":
        return cls(rollout.temperature, rollout.top_p, rollout.max_thoughts,
                   rollout.max_thought_tokens, rollout.batch_size, greedy)

    @classmethod
    def for_free_text(cls, temperature: float, top_p: float, max_tokens: int, batch_size: int) -> "SamplingSettings":
        """Settings of a free-text answer (the SRPO localization call); temperature 0 is greedy."""
        return cls(temperature if temperature > 0 else 1.0, top_p, 1, max_tokens, batch_size,
                   greedy=temperature == 0, free_text=True)


@dataclass
class Chain:
    """One sampled chain. response ids = prefix ids + generated ids kept (the overflow is cut)."""

    prompt_ids: list[int]
    prefix_ids: list[int]
    gen_ids: list[int] = field(default_factory=list)
    gen_logprobs: list[float] = field(default_factory=list)
    n_generated: int = 0  # every sampled token, including a cut-back overflowing thought
    finish: str = ""
    text: str = ""  # decoded response (prefix + kept generated tokens)

    @property
    def response_ids(self) -> list[int]:
        return self.prefix_ids + self.gen_ids


def _top_p_filter(logits_BV: torch.Tensor, top_p: float) -> torch.Tensor:
    """Mask the tail outside the smallest set of tokens whose probability reaches top_p."""
    if top_p >= 1.0:
        return logits_BV
    sorted_BV, order_BV = torch.sort(logits_BV, descending=True, dim=-1)
    cum_BV = torch.softmax(sorted_BV, dim=-1).cumsum(dim=-1)
    drop_BV = cum_BV - torch.softmax(sorted_BV, dim=-1) >= top_p  # keeps at least the top token
    sorted_BV = sorted_BV.masked_fill(drop_BV, float("-inf"))
    return torch.full_like(logits_BV, float("-inf")).scatter(-1, order_BV, sorted_BV)


class _StopRules:
    """Per-sequence chain-ending state: thought count, current thought length, budget."""

    def __init__(self, chain: Chain, settings: SamplingSettings, tokenizer, thought_end: int):
        self.chain, self.s, self.tok, self.thought_end = chain, settings, tokenizer, thought_end
        self.thoughts = chain.prefix_ids.count(thought_end)  # thoughts are delimiter tokens, as in resets
        self.thought_start = len(chain.gen_ids)  # index in gen_ids where the open thought starts
        self.response_len = len(chain.prefix_ids)

    def step(self, token: int) -> bool:
        """Record a sampled token; returns True when the chain is finished."""
        c, s = self.chain, self.s
        c.n_generated += 1
        self.response_len += 1
        if token == self.tok.eos_token_id:
            c.finish = "eos"
            return True
        if s.free_text:
            if self.response_len >= s.response_budget:
                c.finish = "length"
            return bool(c.finish)
        if token == self.thought_end:
            self.thoughts += 1
            thought = self.tok.decode(c.gen_ids[self.thought_start:])
            self.thought_start = len(c.gen_ids)
            if BOXED in thought:
                c.finish = "answer"
            elif self.thoughts >= s.max_thoughts:
                c.finish = "max_thoughts"
            elif self.response_len + s.max_thought_tokens > s.response_budget:
                c.finish = "budget"
            return bool(c.finish)
        if len(c.gen_ids) - self.thought_start >= s.max_thought_tokens:
            c.finish = "overflow"  # cut back to the last complete thought
            del c.gen_ids[self.thought_start:], c.gen_logprobs[self.thought_start:]
            return True
        return False


@torch.no_grad()
def sample_chains(
    model,
    tokenizer,
    requests: list[tuple[list[int], list[int]]],
    n: int,
    settings: SamplingSettings,
    generator: torch.Generator | None = None,
) -> list[list[Chain]]:
    """n chains per (prompt ids, prefix ids) request, batched; returns them grouped by request."""
    chains = [Chain(list(p), list(x)) for p, x in requests for _ in range(n)]
    for start in range(0, len(chains), settings.batch_size):
        _sample_batch(model, tokenizer, chains[start:start + settings.batch_size], settings, generator)
    for c in chains:
        c.text = tokenizer.decode(c.response_ids).replace(tokenizer.eos_token, "")
    return [chains[i * n:(i + 1) * n] for i in range(len(requests))]


def _sample_batch(model, tokenizer, chains: list[Chain], s: SamplingSettings, generator) -> None:
    thought_end = thought_end_id(tokenizer)
    rules = [_StopRules(c, s, tokenizer, thought_end) for c in chains]
    contexts = [c.prompt_ids + c.prefix_ids for c in chains]
    width = max(len(x) for x in contexts)
    ids_BL = torch.tensor([[tokenizer.pad_token_id] * (width - len(x)) + x for x in contexts])
    mask_BL = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in contexts])
    pos_BL = (mask_BL.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache()
    done_B = torch.tensor([len(c.prefix_ids) >= s.response_budget for c in chains])
    max_new = s.response_budget - min(len(c.prefix_ids) for c in chains)
    for _ in range(max_new):
        if bool(done_B.all()):
            break
        out = model(input_ids=ids_BL, attention_mask=mask_BL, position_ids=pos_BL,
                    cache=cache, use_cache=True, logits_to_keep=1)
        logits_BV = out.logits[:, -1, :].float()
        if s.greedy:
            token_B = logits_BV.argmax(-1)
            logp_BV = torch.log_softmax(logits_BV, -1)
        else:
            logp_BV = torch.log_softmax(logits_BV / s.temperature, -1)
            probs_BV = torch.softmax(_top_p_filter(logits_BV / s.temperature, s.top_p), -1)
            token_B = torch.multinomial(probs_BV, 1, generator=generator).squeeze(-1)
        tokens = token_B.tolist()
        token_logps = logp_BV.gather(-1, token_B[:, None]).squeeze(-1).tolist()
        for i in torch.nonzero(~done_B).flatten().tolist():
            chains[i].gen_ids.append(tokens[i])
            chains[i].gen_logprobs.append(token_logps[i])
            if rules[i].step(tokens[i]):
                done_B[i] = True
        # Finished rows keep decoding padding (their outputs are ignored) so shapes stay static.
        ids_BL = token_B.masked_fill(done_B, tokenizer.pad_token_id)[:, None]
        pos_BL = pos_BL[:, -1:] + 1
        mask_BL = torch.cat([mask_BL, torch.ones_like(ids_BL)], dim=-1)
    for c in chains:
        if not c.finish:
            c.finish = "budget"
