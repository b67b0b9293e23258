"""Per-step metrics: an in-memory history (the source of truth, saved in checkpoints) mirrored
into a dvclive directory for `dvc plots` and `dvc exp show`."""

from __future__ import annotations

import os
from pathlib import Path

from dvclive import Live

os.environ.setdefault("DVCLIVE_LOGLEVEL", "WARNING")


class MetricsLog:
    """Replays `history` into a fresh dvclive dir so a resumed run's logs equal an uninterrupted
    run's (steps logged after the last checkpoint are dropped, not duplicated)."""

    def __init__(self, directory: str | Path, history: list[dict]):
        # No dvc.yaml edits, no auto experiments: the pipeline's dvc.yaml declares these files.
        self.live = Live(str(directory), resume=False, save_dvc_exp=False, dvcyaml=False)
        self.history = history
        for record in history:
            self._write(record)

    def log(self, record: dict) -> None:
        self.history.append(record)
        self._write(record)

    def _write(self, record: dict) -> None:
        self.live.step = record["step"]
        for name, value in record.items():
            if name != "step":
                self.live.log_metric(name, value)
        self.live.make_summary()

    def close(self) -> None:
        self.live.end()
