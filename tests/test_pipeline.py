"""End to end: the whole graph on the smoke overlay, through Snakemake and through DVC, each in a
fresh copy of the repository (as a user's clone would be)."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent  # snakemake / dvc of the environment running the tests


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def clone(repo_root: Path, dest: Path) -> Path:
    """The tracked and not-ignored files of the working tree, as a fresh clone would have them."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                           cwd=repo_root, capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        if (repo_root / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo_root / rel, dest / rel)
    return dest


def check_study_outputs(root: Path, methods=("grpo", "rrpo", "srpo", "oracle"), seeds=(0,)) -> None:
    manifest = json.loads((root / "results/data/manifest.json").read_text())
    assert manifest["splits"]["train"]["count"] == 2000
    assert (root / "results/sft/model/model.safetensors").exists()
    sft = json.loads((root / "results/eval/sft.json").read_text())
    assert set(sft) == {"test", "ood"}
    for method in methods:
        for seed in seeds:
            metrics = json.loads((root / f"results/eval/{method}/seed{seed}.json").read_text())
            for split in ("test", "ood"):
                assert 0.0 <= metrics[split]["greedy_pass1"] <= 1.0
                assert {"pass@1", "pass@2"} <= set(metrics[split])
            history = json.loads((root / f"results/runs/{method}/seed{seed}/history.json").read_text())
            assert [r["step"] for r in history if "train/reward" in r] == [0, 1, 2, 3]
            resets = (root / f"results/runs/{method}/seed{seed}/resets.jsonl").read_text().splitlines()
            assert (method == "grpo") == (not any("reset/rate" in r for r in history))
            assert all(json.loads(line)["reset_step"] >= 1 for line in resets)
    for name in ("learning_curve", "cpi_theory", "reset_positions", "localization", "suffix_correction",
                 "clean_vs_erroneous", "grad_signal"):
        for suffix in ("png", "pdf"):
            assert (root / f"results/plots/{name}.{suffix}").stat().st_size > 1000, name
    page = (root / "results/RESULTS.md").read_text()
    verdicts = re.findall(r"\| \*\*(.+?)\*\* \|", page)
    assert len(verdicts) == 6 and set(verdicts) <= {"reproduced", "not reproduced", "inconclusive"}
    assert "| srpo |" in (root / "results/tables/final.md").read_text()
    assert "\\begin{tabular}" in (root / "results/tables/final.tex").read_text()


def test_snakemake_runs_the_smoke_study(repo_root, tmp_path):
    root = clone(repo_root, tmp_path)
    run(["snakemake", "--cores", "2", "--configfile", "configs/smoke.yaml"], root)
    check_study_outputs(root)
    again = run(["snakemake", "-n", "--cores", "2", "--configfile", "configs/smoke.yaml"], root)
    assert "Nothing to be done" in again.stdout + again.stderr
    run(["snakemake", "--report", "results/report.html", "--configfile", "configs/smoke.yaml"], root)
    assert (root / "results/report.html").stat().st_size > 10_000
    run(["snakemake", "ablations", "--cores", "2", "--configfile", "configs/smoke.yaml"], root)  # targets first
    assert json.loads((root / "results/eval/srpo_2x4/seed0.json").read_text())["test"]["problems"] == 24
    ablations = (root / "results/tables/ablations.md").read_text()
    assert "| srpo | 1x4 | pg_seq_mean | yes |" in ablations and "| srpo_2x4 | 2x4 |" in ablations


def test_dvc_reproduces_the_smoke_study(repo_root, tmp_path):
    root = clone(repo_root, tmp_path)
    run(["git", "init", "-q"], root)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init", "--allow-empty"], root)
    merge = [sys.executable, "-m", "resetrl.config", "merge", "params.yaml", "configs/smoke.yaml"]
    run([*merge, "-o", "params.yaml"], root)
    run(["git", "add", "-A"], root)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "smoke params"], root)
    run(["dvc", "repro"], root)
    check_study_outputs(root)
    status = run(["dvc", "status"], root)
    assert "up to date" in status.stdout
    run(["dvc", "plots", "show", "-o", "dvc_plots"], root)  # image plots: renders offline, no chart library
    assert len(re.findall(r"<img", (root / "dvc_plots/index.html").read_text())) >= 7
    shown = json.loads(run(["dvc", "exp", "show", "--json"], root).stdout)
    workspace = next(e for e in shown if e["rev"] == "workspace")
    data = workspace["data"]
    metrics_files = set(data["metrics"])
    assert {f"results/eval/{m}/seed0.json" for m in ("grpo", "rrpo", "srpo", "oracle")} <= metrics_files
    assert "results/eval/sft.json" in metrics_files
    assert data["metrics"]["results/eval/grpo/seed0.json"]["data"]["test"]["greedy_pass1"] >= 0.0
    assert data["params"]["params.yaml"]["data"]["rl"]["steps"] == 4
