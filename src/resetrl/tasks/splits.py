"""The task's splits as JSONL plus a manifest (counts, seed, hashes): written by stage
`prepare_data`, read by every later stage.

Splits: train (SFT and RL), val (learning curves), test and ood (evaluation only). The procedural
task generates all four; real-data sources take train / val / test from their source and ood from
`task.eval_files` (empty without them)."""

from __future__ import annotations

import json
from pathlib import Path

from resetrl.core.config import ParamsError, params_to_dict
from resetrl.core.storage import DataError, atomic_write_json, file_sha256, read_jsonl, write_jsonl
from resetrl.tasks.procedural import ProblemSpaceError, make_splits
from resetrl.tasks.sources import (
    eval_file_problems,
    load_numina,
    numina_problems,
    problem_from_dict,
    reasoning_gym_problems,
)

SPLITS = ("train", "val", "test", "ood")
MANIFEST = "manifest.json"


def split_path(data_dir: str | Path, split: str) -> Path:
    return Path(data_dir) / f"{split}.jsonl"


def split_hashes(data_dir: str | Path) -> dict[str, str]:
    """Each split's sha256 as prepare_data recorded it in the manifest."""
    path = Path(data_dir) / MANIFEST
    try:
        return {name: split["sha256"] for name, split in json.loads(path.read_text())["splits"].items()}
    except FileNotFoundError:
        raise DataError(f"{path}: not found (run the prepare_data stage)") from None
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise DataError(f"{path}: malformed manifest ({type(e).__name__}: {e})") from None


def training_hashes(data_dir: str | Path) -> dict[str, str]:
    """The sha256 of the splits training reads (train, val): what a run's resume fingerprint holds of its data."""
    hashes = split_hashes(data_dir)
    return {split: hashes[split] for split in ("train", "val")}


def load_split(data_dir: str | Path, split: str) -> list:
    """Problems of one split; a malformed line fails with `file:line: reason`, and a file whose bytes are not
    those the manifest recorded (rewritten after prepare_data) is refused."""
    path = split_path(data_dir, split)
    problems = read_jsonl(path, problem_from_dict)
    expected = split_hashes(data_dir).get(split)
    if file_sha256(path) != expected:
        raise DataError(f"{path}: its sha256 differs from the one in {MANIFEST} (the file changed after "
                        "prepare_data wrote it): rerun prepare_data")
    return problems


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
            "sha256": file_sha256(path),
        }
    atomic_write_json(Path(data_dir) / MANIFEST, manifest)
    return manifest
