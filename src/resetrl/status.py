"""Where a running study is: one line per warm start and RL run, from the live metrics each job
rewrites after every step (`python -m resetrl.status`, from the repo root, in another terminal).

A run is `done` once its final outputs exist at the last step, `running` while its live metrics changed in the last
`--stale` seconds, else `stopped` (killed or waiting to be resumed), and absent until it starts. Steps, arms and
seeds come from the params Snakemake recorded under the results root (logs/params.yaml), so the command works as
printed for any overlay; without that record (a DVC run) or with --params / --set, from those files.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from resetrl.core.config import ROOT_PARAMS, add_params_argument, load_params, params_from_args
from resetrl.core.storage import STAGING


def live_metrics(run_dir: Path) -> Path:
    """A job's dvclive summary: in its staged outputs while it runs (or after it stopped), else the final one."""
    staged = run_dir / STAGING / "live" / "metrics.json"
    return staged if staged.exists() else run_dir / "live" / "metrics.json"


def run_line(name: str, run_dir: Path, total: int, done_marker: str, stale_s: float, now: float) -> str | None:
    try:
        path = live_metrics(run_dir)
        summary, age = json.loads(path.read_text()), now - path.stat().st_mtime
    except (FileNotFoundError, json.JSONDecodeError):  # not started, or caught mid-rewrite
        return None
    step = summary.get("step", 0)
    finished = (run_dir / done_marker).exists() and step >= total
    state = "done" if finished else "running" if age < stale_s else "stopped"
    val = summary.get("eval", {}).get("val", {}).get("pass1")
    reward = summary.get("train", {}).get("reward")
    fields = [f"{name:<24}", f"step {step:>5}/{total:<5}",
              f"val {val:.3f}" if val is not None else "val   -  ",
              f"reward {reward:.3f}" if reward is not None else "reward   -  ",
              f"{state} ({age:.0f} s ago)" if state != "done" else state]
    return "  ".join(fields)


def study_status(results: Path, params, stale_s: float = 120.0) -> list[str]:
    now = time.time()
    lines = [run_line(f"sft seed{s}", results / "sft" / f"seed{s}", params.sft.steps, "summary.json", stale_s, now)
             for s in params.study.seeds]
    lines += [run_line(f"train {m} seed{s}", results / "runs" / m / f"seed{s}", params.rl.steps, "history.json",
                       stale_s, now)
              for m in params.study.methods for s in params.study.seeds]
    return [line for line in lines if line is not None]


def study_params(results: Path, args: argparse.Namespace):
    """The params of the study under `results`: the ones its Snakemake run recorded, unless files or
    overrides are given."""
    recorded = results / ROOT_PARAMS
    if args.params or args.set or not recorded.exists():
        return params_from_args(args)
    return load_params(recorded)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_params_argument(parser)
    parser.add_argument("--results", default="results", help="the study's results root")
    parser.add_argument("--stale", type=float, default=120.0,
                        help="seconds without a metrics update after which a run counts as stopped")
    args = parser.parse_args(argv)
    lines = study_status(Path(args.results), study_params(Path(args.results), args), args.stale)
    print("\n".join(lines) if lines else f"no run has started under {args.results}/ yet")


if __name__ == "__main__":
    main()
