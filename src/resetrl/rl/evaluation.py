"""Scoring a policy on problems: greedy pass@1 and sampled pass@k with the unbiased estimator, and
a checkpoint's evaluation on the test and OOD splits (the `evaluate` stage)."""

from __future__ import annotations

from math import comb
from pathlib import Path

import torch

from resetrl.core.metrics import Progress
from resetrl.core.model import load_policy
from resetrl.core.params import Params
from resetrl.rl.localization import localization_prompt_ids, parse_localized_step
from resetrl.rollout.engine import RolloutEngine, SamplingSettings, prompt_ids
from resetrl.rollout.factory import make_engine
from resetrl.tasks.procedural import Problem, split_thoughts
from resetrl.tasks.scoring import group_rewards, open_verifier, rewards
from resetrl.tasks.splits import load_split
from resetrl.tasks.verify import VerifierPool


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k draws (without replacement) from n samples with c correct
    is correct: 1 - C(n-c, k) / C(n, k) (Chen et al., 2021)."""
    if not 1 <= k <= n:
        raise ValueError(f"pass@k needs 1 <= k <= n, got k={k}, n={n}")
    return 1.0 - comb(n - c, k) / comb(n, k)


def greedy_pass1(engine: RolloutEngine, problems: list, rollout, verifier: VerifierPool | None = None) -> dict:
    """Greedy accuracy (no resets at evaluation), each problem's 0/1 outcome (for paired
    comparisons), mean response length and generated tokens; with problems from several sources
    (benchmarks), the accuracy of each under `by_source`."""
    settings = SamplingSettings.from_config(rollout, greedy=True)
    groups = engine.generate([(prompt_ids(engine.tokenizer, p), []) for p in problems], 1, settings)
    chains = [g[0] for g in groups]
    scores = rewards(problems, [c.text for c in chains], verifier)
    out = {
        "pass1": sum(scores) / len(scores),
        "outcomes": [int(s) for s in scores],
        "response_tokens": sum(len(c.response_ids) for c in chains) / len(chains),
        "tokens_generated": float(sum(c.n_generated for c in chains)),
    }
    sources = sorted({getattr(p, "source", "") for p in problems})
    if len(sources) > 1:
        out["by_source"] = {}
        for source in sources:
            mine = [r for p, r in zip(problems, scores) if getattr(p, "source", "") == source]
            out["by_source"][source] = {"greedy_pass1": sum(mine) / len(mine), "problems": len(mine)}
    return out


EOS_CHECK_PROBLEMS = 64  # validation problems behind a model card's EOS statement


def eos_endings(engine: RolloutEngine, problems: list, rollout) -> dict[str, int]:
    """How plain generation ends, greedy, as a user's `generate` or a vLLM request runs it (stop at EOS, at
    most the response budget, no project stop rule) on the first validation problems: how many chains end
    in EOS (the rest run into the budget). The model card states it."""
    problems = problems[:EOS_CHECK_PROBLEMS]
    settings = SamplingSettings.for_free_text(0.0, 1.0, rollout.max_thoughts * rollout.max_thought_tokens,
                                              rollout.batch_size)
    groups = engine.generate([(prompt_ids(engine.tokenizer, p), []) for p in problems], 1, settings)
    return {"eos": sum(g[0].finish == "eos" for g in groups), "chains": len(groups)}


def sampled_pass_k(engine: RolloutEngine, problems: list, rollout, n_samples: int, ks: tuple[int, ...], seed: int,
                   verifier: VerifierPool | None = None) -> dict:
    """Mean unbiased pass@k over problems from n_samples chains each at the rollout temperature, and
    each problem's number of correct samples."""
    settings = SamplingSettings.from_config(rollout)
    generator = torch.Generator().manual_seed(seed)
    groups = engine.generate([(prompt_ids(engine.tokenizer, p), []) for p in problems], n_samples, settings,
                             generator)
    correct = [sum(scores) for scores in group_rewards(problems, groups, verifier)]
    out = {f"pass@{k}": sum(pass_at_k(n_samples, int(c), k) for c in correct) / len(problems)
           for k in ks}
    out["tokens_generated"] = float(sum(c.n_generated for g in groups for c in g))
    out["correct"] = [int(c) for c in correct]
    return out


def localization_accuracy(engine: RolloutEngine, failed: list[tuple[Problem, str, int]], max_tokens: int,
                          batch_size: int) -> dict[str, float]:
    """Greedy self-localization on failed chains with known first errors: exact-match rate,
    clean rate (localized at or before the true first error) and parse-fallback rate."""
    settings = SamplingSettings.for_free_text(0.0, 1.0, max_tokens, batch_size)
    thoughts = [split_thoughts(response) for _, response, _ in failed]
    requests = [(localization_prompt_ids(engine.tokenizer, p.prompt, t), [])
                for (p, _, _), t in zip(failed, thoughts)]
    calls = [g[0] for g in engine.generate(requests, 1, settings)]
    parsed = [parse_localized_step(c.text, max(len(t), 1)) for c, t in zip(calls, thoughts)]
    n = len(failed)
    return {
        "exact_match": sum(step == at for (step, _), (_, _, at) in zip(parsed, failed)) / n,
        "clean_rate": sum(step <= at for (step, _), (_, _, at) in zip(parsed, failed)) / n,
        "fallback_rate": sum(fell_back for _, fell_back in parsed) / n,
    }


EVAL_SPLITS = ("test", "ood")


def evaluate_checkpoint(params: Params, model_dir: Path, data: Path, seed: int) -> tuple[dict, dict]:
    """Metrics per split: greedy pass@1, pass@k, response length; a split with several benchmarks
    (the ood split of real-data sources) also per benchmark; an empty split records only its size.
    Outcomes per split: problem ids, greedy 0/1 and the number of correct samples, in split order."""
    splits = {split: load_split(data, split) for split in EVAL_SPLITS}  # validate all before computing
    engine = make_engine(params.rollout, *load_policy(model_dir, params.runtime))
    verifier = open_verifier(params.runtime, list(splits.values()))
    metrics: dict = {}
    outcomes: dict = {}
    try:
        for split, problems in splits.items():
            if not problems:
                metrics[split] = {"problems": 0}
                continue
            progress = Progress(f"evaluate {split} ({len(problems)} problems)", 2)
            greedy = greedy_pass1(engine, problems, params.rollout, verifier)
            progress.update(1, {"eval/greedy_pass1": greedy["pass1"]})
            sampled = sampled_pass_k(engine, problems, params.rollout, params.eval.n_samples, params.eval.pass_k,
                                     seed, verifier)
            progress.update(2, {"eval/pass@1": sampled["pass@1"]} if "pass@1" in sampled else {})
            progress.close()
            metrics[split] = {
                "greedy_pass1": greedy["pass1"],
                **{k: v for k, v in sampled.items() if k.startswith("pass@")},
                "response_tokens": greedy["response_tokens"],
                "problems": len(problems),
                **({"by_source": greedy["by_source"]} if "by_source" in greedy else {}),
            }
            outcomes[split] = {"ids": [p.id for p in problems], "greedy": greedy["outcomes"],
                               "sampled_correct": sampled["correct"], "n_samples": params.eval.n_samples}
    finally:
        engine.close()
        if verifier is not None:
            verifier.close()
    return metrics, outcomes
