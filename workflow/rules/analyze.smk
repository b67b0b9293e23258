# The study's tables, analysis figures and the generated results page, from every run's outputs.
from resetrl.analysis.figures import CAPTIONS, FIGURES

ANALYSIS_FIGURES = list(FIGURES)


rule analyze:
    input:
        histories=expand(at("runs/{method}/seed{seed}/history.json"), method=METHODS, seed=SEEDS),
        resets=expand(at("runs/{method}/seed{seed}/resets.jsonl"), method=METHODS, seed=SEEDS),
        val_outcomes=expand(at("runs/{method}/seed{seed}/val_outcomes.json"), method=METHODS, seed=SEEDS),
        evals=expand(at("eval/{method}/seed{seed}.json"), method=METHODS, seed=SEEDS),
        outcomes=expand(at("eval/{method}/seed{seed}.problems.json"), method=METHODS, seed=SEEDS),
        sft=expand(at("eval/sft/seed{seed}.json"), seed=SEEDS),
        task=expand(at("task/seed{seed}.json"), seed=SEEDS),
        theory=at("theory/cpi.json"),
        prediction=at("theory/tabular.json"),
        curves=at("plots/learning_curve.png"),
        code=stage_code("analyze"),
    output:
        page=at("RESULTS.md"),
        summary=at("analysis.json"),
        claims=at("claims.json"),
        metrics=at("metrics.json"),
        tables=expand(at("tables/final.{ext}"), ext=["md", "csv", "tex"]),
        png=[report(at(f"plots/{name}.png"), caption=f"../../{ROOT}/captions/{name}.rst", category="Analyses")
             for name in ANALYSIS_FIGURES],
        captions=expand(at("captions/{name}.rst"), name=list(CAPTIONS)),
        pdf=expand(at("plots/{name}.pdf"), name=ANALYSIS_FIGURES),
    params:
        cfg=params_of("analyze"),
    log:
        at("logs/analyze.log"),
    threads: 1
    conda:
        CONDA_ENV
    shell:
        snakemake_command("analyze", ROOT)


# The layout and loss ablations next to SRPO, in one table (opt-in: `snakemake --cores all ablations`).
rule ablation_table:
    input:
        histories=expand(at("runs/{method}/seed{seed}/history.json"), method=METHODS + ABLATIONS, seed=SEEDS),
        evals=expand(at("eval/{method}/seed{seed}.json"), method=METHODS + ABLATIONS, seed=SEEDS),
        code=stage_code("analyze"),
    output:
        tables=expand(at("tables/ablations.{ext}"), ext=["md", "csv", "tex"]),
    params:
        root=ROOT,
        cfg=params_of("analyze"),
    log:
        at("logs/ablation_table.log"),
    threads: 1
    conda:
        CONDA_ENV
    shell:
        "python -m resetrl.stages.analyze {PARAMS_ARGS} --results {params.root} --ablations > {log} 2>&1"


# The family of credit-assignment methods, ranked by compute-matched gain over its first arm (opt-in:
# `snakemake --cores all family`); arms it shares with the study reuse the study's runs.
rule family_table:
    input:
        histories=expand(at("runs/{method}/seed{seed}/history.json"), method=FAMILY, seed=SEEDS),
        val_outcomes=expand(at("runs/{method}/seed{seed}/val_outcomes.json"), method=FAMILY, seed=SEEDS),
        evals=expand(at("eval/{method}/seed{seed}.json"), method=FAMILY, seed=SEEDS),
        outcomes=expand(at("eval/{method}/seed{seed}.problems.json"), method=FAMILY, seed=SEEDS),
        code=stage_code("analyze"),
    output:
        tables=expand(at("tables/family.{ext}"), ext=["md", "csv", "tex", "json"]),
    params:
        root=ROOT,
        cfg=params_of("analyze"),
    log:
        at("logs/family_table.log"),
    threads: 1
    conda:
        CONDA_ENV
    shell:
        "python -m resetrl.stages.analyze {PARAMS_ARGS} --results {params.root} --family > {log} 2>&1"
