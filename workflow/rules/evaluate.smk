# Greedy pass@1 and sampled pass@k on the test and OOD splits (no resets at evaluation).
rule evaluate:
    input:
        data="results/data",
        model="results/runs/{method}/seed{seed}/model",
        code=stage_code("evaluate"),
    output:
        metrics="results/eval/{method}/seed{seed}.json",
        outcomes="results/eval/{method}/seed{seed}.problems.json",
    params:
        cfg=params_of("evaluate"),
        files=PARAMS_ARGS,
    log:
        "results/logs/evaluate/{method}-seed{seed}.log",
    wildcard_constraints:
        method="|".join(PARAMS.arms),  # not "sft": the warm starts have their own rule
        seed=r"\d+",
    threads: 1
    conda:
        CONDA_ENV
    shell:
        "python -m resetrl.evaluate {params.files} --model {input.model} --data {input.data}"
        " --seed {wildcards.seed} --out {output.metrics}"
        " --outcomes {output.outcomes} > {log} 2>&1"


# The warm start, evaluated the same way: the baseline every RL gain is measured against.
rule evaluate_sft:
    input:
        data="results/data",
        model="results/sft/seed{seed}/model",
        code=stage_code("evaluate_sft"),
    output:
        metrics="results/eval/sft/seed{seed}.json",
        outcomes="results/eval/sft/seed{seed}.problems.json",
    params:
        cfg=params_of("evaluate_sft"),
        files=PARAMS_ARGS,
    log:
        "results/logs/evaluate/sft-seed{seed}.log",
    wildcard_constraints:
        seed=r"\d+",
    threads: 1
    conda:
        CONDA_ENV
    shell:
        "python -m resetrl.evaluate {params.files} --model {input.model} --data {input.data}"
        " --seed {wildcards.seed} --out {output.metrics}"
        " --outcomes {output.outcomes} > {log} 2>&1"


# How the task looks to each warm start: per-step error rates, where first errors fall, p, and how
# improvable the reset state is (`resetrl.regime`); the results page reports them.
rule task_regime:
    input:
        data="results/data",
        model="results/sft/seed{seed}/model",
        code=stage_code("task_regime"),
    output:
        "results/task/seed{seed}.json",
    params:
        cfg=params_of("task_regime"),
        files=PARAMS_ARGS,
    log:
        "results/logs/task_regime/seed{seed}.log",
    wildcard_constraints:
        seed=r"\d+",
    threads: 1
    conda:
        CONDA_ENV
    shell:
        "python -m resetrl.regime {params.files} --model {input.model} --data {input.data}"
        " --seed {wildcards.seed} --out {output} > {log} 2>&1"
