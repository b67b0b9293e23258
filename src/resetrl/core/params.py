"""The study's parameters as frozen dataclasses: every key of params.yaml is declared once here, as a
field with its type, default, bounds (`param`) and the ``#:`` comment above it (its description in the
schema). Loading, merging and validating params.yaml is `resetrl.core.config`'s."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Literal

from resetrl.core.schema import param, section

# Enumerations, shared by the schema (enum) and the code (`choices(Selector)`).
Source = Literal["procedural", "numina", "reasoning_gym"]
Family = Literal["grpo", "reset", "vine", "process"]  # the registry of resetrl.rl.methods
Selector = Literal["random", "self", "oracle", "demo"]
Credit = Literal["step", "first_error"]
Layout = Literal["1x4", "2x4", "1x8"]
Loss = Literal["pg_seq_mean", "clip_token_mean", "clip_seq_mean_token_mean"]
Engine = Literal["torch", "vllm", "vllm_server"]
Device = Literal["auto", "cpu", "cuda"]
Dtype = Literal["auto", "float32", "bfloat16"]
ARM_NAME_REF = {"$ref": "#/$defs/arm_name"}  # an arm's name (ARM_NAME)
# study.name is one directory under results/: a plain name, never a path, `.`, `..` or a hidden name.
STUDY_NAME = "^[A-Za-z0-9_][A-Za-z0-9_.=+-]*$"

# Upper bounds of counts and sizes: generous, finite, so that a typo (rl.steps: 1e23) is refused, not run.
MAX_STEPS = 1_000_000  # optimizer steps, and the intervals between validations and saves
MAX_BATCH = 65_536  # sequences, prompts or examples per step / batch
MAX_TOKENS = 131_072  # tokens of a thought, an answer or a sequence
MAX_PROBLEMS = 10_000_000  # problems of a train split
MAX_EVAL_PROBLEMS = 1_000_000  # problems of an evaluated split
MAX_SAMPLES = 65_536  # samples per problem (pass@k)
MAX_CHAIN = 1_000  # operations of a procedural chain
MAX_VALUE = 1_000_000_000  # numbers of the procedural task
MAX_SEED = 2**31 - 1  # a seed (seeds are added to: their sums stay below numpy's 2**32)

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
    #: overrides. A plain directory name: letters, digits and _ . = + - (no path separator), not starting with a dot.
    name: str | None = param(None, pattern=STUDY_NAME, maxLength=100)
    #: RL arms trained by default (names from `arms`); each becomes one run per seed.
    methods: tuple[str, ...] = param(
        ("grpo", "grpo_pgseq", "rrpo", "srpo", "oracle", "demo", "oracle_1x8"), items=ARM_NAME_REF, minItems=1,
        uniqueItems=True)
    #: Opt-in ablation arms (names from `arms`), run by the `ablations` target.
    ablations: tuple[str, ...] = param(
        ("srpo_parent", "srpo_2x4", "srpo_1x8", "srpo_nomask", "srpo_clip", "srpo_clip_seq", "srpo_clip_kl"),
        items=ARM_NAME_REF, uniqueItems=True)
    #: Opt-in family of credit-assignment methods (names from `arms`; the first is the baseline), trained on these
    #: params and ranked by their compute-matched gain over it by the `family` target (results/tables/family.md);
    #: arms that need the step checker are left out (and named) where the task has none.
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
    seeds: tuple[int, ...] = param((0, 1, 2, 3, 4), items={"minimum": 0, "maximum": MAX_SEED}, minItems=1,
                                    maxItems=1000, uniqueItems=True)
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

    #: Its credit-assignment method's family (one file each in resetrl/rl/methods): grpo (one outcome advantage per
    #: chain), reset (the paper's reset buffer: RRPO, SRPO, the oracle, the positive control; see selector), vine
    #: (VinePPO: Monte-Carlo values at every thought), process (the step checker's per-thought rewards; see credit).
    family: Family = param("grpo")
    #: family reset: where to reset. random (RRPO), self (SRPO: the policy localizes the first error), oracle (the
    #: step checker's first error: the CPI-CARO upper bound), demo (the positive control: no failed parent; the
    #: prefix is the task's own correct solution cut at step e, e uniform over a window at the end of the chain that
    #: widens from the last thought to the whole chain over the run, R^3's reverse curriculum; procedural task only).
    selector: Selector = param("random")
    #: family reset: buffer layout per prompt: 1x4 (4 fresh + 4 suffixes of one parent), 2x4 (two parents, 4
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
    #: family reset, beyond the paper: train the failed parent(s) and every other fresh draw inside the base group
    #: (normalised together), so the reset buffer discards no sampled chain.
    parent_in_base: bool = param(False)
    #: family vine: continuations sampled from the state after each thought to estimate its value (VinePPO: 9; 2
    #: keeps a run of the default 8-step chains within ~8x GRPO's tokens).
    mc_rollouts: int = param(2, minimum=1, maximum=64)
    #: family process (procedural task only): step (the process oracle: z-scored per-thought rewards summed to go,
    #: DeepSeekMath's process supervision) or first_error (VPPO-style: a failed chain's prefix before its first
    #: error is credited like a correct chain, only the thoughts from the error on are penalised).
    credit: Credit = param("step")

# The arms of the study and its ablations: each differs from ArmConfig's defaults only as written.
DEFAULT_ARMS = {name: dataclasses.asdict(ArmConfig(**changes)) for name, changes in {
    "grpo": {"loss": "clip_token_mean"},
    "grpo_pgseq": {},
    "rrpo": {"family": "reset", "selector": "random"},
    "srpo": {"family": "reset", "selector": "self"},
    "oracle": {"family": "reset", "selector": "oracle"},
    "srpo_2x4": {"family": "reset", "selector": "self", "layout": "2x4"},
    "srpo_1x8": {"family": "reset", "selector": "self", "layout": "1x8", "localization_temperature": 0.0},
    "srpo_nomask": {"family": "reset", "selector": "self", "mask_prefix": False},
    "srpo_clip": {"family": "reset", "selector": "self", "loss": "clip_token_mean"},
    "srpo_clip_seq": {"family": "reset", "selector": "self", "loss": "clip_seq_mean_token_mean"},
    "srpo_clip_kl": {"family": "reset", "selector": "self", "loss": "clip_token_mean", "kl_coef": 0.05},
    "srpo_parent": {"family": "reset", "selector": "self", "parent_in_base": True},
    # Beyond the paper, on GRPO's loss: the positive control and the layouts the tabular model favours.
    "demo": {"family": "reset", "selector": "demo", "loss": "clip_token_mean"},
    "oracle_clip": {"family": "reset", "selector": "oracle", "loss": "clip_token_mean"},
    "oracle_1x8": {"family": "reset", "selector": "oracle", "layout": "1x8", "loss": "clip_token_mean"},
    "oracle_parent": {"family": "reset", "selector": "oracle", "parent_in_base": True, "loss": "clip_token_mean"},
    "srpo_1x8_clip": {"family": "reset", "selector": "self", "layout": "1x8", "loss": "clip_token_mean",
                      "localization_temperature": 0.0},
    "rrpo_1x8_clip": {"family": "reset", "selector": "random", "layout": "1x8", "loss": "clip_token_mean"},
    # The family (`snakemake --cores all family`), on GRPO's loss: per-token credit beside the resets.
    "vineppo": {"family": "vine", "loss": "clip_token_mean"},
    "process_oracle": {"family": "process", "credit": "step", "loss": "clip_token_mean"},
    "first_error_credit": {"family": "process", "credit": "first_error", "loss": "clip_token_mean"},
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
    n_train: int = param(400, minimum=1, maximum=MAX_PROBLEMS)
    #: Filtered problems in the test split (paper: 100); task.n_val more follow them as the validation split.
    n_test: int = param(100, minimum=1, maximum=MAX_PROBLEMS)
    #: Shuffle seed of the filtered rows (paper: 42).
    seed: int = param(42, minimum=0, maximum=MAX_SEED)


@dataclass(frozen=True)
class ReasoningGymConfig:
    """task.source reasoning_gym: problems of these generators, task.n_train / n_val / n_test of them, spread evenly."""

    #: reasoning-gym dataset names.
    datasets: tuple[str, ...] = param(
        ("chain_sum", "basic_arithmetic", "gsm_symbolic", "countdown"), minItems=1, items={"minLength": 1})
    #: Seed of the train split; reasoning-gym draws item i from seed + i, so val and test start their seeds after
    #: the previous split's (no shared items).
    seed: int = param(0, minimum=0, maximum=MAX_SEED)


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
    seed: int = param(1234, minimum=0, maximum=MAX_SEED)
    #: Problems in the train split; feeds SFT and RL.
    n_train: int = param(20000, minimum=1, maximum=MAX_PROBLEMS)
    #: Problems in the validation split; drives the learning curves.
    n_val: int = param(256, minimum=1, maximum=MAX_EVAL_PROBLEMS)
    #: Problems in the test split; only touched by the evaluation stage.
    n_test: int = param(512, minimum=1, maximum=MAX_EVAL_PROBLEMS)
    #: Problems in the out-of-distribution split; only touched by the evaluation stage.
    n_ood: int = param(128, minimum=1, maximum=MAX_EVAL_PROBLEMS)
    #: In-distribution chain length (operations per problem), inclusive lower bound.
    min_steps: int = param(8, minimum=1, maximum=MAX_CHAIN)
    #: In-distribution chain length (operations per problem), inclusive upper bound.
    max_steps: int = param(8, minimum=1, maximum=MAX_CHAIN)
    #: Out-of-distribution chain length, inclusive lower bound: longer chains than anything seen in training.
    ood_min_steps: int = param(10, minimum=1, maximum=MAX_CHAIN)
    #: Out-of-distribution chain length, inclusive upper bound.
    ood_max_steps: int = param(10, minimum=1, maximum=MAX_CHAIN)
    #: Start value is drawn from [10, start_max].
    start_max: int = param(15, minimum=10, maximum=MAX_VALUE)
    #: Operands of + and - are drawn from [1, addend_max].
    addend_max: int = param(5, minimum=1, maximum=MAX_VALUE)
    #: Multipliers are drawn from [2, multiplier_max].
    multiplier_max: int = param(4, minimum=2, maximum=MAX_VALUE)
    #: Every intermediate value stays in [0, value_max]; must be >= 2 * start_max.
    value_max: int = param(40, minimum=1, maximum=MAX_VALUE)
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
    hidden_size: int = param(64, minimum=1, maximum=65536)
    #: Number of transformer blocks.
    num_layers: int = param(3, minimum=1, maximum=1024)
    #: Attention heads per block.
    num_heads: int = param(2, minimum=1, maximum=1024)
    #: Hidden width of the MLP.
    intermediate_size: int = param(128, minimum=1, maximum=262144)
    #: Longest sequence (prompt + response tokens) the model is configured for.
    max_position_embeddings: int = param(512, minimum=1, maximum=MAX_TOKENS)
    #: Seed of the random initialisation.
    init_seed: int = param(0, minimum=0, maximum=MAX_SEED)


@dataclass(frozen=True)
class SFTConfig:
    """Warm start: next-token loss on correct solution chains (response tokens only)."""

    #: Optimizer steps of the warm start; 0 skips it (the paper's setting: RL starts from the instruct model, which
    #: is then only evaluated). With skill_steps, the steps of each seed's fine-tune of the shared skill.
    steps: int = param(400, minimum=0, maximum=MAX_STEPS)
    #: Steps of the shared skill (stage skill): one model trained once on correct demonstrations (no slips, no hard
    #: step), from which every seed's warm start fine-tunes sft.steps steps on the designed demonstrations (slips,
    #: the hard step): the arithmetic is learned to convergence once, and the seeds differ only in the fine-tune that
    #: sets their error profile. 0: no shared skill; each seed imitates from its own initialisation.
    skill_steps: int = param(5000, minimum=0, maximum=MAX_STEPS)
    #: The shared skill stops early, at the first validation (every sft.eval_every steps) whose greedy pass@1 reaches
    #: this: converged, not a step count (skill_steps is then a cap).
    skill_target: float = param(0.98, minimum=0.0, maximum=1.0)
    #: Peak AdamW learning rate of the shared skill (sft.lr is the fine-tune's, or the whole warm start's without one).
    skill_lr: float = param(0.005, exclusiveMinimum=0, maximum=1.0)
    #: Solution chains per optimizer step.
    batch_size: int = param(32, minimum=1, maximum=MAX_BATCH)
    #: Synthetic localization examples per optimizer step, on top of the chains: a correct chain with one thought
    #: corrupted (later thoughts carried forward), target \boxed{first error}. They stand in for the instruct tuning
    #: of the paper's models. Their prompts are ~4x longer than a chain, so they dominate the step's cost.
    localization_batch_size: int = param(4, minimum=0, maximum=MAX_BATCH)
    #: Peak AdamW learning rate.
    lr: float = param(0.001, exclusiveMinimum=0, maximum=1.0)
    #: AdamW weight decay.
    weight_decay: float = param(0.01, minimum=0)
    #: Linear learning-rate warmup steps.
    warmup_steps: int = param(20, minimum=0, maximum=MAX_STEPS)
    #: Gradient-norm clipping threshold.
    grad_clip: float = param(1.0, exclusiveMinimum=0)
    #: Share of the SFT loss given to the localization examples (each task is a token mean of its own; a shared
    #: token mean would give localization's one-token targets ~1% of the signal).
    localization_weight: float = param(0.25, minimum=0, maximum=1)
    #: Validation greedy accuracy is measured every eval_every steps (and at the end).
    eval_every: int = param(250, minimum=1, maximum=MAX_STEPS)
    #: Seed of the warm start (initial data order).
    seed: int = param(0, minimum=0, maximum=MAX_SEED)


@dataclass(frozen=True)
class RolloutConfig:
    """Sampling settings shared by RL rollouts and sampled evaluation."""

    #: Rollout engine: torch (static-KV PyTorch sampler with prefix sharing; the CPU default, Llama/Qwen2 models),
    #: vllm (vLLM in the trainer's process and device, prefix caching, weight sync after every update; needs the
    #: vllm extra) or vllm_server (a vLLM server on GPUs of its own, following the trainer's LoRA adapters).
    engine: Engine = param("torch")
    #: vllm engines: fraction of accelerator memory vLLM may take (weights + KV cache): with vllm the trainer needs
    #: the rest of its device; with vllm_server, of each of the server's GPUs.
    vllm_gpu_memory_utilization: float = param(0.3, exclusiveMinimum=0, maximum=1)
    #: vllm_server engine: "" starts a server for each stage on vllm_server_gpus GPUs after the trainer's (the job
    #: asks the scheduler for them); else the URL of a running server on this node (docs/cluster.md).
    vllm_server_url: str = param("")
    #: vllm_server engine: GPUs of a server the stage starts (its tensor-parallel size).
    vllm_server_gpus: int = param(1, minimum=1, maximum=64)
    #: Sampling temperature (paper: 0.7).
    temperature: float = param(1.0, exclusiveMinimum=0)
    #: Nucleus-sampling probability mass, in (0, 1] (paper: 0.95).
    top_p: float = param(1.0, exclusiveMinimum=0, maximum=1)
    #: A chain ends at the thought holding \boxed{, after max_thoughts thoughts, or when the next thought could
    #: overflow the response budget (max_thoughts * max_thought_tokens tokens). Paper: 20.
    max_thoughts: int = param(12, minimum=1, maximum=1024)
    #: Token budget of one thought (paper: 256; our thoughts are ~12 characters).
    max_thought_tokens: int = param(32, minimum=1, maximum=MAX_TOKENS)
    #: Sequences sampled together in one batch.
    batch_size: int = param(128, minimum=1, maximum=MAX_BATCH)


@dataclass(frozen=True)
class LoraConfig:
    """LoRA adapters (peft) trained instead of the full model (paper: rank 64, alpha 64, all linear layers).
    Checkpoints hold the adapter; the run's final model is merged."""

    #: Adapter rank; 0 trains every parameter (no LoRA).
    rank: int = param(0, minimum=0, maximum=16384)
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
    steps: int = param(50, minimum=1, maximum=MAX_STEPS)
    #: Prompts per step (paper: 32).
    prompts_per_step: int = param(8, minimum=1, maximum=MAX_BATCH)
    #: Rollouts per prompt (paper: 8); group-relative advantages need at least 2.
    group_size: int = param(8, minimum=2, maximum=1024)
    #: AdamW learning rate (paper: 5e-5 with LoRA on 7B/14B models; the default study's sweep over 1e-5 / 3e-5 /
    #: 1e-4 picked 1e-5, docs/regime_search.md).
    lr: float = param(3e-05, exclusiveMinimum=0, maximum=1.0)
    #: AdamW weight decay.
    weight_decay: float = param(0.01, minimum=0)
    #: Gradient-norm clipping threshold.
    grad_clip: float = param(1.0, exclusiveMinimum=0)
    #: One epoch over each step's rollouts in this many minibatch updates (paper: 4); must divide prompts_per_step *
    #: group_size.
    minibatches: int = param(4, minimum=1, maximum=MAX_BATCH)
    #: PPO clipped surrogate: ratio clip epsilon, in (0, 1) (paper: 0.2).
    clip_eps: float = param(0.2, exclusiveMinimum=0, exclusiveMaximum=1)
    #: PPO dual clip for negative advantages, > 1 (paper: 3).
    dual_clip: float = param(3.0, exclusiveMinimum=1)
    #: Reset arms: fresh chains drawn per prompt at most while looking for failed parents (paper: 12).
    max_draws: int = param(12, minimum=1, maximum=1024)
    #: Token budget of one SRPO localization answer (paper: 4096 for free-form text; here the answer is \boxed{N}).
    localization_max_tokens: int = param(16, minimum=4, maximum=MAX_TOKENS)
    #: Held-out localization accuracy (fixed failed chains built from val) every loc_eval_every steps and after the
    #: last.
    loc_eval_every: int = param(20, minimum=1, maximum=MAX_STEPS)
    #: Number of held-out failed chains behind the localization accuracy.
    loc_eval_problems: int = param(128, minimum=1, maximum=MAX_EVAL_PROBLEMS)
    #: Validation greedy accuracy every eval_every steps (and at steps 0 and the last).
    eval_every: int = param(10, minimum=1, maximum=MAX_STEPS)
    #: Checkpoint every save_every steps; an interrupted run resumes from the last one.
    save_every: int = param(10, minimum=1, maximum=MAX_STEPS)
    lora: LoraConfig = section(LoraConfig)


@dataclass(frozen=True)
class EvalConfig:
    """Final evaluation on the test and ood splits."""

    #: Sampled pass@k is reported for each k (unbiased estimator).
    pass_k: tuple[int, ...] = param((1, 2), items={"minimum": 1, "maximum": MAX_SAMPLES}, minItems=1,
                                     uniqueItems=True)
    #: Samples per problem behind the pass@k estimates; must be >= max(pass_k).
    n_samples: int = param(2, minimum=1, maximum=MAX_SAMPLES)


@dataclass(frozen=True)
class TheoryConfig:
    """The CPI theory check: CPI with random resets vs an improvability oracle on a tabular thought tree (stage
    cpi_theory, seconds)."""

    #: On-policy probabilities p of reaching the improvable state (the x axis).
    p_values: tuple[float, ...] = param(
        (0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0), items={"exclusiveMinimum": 0, "maximum": 1}, minItems=2,
        uniqueItems=True)
    #: Single-sample advantage estimates per p and method (enough that the smallest p's estimate is resolved).
    mc_samples: int = param(2000000, minimum=1000, maximum=100_000_000)
    #: Random seed of the simulation.
    seed: int = param(0, minimum=0, maximum=MAX_SEED)
    #: Success-probability gain of the good action at the improvable state.
    tau: float = param(0.5, exclusiveMinimum=0, maximum=0.7)
    #: Current policy's probability of the good action at the improvable state.
    good_action_prob: float = param(0.2, minimum=0, exclusiveMaximum=1)
    #: Actions per state |Y|.
    n_actions: int = param(4, minimum=2, maximum=1024)
    #: Steps H of the tree.
    horizon: int = param(4, minimum=2, maximum=1024)
    #: The tabular prediction (stage predict, resetrl.analysis.tabular; rl.steps SGD steps per simulated run): its
    #: learning rate on the shared position logits. It sets how far a run gets: 1.0 matches the default network's
    #: GRPO curve (sampled pass@1 0.07 -> 0.6 in 20 steps), so the prediction is the gain at the network's pace.
    tabular_lr: float = param(1.0, exclusiveMinimum=0)
    #: Simulations per arm, paired by seed: the predicted gain's standard error and the MDE at study.seeds.
    tabular_seeds: int = param(8, minimum=2, maximum=10_000)


@dataclass(frozen=True)
class RuntimeConfig:
    """Execution resources of each job."""

    #: torch threads per job. Two 1-thread jobs beat one 2-thread job on small CPUs.
    threads: int = param(1, minimum=1, maximum=1024)
    #: Where models run: auto (cuda when available, else cpu), cpu or cuda.
    device: Device = param("auto")
    #: Model weights: auto (bfloat16 on GPU, float32 on CPU, where bfloat16 is ~100x slower), float32 or bfloat16.
    dtype: Dtype = param("auto")
    #: Memory of one device (GiB, as torch.cuda.mem_get_info reports it; an 80 GB H100 / A100: 79): the stages that
    #: load a model (sft, train, evaluate) refuse, before any compute, a config whose memory plan
    #: (`python -m resetrl.core.memory_plan`) exceeds it. 0 = unknown: the plan is printed, nothing is refused.
    device_memory_gib: float = param(0.0, minimum=0, maximum=65536)
    #: Sequences per forward / backward pass in RL updates; gradients accumulate to the minibatch (exactly: each
    #: part is weighted by its share of the tokens or sequences). 0 = the whole minibatch at once; a 7B-14B model
    #: needs a few.
    micro_batch_size: int = param(0, minimum=0, maximum=MAX_BATCH)
    #: Recompute each layer's activations in the backward pass of an RL update instead of keeping them
    #: (transformers' gradient checkpointing): one hidden state per layer and token is kept, for about a third
    #: more update time. The update itself is unchanged.
    activation_checkpointing: bool = param(False)
    #: Data-parallel processes of one RL run (torch.distributed; launched with torchrun, or srun on SLURM): each
    #: samples its share of rl.prompts_per_step with its own engine, and DDP averages the gradients. 1 = one process.
    world_size: int = param(1, minimum=1, maximum=1024)
    #: Worker processes checking answers of real-data sources (math-verify, reasoning-gym scorers).
    verify_workers: int = param(2, minimum=1, maximum=1024)
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
