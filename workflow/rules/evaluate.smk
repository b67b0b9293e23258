# Greedy pass@1 and sampled pass@k on the test and OOD splits (no resets at evaluation).
rule evaluate:
    input:
        **stage_inputs("evaluate"),
    output:
        **stage_outputs("evaluate"),
    params:
        cfg=params_of("evaluate"),
    log:
        at("logs/evaluate/{method}-seed{seed}.log"),
    wildcard_constraints:
        method="|".join(PARAMS.arms),  # not "sft": the warm starts have their own rule
        seed=r"\d+",
    threads: 1
    resources:
        gpu=STAGE_GPUS["evaluate"],
    conda:
        CONDA_ENV
    shell:
        snakemake_command("evaluate", ROOT, PARAMS_ARGS)


# The warm start, evaluated the same way: the baseline every RL gain is measured against.
rule evaluate_sft:
    input:
        **stage_inputs("evaluate_sft"),
    output:
        **stage_outputs("evaluate_sft"),
    params:
        cfg=params_of("evaluate_sft"),
    log:
        at("logs/evaluate/sft-seed{seed}.log"),
    wildcard_constraints:
        seed=r"\d+",
    threads: 1
    resources:
        gpu=STAGE_GPUS["evaluate"],
    conda:
        CONDA_ENV
    shell:
        snakemake_command("evaluate_sft", ROOT, PARAMS_ARGS)


# How the task looks to each warm start: per-step error rates, where first errors fall, p, and how
# improvable the reset state is (`resetrl.stages.task_regime`); the results page reports them.
rule task_regime:
    input:
        **stage_inputs("task_regime"),
    output:
        **stage_outputs("task_regime"),
    params:
        cfg=params_of("task_regime"),
    log:
        at("logs/task_regime/seed{seed}.log"),
    wildcard_constraints:
        seed=r"\d+",
    threads: 1
    conda:
        CONDA_ENV
    shell:
        snakemake_command("task_regime", ROOT, PARAMS_ARGS)
