"""The `vllm` rollout engine: vLLM with prefix caching, kept on-policy by a weight sync after every
update followed by a prefix-cache reset (a stale cache silently serves K/V of the old weights:
TRL #3024, vLLM #9744).

Chains are generated thought by thought: each round samples at most one thought per live chain
(stop at the delimiter or EOS, at most `max_thought_tokens`), then the shared stop rules of
`resetrl.rollout.engine` decide which chains go on. The next round's prompt is the chain so far, which the
prefix cache serves without recomputing. The K continuations of a group start as one request with
n = K, so their shared prompt + prefix is prefilled once.

vLLM runs in this process (V1 multiprocessing off), so a sync hands the trainer's tensors to the
engine's `load_weights` without serialising them.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import torch

from resetrl.core.lora import merged_named_weights, unwrap
from resetrl.core.response_format import THOUGHT_END
from resetrl.rollout.engine import Chain, RolloutEngine, SamplingSettings, finish_after_thought

# Context length vLLM reserves KV cache for; hub models declare 32k-128k, far beyond a 20 x 256-token chain.
MAX_MODEL_LEN = 8192
INSTALL_HINT = ("rollout.engine: vllm needs vLLM: `pip install -e .[vllm]` on a GPU machine, or the CPU build "
                "in its own environment (docs/engines.md, 'vLLM engine')")


def import_vllm():
    """vLLM's LLM and SamplingParams, with the settings this engine relies on."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # in-process: syncs pass tensors directly
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB of KV cache when vLLM runs on CPU
    try:
        from vllm import LLM, SamplingParams
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    return LLM, SamplingParams


class VLLMEngine(RolloutEngine):
    def __init__(self, model, tokenizer, rollout):
        super().__init__(tokenizer)
        LLM, self._SamplingParams = import_vllm()
        self.cache_resets = 0
        # vLLM builds its model from a checkpoint: the one `model` was loaded from (a hub name or a
        # local path), else a copy; the trainer's current weights (adapters merged) are loaded next.
        self._dir = tempfile.mkdtemp(prefix="resetrl-vllm-")
        base = unwrap(model)
        source = getattr(base.config, "_name_or_path", "") or self._dir
        if source == self._dir:
            base.save_pretrained(self._dir)
        tokenizer.save_pretrained(self._dir)
        on_cpu = next(model.parameters()).device.type == "cpu"
        max_len = min(base.config.max_position_embeddings, MAX_MODEL_LEN)
        # vLLM's CPU build fails on a seeded request whose prefill is chunked ("CPU Generator does
        # not use offset"): on CPU, let one step hold a whole batch of full-length prompts.
        cpu_limits = dict(max_num_batched_tokens=rollout.batch_size * max_len) if on_cpu else {}
        self.llm = LLM(model=source, tokenizer=self._dir, dtype=str(next(model.parameters()).dtype).split(".")[-1],
                       enable_prefix_caching=True, gpu_memory_utilization=rollout.vllm_gpu_memory_utilization,
                       enforce_eager=on_cpu, max_model_len=max_len, max_num_seqs=rollout.batch_size,
                       logprobs_mode="raw_logprobs", seed=0, **cpu_limits)
        if source != self._dir:
            self.load_weights(model)

    # --- weights ---------------------------------------------------------------------------------
    def load_weights(self, model) -> None:
        """Copy the trainer's parameters into the engine's model (HF names; vLLM fuses q|k|v itself)."""
        weights = list(merged_named_weights(model))
        # reload_weights redoes vLLM's post-load processing (its CPU build repacks linear weights).
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights, "is_checkpoint_format": True})
        self.llm.apply_model(_repack_tied_head)


    def reset_prefix_cache(self) -> None:
        if not self.llm.reset_prefix_cache():
            raise RuntimeError("vLLM refused to reset its prefix cache; rollouts would be off-policy")
        self.cache_resets += 1

    def sync_weights(self, model) -> None:
        self.load_weights(model)
        self.reset_prefix_cache()

    def close(self) -> None:
        del self.llm
        shutil.rmtree(self._dir, ignore_errors=True)

    # --- sampling --------------------------------------------------------------------------------
    def _params(self, s: SamplingSettings, max_tokens: int, n: int, seed: int | None):
        sampling = dict(temperature=0.0) if s.greedy else dict(temperature=s.temperature, top_p=s.top_p, seed=seed)
        single = self.delimiter.single_id
        if s.free_text:
            stop = {}
        elif single is not None:
            stop = dict(stop_token_ids=[single])
        else:  # a delimiter split over several tokens: a stop string, which needs detokenizing
            stop = dict(stop=[THOUGHT_END], include_stop_str_in_output=True, detokenize=True)
        options = dict(n=n, max_tokens=max_tokens, ignore_eos=s.ignore_eos, logprobs=0, skip_special_tokens=False,
                       detokenize=False) | stop | sampling
        return self._SamplingParams(**options)

    def _sample(self, groups: list[list[Chain]], s: SamplingSettings, generator: torch.Generator | None) -> None:
        state = {id(c): _ChainState(c, len(self.delimiter.ends(c.prefix_ids))) for g in groups for c in g}
        # Round 1: one n = K request per group (one prefill); later rounds: one request per chain.
        live: list[list[Chain]] = groups
        while live:
            seeds = torch.randint(2**31 - 1, (len(live),), generator=generator).tolist()
            prompts, params = [], []
            for group, seed in zip(live, seeds):
                c = group[0]
                room = s.response_budget - state[id(c)].response_len
                max_tokens = room if s.free_text else min(s.max_thought_tokens, room)
                prompts.append({"prompt_token_ids": c.prompt_ids + c.response_ids})
                params.append(self._params(s, max_tokens, len(group), seed))
            outputs = self.llm.generate(prompts, params, use_tqdm=False)
            next_live = []
            for group, out in zip(live, outputs):
                group[0].n_prefilled += len(out.prompt_token_ids) - (out.num_cached_tokens or 0)
                for c, completion in zip(group, out.outputs):
                    logprobs = [next(iter(step.values())).logprob for step in completion.logprobs]
                    if not state[id(c)].add_thought(list(completion.token_ids), logprobs, s, self):
                        next_live.append([c])
            live = next_live


class _ChainState:
    """Thought-by-thought stop rules of one chain, the same as the torch engine's token-level ones."""

    def __init__(self, chain: Chain, prefix_thoughts: int):
        self.chain = chain
        self.response_len = len(chain.prefix_ids)
        self.thoughts = prefix_thoughts

    def add_thought(self, tokens: list[int], logprobs: list[float], s: SamplingSettings,
                    engine: VLLMEngine) -> bool:
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


def _repack_tied_head(engine_model) -> None:
    """vLLM's CPU build multiplies by a packed copy of the LM head; with tied embeddings the reload
    updates the embedding but not that copy, so the head would keep the old weights. Repack it."""
    head = getattr(engine_model, "lm_head", None)
    if head is not None and hasattr(head, "cpu_linear"):
        from vllm.model_executor.layers.utils import dispatch_cpu_unquantized_gemm

        dispatch_cpu_unquantized_gemm(head, remove_weight=False)
