"""Small statistics for the study's tables and figures: mean with std / standard error over seeds,
Wilson score intervals for rates, the x at which a learning curve first reaches a target, and the
paired comparisons behind every verdict (bootstrap over seeds and problems, Student t intervals,
minimum detectable effect at 80% power, the verdict rules)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def mean_std_se(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean, sample std (n - 1; 0 for one value) and standard error of the mean."""
    n = len(values)
    if n == 0:
        raise ValueError("mean_std_se needs at least one value")
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, std, std / math.sqrt(n)


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a binomial rate (95% by default); stays inside [0, 1] and is
    sensible at 0 or n successes, unlike the normal approximation."""
    if trials <= 0:
        raise ValueError("wilson_interval needs at least one trial")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be in 0..{trials}, got {successes}")
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def first_reach(xs: Sequence[float], ys: Sequence[float], target: float) -> float | None:
    """The x where the curve (xs ascending) first reaches `target`, interpolating linearly
    between the two points around the crossing; None if it never does."""
    for i, (x, y) in enumerate(zip(xs, ys)):
        if y >= target:
            if i == 0:
                return float(x)
            x0, y0 = xs[i - 1], ys[i - 1]
            return float(x0 + (target - y0) / (y - y0) * (x - x0))
    return None


def speedup(reference_x: float | None, method_x: float | None) -> float | None:
    """How many times fewer steps (or tokens) a method needs to reach the target than the
    reference; None when either never reaches it."""
    if reference_x is None or method_x is None or method_x <= 0:
        return None
    return reference_x / method_x


def smooth(values: list[float] | np.ndarray, window: int = 5) -> np.ndarray:
    """Centred moving average (shorter windows at the ends), for noisy per-step curves."""
    values = np.asarray(values, dtype=float)
    half = window // 2
    return np.array([values[max(0, i - half):i + half + 1].mean() for i in range(len(values))])


# --- paired comparisons with stated power --------------------------------------------------------

POWER = 0.8  # the minimum detectable effect is stated at this power


def t_quantile(q: float, df: int) -> float:
    """Student t quantile for 0.5 <= q < 1, by bisection on the CDF (the density integrated with a
    fine trapezoid rule): no scipy needed for a handful of calls."""
    if not 0.5 <= q < 1 or df < 1:
        raise ValueError(f"t_quantile needs 0.5 <= q < 1 and df >= 1, got q={q}, df={df}")
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def cdf(x: float) -> float:
        t = np.linspace(0.0, x, 20001)
        density = np.exp(log_norm - (df + 1) / 2 * np.log1p(t * t / df))
        return 0.5 + float(np.sum((density[1:] + density[:-1]) * np.diff(t)) / 2)

    low, high = 0.0, 1.0
    while cdf(high) < q:
        high *= 2
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if cdf(mid) < q else (low, mid)
    return (low + high) / 2


def interval_from_se(estimate: float | None, se: float | None, n_seeds: int, alpha: float,
                     reason: str | None = None) -> dict:
    """1 - alpha interval and MDE (80% power, two-sided alpha) around an estimate over n_seeds
    seeds: Student t quantiles at S - 1 degrees of freedom, since a handful of seeds makes normal
    quantiles overconfident. Fewer than 2 seeds: no interval (the seeds cannot show their spread);
    `reason` says why there is none."""
    out = {"estimate": None if estimate is None else float(estimate), "se": None, "ci_low": None, "ci_high": None,
           "mde": None, "n_seeds": n_seeds, "alpha": alpha, "reason": reason}
    if se == 0.0 and estimate == 0.0 and reason is None:  # identical sides: a [0, 0] interval would claim a tie
        reason = "no difference anywhere: the two sides are identical on every seed and problem"
    if reason is not None or n_seeds < 2 or se is None:
        return {**out, "reason": reason or f"{n_seeds} seed(s): no interval"}
    critical = t_quantile(1 - alpha / 2, n_seeds - 1)
    return {**out, "se": se, "ci_low": float(estimate - critical * se), "ci_high": float(estimate + critical * se),
            "mde": (critical + t_quantile(POWER, n_seeds - 1)) * se}


def _bootstrap_se(replicates: np.ndarray, n_seeds: int) -> float | None:
    """Bootstrap SE, scaled by sqrt(S / (S - 1)): resampling S seeds underestimates their spread."""
    return float(np.std(replicates)) * math.sqrt(n_seeds / (n_seeds - 1)) if n_seeds > 1 else None


def paired_bootstrap(diff_SP: np.ndarray, alpha: float, n_boot: int = 4000, seed: int = 0) -> dict:
    """Mean paired difference over seeds S and problems P (arm A minus arm B on the same seed's
    warm start and the same problem), its 1 - alpha interval and MDE. Each replicate resamples
    seeds and problems with replacement (the same problems for every seed), so the interval covers
    both what another set of seeds and another draw of problems would change."""
    diff_SP = np.asarray(diff_SP, dtype=float)
    n_seeds, n_problems = diff_SP.shape
    if not diff_SP.size:
        return interval_from_se(None, None, n_seeds, alpha, "no problems to compare (an empty split)")
    rng = np.random.default_rng(seed)
    problem_w_RP = rng.multinomial(n_problems, np.full(n_problems, 1 / n_problems), size=n_boot)
    seed_w_RS = rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=n_boot)
    per_seed_RS = problem_w_RP @ diff_SP.T / n_problems
    replicates = (seed_w_RS * per_seed_RS).sum(1) / n_seeds
    return interval_from_se(diff_SP.mean(), _bootstrap_se(replicates, n_seeds), n_seeds, alpha)


def seed_bootstrap(a_by_seed: Sequence[Sequence[float]], b_by_seed: Sequence[Sequence[float]], alpha: float,
                   n_boot: int = 4000, seed: int = 0) -> dict:
    """Difference of means, A minus B, paired by seed but not within it (e.g. the reset positions of
    two arms: different parents). Replicates resample seeds, then each arm's observations within
    the seed. The estimate averages the per-seed differences (every seed weighs the same)."""
    pairs = [(np.asarray(a, float), np.asarray(b, float)) for a, b in zip(a_by_seed, b_by_seed) if len(a) and len(b)]
    if not pairs:
        return interval_from_se(None, None, 0, alpha, "nothing to compare: no seed has observations of both")
    rng = np.random.default_rng(seed)

    def resampled_means_R(x: np.ndarray) -> np.ndarray:
        return rng.multinomial(len(x), np.full(len(x), 1 / len(x)), size=n_boot) @ x / len(x)

    per_seed_RS = np.stack([resampled_means_R(a) - resampled_means_R(b) for a, b in pairs], axis=1)
    seed_w_RS = rng.multinomial(len(pairs), np.full(len(pairs), 1 / len(pairs)), size=n_boot)
    replicates = (seed_w_RS * per_seed_RS).sum(1) / len(pairs)
    estimate = float(np.mean([a.mean() - b.mean() for a, b in pairs]))
    return interval_from_se(estimate, _bootstrap_se(replicates, len(pairs)), len(pairs), alpha)


def one_sample_interval(values: Sequence[float], alpha: float, null: float = 0.0) -> dict:
    """Mean over seeds minus `null`, with a Student t interval and MDE (one value per seed)."""
    x = np.asarray(values, dtype=float) - null
    n = len(x)
    se = float(x.std(ddof=1) / math.sqrt(n)) if n > 1 else None
    return interval_from_se(float(x.mean()), se, n, alpha) if n else \
        interval_from_se(None, None, 0, alpha, "no values to compare")


def verdict(result: dict, claim: str, min_effect: float) -> str:
    """The interval decides. claim "greater": reproduced when it excludes 0 from above, not
    reproduced when it excludes a gain of min_effect, else inconclusive. claim "less": the mirror.
    claim "equal" (a tie, +- min_effect): reproduced when the interval lies inside the margin, not
    reproduced when it lies wholly outside. n/a without an interval (fewer than 2 seeds, nothing to compare)."""
    if result["n_seeds"] < 2 or result["ci_low"] is None:
        return "n/a"
    low, high = result["ci_low"], result["ci_high"]
    if claim == "less":
        low, high = -high, -low
        claim = "greater"
    if claim == "greater":
        return "reproduced" if low > 0 else "not reproduced" if high < min_effect else "inconclusive"
    if claim == "equal":
        inside, outside = -min_effect < low and high < min_effect, low > min_effect or high < -min_effect
        return "reproduced" if inside else "not reproduced" if outside else "inconclusive"
    raise ValueError(f"unknown claim kind {claim!r}")


FIRM_SE = 2.0  # a rerun moves an estimate by about sqrt(2) standard errors: 2 keeps flips rare


def boundary_distance_se(result: dict, claim: str, min_effect: float) -> float | None:
    """How far, in standard errors, the interval's ends lie from the nearest bound that decides
    the verdict (0 and +-min_effect): below FIRM_SE a rerun elsewhere can flip the verdict to or
    from "inconclusive". None without an interval."""
    if result["n_seeds"] < 2 or result["ci_low"] is None or not result.get("se"):
        return None
    low, high = result["ci_low"], result["ci_high"]
    if claim == "less":
        low, high = -high, -low
    bounds = ((low, 0.0), (high, min_effect)) if claim in ("greater", "less") else \
        ((low, -min_effect), (high, min_effect), (low, min_effect), (high, -min_effect))
    return min(abs(end - bound) for end, bound in bounds) / result["se"]


def area_under_curve(xs_K: Sequence[float], ys_K: np.ndarray, budget: float) -> np.ndarray:
    """Mean height of a piecewise-linear curve over x in [xs[0], budget]: (1 / span) * integral.
    ys_K may carry trailing axes (e.g. one curve per problem, K x P). The curve must reach the
    budget; it is interpolated there."""
    xs = np.asarray(xs_K, dtype=float)
    ys = np.asarray(ys_K, dtype=float)
    if budget > xs[-1] + 1e-9 or budget <= xs[0]:
        raise ValueError(f"budget {budget} outside the curve's x range [{xs[0]}, {xs[-1]}]")
    inside = xs < budget
    k = int(inside.sum())  # points strictly before the budget
    weight = (budget - xs[k - 1]) / (xs[k] - xs[k - 1]) if k < len(xs) else 1.0
    end = ys[k - 1] + weight * (ys[k] - ys[k - 1]) if k < len(xs) else ys[-1]
    px = np.append(xs[:k], budget)
    py = np.concatenate([ys[:k], end[None] if np.ndim(end) else np.array([end])], axis=0)
    widths = np.diff(px).reshape((-1,) + (1,) * (py.ndim - 1))
    return ((py[1:] + py[:-1]) * widths).sum(0) / 2 / (budget - xs[0])
