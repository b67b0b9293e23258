"""Every number, table and analysis figure of the study from the graph's outputs,
and the generated results page `results/RESULTS.md` (never edited by hand)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from resetrl.analysis.claims import TOKENS, arm_claims, arm_roles, auc_budget, per_problem
from resetrl.analysis.figures import CAPTIONS, FIGURES, family_gains
from resetrl.analysis.stats import FIRM_SE, one_sample_interval, paired_bootstrap, verdict
from resetrl.analysis.summaries import analyze, final_table, load_runs
from resetrl.analysis.tabular import predict_at_profile
from resetrl.core.config import family_arms
from resetrl.core.storage import atomic_write_json, atomic_write_text
from resetrl.rl.methods import family_of


def table_rows(summary: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the final table: mean ± std over seeds (the SFT row is one model); a
    column a method lacks (an empty split) shows a dash."""
    table = summary["table"]
    first = next(iter(table.values()))
    columns = [(group, k) for group, metrics in first.items() if group != "tokens_generated" for k in metrics]
    header = ["method", *(f"{group} {k}" for group, k in columns), "generated tokens / run"]
    rows = []
    for m in [*summary["methods"], *(["sft"] if "sft" in table else [])]:
        cells = [m, *(_pm(table[m][g][k]) if k in table[m].get(g, {}) else "–" for g, k in columns)]
        tokens = table[m].get("tokens_generated")
        cells.append(f"{tokens['mean'] / 1e3:.1f}k ± {tokens['std'] / 1e3:.1f}k" if tokens else "–")
        rows.append(cells)
    return header, rows


def write_tables(tables: Path, name: str, header: list[str], rows: list[list[str]]) -> str:
    """The table as Markdown, CSV and LaTeX; returns the Markdown."""
    table_md = markdown_table(header, rows)
    atomic_write_text(tables / f"{name}.md", table_md)
    atomic_write_text(tables / f"{name}.csv", csv_table(header, rows))
    atomic_write_text(tables / f"{name}.tex", latex_table(header, rows))
    return table_md


def write_ablation_table(results: Path, params) -> None:
    """The layout and loss ablations next to SRPO (the `ablations` target): what each arm changes,
    and its final results."""
    arms = params.arms
    methods = [m for m in params.study.methods if arms[m].family == "reset" and arms[m].selector == "self"] \
        + list(params.study.ablations)
    summary = {"methods": methods, "table": final_table(load_runs(results, methods, list(params.study.seeds)), [])}
    header, rows = table_rows(summary)
    header[1:1] = ["layout", "loss", "prefix masked", "KL"]
    for row, m in zip(rows, methods):
        row[1:1] = [arms[m].layout, arms[m].loss, "yes" if arms[m].mask_prefix else "no", f"{arms[m].kl_coef:g}"]
    write_tables(results / "tables", "ablations", header, rows)


def family_verdict(result: dict, min_effect: float) -> tuple[str, str]:
    """What a gain's interval says, as a word (gains: above 0; loses: below 0; no gain: below min_effect;
    inconclusive; n/a where there is no interval) and the range it allows (or the reason for n/a)."""
    record = {**result, "kind": "greater", "verdict": verdict(result, "greater", min_effect)}
    if record["verdict"] == "n/a":
        return "n/a", result["reason"]
    word = {"reproduced": "gains", "inconclusive": "inconclusive"}.get(
        record["verdict"], "loses" if result["ci_high"] < 0 else "no gain")
    return word, reading(record)


def family_rows(runs: dict, arms, alpha: float, min_effect: float) -> list[dict]:
    """Each arm of the family against the first (its baseline), ranked by the compute-matched gain: the
    paired difference in validation AUC up to the token budget every run reaches, and in final test
    pass@1, with 1 - alpha intervals; tokens and training minutes per run."""
    baseline, budget = next(iter(runs)), auc_budget(runs)
    rows = []
    for m, rs in runs.items():
        row = {"arm": m, "label": family_of(arms[m]).label(m, arms[m]), "family": arms[m].family,
               "tokens": float(np.mean([r.history[-1][TOKENS] for r in rs])),
               "minutes": float(np.mean([sum(r.step_seconds) for r in rs])) / 60,
               "budget": budget}
        if m != baseline:
            for measure in ("auc", "final"):
                base = per_problem(runs[baseline], measure, budget)
                row[measure] = {**paired_bootstrap(per_problem(rs, measure, budget) - base, alpha),
                                "baseline": baseline, "baseline_mean": float(base.mean()) if base.size else None}
            row["verdict"], row["reading"] = family_verdict(row["auc"], min_effect)
        rows.append(row)
    return [rows[0], *sorted(rows[1:], key=lambda r: -r["auc"]["estimate"])]


def _gain(result: dict | None) -> str:
    if result is None:
        return "baseline"
    if result["ci_low"] is None:
        return f"{_num(result['estimate'], '+.3f', 'n/a')} ({result['reason']})"
    return f"{result['estimate']:+.3f} [{result['ci_low']:+.3f}, {result['ci_high']:+.3f}]"


def write_family_table(results: Path, params) -> str:
    """The family of credit-assignment methods (the `family` target), ranked by compute-matched gain, then
    the registry's claims among its arms (e.g. the oracle reset against first-error credit)."""
    study, family = params.study, family_arms(params)
    runs = load_runs(results, family, list(study.seeds))
    rows = family_rows(runs, params.arms, study.alpha, study.min_effect)
    ci = f"{1 - study.alpha:.0%}"
    header = ["rank", "arm", "family", f"AUC gain over {family[0]} [{ci} CI]", "verdict",
              f"final test gain [{ci} CI]", "generated tokens / run", "train min / run"]
    table = [[str(i) if i else "–", r["label"], r["family"], _gain(r.get("auc")),
              f"{r['verdict']}: {r['reading']}" if "verdict" in r else "–",
              _gain(r.get("final")), f"{r['tokens'] / 1e3:.0f}k", f"{r['minutes']:.1f}"]
             for i, r in enumerate(rows)]
    claims = [c for c in arm_claims(runs, arm_roles(family, params.arms), study.alpha, study.min_effect, ("auc",))
              if c["baseline"] != family[0]]
    atomic_write_json(results / "tables" / "family.json", {"rows": rows, "claims": claims})
    family_gains(rows, results / "plots" / "family")
    page = write_tables(results / "tables", "family", header, table)
    if claims:  # the comparisons between the family's own arms, below the ranking
        page += "\n" + markdown_table(["claim", f"AUC difference [{ci} CI]", "verdict"],
                                      [[c["claim"], _gain(c), f"{c['verdict']}: {reading(c)}"] for c in claims])
    if left_out := [m for m in study.family if m not in family]:
        page += f"\nLeft out (they need the procedural task's step checker): {', '.join(left_out)}.\n"
    if page != (results / "tables" / "family.md").read_text():
        atomic_write_text(results / "tables" / "family.md", page)
    return page


def _pm(s: dict) -> str:
    return f"{s['mean']:.3f} ± {s['std']:.3f}" if s["n"] > 1 else f"{s['mean']:.3f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"


def csv_table(header: list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
    return buffer.getvalue()


def latex_table(header: list[str], rows: list[list[str]]) -> str:
    esc = lambda s: s.replace("±", r"$\pm$").replace("_", r"\_").replace("@", "@").replace("%", r"\%")  # noqa: E731
    lines = [r"\begin{tabular}{l" + "c" * (len(header) - 1) + "}", r"\toprule",
             " & ".join(esc(h) for h in header) + r" \\", r"\midrule"]
    lines += [" & ".join(esc(c) for c in r) + r" \\" for r in rows]
    return "\n".join(lines + [r"\bottomrule", r"\end{tabular}"]) + "\n"


def results_page(summary: dict, params, theory: dict | None, table_md: str, measured: list[dict],
                 prediction: dict | None = None) -> str:
    """The page; `measured`: the task measurements of each seed's warm start (`regime`); `prediction`: the
    tabular model's (stage predict)."""
    rl = params.rl
    wall = summary.get("wall_time_seconds")
    timing = (f"Wall time of the last full `snakemake` run of the study: **{wall / 60:.1f} min** ({wall:.0f} s, "
              "from its start to its last evaluation)." if wall is not None
              else "Wall time: not measured (no full `snakemake` run of the study wrote these results).")
    model = params.model.pretrained or f"{params.model.hidden_size}d x {params.model.num_layers} layers"
    lines = [
        "# Results",
        "",
        "Generated by the `analyze` stage from the pipeline's outputs; do not edit. Rerun `snakemake --cores all`.",
        "",
        f"Arms {', '.join(summary['methods'])}; seeds {', '.join(map(str, summary['seeds']))}; {rl.steps} RL steps of "
        f"{rl.prompts_per_step} prompts x {rl.group_size} chains; model {model}. Mean ± std over seeds.",
        "",
        timing,
        "",
        *floor_banner(summary),
        "## Final results (greedy pass@1 and sampled pass@k; ID = test; OOD = the ood split, its own chain lengths "
        "and op mix (task.ood_*), or the benchmark files of real data)",
        "",
        table_md,
        "Also as `results/tables/final.csv` and `final.tex`.",
        "",
        *claims_section(summary["claims"], summary["seeds"]),
        "",
        *task_section(measured, params.study.alpha),
        *profile_section(measured),
        *prediction_section(prediction, summary["claims"]),
    ]
    if theory is not None:
        s = theory["slopes"]
        lines += ["", f"CPI theory check (tabular, no seeds): samples RR/CARO ~ p^-2, improvement CARO/RR ~ p^-1: **"
                  f"{'reproduced' if all(v['matches'] for v in s.values()) else 'not reproduced'}** (fitted slopes "
                  f"{s['samples_ratio']['fitted_slope']:.2f} and {s['improvement_ratio']['fitted_slope']:.2f})."]
    sp = summary["speedups"]
    lines += ["", "## Speed-ups to the reference's final validation accuracy (descriptive, no verdict)", "",
              "Seed-mean curves; a ratio of two first-passage times has no interval here, so these numbers judge "
              "nothing: the compute-matched claims above do. *at start*: the seed-mean curve is at the target "
              "from step 0, so there is no ratio.", "",
              f"Target: {sp['reference']}'s final seed-mean validation greedy pass@1, {sp['target']:.3f}.", "",
              "| method | steps | generated tokens | speed-up (steps) | speed-up (tokens) |", "|---|---|---|---|---|"]
    for m in summary["methods"]:
        r = sp[m]
        lines.append(f"| {m} | {_num(r['steps'], '.0f')} | {_num(r['tokens'], ',.0f')} | "
                     f"{speedup_text(r['steps'], r['speedup_steps'])} | "
                     f"{speedup_text(r['tokens'], r['speedup_tokens'])} |")
    lines += ["", "## Figures", ""]
    for name, caption in CAPTIONS.items():
        lines += [f"![{name}](plots/{name}.png)", "", caption, ""]
    return "\n".join(lines)


SHORT_MEASURES = {"auc": "greedy AUC", "auc_sampled": "sampled AUC", "final": "final test"}


FLOOR_SHARE = 0.5  # above it, most of the baseline's groups carry no outcome signal


def floor_banner(summary: dict) -> list[str]:
    """A warning above everything when most of the baseline's training groups had no outcome signal (all
    chains alike): its updates are mostly zero, so no arm can be seen to differ much from it."""
    signal = summary.get("baseline_signal") or {}
    zero, reward = signal.get("zero_signal_groups"), signal.get("reward")
    if zero is None or zero <= FLOOR_SHARE:
        return []
    where = ("at the floor: most groups get no reward" if reward < 1 / 3 else
             "at the ceiling: most groups are solved by every chain" if reward > 2 / 3 else
             "without outcome signal: most groups are solved by all or none of their chains")
    return [f"> **This regime is {where}.** {zero:.0%} of {summary['methods'][0]}'s training groups had no "
            f"outcome signal (every chain of the group scored the same; mean training reward {reward:.2f}), so most "
            "updates are zero and the arms can hardly differ. A verdict that rules a gain out rules out only the size "
            "it states; expect *inconclusive*. Pick a regime where most groups are mixed (the docs' task page).", ""]


def claims_section(claims: list[dict], seeds: list[int]) -> list[str]:
    """Every claim once, in one table (a claim's measures on consecutive rows), with what its interval says;
    plain words only for the primary comparisons."""
    alpha = claims[0]["alpha"] if claims else 0.05
    lines = ["## Claims", ""]
    if len(seeds) < 2:
        lines += [f"> **One seed ({seeds[0]}): no comparison can be judged, every verdict is n/a.** The seeds are "
                  "what the intervals are made of; run the default study for verdicts.", ""]
    measures = {c["measure_key"]: c["measure"] for c in claims if "measure_key" in c}
    lines += [f"Paired by seed and problem (bootstrap over both), {100 * (1 - alpha):.0f}% intervals "
              f"(alpha {alpha:g}), MDE = the smallest true effect found with 80% power. Arm comparisons are in "
              "points of pass@1 (0.01 = 1 point), read against the baseline's own score: "
              + "; ".join(f"*{SHORT_MEASURES[k]}*: {text}" for k, text in measures.items()) + ". "
              "A claimed gain is *reproduced* when the interval excludes 0 in the claimed direction, *not "
              "reproduced* when it excludes the smallest gain of interest (it then says which gains it rules out), "
              "else *inconclusive* (it says what the interval allows); a claimed tie is reproduced when the interval "
              f"lies inside that margin. *Borderline*: an end of the interval lies within {FIRM_SE:g} standard errors "
              "of a bound that decides the verdict (0 or the margin); a rerun on another machine moves an estimate by "
              "about 1.4 standard errors and can turn such a verdict into or out of *inconclusive*. Also as "
              "`results/claims.json` (`boundary_se`, `firm`).", "",
              "| id | claim | measure | estimate [95% CI] | MDE | seeds | verdict: what the interval says |",
              "|---|---|---|---|---|---|---|"]
    previous = None
    for c in claims:
        claim = "" if c["claim"] == previous else c["claim"]  # one claim, its measures on the rows below
        previous = c["claim"]
        measure = SHORT_MEASURES.get(c.get("measure_key"), c["measure"])
        estimate = f"{_amount(c, c['estimate'])} [no interval]" if c["ci_low"] is None else \
            f"{_amount(c, c['estimate'])} [{_amount(c, c['ci_low'])}, {_amount(c, c['ci_high'])}]"
        mde = "–" if c["mde"] is None else _amount(c, c["mde"], sign=False)
        lines.append(f"| `{c['id']}` | {claim} | {measure} | {estimate} | {mde} | {c['n_seeds']} | "
                     f"**{c['verdict']}**: {reading(c)}{_firmness(c)} |")
    primary = [c for c in claims if c["id"] in PRIMARY_COMPARISONS]
    if len(seeds) >= 2 and primary:  # with one seed every sentence would say "no verdict"
        lines += ["", "The primary comparisons in words:", ""] + [f"- {plain_words(c)}" for c in primary]
    return lines


def _firmness(c: dict) -> str:
    return "" if c["firm"] or c["boundary_se"] is None else f" (borderline, {c['boundary_se']:.1f} SE)"


def _interval(c: dict) -> str:
    if c["ci_low"] is None:
        return f"{_num(c['estimate'], '+.3f', 'n/a')} [no interval]"
    return f"{c['estimate']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]"


def _amount(c: dict, x: float | None, sign: bool = True) -> str:
    """A difference in the claim's unit: points of pass@1 for arm comparisons, else the measure's own."""
    if x is None:
        return "n/a"
    if "baseline_mean" in c:
        return f"{100 * x:{'+' if sign else ''}.1f}"
    return f"{x:{'+' if sign else ''}.3f}"


def _unit(c: dict) -> str:
    return " points" if "baseline_mean" in c else ""


def _of_baseline(c: dict, *xs: float) -> str:
    """The difference relative to the baseline's own score (a 2-point gain on 7 is 29%, on 90 it is 2%)."""
    b = c.get("baseline_mean")
    if not b:
        return ""
    shares = [f"{x / b:.{0 if abs(x / b) >= 0.1 else 1}%}" for x in xs]
    return f" ({' to '.join(shares)} of {c['baseline']}'s {100 * b:.1f})"


def reading(c: dict) -> str:
    """What the interval allows one to say, in the claim's unit: the gains it rules out, the range it allows."""
    if c["verdict"] == "n/a":
        return c["reason"]
    low, high, margin = c["ci_low"], c["ci_high"], c.get("min_effect")
    allows = f"the interval allows {_amount(c, low)} to {_amount(c, high)}{_unit(c)}"
    if c["kind"] == "equal":
        tie = f"±{_amount(c, margin, sign=False)}"
        return {"reproduced": f"a tie: {_amount(c, low)} to {_amount(c, high)}{_unit(c)}, inside {tie}",
                "not reproduced": f"no tie: {_amount(c, low)} to {_amount(c, high)}{_unit(c)}, outside {tie}",
                }.get(c["verdict"], f"{allows}, past the tie margin {tie}")
    # A claimed decrease ("less") reads as a gain of the negated difference.
    flip = -1.0 if c["kind"] == "less" else 1.0
    low, high = sorted((flip * low, flip * high))
    gain, opposite = ("gain", "lower") if flip > 0 else ("decrease", "higher")
    if c["verdict"] == "reproduced":
        return (f"a {gain} of {_amount(c, low, False)} to {_amount(c, high, False)}{_unit(c)}"
                f"{_of_baseline(c, low, high)}")
    if c["verdict"] == "not reproduced":
        if high < 0:
            return f"{opposite} by {_amount(c, -high, False)} to {_amount(c, -low, False)}{_unit(c)}"
        return f"rules out a {gain} above {_amount(c, high, False)}{_unit(c)}{_of_baseline(c, high)}"
    return allows


def plain_words(c: dict) -> str:
    """One sentence for a primary claim: what was measured and what the interval allows one to say."""
    head = f"**{c['claim']}** ({SHORT_MEASURES.get(c.get('measure_key'), c['measure'])}): " \
           f"{_amount(c, c['estimate'])}{_unit(c)}"
    if c["verdict"] == "n/a":
        return f"{head}: no verdict, {c['reason']}."
    text = f"{head}, 95% CI [{_amount(c, c['ci_low'])}, {_amount(c, c['ci_high'])}] over {c['n_seeds']} seeds: " \
           f"{c['verdict']}, {reading(c)}"
    if c["verdict"] == "inconclusive":
        text += f"; this study detects effects of about {_amount(c, c['mde'], False)}{_unit(c)} or more (80% power)"
    if not c["firm"]:
        text += f" (borderline: an end within {c['boundary_se']:.1f} SE of a deciding bound)" \
            if c["boundary_se"] is not None else ""
    return text + "."


def speedup_text(reach: float | None, factor: float | None) -> str:
    """A speed-up as the results page shows it: the target is never reached, reached
    at the start (a ratio over 0 steps has no value), or the factor."""
    if reach is None:
        return "never"
    return "at start" if factor is None else f"x{factor:.2f}"


def _num(x: float | None, fmt: str = ".2f", missing: str = "never") -> str:
    return missing if x is None else format(x, fmt)


def _mean(values: list) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def task_summary(measured: list[dict]) -> dict:
    """Seed means of the task measurements (`regime.measure`) that decide whether resets matter."""
    return {
        "fresh_success": _mean([m["fresh_success"] for m in measured]),
        "p_reach": _mean([m["p_reach"] for m in measured]),
        "suffix_success": _mean([m["reset_state"]["suffix_success"] for m in measured]),
        "fresh_success_same_problems": _mean([m["reset_state"]["fresh_success_same_problems"] for m in measured]),
        "all_wrong_groups": _mean([m["groups"]["all_wrong"] for m in measured]),
        "first_error_at_last_step": _mean([m["first_error"].get("at_last_step") for m in measured]),
    }


def _pooled_rates(measured: list[dict], key: str) -> dict[str, float]:
    """Per step type: wrong / reached, pooled over seeds."""
    reached: dict[str, int] = {}
    wrong: dict[str, int] = {}
    for m in measured:
        for op, r in m[key].items():
            reached[op] = reached.get(op, 0) + r["reached"]
            wrong[op] = wrong.get(op, 0) + r["wrong"]
    return {op: wrong[op] / reached[op] for op in sorted(reached)}


def task_section(measured: list[dict], alpha: float) -> list[str]:
    """The task as the warm starts see it (`regime.measure`, one file per seed): the numbers that
    decide whether resets can matter."""
    if not measured:
        return []
    t = task_summary(measured)
    first = {}
    for m in measured:
        for k, share in m["first_error"].get("by_thought", {}).items():
            first[int(k)] = first.get(int(k), 0.0) + share / len(measured)
    # A warm start with no failed chain to reset from (a short SFT) measures no reset state: n/a, not a crash.
    gaps = [r["suffix_success"] - r["fresh_success_same_problems"] for r in (m["reset_state"] for m in measured)
            if r["suffix_success"] is not None and r["fresh_success_same_problems"] is not None]
    gap = one_sample_interval(gaps, alpha) if gaps else {"estimate": None, "ci_low": None}
    loc = [m["localization"] for m in measured if m["localization"]["self"] is not None]
    loc_mean = {who: {k: float(np.mean([x[who][k] for x in loc])) for k in ("exact_match", "clean_rate")}
                for who in ("self", "random")} if loc else None
    interval = ("n/a: no warm start left a failed chain to reset from" if not gaps else "no interval"
                if gap["ci_low"] is None else f"95% CI [{gap['ci_low']:+.3f}, {gap['ci_high']:+.3f}]")
    lines = ["## The task as the warm starts see it", "",
             f"Measured on each seed's warm start ({len(measured)} seeds, {measured[0]['problems']} validation "
             f"problems x {measured[0]['group_size']} fresh chains at the rollout temperature; `results/task/`). "
             "Seed means.", "",
             f"- Fresh chains solve **{_num(t['fresh_success'], '.3f', 'n/a')}** of problems; GRPO groups: "
             f"{_num(t['all_wrong_groups'], '.2f', 'n/a')} all wrong (no signal), "
             f"{np.mean([m['groups']['all_right'] for m in measured]):.2f} all right, the rest mixed.",
             "- Error rate per step type (of the thoughts reached with a clean prefix, the share that are wrong): "
             + ", ".join(f"`{op}` {r:.3f}" for op, r in _pooled_rates(measured, "step_error_rate").items()) + ".",
             "- Where first errors fall (share of failed chains per thought): "
             + ", ".join(f"{k}: {v:.2f}" for k, v in sorted(first.items()))
             + f"; at the last operation {_num(t['first_error_at_last_step'], '.2f', 'n/a')}.",
             f"- **p = {_num(t['p_reach'], '.3f', 'n/a')}**: the chance that another fresh chain of the same problem "
             "reaches a failed chain's first-error state with a clean prefix (the CPI theory's p; resets can only pay "
             "where it is small).",
             f"- How improvable the reset state is: suffixes resampled just before the exact first error succeed "
             f"{_num(t['suffix_success'], '.3f', 'n/a')}, fresh chains of the same problems "
             f"{_num(t['fresh_success_same_problems'], '.3f', 'n/a')} "
             f"(difference {_num(gap['estimate'], '+.3f', 'n/a')}, {interval} over seeds)."]
    if loc_mean:
        lines.append(f"- Self-localization of the warm start on these failed chains (greedy): exact first error "
                     f"{loc_mean['self']['exact_match']:.3f}, clean prefix {loc_mean['self']['clean_rate']:.3f}; a "
                     f"uniform random reset on the same chains: {loc_mean['random']['exact_match']:.3f} and "
                     f"{loc_mean['random']['clean_rate']:.3f}.")
    return lines + [""]


def profile_section(measured: list[dict]) -> list[str]:
    """Each warm start's sampled error rate per thought beside the rate its demonstrations were designed
    with: whether SFT reproduced the design."""
    measured = [m for m in measured if m.get("position_error_rate")]
    if not measured:
        return []
    designed = measured[0].get("designed_error_rate") or {}
    pooled = _pooled_rates(measured, "position_error_rate")
    sampling = measured[0].get("sampling", {})
    lines = ["## The warm starts' error profile: designed and measured", "",
             f"Of the thoughts reached with a clean prefix (step checker), the share that are wrong, per position, "
             f"sampled at temperature {sampling.get('temperature', '?')}, top-p {sampling.get('top_p', '?')} "
             f"({len(measured)} warm starts; pooled, then the range over seeds). Designed: the demonstrations' rate "
             "(task.slip_rate for ordinary thoughts, 1 - task.final_step_accuracy for the last).", "",
             "| thought | designed | measured (pooled) | seeds: min-max | reached |", "|---|---|---|---|---|"]
    for pos, rate in pooled.items():
        per_seed = [m["position_error_rate"][pos]["rate"] for m in measured if pos in m["position_error_rate"]]
        reached = sum(m["position_error_rate"].get(pos, {}).get("reached", 0) for m in measured)
        lines.append(f"| {pos} | {_num(designed.get(pos), '.3f', '–')} | {rate:.3f} | "
                     f"{min(per_seed):.3f}-{max(per_seed):.3f} | {reached:,} |")
    return lines + [""]


def prediction_section(prediction: dict | None, claims: list[dict]) -> list[str]:
    """The tabular model's predicted gain over the baseline beside the network's measured one, per arm."""
    if not prediction:
        return []
    r, baseline = prediction["regime"], next(iter(prediction["arms"]))
    measured = {(c["arm"], c["measure_key"]): c for c in claims if c.get("baseline") == baseline}
    lines = ["## Predicted (tabular model) and measured gains over " + baseline, "",
             f"The tabular model (`resetrl.analysis.tabular`, stage `predict`, seconds) runs each arm's buffer on a "
             f"{r['n_steps']}-step chain whose ordinary steps slip with {r['slip']:.2f}"
             + (f" and whose last step starts right with {r['hard_q']:.2f}" if r["hard_share"] else "")
             + f" (p = {prediction['p_reach_hard_step']:.2f} of fresh chains reach the last step clean), one logit per "
             "position shared by all problems, the same REINFORCE estimator for every arm, compute counted in "
             f"generated steps; {prediction['schedule']['steps']} SGD steps, {len(prediction['arms'])} arms x "
             f"{prediction.get('seeds', '')} paired simulation seeds. Its learning rate (theory.tabular_lr) is set "
             "so that its GRPO climbs at the "
             "default network's pace, but it is a model with no function approximation beyond the shared logits and no "
             "ratio clipping: read signs and order first, magnitudes second. Tabular MDE: the smallest gain the "
             "study's seeds could detect at the table's seed-to-seed spread (a floor: the network adds warm-start "
             "and problem noise).", ""]
    at_measured = prediction.get("at_measured_profile")
    if at_measured:
        m = at_measured["regime"]
        lines += [f"*At the measured profile*: the same prediction with the error profile the warm starts were "
                  f"measured to have (ordinary steps {m['slip']:.3f}, last step right {m['hard_q']:.3f}; the section "
                  "above) in place of the designed one: the part of a gap that comes from the warm start missing its "
                  "design.", ""]
    lines += ["| arm | predicted, greedy AUC (± SE) | predicted, sampled AUC (± SE) | tabular MDE | at the measured "
              "profile, greedy AUC | measured, greedy AUC [95% CI] | measured, sampled AUC [95% CI] | network MDE | "
              "prediction inside the interval (designed / measured profile) |", "|---|---|---|---|---|---|---|---|---|"]

    def inside(interval, value):
        if interval is None or value is None or interval["ci_low"] is None:
            return "–"
        return "yes" if interval["ci_low"] <= value <= interval["ci_high"] else "**no**"

    for arm, row in prediction["arms"].items():
        if "gain_greedy" not in row:
            continue
        greedy, sampled = measured.get((arm, "auc")), measured.get((arm, "auc_sampled"))
        at_profile = at_measured["arms"][arm]["gain_greedy"] if at_measured else None
        lines.append(f"| {arm} | {row['gain_greedy']:+.3f} ± {row['se_greedy']:.3f} | "
                     f"{row['gain_sampled']:+.3f} ± {row['se_sampled']:.3f} | {row['mde_greedy']:.3f} | "
                     f"{_num(at_profile, '+.3f', '–')} | "
                     f"{_interval(greedy) if greedy else '–'} | {_interval(sampled) if sampled else '–'} | "
                     f"{_num(greedy['mde'] if greedy else None, '.3f', '–')} | "
                     f"{inside(greedy, row['gain_greedy'])} / {inside(greedy, at_profile)} |")
    return lines + [""]


def study_wall_time(results: Path, methods: list[str]) -> float | None:
    """Seconds from the start of the last `snakemake` invocation that ran the whole study (the
    Snakefile's onstart stamp; the invocation rewrote the data) to the newest evaluation of the study's
    arms or warm starts (not of opt-in targets run in the same invocation). A full run
    records it in results/logs/study_wall_time.json, which is no output of this stage (Snakemake and
    DVC delete a stage's outputs before rerunning it), so a partial rerun or a DVC run reports the
    last full measurement; None when there never was one."""
    stamp, manifest = results / "logs" / "study_started", results / "data" / "manifest.json"
    record = results / "logs" / "study_wall_time.json"
    if stamp.exists() and manifest.exists() and manifest.stat().st_mtime >= int(stamp.read_text()):
        evals = [p for m in [*methods, "sft"] for p in (results / "eval" / m).glob("*.json")]
        seconds = max(p.stat().st_mtime for p in evals) - int(stamp.read_text())
        atomic_write_json(record, {"seconds": seconds})
        return seconds
    return json.loads(record.read_text())["seconds"] if record.exists() else None


# The positive control first: an experiment whose demo gain vanished cannot read the others.
PRIMARY_COMPARISONS = ("demo_vs_grpo", "oracle_vs_grpo", "srpo_vs_grpo", "srpo_vs_rrpo", "rrpo_vs_grpo")


def headline_metrics(summary: dict) -> dict:
    """The study in a few numbers, the columns of `dvc exp show`: `pass1.ARM`, each arm's and the warm
    start's mean test greedy pass@1; `gain.A-B`, each primary comparison's compute-matched estimate
    (the difference in area under the validation curve against generated tokens). Three decimals: a
    headline needs no more."""
    estimates = {c["id"]: c["estimate"] for c in summary["claims"]}
    rounded = lambda x: None if x is None else round(x, 3)  # noqa: E731
    return {"pass1": {arm: rounded(row["test"]["greedy_pass1"]["mean"] if row["test"] else None)
                      for arm, row in summary["table"].items()},
            "gain": {name.replace("_vs_", "-"): rounded(estimates.get(name)) for name in PRIMARY_COMPARISONS}}


def write_outputs(results: Path, params, out_page: Path) -> dict:
    summary = analyze(results, params)
    summary["wall_time_seconds"] = study_wall_time(results, list(params.study.methods))
    measured = [m for s in params.study.seeds if (f := results / "task" / f"seed{s}.json").exists()
                and (m := json.loads(f.read_text())).get("step_checker", True)]
    summary["task"] = task_summary(measured) if measured else None
    table_md = write_tables(results / "tables", "final", *table_rows(summary))
    for name, draw in FIGURES.items():
        draw(summary, results / "plots" / name)
    theory_file = results / "theory" / "cpi.json"
    theory = json.loads(theory_file.read_text()) if theory_file.exists() else None
    prediction_file = results / "theory" / "tabular.json"
    prediction = json.loads(prediction_file.read_text()) if prediction_file.exists() else None
    if prediction and measured and prediction["regime"]["hard_share"]:
        profile = _pooled_rates([m for m in measured if m.get("position_error_rate")], "position_error_rate")
        last = str(prediction["regime"]["n_steps"])
        if last in profile:
            slip = float(np.mean([r for pos, r in profile.items() if pos != last]))
            prediction["at_measured_profile"] = predict_at_profile(prediction, slip, 1.0 - profile[last])
    summary["prediction"] = prediction
    for name, caption in CAPTIONS.items():  # the Snakemake report's captions: one source
        atomic_write_text(results / "captions" / f"{name}.rst", caption + "\n")
    atomic_write_json(results / "analysis.json", summary)
    atomic_write_json(results / "claims.json", summary["claims"])
    atomic_write_json(results / "metrics.json", headline_metrics(summary))
    atomic_write_text(out_page, results_page(summary, params, theory, table_md, measured, prediction))
    return summary
