"""What each pipeline stage reads and writes: its params keys, its source files, its input and output
paths and its command. Snakemake's rules take their commands, paths and rerun triggers from this
module, and `dvc.yaml` is generated from it:

    python -m resetrl.stages dvc            # rewrite dvc.yaml (--check: fail if it differs)

A test checks that the committed dvc.yaml equals the generated one, and another that Snakemake's
jobs and DVC's stages agree (commands, inputs, outputs, params keys)."""

from __future__ import annotations

import argparse
import ast
import functools
import itertools
import re
import sys
from dataclasses import dataclass, field
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
    "analyze": ("analyze", ("study", "arms", "model", "rl", "task.source")),
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


# Stages that load a model -> the memory plan they are checked against (resetrl.core.memory_plan).
MEMORY_PLANS = {"skill": "sft", "sft": "sft", "train": "train", "evaluate": "evaluate", "task_regime": "evaluate"}


def declared_params(params, stage: str, method: str | None = None):
    """The view of `params` a stage runs with: reading a key it does not declare raises. A stage that
    loads a model is refused here, before any compute, where its memory plan exceeds a known
    runtime.device_memory_gib (a ParamsError: one line naming the keys to change, exit status 2)."""
    from resetrl.core.config import DeclaredParams

    if stage in MEMORY_PLANS:
        from resetrl.core.memory_plan import check_memory

        check_memory(params, MEMORY_PLANS[stage], method)
    return DeclaredParams(params, stage_params(stage, method), stage)


@dataclass(frozen=True)
class Stage:
    """What a stage reads and writes, declared once for both tools. Paths lie under `results` (the
    configuration's results root); `{method}` / `{seed}` are the matrix items (study.methods x
    study.seeds); in a stage without that axis they stand for every item (Snakemake expands them,
    DVC depends on the directory holding them). A path ending in "/" is a directory. `args` follow
    `python -m resetrl.stages.MODULE --params params.yaml`. `outs` are cached by DVC (checkpoints,
    data); `files` are small outputs git holds; `metrics` the DVC metrics file; `report`: the
    Snakemake report category of the stage's figures."""

    matrix: tuple[str, ...]
    args: str
    deps: dict[str, str] = field(default_factory=dict)
    outs: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, str] = field(default_factory=dict)
    report: str | None = None

    def outputs(self) -> dict[str, str]:
        return {**self.outs, **self.files, **self.metrics}


RUN = "results/runs/{method}/seed{seed}"
SFT = "results/sft/seed{seed}"
MATRIX = {"method": "${study.methods}", "seed": "${study.seeds}"}


def _evaluate(model: str, out: str) -> Stage:
    return Stage(("method", "seed") if "{method}" in model else ("seed",),
                 f"--model {model} --data results/data --seed {{seed}} --out {out}.json --outcomes {out}.problems.json",
                 {"data": "results/data/", "model": model + "/"},
                 files={"metrics": f"{out}.json", "outcomes": f"{out}.problems.json"})


@functools.cache
def stage_table() -> dict[str, Stage]:
    """The study's graph. A stage's inputs name the outputs of the stages before it, so every path is
    written once. The analysis figures and captions are those of `resetrl.analysis.figures`."""
    from resetrl.analysis.figures import CAPTIONS, FIGURES

    data = "results/data/"
    table = {
        "prepare_data": Stage((), "--out results/data", outs={"data": data}),
        "skill": Stage((), "--data results/data --out results/skill", {"data": data},
                       {"model": "results/skill/model/"}, {"summary": "results/skill/summary.json"}),
    }
    skill = table["skill"].outs["model"]
    table["sft"] = Stage(("seed",), f"--data results/data --skill {skill.rstrip('/')} --seed {{seed}} --out {SFT}",
                         {"data": data, "skill": skill}, {"model": f"{SFT}/model/"},
                         {"summary": f"{SFT}/summary.json", "plots": f"{SFT}/live/plots/metrics/"})
    warm_start = table["sft"].outs["model"]
    table["train"] = Stage(("method", "seed"), f"--method {{method}} --seed {{seed}} --init {warm_start.rstrip('/')} "
                           f"--data results/data --out {RUN}", {"data": data, "init": warm_start},
                           {"model": f"{RUN}/model/"},
                           {"history": f"{RUN}/history.json", "timings": f"{RUN}/timings.json",
                            "resets": f"{RUN}/resets.jsonl",
                            "val_outcomes": f"{RUN}/val_outcomes.json", "metrics": f"{RUN}/live/metrics.json",
                            "plots": f"{RUN}/live/plots/metrics/"})
    run = table["train"].outputs()
    table["evaluate"] = _evaluate(run["model"].rstrip("/"), "results/eval/{method}/seed{seed}")
    table["evaluate_sft"] = _evaluate(warm_start.rstrip("/"), "results/eval/sft/seed{seed}")
    table["task_regime"] = Stage(("seed",), f"--model {warm_start.rstrip('/')} --data results/data "
                                 "--seed {seed} --out results/task/seed{seed}.json",
                                 {"data": data, "model": warm_start}, files={"task": "results/task/seed{seed}.json"})
    curves = "results/plots/learning_curve"
    table["plot_learning_curves"] = Stage((), f"--runs results/runs --out {curves}", {"histories": run["history"]},
                                          files={"png": f"{curves}.png", "pdf": f"{curves}.pdf"},
                                          report="Learning curves")
    table["cpi_theory"] = Stage((), "--out results/theory/cpi.json --plot results/plots/cpi_theory",
                                files={"json": "results/theory/cpi.json", "png": "results/plots/cpi_theory.png",
                                       "pdf": "results/plots/cpi_theory.pdf"}, report="Theory")
    table["predict"] = Stage((), "--out results/theory/tabular.json", files={"json": "results/theory/tabular.json"})
    evaluated = table["evaluate"].files
    table["analyze"] = Stage(
        (), "--results results --out results/RESULTS.md",
        {"histories": run["history"], "timings": run["timings"], "resets": run["resets"],
         "val_outcomes": run["val_outcomes"],
         "evals": evaluated["metrics"], "outcomes": evaluated["outcomes"],
         "sft": table["evaluate_sft"].files["metrics"], "task": table["task_regime"].files["task"],
         "theory": table["cpi_theory"].files["json"], "prediction": table["predict"].files["json"],
         "curves": table["plot_learning_curves"].files["png"]},
        files={"page": "results/RESULTS.md", "summary": "results/analysis.json", "claims": "results/claims.json",
               **{f"table_{ext}": f"results/tables/final.{ext}" for ext in ("md", "csv", "tex")},
               **{f"caption_{name}": f"results/captions/{name}.rst" for name in CAPTIONS},
               **{f"{ext}_{name}": f"results/plots/{name}.{ext}" for name in FIGURES for ext in ("png", "pdf")}},
        metrics={"metrics": "results/metrics.json"}, report="Analyses")
    return table


def _with_root(path: str, root: str) -> str:
    return root + path.removeprefix("results") if path == "results" or path.startswith("results/") else path


def snakemake_command(stage: str, root: str, params_args: str, extra: str = "") -> str:
    """A Snakemake rule's shell command for a stage: DVC's with the configuration's params arguments
    (literal, so the rule reads no global), its results root for `results`, and wildcards for the
    matrix items; `extra` adds Snakemake-only flags (e.g. its thread count). Output goes to the log."""
    args = " ".join(_with_root(word, root) for word in stage_table()[stage].args.split())
    args = re.sub(r"{(method|seed)}", r"{wildcards.\1}", args)
    return f"python -m {stage_module(stage)} {params_args} {args}{extra} > {{log}} 2>&1"


def snakemake_paths(stage: str, kind: str, root: str, methods: list[str], seeds: list[int]
                    ) -> dict[str, tuple[str | list[str], bool]]:
    """A stage's inputs (kind "deps") or outputs ("outputs") for Snakemake: name -> (path, or the
    paths of every study arm / seed where the stage has no such axis; whether it is a directory)."""
    entry = stage_table()[stage]
    paths = entry.deps if kind == "deps" else entry.outputs()
    out = {}
    for name, path in paths.items():
        path, is_dir = _with_root(path.rstrip("/"), root), path.endswith("/")
        axes = [a for a in ("method", "seed") if f"{{{a}}}" in path and a not in entry.matrix]
        if axes:
            items = {"method": methods, "seed": seeds}
            path = [_filled(path, dict(zip(axes, combo))) for combo in itertools.product(*(items[a] for a in axes))]
        out[name] = (path, is_dir)
    return out


def _filled(path: str, values: dict) -> str:
    """`path` with {axis} replaced by each value (other wildcards, such as a regime's, stay)."""
    for axis, value in values.items():
        path = path.replace(f"{{{axis}}}", str(value))
    return path


def _dvc_path(path: str, matrix: tuple[str, ...]) -> str:
    """A path for dvc.yaml: matrix items as ${item.x}; every item of an axis the stage lacks: the
    directory holding them."""
    path = path.rstrip("/")
    if set(re.findall(r"{(\w+)}", path)) <= set(matrix):
        return re.sub(r"{(\w+)}", r"${item.\1}", path)
    return path[:path.index("{")].rsplit("/", 1)[0]


def _distinct(paths: list[str]) -> list[str]:
    """Paths in order, without repeats and without those inside another one (DVC tracks directories whole)."""
    return [p for i, p in enumerate(paths) if p not in paths[:i]
            and not any(p.startswith(q + "/") for q in paths)]


DVC_HEADER = """\
# GENERATED by `python -m resetrl.stages dvc` from src/resetrl/stages.py: edit that table, not this file
# (tests/test_graphs.py fails when they differ, and when Snakemake's jobs and these stages disagree).
# Arms and seeds are expanded from params.yaml (study.methods x study.seeds); to run an ablation arm with
# DVC, add it to study.methods (e.g. `dvc exp run -S ...`). `dvc repro` runs the study; `dvc exp show`
# compares runs (results/metrics.json); `dvc plots show` shows the study's figures (static images).
"""


def dvc_yaml() -> str:
    import yaml

    table, stages = stage_table(), {}
    for name, stage in table.items():
        entry: dict = {}
        if stage.matrix:
            entry["matrix"] = {axis: MATRIX[axis] for axis in stage.matrix}
        args = re.sub(r"{(\w+)}", r"${item.\1}", stage.args)
        entry["cmd"] = f"python -m {stage_module(name)} --params params.yaml {args}"
        entry["deps"] = [*_distinct([_dvc_path(p, stage.matrix) for p in stage.deps.values()]), *stage_code(name)]
        entry["params"] = list(stage_params(name, "${item.method}" if name == "train" else None))
        files = [{_dvc_path(f, stage.matrix): {"cache": False}} for f in stage.files.values()]
        entry["outs"] = [*(_dvc_path(p, stage.matrix) for p in stage.outs.values()), *files]
        if stage.metrics:
            entry["metrics"] = [{_dvc_path(m, stage.matrix): {"cache": False}} for m in stage.metrics.values()]
        stages[name] = entry
    images = [f for stage in table.values() for f in stage.files.values() if f.endswith(".png")]  # `dvc plots show`
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
