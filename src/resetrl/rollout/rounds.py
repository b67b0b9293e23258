"""Thought-by-thought generation on vLLM, in this process (`vllm`) or in a server (`vllm_server`).

Each round samples at most one thought per live chain (stop at the delimiter or EOS, at most
`max_thought_tokens`), then the shared stop rules of `resetrl.rollout.engine` decide which chains go on.
The next round's prompt is the chain so far, which vLLM's prefix cache serves without recomputing. The K
continuations of a group start as one request with n = K, so their shared prompt + prefix is prefilled once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from resetrl.core.response_format import THOUGHT_END
from resetrl.rollout.engine import Chain, RolloutEngine, SamplingSettings, finish_after_thought


@dataclass
class RoundOutput:
    """One request's result: context tokens vLLM prefilled (not served from its cache), and the
    (token ids, raw log-probs) of each of its n completions."""

    prefilled: int
    completions: list[tuple[list[int], list[float]]]


class ThoughtRounds(RolloutEngine):
    """The round loop; an engine says how one round's requests reach vLLM."""

    def _generate_round(self, contexts: list[list[int]], options: list[dict]) -> list[RoundOutput]:
        """Sample each context with its options (`sampling_options`), results in request order."""
        raise NotImplementedError

    def sampling_options(self, s: SamplingSettings, max_tokens: int, n: int, seed: int) -> dict:
        """vLLM's sampling fields, named alike in `SamplingParams` and the completions API."""
        sampling = dict(temperature=0.0) if s.greedy else dict(temperature=s.temperature, top_p=s.top_p, seed=seed)
        single = self.delimiter.single_id
        if s.free_text:
            stop = {}
        elif single is not None:
            stop = dict(stop_token_ids=[single])
        else:  # a delimiter split over several tokens: a stop string, which needs detokenizing
            stop = dict(stop=[THOUGHT_END], include_stop_str_in_output=True)
        return dict(n=n, max_tokens=max_tokens, ignore_eos=s.ignore_eos, logprobs=0, skip_special_tokens=False) \
            | stop | sampling

    def _sample(self, groups: list[list[Chain]], s: SamplingSettings, generator: torch.Generator | None) -> None:
        state = {id(c): _ChainState(c, len(self.delimiter.ends(c.prefix_ids))) for g in groups for c in g}
        # Round 1: one n = K request per group (one prefill); later rounds: one request per chain.
        live: list[list[Chain]] = groups
        while live:
            seeds = torch.randint(2**31 - 1, (len(live),), generator=generator).tolist()
            contexts, options = [], []
            for group, seed in zip(live, seeds):
                c = group[0]
                room = s.response_budget - state[id(c)].response_len
                max_tokens = room if s.free_text else min(s.max_thought_tokens, room)
                contexts.append(c.prompt_ids + c.response_ids)
                options.append(self.sampling_options(s, max_tokens, len(group), seed))
            next_live = []
            for group, out in zip(live, self._generate_round(contexts, options)):
                group[0].n_prefilled += out.prefilled
                for c, (tokens, logprobs) in zip(group, out.completions):
                    if not state[id(c)].add_thought(tokens, logprobs, s, self):
                        next_live.append([c])
            live = next_live


class _ChainState:
    """Thought-by-thought stop rules of one chain, the same as the torch engine's token-level ones."""

    def __init__(self, chain: Chain, prefix_thoughts: int):
        self.chain = chain
        self.response_len = len(chain.prefix_ids)
        self.thoughts = prefix_thoughts

    def add_thought(self, tokens: list[int], logprobs: list[float], s: SamplingSettings,
                    engine: RolloutEngine) -> bool:
        """Append one round's tokens; True when the chain is finished."""
        c = self.chain
        c.n_generated += len(tokens)
        self.response_len += len(tokens)
        eos = engine.tokenizer.eos_token_id
        if tokens and tokens[-1] == eos and not s.ignore_eos:
            c.gen_ids += tokens
            c.gen_logprobs += logprobs
            c.finish = "eos"
        elif s.free_text:
            c.gen_ids += tokens
            c.gen_logprobs += logprobs
            c.finish = "length"
        elif engine.delimiter.completes(tokens):
            c.gen_ids += tokens
            c.gen_logprobs += logprobs
            self.thoughts += 1
            c.finish = finish_after_thought(s, engine.tokenizer.decode(tokens), self.thoughts, self.response_len)
        else:  # no delimiter within the thought (or response) budget: cut back to the last thought
            c.finish = "overflow" if len(tokens) >= s.max_thought_tokens else "budget"
        return bool(c.finish)
