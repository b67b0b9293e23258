"""Stage `task_regime` (`resetrl.task_probe`): the quantities that decide whether resets can matter, measured on a policy.

From `group_size` fresh chains per validation problem at the rollout temperature (GRPO's view of
the task) and `n_suffixes` suffixes resampled at each problem's first failed chain's exact first
error (the oracle reset's view):
  * the error rate of each step type: of the thoughts reached with a clean prefix, the share that
    are wrong, per operation (a chain that stops early is charged to its last thought, one that
    runs on past the last operation to "overrun", as `task.check_chain` does);
  * where first errors fall: the share at each thought and at the last one;
  * p, the on-policy chance that a fresh chain reaches the first-error state with a clean prefix
    (the other chains of the same problem that are clean through thought e-1), the CPI theory's
    quantity: resets can only pay where p is small;
  * how improvable the reset state is: suffix success from just before the exact first error
    against fresh chains of the same problems;
  * GRPO's groups: the share that are all wrong, all right (no signal) or mixed;
  * self-localization on those failed chains (greedy, as held out in training) next to what a
    uniform random reset gets on the same chains.
Real-data problems have no step checker: the stage then records only that nothing was measured.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from resetrl.cli import stage_entry
from resetrl.config import add_params_argument, params_from_args
from resetrl.storage import atomic_write_json, check_writable


@stage_entry
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_params_argument(parser)
    parser.add_argument("--model", required=True, help="checkpoint directory (a warm start)")
    parser.add_argument("--data", default="results/data", help="prepared data directory")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampled chains")
    parser.add_argument("--out", required=True, help="measurements JSON to write")
    args = parser.parse_args(argv)
    params = params_from_args(args)
    check_writable(args.out)
    import torch  # after parsing: --help and argument errors stay instant

    from resetrl.task_probe import probe_task

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
