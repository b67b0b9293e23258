# Warm start: the tiny model imitates correct chains before RL; one per study seed (the seed offsets
# the SFT and initialisation seeds), shared by every arm of that seed.
rule sft:
    input:
        data=at("data"),
        pretrained=PRETRAINED,
        code=stage_code("sft"),
    output:
        model=directory(at("sft/seed{seed}/model")),
        summary=at("sft/seed{seed}/summary.json"),
        plots=directory(at("sft/seed{seed}/live/plots/metrics")),
    params:
        cfg=params_of("sft"),
    log:
        at("logs/sft/seed{seed}.log"),
    wildcard_constraints:
        seed=r"\d+",
    threads: 1  # the warm starts of several seeds run side by side, one core each
    conda:
        CONDA_ENV
    shell:
        snakemake_command("sft", ROOT, extra=" --threads {threads}")
