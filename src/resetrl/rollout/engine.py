"""The rollout-engine interface: sampling chains of thoughts with the paper's stop rules.

A request is (prompt ids, prefix ids): the prefix holds reused thoughts of a parent chain (empty for
a fresh chain) and is fed, not generated. Thought and token budgets include the prefix. Engines
(`rollout.engine` in params.yaml):
- `torch`: the static-KV PyTorch sampler of `resetrl.rollout.torch_engine` (the CPU default; runs on CUDA too);
- `vllm`: vLLM with prefix caching, weights synced after every update (`resetrl.rollout.vllm_engine`).
Every engine returns the same `Chain` records, so the arms never know which one ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from resetrl.core.params import Engine
from resetrl.core.response_format import BOXED
from resetrl.core.schema import choices
from resetrl.core.tokenizer import ThoughtDelimiter

ENGINES = choices(Engine)


def prompt_ids(tokenizer, problem) -> list[int]:
    """The request prompt of a problem: its text, tokenized without special tokens."""
    return tokenizer.encode(problem.prompt, add_special_tokens=False)


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float
    top_p: float
    max_thoughts: int
    max_thought_tokens: int
    batch_size: int
    greedy: bool = False
    free_text: bool = False  # an answer, not a chain: stop only at EOS or the token budget
    ignore_eos: bool = False  # benchmarks: run every sequence to its budget

    @property
    def response_budget(self) -> int:
        return self.max_thoughts * self.max_thought_tokens

    @classmethod
    def from_config(cls, rollout, greedy: bool = False) -> "SamplingSettings":
        return cls(rollout.temperature, rollout.top_p, rollout.max_thoughts,
                   rollout.max_thought_tokens, rollout.batch_size, greedy)

    @classmethod
    def for_free_text(cls, temperature: float, top_p: float, max_tokens: int, batch_size: int,
                      ignore_eos: bool = False) -> "SamplingSettings":
        """Settings of a free-text answer (the SRPO localization call); temperature 0 is greedy."""
        return cls(temperature if temperature > 0 else 1.0, top_p, 1, max_tokens, batch_size,
                   greedy=temperature == 0, free_text=True, ignore_eos=ignore_eos)


@dataclass
class Chain:
    """One sampled chain. response ids = prefix ids + generated ids kept (an overflow is cut)."""

    prompt_ids: list[int]
    prefix_ids: list[int]
    gen_ids: list[int] = field(default_factory=list)
    gen_logprobs: list[float] = field(default_factory=list)  # raw log-prob (T = 1) of each kept token
    n_generated: int = 0  # every sampled token, including a cut-back overflowing thought
    n_prefilled: int = 0  # context tokens the engine prefilled; a group's shared context counts once
    finish: str = ""
    text: str = ""  # decoded response (prefix + kept generated tokens)
    thought_ends: list[int] = field(default_factory=list)  # index in response ids past each delimiter

    @property
    def response_ids(self) -> list[int]:
        return self.prefix_ids + self.gen_ids

    @property
    def n_reused(self) -> int:
        """Prefix tokens fed from the parent instead of generated."""
        return len(self.prefix_ids)


def finish_after_thought(s: SamplingSettings, thought_text: str, n_thoughts: int, response_len: int) -> str:
    """Why a chain ends once a thought is complete ('' when it goes on)."""
    if BOXED in thought_text:
        return "answer"
    if n_thoughts >= s.max_thoughts:
        return "max_thoughts"
    if response_len + s.max_thought_tokens > s.response_budget:
        return "budget"  # the next thought could overflow the response budget
    return ""


# Top-p on a large vocabulary looks at the most likely candidates first (a partial sort); rows whose nucleus they
# do not cover sort the whole vocabulary. Small vocabularies always sort in full.
TOP_P_CANDIDATES = 1024
DRAW_BLOCK = 256


def top_p_filter(logits_BV: torch.Tensor, top_p: float) -> torch.Tensor:
    """Mask the tail outside the smallest set of tokens whose probability reaches top_p."""
    if top_p >= 1.0:
        return logits_BV
    if logits_BV.shape[-1] <= TOP_P_CANDIDATES:
        return _sorted_nucleus(logits_BV, top_p)
    top_BK, order_BK, probs_BK = _candidates(logits_BV)
    covered_B = probs_BK.sum(-1) >= top_p
    if bool(covered_B.all()):
        return _nucleus(logits_BV, top_BK, order_BK, probs_BK, top_p)
    if not bool(covered_B.any()):
        return _sorted_nucleus(logits_BV, top_p)
    out_BV = torch.empty_like(logits_BV)
    out_BV[covered_B] = _nucleus(logits_BV[covered_B], top_BK[covered_B], order_BK[covered_B], probs_BK[covered_B],
                                 top_p)
    out_BV[~covered_B] = _sorted_nucleus(logits_BV[~covered_B], top_p)
    return out_BV


def _candidates(logits_BV: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The TOP_P_CANDIDATES largest logits of each row in descending order, their indices and probabilities."""
    top_BK, order_BK = torch.topk(logits_BV, TOP_P_CANDIDATES, dim=-1)
    return top_BK, order_BK, (top_BK - torch.logsumexp(logits_BV, dim=-1, keepdim=True)).exp()


def _outside_BK(probs_BK: torch.Tensor, top_p: float) -> torch.Tensor:
    """Which of the most likely tokens, in descending order, lie past the nucleus (the top token never does)."""
    return probs_BK.cumsum(dim=-1) - probs_BK >= top_p


def _sorted_nucleus(logits_BV: torch.Tensor, top_p: float) -> torch.Tensor:
    sorted_BV, order_BV = torch.sort(logits_BV, descending=True, dim=-1)
    return _nucleus(logits_BV, sorted_BV, order_BV, torch.softmax(sorted_BV, dim=-1), top_p)


def _nucleus(logits_BV: torch.Tensor, sorted_BK: torch.Tensor, order_BK: torch.Tensor, probs_BK: torch.Tensor,
             top_p: float) -> torch.Tensor:
    """`logits_BV` with -inf outside the nucleus, from its K most likely tokens in order and their probabilities."""
    kept_BK = sorted_BK.masked_fill(_outside_BK(probs_BK, top_p), float("-inf"))
    return torch.full_like(logits_BV, float("-inf")).scatter(-1, order_BK, kept_BK)


def sample_tokens(logits_BV: torch.Tensor, s: SamplingSettings,
                  generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Next tokens (from softmax(logits / T) restricted to the top-p nucleus) and their raw log-probs,
    log softmax(logits) at T = 1: what vLLM reports too, so engines compare with the trainer alike."""
    logits_BV = logits_BV.float()
    if logits_BV.shape[-1] > TOP_P_CANDIDATES:
        return _sample_large_vocabulary(logits_BV, s, generator)
    if s.greedy:
        token_B = logits_BV.argmax(-1)
    else:
        probs_BV = torch.softmax(top_p_filter(logits_BV / s.temperature, s.top_p), -1)
        token_B = torch.multinomial(probs_BV, 1, generator=generator).squeeze(-1)
    return token_B, torch.log_softmax(logits_BV, -1).gather(-1, token_B[:, None]).squeeze(-1)


def _sample_large_vocabulary(logits_BV: torch.Tensor, s: SamplingSettings,
                             generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """`sample_tokens` with few passes over a large vocabulary; the log-prob is a logit minus one log-sum-exp."""
    if s.greedy:
        token_B = logits_BV.argmax(-1)
    elif s.top_p < 1.0:
        token_B = _draw_nucleus_B(logits_BV / s.temperature, s.top_p, generator)
    else:
        token_B = _draw_B(torch.softmax(logits_BV / s.temperature, -1), generator)
    logp_B = logits_BV.gather(-1, token_B[:, None]) - torch.logsumexp(logits_BV, -1, keepdim=True)
    return token_B, logp_B.squeeze(-1)


def _draw_nucleus_B(logits_BV: torch.Tensor, top_p: float, generator: torch.Generator | None) -> torch.Tensor:
    """A token per row from softmax(logits_BV)'s top-p nucleus: drawn among the most likely candidates where they
    hold the row's nucleus (the same distribution), over the filtered vocabulary elsewhere."""
    _, order_BK, probs_BK = _candidates(logits_BV)
    covered_B = probs_BK.sum(-1) >= top_p
    token_B = torch.empty(logits_BV.shape[0], dtype=torch.long, device=logits_BV.device)
    if bool(covered_B.any()):
        probs_CK = probs_BK[covered_B]
        pick_C = _draw_B(probs_CK.masked_fill(_outside_BK(probs_CK, top_p), 0.0), generator)
        token_B[covered_B] = order_BK[covered_B].gather(-1, pick_C[:, None]).squeeze(-1)
    if not bool(covered_B.all()):
        wide_B = ~covered_B
        token_B[wide_B] = _draw_B(torch.softmax(_sorted_nucleus(logits_BV[wide_B], top_p), -1), generator)
    return token_B


def _draw_B(weights_BV: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One index per row, drawn with probability proportional to its weight, by inverting the cumulative sum:
    float32 within blocks of DRAW_BLOCK, float64 across them, so a tiny weight keeps its share wherever it sits
    (torch.multinomial takes ~60 ms on 64 x 49k weights on one CPU thread, this ~5 ms). A zero weight widens no
    interval of the cumulative sums, and the draw stays inside (0, total), so it is never drawn."""
    rows = weights_BV.shape[0]
    within_BNC = F.pad(weights_BV.float(), (0, -weights_BV.shape[-1] % DRAW_BLOCK)).view(rows, -1, DRAW_BLOCK)
    within_BNC = within_BNC.cumsum(-1)
    mass_BN = within_BNC[..., -1].double()
    ends_BN = mass_BN.cumsum(-1)
    u_B1 = torch.rand(rows, 1, generator=generator, dtype=torch.float64, device=weights_BV.device)
    target_B1 = torch.minimum(u_B1 * ends_BN[:, -1:], _below(ends_BN[:, -1:]))
    block_B1 = torch.searchsorted(ends_BN, target_B1, right=True)
    block_mass_B1 = mass_BN.gather(-1, block_B1)
    rest_B1 = (target_B1 - ends_BN.gather(-1, block_B1) + block_mass_B1).clamp(min=0.0)
    cumulative_BC = within_BNC.gather(1, block_B1[..., None].expand(-1, -1, DRAW_BLOCK)).squeeze(1).double()
    index_B1 = torch.searchsorted(cumulative_BC, torch.minimum(rest_B1, _below(block_mass_B1)), right=True)
    return (block_B1 * DRAW_BLOCK + index_B1).squeeze(-1)


def _below(x: torch.Tensor) -> torch.Tensor:
    """The largest float below x."""
    return torch.nextafter(x, torch.zeros_like(x))


class RolloutEngine:
    """Samples n chains per request; `sync_weights` after every optimizer update keeps it on-policy."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.delimiter = ThoughtDelimiter(tokenizer)

    def generate(self, requests: list[tuple[list[int], list[int]]], n: int, settings: SamplingSettings,
                 generator: torch.Generator | None = None) -> list[list[Chain]]:
        """n chains per (prompt ids, prefix ids) request, grouped by request."""
        groups = [[Chain(list(p), list(x)) for _ in range(n)] for p, x in requests]
        todo = []
        for group in groups:
            if not settings.free_text and len(group[0].prefix_ids) + settings.max_thought_tokens \
                    > settings.response_budget or len(group[0].prefix_ids) >= settings.response_budget:
                for c in group:
                    c.finish = "budget"  # nothing fits after this prefix
            else:
                todo.append(group)
        if todo:
            self._sample(todo, settings, generator)
        for c in (c for g in groups for c in g):
            c.text = self.tokenizer.decode(c.response_ids).replace(self.tokenizer.eos_token, "")
            c.thought_ends = self.delimiter.ends(c.response_ids)
        return groups

    def _sample(self, groups: list[list[Chain]], settings: SamplingSettings,
                generator: torch.Generator | None) -> None:
        """Fill gen_ids, gen_logprobs, n_generated, n_prefilled and finish of every chain; the
        chains of one group share prompt and prefix."""
        raise NotImplementedError

    def sync_weights(self, model) -> None:
        """Make the engine sample from `model`'s current weights."""
        raise NotImplementedError

    def close(self) -> None:
        """Release engine resources (worker processes, caches)."""
