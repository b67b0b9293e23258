# Shared by every rule: the validated params, where this configuration writes, and each stage's inputs.
import os
import shlex
import sys

from resetrl.core.config import ParamsError, config_overrides, load_params, params_to_dict, regime_files, results_root, select
from resetrl.stages import snakemake_command, stage_code, stage_params

# Params: params.yaml, then overlays (--configfile FILE ...), then `--config section='{key: value}'`
# overrides, validated before any job runs (errors name file:line or the override, and the key).
PARAM_FILES = ["params.yaml", *(os.path.relpath(f) for f in workflow.overwrite_configfiles)]
OVERRIDES = config_overrides(workflow.config_settings.config or {})
try:
    PARAMS = load_params(PARAM_FILES, OVERRIDES)
except ParamsError as error:  # one line naming the file and key, no traceback, like the stages
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)
PARAMS_DICT = params_to_dict(PARAMS)
# The stage commands' params arguments. The shell templates read it as a global, so which files
# were given never reruns a job: the values a stage reads do (params_of).
PARAMS_ARGS = " ".join([*(f"--params {f}" for f in PARAM_FILES), *(f"--set {shlex.quote(o)}" for o in OVERRIDES)])
# results/ for the study of params.yaml; results/NAME (study.name) for any configuration that changes a value.
ROOT = results_root(PARAM_FILES, OVERRIDES, PARAMS)
METHODS = list(PARAMS.study.methods)
ABLATIONS = list(PARAMS.study.ablations)
FAMILY = list(PARAMS.study.family)
SEEDS = list(PARAMS.study.seeds)
# The software of every rule (used with `--sdm conda`; CI installs the same pins with pip).
CONDA_ENV = "../../environment.yml"


def at(path):
    """A path under this configuration's results root."""
    return f"{ROOT}/{path}"

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
    return [at(f"regimes/{name}/runs/{m}/seed{s}/{f}") for m in study.methods for s in study.seeds
            for f in ("history.json", "val_outcomes.json", "resets.jsonl")]
