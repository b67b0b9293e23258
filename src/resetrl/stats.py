"""Small statistics for the study's tables and figures: mean with std / standard error over seeds,
Wilson score intervals for rates, and the x at which a learning curve first reaches a target
(for "steps / tokens to reach GRPO's final accuracy" speed-ups)."""

from __future__ import annotations

import math
from collections.abc import Sequence


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
