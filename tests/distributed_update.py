"""Run by tests/test_distributed.py under torchrun: one RL update on fixed chains, each rank taking its
contiguous share of the groups; rank 0 saves the updated parameters and the step's stats.

    python -m torch.distributed.run --standalone --nproc_per_node N tests/distributed_update.py SPEC.json
"""

import json
import pickle
import sys
from pathlib import Path

import torch

from resetrl.core.config import load_params
from resetrl.rl.methods import Collected
from resetrl.rl.trainer import RLTrainer


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    params = load_params(spec["params"], spec["overrides"])
    trainer = RLTrainer(params, "grpo", 0, Path(spec["init"]), Path(spec["data"]), Path(spec["run"]))
    fixed = pickle.loads(Path(spec["fixed"]).read_bytes())
    groups = trainer.ranks.shard(fixed["groups"])
    trainer.generator.set_state(fixed["generator"])  # rank 0 draws the minibatch permutation
    rows = trainer.ranks.gather([len(idx) for idx in trainer.minibatch_rows(sum(len(g.chains) for g in groups))])
    trainer.generator.set_state(fixed["generator"])
    stats, signal_B = trainer.update(Collected(groups, {}, {}, []))
    signal_B = torch.cat(trainer.ranks.gather(signal_B))
    if trainer.ranks.main:
        torch.save({"params": {n: p.detach().clone() for n, p in trainer.model.named_parameters()},
                    "stats": stats, "signal_B": signal_B, "rows": rows}, spec["out"])
    trainer.ranks.close()


if __name__ == "__main__":
    main(sys.argv[1])
