"""Stage `train`: RL from the SFT warm start for one (arm, seed) run, resumable (`resetrl.rl.trainer`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from resetrl.core.cli import stage_entry
from resetrl.core.config import add_params_argument, params_from_args
from resetrl.core.storage import check_writable
from resetrl.stages import declared_params


@stage_entry
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_params_argument(parser)
    parser.add_argument("--method", required=True, help="an arm name from params.yaml `arms`")
    parser.add_argument("--seed", type=int, required=True,
                        help="study seed: RL sampling and data order (the warm start comes with --init)")
    parser.add_argument("--init", default="results/sft/seed0/model", help="warm-start checkpoint")
    parser.add_argument("--data", default="results/data", help="prepared data directory")
    parser.add_argument("--out", required=True, help="run directory (resumes from its checkpoints)")
    args = parser.parse_args(argv)
    params = declared_params(params_from_args(args), "train", args.method)
    if args.method not in params.arms:
        parser.error(f"--method {args.method!r} is not an arm of params.yaml: {sorted(params.arms)}")
    from resetrl.rl.distributed import check_launch, launcher_world_size, relaunch_argv

    world_size, launched = params.runtime.world_size, launcher_world_size()
    check_launch(world_size, launched or world_size, params.rl.prompts_per_step)
    check_writable(Path(args.out) / "history.json")
    if launched is None and world_size > 1:  # one command for Snakemake and DVC: it launches its processes
        command = relaunch_argv(world_size, __spec__.name, sys.argv[1:] if argv is None else argv)
        os.execv(command[0], command)
    import torch  # after parsing: --help and argument errors stay instant

    from resetrl.rl.trainer import RLTrainer

    torch.set_num_threads(params.runtime.threads)
    torch.manual_seed(args.seed)
    RLTrainer(params, args.method, args.seed, Path(args.init), Path(args.data), Path(args.out)).run()


if __name__ == "__main__":
    main()
