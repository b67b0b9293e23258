# The CPI theory check: CPI-RR vs CPI-CARO on a tabular thought tree (seconds, no model).
rule cpi_theory:
    input:
        **stage_inputs("cpi_theory"),
    output:
        **stage_outputs("cpi_theory"),
    params:
        cfg=params_of("cpi_theory"),
    log:
        at("logs/cpi_theory.log"),
    threads: 1
    conda:
        CONDA_ENV
    shell:
        snakemake_command("cpi_theory", ROOT, PARAMS_ARGS)


# The tabular model's prediction for the study's regime and arms (seconds, no model): printed beside the
# network's results.
rule predict:
    input:
        **stage_inputs("predict"),
    output:
        **stage_outputs("predict"),
    params:
        cfg=params_of("predict"),
    log:
        at("logs/predict.log"),
    threads: 1
    conda:
        CONDA_ENV
    shell:
        snakemake_command("predict", ROOT, PARAMS_ARGS)
