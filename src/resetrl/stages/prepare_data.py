"""Stage `prepare_data`: write the task's splits as JSONL plus a manifest (counts, seed, hashes).

Splits: train (SFT and RL), val (learning curves), test and ood (evaluation only). The procedural
task generates all four; real-data sources take train / val / test from their source and ood from
`task.eval_files` (empty without them)."""

from __future__ import annotations

import argparse
from pathlib import Path

from resetrl.core.cli import stage_entry
from resetrl.core.config import add_params_argument, params_from_args
from resetrl.core.storage import check_writable
from resetrl.stages import declared_params
from resetrl.tasks.splits import prepare_data


@stage_entry
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_params_argument(parser)
    parser.add_argument("--out", default="results/data", help="directory for the JSONL splits")
    args = parser.parse_args(argv)
    task = declared_params(params_from_args(args), "prepare_data").task
    check_writable(Path(args.out) / "manifest.json")
    manifest = prepare_data(task, args.out)
    print({k: v["count"] for k, v in manifest["splits"].items()})


if __name__ == "__main__":
    main()
