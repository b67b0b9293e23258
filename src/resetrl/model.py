"""The policy: a real `transformers` causal LM, built from a config or loaded from a checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM
from transformers.utils import logging as hf_logging

from resetrl.config import ModelConfig
from resetrl.storage import atomic_dir

hf_logging.disable_progress_bar()  # per-save progress bars would flood every stage log


def build_model(cfg: ModelConfig, tokenizer) -> LlamaForCausalLM:
    """A Llama-architecture model initialised from `cfg.init_seed`, sized for the char vocab."""
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng():  # the init seed must not disturb the caller's RNG stream
        torch.manual_seed(cfg.init_seed)
        model = LlamaForCausalLM(config)
    return model.float()


def load_policy(path: str | Path):
    """Model (fp32, eval mode) and tokenizer from a checkpoint directory the pipeline wrote."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.eval()
    return model, tokenizer


def save_policy(model, tokenizer, path: str | Path, extra_files: dict[str, str] | None = None) -> None:
    """Write an HF checkpoint atomically: readers see the old directory or the complete new one."""
    with atomic_dir(path) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for name, text in (extra_files or {}).items():
            (Path(tmp) / name).write_text(text)


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
