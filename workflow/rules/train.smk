# RL from the warm start: one resumable run per arm (GRPO / RRPO / SRPO / oracle / ablation) and seed.
rule train:
    input:
        **stage_inputs("train"),
    output:
        **stage_outputs("train"),
    params:
        cfg=lambda w: params_of("train", w.method),
    log:
        at("logs/train/{method}-seed{seed}.log"),
    wildcard_constraints:
        seed=r"\d+",
    threads: PARAMS.runtime.world_size  # its processes (runtime.world_size; the stage launches them)
    resources:
        gpu=STAGE_GPUS["train"],
    conda:
        CONDA_ENV
    shell:
        snakemake_command("train", ROOT, PARAMS_ARGS)
