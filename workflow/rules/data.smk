# Procedural task splits (train / val / test / ood) and their manifest.
rule prepare_data:
    input:
        **stage_inputs("prepare_data"),
    output:
        **stage_outputs("prepare_data"),
    params:
        cfg=params_of("prepare_data"),
    log:
        at("logs/prepare_data.log"),
    threads: 1
    conda:
        CONDA_ENV
    shell:
        snakemake_command("prepare_data", ROOT, PARAMS_ARGS)
