"""The study's prediction in seconds: each arm's buffer against GRPO on a tabular chain task, with no
network in the way.

Each problem is a chain of `n_steps` steps. At step k of problem i the policy takes the right step with
probability sigmoid(theta[k] + u[i, k]): `theta` is one logit per position *shared* by every problem (a
network generalises "the last step" across problems; `shared=False` gives each problem its own logits)
and `u` a fixed per-problem offset (problems differ a little). A wrong step fails the chain. Ordinary
steps start right with probability 1 - slip; the last step is the hard one (in `hard_share` of the
problems), started right with probability `hard_q` < 0.5, so greedy decoding fails it. With
`slips_learnable=False` only the hard step's logit moves: RL cannot unlearn the slips.

Every method samples `prompts` problems per step and takes one SGD step on the REINFORCE gradient with
group-normalised advantages (the same estimator for all, so only the buffer differs):
  * grpo: one group of `group_size` fresh chains;
  * reset arms (the paper's buffer): fresh draws until the base group is full and one chain failed (at most
    `max_draws`), then suffixes from a reset step of the failed parent, each group normalised on its own;
    without a failure the first fresh draws plus new ones form one group. The parent is not trained on,
    unless `parent_in_base`. Selectors: random (RRPO: uniform over the parent's n thoughts, a prefix past
    the first error cannot succeed), oracle (the exact first error), and demo (the positive control: no
    parent, the prefix is the task's own correct solution cut at step e, e uniform over a window at the end
    of the chain that widens to the whole chain over the run, R^3's reverse curriculum).
Compute is counted in generated steps (a suffix costs only its own steps, the failed parent its whole
chain), as the study counts tokens. Measures: area under greedy accuracy (the share of problems whose every
logit is positive) and under sampled accuracy (the mean success probability) up to the compute every run
reaches, and per update. `python -m resetrl.analysis.tabular` prints a grid of regimes; the `predict` stage
writes the prediction for the study's own regime and arms (results/theory/tabular.json).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass, replace
from statistics import NormalDist

import numpy as np

from resetrl.core.storage import atomic_write_json

LAYOUT_SIZES = {"1x4": (4, 4), "1x8": (0, 8)}  # layout -> (base chains, suffixes); 2x4 is not modelled


@dataclass(frozen=True)
class Regime:
    n_steps: int = 10
    slip: float = 0.1  # chance an ordinary step goes wrong at the start
    hard_q: float = 0.3  # chance the hard last step goes right at the start (< 0.5: greedy fails it)
    hard_share: float = 1.0  # share of the problems with a hard last step
    shared: bool = True  # one logit per position for every problem (else one per problem and position)
    slips_learnable: bool = True  # RL can also remove the ordinary steps' slips
    problem_sd: float = 0.3  # spread of the per-problem logit offsets


@dataclass(frozen=True)
class Schedule:
    n_problems: int = 256
    prompts: int = 8
    group_size: int = 8
    max_draws: int = 12
    steps: int = 150
    lr: float = 1.0


@dataclass(frozen=True)
class Buffer:
    """How one arm turns a problem into training groups."""

    selector: str = "none"  # none (GRPO), random, oracle, demo
    layout: str = "1x4"
    parent_in_base: bool = False


# The arms of params.yaml as buffers; SRPO's localization is a learned skill that no table models.
BUFFERS = {"grpo": Buffer(), "rrpo": Buffer("random"), "oracle": Buffer("oracle"), "demo": Buffer("demo"),
           "oracle_1x8": Buffer("oracle", "1x8"), "oracle_parent": Buffer("oracle", parent_in_base=True)}


def buffer_of(arm) -> Buffer | None:
    """An arm config's buffer, or None where the table has no model of it (self-localization, 2x4, the
    per-token methods)."""
    if arm.family == "grpo":
        return Buffer()
    if arm.family != "reset" or arm.selector == "self" or arm.layout not in LAYOUT_SIZES:
        return None
    return Buffer(arm.selector, arm.layout, arm.parent_in_base)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: float) -> float:
    return float(np.log(p / (1.0 - p)))


def initial_logits(regime: Regime, n_problems: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(theta_N, u_PN): the shared start logits and the per-problem offsets (a problem without a hard
    step gets an ordinary last step through its offset)."""
    theta = np.full(regime.n_steps, _logit(1.0 - regime.slip))
    theta[-1] = _logit(regime.hard_q)
    u = rng.normal(0.0, regime.problem_sd, (n_problems, regime.n_steps))
    easy = rng.random(n_problems) >= regime.hard_share
    u[easy, -1] += _logit(1.0 - regime.slip) - _logit(regime.hard_q)
    return theta, u


def first_failure(logits_N: np.ndarray, start: int, rng: np.random.Generator) -> int:
    """Index of the first wrong step from `start` on, or n_steps for a correct chain."""
    wrong = np.flatnonzero(rng.random(len(logits_N) - start) >= _sigmoid(logits_N[start:]))
    return start + int(wrong[0]) if len(wrong) else len(logits_N)


Groups = list[tuple[int, list[int]]]  # (first step sampled, each chain's first failure)


def groups_for(buffer: Buffer, logits_N: np.ndarray, s: Schedule, rng: np.random.Generator,
               progress: float = 0.0) -> tuple[Groups, int]:
    """The training groups of one problem and the steps generated to make them. `progress` (0..1 of the
    run) widens the demo arm's window."""
    n = len(logits_N)
    if buffer.selector == "none":
        return [(0, [first_failure(logits_N, 0, rng) for _ in range(s.group_size)])], n * s.group_size
    n_base, n_suffixes = LAYOUT_SIZES[buffer.layout]
    if buffer.selector == "demo":  # the correct solution's prefix: no parent to find
        window = 1 + int(progress * (n - 1))
        start = n - 1 - int(rng.integers(0, window))
        base = [first_failure(logits_N, 0, rng) for _ in range(n_base)]
        suffixes = [first_failure(logits_N, start, rng) for _ in range(n_suffixes)]
        return [(0, base), (start, suffixes)] if base else [(start, suffixes)], n * n_base + (n - start) * n_suffixes
    drawn, parent = [], None  # parent: index into drawn of the first failed chain
    while (len(drawn) - (parent is not None) < n_base or parent is None) and len(drawn) < s.max_draws:
        drawn.append(first_failure(logits_N, 0, rng))
        if drawn[-1] < n and parent is None:
            parent = len(drawn) - 1
    cost = n * len(drawn)
    if parent is None:  # no failure found: half a group of fresh draws plus new ones form one group
        kept = drawn[: s.group_size // 2]
        extra = [first_failure(logits_N, 0, rng) for _ in range(s.group_size - len(kept))]
        return [(0, kept + extra)], cost + n * len(extra)
    error = drawn[parent]
    base = drawn if buffer.parent_in_base else (drawn[:parent] + drawn[parent + 1:])[:n_base]
    reset = error if buffer.selector == "oracle" else int(rng.integers(0, n))  # random: any of its n thoughts
    # A prefix past the first error keeps the error: its suffixes fail whatever they do (-1: no clean state
    # of theirs gets credit).
    suffixes = [first_failure(logits_N, reset, rng) if reset <= error else -1 for _ in range(n_suffixes)]
    groups = ([(0, base)] if base else []) + [(reset, suffixes)]
    return groups, cost + (n - reset) * n_suffixes


def reinforce_grad(logits_N: np.ndarray, groups: Groups) -> np.ndarray:
    """Sum over chains of A * d log pi / d logit over the clean states each chain visited."""
    grad = np.zeros_like(logits_N)
    n = len(logits_N)
    for start, ends in groups:
        rewards = np.array([end == n for end in ends], dtype=float)
        if rewards.std() < 1e-8:
            continue  # no signal in a constant group
        for end, adv in zip(ends, (rewards - rewards.mean()) / rewards.std()):
            if end < 0:
                continue  # a suffix of an erroneous prefix: its states are off the clean path
            steps = np.arange(start, min(end, n - 1) + 1)
            right = (steps < end).astype(float)
            grad[steps] += adv * (right - _sigmoid(logits_N[steps]))
    return grad


def accuracies(theta_N: np.ndarray, u_PN: np.ndarray) -> tuple[float, float]:
    """(greedy accuracy, sampled accuracy) over the problems."""
    logits = theta_N + u_PN
    return float((logits > 0).all(axis=1).mean()), float(_sigmoid(logits).prod(axis=1).mean())


def simulate(buffer: Buffer, regime: Regime, schedule: Schedule, seed: int) -> list[tuple[int, float, float]]:
    """(generated steps so far, greedy accuracy, sampled accuracy) before each update and after the last."""
    rng = np.random.default_rng(seed)
    theta, u = initial_logits(regime, schedule.n_problems, rng)
    own = np.zeros_like(u)  # per-problem logits learned when not shared
    learnable = np.ones(regime.n_steps) if regime.slips_learnable else np.eye(regime.n_steps)[-1]
    spent, curve = 0, []
    for step in range(schedule.steps):
        curve.append((spent, *accuracies(theta, u + own)))
        grad = np.zeros_like(u)
        for i in rng.integers(0, schedule.n_problems, schedule.prompts):
            logits = theta + u[i] + own[i]
            groups, cost = groups_for(buffer, logits, schedule, rng, step / max(schedule.steps - 1, 1))
            grad[i] += reinforce_grad(logits, groups)
            spent += cost
        update = schedule.lr * grad * learnable / (schedule.prompts * schedule.group_size)
        if regime.shared:
            theta = theta + update.sum(axis=0)
        else:
            own += update
    curve.append((spent, *accuracies(theta, u + own)))
    return curve


def area_to_budget(curve, budget: float, measure: int = 1) -> float:
    """Mean accuracy (column `measure` of the curve) over [0, budget] generated steps, linear between points."""
    x, y = np.array(curve, dtype=float)[:, [0, measure]].T
    return float(np.interp(np.linspace(0.0, budget, 400), x, y).mean())


def mde(sd: float, n: int, alpha: float, power: float = 0.8) -> float:
    """Smallest paired mean difference a two-sided test at `alpha` detects with `power` from n pairs."""
    z = NormalDist().inv_cdf
    return (z(1 - alpha / 2) + z(power)) * sd / math.sqrt(n)


def compare(regime: Regime, schedule: Schedule, buffers: dict[str, Buffer], seeds: int,
            study_seeds: int = 5, alpha: float = 0.05) -> dict:
    """Each buffer's AUCs and its paired gain over the first one (the baseline), with the gain's SE over
    the simulation seeds and the MDE a study of `study_seeds` seeds would have at this spread."""
    curves = {m: [simulate(b, regime, schedule, seed) for seed in range(seeds)] for m, b in buffers.items()}
    budget = min(c[-1][0] for cs in curves.values() for c in cs)
    baseline = next(iter(buffers))
    out = {"regime": asdict(regime), "schedule": asdict(schedule), "seeds": seeds, "study_seeds": study_seeds,
           "alpha": alpha, "budget_steps": budget,
           "start": {"greedy": curves[baseline][0][0][1], "sampled": curves[baseline][0][0][2]},
           "p_reach_hard_step": (1 - regime.slip) ** (regime.n_steps - 1), "arms": {}}
    per_arm = {m: {"greedy": [area_to_budget(c, budget, 1) for c in cs],
                   "sampled": [area_to_budget(c, budget, 2) for c in cs],
                   "final_greedy": [c[-1][1] for c in cs], "tokens_per_update": [c[-1][0] / schedule.steps for c in cs]}
               for m, cs in curves.items()}
    for m, values in per_arm.items():
        row = {k: float(np.mean(v)) for k, v in values.items()}
        if m != baseline:
            for measure in ("greedy", "sampled"):
                gain = np.array(values[measure]) - np.array(per_arm[baseline][measure])  # paired by seed
                sd = float(gain.std(ddof=1)) if seeds > 1 else 0.0
                row[f"gain_{measure}"] = float(gain.mean())
                row[f"se_{measure}"] = sd / math.sqrt(seeds)
                row[f"mde_{measure}"] = mde(sd, study_seeds, alpha)
        out["arms"][m] = row
    return out


def regime_of(task) -> Regime:
    """The tabular regime of a procedural task's params: its longest chains, the demonstrated slip rate and
    the hard last step's demonstrated accuracy (without one, every problem's last step slips like the others).
    Rates are kept off 0 and 1, where a logit is infinite."""
    clip = lambda x: min(max(x, 1e-3), 1 - 1e-3)  # noqa: E731
    q = task.final_step_accuracy
    return Regime(n_steps=task.max_steps, slip=clip(task.slip_rate),
                  hard_q=clip(1 - task.slip_rate if q is None else q),
                  hard_share=0.0 if q is None else 1.0)


def schedule_of(rl, theory) -> Schedule:
    return Schedule(prompts=rl.prompts_per_step, group_size=rl.group_size, max_draws=rl.max_draws,
                    steps=rl.steps, lr=theory.tabular_lr)


def predict(params) -> dict:
    """The tabular prediction for the study's regime: every arm of study.methods the table can model
    against the first (the baseline, GRPO's buffer), by arm name."""
    methods = params.study.methods
    arms = {m: buffer_of(params.arms[m]) for m in methods}
    buffers = {methods[0]: Buffer(), **{m: b for m, b in arms.items() if b is not None and m != methods[0]}}
    out = compare(regime_of(params.task), schedule_of(params.rl, params.theory), buffers, params.theory.tabular_seeds,
                  len(params.study.seeds), params.study.alpha)
    out["arm_buffers"] = {m: (None if b is None else asdict(b)) for m, b in arms.items()}
    return out


def predict_at_profile(prediction: dict, slip: float, hard_q: float) -> dict:
    """A prediction rerun with the error profile the warm starts were measured to have in place of the
    designed one (same schedule, buffers and seeds): which part of a gap between the prediction and the
    network is the warm start missing its design."""
    regime = replace(Regime(**prediction["regime"]), slip=slip, hard_q=hard_q)
    schedule = Schedule(**prediction["schedule"])
    buffers = {m: Buffer(**b) for m, b in prediction["arm_buffers"].items() if b is not None}
    buffers = {next(iter(prediction["arms"])): Buffer(), **buffers}
    return compare(regime, schedule, buffers, prediction["seeds"], prediction["study_seeds"], prediction["alpha"])


GRID = (  # the regime search: slip rate and hard step accuracy at 10 steps, then unlearnable slips and length
    Regime(slip=0.1, hard_q=0.2), Regime(slip=0.2, hard_q=0.3), Regime(slip=0.1, hard_q=0.45),
    Regime(slip=0.2, hard_q=0.3, slips_learnable=False), Regime(n_steps=6, slip=0.1, hard_q=0.2),
    Regime(slip=0.1, hard_q=0.2, shared=False),
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=4, help="simulations per method and regime (paired by seed)")
    parser.add_argument("--steps", type=int, default=Schedule.steps, help="SGD steps per simulation")
    parser.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    rows = []
    for regime in GRID:
        schedule = replace(Schedule(steps=args.steps), lr=Schedule.lr if regime.shared else 30.0)
        row = compare(regime, schedule, BUFFERS, args.seeds)
        rows.append(row)
        gains = ", ".join(f"{m} {a['gain_greedy']:+.3f} +- {a['se_greedy']:.3f}"
                          for m, a in row["arms"].items() if "gain_greedy" in a)
        print(f"{regime.n_steps} steps, slip {regime.slip}, hard q {regime.hard_q}"
              f"{'' if regime.slips_learnable else ', slips fixed'}{'' if regime.shared else ', per-problem logits'}"
              f" (p {row['p_reach_hard_step']:.2f}): grpo AUC {row['arms']['grpo']['greedy']:.3f}; gain {gains}",
              flush=True)
    if args.out:
        atomic_write_json(args.out, rows)


if __name__ == "__main__":
    main()
