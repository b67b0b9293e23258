"""The study's single configuration: params.yaml (+ overlays), validated, as frozen dataclasses.

``load_params(["params.yaml", "configs/smoke.yaml"])`` deep-merges the overlays over the base,
fills missing keys from the schema defaults (params.schema.json), validates, and returns
:class:`Params`. Errors name the file, line and dotted key. CLI::

    python -m resetrl.core.config check params.yaml [overlay.yaml ...]
    python -m resetrl.core.config merge params.yaml configs/smoke.yaml -o OUT.yaml
    python -m resetrl.core.config schema [--check]   # regenerate params.schema.json from the dataclasses

A key is declared once, as a dataclass field below: its type, default, bounds (`param`) and the
``#:`` comment above it (its description in the schema).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import json
import math
import re
import sys
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple

import jsonschema
import yaml

from resetrl.core.schema import json_schema, param, section
from resetrl.core.storage import atomic_write_text

DEFAULT_PARAMS: tuple[str, ...] = ("params.yaml",)


class ParamsError(ValueError):
    """Invalid or unreadable params; the message names file, line and dotted key where known."""


# Enumerations, shared by the schema (enum) and the code (`choices(Selector)`).
Source = Literal["procedural", "numina", "reasoning_gym"]
MethodName = Literal["grpo", "reset", "vine", "process"]  # the registry of resetrl.rl.methods
Selector = Literal["random", "self", "oracle", "demo"]
Credit = Literal["step", "first_error"]
Layout = Literal["1x4", "2x4", "1x8"]
Loss = Literal["pg_seq_mean", "clip_token_mean", "clip_seq_mean_token_mean"]
Engine = Literal["torch", "vllm"]
Device = Literal["auto", "cpu", "cuda"]
Dtype = Literal["auto", "float32", "bfloat16"]
ARM_NAME_REF = {"$ref": "#/$defs/arm_name"}  # an arm's name (ARM_NAME)

# Operation weights (task.op_weights and its variants): a closed map over the three operations.
OP_WEIGHTS = {"type": "object", "additionalProperties": False, "minProperties": 1, "properties": {
    "+": {"description": "Relative frequency of addition.", "type": "number", "minimum": 0},
    "-": {"description": "Relative frequency of subtraction.", "type": "number", "minimum": 0},
    "*": {"description": "Relative frequency of multiplication.", "type": "number", "minimum": 0}}}


@dataclass(frozen=True)
class StudyConfig:
    """Which RL arms are trained and with how many seeds."""

    #: Names this configuration's results root, results/NAME/ (Snakemake), so that its runs never overwrite another
    #: configuration's; null: results/ for the values of params.yaml, otherwise a name derived from the overlays and
    #: overrides.
    name: str | None = param(None, pattern="^[A-Za-z0-9_.=+-]+$")
    #: RL arms trained by default (names from `arms`); each becomes one run per seed.
    methods: tuple[str, ...] = param(
        ("grpo", "grpo_pgseq", "rrpo", "srpo", "oracle", "demo", "oracle_1x8"), items=ARM_NAME_REF, minItems=1,
        uniqueItems=True)
    #: Opt-in ablation arms (names from `arms`), run by the `ablations` target.
    ablations: tuple[str, ...] = param(
        ("srpo_parent", "srpo_2x4", "srpo_1x8", "srpo_nomask", "srpo_clip", "srpo_clip_seq", "srpo_clip_kl"),
        items=ARM_NAME_REF, uniqueItems=True)
    #: Opt-in family of credit-assignment methods (names from `arms`; the first is the baseline), trained on these
    #: params and ranked by their compute-matched gain over it by the `family` target (results/tables/family.md).
    family: tuple[str, ...] = param(
        ("grpo", "rrpo", "srpo", "oracle", "demo", "vineppo", "process_oracle", "first_error_credit"),
        items=ARM_NAME_REF, minItems=2, uniqueItems=True)
    #: Settings of the opt-in regime map (`snakemake --cores all regimes`): each name is an overlay
    #: configs/regimes/NAME.yaml applied over these params and configs/regimes/scale.yaml (the map's reduced scale,
    #: arms and seeds).
    regimes: tuple[str, ...] = param(("q30", "q10", "q05"), items={"pattern": "^[a-z0-9_]+$"}, uniqueItems=True)
    #: One independent replicate per seed for every method: its own warm start (SFT seed sft.seed + s,
    #: initialisation model.init_seed + s), RL sampling and data order. Arms share the warm start of a seed, so
    #: comparisons are paired by seed.
    seeds: tuple[int, ...] = param((0, 1, 2, 3, 4), items={"minimum": 0}, minItems=1, uniqueItems=True)
    #: Significance level of every comparison: two-sided (1 - alpha) intervals, and the minimum detectable effect at
    #: 80% power at this level.
    alpha: float = param(0.05, exclusiveMinimum=0, maximum=0.5)
    #: Smallest effect of interest, in accuracy points (0.02 = 2 points): a claimed gain is 'not reproduced' only
    #: when the interval excludes a gain this large; a claimed tie ('about equal') is reproduced when the interval
    #: lies within +- this margin.
    min_effect: float = param(0.02, exclusiveMinimum=0, maximum=1)


@dataclass(frozen=True)
class ArmConfig:
    """One RL arm: how rollouts are grouped and which loss trains on them."""

    DEF_NAME: ClassVar[str] = "arm"  # its shape is $defs/arm of the schema

    #: The credit-assignment method (one file each in resetrl/rl/methods): grpo (one outcome advantage per chain),
    #: reset (the paper's reset buffer: RRPO, SRPO, the oracle, the positive control; see selector), vine (VinePPO:
    #: Monte-Carlo values at every thought), process (the step checker's per-thought rewards; see credit).
    method: MethodName = param("grpo")
    #: method reset: where to reset. random (RRPO), self (SRPO: the policy localizes the first error), oracle (the
    #: step checker's first error: the CPI-CARO upper bound), demo (the positive control: no failed parent; the
    #: prefix is the task's own correct solution cut at step e, e uniform over a window at the end of the chain that
    #: widens from the last thought to the whole chain over the run, R^3's reverse curriculum; procedural task only).
    selector: Selector = param("random")
    #: method reset: buffer layout per prompt: 1x4 (4 fresh + 4 suffixes of one parent), 2x4 (two parents, 4
    #: suffixes each, no base group), 1x8 (one parent, 8 suffixes).
    layout: Layout = param("1x4")
    #: pg_seq_mean: the paper's reset loss -(1/B) sum_i A_i mean_t log p (no ratio, no clipping); clip_token_mean:
    #: PPO clipped surrogate, token-mean (GRPO); clip_seq_mean_token_mean: clipped surrogate, mean over sequences of
    #: token means.
    loss: Loss = param("pg_seq_mean")
    #: Train reset-group chains on their suffix only (the reused prefix gets no gradient); false is the no-mask
    #: ablation.
    mask_prefix: bool = param(True)
    #: k3 KL penalty towards the warm start, aggregated like the loss; the paper uses none.
    kl_coef: float = param(0.0, minimum=0)
    #: Sampling temperature of the SRPO localization call (paper: 0.3; 0 = greedy, used by the 1x8 ablation).
    localization_temperature: float = param(0.3, minimum=0, maximum=2)
    #: method reset, beyond the paper: train the failed parent(s) and every other fresh draw inside the base group
    #: (normalised together), so the reset buffer discards no sampled chain.
    parent_in_base: bool = param(False)
    #: method vine: continuations sampled from the state after each thought to estimate its value (VinePPO: 9; 2
    #: keeps a run of the default 8-step chains within ~8x GRPO's tokens).
    mc_rollouts: int = param(2, minimum=1, maximum=64)
    #: method process (procedural task only): step (the process oracle: z-scored per-thought rewards summed to go,
    #: DeepSeekMath's process supervision) or first_error (VPPO-style: a failed chain's prefix before its first
    #: error is credited like a correct chain, only the thoughts from the error on are penalised).
    credit: Credit = param("step")

# The arms of the study and its ablations: each differs from ArmConfig's defaults only as written.
DEFAULT_ARMS = {name: dataclasses.asdict(ArmConfig(**changes)) for name, changes in {
    "grpo": {"loss": "clip_token_mean"},
    "grpo_pgseq": {},
    "rrpo": {"method": "reset", "selector": "random"},
    "srpo": {"method": "reset", "selector": "self"},
    "oracle": {"method": "reset", "selector": "oracle"},
    "srpo_2x4": {"method": "reset", "selector": "self", "layout": "2x4"},
    "srpo_1x8": {"method": "reset", "selector": "self", "layout": "1x8", "localization_temperature": 0.0},
    "srpo_nomask": {"method": "reset", "selector": "self", "mask_prefix": False},
    "srpo_clip": {"method": "reset", "selector": "self", "loss": "clip_token_mean"},
    "srpo_clip_seq": {"method": "reset", "selector": "self", "loss": "clip_seq_mean_token_mean"},
    "srpo_clip_kl": {"method": "reset", "selector": "self", "loss": "clip_token_mean", "kl_coef": 0.05},
    "srpo_parent": {"method": "reset", "selector": "self", "parent_in_base": True},
    # Beyond the paper, on GRPO's loss: the positive control and the layouts the tabular model favours.
    "demo": {"method": "reset", "selector": "demo", "loss": "clip_token_mean"},
    "oracle_clip": {"method": "reset", "selector": "oracle", "loss": "clip_token_mean"},
    "oracle_1x8": {"method": "reset", "selector": "oracle", "layout": "1x8", "loss": "clip_token_mean"},
    "oracle_parent": {"method": "reset", "selector": "oracle", "parent_in_base": True, "loss": "clip_token_mean"},
    "srpo_1x8_clip": {"method": "reset", "selector": "self", "layout": "1x8", "loss": "clip_token_mean",
                      "localization_temperature": 0.0},
    "rrpo_1x8_clip": {"method": "reset", "selector": "random", "layout": "1x8", "loss": "clip_token_mean"},
    # The family (`snakemake --cores all family`), on GRPO's loss: per-token credit beside the resets.
    "vineppo": {"method": "vine", "loss": "clip_token_mean"},
    "process_oracle": {"method": "process", "credit": "step", "loss": "clip_token_mean"},
    "first_error_credit": {"method": "process", "credit": "first_error", "loss": "clip_token_mean"},
}.items()}
ARM_NAME = {"description": "The name of an arm defined under `arms`.", "type": "string", "pattern": "^[a-z][a-z0-9_]*$"}



@dataclass(frozen=True)
class NuminaConfig:
    """task.source numina: NuminaMath-CoT filtered to verifiable answers (last boxed answer <= 60 chars, balanced
    braces, no text / units / English words, a digit or a choice A-E)."""

    #: Local parquet / JSONL copy of NuminaMath-CoT (rows with source, problem, solution); null loads
    #: AI-MO/NuminaMath-CoT with the `datasets` package (online).
    path: str | None = param(None)
    #: Value of the rows' `source` field to keep (paper: olympiads).
    subset: str = param("olympiads", minLength=1)
    #: Filtered problems in the train split (paper: 400).
    n_train: int = param(400, minimum=1)
    #: Filtered problems in the test split (paper: 100); task.n_val more follow them as the validation split.
    n_test: int = param(100, minimum=1)
    #: Shuffle seed of the filtered rows (paper: 42).
    seed: int = param(42, minimum=0)


@dataclass(frozen=True)
class ReasoningGymConfig:
    """task.source reasoning_gym: problems of these generators, task.n_train / n_val / n_test of them, spread evenly."""

    #: reasoning-gym dataset names.
    datasets: tuple[str, ...] = param(
        ("chain_sum", "basic_arithmetic", "gsm_symbolic", "countdown"), minItems=1, items={"minLength": 1})
    #: Seed of the train split; reasoning-gym draws item i from seed + i, so val and test start their seeds after
    #: the previous split's (no shared items).
    seed: int = param(0, minimum=0)


@dataclass(frozen=True)
class TaskConfig:
    """Where problems come from and their splits: the procedural arithmetic-chain task (the embedded default) or real
    data (cluster scale)."""

    #: procedural: the arithmetic-chain task (exact step checker: the oracle arm and the localization analyses);
    #: numina: NuminaMath-CoT (task.numina) scored by math-verify; reasoning_gym: offline reasoning-gym generators
    #: (task.reasoning_gym) scored by their own scorers.
    source: Source = param("procedural")
    numina: NuminaConfig = section(NuminaConfig)
    reasoning_gym: ReasoningGymConfig = section(ReasoningGymConfig)
    #: Evaluation benchmarks for real-data sources: name -> local parquet / JSONL / JSON file with one row per
    #: problem (problem or question, answer, optional id); together they form the ood split, reported per benchmark.
    #: Ignored by the procedural source, whose ood split is longer chains.
    eval_files: dict[str, str] = param({}, values={"minLength": 1})
    #: Seed of the procedural problem generator: fixes every split.
    seed: int = param(1234, minimum=0)
    #: Problems in the train split; feeds SFT and RL.
    n_train: int = param(20000, minimum=1)
    #: Problems in the validation split; drives the learning curves.
    n_val: int = param(256, minimum=1)
    #: Problems in the test split; only touched by the evaluation stage.
    n_test: int = param(512, minimum=1)
    #: Problems in the out-of-distribution split; only touched by the evaluation stage.
    n_ood: int = param(128, minimum=1)
    #: In-distribution chain length (operations per problem), inclusive lower bound.
    min_steps: int = param(8, minimum=1)
    #: In-distribution chain length (operations per problem), inclusive upper bound.
    max_steps: int = param(8, minimum=1)
    #: Out-of-distribution chain length, inclusive lower bound: longer chains than anything seen in training.
    ood_min_steps: int = param(10, minimum=1)
    #: Out-of-distribution chain length, inclusive upper bound.
    ood_max_steps: int = param(10, minimum=1)
    #: Start value is drawn from [10, start_max].
    start_max: int = param(15, minimum=10)
    #: Operands of + and - are drawn from [1, addend_max].
    addend_max: int = param(5, minimum=1)
    #: Multipliers are drawn from [2, multiplier_max].
    multiplier_max: int = param(4, minimum=2)
    #: Every intermediate value stays in [0, value_max]; must be >= 2 * start_max.
    value_max: int = param(40, minimum=1)
    #: Relative frequency of each operation (keys among +, -, *; at least one positive); multiplication is the hard,
    #: error-prone step type. An absent operation has weight 0.
    op_weights: dict[str, float] = param(
        {"+": 1.0, "-": 1.0, "*": 0.0}, json=OP_WEIGHTS)
    #: Relative frequency of each operation in the ood split (same keys as op_weights): a shifted op mix makes an
    #: out-of-distribution split the warm start can still partly solve, where longer chains than any seen in
    #: training score ~0.
    ood_op_weights: dict[str, float] = param(
        {"+": 1.0, "-": 1.0, "*": 0.0}, json=OP_WEIGHTS)
    #: Relative frequency of each operation for the last operation of every chain (in and out of distribution; same
    #: keys as op_weights); null: the last operation mixes like the others. A harder last step (e.g. only
    #: multiplications) puts the steps that greedy decoding gets wrong at the end of the chain, where fresh chains
    #: arrive with a clean prefix only if they made no earlier slip: the regime where a reset at the first error
    #: pays (CPI: p small).
    final_op_weights: dict[str, float] | None = param(
        None, json={**OP_WEIGHTS, "type": ["object", "null"]})
    #: How many written forms a thought of a warm-start solution may take (task.FORMS: a+b=c, a + b = c, a+b -> c, a
    #: + b is c), each thought drawn uniformly among the first surface_forms; 1 writes every solution the same way.
    #: The step checker reads every form.
    surface_forms: int = param(1, minimum=1, maximum=4)
    #: How errors arise: the chance that a thought of a warm-start demonstration states its result off by one (a
    #: local slip; later thoughts carry the wrong value forward, so the chain fails). The warm start imitates it and
    #: slips at every step when sampling, while its greedy steps stay right where it learned the arithmetic. 0:
    #: demonstrations are always correct and every error is a gap in the model's arithmetic.
    slip_rate: float = param(0.15, minimum=0, maximum=0.5)
    #: The hard last step of a designed warm start: the chance that a demonstration's last thought is right; otherwise
    #: it states a result 10 too high (an error of its own kind; slips are one too high, so errors never cancel). Below
    #: 0.5 the warm start's greedy last step is wrong and its sampled one right with about this probability: the
    #: improvable state sits at the end of the chain, reached clean only by chains without a slip. null: the last
    #: thought slips like the others.
    final_step_accuracy: float | None = param(0.1, minimum=0, maximum=1)


@dataclass(frozen=True)
class ModelConfig:
    """The policy: a pretrained causal LM, or a Llama-architecture model built from this config (no download) with a
    char tokenizer."""

    #: Hugging Face hub name or local path of a causal LM (AutoModelForCausalLM + AutoTokenizer); null builds the
    #: tiny Llama below with the char tokenizer, and the size keys below are ignored otherwise.
    pretrained: str | None = param(None)
    #: Width of the residual stream; must be divisible by num_heads.
    hidden_size: int = param(64, minimum=1)
    #: Number of transformer blocks.
    num_layers: int = param(3, minimum=1)
    #: Attention heads per block.
    num_heads: int = param(2, minimum=1)
    #: Hidden width of the MLP.
    intermediate_size: int = param(128, minimum=1)
    #: Longest sequence (prompt + response tokens) the model is configured for.
    max_position_embeddings: int = param(512, minimum=1)
    #: Seed of the random initialisation.
    init_seed: int = param(0, minimum=0)


@dataclass(frozen=True)
class SFTConfig:
    """Warm start: next-token loss on correct solution chains (response tokens only)."""

    #: Optimizer steps of the warm start; 0 skips it (the paper's setting: RL starts from the instruct model, which
    #: is then only evaluated). With skill_steps, the steps of each seed's fine-tune of the shared skill.
    steps: int = param(400, minimum=0)
    #: Steps of the shared skill (stage skill): one model trained once on correct demonstrations (no slips, no hard
    #: step), from which every seed's warm start fine-tunes sft.steps steps on the designed demonstrations (slips,
    #: the hard step): the arithmetic is learned to convergence once, and the seeds differ only in the fine-tune that
    #: sets their error profile. 0: no shared skill; each seed imitates from its own initialisation.
    skill_steps: int = param(5000, minimum=0)
    #: The shared skill stops early, at the first validation (every sft.eval_every steps) whose greedy pass@1 reaches
    #: this: converged, not a step count (skill_steps is then a cap).
    skill_target: float = param(0.98, minimum=0.0, maximum=1.0)
    #: Peak AdamW learning rate of the shared skill (sft.lr is the fine-tune's, or the whole warm start's without one).
    skill_lr: float = param(0.005, exclusiveMinimum=0, maximum=1.0)
    #: Solution chains per optimizer step.
    batch_size: int = param(32, minimum=1)
    #: Synthetic localization examples per optimizer step, on top of the chains: a correct chain with one thought
    #: corrupted (later thoughts carried forward), target \boxed{first error}. They stand in for the instruct tuning
    #: of the paper's models. Their prompts are ~4x longer than a chain, so they dominate the step's cost.
    localization_batch_size: int = param(4, minimum=0)
    #: Peak AdamW learning rate.
    lr: float = param(0.001, exclusiveMinimum=0, maximum=1.0)
    #: AdamW weight decay.
    weight_decay: float = param(0.01, minimum=0)
    #: Linear learning-rate warmup steps.
    warmup_steps: int = param(20, minimum=0)
    #: Gradient-norm clipping threshold.
    grad_clip: float = param(1.0, exclusiveMinimum=0)
    #: Share of the SFT loss given to the localization examples (each task is a token mean of its own; a shared
    #: token mean would give localization's one-token targets ~1% of the signal).
    localization_weight: float = param(0.25, minimum=0, maximum=1)
    #: Validation greedy accuracy is measured every eval_every steps (and at the end).
    eval_every: int = param(250, minimum=1)
    #: Seed of the warm start (initial data order).
    seed: int = param(0, minimum=0)


@dataclass(frozen=True)
class RolloutConfig:
    """Sampling settings shared by RL rollouts and sampled evaluation."""

    #: Rollout engine: torch (static-KV PyTorch sampler with prefix sharing; the CPU default, Llama/Qwen2 models) or
    #: vllm (vLLM with prefix caching and weight sync after every update; needs the vllm extra).
    engine: Engine = param("torch")
    #: vllm engine only: fraction of accelerator memory vLLM may take (weights + KV cache); the trainer needs the
    #: rest.
    vllm_gpu_memory_utilization: float = param(0.3, exclusiveMinimum=0, maximum=1)
    #: Sampling temperature (paper: 0.7).
    temperature: float = param(1.0, exclusiveMinimum=0)
    #: Nucleus-sampling probability mass, in (0, 1] (paper: 0.95).
    top_p: float = param(1.0, exclusiveMinimum=0, maximum=1)
    #: A chain ends at the thought holding \boxed{, after max_thoughts thoughts, or when the next thought could
    #: overflow the response budget (max_thoughts * max_thought_tokens tokens). Paper: 20.
    max_thoughts: int = param(12, minimum=1)
    #: Token budget of one thought (paper: 256; our thoughts are ~12 characters).
    max_thought_tokens: int = param(32, minimum=1)
    #: Sequences sampled together in one batch.
    batch_size: int = param(128, minimum=1)


@dataclass(frozen=True)
class LoraConfig:
    """LoRA adapters (peft) trained instead of the full model (paper: rank 64, alpha 64, all linear layers).
    Checkpoints hold the adapter; the run's final model is merged."""

    #: Adapter rank; 0 trains every parameter (no LoRA).
    rank: int = param(0, minimum=0)
    #: LoRA scaling numerator (scale = alpha / rank).
    alpha: float = param(64.0, exclusiveMinimum=0)
    #: Dropout on the adapter input.
    dropout: float = param(0.0, minimum=0, maximum=0.9)
    #: Modules that get adapters: all-linear (every linear layer but the LM head) or a list of module names such as
    #: [q_proj, v_proj].
    target_modules: str | tuple[str, ...] = param(
        "all-linear",
        json={"oneOf": [{"const": "all-linear"}, {"type": "array", "minItems": 1, "items": {"type": "string"}}]})


@dataclass(frozen=True)
class RLConfig:
    """RL fine-tuning from the warm start."""

    #: Optimizer steps per run.
    steps: int = param(50, minimum=1)
    #: Prompts per step (paper: 32).
    prompts_per_step: int = param(8, minimum=1)
    #: Rollouts per prompt (paper: 8); group-relative advantages need at least 2.
    group_size: int = param(8, minimum=2)
    #: AdamW learning rate (paper: 5e-5 with LoRA on 7B/14B models; the default study's sweep over 1e-5 / 3e-5 /
    #: 1e-4 picked 1e-5, docs/regime_search.md).
    lr: float = param(3e-05, exclusiveMinimum=0, maximum=1.0)
    #: AdamW weight decay.
    weight_decay: float = param(0.01, minimum=0)
    #: Gradient-norm clipping threshold.
    grad_clip: float = param(1.0, exclusiveMinimum=0)
    #: One epoch over each step's rollouts in this many minibatch updates (paper: 4); must divide prompts_per_step *
    #: group_size.
    minibatches: int = param(4, minimum=1)
    #: PPO clipped surrogate: ratio clip epsilon, in (0, 1) (paper: 0.2).
    clip_eps: float = param(0.2, exclusiveMinimum=0, exclusiveMaximum=1)
    #: PPO dual clip for negative advantages, > 1 (paper: 3).
    dual_clip: float = param(3.0, exclusiveMinimum=1)
    #: Reset arms: fresh chains drawn per prompt at most while looking for failed parents (paper: 12).
    max_draws: int = param(12, minimum=1)
    #: Token budget of one SRPO localization answer (paper: 4096 for free-form text; here the answer is \boxed{N}).
    localization_max_tokens: int = param(16, minimum=4)
    #: Held-out localization accuracy (fixed failed chains built from val) every loc_eval_every steps and after the
    #: last.
    loc_eval_every: int = param(20, minimum=1)
    #: Number of held-out failed chains behind the localization accuracy.
    loc_eval_problems: int = param(128, minimum=1)
    #: Validation greedy accuracy every eval_every steps (and at steps 0 and the last).
    eval_every: int = param(10, minimum=1)
    #: Checkpoint every save_every steps; an interrupted run resumes from the last one.
    save_every: int = param(10, minimum=1)
    lora: LoraConfig = section(LoraConfig)


@dataclass(frozen=True)
class EvalConfig:
    """Final evaluation on the test and ood splits."""

    #: Sampled pass@k is reported for each k (unbiased estimator).
    pass_k: tuple[int, ...] = param((1, 2), items={"minimum": 1}, minItems=1, uniqueItems=True)
    #: Samples per problem behind the pass@k estimates; must be >= max(pass_k).
    n_samples: int = param(2, minimum=1)


@dataclass(frozen=True)
class TheoryConfig:
    """The CPI theory check: CPI with random resets vs an improvability oracle on a tabular thought tree (stage
    cpi_theory, seconds)."""

    #: On-policy probabilities p of reaching the improvable state (the x axis).
    p_values: tuple[float, ...] = param(
        (0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0), items={"exclusiveMinimum": 0, "maximum": 1}, minItems=2,
        uniqueItems=True)
    #: Single-sample advantage estimates per p and method (enough that the smallest p's estimate is resolved).
    mc_samples: int = param(2000000, minimum=1000)
    #: Random seed of the simulation.
    seed: int = param(0)
    #: Success-probability gain of the good action at the improvable state.
    tau: float = param(0.5, exclusiveMinimum=0, maximum=0.7)
    #: Current policy's probability of the good action at the improvable state.
    good_action_prob: float = param(0.2, minimum=0, exclusiveMaximum=1)
    #: Actions per state |Y|.
    n_actions: int = param(4, minimum=2)
    #: Steps H of the tree.
    horizon: int = param(4, minimum=2)
    #: The tabular prediction (stage predict, resetrl.analysis.tabular; rl.steps SGD steps per simulated run): its
    #: learning rate on the shared position logits. It sets how far a run gets: 1.0 matches the default network's
    #: GRPO curve (sampled pass@1 0.07 -> 0.6 in 20 steps), so the prediction is the gain at the network's pace.
    tabular_lr: float = param(1.0, exclusiveMinimum=0)
    #: Simulations per arm, paired by seed: the predicted gain's standard error and the MDE at study.seeds.
    tabular_seeds: int = param(8, minimum=2)


@dataclass(frozen=True)
class RuntimeConfig:
    """Execution resources of each job."""

    #: torch threads per job. Two 1-thread jobs beat one 2-thread job on small CPUs.
    threads: int = param(1, minimum=1)
    #: Where models run: auto (cuda when available, else cpu), cpu or cuda.
    device: Device = param("auto")
    #: Model weights: auto (bfloat16 on GPU, float32 on CPU, where bfloat16 is ~100x slower), float32 or bfloat16.
    dtype: Dtype = param("auto")
    #: Sequences per forward / backward pass in RL updates; gradients accumulate to the minibatch (exactly: each
    #: part is weighted by its share of the tokens or sequences). 0 = the whole minibatch at once; a 7B-14B model
    #: needs a few.
    micro_batch_size: int = param(0, minimum=0)
    #: Worker processes checking answers of real-data sources (math-verify, reasoning-gym scorers).
    verify_workers: int = param(2, minimum=1)
    #: Hard wall-clock limit of one answer check; a check past it is killed and scores 0 (counted in
    #: verify/timeouts).
    verify_timeout_s: float = param(10.0, exclusiveMinimum=0)


@dataclass(frozen=True)
class Params:
    """The single configuration of the study (params.yaml, optionally deep-merged with overlays such as
    configs/smoke.yaml). Every leaf has a default equal to its value in params.yaml."""

    study: StudyConfig = section(StudyConfig)
    #: Every arm the study can train, by name (see $defs/arm).
    arms: dict[str, ArmConfig] = param(
        DEFAULT_ARMS, json={"type": "object", "minProperties": 1, "propertyNames": ARM_NAME_REF,
              "additionalProperties": {"$ref": "#/$defs/arm"}})
    task: TaskConfig = section(TaskConfig)
    model: ModelConfig = section(ModelConfig)
    sft: SFTConfig = section(SFTConfig)
    rollout: RolloutConfig = section(RolloutConfig)
    rl: RLConfig = section(RLConfig)
    eval: EvalConfig = section(EvalConfig)
    theory: TheoryConfig = section(TheoryConfig)
    runtime: RuntimeConfig = section(RuntimeConfig)



SCHEMA_FILE = Path(__file__).with_name("params.schema.json")
SCHEMA_TITLE = "resetrl study parameters"


def generated_schema() -> dict[str, Any]:
    """The JSON Schema of params, from the dataclasses above (their fields, bounds and docs)."""
    return json_schema(Params, SCHEMA_TITLE, {"arm_name": ARM_NAME})


def schema_text() -> str:
    return json.dumps(generated_schema(), indent=2, ensure_ascii=False) + "\n"


@functools.cache
def load_schema() -> dict[str, Any]:
    """The JSON Schema of params, as committed (generated by `python -m resetrl.core.config schema`;
    editors validate params.yaml against the file). Cached: do not mutate."""
    return json.loads(resources.files("resetrl.core").joinpath("params.schema.json").read_text("utf-8"))


# --- reading YAML with locations ------------------------------------------------------------

KeyPath = tuple[str | int, ...]


class _Loc(NamedTuple):
    order: int  # index of the file in the load order, so later files sort (and win) later
    file: str
    line: int


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-4`` as a float (YAML 1.1 demands a dot: ``1.0e-4``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _dotted(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out or "<top level>"


def _record(node: yaml.Node, path: KeyPath, loc: _Loc, locs: dict[KeyPath, _Loc]) -> None:
    """Record the line of every key and list item under ``node``; reject duplicate keys."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue  # a complex key can only be an unknown key, reported at its parent
            sub = (*path, key_node.value)
            here = loc._replace(line=key_node.start_mark.line + 1)
            if key_node.value in seen:  # PyYAML would silently keep the last one
                raise ParamsError(f"{here.file}:{here.line}: {_dotted(sub)}: duplicate key")
            seen.add(key_node.value)
            locs[sub] = here
            _record(value_node, sub, loc, locs)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            locs[(*path, i)] = loc._replace(line=item.start_mark.line + 1)
            _record(item, (*path, i), loc, locs)


def _read(path: Path, order: int) -> tuple[dict[str, Any], dict[KeyPath, _Loc]]:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParamsError(f"{name}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ParamsError(f"{name}: cannot read: {e}") from None
    locs: dict[KeyPath, _Loc] = {}
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:  # empty file: no overrides
            return {}, locs
        _record(node, (), _Loc(order, name, 0), locs)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{name}:{mark.line + 1}" if mark else name
        raise ParamsError(f"{where}: invalid YAML: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise ParamsError(f"{name}: invalid YAML: {e}") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ParamsError(f"{name}:{node.start_mark.line + 1}: top level must be a mapping")
    return data, locs


def _read_override(item: str, order: int) -> tuple[dict[str, Any], dict[KeyPath, _Loc]]:
    """``rl.lr=1e-4`` -> ({"rl": {"lr": 1e-4}}, where each key was set); the value is YAML."""
    key, sep, text = item.partition("=")
    path = tuple(key.strip().split("."))
    if not sep or not all(part and not part.isspace() for part in path):
        raise ParamsError(f"override {item}: expected KEY=VALUE with a dotted key, e.g. rl.lr=1e-4")
    try:
        value = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        raise ParamsError(f"override {item}: invalid YAML value: {str(e).splitlines()[0]}") from None
    loc = _Loc(order, f"override {item}", 0)
    data: dict[str, Any] = {}
    node = data
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
    return data, {path[:n]: loc for n in range(1, len(path) + 1)}


def _merge(base: dict[str, Any], over: dict[str, Any], path: KeyPath, locs: dict[KeyPath, _Loc]) -> None:
    """Deep-merge ``over`` into ``base``: mappings recurse, anything else replaces."""
    for key, value in over.items():
        sub = (*path, key)
        if isinstance(base.get(key), dict) and isinstance(value, dict):
            _merge(base[key], value, sub, locs)
            continue
        base[key] = value
        for stale in [p for p in locs if p[: len(sub)] == sub]:  # lines of the replaced value
            del locs[stale]


def _fill_defaults(data: dict[str, Any], schema: dict[str, Any]) -> None:
    """Add the schema default of every key no file set, so overlays may stay partial."""
    for key, sub in schema.get("properties", {}).items():
        if key not in data:
            if "default" in sub:
                data[key] = copy.deepcopy(sub["default"])
            elif sub.get("type") == "object":  # a section: fill its keys
                data[key] = {}
        if isinstance(sub.get("additionalProperties"), dict) and isinstance(data.get(key), dict):
            _fill_collection(data[key], sub)
        elif isinstance(data.get(key), dict):
            _fill_defaults(data[key], sub)


def _fill_collection(entries: dict[str, Any], schema: dict[str, Any]) -> None:
    """A named collection (the arms): default entries a file did not name are kept, and each entry
    takes its missing keys from the default entry of that name, else from the shape's defaults."""
    default_entries = schema.get("default", {})
    for name, entry in default_entries.items():
        entries.setdefault(name, copy.deepcopy(entry))
    shape = _resolve(schema["additionalProperties"])
    for name, entry in entries.items():
        if isinstance(entry, dict):
            base = default_entries.get(name) or {k: p["default"] for k, p in shape["properties"].items()}
            for field_name, value in base.items():
                entry.setdefault(field_name, copy.deepcopy(value))


# --- validation -------------------------------------------------------------------------------


class _Problem(NamedTuple):
    loc: _Loc | None
    text: str

    def sort_key(self) -> tuple[float, float, str]:
        return (self.loc.order, self.loc.line, self.text) if self.loc else (math.inf, math.inf, self.text)

    def __str__(self) -> str:
        if not self.loc:
            return self.text
        return f"{self.loc.file}:{self.loc.line}: {self.text}" if self.loc.line else f"{self.loc.file}: {self.text}"


def _nearest(path: KeyPath, locs: dict[KeyPath, _Loc]) -> _Loc | None:
    """Where ``path`` or, for a default-filled value, its closest set ancestor was set."""
    for n in range(len(path), 0, -1):
        if path[:n] in locs:
            return locs[path[:n]]
    return None


def _schema_problems(data: dict[str, Any], locs: dict[KeyPath, _Loc]) -> Iterator[_Problem]:
    for err in jsonschema.Draft202012Validator(load_schema()).iter_errors(data):
        path = tuple(err.absolute_path)
        if err.validator == "additionalProperties":  # one problem per unknown key, at its line
            allowed = list(err.schema["properties"])
            for key in err.instance:
                if key not in allowed:
                    sub = (*path, key)
                    text = f"{_dotted(sub)}: unknown key (allowed: {', '.join(allowed)})"
                    yield _Problem(_nearest(sub, locs), text)
        else:
            yield _Problem(_nearest(path, locs), f"{_dotted(path)}: {err.message}")


def _non_finite(value: Any, path: KeyPath = ()) -> Iterator[KeyPath]:
    """Paths of nan/inf numbers: they pass every schema bound, as comparisons with nan are false."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _non_finite(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _non_finite(item, (*path, i))
    elif isinstance(value, float) and not math.isfinite(value):
        yield path


def _cross_checks(d: dict[str, Any]) -> list[tuple[tuple[str, ...], bool, str]]:
    """(keys involved, holds, explanation) for constraints the schema cannot express."""
    task, model, rl, ev, ro, study = d["task"], d["model"], d["rl"], d["eval"], d["rollout"], d["study"]
    unknown_arms = [m for m in (*study["methods"], *study["ablations"], *study["family"]) if m not in d["arms"]]
    batch = rl["prompts_per_step"] * rl["group_size"]
    budget = ro["max_thoughts"] * ro["max_thought_tokens"]
    procedural = task["source"] == "procedural"
    arms = {m: d["arms"][m] for m in (*study["methods"], *study["ablations"], *study["family"]) if m in d["arms"]}
    oracle_arms = [m for m, a in arms.items() if a["method"] == "process"
                   or a["method"] == "reset" and a["selector"] in ("oracle", "demo")]
    demo_2x4 = [m for m, a in arms.items()
                if a["method"] == "reset" and a["selector"] == "demo" and a["layout"] == "2x4"]
    return [
        (("study.methods", "study.ablations", "study.family"), not unknown_arms,
         f"study.methods / study.ablations / study.family name arms that `arms` does not define: {unknown_arms}"),
        (("task.min_steps", "task.max_steps"), task["min_steps"] <= task["max_steps"],
         f"task.min_steps ({task['min_steps']}) must be <= task.max_steps ({task['max_steps']})"),
        (("task.ood_min_steps", "task.ood_max_steps"), task["ood_min_steps"] <= task["ood_max_steps"],
         f"task.ood_min_steps ({task['ood_min_steps']}) must be <= task.ood_max_steps ({task['ood_max_steps']})"),
        (("task.value_max", "task.start_max"), task["value_max"] >= 2 * task["start_max"],
         f"task.value_max ({task['value_max']}) must be >= 2 * task.start_max ({2 * task['start_max']})"),
        (("task.op_weights",), any(w > 0 for w in task["op_weights"].values()),
         "at least one of task.op_weights must be positive"),
        (("task.ood_op_weights",), any(w > 0 for w in task["ood_op_weights"].values()),
         "at least one of task.ood_op_weights must be positive"),
        (("task.final_op_weights",), task["final_op_weights"] is None
         or any(w > 0 for w in task["final_op_weights"].values()),
         "at least one of task.final_op_weights must be positive (or null: the last operation mixes like the others)"),
        (("model.hidden_size", "model.num_heads"), model["hidden_size"] % model["num_heads"] == 0,
         f"model.hidden_size ({model['hidden_size']}) must be divisible by model.num_heads ({model['num_heads']})"),
        (("model.max_position_embeddings", "rollout.max_thoughts", "rollout.max_thought_tokens"),
         model["pretrained"] is not None or model["max_position_embeddings"] >= budget + 128,
         f"model.max_position_embeddings ({model['max_position_embeddings']}) must cover the response "
         f"budget rollout.max_thoughts * rollout.max_thought_tokens ({budget}) plus 128 prompt tokens"),
        (("rl.minibatches", "rl.prompts_per_step", "rl.group_size"), batch % rl["minibatches"] == 0,
         f"rl.prompts_per_step * rl.group_size ({batch}) must be divisible by rl.minibatches ({rl['minibatches']})"),
        (("task.source", "study.methods", "study.ablations", "study.family"), procedural or not oracle_arms,
         f"arms {oracle_arms} use the oracle or demo selector or process rewards, which need the procedural task's "
         f"step checker and solutions; task.source is {task['source']!r}"),
        (("arms",), not demo_2x4,
         f"arms {demo_2x4}: the demo selector has one reset per prompt; use layout 1x4 or 1x8"),
        (("task.source", "sft.steps"), procedural or d["sft"]["steps"] == 0,
         f"sft.steps ({d['sft']['steps']}) > 0 imitates procedural solutions; with task.source "
         f"{task['source']!r} set sft.steps: 0 (the paper starts RL from the instruct model)"),
        (("task.source", "task.eval_files"), procedural or bool(task["eval_files"]),
         f"task.source {task['source']!r} takes its ood split from task.eval_files (benchmark name: local "
         "file), which is empty: name at least one, e.g. eval_files: {math500: data/math500.jsonl}"),
        (("eval.n_samples", "eval.pass_k"), ev["n_samples"] >= max(ev["pass_k"]),
         f"eval.n_samples ({ev['n_samples']}) must be >= max(eval.pass_k) ({max(ev['pass_k'])})"),
    ]


def _cross_problems(data: dict[str, Any], locs: dict[KeyPath, _Loc]) -> Iterator[_Problem]:
    for keys, holds, text in _cross_checks(data):
        if holds:
            continue
        # Blame the involved key set last: it is the edit that broke the constraint.
        set_at = [(locs[tuple(k.split("."))], k) for k in keys if tuple(k.split(".")) in locs]
        loc, key = max(set_at) if set_at else (None, keys[0])
        yield _Problem(loc, f"{key}: {text}")


def _raise(problems: Iterable[_Problem]) -> None:
    ordered = sorted(problems, key=_Problem.sort_key)
    if ordered:
        raise ParamsError("\n".join(map(str, ordered)))


# --- building ---------------------------------------------------------------------------------


def _coerce(value: Any, schema: dict[str, Any]) -> Any:
    """Plain YAML value -> field value: ints of number fields become floats, lists tuples."""
    match schema.get("type"):
        case "number":
            return float(value)
        case "integer":
            return int(value)
        case "array":
            return tuple(_coerce(item, schema["items"]) for item in value)
        case "object":
            # Named properties, or a free-keyed map (additionalProperties: a schema).
            return {key: _coerce(item, schema.get("properties", {}).get(key) or schema["additionalProperties"])
                    for key, item in value.items()}
    return value


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """Follow a local `$ref` (e.g. "#/$defs/arm") to its definition."""
    if "$ref" not in schema:
        return schema
    node: Any = load_schema()
    for part in schema["$ref"].removeprefix("#/").split("/"):
        node = node[part]
    return node


def _build(cls: type, data: dict[str, Any], schema: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for field in dataclasses.fields(cls):
        sub, value = schema["properties"][field.name], data[field.name]
        hint = hints[field.name]
        if dataclasses.is_dataclass(hint):
            kwargs[field.name] = _build(hint, value, sub)
        elif typing.get_origin(hint) is dict and dataclasses.is_dataclass(typing.get_args(hint)[1]):
            # A named collection of sections (the arms): build each entry from the referenced schema.
            entry_cls, entry_schema = typing.get_args(hint)[1], _resolve(sub["additionalProperties"])
            kwargs[field.name] = {name: _build(entry_cls, entry, entry_schema) for name, entry in value.items()}
        else:
            kwargs[field.name] = _coerce(value, sub)
    return cls(**kwargs)


def load_params(paths: str | Path | Sequence[str | Path] = DEFAULT_PARAMS, overrides: Sequence[str] = ()) -> Params:
    """Load the base file and deep-merge later files, then ``KEY=VALUE`` overrides, over it; fill
    defaults, validate, build."""
    if isinstance(paths, (str, Path)):  # a lone path would otherwise iterate as characters
        paths = [paths]
    if not paths:
        raise ParamsError("no params file given")
    data: dict[str, Any] = {}
    locs: dict[KeyPath, _Loc] = {}
    sources = [(_read, Path(path)) for path in paths] + [(_read_override, item) for item in overrides]
    for order, (read, source) in enumerate(sources):
        over, over_locs = read(source, order)
        _merge(data, over, (), locs)
        locs.update(over_locs)
    _fill_defaults(data, load_schema())
    non_finite = (_Problem(_nearest(p, locs), f"{_dotted(p)}: must be finite") for p in _non_finite(data))
    _raise([*_schema_problems(data, locs), *non_finite])
    _raise(_cross_problems(data, locs))
    return _build(Params, data, load_schema())


class UndeclaredKeyError(AttributeError):
    """A stage read a params key it does not declare: its cache would not rerun when that key changes."""


class DeclaredParams:
    """The params a stage may read: its declared keys (``rl``, ``task.slip_rate``, ``arms.srpo``);
    reading any other key raises, so a stage cannot silently depend on a value its rerun triggers
    do not track. Attribute access mirrors :class:`Params`; a fully declared section is returned as is."""

    def __init__(self, value: Any, keys: Iterable[str], stage: str, path: str = ""):
        self._value, self._keys, self._stage, self._path = value, tuple(keys), stage, path

    def _child(self, name: str, value: Any) -> Any:
        path = f"{self._path}.{name}" if self._path else name
        if any(path == key or path.startswith(key + ".") for key in self._keys):
            return value
        if any(key.startswith(path + ".") for key in self._keys):
            return DeclaredParams(value, self._keys, self._stage, path)
        raise UndeclaredKeyError(f"stage {self._stage} reads params key {path}, which it does not declare "
                                 f"(declared: {', '.join(self._keys)}; see resetrl/stages/__init__.py)")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._child(name, getattr(self._value, name))

    def __getitem__(self, name: str) -> Any:  # a named collection: params.arms[method]
        return self._child(name, self._value[name])

    def __contains__(self, name: str) -> bool:  # which names a collection defines is not a value read
        return name in self._value

    def __repr__(self) -> str:
        return f"DeclaredParams({self._stage}: {', '.join(self._keys)})"


def params_to_dict(params: Params | DeclaredParams) -> dict[str, Any]:
    """Plain JSON-serialisable nested dict of ``params`` (tuples become lists), in schema order; of a
    stage's declared params, only its keys."""
    if isinstance(params, DeclaredParams):
        return select(_plain(params._value), params._keys)
    return _plain(params)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def select(params_dict: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """Nested sub-dict of ``params_dict`` holding only the dotted ``keys`` (e.g. "task", "rl.lr")."""
    out: dict[str, Any] = {}
    for key in keys:
        *parents, leaf = key.split(".")
        src, dst = params_dict, out
        for part in parents:
            src = src.get(part) if isinstance(src, dict) else None
            dst = dst.setdefault(part, {})
        if not isinstance(src, dict) or leaf not in src:
            raise KeyError(f"unknown params key: {key}")
        dst[leaf] = copy.deepcopy(src[leaf])
    return out


# --- command line ------------------------------------------------------------------------------


def add_params_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--params FILE`` (repeatable; None means params.yaml) to ``parser``."""
    parser.add_argument(
        "--params",
        action="append",
        metavar="FILE",
        help="params YAML; repeat to deep-merge overlays over the first (default: params.yaml)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one key after the files, e.g. --set rl.lr=1e-4 (the value is YAML; repeatable)",
    )


def params_from_args(args: argparse.Namespace) -> Params:
    return load_params(args.params or DEFAULT_PARAMS, args.set)


def regime_files(base: Sequence[str | Path], name: str) -> list[str]:
    """The params files of one regime-map setting (`study.regimes`): the study's, the map's reduced
    scale, the setting's overlay."""
    return [*map(str, base), "configs/regimes/scale.yaml", f"configs/regimes/{name}.yaml"]


def config_overrides(config: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Snakemake's ``--config rl='{lr: 1e-4}'`` (a nested mapping; Snakemake reads nested leaves as
    strings) -> ``["rl.lr=1e-4"]``, for ``load_params`` to read as YAML like any overlay."""
    items = []
    for key, value in config.items():
        if isinstance(value, Mapping):
            items += config_overrides(value, f"{prefix}{key}.")
        else:
            items.append(f"{prefix}{key}={_flow(value)}")
    return items


def _flow(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(_flow, value)) + "]"
    return json.dumps(value)


def results_root(files: Sequence[str | Path], overrides: Sequence[str], params: Params) -> str:
    """Where a configuration writes, so that none overwrites another's outputs: ``results/NAME`` for
    ``study.name``; else ``results`` for the values of the base file (also under overlays that change
    nothing), or ``results/NAME`` named after the overlays and overrides that change something."""
    if params.study.name:
        return f"results/{params.study.name}"
    if params_to_dict(params) == params_to_dict(load_params(files[:1])):
        return "results"
    name = "+".join([*(Path(f).stem for f in files[1:]), *overrides])
    return "results/" + re.sub(r"[^\w.=+-]", "_", name)


class _Dumper(yaml.SafeDumper):
    """Block-style sections with flow-style lists, like params.yaml."""


_Dumper.add_representer(list, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))


def dump_params(params: Params, sources: Sequence[str | Path]) -> str:
    """YAML text of ``params`` with a header naming the files it was generated from."""
    header = f"# Generated by `python -m resetrl.core.config merge` from {', '.join(map(str, sources))}; do not edit.\n"
    return header + yaml.dump(params_to_dict(params), Dumper=_Dumper, sort_keys=False, allow_unicode=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resetrl.core.config", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="validate params files (base first, then overlays)")
    check.add_argument("files", nargs="+", metavar="FILE")
    merge = commands.add_parser("merge", help="write the merged, default-filled, validated params")
    merge.add_argument("files", nargs="+", metavar="FILE")
    merge.add_argument("-o", "--output", required=True, type=Path, metavar="OUT")
    schema = commands.add_parser("schema", help=f"regenerate {SCHEMA_FILE.name} from the dataclasses")
    schema.add_argument("--check", action="store_true", help="write nothing; exit 1 if the file differs")
    args = parser.parse_args(argv)
    if args.command == "schema":
        return _write_schema(args.check)
    try:
        params = load_params(args.files)
    except ParamsError as e:
        print(e, file=sys.stderr)
        return 2
    if args.command == "merge":
        atomic_write_text(args.output, dump_params(params, args.files))
    else:
        print("ok")
    return 0


def _write_schema(check: bool) -> int:
    text = schema_text()
    if check:
        if SCHEMA_FILE.read_text(encoding="utf-8") != text:
            print(f"{SCHEMA_FILE} differs from the dataclasses: run `python -m resetrl.core.config schema`",
                  file=sys.stderr)
            return 1
        return 0
    atomic_write_text(SCHEMA_FILE, text)
    print(f"wrote {SCHEMA_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
