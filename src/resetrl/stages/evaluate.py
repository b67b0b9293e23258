"""Stage `evaluate`: greedy pass@1 and sampled pass@k of one checkpoint on the test and OOD splits,
and every problem's outcome (the paired statistics compare arms problem by problem)."""

from __future__ import annotations

import argparse
from pathlib import Path

from resetrl.core.cli import stage_entry
from resetrl.core.config import add_params_argument, params_from_args
from resetrl.core.storage import atomic_write_json, check_writable
from resetrl.stages import declared_params


@stage_entry
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_params_argument(parser)
    parser.add_argument("--model", required=True, help="checkpoint directory")
    parser.add_argument("--data", default="results/data", help="prepared data directory (its test and ood splits)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampled pass@k draws")
    parser.add_argument("--out", required=True, help="metrics JSON to write")
    parser.add_argument("--outcomes", help="per-problem outcomes JSON to write (default: next to --out)")
    args = parser.parse_args(argv)
    params = declared_params(params_from_args(args), "evaluate")
    # Per-problem outcomes stay out of the metrics file, which `dvc metrics` reads: seed0.problems.json.
    outcomes_file = args.outcomes or Path(args.out).with_suffix(".problems.json")
    check_writable(args.out, outcomes_file)
    import torch  # after parsing: --help and argument errors stay instant

    from resetrl.rl.evaluation import evaluate_checkpoint

    torch.set_num_threads(params.runtime.threads)
    metrics, outcomes = evaluate_checkpoint(params, Path(args.model), Path(args.data), args.seed)
    atomic_write_json(outcomes_file, outcomes)
    atomic_write_json(args.out, metrics)
    print({split: round(m["greedy_pass1"], 3) for split, m in metrics.items() if m["problems"]})


if __name__ == "__main__":
    main()
