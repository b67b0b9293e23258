"""Stage `analyze`: every number, table and analysis figure of the study from the graph's outputs,
and the generated results page `results/RESULTS.md` (never edited by hand)."""

from __future__ import annotations

import argparse
from pathlib import Path

from resetrl.core.cli import stage_entry
from resetrl.core.config import add_params_argument, params_from_args
from resetrl.stages import declared_params


@stage_entry
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_params_argument(parser)
    parser.add_argument("--results", default="results", help="the pipeline's results directory")
    parser.add_argument("--out", default="results/RESULTS.md", help="the results page to write")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--ablations", action="store_true",
                      help="write only results/tables/ablations.{md,csv,tex} (SRPO and study.ablations)")
    what.add_argument("--family", action="store_true",
                      help="write only results/tables/family.{md,csv,tex,json}: study.family ranked by its gain "
                           "over the first arm")
    args = parser.parse_args(argv)
    params = declared_params(params_from_args(args), "analyze")
    # after parsing: the analysis reads roles and claims from the method registry, which loads torch
    from resetrl.analysis.report import write_ablation_table, write_family_table, write_outputs

    if args.family:
        print(write_family_table(Path(args.results), params))
        return
    if args.ablations:
        write_ablation_table(Path(args.results), params)
        return
    summary = write_outputs(Path(args.results), params, Path(args.out))
    for c in summary["claims"]:
        print(f"{c['verdict']:>15}: {c['claim']}")


if __name__ == "__main__":
    main()
