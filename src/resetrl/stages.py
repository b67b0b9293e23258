"""What each pipeline stage reads: its params keys and its source files. Snakemake derives its
rerun triggers from this module; a test checks that dvc.yaml declares exactly the same."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent

# Stage name -> (entry module, params keys it reads).
STAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "prepare_data": ("data", ("task",)),
    "sft": ("sft", ("model", "sft", "rollout", "runtime", "task.surface_forms", "task.slip_rate",
                    "rl.localization_max_tokens", "rl.loc_eval_problems")),
    "train": ("train", ("rl", "rollout", "runtime")),
    "evaluate": ("evaluate", ("eval", "rollout", "runtime")),
    "evaluate_sft": ("evaluate", ("eval", "rollout", "runtime")),
    "task_regime": ("regime", ("rl.group_size", "rl.localization_max_tokens", "rollout", "runtime")),
    "plot_learning_curves": ("plots", ("study",)),
    "cpi_theory": ("theory", ("theory",)),
    "analyze": ("report", ("study", "arms", "model", "rl")),
    "regime_map": ("regimes", ("study",)),
    "prepare_model": ("pretrained", ()),
}


def _local_imports(module: str) -> set[str]:
    tree = ast.parse((PACKAGE_DIR / f"{module}.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("resetrl."):
            names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names |= {a.name.split(".")[1] for a in node.names if a.name.startswith("resetrl.")}
    return names


def stage_modules(stage: str) -> list[str]:
    """The stage's entry module and every package module it imports, transitively."""
    todo, seen = [STAGES[stage][0]], set()
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo += sorted(_local_imports(module) - seen)
    return sorted(seen)


def stage_code(stage: str, root: str = "src/resetrl") -> list[str]:
    """Source files a stage depends on, as repo-relative paths (the schema is read by config). Not
    this table: what it says of a stage is the keys it reads, whose values are tracked as params,
    so an edit for one stage reruns no other."""
    files = [f"{root}/{m}.py" for m in stage_modules(stage) if m != "stages"]
    if "config" in stage_modules(stage):
        files.append(f"{root}/params.schema.json")
    return sorted(files)


def stage_params(stage: str, method: str | None = None) -> tuple[str, ...]:
    """Params keys a stage reads; a training run also reads its own arm (and no other arm)."""
    keys = STAGES[stage][1]
    return (*keys, f"arms.{method}") if stage == "train" else keys
