# The CPI theory check: CPI-RR vs CPI-CARO on a tabular thought tree (seconds, no model).
rule cpi_theory:
    input:
        code=stage_code("cpi_theory"),
    output:
        json=at("theory/cpi.json"),
        png=report(at("plots/cpi_theory.png"), caption=f"../../{ROOT}/captions/cpi_theory.rst",
                   category="Theory"),
        pdf=at("plots/cpi_theory.pdf"),
    params:
        cfg=params_of("cpi_theory"),
    log:
        at("logs/cpi_theory.log"),
    threads: 1
    conda:
        CONDA_ENV
    shell:
        snakemake_command("cpi_theory", ROOT)


# The tabular model's prediction for the study's regime and arms (seconds, no model): printed beside the
# network's results.
rule predict:
    input:
        code=stage_code("predict"),
    output:
        json=at("theory/tabular.json"),
    params:
        cfg=params_of("predict"),
    log:
        at("logs/predict.log"),
    threads: 1
    conda:
        CONDA_ENV
    shell:
        snakemake_command("predict", ROOT)
