# Learning curves: change of validation accuracy from each seed's warm start vs step and vs generated
# tokens, mean +- SE over seeds.
rule plot_learning_curves:
    input:
        histories=expand(at("runs/{method}/seed{seed}/history.json"), method=METHODS, seed=SEEDS),
        code=stage_code("plot_learning_curves"),
    output:
        png=report(at("plots/learning_curve.png"), caption=f"../../{ROOT}/captions/learning_curve.rst",
                   category="Learning curves"),
        pdf=at("plots/learning_curve.pdf"),
    params:
        cfg=params_of("plot_learning_curves"),
    log:
        at("logs/plot_learning_curves.log"),
    threads: 1
    conda:
        CONDA_ENV
    shell:
        snakemake_command("plot_learning_curves", ROOT)
