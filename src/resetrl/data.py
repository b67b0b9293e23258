"""Stage `prepare_data`: write the task's splits as JSONL plus a manifest (counts, seed, hashes).

Splits: train (SFT and RL), val (learning curves), test and ood (evaluation only). The procedural
task generates all four; real-data sources take train / val / test from their source and ood from
`task.eval_files` (empty without them)."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from resetrl.cli import stage_entry
from resetrl.config import ParamsError, add_params_argument, params_from_args, params_to_dict
from resetrl.sources import (
    eval_file_problems,
    load_numina,
    numina_problems,
    problem_from_dict,
    reasoning_gym_problems,
)
from resetrl.storage import atomic_write_json, check_writable, read_jsonl, write_jsonl
from resetrl.task import ProblemSpaceError, make_splits

SPLITS = ("train", "val", "test", "ood")


def split_path(data_dir: str | Path, split: str) -> Path:
    return Path(data_dir) / f"{split}.jsonl"


def load_split(data_dir: str | Path, split: str) -> list:
    """Problems of one split; a malformed line fails with `file:line: reason`."""
    return read_jsonl(split_path(data_dir, split), problem_from_dict)


def _without(problems: list, seen: set[str]) -> list:
    """Drop questions already in an earlier split (generators may repeat one across seeds)."""
    kept = [p for p in problems if p.question not in seen]
    seen.update(p.question for p in kept)
    return kept


def build_splits(task) -> dict[str, list]:
    """The four splits of `task.source`."""
    if task.source == "procedural":
        try:
            return make_splits(task)
        except ProblemSpaceError as error:  # params that validate but describe too few problems
            raise ParamsError(str(error)) from None
    ood = [p for name, path in sorted(task.eval_files.items()) for p in eval_file_problems(name, path)]
    if task.source == "numina":
        cfg = task.numina
        train, held_out = numina_problems(load_numina(cfg.path), cfg.n_train, cfg.n_test + task.n_val, cfg.seed,
                                          cfg.subset)
        return {"train": train, "test": held_out[:cfg.n_test], "val": held_out[cfg.n_test:], "ood": ood}
    # reasoning-gym draws item i from seed + i: each split starts its seeds past the previous split's.
    cfg, seen, splits, seed = task.reasoning_gym, set(), {}, task.reasoning_gym.seed
    for name, n in (("train", task.n_train), ("val", task.n_val), ("test", task.n_test)):
        splits[name] = _without(reasoning_gym_problems(cfg.datasets, n, seed), seen)
        seed += n
    return splits | {"ood": ood}


def prepare_data(task, data_dir: str | Path) -> dict:
    splits = build_splits(task)
    manifest = {"seed": task.seed, "task": params_to_dict(task), "splits": {}}
    for name in SPLITS:
        path = split_path(data_dir, name)
        write_jsonl(path, (p.to_dict() for p in splits[name]))
        manifest["splits"][name] = {
            "count": len(splits[name]),
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        }
    atomic_write_json(Path(data_dir) / "manifest.json", manifest)
    return manifest


@stage_entry
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_params_argument(parser)
    parser.add_argument("--out", default="results/data", help="directory for the JSONL splits")
    args = parser.parse_args(argv)
    task = params_from_args(args).task
    check_writable(Path(args.out) / "manifest.json")
    manifest = prepare_data(task, args.out)
    print({k: v["count"] for k, v in manifest["splits"].items()})


if __name__ == "__main__":
    main()
