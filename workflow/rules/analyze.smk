# The study's tables, analysis figures and the generated results page, from every run's outputs.
rule analyze:
    input:
        **stage_inputs("analyze"),
    output:
        **stage_outputs("analyze"),
    params:
        cfg=params_of("analyze"),
    log:
        at("logs/analyze.log"),
    threads: 1
    conda:
        CONDA_ENV
    shell:
        snakemake_command("analyze", ROOT, PARAMS_ARGS)


# The layout and loss ablations next to SRPO, in one table (opt-in: `snakemake --cores all ablations`).
rule ablation_table:
    input:
        runs=run_outputs(METHODS + ABLATIONS, ("history",)),
        code=stage_code("analyze"),
    output:
        tables=expand(at("tables/ablations.{ext}"), ext=["md", "csv", "tex"]),
    params:
        cfg=params_of("analyze"),
    log:
        at("logs/ablation_table.log"),
    threads: 1
    conda:
        CONDA_ENV
    shell:
        f"python -m resetrl.stages.analyze {PARAMS_ARGS} --results {ROOT} --ablations > {{log}} 2>&1"


# The family of credit-assignment methods, ranked by compute-matched gain over its first arm (opt-in:
# `snakemake --cores all family`); arms it shares with the study reuse the study's runs.
rule family_table:
    input:
        runs=run_outputs(FAMILY),
        code=stage_code("analyze"),
    output:
        tables=expand(at("tables/family.{ext}"), ext=["md", "csv", "tex", "json"]),
        plots=expand(at("plots/family.{ext}"), ext=["png", "pdf"]),
    params:
        cfg=params_of("analyze"),
    log:
        at("logs/family_table.log"),
    threads: 1
    conda:
        CONDA_ENV
    shell:
        f"python -m resetrl.stages.analyze {PARAMS_ARGS} --results {ROOT} --family > {{log}} 2>&1"
