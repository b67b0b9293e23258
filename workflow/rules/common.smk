# Shared by every rule: the validated params, the param-file arguments and each stage's inputs.
import os

from resetrl.config import load_params, params_to_dict, regime_files, select
from resetrl.stages import stage_code, stage_params

if workflow.config_settings.config:
    raise ValueError("override params with an overlay file (--configfile FILE), not --config: "
                     "every stage reads its params from files, so --config would be ignored")

# Validated against the schema before any job runs; errors name file:line and the key.
# Overlays are passed on as given, relative to the working directory where possible.
PARAM_FILES = ["params.yaml", *(os.path.relpath(f) for f in workflow.overwrite_configfiles)]
PARAMS = load_params(PARAM_FILES)
PARAMS_ARGS = " ".join(f"--params {f}" for f in PARAM_FILES)
METHODS = list(PARAMS.study.methods)
ABLATIONS = list(PARAMS.study.ablations)
SEEDS = list(PARAMS.study.seeds)
# The software of every rule (used with `--sdm conda`; CI installs the same pins with pip).
CONDA_ENV = "../../environment.yml"


def params_of(stage, method=None):
    """The config keys a stage reads: a change to them (and only them) reruns the stage."""
    return select(config, stage_params(stage, method))


# The regime map's settings (workflow/rules/regimes.smk): each setting's params files and values.
REGIMES = list(PARAMS.study.regimes)
# Validated before any job runs, like the study's params (errors name file:line and the key).
REGIME_PARAMS = {r: load_params(regime_files(PARAM_FILES, r)) for r in REGIMES}
REGIME_CONFIG = {r: params_to_dict(p) for r, p in REGIME_PARAMS.items()}
REGIME = "results/regimes/{regime}"


def regime_args(w):
    return " ".join(f"--params {f}" for f in regime_files(PARAM_FILES, w.regime))


def regime_params_of(stage):
    """The setting's values of the keys a stage reads (a training run: also its own arm)."""
    return lambda w: select(REGIME_CONFIG[w.regime], stage_params(stage, getattr(w, "method", None)))


def regime_runs(name):
    """Every file the map reads from one setting's runs."""
    study = REGIME_PARAMS[name].study
    return [f"results/regimes/{name}/runs/{m}/seed{s}/{f}" for m in study.methods for s in study.seeds
            for f in ("history.json", "val_outcomes.json", "resets.jsonl")]
