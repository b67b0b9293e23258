# Procedural task splits (train / val / test / ood) and their manifest.
rule prepare_data:
    input:
        code=stage_code("prepare_data"),
    output:
        data=directory("results/data"),
        manifest="results/data/manifest.json",
    params:
        cfg=params_of("prepare_data"),
        files=PARAMS_ARGS,
    log:
        "results/logs/prepare_data.log",
    threads: 1
    conda:
        CONDA_ENV
    shell:
        "python -m resetrl.data {params.files} --out {output.data} > {log} 2>&1"
