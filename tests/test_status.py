"""The study status view: one line per run that has started, with its state."""

import json
import os
import time

from resetrl.status import study_status


def live(run_dir, step, **metrics):
    (run_dir / "live").mkdir(parents=True)
    (run_dir / "live" / "metrics.json").write_text(json.dumps({"step": step, **metrics}))


def test_status_lists_started_runs_with_their_step_and_state(smoke_params, tmp_path):
    steps = smoke_params.rl.steps
    method = smoke_params.study.methods[0]
    live(tmp_path / "sft" / "seed0", smoke_params.sft.steps, eval={"val": {"pass1": 0.25}})
    (tmp_path / "sft" / "seed0" / "summary.json").write_text("{}")
    running = tmp_path / "runs" / method / "seed0"
    live(running, 2, train={"reward": 0.5})
    lines = study_status(tmp_path, smoke_params, stale_s=60)
    assert len(lines) == 2  # runs that never started are not listed
    assert "sft seed0" in lines[0] and "val 0.250" in lines[0] and lines[0].endswith("done")
    assert f"train {method} seed0" in lines[1] and f"2/{steps}" in lines[1] and "reward 0.500" in lines[1]
    assert "running" in lines[1]
    old = time.time() - 3600  # no update for an hour: killed, or waiting to be resumed
    os.utime(running / "live" / "metrics.json", (old, old))
    assert "stopped" in study_status(tmp_path, smoke_params, stale_s=60)[1]


def test_status_reads_the_params_its_snakemake_run_recorded(smoke_params, tmp_path, capsys):
    from resetrl.core.config import ROOT_PARAMS, dump_params
    from resetrl.core.params import Params
    from resetrl.status import main

    method = smoke_params.study.methods[0]
    run = tmp_path / "runs" / method / "seed0"
    live(run, smoke_params.rl.steps)
    (run / "history.json").write_text("[]")
    old = time.time() - 3600
    os.utime(run / "live" / "metrics.json", (old, old))
    main(["--results", str(tmp_path)])  # params.yaml's 50 steps: a finished 4-step smoke run looks stopped
    default_steps = Params().rl.steps  # params.yaml's
    assert f"{smoke_params.rl.steps}/{default_steps}" in (out := capsys.readouterr().out) and "stopped" in out
    (tmp_path / ROOT_PARAMS).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / ROOT_PARAMS).write_text(dump_params(smoke_params, ["params.yaml", "configs/smoke.yaml"]))
    main(["--results", str(tmp_path)])
    out = capsys.readouterr().out
    assert f"train {method} seed0" in out and f"{smoke_params.rl.steps}/{smoke_params.rl.steps}" in out
    assert out.rstrip().endswith("done")
