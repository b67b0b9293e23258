"""Learning curves (stage `plot_learning_curves`) and the figure style every study figure shares:
the change of validation accuracy from each seed's warm start vs RL step and vs cumulative generated
tokens, mean +- standard error over seeds per method, PNG + PDF."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: stages run on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

from resetrl.core.metrics import VAL_PASS1  # noqa: E402

# One colour per arm in every figure (and per role in the regime map), told apart also with colour-blind
# vision: the Okabe-Ito palette plus Paul Tol's indigo and wine (tests/test_analysis.py checks every pair
# under simulated protan-, deuter- and tritanopia). GRPO black, its matched-loss control indigo.
ARM_COLORS = {"grpo": "#000000", "grpo_pgseq": "#332288", "rrpo": "#009E73", "srpo": "#E69F00", "oracle": "#D55E00",
              "demo": "#0072B2", "oracle_1x8": "#CC79A7", "vineppo": "#56B4E9", "process_oracle": "#882255",
              "first_error_credit": "#F0E442", "sft": "#7f7f7f"}
OTHER_COLORS = ("#88CCEE", "#44AA99", "#117733", "#DDCC77", "#CC6677", "#AA4499")  # Tol's muted, for other arms

# One paper-column style shared by every figure of the study.
STYLE = {"figure.figsize": (6.75, 2.6), "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8,
         "legend.fontsize": 7, "xtick.labelsize": 7, "ytick.labelsize": 7, "lines.linewidth": 1.2,
         "axes.spines.top": False, "axes.spines.right": False, "savefig.bbox": "tight", "savefig.dpi": 200}


def arm_color(name: str) -> str:
    """The arm's colour: fixed for the study's arms, and for any other name the same in every figure
    (a stable digest of the name, not Python's per-process hash)."""
    if name in ARM_COLORS:
        return ARM_COLORS[name]
    return OTHER_COLORS[sum(name.encode()) % len(OTHER_COLORS)]


def mean_se(values_SN: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over the seed axis (SE = sample std / sqrt(n); 0 for one seed)."""
    mean = values_SN.mean(axis=0)
    if values_SN.shape[0] < 2:
        return mean, np.zeros_like(mean)
    return mean, values_SN.std(axis=0, ddof=1) / np.sqrt(values_SN.shape[0])


def eval_curve(history: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(steps, cumulative generated tokens, accuracy) at every validation point of one run."""
    points = [r for r in history if VAL_PASS1 in r]
    return (np.array([r["step"] for r in points]), np.array([r["compute/tokens_generated"] for r in points]),
            np.array([r[VAL_PASS1] for r in points]))


def plot_learning_curves(runs: dict[str, list[list[dict]]], out: Path, reference: str | None = None) -> None:
    """Change of validation accuracy from each seed's warm start (its step-0 value), mean +- SE over
    seeds: the warm starts differ by seed far more than the arms do, so absolute curves would show
    only their spread. With a reference arm, a dashed line marks its final seed-mean accuracy. The legend
    names arms only: a first-passage speed-up has no interval, so the figure claims none (the results
    page's compute-matched comparisons judge; its speed-up table is descriptive)."""
    plt.rcParams.update(STYLE)
    fig, (ax_step, ax_tok) = plt.subplots(1, 2, sharey=True)
    summaries = {}
    for method, histories in runs.items():
        curves = [eval_curve(h) for h in histories]
        n = min(len(c[0]) for c in curves)  # seeds share the eval schedule; guard ragged ends
        gains_SN = np.stack([c[2][:n] - c[2][0] for c in curves])
        summaries[method] = (curves[0][0][:n], np.mean([c[1][:n] for c in curves], axis=0), *mean_se(gains_SN),
                             len(curves))
    for method, (steps, tokens, mean, se, n_seeds) in summaries.items():
        for ax, x in ((ax_step, steps), (ax_tok, tokens)):
            ax.plot(x, mean, label=f"{method} (n={n_seeds})", color=arm_color(method))
            ax.fill_between(x, mean - se, mean + se, alpha=0.2, color=arm_color(method), linewidth=0)
    for ax in (ax_step, ax_tok):
        if reference in summaries:
            ax.axhline(summaries[reference][2][-1], color="grey", linestyle="--", linewidth=0.6,
                       label=f"{reference} final")
        ax.axhline(0.0, color="grey", linestyle=":", label="SFT warm start")
        ax.grid(alpha=0.3)
    ax_step.set_xlabel("RL step")
    ax_tok.set_xlabel("generated tokens (cumulative)")
    ax_tok.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x / 1e3:g}k"))
    ax_step.set_ylabel("validation greedy pass@1,\nchange from the warm start")
    handles, labels = ax_tok.get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(len(labels), 5),
               frameon=False)
    fig.suptitle("Learning curves (mean ± SE over seeds of each seed's change from its warm start)")
    save_figure(fig, out)


def save_figure(fig, out: Path) -> None:
    """PNG + PDF at `out` (no suffix), each written to a temp file and renamed into place; the PDF
    without a creation date, so that a rerun with the same numbers writes the same bytes."""
    out.parent.mkdir(parents=True, exist_ok=True)
    for suffix in (".png", ".pdf"):
        tmp = out.with_name(f".{out.name}.tmp{suffix}")
        fig.savefig(tmp, metadata={"CreationDate": None} if suffix == ".pdf" else None)
        tmp.replace(out.with_suffix(suffix))
    plt.close(fig)
