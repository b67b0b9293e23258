"""Stage `plot_learning_curves`: the change of validation accuracy from each seed's warm start vs RL
step and vs cumulative generated tokens, mean +- standard error over seeds per method, PNG + PDF."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from resetrl.analysis.curves import plot_learning_curves
from resetrl.core.cli import stage_entry
from resetrl.core.config import add_params_argument, params_from_args
from resetrl.stages import declared_params


@stage_entry
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_params_argument(parser)
    parser.add_argument("--runs", default="results/runs", help="holds <method>/seed<k>/history.json")
    parser.add_argument("--out", default="results/plots/learning_curve", help="path without suffix")
    args = parser.parse_args(argv)
    study = declared_params(params_from_args(args), "plot_learning_curves").study
    runs = {m: [json.loads((Path(args.runs) / m / f"seed{s}" / "history.json").read_text())
                for s in study.seeds] for m in study.methods}
    plot_learning_curves(runs, Path(args.out), reference=study.methods[0])


if __name__ == "__main__":
    main()
