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
        root=ROOT,
        cfg=params_of("cpi_theory"),
    log:
        at("logs/cpi_theory.log"),
    threads: 1
    conda:
        CONDA_ENV
    shell:
        "python -m resetrl.stages.cpi_theory {PARAMS_ARGS} --out {output.json} --plot {params.root}/plots/cpi_theory > {log} 2>&1"
