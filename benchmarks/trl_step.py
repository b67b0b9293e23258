"""Benchmark: one GRPO step of this project against TRL's `GRPOTrainer`, on the real model.

Both sides: the same model directory (default: the SmolLM2-135M study's seed-0 SFT warm start), the same
procedural problems (prompt ids from `resetrl.rl.evaluation.prompt_ids`; TRL tokenizes the same text to
the same ids, checked), group size, completion budget (max_thoughts x max_thought_tokens), lr,
minibatches per step, clip and dual clip, temperature / top-p, fp32 on the CPU. The project runs
`RLTrainer.train_step` (torch engine with thought stop rules, then `update`); TRL runs `steps x
minibatches` optimizer steps with `steps_per_generation = minibatches` (one generation per RL step)
and `model.generate` (EOS or the budget ends a completion). Reported: wall seconds per RL step,
generation seconds and generated tokens/s, as project / TRL ratios.

Loss cross-check on the SAME batch (the project's steps: prompt + completion ids; their GRPO
advantages, or seeded ones when every group is constant) with the SAME perturbed "old" log-probs
(so ratios hit the clip and the dual clip): (1) the per-token log-probs of the project
(`policy_logprobs_BT`) and of TRL's fused LM head on the same weights; (2) the project's
`policy_loss` and TRL's `_compute_loss` fed one shared log-prob tensor: values and gradients, for
each loss the project defines and the TRL settings that should (or by definition do not) match.

Run: `python benchmarks/trl_step.py` -> results/benchmarks/trl_grpo_step.json (needs
requirements-bench.txt). Dev: `--prompts 1 --group 2 --minibatches 1 --max-tokens 24 --max-thoughts 2`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from common import real_model_dir, real_params, write_result
from datasets import Dataset
from transformers import TrainerCallback
from trl import GRPOConfig, GRPOTrainer

from resetrl.core.model import load_policy
from resetrl.rl.batch import pack_sequences, policy_logprobs_BT
from resetrl.rl.losses import policy_loss
from resetrl.rl.trainer import RLTrainer
from resetrl.rollout.engine import prompt_ids
from resetrl.tasks.procedural import reward
from resetrl.tasks.splits import prepare_data


def project_steps(params, model_dir: Path, work: Path, steps: int) -> tuple[list[dict], list, RLTrainer]:
    """`steps` RL steps of the grpo arm; per step: wall, generation seconds, generated tokens, and
    the problems and collected groups (for TRL's prompts and the loss check)."""
    prepare_data(params.task, work / "data")
    trainer = RLTrainer(params, "grpo", 0, model_dir, work / "data", work / "run")
    log: list = []
    collect = trainer.arm.collect

    def timed_collect(problems, step):
        started = time.perf_counter()
        out = collect(problems, step)
        log.append({"problems": problems, "collected": out, "generation_seconds": time.perf_counter() - started})
        return out
    trainer.arm.collect = timed_collect
    rows = []
    for _ in range(steps):
        started = time.perf_counter()
        metrics = trainer.train_step()
        rows.append({"seconds": time.perf_counter() - started, "generation_seconds": log[-1]["generation_seconds"],
                     "generated_tokens": int(metrics["train/tokens_generated"]), "reward": metrics["train/reward"]})
    return rows, log, trainer


class StepClock(TrainerCallback):
    """Wall time at each optimizer step's begin and end."""

    def __init__(self):
        self.begins, self.ends = [], []

    def on_step_begin(self, args, state, control, **kwargs):
        self.begins.append(time.perf_counter())

    def on_step_end(self, args, state, control, **kwargs):
        self.ends.append(time.perf_counter())


def trl_trainer(params, model_dir: Path, work: Path, problems: list, steps: int, seed: int) -> tuple:
    """A GRPOTrainer set to the project's GRPO step (see GRPO_SETTINGS in the result)."""
    rl, ro = params.rl, params.rollout
    model, tokenizer = load_policy(model_dir)
    dataset = Dataset.from_list([{"prompt": p.prompt, "index": i} for i, p in enumerate(problems)])
    generated = {"tokens": 0, "seconds": [], "completions": 0}

    def reward_fn(prompts, completions, completion_ids, index, **kwargs):
        generated["tokens"] += sum(len(ids) for ids in completion_ids)
        generated["completions"] += len(completion_ids)
        return [reward(problems[i], text) for i, text in zip(index, completions)]

    rows = rl.prompts_per_step * rl.group_size
    config = GRPOConfig(
        output_dir=str(work / "trl"), report_to=[], save_strategy="no", logging_steps=1, disable_tqdm=True,
        use_cpu=True, bf16=False, fp16=False, gradient_checkpointing=False,  # TRL defaults: bf16 + checkpointing
        seed=seed, shuffle_dataset=False, max_steps=steps * rl.minibatches,
        per_device_train_batch_size=rows // rl.minibatches, gradient_accumulation_steps=1,
        steps_per_generation=rl.minibatches, num_generations=rl.group_size, num_iterations=1,
        max_completion_length=ro.max_thoughts * ro.max_thought_tokens, temperature=ro.temperature, top_p=ro.top_p,
        top_k=0, learning_rate=rl.lr, weight_decay=rl.weight_decay, max_grad_norm=rl.grad_clip,
        lr_scheduler_type="constant", warmup_steps=0, **GRPO_SETTINGS(rl))
    trainer = GRPOTrainer(model=model, reward_funcs=[reward_fn], args=config, train_dataset=dataset,
                          processing_class=tokenizer)
    generate = trainer._generate

    def timed_generate(prompts):
        started = time.perf_counter()
        out = generate(prompts)
        generated["seconds"].append(time.perf_counter() - started)
        return out
    trainer._generate = timed_generate
    return trainer, generated


def GRPO_SETTINGS(rl) -> dict:  # noqa: N802 (a table, named like one)
    """TRL options that make its loss the project's GRPO loss (PPO clip, dual clip for A < 0,
    token mean over the minibatch, no KL, per-group std scaling, token-level ratios)."""
    return dict(loss_type="bnpo", beta=0.0, epsilon=rl.clip_eps, delta=rl.dual_clip, scale_rewards="group",
                importance_sampling_level="token")


def trl_inputs(prompts: list[list[int]], responses: list[list[int]], pad: int) -> dict:
    """TRL's batch layout: prompts left-padded, completions right-padded."""
    P, C = max(map(len, prompts)), max(map(len, responses))
    out = {k: torch.full((len(prompts), n), v, dtype=torch.long) for k, n, v in
           (("prompt_ids", P, pad), ("prompt_mask", P, 0), ("completion_ids", C, pad), ("completion_mask", C, 0))}
    for i, (p, r) in enumerate(zip(prompts, responses)):
        out["prompt_ids"][i, P - len(p):], out["prompt_mask"][i, P - len(p):] = torch.tensor(p), 1
        out["completion_ids"][i, :len(r)], out["completion_mask"][i, :len(r)] = torch.tensor(r), 1
    return out


def to_packed(x_BC: torch.Tensor, prompts: list[list[int]], responses: list[list[int]], width: int) -> torch.Tensor:
    """Completion-layout values [B, C] at the packed batch's positions [B, T] (differentiable)."""
    out = torch.zeros(len(prompts), width - 1)
    for i, (p, r) in enumerate(zip(prompts, responses)):
        out[i, len(p) - 1:len(p) + len(r) - 1] = x_BC[i, :len(r)]
    return out


def loss_check(trainer, groups: list, params, noise: float, seed: int) -> dict:
    """The project's `policy_loss` vs TRL's `_compute_loss` on one batch.

    1. Log-probs: the project's `policy_logprobs_BT` (full logits, right-padded) vs TRL's fused LM
       head (completion positions only, left-padded prompts) on the same weights: forward only.
    2. Losses: both take the same per-token log-probs, a leaf tensor (TRL's log-prob function is
       replaced by it), so values and gradients d loss / d log-prob compare the loss math exactly;
       the model's backward from those gradients is the same function on both sides.
    """
    rl, temperature = params.rl, params.rollout.temperature
    model, pad = trainer.model, trainer.processing_class.pad_token_id
    chains = [c for g in groups for c in g.chains]
    keep = [i for i, c in enumerate(chains) if c.response_ids]  # a chain cut back to nothing trains no token
    if not keep:
        return {"skipped": "every chain of the batch was cut back to an empty response (budget too small)"}
    prompts, responses = [chains[i].prompt_ids for i in keep], [chains[i].response_ids for i in keep]
    rewards_B = torch.cat([g.rewards_G for g in groups])
    adv_B = torch.cat([g.adv_G for g in groups])[keep]
    source = "the step's GRPO advantages"
    if not bool(adv_B.any()):  # every group constant: a zero loss would check nothing
        adv_B, source = torch.randn(len(keep), generator=torch.Generator().manual_seed(seed)), "seeded N(0, 1)"
    batch = pack_sequences(prompts, responses, [0] * len(keep), pad)
    inputs = trl_inputs(prompts, responses, pad)
    mask_BC = inputs["completion_mask"].float()
    C = mask_BC.shape[1]
    with torch.no_grad():
        project_BT = policy_logprobs_BT(model, batch, temperature)
        ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1)
        attn = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], 1)
        trl_BC = trainer._get_per_token_logps_and_entropies(model, ids, attn, C)[0]
    gap = (to_packed(trl_BC, prompts, responses, batch.ids_BL.shape[1]) - project_BT).abs()[batch.mask_BT.bool()]
    current_BC = trl_BC * mask_BC
    noise_BC = noise * torch.randn(current_BC.shape, generator=torch.Generator().manual_seed(seed))
    old_BC = (current_BC + noise_BC) * mask_BC
    ratio = torch.exp(current_BC - old_BC)[mask_BC.bool()]
    negative = (adv_B < 0)[:, None].expand_as(mask_BC)[mask_BC.bool()]
    out = {"rows": len(keep), "tokens": int(mask_BC.sum()), "advantages_used": source,
           "logprob_max_abs_diff": float(gap.max()), "logprob_mean_abs_diff": float(gap.mean()),
           "old_logprob_noise_std": noise,
           "frac_tokens_clipped": float(((ratio < 1 - rl.clip_eps) | (ratio > 1 + rl.clip_eps)).float().mean()),
           "frac_tokens_dual_clip_active": float(((ratio > rl.dual_clip) & negative).float().mean()), "pairs": {}}

    def project(kind, old):
        leaf = current_BC.clone().requires_grad_(True)
        packed = [to_packed(x, prompts, responses, batch.ids_BL.shape[1]) for x in (leaf, old)]
        loss, _ = policy_loss(kind, *packed, adv_B, batch.mask_BT, clip_eps=rl.clip_eps, dual_clip=rl.dual_clip)
        loss.backward()
        return float(loss), leaf.grad * mask_BC

    def trl(settings, old):
        # _compute_loss reads loss_type from the trainer and delta from its args; the rest is fixed.
        assert (trainer.beta, trainer.importance_sampling_level, trainer.epsilon_low, trainer.epsilon_high) == \
            (settings["beta"], settings["importance_sampling_level"], settings["epsilon"], settings["epsilon"])
        trainer.loss_type, trainer.args.delta = settings["loss_type"], settings["delta"]
        leaf = current_BC.clone().requires_grad_(True)
        trainer._get_per_token_logps_and_entropies = lambda *a, **k: (leaf, torch.zeros_like(leaf), None)
        try:
            loss = trainer._compute_loss(model, inputs | {"advantages": adv_B, "old_per_token_logps": old,
                                                          "num_items_in_batch": mask_BC.sum()})
        finally:
            del trainer._get_per_token_logps_and_entropies  # back to the class's method
        loss.backward()
        return float(loss), leaf.grad * mask_BC

    grpo = GRPO_SETTINGS(rl)
    pairs = {  # name: (project loss kind, old log-probs, TRL settings, expected)
        "clip_token_mean__trl_bnpo_delta": ("clip_token_mean", old_BC, grpo, "equal (the GRPO arm's loss)"),
        "clip_token_mean__trl_bnpo_no_delta": (
            "clip_token_mean", old_BC, grpo | {"delta": None},
            "differ where A < 0 and ratio > dual_clip (TRL's default: no dual clip)"),
        "clip_token_mean__trl_dapo_delta": ("clip_token_mean", old_BC, grpo | {"loss_type": "dapo"},
                                            "equal for one minibatch (dapo: token count of the generation batch)"),
        "clip_seq_mean_token_mean__trl_grpo_delta": ("clip_seq_mean_token_mean", old_BC,
                                                     grpo | {"loss_type": "grpo"}, "equal"),
        "pg_seq_mean__trl_grpo_on_policy": ("pg_seq_mean", current_BC, grpo | {"loss_type": "grpo"},
                                            "equal gradients; values differ by definition (TRL: -mean A x ratio 1, "
                                            "project: -mean A x mean log p)"),
    }
    model.train()  # TRL's loss reads the mode (train: divides by the accumulation steps, set to 1 here)
    trainer.current_gradient_accumulation_steps = 1
    steps_per_generation, trainer.args.steps_per_generation = trainer.args.steps_per_generation, 1  # dapo: one batch
    for name, (kind, old, settings, expected) in pairs.items():
        lp, gp = project(kind, old)
        lt, gt = trl(settings, old)
        out["pairs"][name] = {
            "project_loss": kind, "trl_settings": settings, "expected": expected,
            "project_value": lp, "trl_value": lt, "value_abs_diff": abs(lp - lt),
            "grad_norm": float(gp.norm()), "grad_max_abs_diff": float((gp - gt).abs().max()),
            "grad_rel_l2_diff": float((gp - gt).norm() / gp.norm().clamp(min=1e-30)),
        }
    trainer.args.steps_per_generation = steps_per_generation
    # Advantages by definition, on the same rewards: project (r - mean) / (std + 1e-6) vs TRL 1e-4.
    trl_adv = torch.cat([(r - r.mean()) / (r.std() + 1e-4) if r.numel() > 1 else torch.zeros_like(r)
                         for r in (g.rewards_G for g in groups)])
    project_adv = torch.cat([g.adv_G for g in groups])
    out["advantages"] = {"rewards": rewards_B.tolist(), "max_abs_diff": float((trl_adv - project_adv).abs().max()),
                         "note": "both use the unbiased group std; eps 1e-6 (project) vs 1e-4 (TRL)"}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None,
                        help="model directory (default: the study's seed-0 warm start if present, else the base model)")
    parser.add_argument("--prompts", type=int, default=None, help="prompts per step (default: rl.prompts_per_step)")
    parser.add_argument("--group", type=int, default=None, help="chains per prompt (default: rl.group_size)")
    parser.add_argument("--minibatches", type=int, default=None, help="updates per step (default: rl.minibatches)")
    parser.add_argument("--max-thoughts", type=int, default=None, help="override rollout.max_thoughts (dev runs)")
    parser.add_argument("--max-tokens", type=int, default=None, help="override rollout.max_thought_tokens (dev runs)")
    parser.add_argument("--steps", type=int, default=2, help="RL steps timed on each side")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1, as runtime.threads: 2 threads collapse when the other core is busy)")
    parser.add_argument("--noise", type=float, default=0.7, help="std of the log-space noise on the old log-probs")
    parser.add_argument("--skip-check", action="store_true", help="time the steps only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keys = (("rl.prompts_per_step", args.prompts), ("rl.group_size", args.group), ("rl.minibatches", args.minibatches),
            ("rollout.max_thoughts", args.max_thoughts), ("rollout.max_thought_tokens", args.max_tokens))
    overrides = [f"{k}={v}" for k, v in keys if v is not None]
    model_dir, rl = real_model_dir(args.model), real_params(tuple(overrides)).rl
    # One sampling batch holds the whole step, as TRL generates it in one generate call.
    params = real_params((*overrides, f"rollout.batch_size={rl.prompts_per_step * rl.group_size}",
                          "rollout.engine=torch"))
    with tempfile.TemporaryDirectory(prefix="trl-bench-") as tmp:
        work = Path(tmp)
        project_rows, log, _ = project_steps(params, model_dir, work, args.steps)
        problems = [p for entry in log for p in entry["problems"]]
        trainer, generated = trl_trainer(params, model_dir, work, problems, args.steps, seed=0)
        tokenizer = trainer.processing_class
        same_ids = all(tokenizer(text=[p.prompt])["input_ids"][0] == prompt_ids(tokenizer, p) for p in problems)
        clock = StepClock()
        trainer.add_callback(clock)
        started = time.perf_counter()
        trainer.train()
        trl_total = time.perf_counter() - started
        m = rl.minibatches
        trl_rows = [{"seconds": clock.ends[(i + 1) * m - 1] - clock.begins[i * m],
                     "generation_seconds": generated["seconds"][i]} for i in range(args.steps)]
        groups = [g for entry in log for g in entry["collected"].groups]  # every step's batch
        check = None if args.skip_check else loss_check(trainer, groups, params, args.noise, seed=0)

    def summary(rows: list[dict], tokens: int) -> dict:
        seconds = [r["seconds"] for r in rows]
        gen = sum(r["generation_seconds"] for r in rows)
        return {"steps": rows, "seconds_per_step_mean": sum(seconds) / len(seconds),
                "seconds_per_step_min": min(seconds),
                "generated_tokens": tokens, "generation_seconds": gen, "generation_tokens_per_s": tokens / gen,
                "tokens_per_s_of_step": tokens / sum(seconds)}
    project = summary(project_rows, sum(r["generated_tokens"] for r in project_rows))
    trl_side = summary(trl_rows, generated["tokens"]) | {"train_call_seconds": trl_total,
                                                         "trl_log": trainer.state.log_history}
    ro = params.rollout
    result = {
        "model": str(model_dir), "steps": args.steps,
        "setup": {"prompts_per_step": rl.prompts_per_step, "group_size": rl.group_size, "minibatches": m,
                  "max_completion_length": ro.max_thoughts * ro.max_thought_tokens, "lr": rl.lr,
                  "temperature": ro.temperature, "top_p": ro.top_p, "clip_eps": rl.clip_eps, "dual_clip": rl.dual_clip,
                  "same_prompt_ids": same_ids, "trl_settings": GRPO_SETTINGS(rl),
                  "trl_other": "bf16=False, gradient_checkpointing=False (TRL defaults True), steps_per_generation="
                               "minibatches, lr_scheduler constant, use_cpu; TRL generates with model.generate (EOS or "
                               "the budget ends a completion), the project with the torch engine's thought stop rules"},
        "project": project, "trl": trl_side,
        "ratios": {
            "step_seconds_project_over_trl": project["seconds_per_step_mean"] / trl_side["seconds_per_step_mean"],
            "step_seconds_min_project_over_trl": project["seconds_per_step_min"] / trl_side["seconds_per_step_min"],
            "generation_tokens_per_s_project_over_trl":
                project["generation_tokens_per_s"] / trl_side["generation_tokens_per_s"],
            "generated_tokens_project_over_trl": project["generated_tokens"] / max(trl_side["generated_tokens"], 1),
            # The sides generate different lengths (stop rules vs EOS / budget): step time per generated token.
            "step_seconds_per_token_project_over_trl":
                trl_side["tokens_per_s_of_step"] / project["tokens_per_s_of_step"],
        },
        "loss_check": check,
    }
    write_result("trl_grpo_step", result)
    print(" ".join(f"{k}={v:.3f}" for k, v in result["ratios"].items()))


if __name__ == "__main__":
    main()
