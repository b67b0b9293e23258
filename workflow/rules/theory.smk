# The CPI theory check: CPI-RR vs CPI-CARO on a tabular thought tree (seconds, no model).
rule cpi_theory:
    input:
        code=stage_code("cpi_theory"),
    output:
        json="results/theory/cpi.json",
        png=report("results/plots/cpi_theory.png", caption="../../results/captions/cpi_theory.rst",
                   category="Theory"),
        pdf="results/plots/cpi_theory.pdf",
    params:
        cfg=params_of("cpi_theory"),
        files=PARAMS_ARGS,
    log:
        "results/logs/cpi_theory.log",
    threads: 1
    conda:
        CONDA_ENV
    shell:
        "python -m resetrl.theory {params.files} --out {output.json} --plot results/plots/cpi_theory > {log} 2>&1"
