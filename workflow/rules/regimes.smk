# Opt-in regime map (`snakemake --cores all regimes`): the study at the reduced scale of
# configs/regimes/scale.yaml once per setting of the difficulty knob (study.regimes, each an overlay
# configs/regimes/NAME.yaml), under results/regimes/NAME/, then each arm's gain over GRPO against
# the measured p. The same stage commands as the study, with the setting's params files.
# A setting's params arguments, completed by `{wildcards.regime}.yaml` in each command: the study's,
# then the map's scale and the setting's overlay (config.regime_files).
REGIME_ARGS = f"{PARAMS_ARGS} --params configs/regimes/scale.yaml --params configs/regimes/"
# A setting's results root in a command (its `results`).
REGIME_ROOT = at("regimes/{wildcards.regime}")


wildcard_constraints:
    regime="|".join(REGIMES) or "(?!)",  # no settings: the rules match nothing


rule regimes:
    input:
        at("regimes/map.json"),


rule regime_data:
    input:
        code=stage_code("prepare_data"),
    output:
        data=directory(f"{REGIME}/data"),
    params:
        cfg=regime_params_of("prepare_data"),
    log:
        f"{REGIME}/logs/data.log",
    conda:
        CONDA_ENV
    shell:
        snakemake_command("prepare_data", REGIME_ROOT, "{REGIME_ARGS}{wildcards.regime}.yaml")


rule regime_skill:
    input:
        data=f"{REGIME}/data",
        code=stage_code("skill"),
    output:
        model=directory(f"{REGIME}/skill/model"),
        summary=f"{REGIME}/skill/summary.json",
    params:
        cfg=regime_params_of("skill"),
    log:
        f"{REGIME}/logs/skill.log",
    threads: 1
    conda:
        CONDA_ENV
    shell:
        snakemake_command("skill", REGIME_ROOT, "{REGIME_ARGS}{wildcards.regime}.yaml", extra=" --threads {threads}")


rule regime_sft:
    input:
        data=f"{REGIME}/data",
        skill=regime_skill,
        code=stage_code("sft"),
    output:
        model=directory(f"{REGIME}/sft/seed{{seed}}/model"),
        summary=f"{REGIME}/sft/seed{{seed}}/summary.json",
    params:
        cfg=regime_params_of("sft"),
    log:
        f"{REGIME}/logs/sft/seed{{seed}}.log",
    threads: 1
    conda:
        CONDA_ENV
    shell:
        snakemake_command("sft", REGIME_ROOT, "{REGIME_ARGS}{wildcards.regime}.yaml",
                          extra=" --skill {input.skill} --threads {threads}")


rule regime_task:
    input:
        data=f"{REGIME}/data",
        model=f"{REGIME}/sft/seed{{seed}}/model",
        code=stage_code("task_regime"),
    output:
        f"{REGIME}/task/seed{{seed}}.json",
    params:
        cfg=regime_params_of("task_regime"),
    log:
        f"{REGIME}/logs/task/seed{{seed}}.log",
    threads: 1
    conda:
        CONDA_ENV
    shell:
        snakemake_command("task_regime", REGIME_ROOT, "{REGIME_ARGS}{wildcards.regime}.yaml")


rule regime_train:
    input:
        data=f"{REGIME}/data",
        init=f"{REGIME}/sft/seed{{seed}}/model",
        code=stage_code("train"),
    output:
        model=directory(f"{REGIME}/runs/{{method}}/seed{{seed}}/model"),
        history=f"{REGIME}/runs/{{method}}/seed{{seed}}/history.json",
        resets=f"{REGIME}/runs/{{method}}/seed{{seed}}/resets.jsonl",
        val_outcomes=f"{REGIME}/runs/{{method}}/seed{{seed}}/val_outcomes.json",
    params:
        cfg=regime_params_of("train"),
    log:
        f"{REGIME}/logs/train/{{method}}-seed{{seed}}.log",
    threads: 1
    conda:
        CONDA_ENV
    shell:
        snakemake_command("train", REGIME_ROOT, "{REGIME_ARGS}{wildcards.regime}.yaml")


rule regime_map:
    input:
        runs=[f for r in REGIMES for f in regime_runs(r)],
        task=[at(f"regimes/{r}/task/seed{s}.json") for r in REGIMES for s in REGIME_PARAMS[r].study.seeds],
        theory=at("theory/cpi.json"),
        code=stage_code("regime_map"),
    output:
        summary=at("regimes/map.json"),
        table=at("tables/regimes.md"),
        png=at("plots/regime_map.png"),
        pdf=at("plots/regime_map.pdf"),
    params:
        root=ROOT,
        settings=lambda w: {r: params_to_dict(p)["task"] for r, p in REGIME_PARAMS.items()},
    log:
        at("logs/regime_map.log"),
    conda:
        CONDA_ENV
    shell:
        "python -m resetrl.stages.regime_map {PARAMS_ARGS} --results {params.root} --out {output.summary}"
        " --table {output.table} --plot {params.root}/plots/regime_map > {log} 2>&1"
