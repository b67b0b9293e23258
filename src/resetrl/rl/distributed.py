"""Data-parallel RL on torch.distributed: one run across `runtime.world_size` processes.

The launcher (torchrun, `accelerate launch`, or srun running torchrun) sets RANK / WORLD_SIZE / LOCAL_RANK;
the stage joins the process group it describes (gloo on CPU, NCCL on GPUs). A stage started plainly with
`runtime.world_size` > 1 relaunches itself under torchrun on this node, so Snakemake and DVC run one command.

Each rank samples a contiguous share of the step's prompts (a prompt's group stays whole) with its own engine
and its own sampling stream; DDP averages the gradients, each rank's loss weighted by its share of the global
minibatch, so the update equals one process's update on the same chains. With one process every call here is
the identity and the run is bitwise the single-process one.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import sys
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist

from resetrl.core.config import ParamsError


def launcher_world_size() -> int | None:
    """Processes the launcher started (None: no launcher)."""
    return int(os.environ["WORLD_SIZE"]) if "WORLD_SIZE" in os.environ else None


def relaunch_argv(world_size: int, module: str, argv: list[str]) -> list[str]:
    """The command that runs `python -m module argv` as `world_size` processes on this node."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={world_size}",
            "-m", module, *argv]


def weighted_mean(metrics: list[dict[str, float]], weights: list[float]) -> dict[str, float]:
    """Per key, the weighted mean of the dicts that hold it (a `_max` key: their maximum)."""
    out = {}
    for key in dict.fromkeys(k for m in metrics for k in m):
        held = [(m[key], w) for m, w in zip(metrics, weights) if key in m]
        if key.endswith("_max"):
            out[key] = max(v for v, _ in held)
        else:
            total = sum(w for _, w in held)
            out[key] = sum(v * w for v, w in held) / total if total else sum(v for v, _ in held) / len(held)
    return out


def rank_seed(seed: int, rank: int) -> int:
    """Each rank's sampling seed: rank 0 keeps the run's seed (one process is the single-process run)."""
    return seed if rank == 0 else seed + 1_000_003 * rank


@dataclass(frozen=True)
class Ranks:
    """This process's place in the run; with world_size 1 every collective is the identity."""

    rank: int = 0
    world_size: int = 1

    @property
    def main(self) -> bool:
        """Whether this process writes the run's outputs (checkpoints, metrics, the final model)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def shard(self, items: list) -> list:
        """This rank's contiguous, equal share (the caller checked divisibility)."""
        n = len(items) // self.world_size
        return items[self.rank * n:(self.rank + 1) * n]

    def gather(self, obj) -> list:
        """Every rank's `obj`, in rank order, on every rank."""
        if not self.distributed:
            return [obj]
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def summed(self, values: dict[str, float]) -> dict[str, float]:
        """Counts over all ranks (a key some rank lacks counts 0 there)."""
        if not self.distributed:
            return values
        parts = self.gather(values)
        return {k: sum(p.get(k, 0.0) for p in parts) for k in dict.fromkeys(k for p in parts for k in p)}

    def mean(self, metrics: dict[str, float], weight: float) -> dict[str, float]:
        """Ranks' metrics averaged, each rank weighted by `weight` (e.g. its chains)."""
        if not self.distributed:
            return metrics
        metrics_and_weights = self.gather((metrics, weight))
        return weighted_mean(*map(list, zip(*metrics_and_weights)))

    def broadcast_B(self, tensor_B: torch.Tensor) -> torch.Tensor:
        """Rank 0's tensor on every rank (e.g. the step's minibatch permutation)."""
        if self.distributed:
            dist.broadcast(tensor_B, 0)
        return tensor_B

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module gradients flow through: DDP across ranks, else the model itself."""
        if not self.distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel

        device = next(model.parameters()).device
        # No buffer broadcast before every forward pass: the buffers (rotary frequencies) are constants.
        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                       broadcast_buffers=False)

    def no_sync(self, wrapped: torch.nn.Module, last: bool):
        """Accumulate gradients locally until the minibatch's last backward, which reduces them once."""
        return contextlib.nullcontext() if last or not self.distributed else wrapped.no_sync()

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        """Leave the group. Gloo's worker threads free the tensors of finished collectives after the fact, taking
        the GIL; a group torn down (it joins them, holding the GIL) before they have would deadlock. So: a barrier,
        then a pause that releases the GIL to them."""
        if self.distributed and dist.is_initialized():
            dist.barrier()
            time.sleep(0.5)
            dist.destroy_process_group()


def check_launch(world_size: int, launched: int, prompts_per_step: int) -> None:
    """Refuse (one line, before compute) a launch that does not match the params or a batch that does not split
    evenly over the ranks."""
    if launched != world_size:
        raise ParamsError(f"runtime.world_size: {world_size}, but the launcher started {launched} processes; "
                          f"set runtime.world_size: {launched} or launch {world_size}")
    if prompts_per_step % world_size:
        raise ParamsError(f"rl.prompts_per_step: {prompts_per_step} does not split over runtime.world_size: "
                          f"{world_size} processes (a prompt's group stays on one rank); use a multiple")


def join(world_size: int, device: torch.device, prompts_per_step: int) -> Ranks:
    """Join the launcher's process group (one process: none)."""
    check_launch(world_size, launcher_world_size() or 1, prompts_per_step)
    if world_size == 1:
        return Ranks()
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    # The other ranks wait while rank 0 validates and writes the final model: minutes at 7B-14B, more than
    # NCCL's default 10-minute collective timeout allows.
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=datetime.timedelta(hours=2))
    return Ranks(dist.get_rank(), dist.get_world_size())
