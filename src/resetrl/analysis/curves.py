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

from resetrl.analysis.stats import first_reach, speedup  # noqa: E402
from resetrl.core.metrics import VAL_PASS1

# One paper-column style shared by every figure of the study.
STYLE = {"figure.figsize": (6.75, 2.6), "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8,
         "legend.fontsize": 7, "xtick.labelsize": 7, "ytick.labelsize": 7, "lines.linewidth": 1.2,
         "axes.spines.top": False, "axes.spines.right": False, "savefig.bbox": "tight", "savefig.dpi": 200}
# One colour per arm in every figure (and per role in the regime map): GRPO blue, its matched-loss
# control light blue, RRPO green, SRPO orange, the oracle red; other arms take the rest in turn.
ARM_COLORS = {"grpo": "#1f77b4", "grpo_pgseq": "#9ecae1", "rrpo": "#2ca02c", "srpo": "#ff7f0e", "oracle": "#d62728",
              "sft": "#7f7f7f"}
OTHER_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#393b79", "#637939", "#843c39")


def arm_color(name: str) -> str:
    """The arm's colour: fixed for the study's arms, and for any other name the same in every figure
    (a stable digest of the name, not Python's per-process hash)."""
    if name in ARM_COLORS:
        return ARM_COLORS[name]
    return OTHER_COLORS[sum(name.encode()) % len(OTHER_COLORS)]


def smooth(values: list[float] | np.ndarray, window: int = 5) -> np.ndarray:
    """Centred moving average (shorter windows at the ends), for noisy per-step curves."""
    values = np.asarray(values, dtype=float)
    half = window // 2
    return np.array([values[max(0, i - half):i + half + 1].mean() for i in range(len(values))])


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


def speedup_text(reach: float | None, factor: float | None) -> str:
    """A speed-up as the figure and the results page show it: the target is never reached, reached
    at the start (a ratio over 0 steps has no value), or the factor."""
    if reach is None:
        return "never"
    return "at start" if factor is None else f"x{factor:.2f}"


def plot_learning_curves(runs: dict[str, list[list[dict]]], out: Path, reference: str | None = None) -> None:
    """Change of validation accuracy from each seed's warm start (its step-0 value), mean +- SE over
    seeds: the warm starts differ by seed far more than the arms do, so absolute curves would show
    only their spread. With a reference arm, each label gives the speed-up (steps, tokens) to the
    reference's final seed-mean accuracy, and a dashed line marks that target."""
    plt.rcParams.update(STYLE)
    fig, (ax_step, ax_tok) = plt.subplots(1, 2, sharey=True)
    summaries = {}
    for method, histories in sorted(runs.items()):
        curves = [eval_curve(h) for h in histories]
        n = min(len(c[0]) for c in curves)  # seeds share the eval schedule; guard ragged ends
        gains_SN = np.stack([c[2][:n] - c[2][0] for c in curves])
        summaries[method] = (curves[0][0][:n], np.mean([c[1][:n] for c in curves], axis=0), *mean_se(gains_SN),
                             len(curves))
    target = summaries[reference][2][-1] if reference in summaries else None
    for method, (steps, tokens, mean, se, n_seeds) in summaries.items():
        label = f"{method} (n={n_seeds} seeds)"
        if target is not None and method != reference:
            ref_steps, ref_tokens, ref_mean = summaries[reference][:3]
            texts = []
            for rx, x in ((ref_steps, steps), (ref_tokens, tokens)):
                reach = first_reach(x, mean, target)
                texts.append(speedup_text(reach, speedup(first_reach(rx, ref_mean, target), reach)))
            if texts[0] == texts[1] and not texts[0].startswith("x"):
                label += {"never": ": never reaches the target", "at start": ": at the target from the start"}[texts[0]]
            else:
                label += f": speed-up {texts[0]} (steps), {texts[1]} (tokens)"
        for ax, x in ((ax_step, steps), (ax_tok, tokens)):
            ax.plot(x, mean, label=label, color=arm_color(method))
            ax.fill_between(x, mean - se, mean + se, alpha=0.25, color=arm_color(method))
    for ax in (ax_step, ax_tok):
        if target is not None:
            ax.axhline(target, color="black", linestyle="--", linewidth=0.6, label=f"{reference} final (target)")
        ax.axhline(0.0, color="grey", linestyle=":", label="SFT warm start")
        ax.grid(alpha=0.3)
    ax_step.set_xlabel("RL step")
    ax_tok.set_xlabel("generated tokens (cumulative)")
    ax_tok.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x / 1e3:g}k"))
    ax_step.set_ylabel("validation greedy pass@1,\nchange from the warm start")
    # Below both panels: the speed-up labels are long and would cover the curves.
    fig.legend(*ax_tok.get_legend_handles_labels(), loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2,
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
