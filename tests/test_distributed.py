"""Data-parallel RL on torch.distributed (gloo, CPU): two processes with four prompts each make the update one
process makes with all eight, and a two-process run killed mid-way resumes to the same bytes."""

import itertools
import json
import os
import pickle
import signal
import subprocess
import sys
from unittest.mock import ANY

import pytest
import torch
from safetensors.torch import load_file

from resetrl.core.config import load_params
from resetrl.rl.trainer import RLTrainer
from resetrl.stages import train
from test_faults import snapshot, stage_process, train_argv, wait_for_checkpoint

# A global minibatch of 8 prompts x 4 chains in 2 minibatches, run 3 sequences per backward pass: the ranks'
# micro-batch counts differ where a minibatch splits unevenly between them (fixed_chains picks such a split), so
# the test covers gradients accumulated without synchronisation over unequal numbers of backward passes.
UPDATE = ["rl.prompts_per_step=8", "rl.minibatches=2", "runtime.micro_batch_size=3"]


def launch(nproc: int, *args: str) -> None:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def fixed_chains(repo_root, warm_start, tmp_path_factory):
    """Eight prompts' GRPO groups sampled once, with hand-set advantages of both signs (the update has
    something to move whatever the warm start scored), and a generator state for the update's minibatch
    permutation that splits a minibatch unevenly between the ranks."""
    params = load_params([repo_root / "params.yaml", repo_root / "configs/smoke.yaml"], UPDATE)
    root = tmp_path_factory.mktemp("fixed")
    trainer = RLTrainer(params, "grpo", 0, warm_start / "sft/model", warm_start / "data", root / "run")
    collected = trainer.arm.collect(trainer.next_prompts(), 0)
    for g in collected.groups:
        g.adv_G = torch.tensor([1.0, -1.0, 0.5, -0.5])[:len(g.chains)]
    # The first generator state whose minibatch permutation gives the two ranks different micro-batch counts.
    total = sum(len(g.chains) for g in collected.groups)
    for seed in itertools.count():
        generator = torch.Generator().manual_seed(seed)
        first = [int((idx < total // 2).sum()) for idx in torch.randperm(total, generator=generator).chunk(2)]
        if any(-(-a // 3) != -(-(total // 2 - a) // 3) for a in first):
            break
    path = root / "fixed.pkl"
    path.write_bytes(pickle.dumps({"groups": collected.groups,
                                   "generator": torch.Generator().manual_seed(seed).get_state()}))
    return path


def updated(nproc: int, repo_root, warm_start, fixed_chains, tmp_path) -> dict:
    spec = {"params": [str(repo_root / "params.yaml"), str(repo_root / "configs/smoke.yaml")],
            "overrides": [*UPDATE, f"runtime.world_size={nproc}"], "init": str(warm_start / "sft/model"),
            "data": str(warm_start / "data"), "run": str(tmp_path / f"run{nproc}"), "fixed": str(fixed_chains),
            "out": str(tmp_path / f"updated{nproc}.pt")}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    launch(nproc, str(repo_root / "tests/distributed_update.py"), str(tmp_path / "spec.json"))
    return torch.load(spec["out"])


def test_two_processes_with_four_prompts_each_make_the_update_of_one_with_eight(
        repo_root, warm_start, fixed_chains, tmp_path):
    one, two = (updated(n, repo_root, warm_start, fixed_chains, tmp_path) for n in (1, 2))
    micro_batches = [[-(-n // 3) for n in rank] for rank in two["rows"]]  # per rank and minibatch
    assert micro_batches[0] != micro_batches[1], two["rows"]
    start = load_file(warm_start / "sft/model/model.safetensors")
    moved = max(float((value - start[name]).abs().max()) for name, value in one["params"].items() if name in start)
    assert moved > 1e-5  # the update moved the weights well beyond the tolerance below
    assert one["params"].keys() == two["params"].keys()
    for name, value in one["params"].items():
        torch.testing.assert_close(two["params"][name], value, rtol=1e-5, atol=1e-6, msg=name)
    torch.testing.assert_close(two["signal_B"], one["signal_B"], rtol=1e-5, atol=1e-6)
    assert one["stats"].keys() == two["stats"].keys()
    for key in ("train/loss", "train/grad_norm"):
        assert two["stats"][key] == pytest.approx(one["stats"][key], rel=1e-4, abs=1e-6), key


def test_a_two_process_run_killed_mid_way_resumes_to_the_same_bytes(repo_root, warm_start, tmp_path):
    """The stage relaunches itself under torchrun (runtime.world_size 2); kill -9 of the whole process group
    after a checkpoint, rerun: each rank resumes its own sampling stream, and every output equals an
    uninterrupted run's."""
    args = ("runtime.world_size=2", "rl.steps=6", "rl.save_every=1")
    full = stage_process("train", *train_argv(repo_root, warm_start, tmp_path / "full", *args), cwd=repo_root)
    assert full.wait(timeout=600) == 0, full.communicate()[1][-3000:]
    argv = train_argv(repo_root, warm_start, tmp_path / "cut", *args)
    cut = subprocess.Popen([sys.executable, "-m", "resetrl.stages.train", *argv], cwd=repo_root,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    wait_for_checkpoint(cut, tmp_path / "cut/ckpt/index.json", 3)
    os.killpg(cut.pid, signal.SIGKILL)
    cut.wait()
    assert not (tmp_path / "cut/history.json").exists(), "the run ended before the kill"
    resumed = stage_process("train", *argv, cwd=repo_root)
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-3000:]
    assert "resumed from" in out
    assert snapshot(tmp_path / "cut") == snapshot(tmp_path / "full") | {"timings.json": ANY}
    history = json.loads((tmp_path / "full/history.json").read_text())
    assert len(history) == 7 and all(r["train/tokens_generated"] > 0 for r in history[:-1])


def test_a_launch_that_does_not_match_the_params_is_refused_in_one_line(repo_root, warm_start, tmp_path, capsys,
                                                                          monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(SystemExit) as exit_info:
        train.main(train_argv(repo_root, warm_start, tmp_path / "run", "runtime.world_size=2"))
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: runtime.world_size: 2, but the launcher started 3 processes; set runtime.world_size: 3 or launch 2"]
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(SystemExit) as exit_info:
        train.main(train_argv(repo_root, warm_start, tmp_path / "run", "runtime.world_size=2", "rl.prompts_per_step=3"))
    assert exit_info.value.code == 2
    assert "rl.prompts_per_step: 3 does not split over runtime.world_size: 2" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
