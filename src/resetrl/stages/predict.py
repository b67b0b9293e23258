"""Stage `predict`: the tabular model's prediction for the study's own regime (seconds, no network):
each arm's compute-matched gain over GRPO on a chain task with the designed warm start's slip rate and
hard last step, its standard error over simulation seeds and the MDE a study of study.seeds seeds would
have at that spread (`resetrl.analysis.tabular`). The results page prints it beside the network's result."""

from __future__ import annotations

import argparse

from resetrl.core.cli import stage_entry
from resetrl.core.config import add_params_argument, params_from_args
from resetrl.core.storage import atomic_write_json
from resetrl.stages import declared_params


@stage_entry
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_params_argument(parser)
    parser.add_argument("--out", default="results/theory/tabular.json", help="the prediction's JSON")
    args = parser.parse_args(argv)
    params = declared_params(params_from_args(args), "predict")
    from resetrl.analysis.tabular import predict

    result = predict(params)
    atomic_write_json(args.out, result)
    for arm, row in result["arms"].items():
        if "gain_greedy" in row:
            print(f"{arm} - grpo: {row['gain_greedy']:+.3f} +- {row['se_greedy']:.3f} (greedy AUC), "
                  f"{row['gain_sampled']:+.3f} +- {row['se_sampled']:.3f} (sampled), study MDE {row['mde_greedy']:.3f}")


if __name__ == "__main__":
    main()
