# Shared by every rule: the validated params, where this configuration writes, and each stage's inputs.
import os
import shlex
import sys
from pathlib import Path

from resetrl.core.config import (ROOT_PARAMS, ParamsError, config_overrides, dump_params, family_arms, load_params,
                                  params_to_dict, regime_files, results_root, select)
from resetrl.core.memory_plan import STAGES, plan_text, stage_gpus
from resetrl.core.storage import atomic_write_text
from resetrl.stages import snakemake_command, snakemake_paths, stage_code, stage_params, stage_table

STAGE_TABLE = stage_table()

# Params: params.yaml, then overlays (--configfile FILE ...), then `--config section='{key: value}'`
# overrides, validated before any job runs (errors name file:line or the override, and the key).


def configfile_flags(argv):
    """The files given to each --configfile / --configfiles flag of a command line, flag by flag."""
    flags, current = [], None
    for word in argv:
        name, _, value = word.partition("=")
        if name in ("--configfile", "--configfiles"):
            current = [value] if value else []
            flags.append(current)
        elif word.startswith("-"):
            current = None
        elif current is not None:
            current.append(word)
    return flags


# Snakemake keeps only the last --configfile flag: an earlier one's overlays would silently not apply.
if len(_flags := configfile_flags(sys.argv[1:])) > 1:
    print(f"error: --configfile given {len(_flags)} times; Snakemake keeps only the last "
          f"({' '.join(_flags[-1])}) and drops {' '.join(f for fl in _flags[:-1] for f in fl)}: give every overlay "
          f"to one flag, in order: --configfile {' '.join(f for fl in _flags for f in fl)}", file=sys.stderr)
    sys.exit(2)
PARAM_FILES = ["params.yaml", *(os.path.relpath(f) for f in workflow.overwrite_configfiles)]
OVERRIDES = config_overrides(workflow.config_settings.config or {})
try:
    PARAMS = load_params(PARAM_FILES, OVERRIDES)
except ParamsError as error:  # one line naming the file and key, no traceback, like the stages
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)
PARAMS_DICT = params_to_dict(PARAMS)
# The memory plan of the stages that load a model, once per invocation (on stderr); a stage whose estimate
# exceeds runtime.device_memory_gib refuses to start (resetrl.core.memory_plan, docs/cluster.md#memory-plan).
if workflow.is_main_process:
    print(plan_text(PARAMS), file=sys.stderr)
# The stage commands' params arguments, written into each command (a change of the values a stage
# reads reruns it: params_of).
PARAMS_ARGS = " ".join([*(f"--params {f}" for f in PARAM_FILES), *(f"--set {shlex.quote(o)}" for o in OVERRIDES)])
# results/ for the study of params.yaml; results/NAME (study.name) for any configuration that changes a value.
ROOT = results_root(PARAM_FILES, OVERRIDES, PARAMS)
METHODS = list(PARAMS.study.methods)
ABLATIONS = list(PARAMS.study.ablations)
FAMILY = family_arms(PARAMS)  # the family target's arms that this task can run (its table names the others)
SEEDS = list(PARAMS.study.seeds)
# GPUs of a model stage's job: one per data-parallel RL process (runtime.world_size) or one, plus a vLLM server's
# (rollout.engine vllm_server); none where models run on the CPU.
STAGE_GPUS = {stage: stage_gpus(PARAMS, stage) for stage in STAGES}
# The software of every rule (used with `--sdm conda`; CI installs the same pins with pip).
CONDA_ENV = "../../environment.yml"


def at(path):
    """A path under this configuration's results root."""
    return f"{ROOT}/{path}"


def _wrapped(stage, kind, root, overrides):
    entry = snakemake_paths(stage, kind, root, METHODS, SEEDS)
    return {name: overrides.get(name, directory(path) if is_dir and kind != "deps" else path)
            for name, (path, is_dir) in entry.items()}


def stage_inputs(stage, root=ROOT, **overrides):
    """A stage's inputs as the stage table (resetrl.stages) declares them, with its code; `overrides`
    replace inputs by name."""
    return {**_wrapped(stage, "deps", root, overrides), "code": stage_code(stage)}


def stage_outputs(stage, root=ROOT):
    """A stage's outputs as the stage table declares them (its figures in Snakemake's report)."""
    category = STAGE_TABLE[stage].report
    return {name: report(path, caption=f"../../{root}/captions/{Path(path).stem}.rst", category=category)
                  if category and str(path).endswith(".png") else path
            for name, path in _wrapped(stage, "outputs", root, {}).items()}


def stage_output(stage, name, root=ROOT):
    """One output of a stage, its `{method}` / `{seed}` wildcards left to fill (e.g. by expand)."""
    return snakemake_paths(stage, "outputs", root, ["{method}"], ["{seed}"])[name][0]

# A pretrained model this workflow builds (models.smk): the warm starts wait for it.
PRETRAINED = [PARAMS.model.pretrained] if (PARAMS.model.pretrained or "").startswith("results/models/") else []


def params_of(stage, method=None):
    """The values of the params keys a stage reads: a change to them (and only them) reruns the stage."""
    return select(PARAMS_DICT, stage_params(stage, method))


# The regime map's settings (workflow/rules/regimes.smk): each setting's params and values.
REGIMES = list(PARAMS.study.regimes)
REGIME_PARAMS = {r: load_params(regime_files(PARAM_FILES, r), OVERRIDES) for r in REGIMES}
REGIME_CONFIG = {r: params_to_dict(p) for r, p in REGIME_PARAMS.items()}
REGIME = at("regimes/{regime}")


def regime_params_of(stage):
    """The setting's values of the keys a stage reads (a training run: also its own arm)."""
    return lambda w: select(REGIME_CONFIG[w.regime], stage_params(stage, getattr(w, "method", None)))


# The designed errors (task.slip_rate, final_step_accuracy) are set by each seed's fine-tune, not by the
# shared skill or the problems: a setting that moves only them fine-tunes the study's own skill.
DESIGNED_ERRORS = ("slip_rate", "final_step_accuracy")


def regime_skill(w):
    """The skill a setting's warm starts fine-tune: the study's where the setting changes no key the skill
    reads and no task key but the designed errors, else the setting's own."""
    ours, study = REGIME_CONFIG[w.regime], PARAMS_DICT
    same_task = all(ours["task"][k] == v for k, v in study["task"].items() if k not in DESIGNED_ERRORS)
    same = same_task and select(ours, stage_params("skill")) == params_of("skill")
    return at("skill/model") if same else at(f"regimes/{w.regime}/skill/model")


def regime_runs(name):
    """Every file the map reads from one setting's runs."""
    study = REGIME_PARAMS[name].study
    return [path for f in ("history", "val_outcomes", "resets")
            for path in expand(stage_output("train", f, at(f"regimes/{name}")), method=study.methods, seed=study.seeds)]


def run_outputs(methods, names=("history", "val_outcomes")):
    """The named outputs of the training and evaluation runs of `methods` x the study's seeds."""
    train = [expand(stage_output("train", n), method=methods, seed=SEEDS) for n in names]
    evaluate = [expand(stage_output("evaluate", n), method=methods, seed=SEEDS) for n in ("metrics", "outcomes")]
    return [path for paths in (*train, *evaluate) for path in paths]
