"""Resumable checkpoints: HF model + tokenizer + trainer state, written atomically; keeps the two
newest and the best (by validation accuracy). A small JSON index records the run's fingerprint and
the best score; each checkpoint also carries the fingerprint, so a broken index loses nothing, and the
sha256 of each of its files, verified before it is resumed (a flipped byte is a broken checkpoint)."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch

from resetrl.core.config import params_to_dict
from resetrl.core.model import save_policy
from resetrl.core.model_card import ModelCard, digest
from resetrl.core.storage import atomic_write_json, file_sha256, recover_outputs, writing

STATE_FILE = "trainer_state.pt"
CHECKSUMS = "checksums.json"  # written last: a checkpoint without it is incomplete
KEEP_NEWEST = 2  # a checkpoint found broken on resume falls back to the one before it
Loaded = TypeVar("Loaded")


def directory_digest(path: Path, max_hashed_bytes: int = 1 << 26) -> str:
    """Digest of a checkpoint directory: contents of its files up to 64 MiB (the whole default
    model, configs, a pointer), name, size and mtime of larger ones (a 14B model's shards)."""
    hasher = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = f.stat()
        hasher.update(f"{f.relative_to(path)}:{stat.st_size}".encode())
        hasher.update(f.read_bytes() if stat.st_size <= max_hashed_bytes else str(stat.st_mtime_ns).encode())
    return hasher.hexdigest()


def run_fingerprint(params, init: Path | None, data_hashes: dict[str, str], **identity) -> str:
    """Hash of everything a training job's trajectory depends on, to refuse resuming a different one: its
    declared params, its starting checkpoint, the sha256 of the data it reads and `identity` (arm, seed...)."""
    return digest({**identity, **params_to_dict(params), "init": None if init is None else directory_digest(init),
                   "data": data_hashes})


def warn(message: str) -> None:
    print(f"warning: {message}", flush=True)


class CheckpointStore:
    """`fingerprint` identifies the run's inputs (config, warm start, data, method, seed):
    checkpoints of a run with other inputs are never resumed, and discarded only when this run saves
    its first (a run stopped before then loses nothing)."""

    def __init__(self, root: str | Path, fingerprint: str):
        self.root = Path(root)
        self.index_path = self.root / "index.json"
        self.fingerprint = fingerprint
        self.foreign = self.index().get("fingerprint", fingerprint) != fingerprint
        recover_outputs(self.root)  # a kill during a save leaves its temporary copy behind

    def index(self) -> dict:
        try:
            return json.loads(self.index_path.read_text())
        except FileNotFoundError:
            return {}
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            warn(f"{self.index_path} is unreadable ({e}); each checkpoint's own fingerprint is used")
            return {}

    def newest_first(self) -> list[Path]:
        return sorted((p for p in self.root.glob("step-*") if p.is_dir()), reverse=True)

    def load_latest(self, load_model: Callable[[Path], Loaded]) -> tuple[Path, dict, Loaded] | None:
        """(path, trainer state, `load_model(path)`) of the newest checkpoint that reads whole and
        is this run's; a broken one is skipped with a one-line warning. None: start afresh."""
        if self.foreign:
            print(f"not resuming from {self.root}: its checkpoints belong to a run with other inputs "
                  "(they are discarded at this run's first checkpoint)")
            return None
        for path in self.newest_first():
            try:
                verify_checksums(path)
                state = self.load_state(path)
                if state.get("fingerprint") != self.fingerprint:
                    raise ValueError("it belongs to a run with other inputs")
                return path, state, load_model(path)
            except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is skipped, never fatal
                reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
                warn(f"skipping checkpoint {path}: {type(e).__name__}: {reason}")
        return None

    def save(self, step: int, model, tokenizer, state: dict, card: ModelCard, score: float | None) -> Path:
        """Write step-N, then record it (and the best score) in the index, then prune."""
        if self.foreign:
            shutil.rmtree(self.root)
            self.foreign = False
        name = f"step-{step:06d}"
        save_policy(model, tokenizer, self.root / name, card)
        with writing(self.root / name / STATE_FILE):
            torch.save({**state, "fingerprint": self.fingerprint}, self.root / name / f".{STATE_FILE}.tmp")
            (self.root / name / f".{STATE_FILE}.tmp").replace(self.root / name / STATE_FILE)
        atomic_write_json(self.root / name / CHECKSUMS, checksums(self.root / name))
        index = self.index()
        index["last"], index["fingerprint"] = name, self.fingerprint
        if score is not None and score >= index.get("best_score", float("-inf")):
            index["best"], index["best_score"] = name, score
        atomic_write_json(self.index_path, index)
        keep = {p.name for p in self.newest_first()[:KEEP_NEWEST]} | {index.get("best")}
        for old in self.newest_first():
            if old.name not in keep:
                shutil.rmtree(old)
        return self.root / name

    @staticmethod
    def load_state(path: Path) -> dict:
        # weights_only=False: the state holds the optimizer dict, RNG bytes and plain python data.
        return torch.load(path / STATE_FILE, weights_only=False)


def required_bytes(model, trainable: list[torch.nn.Parameter]) -> int:
    """Disk a training job needs at most: the kept checkpoints plus one being written, each holding the
    trained weights (all of them, or LoRA's adapters) and AdamW's two moments of each, then the final model."""
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    trained = sum(p.numel() * p.element_size() for p in trainable)
    saved = trained if hasattr(model, "peft_config") else weights
    return (KEEP_NEWEST + 2) * (saved + 2 * trained) + weights


def checksums(directory: Path) -> dict[str, str]:
    return {str(f.relative_to(directory)): file_sha256(f)
            for f in sorted(directory.rglob("*")) if f.is_file() and f.name != CHECKSUMS}


def verify_checksums(directory: Path) -> None:
    """Raise ValueError naming the first file whose bytes differ from those the checkpoint was saved with."""
    try:
        expected = json.loads((directory / CHECKSUMS).read_text())
    except FileNotFoundError:
        raise ValueError(f"no {CHECKSUMS}: the save did not finish") from None
    actual = checksums(directory)
    for name in sorted(set(expected) | set(actual)):
        if expected.get(name) != actual.get(name):
            raise ValueError(f"{name} differs from its sha256 in {CHECKSUMS}" if name in expected and name in actual
                             else f"{name} is {'missing' if name in expected else 'not in ' + CHECKSUMS}")
