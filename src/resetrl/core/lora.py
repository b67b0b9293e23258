"""LoRA adapters (peft) for RL on large models, and the merged view of their weights that the
rollout engines sample from: base weight + scale * B @ A, exactly what the trainer's forward uses."""

from __future__ import annotations

from collections.abc import Iterator

import torch


def add_lora(model, cfg):
    """Wrap `model` with trainable adapters (`rl.lora`); the base weights are frozen."""
    from peft import LoraConfig, get_peft_model

    targets = cfg.target_modules if isinstance(cfg.target_modules, str) else list(cfg.target_modules)
    config = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=targets,
                        task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def is_lora(model) -> bool:
    return hasattr(model, "peft_config")


def unwrap(model):
    """The transformers model inside a peft wrapper (its linear layers carry the adapters)."""
    return model.get_base_model() if is_lora(model) else model


def effective_linear(linear) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(weight, bias) a linear layer applies in eval mode, adapters included."""
    weight = linear.weight
    if hasattr(linear, "get_delta_weight") and not linear.merged and not linear.disable_adapters:
        for name in linear.active_adapters:
            if name in linear.lora_A:
                weight = weight + linear.get_delta_weight(name)
    return weight, linear.bias


def merged_named_weights(model) -> Iterator[tuple[str, torch.Tensor]]:
    """(checkpoint name, tensor) of every weight with adapters merged in, named as in the base
    model's own checkpoint: what vLLM's load_weights expects."""
    base = unwrap(model)
    if not is_lora(model):
        yield from ((name, p.detach()) for name, p in base.named_parameters())
        return
    adapted = {name for name, m in base.named_modules() if hasattr(m, "get_delta_weight")}
    seen: set[int] = set()  # a tied LM head shares the embedding: named once, like named_parameters()
    for name, module in base.named_modules():
        if name in adapted:
            weight, bias = effective_linear(module)
            yield f"{name}.weight", weight.detach()
            if bias is not None:
                yield f"{name}.bias", bias.detach()
        elif not any(name == a or name.startswith(a + ".") for a in adapted):
            for leaf, p in module.named_parameters(recurse=False):
                if id(p) not in seen:
                    seen.add(id(p))
                    yield f"{name}.{leaf}" if name else leaf, p.detach()


def merged_model(model):
    """The plain transformers model with adapters merged in (for the final, vLLM-loadable save)."""
    return model.merge_and_unload() if is_lora(model) else model
