"""The study's single configuration: params.yaml (+ overlays), validated, as frozen dataclasses.

``load_params(["params.yaml", "configs/smoke.yaml"])`` deep-merges the overlays over the base,
fills missing keys from the schema defaults (params.schema.json), validates, and returns
:class:`Params`. Errors name the file, line and dotted key. CLI::

    python -m resetrl.core.config check params.yaml [overlay.yaml ...]
    python -m resetrl.core.config merge params.yaml configs/smoke.yaml -o OUT.yaml
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
from typing import Any, NamedTuple

import jsonschema
import yaml

from resetrl.core.storage import atomic_write_text

DEFAULT_PARAMS: tuple[str, ...] = ("params.yaml",)


class ParamsError(ValueError):
    """Invalid or unreadable params; the message names file, line and dotted key where known."""


@dataclass(frozen=True)
class StudyConfig:
    name: str | None  #: names the results root results/NAME/ (null: results/, or derived from the overlays).
    methods: tuple[str, ...]  #: arms trained by default, one run per seed each.
    ablations: tuple[str, ...]  #: opt-in ablation arms (the `ablations` target).
    regimes: tuple[str, ...]  #: settings of the opt-in regime map (configs/regimes/NAME.yaml).
    seeds: tuple[int, ...]  #: one replicate per seed (own warm start, RL sampling, data order) and method.
    alpha: float  #: significance level of the paired comparisons (two-sided intervals, MDE at 80% power).
    min_effect: float  #: smallest effect of interest (accuracy points) for "not reproduced" and ties.


@dataclass(frozen=True)
class ArmConfig:
    selector: str  #: none (GRPO) | random (RRPO) | self (SRPO) | oracle (exact first error).
    layout: str  #: reset buffer layout: 1x4 | 2x4 | 1x8.
    loss: str  #: pg_seq_mean | clip_token_mean | clip_seq_mean_token_mean.
    mask_prefix: bool  #: reset groups train on their suffix only.
    kl_coef: float  #: k3 KL penalty towards the warm start.
    localization_temperature: float  #: SRPO localization sampling temperature (0 = greedy).
    parent_in_base: bool  #: beyond the paper: failed parents train inside the base group.


@dataclass(frozen=True)
class NuminaConfig:
    path: str | None  #: local parquet / JSONL copy; None loads it with `datasets` (online).
    subset: str  #: rows' `source` value to keep (paper: olympiads).
    n_train: int  #: filtered problems for training (paper: 400).
    n_test: int  #: filtered problems for testing (paper: 100); task.n_val more follow as validation.
    seed: int  #: shuffle seed (paper: 42).


@dataclass(frozen=True)
class ReasoningGymConfig:
    datasets: tuple[str, ...]  #: reasoning-gym dataset names.
    seed: int  #: train seed; val and test seeds follow the previous split's.


@dataclass(frozen=True)
class TaskConfig:
    source: str  #: procedural | numina | reasoning_gym.
    numina: NuminaConfig  #: task.source numina.
    reasoning_gym: ReasoningGymConfig  #: task.source reasoning_gym.
    eval_files: dict[str, str]  #: benchmark name -> local file; the ood split of real-data sources.
    seed: int  #: seed of the problem generator; fixes every split.
    n_train: int  #: problems in the train split (SFT and RL).
    n_val: int  #: problems in the validation split (learning curves).
    n_test: int  #: problems in the test split (evaluation only).
    n_ood: int  #: problems in the out-of-distribution split (evaluation only).
    min_steps: int  #: in-distribution chain length, inclusive lower bound.
    max_steps: int  #: in-distribution chain length, inclusive upper bound.
    ood_min_steps: int  #: OOD chain length, inclusive lower bound.
    ood_max_steps: int  #: OOD chain length, inclusive upper bound.
    start_max: int  #: start value in [10, start_max].
    addend_max: int  #: +/- operands in [1, addend_max].
    multiplier_max: int  #: multipliers in [2, multiplier_max].
    value_max: int  #: every intermediate value stays in [0, value_max].
    op_weights: dict[str, float]  #: relative frequency per operation; absent means 0.
    ood_op_weights: dict[str, float]  #: op frequencies of the ood split.
    final_op_weights: dict[str, float] | None  #: op mix of each chain's last operation (None: op_weights).
    surface_forms: int  #: written forms a warm-start thought may take (task.FORMS).
    slip_rate: float  #: chance a warm-start demonstration thought states an off-by-one result.


@dataclass(frozen=True)
class ModelConfig:
    pretrained: str | None  #: hub name or local path; None builds the tiny model below.
    hidden_size: int  #: residual width.
    num_layers: int  #: transformer blocks.
    num_heads: int  #: attention heads per block.
    intermediate_size: int  #: MLP hidden width.
    max_position_embeddings: int  #: longest sequence the model is configured for.
    init_seed: int  #: seed of the random initialisation.


@dataclass(frozen=True)
class SFTConfig:
    steps: int  #: optimizer steps.
    batch_size: int  #: solution chains per step.
    localization_batch_size: int  #: synthetic localization examples per step, on top.
    lr: float  #: peak AdamW learning rate.
    weight_decay: float  #: AdamW weight decay.
    warmup_steps: int  #: linear warmup steps.
    grad_clip: float  #: gradient-norm clip.
    localization_weight: float  #: share of the loss given to self-localization.
    eval_every: int  #: validation accuracy period (and at the end).
    seed: int  #: data-order seed.


@dataclass(frozen=True)
class RolloutConfig:
    engine: str  #: torch or vllm.
    vllm_gpu_memory_utilization: float  #: accelerator memory share of the vllm engine.
    temperature: float  #: sampling temperature.
    top_p: float  #: nucleus mass in (0, 1].
    max_thoughts: int  #: thoughts per chain at most.
    max_thought_tokens: int  #: token budget of one thought.
    batch_size: int  #: sequences sampled together.


@dataclass(frozen=True)
class LoraConfig:
    rank: int  #: adapter rank; 0 trains every parameter.
    alpha: float  #: scale = alpha / rank.
    dropout: float  #: dropout on the adapter input.
    target_modules: str | tuple[str, ...]  #: "all-linear" or module names.


@dataclass(frozen=True)
class RLConfig:
    steps: int  #: optimizer steps per run.
    prompts_per_step: int  #: prompts per step.
    group_size: int  #: rollouts per prompt.
    lr: float  #: AdamW learning rate.
    weight_decay: float  #: AdamW weight decay.
    grad_clip: float  #: gradient-norm clip.
    minibatches: int  #: minibatch updates per step (one epoch).
    clip_eps: float  #: PPO ratio clip.
    dual_clip: float  #: PPO dual clip for negative advantages.
    max_draws: int  #: reset arms: fresh draws per prompt at most while looking for failures.
    localization_max_tokens: int  #: token budget of one localization answer.
    loc_eval_every: int  #: held-out localization accuracy period (and after the last step).
    loc_eval_problems: int  #: held-out failed chains behind that accuracy.
    eval_every: int  #: validation accuracy period (and at 0 and the last step).
    save_every: int  #: checkpoint period.
    lora: LoraConfig  #: LoRA adapters instead of full fine-tuning (rank 0).


@dataclass(frozen=True)
class EvalConfig:
    pass_k: tuple[int, ...]  #: k values of the reported pass@k.
    n_samples: int  #: samples per problem behind pass@k.


@dataclass(frozen=True)
class TheoryConfig:
    p_values: tuple[float, ...]  #: on-policy probabilities of reaching the improvable state.
    mc_samples: int  #: single-sample advantage estimates per p and method.
    seed: int  #: random seed of the simulation.
    tau: float  #: success gain of the good action at the improvable state.
    good_action_prob: float  #: current policy's probability of that action.
    n_actions: int  #: actions per state |Y|.
    horizon: int  #: steps H.


@dataclass(frozen=True)
class RuntimeConfig:
    threads: int  #: torch threads per job.
    device: str  #: auto | cpu | cuda.
    dtype: str  #: auto (bf16 on GPU, fp32 on CPU) | float32 | bfloat16.
    micro_batch_size: int  #: sequences per forward / backward pass in RL updates (0 = whole minibatch).
    verify_workers: int  #: answer-checking worker processes (real-data sources).
    verify_timeout_s: float  #: hard limit of one answer check.


@dataclass(frozen=True)
class Params:
    study: StudyConfig
    arms: dict[str, ArmConfig]
    task: TaskConfig
    model: ModelConfig
    sft: SFTConfig
    rollout: RolloutConfig
    rl: RLConfig
    eval: EvalConfig
    theory: TheoryConfig
    runtime: RuntimeConfig


@functools.cache
def load_schema() -> dict[str, Any]:
    """The JSON Schema of params (cached: do not mutate)."""
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
    unknown_arms = [m for m in (*study["methods"], *study["ablations"]) if m not in d["arms"]]
    batch = rl["prompts_per_step"] * rl["group_size"]
    budget = ro["max_thoughts"] * ro["max_thought_tokens"]
    procedural = task["source"] == "procedural"
    oracle_arms = [m for m in (*study["methods"], *study["ablations"])
                   if m in d["arms"] and d["arms"][m]["selector"] == "oracle"]
    return [
        (("study.methods", "study.ablations"), not unknown_arms,
         f"study.methods / study.ablations name arms that `arms` does not define: {unknown_arms}"),
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
        (("task.source", "study.methods", "study.ablations"), procedural or not oracle_arms,
         f"arms {oracle_arms} use the oracle selector, which needs the procedural task's step checker; "
         f"task.source is {task['source']!r}"),
        (("task.source", "sft.steps"), procedural or d["sft"]["steps"] == 0,
         f"sft.steps ({d['sft']['steps']}) > 0 imitates procedural solutions; with task.source "
         f"{task['source']!r} set sft.steps: 0 (the paper starts RL from the instruct model)"),
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


def params_to_dict(params: Params) -> dict[str, Any]:
    """Plain JSON-serialisable nested dict of ``params`` (tuples become lists), in schema order."""
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
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
