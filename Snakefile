# The workflow's wiring; rules live in workflow/rules/, one module per stage.
# Overlays: `snakemake --cores all --configfile configs/smoke.yaml` (applied over params.yaml).
configfile: "params.yaml"


include: "workflow/rules/common.smk"


# The results page reports the wall time of the invocation that wrote it, from this stamp.
onstart:
    shell("mkdir -p {ROOT}/logs && date +%s > {ROOT}/logs/study_started")
    atomic_write_text(f"{ROOT}/{ROOT_PARAMS}", dump_params(PARAMS, PARAM_FILES))  # for resetrl.status
    if ROOT != "results":  # another configuration's outputs: never part of the committed study
        shell("test -e {ROOT}/.gitignore || echo '*' > {ROOT}/.gitignore")
    print(f"Results: {ROOT}/. Progress: `python -m resetrl.status --results {ROOT}` (a line per run); "
          f"each job's log in {ROOT}/logs/ (`tail -f {ROOT}/logs/train/*.log`); live curves in "
          f"{ROOT}/runs/ARM/seedS/.staging/live/ while a run goes, then in its live/.")


# The first rule is the default target: the whole study.
rule all:
    input:
        stage_output("prepare_data", "data"),
        expand(stage_output("evaluate_sft", "metrics"), seed=SEEDS),
        expand(stage_output("evaluate", "metrics"), method=METHODS, seed=SEEDS),
        stage_output("plot_learning_curves", "png"),
        stage_output("cpi_theory", "json"),
        stage_output("analyze", "page"),


# Opt-in: the layout and loss ablations of the paper's release (`snakemake --cores all ablations`).
rule ablations:
    input:
        at("tables/ablations.md"),


# Opt-in: the family of credit-assignment methods ranked against GRPO (`snakemake --cores all family`).
rule family:
    input:
        at("tables/family.md"),


include: "workflow/rules/data.smk"
include: "workflow/rules/sft.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/plots.smk"
include: "workflow/rules/theory.smk"
include: "workflow/rules/analyze.smk"
include: "workflow/rules/regimes.smk"
include: "workflow/rules/models.smk"
