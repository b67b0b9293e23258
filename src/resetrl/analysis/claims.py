"""Every claim of the study as a paired comparison with a stated interval, power and verdict.

Arm comparisons pair runs by seed (the arms of a seed share its warm start) and by problem (the
same validation / test problems), and resample both (`stats.paired_bootstrap`). Two measures:
  * the compute-matched one: area under the validation curve (greedy pass@1) against generated
    tokens, every token counted (failed parents and localization calls included), up to the
    largest budget every compared run reaches, as the mean accuracy over that budget;
  * final test greedy pass@1 (ids ending in `_final`).
The verdict rules are `stats.verdict`'s: the interval decides; "n/a" with its `reason` where there is none
(fewer than two seeds, an empty split, no resets, both arms alike on every problem).
Each record: {id, claim, measure, kind, verdict, estimate, ci_low, ci_high, n_seeds, mde, se, alpha, min_effect,
boundary_se, firm}; an arm comparison adds {arm, baseline, measure_key, baseline_mean} (the baseline's own
score on the measure: what a difference is read against).
"""

from __future__ import annotations

import numpy as np

from resetrl.analysis.stats import (
    FIRM_SE,
    area_under_curve,
    boundary_distance_se,
    interval_from_se,
    one_sample_interval,
    paired_bootstrap,
    seed_bootstrap,
    verdict,
)
from resetrl.rl.methods import FAMILIES, Comparison, family_of

TOKENS = "compute/tokens_generated"


# Arm comparisons come from the method registry (each family's `comparisons`, in registry order), between
# the roles its arms play (`Method.role`); "grpo" is the study's first arm. An arm that no declared
# comparison sets against it is compared with it as "ROLE beats GRPO", so a new method appears here as it is.
MEASURES = {
    "auc": "area under the validation greedy pass@1 curve vs generated tokens, up to {budget:,.0f} tokens",
    "auc_sampled": "area under the validation sampled pass@1 curve (one chain per problem at the rollout "
                   "temperature) vs generated tokens, up to {budget:,.0f} tokens",
    "final": "final test greedy pass@1",
}
CURVE_KEYS = {"auc": "by_step", "auc_sampled": "by_step_sampled"}  # measure -> val_outcomes.json key


def arm_roles(methods: list[str], arms) -> dict[str, str]:
    """Role -> arm name for every study arm: its family's role for it (the first arm of each role), else
    its own name."""
    roles = {"grpo": methods[0]}
    for m in methods[1:]:
        role = family_of(arms[m]).role(arms[m])
        roles[m if role is None or role in roles else role] = m
    return roles


def comparisons(roles: dict[str, str]) -> list[Comparison]:
    """The registry's comparisons between present roles, then "ROLE beats GRPO" for every arm that none of
    them compares with GRPO."""
    declared = [c for family in FAMILIES.values() for c in family.comparisons
                if c.better in roles and c.baseline in roles]
    named = {c.better for c in declared if c.baseline == "grpo"} | {"grpo"}
    extra = [Comparison(f"{role}_vs_grpo", role, "grpo", "greater", f"{role} beats GRPO")
             for role in roles if role not in named]
    return declared + extra


def _record(id_: str, claim: str, measure: str, kind: str, result: dict, min_effect: float) -> dict:
    keys = ("estimate", "ci_low", "ci_high", "n_seeds", "mde", "se", "alpha", "reason")
    distance = boundary_distance_se(result, kind, min_effect)
    return {"id": id_, "claim": claim, "measure": measure, "kind": kind,
            "verdict": verdict(result, kind, min_effect), **{k: result[k] for k in keys}, "min_effect": min_effect,
            "boundary_se": distance, "firm": distance is not None and distance >= FIRM_SE}


def auc_budget(runs: dict) -> float:
    """The largest token budget every run reaches: the smallest final token count."""
    return min(_curve(r)[0][-1] for rs in runs.values() for r in rs)


def _curve(run, key: str = "by_step") -> tuple[np.ndarray, np.ndarray]:
    """Generated tokens at each validation point and the per-problem outcomes there (K x P): greedy
    (by_step) or sampled (by_step_sampled)."""
    by_step = run.val_outcomes[key]
    tokens = {r["step"]: r[TOKENS] for r in run.history if TOKENS in r}
    steps = sorted(int(s) for s in by_step)
    xs = np.array([tokens[s] for s in steps], dtype=float)
    ys = np.array([[int(c) for c in by_step[str(s)]] for s in steps], dtype=float)
    return xs, ys


def per_problem(runs: list, measure: str, budget: float | None) -> np.ndarray:
    """Seeds x problems: each problem's area under its 0/1 validation curve, or its final test
    outcome. The mean over problems is the arm's score on that measure."""
    if measure in CURVE_KEYS:
        return np.stack([area_under_curve(*_curve(r, CURVE_KEYS[measure]), budget) for r in runs])
    return np.stack([np.array(r.outcomes["test"]["greedy"], dtype=float) for r in runs])


def arm_claims(runs: dict, roles: dict[str, str], alpha: float, min_effect: float,
               measures: tuple[str, ...] = ("auc", "auc_sampled", "final")) -> list[dict]:
    budget = auc_budget({m: runs[m] for m in roles.values()})
    sampled = all("by_step_sampled" in r.val_outcomes for m in roles.values() for r in runs[m])
    measures = tuple(x for x in measures if x != "auc_sampled" or sampled)  # runs from before it was measured
    out = []
    for c in comparisons(roles):
        a, b = runs[roles[c.better]], runs[roles[c.baseline]]
        for measure in measures:
            suffix = {"auc": "", "auc_sampled": "_sampled", "final": "_final"}[measure]
            better, baseline = per_problem(a, measure, budget), per_problem(b, measure, budget)
            result = paired_bootstrap(better - baseline, alpha)
            if baseline.size and np.ptp(np.concatenate([better.ravel(), baseline.ravel()])) == 0:
                # Both arms alike on every problem of every seed (all 0 at the floor): nothing to tell apart.
                result = interval_from_se(0.0, None, len(a), alpha,
                                          f"every run of both arms scores {baseline.flat[0]:g} on every problem")
            text = f"{c.claim} ({roles[c.better]} - {roles[c.baseline]})"
            record = _record(c.id + suffix, text, MEASURES[measure].format(budget=budget), c.kind, result, min_effect)
            out.append({**record, "arm": roles[c.better], "baseline": roles[c.baseline], "measure_key": measure,
                        "baseline_mean": float(baseline.mean()) if baseline.size else None})
    return out


def _positions(run, key: str) -> list[float]:
    return [x[key] / max(x["n_thoughts"], 1) for x in run.resets if x.get(key) is not None]


def reset_claims(runs: dict, roles: dict[str, str], alpha: float, min_effect: float) -> list[dict]:
    """Where self-localized resets land, against the true first errors of the same parents and
    against random resets (whose mean e/n is (n + 1) / 2n by construction, not a meaningful bar)."""
    if "srpo" not in roles:
        return []
    srpo = runs[roles["srpo"]]
    out = [_record("srpo_at_first_error", "Self-localized resets sit at the true first error of their parent "
                   "(mean e/n minus the first error's position, same parents)", "reset position e/n", "equal",
                   seed_bootstrap([_positions(r, "reset_step") for r in srpo],
                                  [_positions(r, "oracle_step") for r in srpo], alpha), min_effect)]
    exact = [[float(x["deviation"] == 0) for x in r.resets if x["deviation"] is not None] for r in srpo]
    clean = [[float(x["clean_prefix"]) for x in r.resets if x["deviation"] is not None] for r in srpo]
    if "rrpo" in roles:
        rrpo = runs[roles["rrpo"]]
        out.append(_record("srpo_earlier_than_rrpo", "Self-localized resets happen earlier in the chain than random "
                           "ones (mean e/n)", "reset position e/n", "less",
                           seed_bootstrap([_positions(r, "reset_step") for r in srpo],
                                          [_positions(r, "reset_step") for r in rrpo], alpha), min_effect))
        r_exact = [[float(x["deviation"] == 0) for x in r.resets if x["deviation"] is not None] for r in rrpo]
        r_clean = [[float(x["clean_prefix"]) for x in r.resets if x["deviation"] is not None] for r in rrpo]
        out.append(_record("srpo_exact_vs_rrpo", "Self-localization hits the exact first error more often than a "
                           "random reset", "exact-match rate", "greater",
                           seed_bootstrap(exact, r_exact, alpha), min_effect))
        out.append(_record("srpo_clean_vs_rrpo", "Self-localized resets keep a clean prefix more often than random "
                           "ones", "clean-prefix rate", "greater", seed_bootstrap(clean, r_clean, alpha), min_effect))
    by_clean = [[[float(np.mean(x["suffix_rewards"])) for x in r.resets if x["clean_prefix"] is want] for r in srpo]
                for want in (True, False)]
    out.append(_record("clean_vs_erroneous", "Suffixes from clean prefixes are correct more often than from "
                       "erroneous ones (paper: 28.2% vs 17.1% group pass)", "suffix correct rate, clean - erroneous",
                       "greater", seed_bootstrap(*by_clean, alpha), min_effect))
    return out


def signal_claims(grad_signal: dict, roles: dict[str, str], alpha: float) -> list[dict]:
    """Reset / base gradient-signal ratio of every reset arm against 1 (no more signal than the
    base group); the paper reports ~2.5 for SRPO. min_effect here: a ratio 0.1 above 1."""
    out = []
    for m, g in grad_signal.items():
        if g:
            claim = ("The reset group carries more gradient signal than the base group (paper: ~2.5x)"
                     if roles.get("srpo") == m else "Reset / base gradient-signal ratio above 1")
            out.append(_record(f"grad_signal_{m}", f"{claim} ({m})", "reset / base gradient-signal ratio minus 1",
                               "greater", one_sample_interval(g["run_ratios"], alpha, null=1.0), 0.1))
    return out


def all_claims(runs: dict, summary: dict, methods: list[str], arms, alpha: float, min_effect: float) -> list[dict]:
    roles = arm_roles(methods, arms)
    return [*arm_claims(runs, roles, alpha, min_effect), *reset_claims(runs, roles, alpha, min_effect),
            *signal_claims(summary["grad_signal"], roles, alpha)]
