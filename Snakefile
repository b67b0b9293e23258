# The workflow's wiring; rules live in workflow/rules/, one module per stage.
# Overlays: `snakemake --cores all --configfile configs/smoke.yaml` (applied over params.yaml).
configfile: "params.yaml"


include: "workflow/rules/common.smk"


# The results page reports the wall time of the invocation that wrote it, from this stamp.
onstart:
    shell("mkdir -p results/logs && date +%s > results/logs/study_started")
    print("Progress: `python -m resetrl.status` (a line per run); each job's log in results/logs/ "
          "(`tail -f results/logs/train/*.log`); live curves in results/runs/ARM/seedS/live/.")


# The first rule is the default target: the whole study.
rule all:
    input:
        "results/data/manifest.json",
        expand("results/eval/sft/seed{seed}.json", seed=SEEDS),
        expand("results/eval/{method}/seed{seed}.json", method=METHODS, seed=SEEDS),
        "results/plots/learning_curve.png",
        "results/theory/cpi.json",
        "results/RESULTS.md",


# Opt-in: the layout and loss ablations of the paper's release (`snakemake --cores all ablations`).
rule ablations:
    input:
        "results/tables/ablations.md",


include: "workflow/rules/data.smk"
include: "workflow/rules/sft.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/plots.smk"
include: "workflow/rules/theory.smk"
include: "workflow/rules/analyze.smk"
include: "workflow/rules/regimes.smk"
