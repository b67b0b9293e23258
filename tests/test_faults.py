"""Nothing lost under faults: a full disk, changed data, Ctrl-C and kill -9 leave the previous outputs whole
and the next run resumes exactly."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors import SafetensorError

from resetrl.core.storage import STAGING, StagedOutputs, recover_outputs
from resetrl.stages import train

RUN_FILES = ("model/model.safetensors", "history.json", "timings.json", "resets.jsonl", "val_outcomes.json",
             "live/metrics.json")
FULL_DISK = 'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'


def snapshot(run: Path) -> dict[str, bytes]:
    return {name: (run / name).read_bytes() for name in RUN_FILES}


def train_argv(repo_root: Path, warm_start: Path, out: Path, *overrides: str) -> list[str]:
    sets = [arg for key in overrides for arg in ("--set", key)]
    return ["--params", str(repo_root / "params.yaml"), "--params", str(repo_root / "configs/smoke.yaml"), *sets,
            "--method", "grpo", "--seed", "0", "--init", str(warm_start / "sft/model"), "--data",
            str(warm_start / "data"), "--out", str(out)]


def run_main(argv: list[str], capsys) -> tuple[int, list[str]]:
    """Exit status and stderr lines of the train stage run in this process."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        train.main(argv)
        sys.exit(0)
    return exit_info.value.code, capsys.readouterr().err.splitlines()


@pytest.fixture(scope="module")
def finished_run(repo_root, warm_start, tmp_path_factory) -> Path:
    """A run whose outputs a failing rerun must leave alone."""
    out = tmp_path_factory.mktemp("run") / "grpo"
    train.main(train_argv(repo_root, warm_start, out))
    return out


@pytest.mark.parametrize("fails", ["final model", "a checkpoint"])
def test_a_full_disk_ends_in_one_line_and_keeps_the_previous_outputs(
        repo_root, warm_start, finished_run, tmp_path, capsys, monkeypatch, fails):
    run = tmp_path / "grpo"
    shutil.copytree(finished_run, run)
    before = snapshot(run)
    import transformers.modeling_utils as modeling

    real_save = modeling.safe_save_file

    def save_until_full(tensors, filename, *args, **kwargs):  # safetensors' own error, not an OSError
        if (STAGING in str(filename)) == (fails == "final model"):
            raise SafetensorError(FULL_DISK)
        return real_save(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(modeling, "safe_save_file", save_until_full)
    status, err = run_main(train_argv(repo_root, warm_start, run, "rl.lr=3e-4"), capsys)  # other inputs: a new run
    target = run / "model" if fails == "final model" else run / "ckpt" / "step-000002"
    assert status == 2
    assert err == [f"error: {target}: No space left on device"]
    assert snapshot(run) == before, "a failed rerun must leave every previous output as it was"
    monkeypatch.setattr(modeling, "safe_save_file", real_save)
    capsys.readouterr()
    train.main(train_argv(repo_root, warm_start, run, "rl.lr=3e-4"))  # the next start cleans up and finishes
    assert not (run / STAGING).exists() and snapshot(run) != before


def test_too_little_free_space_is_refused_before_compute(repo_root, warm_start, finished_run, tmp_path, capsys,
                                                          monkeypatch):
    run = tmp_path / "grpo"
    shutil.copytree(finished_run, run)
    before = snapshot(run)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1 << 30, 1 << 30, 1 << 20))
    status, err = run_main(train_argv(repo_root, warm_start, run, "rl.lr=3e-4"), capsys)
    assert status == 2 and len(err) == 1
    assert err[0].startswith(f"error: {run}: run grpo seed 0 (checkpoints and final model) needs about ")
    assert err[0].endswith(" MiB, 1 MiB free")
    assert snapshot(run) == before and not (run / STAGING).exists()
    assert sorted(p.name for p in (run / "ckpt").glob("step-*")) == ["step-000002", "step-000004"]


@pytest.mark.parametrize("split", ["train", "val"])
def test_data_changed_after_prepare_data_is_refused(repo_root, warm_start, tmp_path, capsys, split):
    data = tmp_path / "data"
    shutil.copytree(warm_start / "data", data)
    lines = (data / f"{split}.jsonl").read_text().splitlines(keepends=True)
    (data / f"{split}.jsonl").write_text("".join([lines[1], lines[0], *lines[2:]]))  # each line still valid
    argv = train_argv(repo_root, warm_start, tmp_path / "run")
    argv[argv.index("--data") + 1] = str(data)
    status, err = run_main(argv, capsys)
    assert status == 2
    assert err == [f"error: {data / split}.jsonl: its sha256 differs from the one in manifest.json (the file "
                   "changed after prepare_data wrote it): rerun prepare_data"]
    assert not list((tmp_path / "run").rglob("*")), "nothing may be written"


def test_staged_outputs_change_together(tmp_path):
    (tmp_path / "a.json").write_text("old a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("old b")
    staged = StagedOutputs(tmp_path, ("a.json", "b"))
    (staged / "a.json").write_text("new a")
    assert (tmp_path / "a.json").read_text() == "old a"  # nothing changes before the commit
    with pytest.raises(OSError, match=r"\['b'\] were not written"):
        staged.commit()
    (staged / "b").mkdir()
    (staged / "b" / "y").write_text("new b")
    staged.commit()
    assert (tmp_path / "a.json").read_text() == "new a" and [p.name for p in (tmp_path / "b").iterdir()] == ["y"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b"]


def test_a_swap_cut_by_a_kill_is_completed_and_an_unfinished_staging_dropped(tmp_path):
    (tmp_path / "a.json").write_text("old a")
    (tmp_path / "b.json").write_text("old b")
    staged = StagedOutputs(tmp_path, ("a.json", "b.json"))
    for name in ("a.json", "b.json"):
        (staged / name).write_text(f"new {name[0]}")
    (staged.dir / "COMMITTED").write_text('["a.json", "b.json"]')  # committed, then killed before the swap:
    os.replace(tmp_path / "a.json", staged.dir / "aside")  # half-way through moving the old set aside
    recover_outputs(tmp_path)
    assert [(tmp_path / n).read_text() for n in ("a.json", "b.json")] == ["new a", "new b"]
    assert not (tmp_path / STAGING).exists()
    staged = StagedOutputs(tmp_path, ("a.json", "b.json"))  # written, never committed: the old set stays
    (staged / "a.json").write_text("newer a")
    (tmp_path / ".b.json.0123.tmp").write_text("partial")  # a write cut by a kill
    recover_outputs(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]
    assert (tmp_path / "a.json").read_text() == "new a"


def _sigint_as_at_a_terminal() -> None:
    # A shell's background job (pytest run with &) ignores SIGINT, and a CI runner may block it; both pass to
    # the child through exec, and the stage would then never see the Ctrl-C the test sends.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def stage_process(module: str, *args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", f"resetrl.stages.{module}", *args], cwd=cwd,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_sigint_as_at_a_terminal)


def wait_for_checkpoint(proc: subprocess.Popen, index: Path, step: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if int(json.loads(index.read_text())["last"].removeprefix("step-")) >= step:
                return
        except (FileNotFoundError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint at step {step} (exit {proc.poll()}): {proc.communicate()[1][-2000:]}")


def test_ctrl_c_stops_a_stage_in_one_line_with_exit_130_and_it_resumes(repo_root, warm_start, tmp_path):
    argv = train_argv(repo_root, warm_start, tmp_path / "run", "rl.steps=40")
    proc = stage_process("train", *argv, cwd=repo_root)
    wait_for_checkpoint(proc, tmp_path / "run/ckpt/index.json", 2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert err.splitlines() == ["interrupted: stage train stopped; run it again to resume from its last checkpoint"]
    resumed = stage_process("train", *argv, cwd=repo_root)
    wait_for_checkpoint(resumed, tmp_path / "run/ckpt/index.json", 4)
    resumed.kill()
    assert "resumed from" in resumed.communicate()[0]


def test_a_warm_start_killed_at_a_random_step_resumes_to_the_same_model(repo_root, warm_start, tmp_path):
    """kill -9 at a random moment after a random checkpoint; the rerun ends with the same bytes."""
    args = ["--params", str(repo_root / "params.yaml"), "--params", str(repo_root / "configs/smoke.yaml"),
            "--set", "sft.steps=60", "--set", "sft.eval_every=10", "--data", str(warm_start / "data")]
    full = stage_process("sft", *args, "--out", str(tmp_path / "full"), cwd=repo_root)
    assert full.wait(timeout=600) == 0, full.communicate()[1]
    rng = random.Random()
    cut_after = rng.choice([10, 20, 30, 40])
    cut = stage_process("sft", *args, "--out", str(tmp_path / "cut"), cwd=repo_root)
    wait_for_checkpoint(cut, tmp_path / "cut/ckpt/index.json", cut_after)
    time.sleep(rng.uniform(0, 0.5))
    cut.kill()
    cut.wait()
    assert not (tmp_path / "cut/summary.json").exists(), f"the run ended before the kill (after step {cut_after})"
    resumed = stage_process("sft", *args, "--out", str(tmp_path / "cut"), cwd=repo_root)
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    assert "resumed from" in out
    for name in ("model/model.safetensors", "live/metrics.json"):
        assert (tmp_path / "cut" / name).read_bytes() == (tmp_path / "full" / name).read_bytes(), name
    full_summary, cut_summary = (json.loads((tmp_path / run / "summary.json").read_text()) for run in ("full", "cut"))
    assert full_summary | {"time/seconds": 0} == cut_summary | {"time/seconds": 0}
