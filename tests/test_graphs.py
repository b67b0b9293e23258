"""Snakemake and DVC describe the same graph: stages, commands, deps, outs and params keys; the
committed dvc.yaml is the one generated from the stage table."""

import ast
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from resetrl.core.config import load_params
from resetrl.stages import DVC_HEADER, STAGES, dvc_yaml, main, stage_code, stage_params

needs_dvc = pytest.mark.skipif(importlib.util.find_spec("dvc") is None, reason="needs dvc (requirements.txt)")


def test_committed_dvc_yaml_is_generated_from_the_stage_table(repo_root):
    assert (repo_root / "dvc.yaml").read_text() == dvc_yaml(), "run `python -m resetrl.stages dvc`"


def package_imports(src: Path) -> dict[str, set[str]]:
    """Every package module -> the package modules it imports, anywhere in it (lazy imports too)."""
    graph = {}
    for path in (src / "resetrl").rglob("*.py"):
        module = ".".join(path.relative_to(src).with_suffix("").parts).removesuffix(".__init__")
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("resetrl"):
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names |= {a.name for a in node.names if a.name.startswith("resetrl")}
        graph[module] = names
    return graph


def test_the_package_has_no_import_circle(repo_root):
    graph, done, path = package_imports(repo_root / "src"), set(), []

    def visit(module):
        assert module not in path, f"import circle: {' -> '.join(path[path.index(module):] + [module])}"
        if module in done:
            return
        path.append(module)
        for name in sorted(graph.get(module, ())):
            visit(name)
        path.pop()
        done.add(module)

    assert len(graph) > 40
    for module in sorted(graph):
        visit(module)


def test_a_vllm_only_edit_reruns_no_cpu_stage(repo_root):
    # Both tools track a stage's code as stage_code (Snakemake's `code` input, dvc.yaml's deps).
    engine = "src/resetrl/rollout/vllm_engine.py"
    assert all(engine not in stage_code(stage) for stage in STAGES)
    assert engine not in dvc_yaml()
    assert "src/resetrl/rollout/torch_engine.py" in stage_code("train")  # what the CPU study runs is tracked


def test_the_generator_check_fails_on_a_hand_edit(repo_root, tmp_path):
    edited = tmp_path / "dvc.yaml"
    edited.write_text(dvc_yaml().replace("results/data", "results/dat", 1))
    with pytest.raises(SystemExit, match="differs from the stage table"):
        main(["dvc", "--out", str(edited), "--check"])
    main(["dvc", "--out", str(edited)])
    main(["dvc", "--out", str(edited), "--check"])
    assert edited.read_text().startswith(DVC_HEADER)


def snakemake_jobs(root: Path, *extra: str) -> list[dict]:
    # Without the default profile, whose quiet console hides the jobs' details.
    command = ["-n", "-p", "--forceall", "--cores", "1", "--workflow-profile", "none", *extra]
    out = subprocess.run([sys.executable, "-m", "snakemake", *command],
                         cwd=root, capture_output=True, text=True, check=True).stdout
    jobs = []
    for block in re.split(r"\n(?=\[[^\n]*\]\nrule )", out):
        rule = re.search(r"^rule (\w+):", block, re.M)
        shell = re.search(r"^Shell command: (.*)$", block, re.M)
        if not rule or rule.group(1) == "all":
            continue
        fields = dict(re.findall(r"^    (input|output|log): (.*)$", block, re.M))
        jobs.append({"name": rule.group(1), "cmd": shell.group(1), "deps": fields["input"].split(", "),
                     "outs": fields["output"].split(", "), "log": fields["log"].split(", ")})
    return jobs


def dvc_stages(root: Path) -> list[dict]:
    from dvc.repo import Repo

    stages = []
    for stage in Repo(str(root)).index.stages:
        params = [p for d in stage.deps if getattr(d, "params", None) is not None for p in d.params]
        stages.append({"name": stage.name.split("@")[0], "cmd": stage.cmd, "params": sorted(params),
                       "deps": [str(d.def_path) for d in stage.deps if getattr(d, "params", None) is None],
                       "outs": [str(o.def_path) for o in stage.outs]})
    return stages


def normalise(cmd: str, log: str) -> str:
    """The command without its log redirect and Snakemake's core count (DVC stages use runtime.threads)."""
    return " ".join(re.sub(r" --threads \d+", "", cmd.replace(f"> {log} 2>&1", "")).split())


def same_paths(smk: list[str], dvc: list[str]) -> bool:
    """Each Snakemake path is a DVC path or lies inside one (DVC tracks directories whole), and
    each DVC path is a Snakemake path or holds one."""
    inside = lambda p, d: p == d or p.startswith(d.rstrip("/") + "/")  # noqa: E731
    return all(any(inside(s, d) for d in dvc) for s in smk) and all(any(inside(s, d) for s in smk) for d in dvc)


@needs_dvc
def test_snakemake_and_dvc_graphs_agree(repo_root):
    smk = {normalise(j["cmd"], j["log"][0]): j for j in snakemake_jobs(repo_root)}
    dvc = dvc_stages(repo_root)
    assert len(smk) == len(dvc), (sorted(j["name"] for j in smk.values()), sorted(s["name"] for s in dvc))
    for stage in dvc:
        cmd = " ".join(stage["cmd"].split())
        assert cmd in smk, f"dvc stage {stage['name']}: no Snakemake job runs `{cmd}`"
        job = smk[cmd]
        assert job["name"] == stage["name"]
        for kind in ("deps", "outs"):
            assert same_paths(job[kind], stage[kind]), (
                f"{stage['name']} {kind}: only in Snakemake {sorted(set(job[kind]) - set(stage[kind]))}, "
                f"only in dvc.yaml {sorted(set(stage[kind]) - set(job[kind]))}")
        method = re.search(r"--method (\S+)", cmd)
        assert stage["params"] == sorted(stage_params(stage["name"], method and method.group(1))), stage["name"]


def test_same_paths_detects_a_missing_dependency():
    assert same_paths(["results/data/manifest.json", "a.py"], ["results/data", "a.py"])
    assert not same_paths(["a.py"], ["a.py", "b.py"])
    assert not same_paths(["a.py", "b.py"], ["a.py"])


def test_overlay_changes_the_expanded_graph(repo_root):
    jobs = snakemake_jobs(repo_root, "--configfile", "configs/smoke.yaml")
    trains = [j for j in jobs if j["name"] == "train"]
    assert len(trains) == len(load_params(repo_root / "params.yaml").study.methods)  # every default arm, one seed
    assert all("--params configs/smoke.yaml" in j["cmd"] for j in jobs)


def test_snakemake_lint_is_clean(repo_root):
    out = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=repo_root,
                         capture_output=True, text=True)
    text = out.stdout + out.stderr
    assert out.returncode == 0 and "Lints for" not in text, text


def test_a_second_configfile_flag_is_refused_not_silently_dropped(repo_root):
    # Snakemake keeps only the last --configfile flag; one flag with several files applies them all.
    twice = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile", "configs/smoke.yaml",
                            "--configfile", "configs/regimes/q10.yaml"], cwd=repo_root, capture_output=True, text=True)
    assert twice.returncode == 2 and "error: --configfile given 2 times" in twice.stderr, twice.stderr
    assert "drops configs/smoke.yaml" in twice.stderr
    assert "--configfile configs/smoke.yaml configs/regimes/q10.yaml" in twice.stderr
    once = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile", "configs/smoke.yaml",
                           "configs/regimes/q10.yaml"], cwd=repo_root, capture_output=True, text=True)
    assert once.returncode == 0, once.stderr
