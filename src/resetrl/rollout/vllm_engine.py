"""The `vllm` rollout engine: vLLM with prefix caching, kept on-policy by a weight sync after every
update followed by a prefix-cache reset (a stale cache silently serves K/V of the old weights:
TRL #3024, vLLM #9744). Chains are generated thought by thought (`resetrl.rollout.rounds`).

vLLM runs in this process (V1 multiprocessing off), so a sync hands the trainer's tensors to the
engine's `load_weights` without serialising them.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from resetrl.core.lora import merged_named_weights, unwrap
from resetrl.rollout.rounds import RoundOutput, ThoughtRounds

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


class VLLMEngine(ThoughtRounds):
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
    def _generate_round(self, contexts: list[list[int]], options: list[dict]) -> list[RoundOutput]:
        params = [self._SamplingParams(**o, detokenize="stop" in o) for o in options]
        outputs = self.llm.generate([{"prompt_token_ids": c} for c in contexts], params, use_tqdm=False)
        return [RoundOutput(len(out.prompt_token_ids) - (out.num_cached_tokens or 0),
                            [(list(c.token_ids), [next(iter(step.values())).logprob for step in c.logprobs])
                             for c in out.outputs]) for out in outputs]


def _repack_tied_head(engine_model) -> None:
    """vLLM's CPU build multiplies by a packed copy of the LM head; with tied embeddings the reload
    updates the embedding but not that copy, so the head would keep the old weights. Repack it."""
    head = getattr(engine_model, "lm_head", None)
    if head is not None and hasattr(head, "cpu_linear"):
        from vllm.model_executor.layers.utils import dispatch_cpu_unquantized_gemm

        dispatch_cpu_unquantized_gemm(head, remove_weight=False)
