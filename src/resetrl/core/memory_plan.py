"""The memory plan: what each stage that loads a model (sft, train, evaluate) needs on one device,
estimated from the model's config and the params before any compute. The stages refuse a config
whose estimate exceeds `runtime.device_memory_gib` (`resetrl.stages.declared_params` checks it);
Snakemake prints the plan when it reads the workflow. CLI (exit status 2 where a stage would refuse)::

    python -m resetrl.core.memory_plan params.yaml configs/olmo3-7b.yaml [--set runtime.device_memory_gib=79]

What it counts, per device; DDP replicates all of it, so `runtime.world_size` lowers none of it:

- weights: parameters x dtype bytes, the parameters counted from the config (exactly, for the llama,
  mistral, qwen2, olmo2 and olmo3 families), never loaded: the embedded model's `model.*` keys, a
  checkpoint's config.json (or the GGUF a workflow-built model comes from), the Hugging Face cache, or
  model_configs.json beside this module for the paper's hub models; otherwise the plan is unknown.
- trainable state: LoRA adapters (fp32: peft's default) or every weight (runtime dtype), with a
  gradient and AdamW's two states each, in the same dtype (no fp32 master copy); DDP adds its gradient
  buckets.
- update, an estimate: rows x tokens x (layers x (a*h + b*kv + c*i) + 12 x vocab) bytes. The first
  term is what autograd keeps for the backward pass without activation checkpointing (with it,
  runtime.activation_checkpointing: each layer's input plus one layer's activations): coefficients of
  the hidden (h), K/V (kv) and MLP (i) widths per token and layer, measured by counting the tensors
  autograd saves in transformers' models (SDPA attention; `ACTIVATIONS`); the second the fp32
  log-softmax over the vocabulary and its gradient. rows: `runtime.micro_batch_size` (0: the whole
  minibatch); tokens: the worst case, every sequence at its budget (PROMPT_TOKENS +
  rollout.max_thoughts x rollout.max_thought_tokens).
- rollout: the torch engine's K/V cache (rollout.batch_size rows of those tokens, plus
  rl.localization_max_tokens where the stage localizes) and its fused copies of the projections, held
  while sampling, not during an update (the larger of the two counts); vLLM its share
  rollout.vllm_gpu_memory_utilization of the device, which must hold its own copy of the weights and
  the K/V of one max-length sequence. A vLLM server (rollout.engine vllm_server) takes nothing on the
  trainer's device: its own row is per server GPU, the weights and K/V split over rollout.vllm_server_gpus.
"""

from __future__ import annotations

import argparse
import json
import math
import string
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from resetrl.core.config import ParamsError, load_params

GIB = 2**30
PROMPT_TOKENS = 512  # allowance for a prompt: the thought instructions and the problem
VLLM_MAX_MODEL_LEN = 8192  # = resetrl.rollout.vllm_engine.MAX_MODEL_LEN (a test keeps them equal)
VLLM_OVERHEAD = 2 * GIB  # vLLM's activation peak and CUDA graphs, beside its weights and K/V cache
CUDA_OVERHEAD = 1 * GIB  # a process's CUDA context, kernels and allocator slack
LOGIT_BYTES = 12  # per token and vocabulary entry: the fp32 log-softmax autograd keeps + two fp32 gradients
DTYPE_BYTES = {"float32": 4, "bfloat16": 2}
# Bytes autograd keeps per token and layer, a*hidden + b*kv + c*intermediate, by (family, dtype bytes, LoRA),
# counted with torch.autograd.graph.saved_tensors_hooks in transformers 5.24 (SDPA attention). LoRA on all
# linear layers (an upper bound for fewer modules), plus 4 bytes x rank per adapted linear (the fp32 A output).
ACTIVATIONS = {
    ("llama", 2, False): (20, 4, 8), ("llama", 2, True): (36, 4, 10),
    ("llama", 4, False): (32, 8, 16), ("llama", 4, True): (24, 8, 16),
    ("olmo", 2, False): (32, 12, 8), ("olmo", 2, True): (40, 8, 10),
    ("olmo", 4, False): (40, 16, 16), ("olmo", 4, True): (28, 12, 16),
}
QK_NORM = ("olmo2", "olmo3")  # RMSNorms over the q and k projections
KNOWN = ("llama", "mistral", "qwen2", *QK_NORM)
LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
FUSED = ("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj")  # the torch engine concatenates (copies) these
# The char tokenizer's vocabulary (resetrl.core.tokenizer, which imports transformers): 4 special tokens,
# the thought delimiter, printable ASCII less four whitespace characters.
CHAR_VOCAB = 4 + 1 + len(set(string.printable) - set("\t\r\x0b\x0c"))
STAGES = ("sft", "train", "evaluate")
SERVER = "server"  # the plan's row of a vLLM server's GPUs
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # the adapter ranks a vLLM server takes (--max-lora-rank)
NO_DDP_HELP = ("runtime.world_size does not help: DDP keeps a full copy of the weights, optimizer state and "
               "engine on every device")


@dataclass(frozen=True)
class Arch:
    """The sizes of a decoder-only transformer that set its memory, and where they were read."""

    source: str
    model_type: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    tied: bool
    max_positions: int
    head_dim: int = 0  # 0: hidden // heads
    biased: tuple[str, ...] = ()  # linear layers with a bias

    @property
    def q_dim(self) -> int:
        return self.heads * (self.head_dim or self.hidden // self.heads)

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * (self.head_dim or self.hidden // self.heads)

    def linears(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of each linear layer of one block."""
        h, i, q, kv = self.hidden, self.intermediate, self.q_dim, self.kv_dim
        return dict(zip(LINEARS, ((h, q), (h, kv), (h, kv), (q, h), (h, i), (h, i), (i, h))))

    def parameters(self) -> int:
        linears = self.linears()
        block = sum(a * b + (b if name in self.biased else 0) for name, (a, b) in linears.items())
        block += 2 * self.hidden + (self.q_dim + self.kv_dim if self.model_type in QK_NORM else 0)  # RMSNorms
        return self.layers * block + self.vocab * self.hidden * (1 if self.tied else 2) + self.hidden

    def kv_bytes(self, dtype_bytes: int) -> int:
        """K/V cache per token."""
        return self.layers * 2 * self.kv_dim * dtype_bytes

    def activation_bytes(self, dtype_bytes: int, lora_rank: int, checkpointed: bool = False) -> int:
        """What autograd keeps per token for the backward pass (`ACTIVATIONS`), the logits' share included;
        checkpointed: each layer's input, and one layer's activations while its backward recomputes them."""
        a, b, c = ACTIVATIONS["olmo" if self.model_type in QK_NORM else "llama", dtype_bytes, lora_rank > 0]
        per_layer = a * self.hidden + b * self.kv_dim + c * self.intermediate + 4 * lora_rank * len(LINEARS)
        kept = self.layers * self.hidden * dtype_bytes + per_layer if checkpointed else self.layers * per_layer
        return kept + LOGIT_BYTES * self.vocab


def lora_parameters(arch: Arch, rank: int, targets: str | Sequence[str]) -> int:
    """Trainable parameters of rank-`rank` adapters (A: rank x in, B: out x rank) on the named linear layers
    of every block (peft matches a module by its name's last part; all-linear: every one but the LM head)."""
    chosen = arch.linears() if targets == "all-linear" else {n: s for n, s in arch.linears().items() if n in targets}
    return arch.layers * rank * sum(a + b for a, b in chosen.values())


def arch_from_config(config: dict, source: str) -> Arch:
    """An Arch from a Hugging Face config.json mapping (KeyError where a size is missing)."""
    model_type = config.get("model_type", "?")
    biased = ("q_proj", "k_proj", "v_proj") if model_type == "qwen2" else (
        LINEARS[:4] if config.get("attention_bias") else ()) + (LINEARS[4:] if config.get("mlp_bias") else ())
    if model_type not in KNOWN:
        source += f"; model_type {model_type} counted as llama"
    return Arch(source, model_type, config["hidden_size"], config["num_hidden_layers"],
                config["num_attention_heads"], config.get("num_key_value_heads") or config["num_attention_heads"],
                config["intermediate_size"], config["vocab_size"], bool(config.get("tie_word_embeddings", False)),
                config.get("max_position_embeddings") or VLLM_MAX_MODEL_LEN, config.get("head_dim") or 0, biased)


def _gguf_config(path: Path) -> dict:
    """The config.json keys of a GGUF file's metadata (the tensors are not read)."""
    from gguf import GGUFReader

    reader = GGUFReader(path)
    fields = reader.fields
    arch = fields["general.architecture"].contents()

    def get(key):
        return fields[f"{arch}.{key}"].contents()

    return {"model_type": arch, "hidden_size": get("embedding_length"), "num_hidden_layers": get("block_count"),
            "num_attention_heads": get("attention.head_count"), "num_key_value_heads": get("attention.head_count_kv"),
            "intermediate_size": get("feed_forward_length"), "vocab_size": len(fields["tokenizer.ggml.tokens"].data),
            "tie_word_embeddings": all(t.name != "output.weight" for t in reader.tensors),
            "max_position_embeddings": get("context_length")}


def pretrained_config(name: str) -> tuple[dict | None, str]:
    """(config.json mapping, where it was read) of a pretrained model, or (None, why not), without network or
    weights: a checkpoint directory (pointers and LoRA adapters followed to their base), the GGUF a
    workflow-built model (results/models/NAME) is converted from, the Hugging Face cache, model_configs.json."""
    path = Path(name)
    if (path / "config.json").is_file():
        return json.loads((path / "config.json").read_text()), f"{path / 'config.json'}"
    for pointer in ("pretrained.json", "base_model.json"):  # resetrl.core.model's pointer and adapter base
        if (path / pointer).is_file():
            reference = json.loads((path / pointer).read_text())
            base = reference["name_or_path"]
            if not Path(base).exists() and Path(reference.get("relative", base)).exists():
                base = reference["relative"]
            return pretrained_config(base)
    if path.parent.as_posix().endswith("results/models"):
        from resetrl.core.pretrained import PACKAGED, packaged_gguf
        from resetrl.core.storage import DataError

        if path.name in PACKAGED:
            try:
                gguf = packaged_gguf(path.name)
                return _gguf_config(gguf), f"{gguf.name} metadata"
            except (DataError, ImportError, OSError, KeyError) as error:
                return None, f"{name} is not built yet and its GGUF cannot be read ({error})"
    if not path.exists() and name.count("/") == 1:
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(name, "config.json")
        except ImportError:
            cached = None
        if isinstance(cached, str):
            return json.loads(Path(cached).read_text()), "the Hugging Face cache"
        shipped = json.loads(resources.files("resetrl.core").joinpath("model_configs.json").read_text())
        if name in shipped:
            return shipped[name], "resetrl/core/model_configs.json"
    return None, (f"no config.json for {name} offline (not a checkpoint directory, not in the Hugging Face cache "
                  "or resetrl/core/model_configs.json)")


def model_arch(model) -> Arch | str:
    """The sizes of `params.model`, or why they are unknown."""
    if model.pretrained is None:
        return Arch("model.* (the embedded model)", "llama", model.hidden_size, model.num_layers, model.num_heads,
                    model.num_heads, model.intermediate_size, CHAR_VOCAB, True, model.max_position_embeddings)
    try:
        config, source = pretrained_config(model.pretrained)
    except (OSError, ValueError, KeyError) as error:
        return f"{model.pretrained}: its config cannot be read ({error})"
    if config is None:
        return source
    try:
        return arch_from_config(config, source)
    except (KeyError, TypeError) as error:
        return f"{model.pretrained}: {source} has no size {error} (not a decoder-only LM config)"


@dataclass(frozen=True)
class StagePlan:
    """One stage's estimate in bytes: `parts` always held, the largest of `peaks` (an update and the torch
    engine's sampling alternate), vLLM's share of the device, and what to change where it does not fit."""

    stage: str
    parts: tuple[tuple[str, float], ...]
    peaks: tuple[tuple[str, float], ...] = ()
    vllm_share: float = 0.0
    vllm_base: float = 0.0  # vLLM's copy of the weights + its overhead
    vllm_needs: float = 0.0  # the base + one max-length sequence's K/V: less and vLLM does not start
    sequence_kv: float = 0.0  # K/V of one sequence of the plan's length: how many vLLM's cache holds
    keys: str = ""

    def total(self, device: float) -> float | None:
        """Bytes on one device; None where vLLM's share is of an unknown device."""
        held = sum(b for _, b in self.parts) + max((b for _, b in self.peaks), default=0.0)
        if self.vllm_share and not device:
            return None
        return held + self.vllm_share * device

    def describe(self, device: float) -> str:
        pieces = [f"{name} {b / GIB:.1f}" for name, b in self.parts]
        if self.peaks:
            alternatives = ", ".join(f"{name} {b / GIB:.1f}" for name, b in self.peaks)
            pieces.append(f"max({alternatives})" if len(self.peaks) > 1 else alternatives)
        if self.vllm_share and device:
            cache = max(self.vllm_share * device - self.vllm_base, 0.0)
            pieces.append(f"vLLM {self.vllm_share * device / GIB:.1f} ({self.vllm_share:.2f} of the device; K/V "
                          f"for {cache / self.sequence_kv:.1f} sequences)")
        elif self.vllm_share:
            pieces.append(f"vLLM ({self.vllm_share:.2f} of the device)")
        return " + ".join(pieces)


@dataclass(frozen=True)
class MemoryPlan:
    """The plan of a config: the model's sizes (None: unknown, with the reason), the assumptions, each stage."""

    model: str
    arch: Arch | None
    unknown: str
    dtype: str
    tokens: int
    device: float  # bytes of one device; 0: unknown
    stages: tuple[StagePlan, ...]

    def problem(self, stage: StagePlan) -> str | None:
        """One line saying why the stage cannot fit the device, naming the keys to change; None if it fits
        (or the device is unknown)."""
        if not self.device:
            return None
        where = f"memory plan: stage {stage.stage}"
        if stage.vllm_share and stage.vllm_share * self.device < stage.vllm_needs:
            wider = " (or rollout.vllm_server_gpus: tensor parallel)" if stage.stage == SERVER else ""
            return (f"{where}: rollout.vllm_gpu_memory_utilization {stage.vllm_share:.2f} gives vLLM "
                    f"{stage.vllm_share * self.device / GIB:.1f} GiB of runtime.device_memory_gib "
                    f"{self.device / GIB:g}, less than the {stage.vllm_needs / GIB:.1f} GiB its weights, one "
                    f"{VLLM_MAX_MODEL_LEN}-token sequence's K/V cache and its overhead need: raise it{wider}")
        total = stage.total(self.device)
        if total <= self.device:
            return None
        weights = dict(stage.parts).get("weights", 0.0)
        twice = (f"; the trainer and vLLM each hold the weights (2 x {weights / GIB:.1f} GiB): "
                 "rollout.engine vllm_server puts vLLM on GPUs of its own"
                 if stage.vllm_share and 4 * weights > self.device else "")
        return (f"{where} needs ~{total / GIB:.1f} GiB per device, more than runtime.device_memory_gib "
                f"{self.device / GIB:g} ({stage.describe(self.device)}): lower {stage.keys}{twice}")

    def lines(self) -> list[str]:
        device = f"{self.device / GIB:g} GiB per device (runtime.device_memory_gib)" if self.device else \
            "device memory unknown (runtime.device_memory_gib 0: nothing refused)"
        if self.arch is None:
            return [f"memory plan: unknown: {self.unknown}; {device}"]
        head = (f"memory plan (GiB, an estimate: docs/cluster.md#memory-plan): {self.model}, "
                f"{_count(self.arch.parameters())} parameters ({self.arch.source}), {self.dtype}, sequences of up "
                f"to {self.tokens} tokens, {device}")
        rows = []
        for stage in self.stages:
            total = stage.total(self.device)
            amount = f"{total / GIB:6.1f} GiB" if total is not None else \
                f"{stage.total(1.0) / GIB:6.1f} GiB + vLLM"
            verdict = "" if not self.device else "  OVER " if self.problem(stage) else "  fits "
            rows.append(f"  {stage.stage:<9}{amount}{verdict} = {stage.describe(self.device)}")
        return [head, *rows]


def _count(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}k"


def _dtype(runtime) -> str:
    if runtime.dtype != "auto":
        return runtime.dtype
    return "float32" if runtime.device == "cpu" else "bfloat16"  # auto: bfloat16 as on a GPU


def _arms(params, method: str | None) -> list:
    names = [method] if method else [*params.study.methods, *params.study.ablations]
    return [params.arms[m] for m in dict.fromkeys(names) if m in params.arms]


def plan(params, stages: Sequence[str] = STAGES, method: str | None = None) -> MemoryPlan:
    """The memory plan of `params` for `stages` (among sft, train, evaluate); `method`: one RL arm (else the
    study's arms: the largest need among them)."""
    rt, ro, rl = params.runtime, params.rollout, params.rl
    dtype = _dtype(rt)
    d, device = DTYPE_BYTES[dtype], rt.device_memory_gib * GIB
    arch = model_arch(params.model)
    budget = PROMPT_TOKENS + ro.max_thoughts * ro.max_thought_tokens
    if isinstance(arch, str):
        return MemoryPlan(str(params.model.pretrained), None, arch, dtype, budget, device, ())
    tokens = min(budget, arch.max_positions)
    weights = arch.parameters() * d
    base = (("weights", float(weights)),) + ((("CUDA", float(CUDA_OVERHEAD)),) if rt.device != "cpu" else ())
    # The key that shrinks the engine's part on this device (a server has none here).
    engine_key = {"vllm": "rollout.vllm_gpu_memory_utilization", "vllm_server": ""}.get(ro.engine, "rollout.batch_size")
    or_engine = f" or {engine_key}" if engine_key else ""
    length_keys = "rollout.max_thoughts x rollout.max_thought_tokens"

    def vllm(gpus: int) -> dict:
        """vLLM's share of each of its GPUs, which must hold its part of the weights and of one sequence's K/V."""
        kv_len, kv = min(arch.max_positions, VLLM_MAX_MODEL_LEN), arch.kv_bytes(d) / gpus
        return {"vllm_share": ro.vllm_gpu_memory_utilization, "sequence_kv": tokens * kv,
                "vllm_base": weights / gpus + VLLM_OVERHEAD, "vllm_needs": weights / gpus + VLLM_OVERHEAD + kv_len * kv}

    def rollout(localize: int, adapted: Sequence[str] = ()) -> dict:
        """The engine's share: vLLM's fraction of the device, nothing for a server, or the torch engine's K/V cache
        and weight copies."""
        if ro.engine == "vllm":
            return vllm(1)
        if ro.engine == "vllm_server":
            return {}
        copies = sum(a * b for n, (a, b) in arch.linears().items() if n in FUSED or n in adapted) * arch.layers * d
        kv = ro.batch_size * min(tokens + localize, arch.max_positions) * arch.kv_bytes(d)
        return {"peaks": (("rollout", float(kv + copies)),)}

    out = []
    for stage in stages:
        if stage == "evaluate" or (stage == "sft" and not params.sft.steps):
            out.append(StagePlan(stage, base, **rollout(0), keys=engine_key))
        elif stage == "sft":  # full fine-tuning of sft.batch_size chains and the localization examples
            rows = params.sft.batch_size + params.sft.localization_batch_size
            update = rows * tokens * arch.activation_bytes(d, 0)
            engine = rollout(rl.localization_max_tokens)
            out.append(StagePlan(stage, (*base, ("grads+AdamW", 3.0 * weights)),
                                 (("update", float(update)), *engine.pop("peaks", ())), **engine,
                                 keys=f"sft.batch_size, sft.localization_batch_size, {length_keys}{or_engine}"))
        elif stage == "train":
            arms, lora, ddp = _arms(params, method), rl.lora, rt.world_size > 1
            localize = rl.localization_max_tokens if any(a.selector == "self" and a.family == "reset"
                                                         for a in arms) else 0
            if lora.rank:
                n = lora_parameters(arch, lora.rank, lora.target_modules)
                state = (f"LoRA({_count(n)})+grads+AdamW", n * 4.0 * (4 + ddp))
                adapted = list(arch.linears()) if lora.target_modules == "all-linear" else lora.target_modules
            else:
                state, adapted = ("grads+AdamW", weights * (3.0 + ddp)), ()
            reference = (("KL reference", float(weights)),) if not lora.rank and any(a.kl_coef for a in arms) else ()
            minibatch = math.ceil(math.ceil(rl.prompts_per_step / rt.world_size) * rl.group_size / rl.minibatches)
            rows = min(rt.micro_batch_size or minibatch, minibatch)
            update = rows * tokens * arch.activation_bytes(d, lora.rank, rt.activation_checkpointing)
            engine = rollout(localize, adapted)
            keys = [f"runtime.micro_batch_size (now {rows})"] if rows > 1 else []
            keys += [] if rt.activation_checkpointing else ["runtime.activation_checkpointing: true"]
            keys += [length_keys, "rl.lora.rank" if lora.rank else "rl.lora.rank > 0 (LoRA instead of every weight)"]
            out.append(StagePlan(stage, (*base, *reference, state),
                                 ((f"update({rows}x{tokens})", float(update)), *engine.pop("peaks", ())), **engine,
                                 keys=f"{', '.join(keys)}{or_engine}; {NO_DDP_HELP}"))
        else:
            raise ValueError(f"no memory plan for stage {stage!r} (known: {', '.join(STAGES)})")
    if ro.engine == "vllm_server" and out:
        out.append(StagePlan(SERVER, (), **vllm(ro.vllm_server_gpus),
                             keys="rollout.vllm_gpu_memory_utilization or rollout.vllm_server_gpus"))
    return MemoryPlan(str(params.model.pretrained or "the embedded model"), arch, "", dtype, tokens, device,
                      tuple(out))


def check_layout(params, stage: str) -> None:
    """Refuse (ParamsError) what a vLLM server cannot follow: it samples from the model as loaded plus the trainer's
    LoRA adapters, for one trainer process."""
    ro, rl = params.rollout, params.rl
    if ro.engine != "vllm_server":
        return
    where = f"stage {stage}: rollout.engine vllm_server"
    if stage == "train" and not rl.lora.rank:
        raise ParamsError(f"{where} follows the trainer through LoRA adapters, and rl.lora.rank 0 trains every "
                          "weight: set rl.lora.rank > 0, or rollout.engine vllm")
    if stage == "train" and rl.lora.rank > max(VLLM_LORA_RANKS):
        raise ParamsError(f"{where} takes adapters of rank up to {max(VLLM_LORA_RANKS)}, not rl.lora.rank "
                          f"{rl.lora.rank}")
    if stage == "train" and params.runtime.world_size > 1:
        raise ParamsError(f"{where} serves one trainer process, not runtime.world_size {params.runtime.world_size}: "
                          "set runtime.world_size 1, or rollout.engine vllm")
    if stage == "sft" and params.sft.steps:
        raise ParamsError(f"{where} samples from the model as loaded, and sft.steps {params.sft.steps} trains every "
                          "weight: warm-start with rollout.engine vllm or torch, or set sft.steps 0")


def stage_gpus(params, stage: str) -> int:
    """GPUs a stage's job asks the scheduler for: the trainer's (runtime.world_size for train, else one) and those
    of a vLLM server it starts; none where models run on the CPU."""
    rt, ro = params.runtime, params.rollout
    if rt.device == "cpu":
        return 0
    server = ro.vllm_server_gpus if ro.engine == "vllm_server" and not ro.vllm_server_url else 0
    return (rt.world_size if stage == "train" else 1) + server


def check_memory(params, stage: str, method: str | None = None) -> None:
    """Refuse (ParamsError: one line naming the keys to change) a stage whose layout a vLLM server cannot follow
    (`check_layout`) or whose plan exceeds a known runtime.device_memory_gib; nothing else where it is 0 or the
    model's sizes are unknown offline."""
    check_layout(params, stage)
    if not params.runtime.device_memory_gib:
        return
    memory = plan(params, (stage,), method)
    for stage_plan in memory.stages:
        if problem := memory.problem(stage_plan):
            raise ParamsError(problem)


def plan_text(params) -> str:
    """The plan as printed: a header line and one line per stage."""
    return "\n".join(plan(params).lines())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resetrl.core.memory_plan", description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", metavar="FILE", help="params.yaml, then overlays")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one key after the files, e.g. --set runtime.device_memory_gib=79")
    args = parser.parse_args(argv)
    try:
        params = load_params(args.files, args.set)
    except ParamsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    memory = plan(params)
    print("\n".join(memory.lines()))
    problems = [p for s in memory.stages if (p := memory.problem(s))]
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 2 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
