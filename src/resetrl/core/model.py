"""The policy: a real `transformers` causal LM, built from a config, loaded from the hub or a
local path, or from a checkpoint the pipeline wrote.

A checkpoint directory holds one of: full weights (`save_pretrained`); a LoRA adapter whose
`adapter_config.json` names its base; or `pretrained.json`, a pointer to an unchanged pretrained
model (the warm start when SFT is skipped), so a 14B model is never copied for nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM
from transformers.utils import logging as hf_logging

from resetrl.core.model_card import CARD_FILE, ModelCard
from resetrl.core.params import ModelConfig
from resetrl.core.storage import atomic_dir, atomic_write_json, writing
from resetrl.core.tokenizer import build_char_tokenizer

POINTER = "pretrained.json"
BASE_FILE = "base_model.json"  # a LoRA adapter's base, as a resolvable reference (see base_reference)

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


def device_and_dtype(runtime=None) -> tuple[torch.device, torch.dtype]:
    """`runtime.device` / `runtime.dtype` resolved: auto is cuda + bfloat16 when a GPU is there, else
    cpu + float32 (bfloat16 matmuls are ~100x slower on CPUs without bf16 units)."""
    device = getattr(runtime, "device", "cpu")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = getattr(runtime, "dtype", "float32")
    if dtype == "auto":
        dtype = "bfloat16" if device == "cuda" else "float32"
    return torch.device(device), getattr(torch, dtype)


def _load_tokenizer(name_or_path: str | Path):
    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    if tokenizer.pad_token is None:  # batching needs one; EOS is never a trained-on pad position
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _load_model(name_or_path: str | Path, runtime):
    device, dtype = device_and_dtype(runtime)
    return AutoModelForCausalLM.from_pretrained(name_or_path, dtype=dtype).to(device)


def initial_policy(cfg: ModelConfig, runtime=None):
    """(model, tokenizer) before any training: `model.pretrained` by hub name or path, else the
    tiny Llama built from `cfg` with the char tokenizer."""
    if cfg.pretrained is not None:
        return _load_model(cfg.pretrained, runtime), _load_tokenizer(cfg.pretrained)
    tokenizer = build_char_tokenizer()
    return build_model(cfg, tokenizer).to(device_and_dtype(runtime)[0]), tokenizer


def base_reference(name_or_path: str | Path) -> dict:
    """How a checkpoint names the model it builds on: a hub id as is; a local directory by its absolute path,
    so that the checkpoint loads from any working directory, with the path as given as the fallback for a copy
    of the same tree elsewhere (the absolute one then no longer exists)."""
    local = Path(name_or_path)
    if local.is_dir() and str(local.resolve()) != str(name_or_path):
        return {"name_or_path": str(local.resolve()), "relative": str(name_or_path)}
    return {"name_or_path": str(local.resolve()) if local.is_dir() else str(name_or_path)}


def resolve_base(reference: dict) -> str:
    """The reference's absolute path or hub id, else its fallback path where only that exists."""
    name, fallback = reference["name_or_path"], reference.get("relative")
    if Path(name).is_absolute() and not Path(name).exists() and fallback and Path(fallback).exists():
        return fallback
    return name


def load_policy(path: str | Path, runtime=None):
    """Model (eval mode, on `runtime`'s device and dtype; fp32 CPU by default) and tokenizer from a
    checkpoint directory: full weights, a pointer to a pretrained model, or a LoRA adapter (loaded
    trainable over its base, so a run resumes training it)."""
    path = Path(path)
    if (path / POINTER).exists():
        name = resolve_base(json.loads((path / POINTER).read_text()))
        model, tokenizer = _load_model(name, runtime), _load_tokenizer(name)
    elif (path / "adapter_config.json").exists():
        from peft import PeftModel

        base = resolve_base(json.loads((path / BASE_FILE).read_text())) if (path / BASE_FILE).exists() else \
            json.loads((path / "adapter_config.json").read_text())["base_model_name_or_path"]
        model = PeftModel.from_pretrained(_load_model(base, runtime), path, is_trainable=True)
        tokenizer = _load_tokenizer(path)
    else:
        model, tokenizer = _load_model(path, runtime), _load_tokenizer(path)
    model.eval()
    return model, tokenizer


def save_pointer(name_or_path: str, path: str | Path, card: ModelCard, tokenizer) -> None:
    """A checkpoint directory that stands for an unchanged pretrained model."""
    reference = base_reference(name_or_path)
    with atomic_dir(path) as tmp, writing(path):
        atomic_write_json(Path(tmp) / POINTER, reference)
        (Path(tmp) / CARD_FILE).write_text(card.with_facts(**{"base model": reference["name_or_path"]})
                                           .render(tokenizer, "pointer"))


def save_policy(model, tokenizer, path: str | Path, card: ModelCard) -> None:
    """Write an HF checkpoint atomically (readers see the old directory or the complete new one),
    with its model card and the generation settings that stop where the project stops."""
    with atomic_dir(path) as tmp, writing(path):  # safetensors' errors (a full disk) are no OSErrors
        card.apply_stop_settings(model, tokenizer)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        kind = "adapter" if hasattr(model, "peft_config") else "weights"
        if kind == "adapter":  # peft writes neither the stop settings nor a base that loads from elsewhere
            base = model.get_base_model()
            base.generation_config.save_pretrained(tmp)
            reference = base_reference(base.config._name_or_path)
            atomic_write_json(Path(tmp) / BASE_FILE, reference)
            _rewrite_adapter_base(Path(tmp), reference["name_or_path"])
            card = card.with_facts(**{"base model": reference["name_or_path"]})
        (Path(tmp) / CARD_FILE).write_text(card.render(tokenizer, kind))


def _rewrite_adapter_base(directory: Path, name_or_path: str) -> None:
    """adapter_config.json names its base as resolved, so peft's AutoPeftModel loads it from any directory."""
    config = json.loads((directory / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = name_or_path
    atomic_write_json(directory / "adapter_config.json", config)


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
