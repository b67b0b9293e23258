"""The SLURM profile: the paper configs' full graph builds through it (dry run, no cluster needed),
and, where a SLURM cluster answers (CI starts a one-node one: tests/slurm/start_cluster.sh), the
smoke study runs through it for real, every job an sbatch job."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PAPER_CONFIGS = ["configs/qwen2.5-14b.yaml", "configs/olmo3-7b.yaml"]


def snakemake(repo: Path, *args: str, cwd: Path | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", *args]
    return subprocess.run(command, cwd=cwd or repo, capture_output=True, text=True, timeout=timeout)


def job_blocks(output: str) -> dict[str, list[str]]:
    """rule name -> the resources line of each of its jobs in a dry run's listing."""
    blocks: dict[str, list[str]] = {}
    for rule, body in re.findall(r"^(?:local)?rule (\w+):\n(.*?)(?=^\S|\Z)", output, flags=re.M | re.S):
        resources = re.search(r"resources: (.*)", body)
        blocks.setdefault(rule, []).append(resources.group(1) if resources else "")
    return blocks


@pytest.mark.cluster
@pytest.mark.parametrize("config", PAPER_CONFIGS)
def test_the_paper_graph_builds_through_the_slurm_profile(repo_root, config):
    # `--quiet host` lists every job with its resources, which the default profile's quiet console hides.
    result = snakemake(repo_root, "--profile", "profiles/slurm", "--configfile", config, "-n", "--forceall",
                       "--quiet", "host")
    assert result.returncode == 0, result.stderr + result.stdout
    jobs = job_blocks(result.stdout)
    assert len(jobs["train"]) == len(jobs["evaluate"]) == 9  # 3 arms x seeds 42 / 0 / 420
    gpus = 2 if "14b" in config else 1  # the 14B's stages start a vLLM server on a GPU of its own
    for rule in ("sft", "train", "evaluate", "evaluate_sft"):
        assert all(f"gpu={gpus}" in r and "slurm_partition=gpu" in r for r in jobs[rule]), rule
    for rule in ("prepare_data", "plot_learning_curves", "cpi_theory", "analyze"):
        assert all("gpu=" not in r and "slurm_partition=cpu" in r for r in jobs[rule]), rule


def slurm_partition() -> str | None:
    """The default partition of a reachable SLURM controller, else None."""
    if shutil.which("sinfo") is None:
        return None
    result = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=30)
    names = [p for p in result.stdout.split() if p] if result.returncode == 0 else []
    default = [p.rstrip("*") for p in names if p.endswith("*")]
    return (default or [p for p in names])[0] if names else None


@pytest.mark.slurm
def test_the_smoke_study_runs_on_a_local_slurm_cluster(repo_root, tmp_path):
    partition = slurm_partition()
    if partition is None:
        if os.environ.get("RESETRL_REQUIRE_SLURM"):  # CI started a cluster: a silent skip would hide a failure
            pytest.fail("RESETRL_REQUIRE_SLURM is set but no SLURM controller answers sinfo")
        pytest.skip("no SLURM controller answers sinfo (CI starts one: tests/slurm/start_cluster.sh)")
    work = tmp_path / "repo"
    shutil.copytree(repo_root, work, ignore=shutil.ignore_patterns(".venv*", "results", ".snakemake", ".git", ".dvc"))
    # The smoke jobs are CPU-only: no GPU request and small limits, on the cluster's partition.
    overrides = [f"{rule}:{key}={value}" for rule in ("sft", "train", "evaluate", "evaluate_sft")
                 for key, value in (("gpu", 0), ("slurm_partition", partition), ("mem_mb", 1000),
                                    ("cpus_per_task", 1))]
    result = snakemake(
        work, "--profile", "profiles/slurm", "--configfile", "configs/smoke.yaml", "--jobs", "4",
        "--default-resources", f"slurm_partition={partition}", "mem_mb=1000", "runtime=30", "cpus_per_task=1",
        "--set-resources", *overrides, "--set-threads", "sft=1", "train=1", "evaluate=1", "evaluate_sft=1",
        # Poll job states every second (the plugin's default 40 s suits a busy real cluster, not this one).
        "--latency-wait", "10", "--slurm-init-seconds-before-status-checks", "1",
        "--quiet", "host", timeout=1500)  # every job's details, as before the default profile's quiet console
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-6000:]
    assert (work / "results" / "smoke" / "RESULTS.md").exists()  # the smoke overlay's own results root
    submitted = re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+)", log)
    assert len(submitted) >= 10, log[-3000:]  # every stage ran as its own sbatch job
