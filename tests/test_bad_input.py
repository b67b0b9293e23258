"""Bad input fails fast with a message naming the file, line and key; nothing written is lost."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from resetrl.core.storage import DataError
from resetrl.tasks.splits import load_split, prepare_data


def run_stage(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", f"resetrl.stages.{module}", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)


@pytest.fixture()
def bad_overlay(tmp_path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text("rl:\n  steps: 3\n  lrr: 0.1\n")
    return path


def test_unknown_params_key_names_file_line_and_key_before_any_compute(repo_root, tmp_path, bad_overlay):
    out = tmp_path / "data"
    proc = run_stage("prepare_data", "--params", str(repo_root / "params.yaml"), "--params", str(bad_overlay),
                     "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 2
    assert f"{bad_overlay}:3: rl.lrr" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists(), "nothing may be computed or written on bad params"


def test_out_of_range_value_is_rejected(repo_root, tmp_path):
    overlay = tmp_path / "range.yaml"
    overlay.write_text("rollout:\n  temperature: -0.5\n")
    proc = run_stage("prepare_data", "--params", str(repo_root / "params.yaml"), "--params", str(overlay),
                     "--out", str(tmp_path / "d"), cwd=tmp_path)
    assert proc.returncode == 2
    assert f"{overlay}:2: rollout.temperature" in proc.stderr


def test_snakemake_refuses_a_bad_overlay_when_building_the_dag(repo_root, bad_overlay):
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", str(bad_overlay)],
                          cwd=repo_root, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "rl.lrr" in proc.stdout + proc.stderr


def snakemake_dry_run(repo_root: Path, *overlays: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", *map(str, overlays)]
    return subprocess.run(command, cwd=repo_root, capture_output=True, text=True)


def test_a_study_name_that_is_a_path_is_refused_before_the_dag(repo_root, tmp_path):
    # results/.. would be the repo root (results/. the committed study): study.name is one plain name
    # (tests/test_config.py tries the other paths).
    overlay = tmp_path / "escape.yaml"
    overlay.write_text("study:\n  name: '..'\n")
    proc = snakemake_dry_run(repo_root, overlay)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    error = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and error[0].endswith("escape.yaml:2: study.name: '..' does not match "
                                                 "'^[A-Za-z0-9_][A-Za-z0-9_.=+-]*$'"), proc.stderr


def test_a_step_count_past_its_bound_is_refused_before_any_compute(repo_root, tmp_path):
    overlay = tmp_path / "typo.yaml"
    overlay.write_text("rl:\n  lr: 1e-5\n  steps: 1e23\n")  # a whole number to JSON Schema: only the bound refuses it
    out = tmp_path / "data"
    proc = run_stage("prepare_data", "--params", str(repo_root / "params.yaml"), "--params", str(overlay),
                     "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{overlay}:3: rl.steps: 1e+23 is greater than the maximum of 1000000" in proc.stderr
    assert not out.exists()


@pytest.mark.parametrize("kind", ["directory", "binary", "empty"])
def test_an_overlay_snakemake_cannot_read_is_named_by_config_check(repo_root, tmp_path, kind):
    # Snakemake reads --configfile files before the Snakefile runs, so it words these errors itself
    # (docs/pipeline.md quotes each); `python -m resetrl.core.config check` names the file in one line.
    path = {"directory": tmp_path / "overlays", "binary": tmp_path / "model.yaml", "empty": tmp_path / "new.yaml"}[kind]
    if kind == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00" if kind == "binary" else b"# to do\n")
    snakemake = snakemake_dry_run(repo_root, path)
    said = {"directory": f"IsADirectoryError: [Errno 21] Is a directory: '{path}'",
            "binary": "UnicodeDecodeError: 'utf-8' codec can't decode byte",
            "empty": "Config file must be given as JSON or YAML with keys at top level."}[kind]
    assert snakemake.returncode == 1 and said in snakemake.stdout + snakemake.stderr, snakemake.stderr
    check = subprocess.run([sys.executable, "-m", "resetrl.core.config", "check", "params.yaml", str(path)],
                           cwd=repo_root, capture_output=True, text=True)
    expected = {"directory": f"{path}: is a directory, not a params file",
                "binary": f"{path}:1: not UTF-8 text (byte 0x89): a params file is YAML",
                "empty": f"{path}: empty (no YAML mapping): a params file sets at least one key, or is {{}}"}[kind]
    assert (check.returncode, check.stdout, check.stderr) == (2, "", expected + "\n")


@pytest.fixture()
def smoke_data(smoke_params, tmp_path) -> Path:
    prepare_data(smoke_params.task, tmp_path / "data")
    return tmp_path / "data"


def corrupt_line(path: Path, lineno: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[lineno - 1] = text
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("bad", ['{"id": "x"', '[1, 2]', '{"id": "t", "start": 5, "ops": [["/", 2]], "answer": 2}'])
def test_malformed_data_line_names_file_and_line(smoke_data, bad):
    corrupt_line(smoke_data / "val.jsonl", 3, bad)
    with pytest.raises(DataError, match=r"val\.jsonl:3: "):
        load_split(smoke_data, "val")


def test_tampered_answer_is_caught(smoke_data):
    path = smoke_data / "test.jsonl"
    row = json.loads(path.read_text().splitlines()[1])
    row["answer"] += 1
    corrupt_line(path, 2, json.dumps(row))
    with pytest.raises(DataError, match=r"test\.jsonl:2: "):
        load_split(smoke_data, "test")


def test_evaluation_on_corrupt_data_keeps_the_previous_metrics(repo_root, warm_start, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for f in (warm_start / "data").iterdir():
        (data / f.name).write_bytes(f.read_bytes())
    corrupt_line(data / "ood.jsonl", 5, "not json")
    out = tmp_path / "metrics.json"
    out.write_text('{"previous": true}\n')
    proc = run_stage("evaluate", "--params", str(repo_root / "params.yaml"), "--params",
                     str(repo_root / "configs/smoke.yaml"), "--model", str(warm_start / "sft/model"),
                     "--data", str(data), "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 2
    assert "ood.jsonl:5: invalid JSON" in proc.stderr
    assert out.read_text() == '{"previous": true}\n'


def test_a_problem_space_too_small_names_the_key_in_one_line(repo_root, tmp_path):
    overlay = tmp_path / "tiny.yaml"  # one-step additions of 1: a handful of distinct problems
    overlay.write_text("task: {min_steps: 1, max_steps: 1, start_max: 10, addend_max: 1, value_max: 20,\n"
                       "       op_weights: {'+': 1, '-': 0, '*': 0}, final_op_weights: null, n_val: 50}\n")
    proc = run_stage("prepare_data", "--params", str(repo_root / "params.yaml"), "--params", str(overlay),
                     "--out", str(tmp_path / "d"), cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("error: task.n_val (50): only ") and "lower task.n_val" in proc.stderr


@pytest.mark.parametrize("stage, out_flag", [("prepare_data", "--out"), ("evaluate", "--out"), ("train", "--out")])
def test_an_unwritable_output_fails_in_one_line_before_any_compute(repo_root, tmp_path, stage, out_flag):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory\n")
    extra = {"prepare_data": [], "evaluate": ["--model", "missing"],
             "train": ["--method", "grpo", "--seed", "0"]}[stage]
    proc = run_stage(stage, "--params", str(repo_root / "params.yaml"), *extra, out_flag, str(blocker / "out.json"),
                     cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith(f"error: {blocker}") and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_a_full_disk_names_the_file(tmp_path, monkeypatch):
    from resetrl.core import storage

    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage.os, "fsync", no_space)
    with pytest.raises(OSError) as info:
        storage.atomic_write_json(tmp_path / "m.json", {"a": 1})
    assert info.value.filename == str(tmp_path / "m.json") and not list(tmp_path.iterdir())
