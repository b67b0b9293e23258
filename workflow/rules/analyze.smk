# The study's tables, analysis figures and the generated results page, from every run's outputs.
from resetrl.figures import CAPTIONS, FIGURES

ANALYSIS_FIGURES = list(FIGURES)


rule analyze:
    input:
        histories=expand("results/runs/{method}/seed{seed}/history.json", method=METHODS, seed=SEEDS),
        resets=expand("results/runs/{method}/seed{seed}/resets.jsonl", method=METHODS, seed=SEEDS),
        val_outcomes=expand("results/runs/{method}/seed{seed}/val_outcomes.json", method=METHODS, seed=SEEDS),
        evals=expand("results/eval/{method}/seed{seed}.json", method=METHODS, seed=SEEDS),
        outcomes=expand("results/eval/{method}/seed{seed}.problems.json", method=METHODS, seed=SEEDS),
        sft=expand("results/eval/sft/seed{seed}.json", seed=SEEDS),
        task=expand("results/task/seed{seed}.json", seed=SEEDS),
        theory="results/theory/cpi.json",
        curves="results/plots/learning_curve.png",
        code=stage_code("analyze"),
    output:
        page="results/RESULTS.md",
        summary="results/analysis.json",
        claims="results/claims.json",
        tables=expand("results/tables/final.{ext}", ext=["md", "csv", "tex"]),
        png=[report(f"results/plots/{name}.png", caption=f"../../results/captions/{name}.rst", category="Analyses")
             for name in ANALYSIS_FIGURES],
        captions=expand("results/captions/{name}.rst", name=list(CAPTIONS)),
        pdf=expand("results/plots/{name}.pdf", name=ANALYSIS_FIGURES),
    params:
        cfg=params_of("analyze"),
        files=PARAMS_ARGS,
    log:
        "results/logs/analyze.log",
    threads: 1
    conda:
        CONDA_ENV
    shell:
        "python -m resetrl.report {params.files} --results results --out {output.page} > {log} 2>&1"


# The layout and loss ablations next to SRPO, in one table (opt-in: `snakemake --cores all ablations`).
rule ablation_table:
    input:
        histories=expand("results/runs/{method}/seed{seed}/history.json", method=METHODS + ABLATIONS, seed=SEEDS),
        evals=expand("results/eval/{method}/seed{seed}.json", method=METHODS + ABLATIONS, seed=SEEDS),
        code=stage_code("analyze"),
    output:
        tables=expand("results/tables/ablations.{ext}", ext=["md", "csv", "tex"]),
    params:
        cfg=params_of("analyze"),
        files=PARAMS_ARGS,
    log:
        "results/logs/ablation_table.log",
    threads: 1
    conda:
        CONDA_ENV
    shell:
        "python -m resetrl.report {params.files} --results results --ablations > {log} 2>&1"
