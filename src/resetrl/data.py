"""Stage `prepare_data`: write the task's splits as JSONL plus a manifest (counts, seed, hashes)."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from resetrl.cli import stage_entry
from resetrl.config import add_params_argument, params_from_args, params_to_dict
from resetrl.storage import atomic_write_json, read_jsonl, write_jsonl
from resetrl.task import Problem, make_splits

SPLITS = ("train", "val", "test", "ood")


def split_path(data_dir: str | Path, split: str) -> Path:
    return Path(data_dir) / f"{split}.jsonl"


def load_split(data_dir: str | Path, split: str) -> list[Problem]:
    """Problems of one split; a malformed line fails with `file:line: reason`."""
    return read_jsonl(split_path(data_dir, split), Problem.from_dict)


def prepare_data(task, data_dir: str | Path) -> dict:
    splits = make_splits(task)
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
    manifest = prepare_data(params_from_args(args).task, args.out)
    print({k: v["count"] for k, v in manifest["splits"].items()})


if __name__ == "__main__":
    main()
