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
import torch

from resetrl.core.params import StudyConfig

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent  # snakemake / dvc of the environment running the tests


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1", "COLUMNS": "200"}
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


# README: `dvc exp show --drop '.*' --keep 'Experiment|pass1\.(grpo|rrpo|srpo|oracle|demo|sft)$|gain|^rl\.lr$'`
EXP_SHOW_RECIPE = ["--drop", ".*", "--keep", r"Experiment|pass1\.(grpo|rrpo|srpo|oracle|demo|sft)$|gain|^rl\.lr$"]
METHODS = StudyConfig().methods  # the smoke overlay keeps the default arms
CLAIM_KEYS = {"id", "claim", "measure", "verdict", "estimate", "ci_low", "ci_high", "n_seeds", "mde"}


def weights(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(model_dir / "model.safetensors")


def check_model_directories(root: Path) -> None:
    """Every model directory (warm starts, final models, checkpoints) carries a model card naming
    its arm and seed, and generation settings that stop at EOS within the response budget."""
    dirs = {p.parent for name in ("config.json", "adapter_config.json", "pretrained.json") for p in root.rglob(name)}
    assert len(dirs) >= 3, dirs
    for d in dirs:
        card = (d / "README.md").read_text()
        assert "| params digest |" in card and "| seed |" in card and "## Stop rule" in card, d
        if (d / "config.json").exists():
            generation = json.loads((d / "generation_config.json").read_text())
            assert generation["eos_token_id"] == json.loads((d / "config.json").read_text())["eos_token_id"], d
            assert generation["max_new_tokens"] > 0, d


def check_study_outputs(repo: Path, results: str = "results", methods=METHODS, seeds=(0,)) -> None:
    root = repo / results
    manifest = json.loads((root / "data/manifest.json").read_text())
    assert manifest["splits"]["train"]["count"] == 2000
    warm = weights(root / "sft/seed0/model")
    sft = json.loads((root / "eval/sft/seed0.json").read_text())
    assert set(sft) == {"test", "ood"}
    assert sft["test"]["greedy_pass1"] > 0  # the smoke warm start solves problems: RL has reward to learn from
    for method in methods:
        for seed in seeds:
            metrics = json.loads((root / f"eval/{method}/seed{seed}.json").read_text())
            for split in ("test", "ood"):
                assert 0.0 <= metrics[split]["greedy_pass1"] <= 1.0
                assert {"pass@1", "pass@2"} <= set(metrics[split])
            history = json.loads((root / f"runs/{method}/seed{seed}/history.json").read_text())
            assert [r["step"] for r in history if "train/reward" in r] == [0, 1, 2, 3]
            # Rollouts carry reward and some chains a nonzero advantage, so the update moves the weights.
            assert sum(r["train/reward"] for r in history if "train/reward" in r) > 0, method
            assert max(r["train/frac_nonzero_adv"] for r in history if "train/frac_nonzero_adv" in r) > 0, method
            trained = weights(root / f"runs/{method}/seed{seed}/model")
            assert any(not torch.equal(trained[k], warm[k]) for k in warm), f"{method}: weights unchanged"
            resets = (root / f"runs/{method}/seed{seed}/resets.jsonl").read_text().splitlines()
            assert method.startswith("grpo") == (not any("reset/rate" in r for r in history))
            assert all(json.loads(line)["reset_step"] >= 1 for line in resets)
    check_model_directories(root)
    for name in ("learning_curve", "cpi_theory", "reset_positions", "localization", "suffix_correction",
                 "clean_vs_erroneous", "grad_signal"):
        for suffix in ("png", "pdf"):
            assert (root / f"plots/{name}.{suffix}").stat().st_size > 1000, name
    claims = json.loads((root / "claims.json").read_text())
    ids = {c["id"] for c in claims}
    assert {"oracle_vs_grpo", "srpo_vs_grpo", "srpo_vs_rrpo", "rrpo_vs_grpo", "srpo_vs_grpo_final"} <= ids
    assert all(CLAIM_KEYS <= set(c) for c in claims)
    page = (root / "RESULTS.md").read_text()
    verdicts = re.findall(r"\| \*\*(.+?)\*\*[^|]* \|", page)
    if len(seeds) < 2:  # one seed: no spread, no interval, no verdict, and the page says so
        assert {c["verdict"] for c in claims} == {"n/a"} and set(verdicts) == {"n/a"}
        assert "every verdict is n/a" in page
    assert len(verdicts) == len(claims)
    assert "| srpo |" in (root / "tables/final.md").read_text()
    assert "\\begin{tabular}" in (root / "tables/final.tex").read_text()


def git(root: Path, *args: str) -> str:
    return run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], root).stdout


def test_snakemake_runs_the_smoke_study(repo_root, tmp_path):
    root = clone(repo_root, tmp_path)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "the committed study")
    run(["snakemake", "--cores", "2", "--configfile", "configs/smoke.yaml"], root)
    check_study_outputs(root, "results/smoke")
    assert git(root, "status", "--porcelain") == ""  # the committed study in results/ is untouched
    # The progress command Snakemake prints, as printed: every run of the overlay is done.
    lines = run([sys.executable, "-m", "resetrl.status", "--results", "results/smoke"], root).stdout.splitlines()
    assert len(lines) == len(METHODS) + 1 and all(line.endswith("done") for line in lines), lines
    # Rerun triggers are the values a stage reads: an overlay that changes none reruns nothing.
    (root / "noop.yaml").write_text("rl: {steps: 4}\n")  # the smoke overlay's own value
    for extra in ([], ["noop.yaml"]):
        again = run(["snakemake", "-n", "--cores", "2", "--configfile", "configs/smoke.yaml", *extra], root)
        assert "Nothing to be done" in again.stdout + again.stderr, again.stdout
    # `--config` overrides are validated like overlays, in one line naming the key.
    bad = subprocess.run([BIN / "snakemake", "-n", "--cores", "1", "--config", "rl={lrr: 1}"], cwd=root,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "error: override rl.lrr=1: rl.lrr: unknown key" in bad.stderr, bad.stderr
    run(["snakemake", "--report", "results/smoke/report.html", "--configfile", "configs/smoke.yaml"], root)
    assert (root / "results/smoke/report.html").stat().st_size > 10_000
    run(["snakemake", "ablations", "--cores", "2", "--configfile", "configs/smoke.yaml"], root)  # targets first
    assert json.loads((root / "results/smoke/eval/srpo_2x4/seed0.json").read_text())["test"]["problems"] == 24
    ablations = (root / "results/smoke/tables/ablations.md").read_text()
    assert "| srpo | 1x4 | pg_seq_mean | yes |" in ablations and "| srpo_2x4 | 2x4 |" in ablations


def test_dvc_reproduces_the_smoke_study(repo_root, tmp_path):
    root = clone(repo_root, tmp_path)
    run(["git", "init", "-q"], root)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init", "--allow-empty"], root)
    merge = [sys.executable, "-m", "resetrl.core.config", "merge", "params.yaml", "configs/smoke.yaml"]
    run([*merge, "-o", "params.yaml"], root)
    run(["git", "add", "-A"], root)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "smoke params"], root)
    run(["dvc", "repro"], root)
    check_study_outputs(root)  # DVC's graph writes results/; `dvc exp run --temp` isolates experiments
    status = run(["dvc", "status"], root)
    assert "up to date" in status.stdout
    run(["dvc", "plots", "show", "-o", "dvc_plots"], root)  # the figures as images: no chart library
    page = (root / "dvc_plots/index.html").read_text()
    assert len(re.findall(r"<img", page)) >= 7 and "vega" not in page.lower()
    shown = json.loads(run(["dvc", "exp", "show", "--json"], root).stdout)
    workspace = next(e for e in shown if e["rev"] == "workspace")
    data = workspace["data"]
    assert set(data["metrics"]) == {"results/metrics.json"}  # one short metrics file: a readable table
    headline = data["metrics"]["results/metrics.json"]["data"]
    assert set(headline["pass1"]) == {*METHODS, "sft"} and "oracle-grpo" in headline["gain"]
    assert data["params"]["params.yaml"]["data"]["rl"]["steps"] == 4
    # The README's recipe fits a 200-column terminal.
    table = run(["dvc", "exp", "show", "--no-pager", *EXP_SHOW_RECIPE], root).stdout
    assert "pass1.oracle" in table and max(map(len, table.splitlines())) <= 200 and "…" not in table
    # An experiment in a temporary copy (the README's way to keep DVC runs apart): the workspace's
    # results stay as they were, and the experiment is listed with its params.
    before = (root / "results/metrics.json").read_bytes()
    run(["dvc", "exp", "run", "--temp", "-S", "rl.lr=2e-5"], root)
    assert (root / "results/metrics.json").read_bytes() == before
    shown = json.loads(run(["dvc", "exp", "show", "--json"], root).stdout)
    assert 2e-5 in experiment_learning_rates(shown)


def experiment_learning_rates(shown: list[dict]) -> list[float]:
    """rl.lr of every experiment under the commits of `dvc exp show --json`."""
    revs = [rev for commit in shown for exp in commit.get("experiments") or [] for rev in exp.get("revs", [])]
    return [rev["data"]["params"]["params.yaml"]["data"]["rl"]["lr"] for rev in revs if rev.get("data")]


def test_a_study_whose_warm_start_learned_nothing_runs_through_the_analysis(repo_root, tmp_path):
    """No SFT at all: every reward is 0, no comparison has signal; the graph still ends in a results page
    whose verdicts say n/a, and the status lines say done."""
    root = clone(repo_root, tmp_path)
    run(["snakemake", "--cores", "2", "--configfile", "configs/smoke.yaml", "--config", "study={name: degenerate}",
         "sft={steps: 0}"], root)
    claims = json.loads((root / "results/degenerate/claims.json").read_text())
    assert claims and {c["verdict"] for c in claims} == {"n/a"}
    assert "## The task as the warm starts see it" in (root / "results/degenerate/RESULTS.md").read_text()
    lines = run([sys.executable, "-m", "resetrl.status", "--results", "results/degenerate"], root).stdout.splitlines()
    assert lines and all(line.endswith("done") for line in lines), lines


@pytest.mark.cluster
def test_snakemake_runs_a_real_data_study(repo_root, tmp_path):
    """The cluster-scale path through the real workflow: a pretrained model by path (a tiny Qwen2
    stand-in), reasoning-gym problems scored in the verifier pool, benchmark files, no SFT, LoRA."""
    from resetrl.testing import save_tiny_hub_model

    root = clone(repo_root, tmp_path / "repo")
    hub = save_tiny_hub_model(tmp_path / "tiny-qwen2")
    bench = tmp_path / "bench.jsonl"
    bench.write_text("".join(json.dumps({"problem": f"What is {i}+1?", "answer": str(i + 1)}) + "\n" for i in range(4)))
    (root / "configs/real.yaml").write_text(f"""
study: {{name: real, methods: [grpo, srpo], ablations: [], seeds: [0]}}
task: {{source: reasoning_gym, n_train: 16, n_val: 4, n_test: 4,
        reasoning_gym: {{datasets: [chain_sum, basic_arithmetic], seed: 0}}, eval_files: {{bench: {bench}}}}}
model: {{pretrained: {hub}}}
sft: {{steps: 0}}
rollout: {{max_thoughts: 3, max_thought_tokens: 8, batch_size: 16}}
rl: {{steps: 2, prompts_per_step: 2, group_size: 4, minibatches: 2, eval_every: 1, save_every: 1,
      localization_max_tokens: 8, lora: {{rank: 4, alpha: 8}}}}
eval: {{pass_k: [1, 2], n_samples: 2}}
runtime: {{verify_workers: 1}}
""")
    run(["snakemake", "--cores", "2", "--configfile", "configs/smoke.yaml", "configs/real.yaml"], root)
    root = root / "results/real"
    assert json.loads((root / "sft/seed0/model/pretrained.json").read_text()) == {"name_or_path": str(hub)}
    for method in ("grpo", "srpo"):
        metrics = json.loads((root / f"eval/{method}/seed0.json").read_text())
        assert metrics["test"]["problems"] == 4 and metrics["ood"]["problems"] == 4
        history = json.loads((root / f"runs/{method}/seed0/history.json").read_text())
        assert sum(r.get("verify/ok", 0) + r.get("verify/no_answer", 0) for r in history) > 0
    page = (root / "RESULTS.md").read_text()
    assert "| srpo |" in (root / "tables/final.md").read_text() and "every verdict is n/a" in page
