"""What each pipeline stage reads: its params keys and its source files, and its command. Snakemake's
rules take their commands and rerun triggers from this module, and `dvc.yaml` is generated from it:

    python -m resetrl.stages dvc            # rewrite dvc.yaml (--check: fail if it differs)

A test checks that the committed dvc.yaml equals the generated one, and another that Snakemake's
jobs and DVC's stages agree (commands, inputs, outputs, params keys)."""

from __future__ import annotations

import argparse
import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

SRC_DIR = Path(__file__).resolve().parents[2]  # holds the resetrl package

# Stage name -> (entry module under resetrl.stages, params keys it reads).
STAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "prepare_data": ("prepare_data", ("task",)),
    "skill": ("skill", ("model", "sft", "rollout", "runtime", "task.surface_forms",
                        "rl.localization_max_tokens", "rl.loc_eval_problems")),
    "sft": ("sft", ("model", "sft", "rollout", "runtime", "task.surface_forms", "task.slip_rate",
                    "task.final_step_accuracy", "rl.localization_max_tokens", "rl.loc_eval_problems")),
    "train": ("train", ("rl", "rollout", "runtime", "model.pretrained")),
    "evaluate": ("evaluate", ("eval", "rollout", "runtime")),
    "evaluate_sft": ("evaluate", ("eval", "rollout", "runtime")),
    "task_regime": ("task_regime", ("rl.group_size", "rl.localization_max_tokens", "rollout", "runtime",
                                    "task.slip_rate", "task.final_step_accuracy")),
    "plot_learning_curves": ("plot_learning_curves", ("study",)),
    "cpi_theory": ("cpi_theory", ("theory",)),
    "predict": ("predict", ("theory.tabular_lr", "theory.tabular_seeds", "arms", "study.methods", "study.seeds",
                            "study.alpha", "task.max_steps", "task.slip_rate", "task.final_step_accuracy",
                            "rl.prompts_per_step", "rl.group_size", "rl.max_draws", "rl.steps")),
    "analyze": ("analyze", ("study", "arms", "model", "rl")),
    "regime_map": ("regime_map", ("study",)),
    "prepare_model": ("prepare_model", ()),
}


def stage_module(stage: str) -> str:
    """The module `python -m` runs for a stage."""
    return f"resetrl.stages.{STAGES[stage][0]}"


def _source(module: str) -> Path:
    """resetrl.a.b -> its file (a package: its __init__.py)."""
    path = SRC_DIR.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _imports(module: str, lazy: bool) -> set[str]:
    """Package modules `module` imports: at its top level, or (lazy) anywhere in it, and the packages
    holding them (Python runs a package's __init__ first)."""
    tree = ast.parse(_source(module).read_text())
    names = set()
    for node in ast.walk(tree) if lazy else tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("resetrl."):
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("resetrl.")}
    return names | {m.rsplit(".", 1)[0] for m in names if m.count(".") > 1}


def stage_modules(stage: str) -> list[str]:
    """The package modules a stage runs: everything its entry module imports (also inside functions,
    where a CLI defers heavy imports until after argument parsing), then the top-level imports of
    those, transitively. An import inside a function of a library module is optional (vLLM behind
    the engine factory), so an edit there reruns no stage that does not choose it. Not this table
    (see stage_code)."""
    entry = stage_module(stage)
    todo, seen = sorted(_imports(entry, lazy=True)), {entry}
    while todo:
        module = todo.pop()
        if module not in seen and module != __name__:
            seen.add(module)
            todo += sorted(_imports(module, lazy=False) - seen)
    return sorted(seen)


def stage_code(stage: str, root: str = "src") -> list[str]:
    """Source files a stage depends on, as repo-relative paths (with the params schema when it reads
    params). Not this table: what it says of a stage is the keys it reads, whose values are tracked
    as params, so an edit for one stage reruns no other."""
    modules = stage_modules(stage)
    files = [str(_source(m).relative_to(SRC_DIR)) for m in modules]
    if "resetrl.core.config" in modules:
        files.append("resetrl/core/params.schema.json")
    return sorted(f"{root}/{f}" for f in files)


def stage_params(stage: str, method: str | None = None) -> tuple[str, ...]:
    """Params keys a stage reads; a training run also reads its own arm (and no other arm)."""
    keys = STAGES[stage][1]
    return (*keys, f"arms.{method}") if stage == "train" else keys


def declared_params(params, stage: str, method: str | None = None):
    """The view of `params` a stage runs with: reading a key it does not declare raises."""
    from resetrl.core.config import DeclaredParams

    return DeclaredParams(params, stage_params(stage, method), stage)


@dataclass(frozen=True)
class DvcStage:
    """A stage of dvc.yaml. `args` follow `python -m resetrl.stages.MODULE --params params.yaml`;
    `${item.seed}` / `${item.method}` come from the matrix. `outs` are cached (checkpoints);
    `files` are small outputs kept out of the cache (git holds them)."""

    matrix: tuple[str, ...]
    args: str
    deps: tuple[str, ...]
    outs: tuple[str, ...] = ()
    files: tuple[str, ...] = ()


RUN = "results/runs/${item.method}/seed${item.seed}"
SFT = "results/sft/seed${item.seed}"
MATRIX = {"method": "${study.methods}", "seed": "${study.seeds}"}


def _evaluate(model: str, out: str) -> DvcStage:
    return DvcStage(("method", "seed") if "item.method" in model else ("seed",),
                    f"--model {model} --data results/data --seed ${{item.seed}} --out {out}.json "
                    f"--outcomes {out}.problems.json", ("results/data", model),
                    files=(f"{out}.problems.json", f"{out}.json"))


def dvc_stages() -> dict[str, DvcStage]:
    """The study's DVC graph (arms x seeds from params.yaml). The analysis figures are those of
    `resetrl.analysis.figures`, the one list the Snakemake rule reads too."""
    from resetrl.analysis.figures import FIGURES

    figures = tuple(f"results/plots/{name}.{ext}" for name in FIGURES for ext in ("png", "pdf"))
    return {
        "prepare_data": DvcStage((), "--out results/data", (), ("results/data",)),
        "skill": DvcStage((), "--data results/data --out results/skill", ("results/data",), ("results/skill/model",),
                          ("results/skill/summary.json",)),
        "sft": DvcStage(("seed",), f"--data results/data --skill results/skill/model --seed ${{item.seed}} --out {SFT}",
                        ("results/data", "results/skill/model"), (f"{SFT}/model",),
                        (f"{SFT}/summary.json", f"{SFT}/live/plots/metrics")),
        "train": DvcStage(("method", "seed"), f"--method ${{item.method}} --seed ${{item.seed}} --init {SFT}/model "
                          f"--data results/data --out {RUN}", ("results/data", f"{SFT}/model"), (f"{RUN}/model",),
                          tuple(f"{RUN}/{f}" for f in ("history.json", "resets.jsonl", "val_outcomes.json",
                                                       "live/metrics.json", "live/plots/metrics"))),
        "evaluate": _evaluate(f"{RUN}/model", "results/eval/${item.method}/seed${item.seed}"),
        "evaluate_sft": _evaluate(f"{SFT}/model", "results/eval/sft/seed${item.seed}"),
        "task_regime": DvcStage(("seed",), f"--model {SFT}/model --data results/data "
                                "--seed ${item.seed} --out results/task/seed${item.seed}.json",
                                ("results/data", f"{SFT}/model"),
                                files=("results/task/seed${item.seed}.json",)),
        "plot_learning_curves": DvcStage((), "--runs results/runs --out results/plots/learning_curve",
                                         ("results/runs",), files=("results/plots/learning_curve.png",
                                                                   "results/plots/learning_curve.pdf")),
        "cpi_theory": DvcStage((), "--out results/theory/cpi.json --plot results/plots/cpi_theory", (),
                               files=("results/plots/cpi_theory.png", "results/plots/cpi_theory.pdf",
                                      "results/theory/cpi.json")),
        "predict": DvcStage((), "--out results/theory/tabular.json", (), files=("results/theory/tabular.json",)),
        "analyze": DvcStage((), "--results results --out results/RESULTS.md",
                            ("results/eval", "results/runs", "results/task", "results/plots/learning_curve.png",
                             "results/theory/cpi.json", "results/theory/tabular.json"),
                            files=("results/RESULTS.md", "results/analysis.json", "results/claims.json",
                                   "results/tables", "results/captions", *figures)),
    }


def snakemake_command(stage: str, root: str, params_args: str = "{PARAMS_ARGS}", extra: str = "") -> str:
    """A Snakemake rule's shell command for a stage: DVC's (the table above) with the configuration's
    params arguments, its results root for `results`, and wildcards for the matrix items; `extra`
    adds Snakemake-only flags (e.g. its thread count). The job's output goes to its log."""
    args = dvc_stages()[stage].args.replace("${item.method}", "{wildcards.method}")
    args = re.sub(r"(?<![\w-])results(?=/|\s|$)", root, args.replace("${item.seed}", "{wildcards.seed}"))
    return f"python -m {stage_module(stage)} {params_args} {args}{extra} > {{log}} 2>&1"


# The only metrics file, so `dvc exp show` stays short.
DVC_METRICS = {"analyze": "results/metrics.json"}
DVC_HEADER = """\
# GENERATED by `python -m resetrl.stages dvc` from src/resetrl/stages.py: edit that table, not this file
# (tests/test_graphs.py fails when they differ, and when Snakemake's jobs and these stages disagree).
# Arms and seeds are expanded from params.yaml (study.methods x study.seeds); to run an ablation arm with
# DVC, add it to study.methods (e.g. `dvc exp run -S ...`). `dvc repro` runs the study; `dvc exp show`
# compares runs (results/metrics.json); `dvc plots show` shows the study's figures (static images).
"""


def dvc_yaml() -> str:
    import yaml

    table, stages = dvc_stages(), {}
    for name, stage in table.items():
        entry: dict = {}
        if stage.matrix:
            entry["matrix"] = {axis: MATRIX[axis] for axis in stage.matrix}
        entry["cmd"] = f"python -m {stage_module(name)} --params params.yaml {stage.args}"
        entry["deps"] = [*stage.deps, *stage_code(name)]
        entry["params"] = list(stage_params(name, "${item.method}" if name == "train" else None))
        entry["outs"] = [*stage.outs, *({f: {"cache": False}} for f in stage.files)]
        if name in DVC_METRICS:
            entry["metrics"] = [{DVC_METRICS[name]: {"cache": False}}]
        stages[name] = entry
    images = [f for stage in table.values() for f in stage.files if f.endswith(".png")]  # for `dvc plots show`
    body = yaml.safe_dump({"stages": stages, "plots": images}, sort_keys=False, width=120)
    return DVC_HEADER + body


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Generate dvc.yaml from the stage table.")
    parser.add_argument("what", choices=["dvc"], help="the file to generate: dvc (dvc.yaml)")
    parser.add_argument("--out", type=Path, default=Path("dvc.yaml"), help="where to write (default: dvc.yaml)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if --out differs")
    args = parser.parse_args(argv)
    text = dvc_yaml()
    if args.check:
        if not args.out.exists() or args.out.read_text() != text:
            sys.exit(f"{args.out} differs from the stage table: run `python -m resetrl.stages dvc`")
        return
    args.out.write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
