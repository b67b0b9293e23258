"""Where resets help (the opt-in stage `regime_map`). For every setting of the task's designed errors
(configs/regimes/NAME.yaml, run at the reduced scale of configs/regimes/scale.yaml), each reset
arm's gain over GRPO on the compute-matched measure (`claims`: validation AUC against generated
tokens, paired bootstrap over seeds and problems) against the measured p of the setting's warm
starts (`regime`), beside the tabular model's prediction for the setting (`tabular`) and the CPI
theory's (`cpi_theory`): an improvability oracle gains over random resets as 1 / p, so resets can
only pay where p is small."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: stages run on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from resetrl.analysis.claims import arm_claims, arm_roles  # noqa: E402
from resetrl.analysis.curves import STYLE, arm_color, save_figure  # noqa: E402
from resetrl.analysis.report import markdown_table, task_summary  # noqa: E402
from resetrl.analysis.summaries import load_runs  # noqa: E402
from resetrl.analysis.tabular import predict  # noqa: E402

# role -> claim id
GAINS = {"demo": "demo_vs_grpo", "oracle": "oracle_vs_grpo", "srpo": "srpo_vs_grpo", "rrpo": "rrpo_vs_grpo"}
MEASURES = ("fresh_success", "p_reach")


def setting_summary(root: Path, params) -> dict:
    study = params.study
    runs = load_runs(root, list(study.methods), list(study.seeds))
    roles = arm_roles(list(study.methods), params.arms)
    claims = {c["id"]: c for c in arm_claims(runs, roles, study.alpha, study.min_effect, measures=("auc",))}
    measured = [json.loads((root / "task" / f"seed{s}.json").read_text()) for s in study.seeds]
    role_arm = {role: arm for arm, role in roles.items()}
    predicted = predict(params)["arms"]
    return {"chain_length": [params.task.min_steps, params.task.max_steps], "seeds": list(study.seeds),
            "designed": {"slip_rate": params.task.slip_rate, "final_step_accuracy": params.task.final_step_accuracy},
            "task": task_summary(measured),
            "gains": {role: claims[cid] for role, cid in GAINS.items() if cid in claims},
            "predicted": {role: predicted[role_arm[role]]["gain_greedy"] for role in GAINS
                          if role_arm.get(role) in predicted and role_arm[role] != study.methods[0]}}


def _label(name: str, s: dict) -> str:
    d = s["designed"]
    return f"{name} (slip {d['slip_rate']:g}, last step {d['final_step_accuracy']})"


def _mark_settings(ax, settings: dict[str, dict], with_design: bool) -> None:
    """Each setting's measured p as a dashed line, named above the plot area (out of the data's way), the
    names of settings with close p at staggered heights so that they never overlap."""
    for k, (name, s) in enumerate(sorted(settings.items(), key=lambda item: item[1]["task"]["p_reach"])):
        p = s["task"]["p_reach"]
        ax.axvline(p, color="grey", linestyle="--", linewidth=0.5, alpha=0.6)
        ax.annotate(_label(name, s) if with_design else name, (p, 1.0), xytext=(0, 3 + 8 * k),
                    textcoords="offset points", xycoords=ax.get_xaxis_transform(), ha="center", va="bottom",
                    fontsize=6, arrowprops={"arrowstyle": "-", "color": "grey", "linewidth": 0.5})


def plot_regime_map(settings: dict[str, dict], theory: dict, out: Path) -> None:
    with plt.rc_context(STYLE):
        fig, (ax, ax_th) = plt.subplots(1, 2)
        for i, role in enumerate(GAINS):
            pts = [(s["task"]["p_reach"], s["gains"][role], name) for name, s in settings.items() if role in s["gains"]]
            if not pts:
                continue
            xs = np.array([p for p, _, _ in pts]) + (i - 1) * 0.004  # side by side where p coincides
            ys = np.array([g["estimate"] for _, g, _ in pts])
            err = np.array([[g["estimate"] - g["ci_low"], g["ci_high"] - g["estimate"]] for _, g, _ in pts]).T
            ax.errorbar(xs, ys, yerr=err, fmt="o-", capsize=2, label=f"{role} - grpo", color=arm_color(role))
            predicted = [(x, s["predicted"][role]) for x, (_, _, name) in zip(xs, pts)
                         if role in (s := settings[name])["predicted"]]
            if predicted:
                ax.plot(*zip(*predicted), "x--", color=arm_color(role), alpha=0.6, linewidth=0.8,
                        label=f"{role}: tabular prediction")
        _mark_settings(ax, settings, with_design=True)
        ax.axhline(0.0, color="grey", linestyle=":")
        ax.set_xlabel("measured p (fresh chains reaching the first-error state clean)")
        ax.set_ylabel("gain over GRPO, validation AUC\n(95% interval)")
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2)
        rows = theory["rows"]
        ax_th.loglog([r["p"] for r in rows], [r["improvement_ratio"] for r in rows], "o-", color="black",
                     label="CPI theory: oracle / random-reset\nimprovement per iteration")
        _mark_settings(ax_th, settings, with_design=False)
        ax_th.set_xlabel("p")
        ax_th.legend(loc="lower left")
        fig.suptitle("Where resets help: gain over GRPO against p (left), the theory's prediction (right)",
                     y=1.02 + 0.04 * len(settings))
        save_figure(fig, out)


def _gain(g: dict | None) -> str:
    if g is None:
        return "-"
    return f"{g['estimate']:+.3f} [{g['ci_low']:+.3f}, {g['ci_high']:+.3f}] ({g['verdict']})"


def regime_table(settings: dict[str, dict]) -> str:
    header = ["setting", "ops", "slip / last step (designed)", "fresh success", "p", "suffix / fresh success",
              "all-wrong GRPO groups", *(f"{role} - grpo (AUC; predicted)" for role in GAINS), "MDE"]
    rows = []
    for name, s in settings.items():
        t, g = s["task"], s["gains"]
        mde = max((x["mde"] for x in g.values() if x.get("mde") is not None), default=None)
        d, predicted = s["designed"], s["predicted"]
        rows.append([name, f"{s['chain_length'][0]}-{s['chain_length'][1]}",
                     f"{d['slip_rate']:g} / {d['final_step_accuracy']}", f"{t['fresh_success']:.3f}",
                     f"{t['p_reach']:.3f}", f"{t['suffix_success']:.3f} / {t['fresh_success_same_problems']:.3f}",
                     f"{t['all_wrong_groups']:.2f}",
                     *(f"{_gain(g.get(role))}; {predicted[role]:+.3f}" if role in predicted else _gain(g.get(role))
                       for role in GAINS),
                     "-" if mde is None else f"{mde:.3f}"])
    return markdown_table(header, rows)
