"""Where the default study's time goes: each stage of the last Snakemake run, and each phase of an
RL step, measured side by side in one process.

1. Stages: job-seconds per rule from a Snakemake log (default: the newest in .snakemake/log),
   from each job's start and finish stamps. Jobs run two at a time on 2 cores, so the wall time is
   about half the job-seconds.
2. One RL step, per arm (`--arms`): fresh draws (the reset buffer's search, or GRPO's groups),
   localization calls, suffix sampling, the update (behaviour log-probs + minibatch passes), and
   the periodic validation and held-out localization evaluations, from a warm start and the
   study's data (run the study's `sft` and `prepare_data` first).

Run: `python benchmarks/stage_profile.py` -> results/benchmarks/profile.json, and the tables on stdout.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import torch
from common import REPO, write_result

import resetrl.rl.methods.reset as reset_module
from resetrl.core.config import load_params
from resetrl.rl.trainer import RLTrainer

STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]$")
START = re.compile(r"^(?:local)?rule (\w+):$")
JOBID = re.compile(r"^\s+jobid: (\d+)$")
FINISHED = re.compile(r"^Finished jobid: (\d+)")


def stage_seconds(log: Path) -> dict:
    """Rule -> {jobs, job_seconds} from a Snakemake log; plus the log's first-to-last span."""
    stamp = first = None
    rule, started, spans = None, {}, defaultdict(list)
    for line in log.read_text().splitlines():
        if m := STAMP.match(line):
            stamp = datetime.strptime(" ".join(m.group(1).split()), "%a %b %d %H:%M:%S %Y")
            first = first or stamp
        elif m := START.match(line):
            rule = m.group(1)
        elif (m := JOBID.match(line)) and rule is not None:
            started[m.group(1)] = (rule, stamp)
            rule = None
        elif (m := FINISHED.match(line)) and m.group(1) in started:
            name, begun = started.pop(m.group(1))
            spans[name].append((stamp - begun).total_seconds())
    rules = {name: {"jobs": len(s), "job_seconds": sum(s)} for name, s in spans.items() if name != "all"}
    return {"log": str(log), "wall_seconds": (stamp - first).total_seconds() if first else None, "rules": rules}


class PhaseTimer:
    """Wraps functions so that their wall time accumulates under a phase name."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, fn, phase: str):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[phase] += time.perf_counter() - started
        return timed


def step_phases(params, method: str, init: Path, data: Path, steps: int) -> dict:
    """Mean seconds per RL step by phase (after one untimed step), and one validation and held-out
    localization evaluation (they run every rl.eval_every / rl.loc_eval_every steps)."""
    timer = PhaseTimer()
    originals = {name: getattr(reset_module, name) for name in ("draw_fresh", "sample_suffixes")}
    with tempfile.TemporaryDirectory() as out:
        trainer = RLTrainer(params, method, 0, init, data, Path(out))
        trainer.train_step()  # warm-up: first-call allocations
        reset_module.draw_fresh = timer.wrap(originals["draw_fresh"], "fresh draws")
        reset_module.sample_suffixes = timer.wrap(originals["sample_suffixes"], "suffixes")
        selector = getattr(trainer.arm, "selector", None)
        if selector is None:  # GRPO and the per-token families: their groups are the fresh draws
            trainer.arm.collect = timer.wrap(trainer.arm.collect, "fresh draws")
        else:
            selector.select = timer.wrap(selector.select, "localization" if hasattr(selector, "engine") else "select")
        trainer.update = timer.wrap(trainer.update, "update")
        try:
            started = time.perf_counter()
            for _ in range(steps):
                trainer.train_step()
            total = (time.perf_counter() - started) / steps
        finally:
            for name, fn in originals.items():
                setattr(reset_module, name, fn)
        per_step = {k: v / steps for k, v in timer.seconds.items()}
        per_step["other (scoring, advantages, bookkeeping)"] = total - sum(per_step.values())
        evals = {}
        for name, run in (("validation", lambda: trainer.validate(0)),
                          ("held-out localization", trainer.localization_check)):
            started = time.perf_counter()
            run()
            evals[name] = time.perf_counter() - started
        trainer.engine.close()
    return {"step_seconds": total, "phases": per_step, "evaluation_seconds": evals,
            "eval_every": params.rl.eval_every, "loc_eval_every": params.rl.loc_eval_every}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log", type=Path, default=None, help="Snakemake log (default: the newest that ran a job)")
    parser.add_argument("--arms", nargs="+", default=["grpo", "srpo"])
    parser.add_argument("--steps", type=int, default=3, help="timed RL steps per arm")
    parser.add_argument("--init", type=Path, default=REPO / "results/sft/seed0/model")
    parser.add_argument("--data", type=Path, default=REPO / "results/data")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logs = sorted((REPO / ".snakemake" / "log").glob("*.snakemake.log"))
    runs = [f for f in logs if "Finished jobid" in f.read_text()]
    log = args.log or (runs[-1] if runs else None)  # dry runs (snakemake -n) finish no job
    stages = stage_seconds(log) if log else None
    params = load_params([REPO / "params.yaml"])
    steps = {m: step_phases(params, m, args.init, args.data, args.steps) for m in args.arms}
    path = write_result("profile", {"threads": args.threads, "stages": stages, "rl_step": steps})
    if stages:
        total = sum(r["job_seconds"] for r in stages["rules"].values())
        print(f"stages ({stages['log']}, wall {stages['wall_seconds']:.0f} s):")
        for name, r in sorted(stages["rules"].items(), key=lambda kv: -kv[1]["job_seconds"]):
            print(f"  {name:22s} {r['jobs']:3d} jobs {r['job_seconds']:8.0f} job-s  {r['job_seconds'] / total:6.1%}")
    for m, s in steps.items():
        print(f"{m}: {s['step_seconds']:.2f} s per step")
        for phase, sec in sorted(s["phases"].items(), key=lambda kv: -kv[1]):
            print(f"  {phase:42s} {sec:6.2f} s  {sec / s['step_seconds']:6.1%}")
        for name, sec in s["evaluation_seconds"].items():
            every = s["eval_every" if name == "validation" else "loc_eval_every"]
            print(f"  {name:42s} {sec:6.2f} s  (every {every} steps)")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
