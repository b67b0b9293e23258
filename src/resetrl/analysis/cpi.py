"""The paper's theory check: Conservative Policy Iteration with random resets (CPI-RR) against CPI
with an improvability oracle (CPI-CARO) on a tabular "thought tree", where the on-policy
probability p of reaching the improvable state is a knob.

The tree: H steps. At step 0 the policy enters the branch holding the improvable state s* with
probability p (else a branch where every action is equal). At s* (step 1) one of |Y| actions adds
tau to the success probability; the policy plays it with probability `q`. The return is Bernoulli:
base rate v, or v + tau after the good action at s*. So the policy advantage (summed over steps)
is p * A*, with A* = tau (1 - q), and only s* can be improved.

One CPI iteration estimates the policy advantage of the greedy policy from n single-sample
estimates, then mixes pi_new = (1 - alpha) pi + alpha pi' with the conservative step
alpha = A_hat / (4 H R):
- CPI-RR resets to a uniformly drawn step of an on-policy roll-in and tries a uniform action;
  each sample estimates p A* with O(1) noise, so the samples needed for a given relative error
  grow as 1 / p^2, and the step (and improvement ~ alpha * p * A*) shrinks as p^2;
- CPI-CARO resets only at improvable states: each sample estimates A* itself, the samples needed do
  not depend on p, and the improvement p * alpha * A* shrinks only as p.
Predicted log-log slopes against p: samples RR / CARO: -2; improvement CARO / RR: -1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # headless: stages run on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402

from resetrl.analysis.curves import STYLE, save_figure  # noqa: E402


@dataclass(frozen=True)
class ThoughtTree:
    p: float  # on-policy probability of reaching the improvable state
    tau: float = 0.5  # success gain of the good action at s*
    q: float = 0.2  # current probability of the good action at s*
    n_actions: int = 4
    horizon: int = 4
    base_rate: float = 0.3  # success probability without the good action
    reward: float = 1.0

    @property
    def advantage_star(self) -> float:
        """A* = Q(s*, good) - V(s*)."""
        return self.tau * (1 - self.q)

    @property
    def policy_advantage(self) -> float:
        """Sum over steps of E_{s ~ d_pi}[A(s, greedy(s))]: only s* contributes."""
        return self.p * self.advantage_star

    def value(self, q: float | None = None) -> float:
        """Exact success probability from the root with good-action probability q at s*."""
        q = self.q if q is None else q
        return self.base_rate + self.p * self.tau * q


def rr_samples(tree: ThoughtTree, n: int, rng: np.random.Generator) -> np.ndarray:
    """n single-sample CPI-RR estimates of the policy advantage: roll in with pi to a uniform step
    h, try a uniform action, observe the return; X = H |Y| 1[a = greedy] (G - V(s))."""
    step = rng.integers(0, tree.horizon, n)
    at_star = (step == 1) & (rng.random(n) < tree.p)  # the roll-in reached s* at step 1
    greedy_action = rng.integers(0, tree.n_actions, n) == 0  # the uniform action is the greedy one
    q_star = np.where(greedy_action, tree.base_rate + tree.tau, tree.base_rate)
    # Elsewhere every action is equal: the return is Bernoulli(base rate), its exact baseline.
    success = np.where(at_star, q_star, tree.base_rate)
    baseline = np.where(at_star, tree.base_rate + tree.tau * tree.q, tree.base_rate)
    returns = (rng.random(n) < success).astype(float) * tree.reward
    return tree.horizon * tree.n_actions * greedy_action * (returns - baseline)


def caro_samples(tree: ThoughtTree, n: int, rng: np.random.Generator) -> np.ndarray:
    """n single-sample CPI-CARO estimates: reset only at s*; X = |Y| 1[a = greedy] (G - V(s*))."""
    greedy_action = rng.integers(0, tree.n_actions, n) == 0
    v_star = tree.base_rate + tree.tau * tree.q
    success = np.where(greedy_action, tree.base_rate + tree.tau, tree.base_rate)
    returns = (rng.random(n) < success).astype(float) * tree.reward
    return tree.n_actions * greedy_action * (returns - v_star)


def samples_needed(estimates: np.ndarray, relative_error: float = 0.5) -> float:
    """Samples for the mean estimate's standard error to be `relative_error` times its mean."""
    mean, std = float(estimates.mean()), float(estimates.std(ddof=1))
    return (std / (relative_error * mean)) ** 2


def cpi_improvement(tree: ThoughtTree, advantage_hat: float) -> float:
    """Exact value gain of one conservative update pi_new = (1 - alpha) pi + alpha greedy, with
    alpha = A_hat / (4 H R) clipped to [0, 1]. Only s* changes anything: the oracle's step is sized
    by the advantage at s*, random resets' by the (p times smaller) on-policy policy advantage."""
    alpha = min(max(advantage_hat / (4 * tree.horizon * tree.reward), 0.0), 1.0)
    q_new = (1 - alpha) * tree.q + alpha
    return tree.value(q_new) - tree.value()


def measure(p_values: list[float], mc_samples: int, seed: int, **tree_kw) -> list[dict]:
    """Samples needed and improvement per iteration for CPI-RR and CPI-CARO at each p. Each
    iteration estimates the advantage from as many samples as that method needs."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in p_values:
        tree = ThoughtTree(p=p, **tree_kw)
        rr, caro = rr_samples(tree, mc_samples, rng), caro_samples(tree, mc_samples, rng)
        n_rr, n_caro = samples_needed(rr), samples_needed(caro)
        rows.append({
            "p": p,
            "rr_advantage_estimate": float(rr.mean()), "caro_advantage_estimate": float(caro.mean()),
            "rr_advantage_true": tree.policy_advantage, "caro_advantage_true": tree.advantage_star,
            "rr_samples_needed": n_rr, "caro_samples_needed": n_caro,
            "rr_improvement": cpi_improvement(tree, float(rr.mean())),
            "caro_improvement": cpi_improvement(tree, float(caro.mean())),
        })
        rows[-1]["samples_ratio"] = n_rr / n_caro
        rows[-1]["improvement_ratio"] = rows[-1]["caro_improvement"] / rows[-1]["rr_improvement"]
    return rows


def loglog_slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


# --- the stage's check of the theorem: fitted slopes against the predicted ones, and the figure ---

PREDICTED = {"samples_ratio": -2.0, "improvement_ratio": -1.0}
TOLERANCE = 0.3  # |fitted - predicted| slope that still counts as a match


def run_theory(theory) -> dict:
    rows = measure(list(theory.p_values), theory.mc_samples, theory.seed, tau=theory.tau,
                   q=theory.good_action_prob, n_actions=theory.n_actions, horizon=theory.horizon)
    ps = [r["p"] for r in rows]
    checks = {}
    for key, predicted in PREDICTED.items():
        fitted = loglog_slope(ps, [r[key] for r in rows])
        checks[key] = {"fitted_slope": fitted, "predicted_slope": predicted,
                       "matches": abs(fitted - predicted) <= TOLERANCE}
    return {"rows": rows, "slopes": checks, "tolerance": TOLERANCE}


def plot_theory(result: dict, out: Path) -> None:
    rows = result["rows"]
    ps = [r["p"] for r in rows]
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 2)
        panels = (("samples_ratio", "samples per iteration, RR / CARO"),
                  ("improvement_ratio", "improvement per iteration, CARO / RR"))
        for ax, (key, label) in zip(axes, panels):
            ys = [r[key] for r in rows]
            slope = result["slopes"][key]
            ax.loglog(ps, ys, "o-", label=f"measured (slope {slope['fitted_slope']:.2f})")
            anchor = ys[-1] / ps[-1] ** slope["predicted_slope"]  # the prediction through the p = max point
            ax.loglog(ps, [anchor * p ** slope["predicted_slope"] for p in ps], "--", color="gray",
                      label=f"theorem (slope {slope['predicted_slope']:.0f})")
            ax.set_xlabel("p = on-policy probability of an improvable state")
            ax.set_ylabel(label)
            ax.legend()
        fig.suptitle("CPI with random resets vs an improvability oracle")
        save_figure(fig, out)
