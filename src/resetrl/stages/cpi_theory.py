"""Stage `cpi_theory`: the paper's CPI theorem checked by simulation (seconds). Writes the measured
samples-per-iteration and improvement-per-iteration of CPI-RR and CPI-CARO against p, the fitted
log-log slopes of their ratios next to the predicted -2 and -1, and a figure (PNG + PDF)."""

from __future__ import annotations

import argparse
from pathlib import Path

from resetrl.analysis.cpi import plot_theory, run_theory
from resetrl.core.cli import stage_entry
from resetrl.core.config import add_params_argument, params_from_args
from resetrl.core.storage import atomic_write_json
from resetrl.stages import declared_params


@stage_entry
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_params_argument(parser)
    parser.add_argument("--out", default="results/theory/cpi.json", help="the check's summary JSON")
    parser.add_argument("--plot", default="results/plots/cpi_theory", help="figure path without suffix")
    args = parser.parse_args(argv)
    params = declared_params(params_from_args(args), "cpi_theory")
    result = run_theory(params.theory)
    plot_theory(result, Path(args.plot))
    atomic_write_json(args.out, result)
    for key, check in result["slopes"].items():
        print(f"{key}: fitted slope {check['fitted_slope']:.2f}, predicted {check['predicted_slope']:.0f}, "
              f"{'matches' if check['matches'] else 'does not match'}")


if __name__ == "__main__":
    main()
