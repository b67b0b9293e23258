# RL from the warm start: one resumable run per arm (GRPO / RRPO / SRPO / oracle / ablation) and seed.
rule train:
    input:
        data=at("data"),
        init=at("sft/seed{seed}/model"),
        code=stage_code("train"),
    output:
        model=directory(at("runs/{method}/seed{seed}/model")),
        history=at("runs/{method}/seed{seed}/history.json"),
        resets=at("runs/{method}/seed{seed}/resets.jsonl"),
        val_outcomes=at("runs/{method}/seed{seed}/val_outcomes.json"),
        metrics=at("runs/{method}/seed{seed}/live/metrics.json"),
        plots=directory(at("runs/{method}/seed{seed}/live/plots/metrics")),
    params:
        root=ROOT,
        cfg=lambda w: params_of("train", w.method),
    log:
        at("logs/train/{method}-seed{seed}.log"),
    wildcard_constraints:
        seed=r"\d+",
    threads: 1
    conda:
        CONDA_ENV
    shell:
        "python -m resetrl.stages.train {PARAMS_ARGS} --method {wildcards.method} --seed {wildcards.seed}"
        " --init {input.init} --data {input.data} --out {params.root}/runs/{wildcards.method}/seed{wildcards.seed}"
        " > {log} 2>&1"
