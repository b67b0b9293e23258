"""The study's analysis figures, drawn from `resetrl.analysis.summaries` summaries in the shared paper-column
style (PNG + PDF each). Captions live with them so the Snakemake report and the results page say
the same thing."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: stages run on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from resetrl.analysis.curves import STYLE, arm_color, save_figure  # noqa: E402
from resetrl.analysis.summaries import DEVIATION_BUCKETS  # noqa: E402

CAPTIONS = {
    "learning_curve": "Change of validation greedy pass@1 from each seed's warm start (every arm of a seed starts "
                      "from the same one) vs RL step and vs cumulative generated tokens, mean ± SE over seeds; the "
                      "dotted line is the warm start.",
    "reset_positions": "Where resets happen: histogram of the relative reset position e/n (n = thoughts of the "
                       "failed parent) for random (RRPO), self-localized (SRPO) and oracle resets, all steps and "
                       "seeds pooled.",
    "localization": "Localization deviation, reset step minus the step checker's first error (0 = exact, < 0 = "
                    "reset before the error: clean prefix), over the first and the last 10% of RL steps.",
    "suffix_correction": "Share of correct suffixes by localization deviation, with Wilson 95% intervals "
                         "(suffixes pooled over steps and seeds).",
    "clean_vs_erroneous": "Suffix-group pass@k (at least one correct suffix) from clean vs erroneous prefixes, "
                          "with Wilson 95% intervals.",
    "grad_signal": "Reset / base gradient-signal ratio per RL step: each seed's 5-step moving average, mean ± SE "
                   "over seeds (band); faint: the raw per-step seed mean. 1 = no more signal than a fresh group; the "
                   "legend gives the run mean ± SE over seeds.",
    "cpi_theory": "CPI with random resets (RR) vs an improvability oracle (CARO) on a tabular thought tree: samples "
                  "per iteration and improvement per iteration against p, next to the theorem's slopes (-2, -1).",
}


def _labels(summary: dict, methods: list[str]) -> list[str]:
    """Arm names as their methods label them (a reset arm: its selector where the name does not say it)."""
    return [summary["labels"][m] for m in methods]


def reset_positions(summary: dict, out: Path) -> None:
    data = summary["reset_positions"]
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots()
        width = 1.0 / max(len(next(iter(data.values()))["hist"]), 1) if data else 1.0
        for i, (m, label) in enumerate(zip(data, _labels(summary, list(data)))):
            hist, n = data[m]["hist"], data[m]["n"]
            if not n:  # no failed parent was found (a short run on an easy task)
                ax.bar([], [], label=f"{label}, no resets", color=arm_color(m))
                continue
            # Side-by-side bars within each e/n bin: a histogram, not a curve through bin centres.
            lefts = [k / len(hist) + width * i / len(data) for k in range(len(hist))]
            ax.bar(lefts, [h / n for h in hist], width=width / len(data), align="edge", color=arm_color(m),
                   label=f"{label}, mean {data[m]['fractions_mean']:.2f}")
        ax.set_xlim(0.0, 1.0)
        ax.set_xlabel("reset position e / n")
        ax.set_ylabel("share of resets")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        save_figure(fig, out)


def localization(summary: dict, out: Path) -> None:
    # Arms whose resets have a localization to judge: not the oracle (exact by construction), not one with
    # no deviations recorded (the demo reset goes into the task's own solution, not to a step of the parent).
    data = {m: v for m, v in summary["localization"].items()
            if summary["selectors"][m] != "oracle" and (v["start"]["n"] or v["end"]["n"])}
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, max(len(data), 1), sharey=True, squeeze=False)
        for ax, (m, label) in zip(axes[0], zip(data, _labels(summary, list(data)))):
            for offset, edge in ((-0.2, "start"), (0.2, "end")):
                d = data[m][edge]
                xs = [int(k) for k in d["deviations"]]
                ys = [v / max(d["n"], 1) for v in d["deviations"].values()]
                ax.bar([x + offset for x in xs], ys, width=0.4, color=arm_color(m),
                       alpha=0.45 if edge == "start" else 1.0,
                       label=f"{edge}: exact {_pct(d['exact_rate'])}, clean {_pct(d['clean_rate'])}")
            ax.set_title(label)
            ax.set_xlabel("reset step - first error")
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)  # below: bars stay visible
        axes[0][0].set_ylabel("share of resets")
        save_figure(fig, out)


def suffix_correction(summary: dict, out: Path) -> None:
    labels = [b[2] for b in DEVIATION_BUCKETS]
    data = {m: v for m, v in summary["suffix_correction"].items() if any(v[b]["rate"] is not None for b in labels)}
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots()
        width = 0.8 / max(len(data), 1)
        for i, (m, label) in enumerate(zip(data, _labels(summary, list(data)))):
            xs, ys, errs = [], [], [[], []]
            for j, b in enumerate(labels):
                r = data[m][b]
                if r["rate"] is not None:
                    xs.append(j + (i - (len(data) - 1) / 2) * width)
                    ys.append(r["rate"])
                    errs[0].append(r["rate"] - r["ci"][0])
                    errs[1].append(r["ci"][1] - r["rate"])
            ax.bar(xs, ys, width=width, yerr=errs, capsize=2, label=label, color=arm_color(m))
        ax.set_xticks(range(len(labels)), labels)
        ax.set_xlabel("reset step - first error")
        ax.set_ylabel("correct suffixes")
        if data:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        else:
            ax.text(0.5, 0.5, "no reset with a known first error", transform=ax.transAxes, ha="center")
        save_figure(fig, out)


def clean_vs_erroneous(summary: dict, out: Path) -> None:
    data = {m: v for m, v in summary["clean_vs_erroneous"].items()  # arms whose resets were judged clean or not
            if any(v[kind]["group_pass"]["rate"] is not None for kind in ("clean", "erroneous"))}
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots()
        for i, kind in enumerate(("clean", "erroneous")):
            xs, ys, errs = [], [], [[], []]
            for j, m in enumerate(data):
                r = data[m][kind]["group_pass"]
                if r["rate"] is not None:
                    xs.append(j + (i - 0.5) * 0.4)
                    ys.append(r["rate"])
                    errs[0].append(r["rate"] - r["ci"][0])
                    errs[1].append(r["ci"][1] - r["rate"])
            ax.bar(xs, ys, width=0.4, yerr=errs, capsize=2, label=f"{kind} prefix")
        ax.set_xticks(range(len(data)), _labels(summary, list(data)))
        ax.set_ylabel("suffix group solved (pass@k)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        save_figure(fig, out)


def grad_signal(summary: dict, out: Path) -> None:
    data = {m: v for m, v in summary["grad_signal"].items() if v}
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots()
        for m, label in zip(data, _labels(summary, list(data))):
            g = data[m]
            ax.plot(g["steps"], g["mean_per_step"], color=arm_color(m), alpha=0.25, linewidth=0.6)  # raw, per step
            mean, se = np.array(g["smoothed_mean"]), np.array(g["smoothed_se"])
            ax.plot(g["steps"], mean, color=arm_color(m),
                    label=f"{label}, run mean {g['run_means']['mean']:.2f} ± {g['run_means']['se']:.2f} "
                          f"(n={g['run_means']['n']})")
            ax.fill_between(g["steps"], mean - se, mean + se, color=arm_color(m), alpha=0.2, linewidth=0)
        ax.axhline(1.0, color="gray", linestyle=":")
        ax.set_xlabel("RL step")
        ax.set_ylabel("gradient signal, reset / base")
        if data:
            ax.legend()
        else:  # no reset arm logged a ratio (no failed parent was ever found)
            ax.text(0.5, 0.5, "no reset groups: no ratio", transform=ax.transAxes, ha="center")
        save_figure(fig, out)


FIGURES = {"reset_positions": reset_positions, "localization": localization, "suffix_correction": suffix_correction,
           "clean_vs_erroneous": clean_vs_erroneous, "grad_signal": grad_signal}


def family_gains(rows: list[dict], out: Path) -> None:
    """The family's compute-matched gains over its baseline with their intervals, best first (the
    `family` target; rows as report.family_rows gives them)."""
    ranked = [r for r in rows if "auc" in r][::-1]  # best at the top
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(STYLE["figure.figsize"][0] * 0.6, 0.3 * len(ranked) + 0.8))
        for y, r in enumerate(ranked):
            auc = r["auc"]
            if auc["ci_low"] is not None:
                ax.plot([auc["ci_low"], auc["ci_high"]], [y, y], color=arm_color(r["arm"]), linewidth=2.5, alpha=0.5)
            ax.plot(auc["estimate"], y, "o", color=arm_color(r["arm"]), markersize=4.5, markeredgecolor="black",
                    markeredgewidth=0.4)  # the edge keeps a light colour (yellow) visible on white
        ax.axvline(0.0, color="#7f7f7f", linewidth=0.8)
        ax.set_yticks(range(len(ranked)), [r["label"] for r in ranked])
        ax.set_xlabel(f"validation AUC gain over {rows[0]['arm']} at matched tokens (≤ {rows[0]['budget']:,.0f})")
        save_figure(fig, out)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0%}"
