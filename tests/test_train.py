"""The RL trainer: it learns (parameters move), checkpoints atomically and resumes exactly."""

import dataclasses
import json

import pytest
import torch

from resetrl.core.model import load_policy
from resetrl.rl.trainer import RLTrainer


def trainer(params, warm_start, out, seed=0, method="grpo"):
    return RLTrainer(params, method, seed, warm_start / "sft" / "model", warm_start / "data", out)


@pytest.mark.parametrize("method", ["grpo", "rrpo", "srpo", "oracle", "srpo_2x4", "srpo_clip_seq", "demo",
                                    "oracle_1x8", "vineppo", "process_oracle", "first_error_credit"])
def test_one_step_changes_parameters_and_counts_tokens(smoke_params, warm_start, tmp_path, method):
    t = trainer(smoke_params, warm_start, tmp_path, method=method)
    before = [p.detach().clone() for p in t.model.parameters()]
    stats = t.train_step()
    moved = [not torch.equal(a, b) for a, b in zip(before, t.model.parameters())]
    assert any(moved), "an optimizer step must change the policy"
    assert stats["train/tokens_generated"] >= smoke_params.rl.prompts_per_step * smoke_params.rl.group_size
    generated = [k for k in stats if k.startswith("train/tokens_") and k not in (
        "train/tokens_generated", "train/tokens_prefix_reused")]
    assert stats["train/tokens_generated"] == sum(stats[k] for k in generated)
    if method == "vineppo":  # the Monte-Carlo rollouts are charged as compute
        assert stats["train/tokens_mc"] > 0 and "train/tokens_mc" in generated
    if smoke_params.arms[method].family == "reset":
        assert "reset/rate" in stats and "reset/draws_per_prompt" in stats
    if method.startswith("srpo") and stats["reset/rate"] > 0:
        assert stats["train/tokens_localization"] > 0  # the localization call is counted as compute
    assert 0.0 <= stats["train/reward"] <= 1.0
    assert all(torch.isfinite(torch.tensor(v)) for v in stats.values())


def test_activation_checkpointing_changes_memory_not_the_update(smoke_params, warm_start, tmp_path):
    """The same chains (advantages of both signs) and generator state: the parameters after an update with
    and without recomputing activations agree to float precision."""
    params = dataclasses.replace(smoke_params, runtime=dataclasses.replace(smoke_params.runtime,
                                                                           activation_checkpointing=True))
    plain, recomputing = trainer(smoke_params, warm_start, tmp_path / "plain"), trainer(params, warm_start,
                                                                                       tmp_path / "ckpt")
    assert recomputing.model.is_activation_checkpointing and not plain.model.is_activation_checkpointing
    collected = plain.arm.collect(plain.next_prompts(), 0)
    for g in collected.groups:
        g.adv_G = torch.tensor([1.0, -1.0, 0.5, -0.5])[:len(g.chains)]
    start = plain.generator.get_state()
    for t in (plain, recomputing):
        t.generator.set_state(start)
        t.update(collected)
    moved = max(float((a - b).abs().max()) for a, b in zip(plain.model.parameters(),
                                                           load_policy(warm_start / "sft/model")[0].parameters()))
    assert moved > 1e-5
    for a, b in zip(plain.model.parameters(), recomputing.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["grpo", "srpo"])
def test_resumed_run_equals_uninterrupted_run(smoke_params, warm_start, tmp_path, method):
    full = trainer(smoke_params, warm_start, tmp_path / "full", method=method).run()
    interrupted = trainer(smoke_params, warm_start, tmp_path / "cut", method=method)
    interrupted.run(stop_at=3)  # dies after step 3; the last checkpoint is at step 2
    assert json.loads((tmp_path / "cut/ckpt/index.json").read_text())["last"] == "step-000002"
    resumed = trainer(smoke_params, warm_start, tmp_path / "cut", method=method)
    assert resumed.state["step"] == 2
    assert resumed.run() == full
    # timings live apart (timings.json), so the two histories are the same bytes
    assert (tmp_path / "cut/history.json").read_bytes() == (tmp_path / "full/history.json").read_bytes()
    assert len(json.loads((tmp_path / "cut/timings.json").read_text())["step_seconds"]) == smoke_params.rl.steps
    a, _ = load_policy(tmp_path / "full" / "model")
    b, _ = load_policy(tmp_path / "cut" / "model")
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    # dvclive logs were rebuilt from the checkpoint's history: no duplicated steps
    rows = (tmp_path / "cut/live/plots/metrics/train/reward.tsv").read_text().splitlines()[1:]
    assert [int(r.split("\t")[0]) for r in rows] == list(range(smoke_params.rl.steps))
    assert (tmp_path / "cut/resets.jsonl").read_text() == (tmp_path / "full/resets.jsonl").read_text()


@pytest.mark.parametrize("damage", ["truncated weights", "flipped byte", "missing trainer state", "broken index"])
def test_a_damaged_last_checkpoint_falls_back_to_the_previous_one(smoke_params, warm_start, tmp_path, capsys, damage):
    """A kill during a save, a full disk or a bad copy: the run warns in one line, resumes from the
    checkpoint before, removes orphaned temporary copies, and ends exactly as an uninterrupted run."""
    every_step = dataclasses.replace(smoke_params, rl=dataclasses.replace(smoke_params.rl, save_every=1))
    full = trainer(every_step, warm_start, tmp_path / "full").run()
    trainer(every_step, warm_start, tmp_path / "cut").run(stop_at=3)
    ckpt = tmp_path / "cut/ckpt"
    weights = ckpt / "step-000003/model.safetensors"
    if damage == "truncated weights":
        weights.write_bytes(weights.read_bytes()[:1000])
    elif damage == "flipped byte":  # same size, still loads: only the checksum can tell
        data = bytearray(weights.read_bytes())
        data[-5] ^= 0x01
        weights.write_bytes(bytes(data))
    elif damage == "missing trainer state":
        (ckpt / "step-000003/trainer_state.pt").unlink()
    else:  # the index is only a summary: each checkpoint's own fingerprint decides, step 3 is used
        (ckpt / "index.json").write_text("{not json")
    (ckpt / ".step-000004.0a1b.tmp").mkdir()  # a save killed half-way
    capsys.readouterr()
    resumed = trainer(every_step, warm_start, tmp_path / "cut")
    warnings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning:")]
    assert resumed.state["step"] == (3 if damage == "broken index" else 2)
    assert len(warnings) == 1 and ("unreadable" if damage == "broken index" else "skipping checkpoint") in warnings[0]
    if damage == "flipped byte":
        assert "model.safetensors differs from its sha256" in warnings[0]
    assert not (ckpt / ".step-000004.0a1b.tmp").exists()
    assert resumed.run() == full


def test_checkpoints_of_a_different_run_are_not_resumed(smoke_params, warm_start, tmp_path):
    trainer(smoke_params, warm_start, tmp_path).run(stop_at=2)
    changed = dataclasses.replace(smoke_params, rl=dataclasses.replace(smoke_params.rl, lr=3e-4))
    other = trainer(changed, warm_start, tmp_path)
    assert other.state["step"] == 0
    assert trainer(smoke_params, warm_start, tmp_path).state["step"] == 2  # nothing discarded before a save
    other.run(stop_at=2)
    assert trainer(smoke_params, warm_start, tmp_path).state["step"] == 0  # now the other run's checkpoints


def test_run_writes_model_history_and_keeps_last_and_best(smoke_params, warm_start, tmp_path, capsys):
    history = trainer(smoke_params, warm_start, tmp_path).run()
    # A progress line per step: where the run is, its reward and tokens, the time left.
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("train ")]
    steps = smoke_params.rl.steps
    assert [line.split()[4] for line in lines] == [f"{s}/{steps}" for s in range(1, steps + 1)]
    assert all("reward " in line and "tokens " in line and "ETA " in line for line in lines)
    assert "val " in lines[-1] and lines[-1].endswith("ETA 0:00")
    assert (tmp_path / "model" / "model.safetensors").exists()
    assert json.loads((tmp_path / "history.json").read_text()) == history
    evals = [r["step"] for r in history if "eval/val/pass1" in r]
    assert evals[0] == 0 and evals[-1] == smoke_params.rl.steps
    index = json.loads((tmp_path / "ckpt/index.json").read_text())
    saved = [f"step-{s:06d}" for s in range(smoke_params.rl.save_every, steps + 1, smoke_params.rl.save_every)]
    kept = sorted(p.name for p in (tmp_path / "ckpt").glob("step-*"))
    assert set(kept) == {*saved[-2:], index["best"]} and index["last"] == saved[-1]
    assert not list(tmp_path.rglob(".*tmp*")), "no temp files may be left behind"


@pytest.mark.parametrize("damage", ["truncated weights", "missing trainer state", "broken index"])
def test_a_broken_checkpoint_is_skipped_and_the_run_finishes_as_if_uninterrupted(
        smoke_params, warm_start, tmp_path, capsys, damage):
    params = dataclasses.replace(smoke_params, rl=dataclasses.replace(smoke_params.rl, steps=6))
    full = trainer(params, warm_start, tmp_path / "full").run()
    cut = tmp_path / "cut"
    trainer(params, warm_start, cut).run(stop_at=5)  # killed after step 5: checkpoints at steps 2 and 4
    newest = cut / "ckpt" / "step-000004"
    if damage == "truncated weights":
        weights = newest / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "missing trainer state":
        (newest / "trainer_state.pt").unlink()
    else:
        (cut / "ckpt" / "index.json").write_text('{"last": "step-0000')
    orphan = cut / "ckpt" / ".step-000006.0123abcd.tmp"  # a kill during a save leaves this behind
    orphan.mkdir()
    (orphan / "model.safetensors").write_bytes(b"partial")
    capsys.readouterr()
    resumed = trainer(params, warm_start, cut)
    out = capsys.readouterr().out
    assert not orphan.exists()
    skipped = [line for line in out.splitlines() if "skipping checkpoint" in line]
    if damage == "broken index":  # the checkpoints themselves are fine: resume from the newest
        assert resumed.state["step"] == 4 and not skipped and "index.json is unreadable" in out
    else:
        assert resumed.state["step"] == 2 and len(skipped) == 1 and "step-000004" in skipped[0]
    assert resumed.run() == full


def test_kl_penalty_uses_the_warm_start_reference(smoke_params, warm_start, tmp_path):
    one_update = dataclasses.replace(smoke_params, rl=dataclasses.replace(smoke_params.rl, minibatches=1))
    t = trainer(one_update, warm_start, tmp_path, method="srpo_clip_kl")
    assert t.ref_model is not None
    first = t.train_step()
    assert first["train/kl"] == pytest.approx(0.0, abs=1e-6)  # policy == reference before updating
    second = t.train_step()
    assert second["train/kl"] > 0.0


def test_heldout_localization_is_measured(smoke_params, warm_start, tmp_path):
    history = trainer(smoke_params, warm_start, tmp_path, method="srpo").run()
    loc = [r for r in history if "loc/heldout_exact_match" in r]
    assert loc[0]["step"] == 0 and loc[-1]["step"] == smoke_params.rl.steps
    assert all(0.0 <= r["loc/heldout_exact_match"] <= r["loc/heldout_clean_rate"] <= 1.0 for r in loc)
