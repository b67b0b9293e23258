"""The study's numbers, computed from the graph's outputs (histories, per-reset records, evaluation
JSONs): the final table, speed-ups to GRPO's final accuracy, reset positions, localization
deviations, suffix correction by deviation, clean vs erroneous prefixes, gradient-signal ratios,
and the claims with their paired statistics (`claims`). Pure functions over plain data; the
`analyze` stage writes them out."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from resetrl.analysis.claims import all_claims
from resetrl.analysis.stats import first_reach, mean_std_se, smooth, speedup, wilson_interval
from resetrl.core.metrics import VAL_PASS1
from resetrl.rl.methods import family_of

SPLITS = ("test", "ood")
GAIN = "gain over warm start: test"  # column group of the final table
EDGE_FRACTION = 0.1  # "start" / "end" of RL: the first / last 10% of steps
DEVIATION_BUCKETS = ((-99, -2, "<= -2"), (-1, -1, "-1"), (0, 0, "0"), (1, 1, "+1"), (2, 99, ">= +2"))


@dataclass
class Run:
    method: str
    seed: int
    history: list[dict]
    resets: list[dict]
    evaluation: dict | None  # None where the run was not evaluated (the regime map)
    val_outcomes: dict | None = None  # {"ids", "by_step": {step: "0110..."}}: validation per problem
    outcomes: dict | None = None  # the evaluation's per-problem outcomes, per split
    step_seconds: list[float] = field(default_factory=list)  # the train stage's timings.json, where it is kept


def _json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def load_runs(results: Path, methods: list[str], seeds: list[int]) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {}
    for m in methods:
        for s in seeds:
            run_dir = results / "runs" / m / f"seed{s}"
            resets_file = run_dir / "resets.jsonl"
            resets = [json.loads(line) for line in resets_file.read_text().splitlines() if line.strip()] \
                if resets_file.exists() else []
            runs.setdefault(m, []).append(Run(m, s, json.loads((run_dir / "history.json").read_text()), resets,
                                              _json(results / "eval" / m / f"seed{s}.json"),
                                              _json(run_dir / "val_outcomes.json"),
                                              _json(results / "eval" / m / f"seed{s}.problems.json"),
                                              (_json(run_dir / "timings.json") or {}).get("step_seconds", [])))
    return runs


def _summary(values: list[float]) -> dict:
    mean, std, se = mean_std_se(values)
    return {"mean": mean, "std": std, "se": se, "n": len(values)}


def _scores(evaluation: dict) -> dict[str, dict[str, float]]:
    """Table columns of one evaluation JSON: per split, greedy pass@1 and every pass@k (an empty
    split has none); per benchmark of a split that mixes several (`by_source`), greedy pass@1."""
    out = {split: {k: v for k, v in evaluation[split].items() if k == "greedy_pass1" or k.startswith("pass@")}
           for split in SPLITS}
    for split in SPLITS:
        for source, scores in sorted(evaluation[split].get("by_source", {}).items()):
            out[source.removeprefix("eval/")] = {"greedy_pass1": scores["greedy_pass1"]}
    return out


def final_table(runs: dict[str, list[Run]], sft_evals: list[dict]) -> dict:
    """Per method and column group (split or benchmark): each metric's mean / std over seeds;
    with one warm start per seed, the test greedy gain of each run over its own warm start (the
    warm starts differ far more than the arms); generated tokens per run; the warm starts as the
    row `sft`."""
    table = {}
    for m, rs in runs.items():
        rs_evals = [r.evaluation for r in rs]
        per_seed = [_scores(e) for e in rs_evals]
        row = {group: {k: _summary([s[group][k] for s in per_seed]) for k in metrics}
               for group, metrics in per_seed[0].items()}
        if len(sft_evals) == len(rs) and all("greedy_pass1" in e["test"] for e in [*sft_evals, *rs_evals]):
            row[GAIN] = {"greedy_pass1": _summary([r.evaluation["test"]["greedy_pass1"] - e["test"]["greedy_pass1"]
                                                   for r, e in zip(rs, sft_evals)])}
        row["tokens_generated"] = _summary([_final(r.history, "compute/tokens_generated") for r in rs])
        table[m] = row
    if sft_evals:
        per_seed = [_scores(e) for e in sft_evals]
        table["sft"] = {group: {k: _summary([s[group][k] for s in per_seed]) for k in metrics}
                        for group, metrics in per_seed[0].items()}
    return table


def _final(history: list[dict], key: str) -> float:
    return [r[key] for r in history if key in r][-1]


def mean_curve(rs: list[Run], x_key: str) -> tuple[list[float], list[float]]:
    """Validation accuracy averaged over seeds against step or cumulative tokens (seed-mean x)."""
    curves = [[(r[x_key], r[VAL_PASS1]) for r in run.history if VAL_PASS1 in r] for run in rs]
    n = min(len(c) for c in curves)
    xs = [sum(c[i][0] for c in curves) / len(curves) for i in range(n)]
    ys = [sum(c[i][1] for c in curves) / len(curves) for i in range(n)]
    return xs, ys


def speedups(runs: dict[str, list[Run]], reference: str) -> dict:
    """Steps and generated tokens each method needs to reach the reference's final (seed-mean)
    validation accuracy, and the speed-up factors reference / method."""
    target = mean_curve(runs[reference], "step")[1][-1]
    out = {"target": target, "reference": reference}
    for m, rs in runs.items():
        steps = first_reach(*mean_curve(rs, "step"), target)
        tokens = first_reach(*mean_curve(rs, "compute/tokens_generated"), target)
        out[m] = {"steps": steps, "tokens": tokens}
    for m in runs:
        out[m]["speedup_steps"] = speedup(out[reference]["steps"], out[m]["steps"])
        out[m]["speedup_tokens"] = speedup(out[reference]["tokens"], out[m]["tokens"])
    return out


def _edges(rs: list[Run]) -> tuple[list[dict], list[dict]]:
    """Reset records of the first and the last EDGE_FRACTION of steps, over all seeds."""
    steps = max((rec["step"] for r in rs for rec in r.resets), default=0) + 1
    cut = max(1, round(steps * EDGE_FRACTION))
    records = [rec for r in rs for rec in r.resets]
    return [x for x in records if x["step"] < cut], [x for x in records if x["step"] >= steps - cut]


def reset_positions(rs: list[Run], bins: int = 10) -> dict:
    """Distribution of the relative reset position e / n (n = thoughts of the parent)."""
    fractions = [rec["reset_step"] / max(rec["n_thoughts"], 1) for r in rs for rec in r.resets]
    hist = [0] * bins
    for f in fractions:
        hist[min(int(f * bins - 1e-9), bins - 1)] += 1
    return {"fractions_mean": sum(fractions) / len(fractions) if fractions else None, "hist": hist,
            "n": len(fractions), "per_seed_mean": [
                sum(x["reset_step"] / max(x["n_thoughts"], 1) for x in r.resets) / len(r.resets)
                for r in rs if r.resets]}


def _with_oracle(rs: list[Run]) -> list[dict]:
    """Resets whose true first error is known: all of them on the procedural task, none on real data."""
    return [x for r in rs for x in r.resets if x["deviation"] is not None]


def localization(rs: list[Run]) -> dict:
    """Deviation (reset step - oracle first error) histogram, exact and clean-prefix rates at the
    start and the end of RL."""
    out = {}
    for name, records in zip(("start", "end"), _edges(rs)):
        records = [x for x in records if x["deviation"] is not None]
        deviations = [x["deviation"] for x in records]
        out[name] = {
            "n": len(records),
            "deviations": {str(d): deviations.count(d) for d in sorted(set(deviations))},
            "exact_rate": sum(d == 0 for d in deviations) / len(records) if records else None,
            "clean_rate": sum(x["clean_prefix"] for x in records) / len(records) if records else None,
        }
    return out


def _rate(successes: int, trials: int) -> dict:
    if trials == 0:
        return {"rate": None, "ci": None, "successes": 0, "trials": 0}
    return {"rate": successes / trials, "ci": list(wilson_interval(successes, trials)),
            "successes": successes, "trials": trials}


def suffix_correction(rs: list[Run]) -> dict:
    """Share of correct suffixes per deviation bucket, Wilson 95% intervals (suffixes pooled)."""
    records = _with_oracle(rs)
    out = {}
    for low, high, label in DEVIATION_BUCKETS:
        rewards = [v for x in records if low <= x["deviation"] <= high for v in x["suffix_rewards"]]
        out[label] = _rate(int(sum(rewards)), len(rewards))
    return out


def clean_vs_erroneous(rs: list[Run]) -> dict:
    """Suffix-group pass@k (any suffix correct) and per-suffix correct rate, from clean vs
    erroneous prefixes."""
    records = _with_oracle(rs)
    out = {}
    for name, clean in (("clean", True), ("erroneous", False)):
        subset = [x for x in records if x["clean_prefix"] == clean]
        rewards = [v for x in subset for v in x["suffix_rewards"]]
        out[name] = {"group_pass": _rate(sum(max(x["suffix_rewards"]) > 0 for x in subset), len(subset)),
                     "suffix_correct": _rate(int(sum(rewards)), len(rewards))}
    return out


def grad_signal(rs: list[Run]) -> dict:
    """Reset / base gradient-signal ratio: per-step mean over seeds, and per-seed run means."""
    key = "train/grad_signal_ratio"
    per_seed = [[(rec["step"], rec[key]) for rec in r.history if key in rec] for r in rs]
    per_seed = [s for s in per_seed if s]
    if not per_seed:
        return {}
    by_step: dict[int, list[float]] = {}
    for series in per_seed:
        for step, v in series:
            by_step.setdefault(step, []).append(v)
    ratios = [sum(v for _, v in s) / len(s) for s in per_seed]
    steps = sorted(by_step)
    # Each seed's curve smoothed, then mean and SE over the seeds that logged the step: the band of the figure.
    smoothed = [dict(zip((st for st, _ in s), smooth([v for _, v in s]))) for s in per_seed]
    bands = [_summary([float(sm[st]) for sm in smoothed if st in sm]) for st in steps]
    return {"steps": steps, "mean_per_step": [sum(by_step[s]) / len(by_step[s]) for s in steps],
            "smoothed_mean": [b["mean"] for b in bands], "smoothed_se": [b["se"] for b in bands],
            "run_means": _summary(ratios), "run_ratios": ratios}


ZERO_SIGNAL = "train/frac_zero_std_fresh"  # fresh groups: GRPO's, and a reset arm's fallback


def baseline_signal(rs: list[Run]) -> dict:
    """How much of the baseline's training carried outcome signal: the share of its groups whose chains all
    scored alike (mean over steps and seeds) and its mean training reward; None where not logged."""
    zero = [rec[ZERO_SIGNAL] for r in rs for rec in r.history if ZERO_SIGNAL in rec]
    reward = [rec["train/reward"] for r in rs for rec in r.history if "train/reward" in rec]
    return {"zero_signal_groups": float(np.mean(zero)) if zero else None,
            "reward": float(np.mean(reward)) if reward else None}


def analyze(results: Path, params) -> dict:
    """Everything the figures, tables and results page need, as one JSON-able dict."""
    study, arms = params.study, params.arms
    runs = load_runs(results, list(study.methods), list(study.seeds))
    sft_evals = [e for s in study.seeds if (e := _json(results / "eval" / "sft" / f"seed{s}.json")) is not None]
    reference = study.methods[0]  # the baseline of speed-ups, as in the learning-curve figure
    reset_methods = [m for m in study.methods if family_of(arms[m]).records_resets]
    summary = {
        "methods": list(study.methods), "seeds": list(study.seeds),
        "labels": {m: family_of(arms[m]).label(m, arms[m]) for m in study.methods},
        "selectors": {m: arms[m].selector for m in reset_methods},
        "table": final_table(runs, sft_evals),
        "speedups": speedups(runs, reference),
        "reset_positions": {m: reset_positions(runs[m]) for m in reset_methods},
        "localization": {m: localization(runs[m]) for m in reset_methods},
        "suffix_correction": {m: suffix_correction(runs[m]) for m in reset_methods},
        "clean_vs_erroneous": {m: clean_vs_erroneous(runs[m]) for m in reset_methods},
        "grad_signal": {m: grad_signal(runs[m]) for m in reset_methods},
        "baseline_signal": baseline_signal(runs[reference]),
        "curves": {m: {"step": mean_curve(runs[m], "step"), "tokens": mean_curve(runs[m], "compute/tokens_generated")}
                   for m in study.methods},
    }
    summary["claims"] = all_claims(runs, summary, list(study.methods), arms, study.alpha, study.min_effect)
    return summary
