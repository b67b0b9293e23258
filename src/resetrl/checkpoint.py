"""Resumable checkpoints: HF model + tokenizer + trainer state, written atomically; keeps the last
and the best (by validation accuracy), indexed by a small JSON file replaced atomically."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from resetrl.model import save_policy
from resetrl.storage import atomic_write_json

STATE_FILE = "trainer_state.pt"


class CheckpointStore:
    """`fingerprint` identifies the run's inputs (config, warm start, method, seed): checkpoints
    of a run with other inputs are discarded, never resumed."""

    def __init__(self, root: str | Path, fingerprint: str):
        self.root = Path(root)
        self.index_path = self.root / "index.json"
        self.fingerprint = fingerprint
        stale = self.index().get("fingerprint", fingerprint) != fingerprint
        if stale:
            print(f"discarding checkpoints in {self.root}: they belong to a run with other inputs")
            shutil.rmtree(self.root)

    def index(self) -> dict:
        return json.loads(self.index_path.read_text()) if self.index_path.exists() else {}

    def latest(self) -> Path | None:
        name = self.index().get("last")
        return self.root / name if name else None

    def save(self, step: int, model, tokenizer, state: dict, score: float | None) -> Path:
        """Write step-N, then point `last` (and `best` if score improves) at it, then prune."""
        name = f"step-{step:06d}"
        save_policy(model, tokenizer, self.root / name)
        torch.save(state, self.root / name / f".{STATE_FILE}.tmp")
        (self.root / name / f".{STATE_FILE}.tmp").replace(self.root / name / STATE_FILE)
        index = self.index()
        index["last"], index["fingerprint"] = name, self.fingerprint
        if score is not None and score >= index.get("best_score", float("-inf")):
            index["best"], index["best_score"] = name, score
        atomic_write_json(self.index_path, index)
        keep = {index.get("last"), index.get("best")}
        for old in self.root.glob("step-*"):
            if old.name not in keep:
                shutil.rmtree(old)
        return self.root / name

    @staticmethod
    def load_state(path: Path) -> dict:
        # weights_only=False: the state holds the optimizer dict, RNG bytes and plain python data.
        return torch.load(path / STATE_FILE, weights_only=False)
