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
        cfg=lambda w: params_of("train", w.method),
    log:
        at("logs/train/{method}-seed{seed}.log"),
    wildcard_constraints:
        seed=r"\d+",
    threads: 1
    conda:
        CONDA_ENV
    shell:
        snakemake_command("train", ROOT)
