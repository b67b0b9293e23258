# Warm start: the tiny model imitates correct chains before RL.
rule sft:
    input:
        data="results/data",
        code=stage_code("sft"),
    output:
        model=directory("results/sft/model"),
        summary="results/sft/summary.json",
        plots=directory("results/sft/live/plots/metrics"),
    params:
        cfg=params_of("sft"),
        files=PARAMS_ARGS,
    log:
        "results/logs/sft.log",
    threads: workflow.cores  # nothing else can run before the warm start exists
    conda:
        CONDA_ENV
    shell:
        "python -m resetrl.sft {params.files} --data {input.data} --out results/sft --threads {threads} > {log} 2>&1"
