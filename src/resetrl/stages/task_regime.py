"""Stage `task_regime`: the quantities that decide whether resets can matter, measured on a warm
start (`resetrl.rl.probe`): per-step error rates, where first errors fall, the on-policy chance p
of reaching the first-error state, how improvable the reset state is, GRPO's group signal, and
self-localization against a random reset. Real-data problems have no step checker: the stage then
records only that nothing was measured."""

from __future__ import annotations

import argparse
from pathlib import Path

from resetrl.core.cli import stage_entry
from resetrl.core.config import add_params_argument, params_from_args
from resetrl.core.storage import atomic_write_json, check_writable
from resetrl.stages import declared_params


@stage_entry
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_params_argument(parser)
    parser.add_argument("--model", required=True, help="checkpoint directory (a warm start)")
    parser.add_argument("--data", default="results/data", help="prepared data directory")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampled chains")
    parser.add_argument("--out", required=True, help="measurements JSON to write")
    args = parser.parse_args(argv)
    params = declared_params(params_from_args(args), "task_regime")
    check_writable(args.out)
    import torch  # after parsing: --help and argument errors stay instant

    from resetrl.rl.probe import probe_task

    torch.set_num_threads(params.runtime.threads)
    out = probe_task(params, Path(args.model), Path(args.data), args.seed)
    atomic_write_json(args.out, out)
    if not out.get("step_checker", True):
        print("task_regime: no step checker for these problems, nothing measured")
        return
    print({k: out[k] for k in ("fresh_success", "p_reach")},
          {k: out["reset_state"][k] for k in ("suffix_success", "fresh_success_same_problems")})


if __name__ == "__main__":
    main()
