"""The warm start (stages `skill` and `sft`). A tiny model trained from scratch has no reasoning prior
(the paper's 7B/14B instruct models do), so it first imitates solution chains. A designed warm start
learns the arithmetic once from correct demonstrations (the shared skill), then each seed fine-tunes
on demonstrations whose errors have designed rates (task.slip_rate, task.final_step_accuracy), so its
sampled error profile is set by params and measured (stage task_regime)."""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import torch

from resetrl.core.checkpoint import CheckpointStore, required_bytes, run_fingerprint
from resetrl.core.metrics import VAL_PASS1, MetricsLog, Progress
from resetrl.core.model import count_parameters, initial_policy, load_policy, save_pointer, save_policy
from resetrl.core.model_card import run_card
from resetrl.core.params import Params
from resetrl.core.storage import StagedOutputs, atomic_write_json, check_free_space
from resetrl.core.tokenizer import target_ids
from resetrl.rl.batch import pack_sequences, policy_logprobs_BT
from resetrl.rl.evaluation import eos_endings, greedy_pass1, localization_accuracy
from resetrl.rl.localization import heldout_failed_chains, localization_example
from resetrl.rl.losses import masked_mean
from resetrl.rollout.engine import prompt_ids
from resetrl.rollout.factory import make_engine
from resetrl.tasks.scoring import open_verifier
from resetrl.tasks.splits import load_split, training_hashes

PROGRESS_EVERY = 50  # SFT steps between progress lines (a few seconds apart on the default model)
# The sft / skill stage's outputs, swapped in together at the end.
WARM_START_OUTPUTS = ("model", "summary.json", "live")


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warmup, then cosine decay to 10% of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.45 * (1.0 + math.cos(math.pi * progress)))


def mixed_sft_loss(model, tokenizer, rows, loc_rows, localization_weight: float) -> torch.Tensor:
    """Token-mean loss of each task, mixed by `localization_weight`. A shared token mean would
    give localization ~1% of the signal: its target is one informative token against ~30 per chain.
    Two forward passes, since the long localization prompts would otherwise pad every chain."""
    losses = []
    for batch_rows, weight in ((rows, 1.0 - localization_weight), (loc_rows, localization_weight)):
        if batch_rows:
            batch = pack_sequences([r[0] for r in batch_rows], [r[1] for r in batch_rows], [0] * len(batch_rows),
                                   tokenizer.pad_token_id)
            losses.append(-weight * masked_mean(policy_logprobs_BT(model, batch), batch.mask_BT))
    return sum(losses)


def run_sft(params: Params, data: Path, out: Path, seed: int = 0, init: Path | None = None,
            designed_errors: bool = True, target: float | None = None) -> dict:
    """Imitation for `sft.steps` steps from `init` (None: the initial policy), then the warm start's
    validation accuracy. With 0 steps it only measures the starting policy (a pretrained model is then
    saved as a pointer, not copied). `seed` is the study seed (already applied to `params`), for the
    model card; `designed_errors` False imitates correct demonstrations only (the shared skill), and
    `target` stops at the first validation whose greedy pass@1 reaches it. A checkpoint at each validation
    (out/ckpt) lets an interrupted warm start resume to the model an uninterrupted one ends with."""
    cfg = params.sft
    train_set, val_set = load_split(data, "train"), load_split(data, "val")
    store = CheckpointStore(out / "ckpt", run_fingerprint(params, init, training_hashes(data), seed=seed,
                                                          designed_errors=designed_errors, target=target))
    resumed = store.load_latest(lambda path: load_policy(path, params.runtime))
    resume_from, saved, (model, tokenizer) = resumed or (None, None, initial_policy(params.model, params.runtime)
                                                         if init is None else load_policy(init, params.runtime))
    # Solutions exist for the procedural task only (a config check refuses SFT on real data).
    # Each drawn solution is written anew (task.surface_forms), so chains of a problem differ.
    # With slips (task.slip_rate) each demonstration also slips anew.
    forms = params.task.surface_forms
    slip_rate, hard = (params.task.slip_rate, params.task.final_step_accuracy) if designed_errors else (0.0, None)
    written_once = forms == 1 and not slip_rate and hard is None
    encoded = [(prompt_ids(tokenizer, p), target_ids(tokenizer, p.solution))
               for p in train_set] if cfg.steps and written_once else []
    heldout = heldout_failed_chains(val_set, params.rl.loc_eval_problems)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = random.Random(cfg.seed)
    # state: the next step, and what it needs to continue as if never stopped (the global torch RNG for
    # any sampling in the model); seconds: the steps' time so far, for the summary
    state = {"step": 0, "history": [], "seconds": 0.0}
    if saved is not None:
        optimizer.load_state_dict(saved["optimizer"])
        rng.setstate(saved["rng"])
        torch.set_rng_state(saved["torch_rng"])
        state = saved["trainer"]
        print(f"resumed from {resume_from} at step {state['step']}")
    check_free_space(out, required_bytes(model, list(model.parameters())), "the warm start (checkpoints and model)")
    outputs = StagedOutputs(out, WARM_START_OUTPUTS)
    engine = make_engine(params.rollout, model, tokenizer)
    verifier = open_verifier(params.runtime, [val_set])
    log = MetricsLog(outputs / "live", state["history"])
    progress = Progress("sft", cfg.steps, state["step"])
    started = time.perf_counter() - state["seconds"]
    for step in range(state["step"], cfg.steps + 1):
        record: dict = {"step": step}
        converged = False
        if (step and step % cfg.eval_every == 0) or step == cfg.steps:  # step 0: an untrained model
            model.eval()
            if step:  # at step 0 the engine samples from the model it was made from (a server cannot reload it)
                engine.sync_weights(model)
            record[VAL_PASS1] = greedy_pass1(engine, val_set, params.rollout, verifier)["pass1"]
            converged = target is not None and record[VAL_PASS1] >= target
            if heldout:
                loc = localization_accuracy(engine, heldout, params.rl.localization_max_tokens,
                                            params.rollout.batch_size)
                record.update({f"loc/heldout_{k}": v for k, v in loc.items()})
        if step < cfg.steps and not converged:
            model.train()
            rows = rng.sample(encoded, cfg.batch_size) if written_once else [
                (prompt_ids(tokenizer, p),
                 target_ids(tokenizer, p.written_solution(rng, forms, slip_rate, hard)))
                for p in rng.sample(train_set, cfg.batch_size)]
            loc_rows = [localization_example(tokenizer, p, rng, forms)[:2]
                        for p in rng.sample(train_set, cfg.localization_batch_size)]
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, cfg.steps, cfg.lr, cfg.warmup_steps)
            loss = mixed_sft_loss(model, tokenizer, rows, loc_rows, cfg.localization_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            record.update({"sft/loss": loss.item(), "sft/lr": optimizer.param_groups[0]["lr"]})
        log.log(record)
        progress.update(step, record, line=step % PROGRESS_EVERY == 0 or VAL_PASS1 in record)
        if converged:
            break
        if VAL_PASS1 in record and step < cfg.steps:
            state.update(step=step + 1, seconds=time.perf_counter() - started)
            store.save(step + 1, model, tokenizer, {"optimizer": optimizer.state_dict(), "rng": rng.getstate(),
                                                    "torch_rng": torch.get_rng_state(), "trainer": state},
                       run_card(params, seed, step=step + 1), record[VAL_PASS1])
    progress.close()
    log.close()
    eos = eos_endings(engine, val_set, params.rollout)  # for the warm start's card
    engine.close()
    if verifier is not None:
        verifier.close()
    card = run_card(params, seed, step=step).with_scores(
        {"pass@1 (greedy)": log.history[-1][VAL_PASS1],
         "localization exact match": log.history[-1].get("loc/heldout_exact_match")}).with_eos(eos)
    _save(params, model, tokenizer, outputs / "model", card, pointer=cfg.steps == 0 and init is None)
    summary = {
        VAL_PASS1: log.history[-1][VAL_PASS1],
        "loc/heldout_exact_match": log.history[-1].get("loc/heldout_exact_match"),
        "sft/final_loss": next((r["sft/loss"] for r in reversed(log.history) if "sft/loss" in r), None),
        "sft/steps": step,
        "model/parameters": count_parameters(model),
        "time/seconds": time.perf_counter() - started,
    }
    atomic_write_json(outputs / "summary.json", summary)
    outputs.commit()
    return summary


def _save(params: Params, model, tokenizer, directory: Path, card, pointer: bool) -> None:
    """The policy as a checkpoint; an untrained pretrained model (`pointer`) as a pointer to it, never a copy."""
    if pointer and params.model.pretrained is not None:
        save_pointer(params.model.pretrained, directory, card, tokenizer)
    else:
        save_policy(model, tokenizer, directory, card)


def save_start(params: Params, out: Path) -> None:
    """The starting policy, unevaluated, as the skill stage's output when no seed uses it (a pointer for a
    pretrained model, never a copy)."""
    model, tokenizer = initial_policy(params.model, params.runtime)
    outputs = StagedOutputs(out, WARM_START_OUTPUTS[:2])
    _save(params, model, tokenizer, outputs / "model", run_card(params, 0, step=0), pointer=True)
    atomic_write_json(outputs / "summary.json", {"steps": 0, "model/parameters": count_parameters(model)})
    outputs.commit()
