# RL from the warm start: one resumable run per arm (GRPO / RRPO / SRPO / oracle / ablation) and seed.
rule train:
    input:
        data="results/data",
        init="results/sft/seed{seed}/model",
        code=stage_code("train"),
    output:
        model=directory("results/runs/{method}/seed{seed}/model"),
        history="results/runs/{method}/seed{seed}/history.json",
        resets="results/runs/{method}/seed{seed}/resets.jsonl",
        val_outcomes="results/runs/{method}/seed{seed}/val_outcomes.json",
        metrics="results/runs/{method}/seed{seed}/live/metrics.json",
        plots=directory("results/runs/{method}/seed{seed}/live/plots/metrics"),
    params:
        cfg=lambda w: params_of("train", w.method),
        files=PARAMS_ARGS,
    log:
        "results/logs/train/{method}-seed{seed}.log",
    wildcard_constraints:
        seed=r"\d+",
    threads: 1
    conda:
        CONDA_ENV
    shell:
        "python -m resetrl.train {params.files} --method {wildcards.method} --seed {wildcards.seed}"
        " --init {input.init} --data {input.data} --out results/runs/{wildcards.method}/seed{wildcards.seed}"
        " > {log} 2>&1"
