"""Shared setup of the benchmarks: the default-sized policy (random weights: speed does not depend
on skill), prompts of the task, and a JSON writer under results/benchmarks/."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from types import SimpleNamespace

import torch

from resetrl.config import load_params
from resetrl.model import build_model, load_policy
from resetrl.storage import atomic_write_json
from resetrl.task import generate_problems
from resetrl.tokenizer import build_char_tokenizer

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "results" / "benchmarks"


def default_policy(device: str = "cpu", checkpoint: str | None = None):
    """The params.yaml model (random init, or a checkpoint directory) and its tokenizer."""
    params = load_params([REPO / "params.yaml"])
    if checkpoint:
        model, tokenizer = load_policy(checkpoint)
    else:
        tokenizer = build_char_tokenizer()
        model = build_model(params.model, tokenizer)
    return model.to(device).eval(), tokenizer, params


def engine_config(engine: str, batch_size: int = 128, vllm_memory: float = 0.3) -> SimpleNamespace:
    """The `rollout` keys make_engine reads."""
    return SimpleNamespace(engine=engine, batch_size=batch_size, vllm_gpu_memory_utilization=vllm_memory)


def task_prompts(params, tokenizer, n: int, seed: int = 0) -> list[list[int]]:
    """Token ids of n in-distribution problem prompts."""
    t = params.task
    problems = generate_problems(n, seed=seed, min_steps=t.min_steps, max_steps=t.max_steps, start_max=t.start_max,
                                 addend_max=t.addend_max, multiplier_max=t.multiplier_max, value_max=t.value_max,
                                 op_weights=t.op_weights, id_prefix="bench")
    return [tokenizer.encode(p.prompt, add_special_tokens=False) for p in problems]


def timed(fn, repeats: int = 1):
    """Best wall time of `repeats` calls (the machine is shared; the minimum is the least noisy)."""
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def write_result(name: str, result: dict) -> Path:
    result = {"benchmark": name, "torch": torch.__version__, "machine": platform.machine(),
              "threads": torch.get_num_threads(), **result}
    path = OUT_DIR / f"{name}.json"
    atomic_write_json(path, result)
    print(json.dumps(result, indent=1))
    return path
