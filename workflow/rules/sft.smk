# Warm start: the tiny model imitates correct chains before RL; one per study seed (the seed offsets
# the SFT and initialisation seeds), shared by every arm of that seed.
rule sft:
    input:
        data="results/data",
        code=stage_code("sft"),
    output:
        model=directory("results/sft/seed{seed}/model"),
        summary="results/sft/seed{seed}/summary.json",
        plots=directory("results/sft/seed{seed}/live/plots/metrics"),
    params:
        cfg=params_of("sft"),
        files=PARAMS_ARGS,
    log:
        "results/logs/sft/seed{seed}.log",
    wildcard_constraints:
        seed=r"\d+",
    threads: 1  # the warm starts of several seeds run side by side, one core each
    conda:
        CONDA_ENV
    shell:
        "python -m resetrl.sft {params.files} --data {input.data} --seed {wildcards.seed}"
        " --out results/sft/seed{wildcards.seed} --threads {threads} > {log} 2>&1"
