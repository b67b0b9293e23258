"""Stage `sft`: the warm start (`resetrl.rl.warmstart`): the tiny model imitates solution chains before RL
(with sft.skill_steps, a fine-tune of the shared skill on the designed demonstrations)."""

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
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: runtime.threads); Snakemake runs the seeds' warm starts "
                             "side by side, one core each")
    parser.add_argument("--seed", type=int, default=0,
                        help="study seed s: SFT seed sft.seed + s, initialisation model.init_seed + s")
    parser.add_argument("--data", default="results/data", help="prepared data directory")
    parser.add_argument("--skill", default="results/skill/model",
                        help="the shared skill (stage skill) it fine-tunes when sft.skill_steps > 0")
    parser.add_argument("--out", default="results/sft/seed0", help="directory for the model and summary.json")
    args = parser.parse_args(argv)
    params = params_from_args(args)
    if args.seed:  # the study seed's own warm start: other data order and initialisation
        params = replace(params, sft=replace(params.sft, seed=params.sft.seed + args.seed),
                         model=replace(params.model, init_seed=params.model.init_seed + args.seed))
    params = declared_params(params, "sft")
    check_writable(Path(args.out) / "summary.json")
    import torch  # after parsing: --help and argument errors stay instant

    from resetrl.rl.warmstart import run_sft

    torch.set_num_threads(args.threads or params.runtime.threads)
    init = Path(args.skill) if params.sft.skill_steps else None
    summary = run_sft(params, Path(args.data), Path(args.out), args.seed, init)
    print(f"sft: val pass@1 {summary[VAL_PASS1]:.3f}, held-out localization exact match "
          f"{summary['loc/heldout_exact_match']}, {summary['model/parameters']} params")


if __name__ == "__main__":
    main()
