# Shared by every rule: the validated params, the param-file arguments and each stage's inputs.
import os

from resetrl.config import load_params, select
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
