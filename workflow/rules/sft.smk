# The shared skill: trained once on correct demonstrations (sft.skill_steps; 0: a saved starting policy
# no seed uses), so every seed's warm start fine-tunes the same converged arithmetic. It runs before
# anything else can, so it takes every core.
rule skill:
    input:
        **stage_inputs("skill"),
        pretrained=PRETRAINED,
    output:
        **stage_outputs("skill"),
    params:
        cfg=params_of("skill"),
    log:
        at("logs/skill.log"),
    threads: workflow.cores
    conda:
        CONDA_ENV
    shell:
        snakemake_command("skill", ROOT, PARAMS_ARGS, extra=" --threads {threads}")


# Warm start: the tiny model imitates solution chains before RL (with sft.skill_steps, a fine-tune of
# the shared skill); one per study seed (the seed offsets the SFT and initialisation seeds), shared by
# every arm of that seed.
rule sft:
    input:
        **stage_inputs("sft"),
        pretrained=PRETRAINED,
    output:
        **stage_outputs("sft"),
    params:
        cfg=params_of("sft"),
    log:
        at("logs/sft/seed{seed}.log"),
    wildcard_constraints:
        seed=r"\d+",
    threads: 1  # the warm starts of several seeds run side by side, one core each
    resources:
        gpu=STAGE_GPUS["sft"],
    conda:
        CONDA_ENV
    shell:
        snakemake_command("sft", ROOT, PARAMS_ARGS, extra=" --threads {threads}")
