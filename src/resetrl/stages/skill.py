"""Stage `skill`: the shared skill (`resetrl.rl.warmstart`), trained once for every seed: the tiny model
imitates correct demonstrations until its validation greedy pass@1 reaches sft.skill_target (at most
sft.skill_steps steps), so the arithmetic is learned to convergence once; each seed's `sft` stage then
fine-tunes it on the designed demonstrations. With sft.skill_steps 0 no seed uses it: the stage only saves
the starting policy (a pointer for a pretrained model)."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from resetrl.core.cli import stage_entry
from resetrl.core.config import add_params_argument, params_from_args
from resetrl.core.metrics import VAL_PASS1
from resetrl.core.storage import check_writable
from resetrl.stages import declared_params


@stage_entry
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_params_argument(parser)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: runtime.threads)")
    parser.add_argument("--data", default="results/data", help="prepared data directory")
    parser.add_argument("--out", default="results/skill", help="directory for the model and summary.json")
    args = parser.parse_args(argv)
    params = params_from_args(args)
    skill_steps = params.sft.skill_steps
    params = declared_params(replace(params, sft=replace(params.sft, steps=skill_steps, lr=params.sft.skill_lr)),
                             "skill")
    check_writable(Path(args.out) / "summary.json")
    import torch  # after parsing: --help and argument errors stay instant

    from resetrl.rl.warmstart import run_sft, save_start

    torch.set_num_threads(args.threads or params.runtime.threads)
    if not skill_steps:
        save_start(params, Path(args.out))
        print("skill: sft.skill_steps is 0; saved the starting policy, which no seed uses")
        return
    summary = run_sft(params, Path(args.data), Path(args.out), designed_errors=False, target=params.sft.skill_target)
    print(f"skill: val pass@1 {summary[VAL_PASS1]:.3f} after {summary['sft/steps']} steps on correct demonstrations")


if __name__ == "__main__":
    main()
