# Learning curves: change of validation accuracy from each seed's warm start vs step and vs generated
# tokens, mean +- SE over seeds.
rule plot_learning_curves:
    input:
        **stage_inputs("plot_learning_curves"),
    output:
        **stage_outputs("plot_learning_curves"),
    params:
        cfg=params_of("plot_learning_curves"),
    log:
        at("logs/plot_learning_curves.log"),
    threads: 1
    conda:
        CONDA_ENV
    shell:
        snakemake_command("plot_learning_curves", ROOT, PARAMS_ARGS)
