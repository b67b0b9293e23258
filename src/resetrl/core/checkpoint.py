"""Resumable checkpoints: HF model + tokenizer + trainer state, written atomically; keeps the two
newest and the best (by validation accuracy). A small JSON index records the run's fingerprint and
the best score; each checkpoint also carries the fingerprint, so a broken index loses nothing."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch

from resetrl.core.model import save_policy
from resetrl.core.model_card import ModelCard
from resetrl.core.storage import atomic_write_json

STATE_FILE = "trainer_state.pt"
KEEP_NEWEST = 2  # a checkpoint found broken on resume falls back to the one before it
Loaded = TypeVar("Loaded")


def warn(message: str) -> None:
    print(f"warning: {message}", flush=True)


class CheckpointStore:
    """`fingerprint` identifies the run's inputs (config, warm start, data, method, seed):
    checkpoints of a run with other inputs are discarded, never resumed."""

    def __init__(self, root: str | Path, fingerprint: str):
        self.root = Path(root)
        self.index_path = self.root / "index.json"
        self.fingerprint = fingerprint
        if self.index().get("fingerprint", fingerprint) != fingerprint:
            print(f"discarding checkpoints in {self.root}: they belong to a run with other inputs")
            shutil.rmtree(self.root)
        # A kill during a save leaves its temporary copy behind (storage.atomic_dir's .NAME.*.tmp).
        for orphan in [*self.root.glob(".*.tmp*"), *self.root.glob(".*.old")]:
            shutil.rmtree(orphan) if orphan.is_dir() else orphan.unlink()

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
        for path in self.newest_first():
            try:
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
        name = f"step-{step:06d}"
        save_policy(model, tokenizer, self.root / name, card)
        torch.save({**state, "fingerprint": self.fingerprint}, self.root / name / f".{STATE_FILE}.tmp")
        (self.root / name / f".{STATE_FILE}.tmp").replace(self.root / name / STATE_FILE)
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
