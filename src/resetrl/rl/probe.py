"""The quantities that decide whether resets can matter, measured on a policy.

From `group_size` fresh chains per validation problem at the rollout temperature (GRPO's view of
the task) and `n_suffixes` suffixes resampled at each problem's first failed chain's exact first
error (the oracle reset's view):
  * the error rate of each step type and of each position: of the thoughts reached with a clean
    prefix, the share that are wrong, per operation and per thought (a chain that stops early is
    charged to its last thought, one that runs on past the last operation to "overrun", as
    `task.check_chain` does), beside the designed rates of the warm start's demonstrations;
    clean means clean by the step checker, not by the reward (errors that cancel are errors);
  * where first errors fall: the share at each thought and at the last one;
  * p, the on-policy chance that a fresh chain reaches the first-error state with a clean prefix
    (the other chains of the same problem that are clean through thought e-1), the CPI theory's
    quantity: resets can only pay where p is small;
  * how improvable the reset state is: suffix success from just before the exact first error
    against fresh chains of the same problems;
  * GRPO's groups: the share that are all wrong, all right (no signal) or mixed;
  * self-localization on those failed chains (greedy, as held out in training) next to what a
    uniform random reset gets on the same chains.
Real-data problems have no step checker: the stage then records only that nothing was measured.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import torch

from resetrl.core.metrics import Progress
from resetrl.core.model import load_policy
from resetrl.rl.evaluation import localization_accuracy
from resetrl.rollout.engine import SamplingSettings, prompt_ids
from resetrl.rollout.factory import make_engine
from resetrl.tasks.procedural import ChainCheck, Problem, check_chain
from resetrl.tasks.scoring import has_step_checker
from resetrl.tasks.splits import load_split


def step_label(problem: Problem, step: int) -> str:
    """The operation of 1-based thought `step`, or "overrun" past the last operation."""
    return problem.ops[step - 1][0] if step <= len(problem.ops) else "overrun"


def error_of(check: ChainCheck) -> int | None:
    """The step checker's first wrong thought (None for a chain without one). Not the reward: a chain
    whose errors cancel has a right answer and a first error."""
    return check.first_error


def error_rates(problems: list[Problem], checks: list[list[ChainCheck]], label) -> dict[str, dict]:
    """Per label of a thought (`label(problem, i)`, i 1-based): thoughts reached with a clean prefix, how
    many were wrong, and the rate."""
    reached, wrong = Counter(), Counter()
    for p, group in zip(problems, checks):
        for c in group:
            k = error_of(c)
            reached.update(label(p, i) for i in range(1, (len(p.ops) if k is None else k) + 1))
            if k is not None:
                wrong[label(p, k)] += 1
    return {key: {"reached": reached[key], "wrong": wrong[key], "rate": wrong[key] / reached[key]}
            for key in sorted(reached, key=lambda key: (len(key), key))}


def step_error_rates(problems: list[Problem], checks: list[list[ChainCheck]]) -> dict[str, dict]:
    """Per step type (operation, or "overrun")."""
    return error_rates(problems, checks, step_label)


def position_error_rates(problems: list[Problem], checks: list[list[ChainCheck]]) -> dict[str, dict]:
    """Per thought position (1-based, as a string)."""
    return error_rates(problems, checks, lambda _, i: str(i))


def designed_error_rates(task, n_steps: int) -> dict[str, float]:
    """The error rate the warm start's demonstrations have at each thought: slips, then the hard step."""
    last = task.slip_rate if task.final_step_accuracy is None else 1.0 - task.final_step_accuracy
    return {str(i): (last if i == n_steps else task.slip_rate) for i in range(1, n_steps + 1)}


def first_error_positions(problems: list[Problem], checks: list[list[ChainCheck]]) -> dict:
    """Share of first errors at each thought (1-based), at the last operation, and their mean e/n."""
    errors = [(k, len(p.ops)) for p, group in zip(problems, checks) for c in group
              if (k := error_of(c)) is not None]
    if not errors:
        return {"failed": 0}
    counts = Counter(k for k, _ in errors)
    return {"failed": len(errors),
            "by_thought": {str(k): counts[k] / len(errors) for k in sorted(counts)},
            "at_last_step": sum(k == n for k, n in errors) / len(errors),
            "mean_relative": sum(min(k, n) / n for k, n in errors) / len(errors)}


def reach_probability(checks: list[list[ChainCheck]]) -> float | None:
    """p: for each failed chain with first error e, the share of the other chains of its problem
    that are clean through thought e-1; the mean over failed chains."""
    shares = []
    for group in checks:
        for i, c in enumerate(group):
            k = error_of(c)
            others = group[:i] + group[i + 1:]
            if k is not None and others:
                shares.append(sum(error_of(o) is None or error_of(o) >= k for o in others) / len(others))
    return sum(shares) / len(shares) if shares else None


def group_signal(checks: list[list[ChainCheck]]) -> dict[str, float]:
    """Share of fresh groups that are all wrong, all right, or mixed (only those carry advantage)."""
    outcomes = [[c.correct for c in group] for group in checks]
    n = len(outcomes)
    wrong = sum(not any(g) for g in outcomes) / n
    right = sum(all(g) for g in outcomes) / n
    return {"all_wrong": wrong, "all_right": right, "mixed": 1.0 - wrong - right}


def measure(engine, problems: list[Problem], rollout, group_size: int, n_suffixes: int,
            loc_max_tokens: int, seed: int, task=None) -> dict:
    settings = SamplingSettings.from_config(rollout)
    generator = torch.Generator().manual_seed(seed)
    tok = engine.tokenizer
    progress = Progress(f"task_regime ({len(problems)} problems)", 3)
    groups = engine.generate([(prompt_ids(tok, p), []) for p in problems], group_size, settings, generator)
    progress.update(1, {})
    checks = [[check_chain(p, c.text) for c in g] for p, g in zip(problems, groups)]
    # The first failed chain of each problem (with a complete thought) is the reset parent.
    parents = []
    for p, g, cs in zip(problems, groups, checks):
        for chain, c in zip(g, cs):
            k = error_of(c)  # the buffer picks parents by the reward, and resets at the checker's error
            if not c.correct and k is not None and chain.thought_ends and k <= len(chain.thought_ends):
                parents.append((p, chain, k, [x.correct for x in cs]))
                break
    requests = [(prompt_ids(tok, p), chain.response_ids[:chain.thought_ends[k - 2]] if k > 1 else [])
                for p, chain, k, _ in parents]
    suffixes = engine.generate(requests, n_suffixes, settings, generator)
    progress.update(2, {})
    suffix_ok = [sum(check_chain(p, s.text).correct for s in g) / len(g)
                 for (p, _, _, _), g in zip(parents, suffixes)]
    fresh_ok = [sum(outcomes) / len(outcomes) for _, _, _, outcomes in parents]
    n_thoughts = [len(chain.thought_ends) for _, chain, _, _ in parents]
    failed = [(p, chain.text, k) for p, chain, k, _ in parents]
    fresh = [c.correct for cs in checks for c in cs]
    self_localization = localization_accuracy(engine, failed, loc_max_tokens, rollout.batch_size) if failed else None
    progress.update(3, {})
    progress.close()
    return {
        "problems": len(problems),
        "group_size": group_size,
        "fresh_success": sum(fresh) / len(fresh),
        "step_error_rate": step_error_rates(problems, checks),
        "position_error_rate": position_error_rates(problems, checks),
        "designed_error_rate": None if task is None else designed_error_rates(task, max(len(p.ops) for p in problems)),
        "sampling": {"temperature": rollout.temperature, "top_p": rollout.top_p},
        "first_error": first_error_positions(problems, checks),
        "p_reach": reach_probability(checks),
        "groups": group_signal(checks),
        "reset_state": {
            "parents": len(parents),
            "suffix_success": sum(suffix_ok) / len(parents) if parents else None,
            "fresh_success_same_problems": sum(fresh_ok) / len(parents) if parents else None,
            "suffix_success_by_problem": suffix_ok,
            "fresh_success_by_problem": fresh_ok,
        },
        "localization": {
            "self": self_localization,
            "random": {"exact_match": sum(1 / n for n in n_thoughts) / len(parents),
                       "clean_rate": sum(k / n for (_, _, k, _), n in zip(parents, n_thoughts)) / len(parents)}
            if parents else None,
        },
    }


def probe_task(params, model: Path, data: Path, seed: int) -> dict:
    """The stage's measurements of one warm start, or only the problem count without a step checker."""
    problems = load_split(data, "val")
    if not all(has_step_checker(p) for p in problems):  # real data: no first errors to measure
        return {"problems": len(problems), "step_checker": False}
    engine = make_engine(params.rollout, *load_policy(model, params.runtime))
    try:
        return measure(engine, problems, params.rollout, params.rl.group_size, params.rl.group_size // 2,
                       params.rl.localization_max_tokens, seed, params.task)
    finally:
        engine.close()
