# Opt-in regime map (`snakemake --cores all regimes`): the study at the reduced scale of
# configs/regimes/scale.yaml once per setting of the difficulty knob (study.regimes, each an overlay
# configs/regimes/NAME.yaml), under results/regimes/NAME/, then each arm's gain over GRPO against
# the measured p. The same stages as the study (commands and paths from the stage table), with the
# setting's params files: the study's, then the map's scale and the setting's overlay (config.regime_files).
REGIME_ARGS = f"{PARAMS_ARGS} --params configs/regimes/scale.yaml --params configs/regimes/{{wildcards.regime}}.yaml"
# A setting's results root in a command (its `results`).
REGIME_ROOT = at("regimes/{wildcards.regime}")


wildcard_constraints:
    regime="|".join(REGIMES) or "(?!)",  # no settings: the rules match nothing


rule regimes:
    input:
        at("regimes/map.json"),


rule regime_data:
    input:
        **stage_inputs("prepare_data", REGIME),
    output:
        **stage_outputs("prepare_data", REGIME),
    params:
        cfg=regime_params_of("prepare_data"),
    log:
        f"{REGIME}/logs/data.log",
    conda:
        CONDA_ENV
    shell:
        snakemake_command("prepare_data", REGIME_ROOT, REGIME_ARGS)


rule regime_skill:
    input:
        **stage_inputs("skill", REGIME),
    output:
        **stage_outputs("skill", REGIME),
    params:
        cfg=regime_params_of("skill"),
    log:
        f"{REGIME}/logs/skill.log",
    threads: 1
    conda:
        CONDA_ENV
    shell:
        snakemake_command("skill", REGIME_ROOT, REGIME_ARGS, extra=" --threads {threads}")


# A setting that changes nothing the skill reads fine-tunes the study's own skill (regime_skill).
rule regime_sft:
    input:
        **stage_inputs("sft", REGIME, skill=regime_skill),
    output:
        **stage_outputs("sft", REGIME),
    params:
        cfg=regime_params_of("sft"),
    log:
        f"{REGIME}/logs/sft/seed{{seed}}.log",
    threads: 1
    conda:
        CONDA_ENV
    shell:
        snakemake_command("sft", REGIME_ROOT, REGIME_ARGS, extra=" --skill {input.skill} --threads {threads}")


rule regime_task:
    input:
        **stage_inputs("task_regime", REGIME),
    output:
        **stage_outputs("task_regime", REGIME),
    params:
        cfg=regime_params_of("task_regime"),
    log:
        f"{REGIME}/logs/task/seed{{seed}}.log",
    threads: 1
    conda:
        CONDA_ENV
    shell:
        snakemake_command("task_regime", REGIME_ROOT, REGIME_ARGS)


rule regime_train:
    input:
        **stage_inputs("train", REGIME),
    output:
        **stage_outputs("train", REGIME),
    params:
        cfg=regime_params_of("train"),
    log:
        f"{REGIME}/logs/train/{{method}}-seed{{seed}}.log",
    threads: 1
    conda:
        CONDA_ENV
    shell:
        snakemake_command("train", REGIME_ROOT, REGIME_ARGS)


rule regime_map:
    input:
        runs=[f for r in REGIMES for f in regime_runs(r)],
        task=[f for r in REGIMES for f in expand(stage_output("task_regime", "task", at(f"regimes/{r}")),
                                                 seed=REGIME_PARAMS[r].study.seeds)],
        theory=stage_output("cpi_theory", "json"),
        code=stage_code("regime_map"),
    output:
        summary=at("regimes/map.json"),
        table=at("tables/regimes.md"),
        png=at("plots/regime_map.png"),
        pdf=at("plots/regime_map.pdf"),
    params:
        settings=lambda w: {r: params_to_dict(p)["task"] for r, p in REGIME_PARAMS.items()},
    log:
        at("logs/regime_map.log"),
    conda:
        CONDA_ENV
    shell:
        f"python -m resetrl.stages.regime_map {PARAMS_ARGS} --results {ROOT} --out {{output.summary}}"
        f" --table {{output.table}} --plot {ROOT}/plots/regime_map > {{log}} 2>&1"
