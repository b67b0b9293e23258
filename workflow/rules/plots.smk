# Learning curves: change of validation accuracy from each seed's warm start vs step and vs generated
# tokens, mean +- SE over seeds.
rule plot_learning_curves:
    input:
        histories=expand("results/runs/{method}/seed{seed}/history.json", method=METHODS, seed=SEEDS),
        code=stage_code("plot_learning_curves"),
    output:
        png=report("results/plots/learning_curve.png", caption="../../results/captions/learning_curve.rst",
                   category="Learning curves"),
        pdf="results/plots/learning_curve.pdf",
    params:
        cfg=params_of("plot_learning_curves"),
        files=PARAMS_ARGS,
    log:
        "results/logs/plot_learning_curves.log",
    threads: 1
    conda:
        CONDA_ENV
    shell:
        "python -m resetrl.plots {params.files} --runs results/runs"
        " --out results/plots/learning_curve > {log} 2>&1"
