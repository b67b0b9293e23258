"""Stage `train`: RL from the SFT warm start for one (method, seed) run, resumable.

GRPO as run in the paper: G chains per prompt, verifier reward, group z-scored advantages, PPO
clipped surrogate (dual clip) with token-mean aggregation, one epoch in `minibatches` updates.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import time
from pathlib import Path

import torch

from resetrl.batch import pack_sequences, policy_logprobs_BT
from resetrl.checkpoint import CheckpointStore
from resetrl.cli import stage_entry
from resetrl.config import Params, add_params_argument, load_schema, params_from_args, params_to_dict, select
from resetrl.data import load_split
from resetrl.evaluation import greedy_pass1, prompt_ids
from resetrl.losses import grpo_advantages_G, grpo_loss
from resetrl.metrics import MetricsLog
from resetrl.model import load_policy, save_policy
from resetrl.rollout import SamplingSettings, sample_chains
from resetrl.stages import stage_params
from resetrl.storage import atomic_write_json
from resetrl.task import Problem, reward


def run_fingerprint(params: Params, method: str, seed: int, init: Path) -> str:
    """Hash of everything a run's trajectory depends on, to refuse resuming a different run."""
    inputs = {"method": method, "seed": seed, **select(params_to_dict(params), stage_params("train")),
              "init": hashlib.sha256((init / "model.safetensors").read_bytes()).hexdigest()}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


class RLTrainer:
    def __init__(self, params: Params, method: str, seed: int, init: Path, data: Path, out: Path):
        self.p, self.method, self.seed, self.out = params, method, seed, Path(out)
        self.train_set, self.val_set = load_split(data, "train"), load_split(data, "val")
        self.store = CheckpointStore(self.out / "ckpt", run_fingerprint(params, method, seed, init))
        resume_from = self.store.latest()
        self.model, self.tokenizer = load_policy(resume_from or init)
        self.ref_model = load_policy(init)[0] if params.rl.kl_coef > 0 else None
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=params.rl.lr,
                                           weight_decay=params.rl.weight_decay)
        self.generator = torch.Generator().manual_seed(seed)
        self.sampling = SamplingSettings.from_config(params.rollout)
        self.state = {"step": 0, "epoch": 0, "cursor": 0, "tokens": 0, "history": []}
        if resume_from is not None:
            saved = self.store.load_state(resume_from)
            self.optimizer.load_state_dict(saved["optimizer"])
            self.generator.set_state(saved["generator"])
            self.state = saved["trainer"]
            print(f"resumed from {resume_from} at step {self.state['step']}")
        self.log = MetricsLog(self.out / "live", self.state["history"])

    def next_prompts(self) -> list[Problem]:
        """Without replacement through a per-epoch shuffle derived from (seed, epoch): the data
        position is two integers, so resuming needs no RNG state."""
        batch = []
        while len(batch) < self.p.rl.prompts_per_step:
            order = list(range(len(self.train_set)))
            random.Random(f"{self.seed}-{self.state['epoch']}").shuffle(order)
            take = order[self.state["cursor"]:self.state["cursor"] + self.p.rl.prompts_per_step - len(batch)]
            batch += [self.train_set[i] for i in take]
            self.state["cursor"] += len(take)
            if self.state["cursor"] >= len(order):
                self.state["epoch"], self.state["cursor"] = self.state["epoch"] + 1, 0
        return batch

    def validate(self) -> dict[str, float]:
        self.model.eval()
        result = greedy_pass1(self.model, self.tokenizer, self.val_set, self.p.rollout)
        return {"eval/val/pass1": result["pass1"]}

    def train_step(self) -> dict[str, float]:
        rl, tok = self.p.rl, self.tokenizer
        self.model.eval()
        problems = self.next_prompts()
        groups = sample_chains(self.model, tok, [(prompt_ids(tok, p), []) for p in problems],
                               rl.group_size, self.sampling, self.generator)
        chains = [c for g in groups for c in g]
        rewards_BG = torch.tensor([[reward(p, c.text) for c in g] for p, g in zip(problems, groups)])
        adv_B = torch.cat([grpo_advantages_G(r_G) for r_G in rewards_BG])
        batch = pack_sequences([c.prompt_ids for c in chains], [c.response_ids for c in chains],
                               [0] * len(chains), tok.pad_token_id)
        order_B = torch.randperm(len(chains), generator=self.generator)
        minibatches = [(batch.rows(i), adv_B[i]) for i in order_B.chunk(rl.minibatches)]
        with torch.no_grad():  # behaviour log-probs, fixed before the first update
            old = [policy_logprobs_BT(self.model, mb, self.sampling.temperature) for mb, _ in minibatches]
            ref = [policy_logprobs_BT(self.ref_model, mb, self.sampling.temperature)
                   for mb, _ in minibatches] if self.ref_model is not None else [None] * len(old)
        self.model.train()
        stats: dict[str, list[float]] = {}
        for (mb, adv_b), old_logp, ref_logp in zip(minibatches, old, ref):
            logp = policy_logprobs_BT(self.model, mb, self.sampling.temperature)
            loss, mb_stats = grpo_loss(logp, old_logp, adv_b, mb.mask_BT, clip_eps=rl.clip_eps,
                                       dual_clip=rl.dual_clip, kl_coef=rl.kl_coef, ref_logp_BT=ref_logp)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), rl.grad_clip)
            self.optimizer.step()
            for k, v in {"loss": loss.item(), "grad_norm": grad_norm.item(), **mb_stats}.items():
                stats.setdefault(k, []).append(v)
        generated = sum(c.n_generated for c in chains)
        self.state["tokens"] += generated
        return {
            "train/reward": float(rewards_BG.mean()),
            "train/frac_zero_std_groups": float((rewards_BG.std(dim=1) == 0).float().mean()),
            "train/adv_abs_mean": float(adv_B.abs().mean()),
            "train/response_tokens": sum(len(c.response_ids) for c in chains) / len(chains),
            "train/tokens_generated": float(generated),
            **{f"train/{k}": sum(v) / len(v) for k, v in stats.items()},
        }

    def checkpoint(self, score: float | None) -> None:
        state = {"optimizer": self.optimizer.state_dict(), "generator": self.generator.get_state(),
                 "trainer": self.state}
        self.store.save(self.state["step"], self.model, self.tokenizer, state, score)

    def run(self, stop_at: int | None = None) -> list[dict]:
        """Train to rl.steps (or stop after `stop_at` steps, as an interruption would)."""
        rl = self.p.rl
        last_score = None
        while self.state["step"] < rl.steps:
            if stop_at is not None and self.state["step"] >= stop_at:
                return self.state["history"]
            started = time.perf_counter()
            record: dict = {"step": self.state["step"], "compute/tokens_generated": float(self.state["tokens"])}
            if self.state["step"] % rl.eval_every == 0:
                record.update(self.validate())
                last_score = record["eval/val/pass1"]
            record.update(self.train_step())
            record["time/step_seconds"] = time.perf_counter() - started
            self.state["step"] += 1
            self.log.log(record)
            if self.state["step"] % rl.save_every == 0 or self.state["step"] == rl.steps:
                self.checkpoint(last_score)
        final = {"step": rl.steps, "compute/tokens_generated": float(self.state["tokens"]), **self.validate()}
        self.log.log(final)
        self.log.close()
        save_policy(self.model, self.tokenizer, self.out / "model")
        atomic_write_json(self.out / "history.json", self.state["history"])
        return self.state["history"]


@stage_entry
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_params_argument(parser)
    parser.add_argument("--method", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--init", default="results/sft/model", help="warm-start checkpoint")
    parser.add_argument("--data", default="results/data")
    parser.add_argument("--out", required=True, help="run directory")
    args = parser.parse_args(argv)
    params = params_from_args(args)
    methods = load_schema()["$defs"]["method"]["enum"]
    if args.method not in methods:
        parser.error(f"--method {args.method!r} is not one of {methods}")
    torch.set_num_threads(params.runtime.threads)
    torch.manual_seed(args.seed)
    RLTrainer(params, args.method, args.seed, Path(args.init), Path(args.data), Path(args.out)).run()


if __name__ == "__main__":
    main()
