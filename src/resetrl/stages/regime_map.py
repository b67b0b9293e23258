"""Stage `regime_map` (opt-in): where resets help. For every setting of the task's difficulty knob
(configs/regimes/NAME.yaml, run at the reduced scale of configs/regimes/scale.yaml), each reset
arm's gain over GRPO on the compute-matched measure (`claims`: validation AUC against generated
tokens, paired bootstrap over seeds and problems) against the measured p of the setting's warm
starts (`regime`), beside the CPI theory's prediction (`cpi_theory`): an improvability oracle
gains over random resets as 1 / p, so resets can only pay where p is small."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from resetrl.core.cli import stage_entry
from resetrl.core.config import DEFAULT_PARAMS, add_params_argument, load_params, params_from_args, regime_files
from resetrl.core.storage import atomic_write_json, atomic_write_text
from resetrl.stages import declared_params


@stage_entry
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_params_argument(parser)
    parser.add_argument("--results", default="results", help="holds regimes/NAME/ and theory/cpi.json")
    parser.add_argument("--out", default="results/regimes/map.json", help="the map's summary JSON")
    parser.add_argument("--plot", default="results/plots/regime_map", help="figure path without suffix")
    parser.add_argument("--table", default="results/tables/regimes.md", help="the map as a markdown table")
    args = parser.parse_args(argv)
    params = declared_params(params_from_args(args), "regime_map")
    from resetrl.analysis.regimes import plot_regime_map, regime_table, setting_summary  # loads torch: after parsing

    results = Path(args.results)
    base = args.params or list(DEFAULT_PARAMS)
    settings = {name: setting_summary(results / "regimes" / name, load_params(regime_files(base, name), args.set))
                for name in params.study.regimes}
    plot_regime_map(settings, json.loads((results / "theory" / "cpi.json").read_text()), Path(args.plot))
    atomic_write_text(args.table, regime_table(settings) + "\n")
    atomic_write_json(args.out, settings)
    print(regime_table(settings))


if __name__ == "__main__":
    main()
