"""Stage `evaluate`: greedy pass@1 and sampled pass@k of one checkpoint on the test and OOD splits,
and every problem's outcome (the paired statistics compare arms problem by problem)."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from resetrl.cli import stage_entry
from resetrl.config import Params, add_params_argument, params_from_args
from resetrl.data import load_split
from resetrl.evaluation import greedy_pass1, sampled_pass_k
from resetrl.model import load_policy
from resetrl.rollout import make_engine
from resetrl.scoring import open_verifier
from resetrl.storage import atomic_write_json

EVAL_SPLITS = ("test", "ood")


def outcomes_path(metrics_file: str | Path) -> Path:
    """seed0.json -> seed0.problems.json: kept out of the metrics file, which `dvc metrics` reads."""
    return Path(metrics_file).with_suffix(".problems.json")


def evaluate_checkpoint(params: Params, model_dir: Path, data: Path, seed: int) -> tuple[dict, dict]:
    """Metrics per split: greedy pass@1, pass@k, response length; a split with several benchmarks
    (the ood split of real-data sources) also per benchmark; an empty split records only its size.
    Outcomes per split: problem ids, greedy 0/1 and the number of correct samples, in split order."""
    splits = {split: load_split(data, split) for split in EVAL_SPLITS}  # validate all before computing
    engine = make_engine(params.rollout, *load_policy(model_dir, params.runtime))
    verifier = open_verifier(params.runtime, list(splits.values()))
    metrics: dict = {}
    outcomes: dict = {}
    try:
        for split, problems in splits.items():
            if not problems:
                metrics[split] = {"problems": 0}
                continue
            greedy = greedy_pass1(engine, problems, params.rollout, verifier)
            sampled = sampled_pass_k(engine, problems, params.rollout, params.eval.n_samples, params.eval.pass_k,
                                     seed, verifier)
            metrics[split] = {
                "greedy_pass1": greedy["pass1"],
                **{k: v for k, v in sampled.items() if k.startswith("pass@")},
                "response_tokens": greedy["response_tokens"],
                "problems": len(problems),
                **({"by_source": greedy["by_source"]} if "by_source" in greedy else {}),
            }
            outcomes[split] = {"ids": [p.id for p in problems], "greedy": greedy["outcomes"],
                               "sampled_correct": sampled["correct"], "n_samples": params.eval.n_samples}
    finally:
        engine.close()
        if verifier is not None:
            verifier.close()
    return metrics, outcomes


@stage_entry
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_params_argument(parser)
    parser.add_argument("--model", required=True, help="checkpoint directory")
    parser.add_argument("--data", default="results/data")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampled pass@k draws")
    parser.add_argument("--out", required=True, help="metrics JSON to write")
    parser.add_argument("--outcomes", help="per-problem outcomes JSON to write (default: next to --out)")
    args = parser.parse_args(argv)
    params = params_from_args(args)
    torch.set_num_threads(params.runtime.threads)
    metrics, outcomes = evaluate_checkpoint(params, Path(args.model), Path(args.data), args.seed)
    atomic_write_json(args.outcomes or outcomes_path(args.out), outcomes)
    atomic_write_json(args.out, metrics)
    print({split: round(m["greedy_pass1"], 3) for split, m in metrics.items() if m["problems"]})


if __name__ == "__main__":
    main()
