"""Stage `cpi_theory`: the paper's CPI theorem checked by simulation (seconds). Writes the measured
samples-per-iteration and improvement-per-iteration of CPI-RR and CPI-CARO against p, the fitted
log-log slopes of their ratios next to the predicted -2 and -1, and a figure (PNG + PDF)."""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: stages run on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402

from resetrl.cli import stage_entry  # noqa: E402
from resetrl.config import add_params_argument, params_from_args  # noqa: E402
from resetrl.cpi import loglog_slope, measure  # noqa: E402
from resetrl.plots import STYLE, save_figure  # noqa: E402
from resetrl.storage import atomic_write_json  # noqa: E402

PREDICTED = {"samples_ratio": -2.0, "improvement_ratio": -1.0}
TOLERANCE = 0.3  # |fitted - predicted| slope that still counts as a match


def run_theory(theory) -> dict:
    rows = measure(list(theory.p_values), theory.mc_samples, theory.seed, tau=theory.tau,
                   q=theory.good_action_prob, n_actions=theory.n_actions, horizon=theory.horizon)
    ps = [r["p"] for r in rows]
    checks = {}
    for key, predicted in PREDICTED.items():
        fitted = loglog_slope(ps, [r[key] for r in rows])
        checks[key] = {"fitted_slope": fitted, "predicted_slope": predicted,
                       "matches": abs(fitted - predicted) <= TOLERANCE}
    return {"rows": rows, "slopes": checks, "tolerance": TOLERANCE}


def plot_theory(result: dict, out: Path) -> None:
    rows = result["rows"]
    ps = [r["p"] for r in rows]
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 2)
        panels = (("samples_ratio", "samples per iteration, RR / CARO"),
                  ("improvement_ratio", "improvement per iteration, CARO / RR"))
        for ax, (key, label) in zip(axes, panels):
            ys = [r[key] for r in rows]
            slope = result["slopes"][key]
            ax.loglog(ps, ys, "o-", label=f"measured (slope {slope['fitted_slope']:.2f})")
            anchor = ys[-1] / ps[-1] ** slope["predicted_slope"]  # the prediction through the p = max point
            ax.loglog(ps, [anchor * p ** slope["predicted_slope"] for p in ps], "--", color="gray",
                      label=f"theorem (slope {slope['predicted_slope']:.0f})")
            ax.set_xlabel("p = on-policy probability of an improvable state")
            ax.set_ylabel(label)
            ax.legend()
        fig.suptitle("CPI with random resets vs an improvability oracle")
        save_figure(fig, out)


@stage_entry
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_params_argument(parser)
    parser.add_argument("--out", default="results/theory/cpi.json", help="the check's summary JSON")
    parser.add_argument("--plot", default="results/plots/cpi_theory", help="figure path without suffix")
    args = parser.parse_args(argv)
    params = params_from_args(args)
    result = run_theory(params.theory)
    plot_theory(result, Path(args.plot))
    atomic_write_json(args.out, result)
    for key, check in result["slopes"].items():
        print(f"{key}: fitted slope {check['fitted_slope']:.2f}, predicted {check['predicted_slope']:.0f}, "
              f"{'matches' if check['matches'] else 'does not match'}")


if __name__ == "__main__":
    main()
