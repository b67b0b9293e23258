"""Per-step metrics: an in-memory history (the source of truth, saved in checkpoints) mirrored
into a dvclive directory for `dvc plots` and `dvc exp show`, and the progress lines a running job
prints. Metric names are documented in docs/metrics.md."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from dvclive import Live
from tqdm import tqdm

os.environ.setdefault("DVCLIVE_LOGLEVEL", "WARNING")

VAL_PASS1 = "eval/val/pass1"  # greedy pass@1 on the validation split: the learning curves' metric
# One chain per validation problem at the rollout temperature: smooth where greedy is a step function of a
# hard step whose right answer is not yet the policy's mode.
VAL_SAMPLED = "eval/val/pass1_sampled"


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


class Progress:
    """One line per reported step on stdout (the stage's log under Snakemake): where the run is,
    its latest numbers, seconds per step and the time left; in an interactive terminal also a
    live bar (none in logs)."""

    SHOWN = {"train/reward": "reward", VAL_PASS1: "val", "sft/loss": "loss",
             "eval/greedy_pass1": "greedy pass@1", "eval/pass@1": "sampled pass@1"}

    def __init__(self, name: str, total: int, done: int = 0):
        self.name, self.total, self.done, self.started = name, total, done, time.perf_counter()
        self.latest: dict[str, float] = {}
        self.bar = tqdm(total=total, initial=done, desc=name, leave=False, dynamic_ncols=True,
                        disable=not sys.stderr.isatty())

    def update(self, step: int, record: dict, line: bool = True) -> None:
        """Report `step` steps done (a line unless `line` is false: the bar only); values not in
        this record repeat the last seen."""
        self.latest.update({k: v for k, v in record.items() if k in self.SHOWN or k == "compute/tokens_generated"})
        self.bar.update(step - self.bar.n)
        if not line:
            return
        per_step = (time.perf_counter() - self.started) / max(step - self.done, 1)
        left = int(per_step * (self.total - step))
        numbers = " ".join(f"{label} {self.latest[k]:.3f}" for k, label in self.SHOWN.items() if k in self.latest)
        tokens = self.latest.get("compute/tokens_generated")
        tqdm.write(f"{self.name} step {step}/{self.total} {numbers}"
                   + (f" tokens {tokens / 1e3:.1f}k" if tokens is not None else "")
                   + f" {per_step:.2f} s/step ETA {left // 60}:{left % 60:02d}", file=sys.stdout)
        sys.stdout.flush()

    def close(self) -> None:
        self.bar.close()
