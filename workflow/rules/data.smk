# Procedural task splits (train / val / test / ood) and their manifest.
rule prepare_data:
    input:
        code=stage_code("prepare_data"),
    output:
        data=directory(at("data")),
        manifest=at("data/manifest.json"),
    params:
        cfg=params_of("prepare_data"),
    log:
        at("logs/prepare_data.log"),
    threads: 1
    conda:
        CONDA_ENV
    shell:
        snakemake_command("prepare_data", ROOT)
