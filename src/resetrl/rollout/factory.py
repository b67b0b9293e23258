"""The engine a run samples with, from `rollout.engine`. vLLM is imported only when chosen: it is an
optional, GPU-side dependency, and a stage's code dependencies are its top-level imports, so a
vLLM-only edit reruns no CPU stage."""

from __future__ import annotations

from resetrl.rollout.engine import ENGINES, RolloutEngine
from resetrl.rollout.torch_engine import TorchEngine


def make_engine(rollout, model, tokenizer) -> RolloutEngine:
    """The engine `rollout.engine` names, sampling from `model`."""
    if rollout.engine == "torch":
        return TorchEngine(model, tokenizer)
    if rollout.engine == "vllm":
        from resetrl.rollout.vllm_engine import VLLMEngine
        return VLLMEngine(model, tokenizer, rollout)
    if rollout.engine == "vllm_server":
        from resetrl.rollout.vllm_server import VLLMServerEngine
        return VLLMServerEngine(model, tokenizer, rollout)
    raise ValueError(f"rollout.engine must be one of {ENGINES}, got {rollout.engine!r}")
