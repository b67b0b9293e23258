"""The reset buffer against GRPO on a tabular chain task: where does a reset at the exact first
error beat GRPO, with no function approximation in the way?

Each problem is a chain of `n_steps` steps. At step k of problem i the policy takes the right step
with probability sigmoid(theta[i, k]) (one logit per clean state; a wrong step fails the chain, and
what follows it is off the clean path). Ordinary steps start right with probability 1 - slip (a
slip: greedy decoding, theta > 0, never makes it); a share `hard_share` of the problems has a hard
step (the last one, or anywhere) started at `hard_q` < 0.5, so greedy decoding fails it. Greedy
accuracy is the share of problems with every logit positive.

Both methods sample `prompts` problems per step and take one SGD step on the REINFORCE gradient
with group-normalised advantages (the same estimator for both, so only the buffer differs):
  * grpo: one group of `group_size` fresh chains;
  * oracle: the paper's 1x4 buffer: fresh draws until 4 base chains and one failed parent (at most
    `max_draws`), then 4 suffixes from the parent's first error, normalised per group; without a
    parent the 4 base chains plus 4 new ones form one group. The parent is not trained on.
Compute is counted in generated steps (a suffix costs only its own steps), as the study counts
tokens. `python -m resetrl.analysis.tabular` prints both methods' compute-matched area under the greedy
accuracy curve for a grid of regimes (docs/regime_search.md reads it).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass

import numpy as np

from resetrl.core.storage import atomic_write_json

METHODS = ("grpo", "oracle")
N_BASE, N_SUFFIXES = 4, 4  # the paper's 1x4 layout


@dataclass(frozen=True)
class Regime:
    n_steps: int = 6
    slip: float = 0.1  # chance an ordinary step goes wrong at the start
    hard_share: float = 1.0  # share of the problems with a hard step
    hard_q: float = 0.35  # chance the hard step goes right at the start (< 0.5: greedy fails it)
    hard_last: bool = True  # the hard step is the last one (else a uniformly drawn one)


@dataclass(frozen=True)
class Schedule:
    n_problems: int = 256
    prompts: int = 8
    group_size: int = 8
    max_draws: int = 12
    steps: int = 150
    lr: float = 30.0


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: float) -> float:
    return float(np.log(p / (1.0 - p)))


def initial_logits(regime: Regime, n_problems: int, rng: np.random.Generator) -> np.ndarray:
    theta = np.full((n_problems, regime.n_steps), _logit(1.0 - regime.slip))
    hard = rng.random(n_problems) < regime.hard_share
    where = np.full(n_problems, regime.n_steps - 1) if regime.hard_last else rng.integers(0, regime.n_steps, n_problems)
    theta[hard, where[hard]] = _logit(regime.hard_q)
    return theta + rng.normal(0.0, 0.3, theta.shape)  # problems differ a little


def first_failure(theta_row: np.ndarray, start: int, rng: np.random.Generator) -> int:
    """Index of the first wrong step from `start` on, or n_steps for a correct chain."""
    wrong = np.flatnonzero(rng.random(len(theta_row) - start) >= _sigmoid(theta_row[start:]))
    return start + int(wrong[0]) if len(wrong) else len(theta_row)


def groups_for(method: str, theta_row: np.ndarray, s: Schedule, rng) -> tuple[list[tuple[int, list[int]]], int]:
    """The training groups of one problem as (first step sampled, each chain's first failure), and
    the steps generated to make them."""
    n = len(theta_row)
    if method == "grpo":
        return [(0, [first_failure(theta_row, 0, rng) for _ in range(s.group_size)])], n * s.group_size
    base, parent, draws = [], None, 0
    while (len(base) < N_BASE or parent is None) and draws < s.max_draws:
        end = first_failure(theta_row, 0, rng)
        draws += 1
        if end < n and parent is None:
            parent = end
        elif len(base) < N_BASE:
            base.append(end)
    cost = n * draws
    if parent is None:  # no failure found: the base chains plus new ones form one group
        extra = [first_failure(theta_row, 0, rng) for _ in range(s.group_size - N_BASE)]
        return [(0, base + extra)], cost + n * len(extra)
    suffixes = [first_failure(theta_row, parent, rng) for _ in range(N_SUFFIXES)]
    return [(0, base), (parent, suffixes)], cost + (n - parent) * N_SUFFIXES


def reinforce_grad(theta_row: np.ndarray, groups: list[tuple[int, list[int]]]) -> np.ndarray:
    """Sum over chains of A * d log pi / d theta over the clean states each chain visited."""
    grad = np.zeros_like(theta_row)
    n = len(theta_row)
    for start, ends in groups:
        rewards = np.array([end == n for end in ends], dtype=float)
        if rewards.std() < 1e-8:
            continue  # no signal in a constant group
        for end, adv in zip(ends, (rewards - rewards.mean()) / rewards.std()):
            steps = np.arange(start, min(end, n - 1) + 1)
            right = (steps < end).astype(float)
            grad[steps] += adv * (right - _sigmoid(theta_row[steps]))
    return grad


def simulate(method: str, regime: Regime, schedule: Schedule, seed: int) -> list[tuple[int, float]]:
    """(generated steps so far, greedy accuracy) before each update and after the last."""
    rng = np.random.default_rng(seed)
    theta = initial_logits(regime, schedule.n_problems, rng)
    spent, curve = 0, []
    for _ in range(schedule.steps):
        curve.append((spent, float((theta > 0).all(axis=1).mean())))
        grad = np.zeros_like(theta)
        for i in rng.integers(0, schedule.n_problems, schedule.prompts):
            groups, cost = groups_for(method, theta[i], schedule, rng)
            grad[i] += reinforce_grad(theta[i], groups)
            spent += cost
        theta += schedule.lr * grad / (schedule.prompts * schedule.group_size)
    curve.append((spent, float((theta > 0).all(axis=1).mean())))
    return curve


def area_to_budget(curve: list[tuple[int, float]], budget: float) -> float:
    """Mean greedy accuracy over [0, budget] generated steps (linear between points)."""
    x, y = np.array(curve, dtype=float).T
    return float(np.interp(np.linspace(0.0, budget, 400), x, y).mean())


def compare(regime: Regime, schedule: Schedule, seeds: int) -> dict:
    curves = {m: [simulate(m, regime, schedule, seed) for seed in range(seeds)] for m in METHODS}
    budget = min(c[-1][0] for cs in curves.values() for c in cs)
    auc = {m: [area_to_budget(c, budget) for c in cs] for m, cs in curves.items()}
    gain = np.array(auc["oracle"]) - np.array(auc["grpo"])  # paired by seed
    return {"regime": asdict(regime), "budget_steps": budget, "start": curves["grpo"][0][0][1],
            **{f"{m}_auc": float(np.mean(a)) for m, a in auc.items()},
            "oracle_minus_grpo": float(gain.mean()), "se": float(gain.std(ddof=1) / np.sqrt(seeds))}


GRID = (  # hard step anywhere vs last, slip rate, chain length
    Regime(n_steps=10, slip=0.1, hard_last=False),
    Regime(n_steps=10, slip=0.2, hard_last=False),
    Regime(n_steps=10, slip=0.1, hard_last=True),
    Regime(n_steps=10, slip=0.2, hard_last=True),
    Regime(n_steps=10, slip=0.15, hard_share=0.5, hard_last=True),
    Regime(n_steps=4, slip=0.1, hard_last=True),
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=4, help="simulations per method and regime (paired by seed)")
    parser.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    rows = []
    for regime in GRID:
        row = compare(regime, Schedule(), args.seeds)
        rows.append(row)
        r = row["regime"]
        print(f"{r['n_steps']} steps, slip {r['slip']}, hard step in {r['hard_share']:.0%} of problems "
              f"({'last' if r['hard_last'] else 'anywhere'}, q {r['hard_q']}): greedy {row['start']:.2f} -> "
              f"AUC grpo {row['grpo_auc']:.3f}, oracle {row['oracle_auc']:.3f}, "
              f"oracle - grpo {row['oracle_minus_grpo']:+.3f} +- {row['se']:.3f}", flush=True)
    if args.out:
        atomic_write_json(args.out, rows)


if __name__ == "__main__":
    main()
