"""The `train` stage's loop: RL from the SFT warm start for one (arm, seed) run, resumable.

Each step: the arm's method (`rl.methods`) collects training groups with an advantage for every
response token, and the policy takes `rl.minibatches` updates over the step's sequences (one epoch)
with the arm's loss. The loop never asks which method it trains.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import torch

from resetrl.core.checkpoint import CheckpointStore, required_bytes, run_fingerprint
from resetrl.core.lora import add_lora, is_lora, merged_model
from resetrl.core.metrics import VAL_PASS1, VAL_SAMPLED, MetricsLog, Progress
from resetrl.core.model import device_and_dtype, load_policy, save_policy
from resetrl.core.model_card import run_card
from resetrl.core.params import Params
from resetrl.core.storage import StagedOutputs, atomic_write_json, check_free_space, write_jsonl
from resetrl.rl.batch import PackedBatch, pack_sequences, policy_logprobs_BT, sampling_mismatch
from resetrl.rl.distributed import join, rank_seed
from resetrl.rl.evaluation import eos_endings, greedy_pass1, localization_accuracy, sampled_pass_k
from resetrl.rl.localization import heldout_failed_chains
from resetrl.rl.losses import gradient_signal_B
from resetrl.rl.methods import Collected, build_method
from resetrl.rollout.factory import make_engine
from resetrl.tasks.scoring import open_verifier, verifier_metrics
from resetrl.tasks.splits import load_split, training_hashes

# The train stage's outputs, swapped in together at the end (stages.stage_table declares them for the tools).
RUN_OUTPUTS = ("model", "resets.jsonl", "val_outcomes.json", "history.json", "timings.json", "live")


class RLTrainer:
    def __init__(self, params: Params, method: str, seed: int, init: Path, data: Path, out: Path):
        self.p, self.method, self.seed, self.out = params, method, seed, Path(out)
        self.ranks = join(params.runtime.world_size, device_and_dtype(params.runtime)[0], params.rl.prompts_per_step)
        self.train_set, self.val_set = load_split(data, "train"), load_split(data, "val")
        self.heldout = heldout_failed_chains(self.val_set, params.rl.loc_eval_problems)
        self.card = run_card(params, seed, method)
        fingerprint = run_fingerprint(params, init, training_hashes(data), method=method, seed=seed)
        for writer in (True, False):  # rank 0 first: it recovers what a killed save left behind
            if self.ranks.main == writer:
                self.store = CheckpointStore(self.out / "ckpt", fingerprint)
            self.ranks.barrier()
        resumed = self.store.load_latest(lambda path: load_policy(path, params.runtime))
        resume_from, saved, (self.model, self.tokenizer) = resumed or (None, None, load_policy(init, params.runtime))
        if params.rl.lora.rank and not is_lora(self.model):
            self.model = add_lora(self.model, params.rl.lora)
        if params.runtime.activation_checkpointing:  # non-reentrant: LoRA's frozen inputs need no gradient
            self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]  # LoRA: the adapters only
        self.optimizer = torch.optim.AdamW(self.trainable, lr=params.rl.lr, weight_decay=params.rl.weight_decay)
        if self.ranks.main:
            check_free_space(self.out, required_bytes(self.model, self.trainable),
                             f"run {method} seed {seed} (checkpoints and final model)")
        self.generator = torch.Generator().manual_seed(rank_seed(seed, self.ranks.rank))
        self.engine = make_engine(params.rollout, self.model, self.tokenizer)
        self.verifier = open_verifier(params.runtime, [self.train_set, self.val_set])
        self.arm = build_method(method, self.engine, params, self.generator, self.verifier)
        # The KL reference is the warm start: with LoRA, the same model with its adapters disabled.
        self.ref_model = load_policy(init, params.runtime)[0] \
            if self.arm.uses_reference and not is_lora(self.model) else None
        # val_outcomes: step -> each validation problem's greedy 0/1 (and sampled 0/1), for paired
        # area-under-curve tests
        # timings: each step's seconds, apart from the history so that two runs' histories compare byte for byte
        self.state = {"step": 0, "epoch": 0, "cursor": 0, "tokens": 0, "history": [], "timings": [], "resets": [],
                      "val_outcomes": {}, "val_sampled": {}}
        if saved is not None:
            self.optimizer.load_state_dict(saved["optimizer"])
            self.generator.set_state(saved["generators"][self.ranks.rank])
            self.state = saved["trainer"]
            print(f"resumed from {resume_from} at step {self.state['step']}")
        self.trained = self.ranks.wrap(self.model)  # what gradients flow through (DDP across ranks)
        if self.ranks.main:
            self.outputs = StagedOutputs(self.out, RUN_OUTPUTS)
            self.log = MetricsLog(self.outputs / "live", self.state["history"])

    def next_prompts(self) -> list:
        """Without replacement through a per-epoch shuffle derived from (seed, epoch): the data
        position is two integers, so resuming needs no RNG state."""
        batch = []
        while len(batch) < self.p.rl.prompts_per_step:
            order = list(range(len(self.train_set)))
            random.Random(f"{self.seed}-{self.state['epoch']}").shuffle(order)
            cursor = self.state["cursor"]
            take = order[cursor:cursor + self.p.rl.prompts_per_step - len(batch)]
            batch += [self.train_set[i] for i in take]
            self.state["cursor"] += len(take)
            if self.state["cursor"] >= len(order):
                self.state["epoch"], self.state["cursor"] = self.state["epoch"] + 1, 0
        return batch

    def validate(self, step: int) -> dict[str, float]:
        self.model.eval()
        result = greedy_pass1(self.engine, self.val_set, self.p.rollout, self.verifier)
        self.state["val_outcomes"][str(step)] = "".join(map(str, result["outcomes"]))
        # Its own seed per (run, step): the training stream is untouched, so a resumed run replays it.
        sampled = sampled_pass_k(self.engine, self.val_set, self.p.rollout, 1, (1,), self.seed * 1_000_003 + step,
                                 self.verifier)
        self.state.setdefault("val_sampled", {})[str(step)] = "".join(map(str, sampled["correct"]))
        return {VAL_PASS1: result["pass1"], VAL_SAMPLED: sampled["pass@1"]}

    def localization_check(self) -> dict[str, float]:
        """Greedy self-localization on fixed held-out failed chains: drift of the skill during RL."""
        if not self.heldout:
            return {}
        self.model.eval()
        result = localization_accuracy(self.engine, self.heldout, self.p.rl.localization_max_tokens,
                                       self.p.rollout.batch_size)
        return {f"loc/heldout_{k}": v for k, v in result.items()}

    def reference_logprobs_BT(self, batch, temperature: float) -> torch.Tensor:
        micro = self.p.runtime.micro_batch_size
        if self.ref_model is not None:
            return policy_logprobs_BT(self.ref_model, batch, temperature, micro_batch=micro)
        with self.model.disable_adapter():
            return policy_logprobs_BT(self.model, batch, temperature, micro_batch=micro)

    def minibatch_rows(self, n_local: int) -> list[torch.Tensor]:
        """This rank's rows of each minibatch: one permutation of the step's chains over all ranks (rank 0's draw),
        split into rl.minibatches, each rank keeping its own chains (one process: a permutation of its chains)."""
        counts = self.ranks.gather(n_local)
        offset, total = sum(counts[:self.ranks.rank]), sum(counts)
        order_B = torch.randperm(total, generator=self.generator) if self.ranks.main \
            else torch.empty(total, dtype=torch.long)
        order_B = self.ranks.broadcast_B(order_B)
        chunks = order_B.chunk(self.p.rl.minibatches)
        return [idx[(idx >= offset) & (idx < offset + n_local)] - offset for idx in chunks]

    def rank_scale(self, mb: PackedBatch, n_rows: int) -> float:
        """DDP averages the ranks' gradients: weighting a rank's minibatch loss by world_size x its share of the
        global minibatch's tokens (or sequences, as the loss averages) makes that average the global gradient."""
        if not self.ranks.distributed:
            return 1.0
        units = self.arm.loss_units(mb.mask_BT) if n_rows else 0.0
        total = sum(self.ranks.gather(units))
        return self.ranks.world_size * units / total if total else 0.0

    def update(self, collected: Collected) -> tuple[dict[str, float], torch.Tensor]:
        """One epoch of minibatch updates on this rank's chains; the step's stats and each chain's gradient signal."""
        rl, tok = self.p.rl, self.tokenizer
        chains = [c for g in collected.groups for c in g.chains]
        batch = pack_sequences([c.prompt_ids for c in chains], [c.response_ids for c in chains],
                               [m for g in collected.groups for m in g.n_masked], tok.pad_token_id,
                               [c.gen_logprobs for c in chains],
                               [a for g in collected.groups for a in g.token_advantages()])
        # A rank without chains in a minibatch still takes part in DDP's reduction: one row at weight 0.
        minibatches = [(idx, batch.rows(idx if len(idx) else torch.zeros(1, dtype=torch.long)))
                       for idx in self.minibatch_rows(len(chains))]
        temperature, micro = self.p.rollout.temperature, self.p.runtime.micro_batch_size
        with torch.no_grad():  # behaviour log-probs, fixed before the first update; raw ones for the engine check
            old, raw = zip(*(policy_logprobs_BT(self.model, mb, temperature, 1.0, micro_batch=micro)
                             for _, mb in minibatches))
            ref = [self.reference_logprobs_BT(mb, temperature) for _, mb in minibatches] \
                if self.arm.uses_reference else [None] * len(old)
        signal_B = torch.zeros(len(chains))
        for (idx, mb), old_logp in zip(minibatches, old):
            signal_B[idx] = gradient_signal_B(mb.adv_BT, old_logp, mb.mask_BT)[:len(idx)]
        mismatch = sampling_mismatch([mb for idx, mb in minibatches if len(idx)],
                                     [r for (idx, _), r in zip(minibatches, raw) if len(idx)])
        self.model.train()
        stats: dict[str, list[float]] = {}
        for (idx, mb), old_logp, ref_logp in zip(minibatches, old, ref):
            scale = self.rank_scale(mb, len(idx))
            self.optimizer.zero_grad(set_to_none=True)
            mb_stats: dict[str, float] = {"loss": 0.0}
            parts = mb.micro_batches(micro)
            for i, (rows, sub) in enumerate(parts):  # gradients accumulate to the minibatch's
                with self.ranks.no_sync(self.trained, last=i == len(parts) - 1):
                    logp = policy_logprobs_BT(self.trained, sub, temperature)
                    loss, sub_stats = self.arm.loss(logp, old_logp[rows], sub.adv_BT, sub.mask_BT,
                                                    None if ref_logp is None else ref_logp[rows])
                    share = self.arm.micro_batch_share(sub.mask_BT, mb.mask_BT)
                    (loss * share * scale).backward()
                for k, v in {"loss": loss.item(), **sub_stats}.items():
                    mb_stats[k] = mb_stats.get(k, 0.0) + v * share
            if self.ranks.distributed:  # the global minibatch's: each rank's weighted by its share
                mb_stats = self.ranks.summed({k: v * scale / self.ranks.world_size for k, v in mb_stats.items()})
            grad_norm = torch.nn.utils.clip_grad_norm_(self.trainable, rl.grad_clip)
            self.optimizer.step()
            for k, v in {**mb_stats, "grad_norm": grad_norm.item()}.items():
                stats.setdefault(k, []).append(v)
        self.engine.sync_weights(self.model)  # the next rollouts must come from the updated policy
        mismatch = self.ranks.mean(mismatch, len(chains))
        return {f"train/{k}": sum(v) / len(v) for k, v in stats.items()} | mismatch, signal_B

    def group_metrics(self, collected: Collected, signal_B: torch.Tensor) -> dict[str, float]:
        """Advantage and gradient-signal statistics per group label (a chain's advantage: adv_G)."""
        adv_B = torch.cat([g.adv_G for g in collected.groups])
        labels = [g.label for g in collected.groups for _ in g.chains]
        # The share of trained chains that can move the policy at all (zero advantage: no gradient).
        metrics = {"train/frac_nonzero_adv": float((adv_B != 0).float().mean())}
        for label in sorted(set(labels)):
            sel = torch.tensor([k == label for k in labels])
            groups = [g for g in collected.groups if g.label == label]
            metrics[f"train/frac_zero_std_{label}"] = sum(float(g.rewards_G.std(unbiased=False) == 0)
                                                          for g in groups) / len(groups)
            metrics[f"train/frac_nonzero_adv_{label}"] = float((adv_B[sel] != 0).float().mean())
            metrics[f"train/adv_mean_{label}"] = float(adv_B[sel].mean())
            metrics[f"train/adv_std_{label}"] = float(adv_B[sel].std(unbiased=False))
            metrics[f"train/grad_signal_{label}"] = float(signal_B[sel].mean())
        if self.arm.signal_ratio is not None:
            top, bottom = (f"train/grad_signal_{label}" for label in self.arm.signal_ratio)
            if top in metrics and metrics.get(bottom, 0) > 0:
                metrics["train/grad_signal_ratio"] = metrics[top] / metrics[bottom]
        return metrics

    def train_step(self) -> dict[str, float]:
        self.model.eval()
        checks_before = dict(self.verifier.counts) if self.verifier is not None else {}
        local = self.arm.collect(self.ranks.shard(self.next_prompts()), self.state["step"])
        checks = self.ranks.summed(verifier_metrics(self.verifier, checks_before))
        update, signal_B = self.update(local)
        collected = local
        if self.ranks.distributed:  # the step over all ranks: groups, tokens, records, metrics
            parts = self.ranks.gather((local, signal_B))
            collected, signal_B = Collected.merged([c for c, _ in parts]), torch.cat([b for _, b in parts])
        rewards = torch.cat([g.rewards_G for g in collected.groups])
        generated = collected.generated
        self.state["tokens"] += generated
        self.state["resets"] += collected.records
        chains = [c for g in collected.groups for c in g.chains]
        return {
            "train/reward": float(rewards.mean()),
            "train/response_tokens": sum(len(c.response_ids) for c in chains) / len(chains),
            "train/tokens_generated": float(generated),
            **{f"train/tokens_{k}": float(v) for k, v in collected.tokens.items()},
            **collected.metrics,
            **checks,
            **update,
            **self.group_metrics(collected, signal_B),
        }

    def checkpoint(self, score: float | None) -> None:
        generators = self.ranks.gather(self.generator.get_state())  # each rank resumes its own sampling stream
        if not self.ranks.main:
            return
        state = {"optimizer": self.optimizer.state_dict(), "generators": generators, "trainer": self.state}
        card = self.card.with_scores({"pass@1 (greedy)": score}, step=self.state["step"])
        self.store.save(self.state["step"], self.model, self.tokenizer, state, card, score)

    def evaluations(self, step: int) -> dict[str, float]:
        rl, record = self.p.rl, {}
        if step % rl.eval_every == 0 or step == rl.steps:
            record.update(self.validate(step))
        if step % rl.loc_eval_every == 0 or step == rl.steps:
            record.update(self.localization_check())
        return record

    def run(self, stop_at: int | None = None) -> list[dict]:
        """Train to rl.steps (or stop after `stop_at` steps, as an interruption would). Every rank trains; rank 0
        alone evaluates, logs and writes."""
        rl, main = self.p.rl, self.ranks.main
        last_score = None
        progress = Progress(f"train {self.method} seed{self.seed}", rl.steps, self.state["step"]) if main else None
        while self.state["step"] < rl.steps:
            if stop_at is not None and self.state["step"] >= stop_at:
                if main:
                    progress.close()
                return self.state["history"]
            started = time.perf_counter()
            record: dict = {"step": self.state["step"], "compute/tokens_generated": float(self.state["tokens"])}
            if main:
                record.update(self.evaluations(self.state["step"]))
            last_score = record.get(VAL_PASS1, last_score)
            record.update(self.train_step())
            self.state["timings"].append(time.perf_counter() - started)
            self.state["step"] += 1
            if main:
                self.log.log(record)
            if main and self.state["step"] < rl.steps:  # the last step's line comes with the final evaluation
                progress.update(self.state["step"], {**record, "compute/tokens_generated": float(self.state["tokens"])})
            if self.state["step"] % rl.save_every == 0 or self.state["step"] == rl.steps:
                self.checkpoint(last_score)
        if main:
            self.finish(progress)
        else:
            self.close_engines()
        self.ranks.close()
        return self.state["history"]

    def close_engines(self) -> None:
        self.engine.close()
        if self.verifier is not None:
            self.verifier.close()

    def finish(self, progress: Progress) -> None:
        """The final evaluation and the run's outputs, swapped in together."""
        rl = self.p.rl
        final = {"step": rl.steps, "compute/tokens_generated": float(self.state["tokens"]),
                 **self.evaluations(rl.steps)}
        self.log.log(final)
        progress.update(rl.steps, final)
        progress.close()
        self.log.close()
        eos = eos_endings(self.engine, self.val_set, self.p.rollout)  # for the card of the final model
        self.close_engines()  # before the merged copy: vLLM's memory goes back first
        # Merged (adapters folded in): loadable by transformers and vLLM like any checkpoint.
        card = self.card.with_scores({"pass@1 (greedy)": final.get(VAL_PASS1),
                                      "localization exact match": final.get("loc/heldout_exact_match")},
                                     step=rl.steps).with_eos(eos)
        out = self.outputs
        save_policy(merged_model(self.model), self.tokenizer, out / "model", card)
        write_jsonl(out / "resets.jsonl", self.state["resets"])
        atomic_write_json(out / "val_outcomes.json", {"ids": [p.id for p in self.val_set],
                                                      "by_step": self.state["val_outcomes"],
                                                      "by_step_sampled": self.state["val_sampled"]})
        atomic_write_json(out / "history.json", self.state["history"])
        atomic_write_json(out / "timings.json", {"step_seconds": self.state["timings"]})
        out.commit()
