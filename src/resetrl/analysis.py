"""The study's numbers, computed from the graph's outputs (histories, per-reset records, evaluation
JSONs): the final table, speed-ups to GRPO's final accuracy, reset positions, localization
deviations, suffix correction by deviation, clean vs erroneous prefixes, gradient-signal ratios,
and a verdict per claim of the paper. Pure functions over plain data; the `analyze` stage writes
them out."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from resetrl.stats import first_reach, mean_std_se, speedup, wilson_interval

VAL = "eval/val/pass1"
SPLITS = ("test", "ood")
EDGE_FRACTION = 0.1  # "start" / "end" of RL: the first / last 10% of steps
DEVIATION_BUCKETS = ((-99, -2, "<= -2"), (-1, -1, "-1"), (0, 0, "0"), (1, 1, "+1"), (2, 99, ">= +2"))


@dataclass
class Run:
    method: str
    seed: int
    history: list[dict]
    resets: list[dict]
    evaluation: dict


def load_runs(results: Path, methods: list[str], seeds: list[int]) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {}
    for m in methods:
        for s in seeds:
            run_dir = results / "runs" / m / f"seed{s}"
            resets_file = run_dir / "resets.jsonl"
            resets = [json.loads(line) for line in resets_file.read_text().splitlines() if line.strip()] \
                if resets_file.exists() else []
            runs.setdefault(m, []).append(Run(m, s, json.loads((run_dir / "history.json").read_text()), resets,
                                              json.loads((results / "eval" / m / f"seed{s}.json").read_text())))
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


def final_table(runs: dict[str, list[Run]], sft_eval: dict | None) -> dict:
    """Per method and column group (split or benchmark): each metric's mean / std over seeds;
    generated tokens per run."""
    table = {}
    for m, rs in runs.items():
        per_seed = [_scores(r.evaluation) for r in rs]
        row = {group: {k: _summary([s[group][k] for s in per_seed]) for k in metrics}
               for group, metrics in per_seed[0].items()}
        row["tokens_generated"] = _summary([_final(r.history, "compute/tokens_generated") for r in rs])
        table[m] = row
    if sft_eval is not None:
        table["sft"] = {group: {k: {"mean": v, "std": 0.0, "se": 0.0, "n": 1} for k, v in metrics.items()}
                        for group, metrics in _scores(sft_eval).items()}
    return table


def _final(history: list[dict], key: str) -> float:
    return [r[key] for r in history if key in r][-1]


def mean_curve(rs: list[Run], x_key: str) -> tuple[list[float], list[float]]:
    """Validation accuracy averaged over seeds against step or cumulative tokens (seed-mean x)."""
    curves = [[(r[x_key] if x_key != "step" else r["step"], r[VAL]) for r in run.history if VAL in r] for run in rs]
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
    return {"steps": sorted(by_step), "mean_per_step": [sum(by_step[s]) / len(by_step[s]) for s in sorted(by_step)],
            "run_means": _summary([sum(v for _, v in s) / len(s) for s in per_seed])}


# --- claims ---------------------------------------------------------------------------------------

def compare(a: dict, b: dict) -> tuple[float, float]:
    """Difference of two seed means and its standard error."""
    return a["mean"] - b["mean"], math.sqrt(a["se"] ** 2 + b["se"] ** 2)


def verdict(diff: float, se: float, z: float = 2.0) -> str:
    """reproduced: diff > z SE; not reproduced: diff < -z SE; otherwise inconclusive."""
    if se == 0:
        return "inconclusive" if diff == 0 else ("reproduced" if diff > 0 else "not reproduced")
    return "reproduced" if diff > z * se else "not reproduced" if diff < -z * se else "inconclusive"


CLAIMS = {
    "accuracy": "SRPO beats RRPO and GRPO in accuracy (test greedy pass@1)",
    "faster": "SRPO reaches GRPO's final accuracy faster (steps and generated tokens)",
    "early": "Self-localized resets happen earlier in the chain than random ones (mean e/n)",
    "clean": "Suffixes from clean prefixes are correct about 2x as often as from erroneous ones",
    "signal": "The reset group carries more gradient signal than the base group (ratio > 1)",
}
ORDER = ("not reproduced", "inconclusive", "reproduced")


def _accuracy(summary: dict, grpo: str, random: str, self_: str) -> tuple[str, str]:
    test = lambda m: summary["table"][m]["test"]["greedy_pass1"]  # noqa: E731
    d_r, se_r = compare(test(self_), test(random))
    d_g, se_g = compare(test(self_), test(grpo))
    return (min(verdict(d_r, se_r), verdict(d_g, se_g), key=ORDER.index),
            f"SRPO - RRPO = {d_r:+.3f} ± {se_r:.3f} (SE); SRPO - GRPO = {d_g:+.3f} ± {se_g:.3f}")


def _faster(summary: dict, grpo: str, random: str, self_: str) -> tuple[str, str]:
    sp, target = summary["speedups"][self_], summary["speedups"]["target"]
    if summary["speedups"][grpo]["steps"] is None:
        return "inconclusive", "GRPO's own curve does not reach its final value"
    if sp["speedup_steps"] is None or sp["speedup_tokens"] is None:
        return "not reproduced", f"SRPO's seed-mean curve never reaches {target:.3f} (GRPO's final)"
    fast = sp["speedup_steps"] > 1.2 and sp["speedup_tokens"] > 1.2
    return ("reproduced" if fast else "not reproduced",
            f"speed-up {sp['speedup_steps']:.2f}x in steps, {sp['speedup_tokens']:.2f}x in tokens to {target:.3f} "
            "(GRPO's final; seed-mean curves, no error bar)")


def _early(summary: dict, grpo: str, random: str, self_: str) -> tuple[str, str]:
    s_pos, r_pos = (summary["reset_positions"][m]["per_seed_mean"] for m in (self_, random))
    if not s_pos or not r_pos:
        return "inconclusive", "no resets recorded"
    d, se = compare(_summary(r_pos), _summary(s_pos))
    return verdict(d, se), (f"SRPO {_summary(s_pos)['mean']:.3f} vs RRPO {_summary(r_pos)['mean']:.3f}; "
                            f"difference {d:+.3f} ± {se:.3f}")


def _clean(summary: dict, grpo: str, random: str, self_: str) -> tuple[str, str]:
    ce = summary["clean_vs_erroneous"][self_]
    clean, wrong = ce["clean"]["suffix_correct"], ce["erroneous"]["suffix_correct"]
    if not clean["trials"] or not wrong["trials"]:
        return "inconclusive", f"resets from clean / erroneous prefixes: {clean['trials']} / {wrong['trials']} suffixes"
    ratio = clean["rate"] / wrong["rate"] if wrong["rate"] else math.inf
    if clean["ci"][0] > wrong["ci"][1] and ratio >= 1.5:
        result = "reproduced"
    elif clean["ci"][1] < wrong["ci"][0] or (clean["ci"][0] <= wrong["ci"][1] and ratio < 1.2):
        result = "not reproduced"
    else:
        result = "inconclusive"
    return result, (f"{clean['rate']:.1%} [{clean['ci'][0]:.1%}, {clean['ci'][1]:.1%}] vs {wrong['rate']:.1%} "
                    f"[{wrong['ci'][0]:.1%}, {wrong['ci'][1]:.1%}] (x{ratio:.2f}; Wilson 95%)")


def _signal(summary: dict, grpo: str, random: str, self_: str) -> tuple[str, str]:
    g = summary["grad_signal"].get(self_)
    if not g:
        return "inconclusive", "no step had both a base and a reset group"
    r = g["run_means"]
    return verdict(r["mean"] - 1.0, r["se"]), f"SRPO ratio {r['mean']:.2f} ± {r['se']:.2f} (SE over seeds; paper ~2.5)"


CHECKS = {"accuracy": _accuracy, "faster": _faster, "early": _early, "clean": _clean, "signal": _signal}


def claims(summary: dict, grpo: str, random: str | None, self_: str | None) -> list[dict]:
    """One verdict per claim of the paper, with the numbers behind it; every claim is listed, as
    inconclusive when the study lacks the arms or data to judge it."""
    out = []
    for key, text in CLAIMS.items():
        if random is None or self_ is None:
            result, numbers = "inconclusive", "the study has no random-reset or no self-reset arm"
        else:
            result, numbers = CHECKS[key](summary, grpo, random, self_)
        out.append({"claim": text, "verdict": result, "numbers": numbers})
    return out


def analyze(results: Path, params) -> dict:
    """Everything the figures, tables and results page need, as one JSON-able dict."""
    study, arms = params.study, params.arms
    runs = load_runs(results, list(study.methods), list(study.seeds))
    sft_file = results / "eval" / "sft.json"
    by_selector = {arms[m].selector: m for m in study.methods}
    reference = study.methods[0]  # the baseline of speed-ups, as in the learning-curve figure
    reset_methods = [m for m in study.methods if arms[m].selector != "none"]
    summary = {
        "methods": list(study.methods), "seeds": list(study.seeds),
        "selectors": {m: arms[m].selector for m in study.methods},
        "table": final_table(runs, json.loads(sft_file.read_text()) if sft_file.exists() else None),
        "speedups": speedups(runs, reference),
        "reset_positions": {m: reset_positions(runs[m]) for m in reset_methods},
        "localization": {m: localization(runs[m]) for m in reset_methods},
        "suffix_correction": {m: suffix_correction(runs[m]) for m in reset_methods},
        "clean_vs_erroneous": {m: clean_vs_erroneous(runs[m]) for m in reset_methods},
        "grad_signal": {m: grad_signal(runs[m]) for m in reset_methods},
        "curves": {m: {"step": mean_curve(runs[m], "step"), "tokens": mean_curve(runs[m], "compute/tokens_generated")}
                   for m in study.methods},
    }
    summary["claims"] = claims(summary, reference, by_selector.get("random"), by_selector.get("self"))
    return summary
