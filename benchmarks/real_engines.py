"""Benchmark: rollout engines on the real model (SmolLM2-135M), side by side in one process.

Engines: the project's `torch` engine (static KV cache, continuous batching, shared-prefix prefill),
HF `model.generate`, and the project's `vllm` engine (where `import vllm` works). Work, RL-shaped:
(a) `--prompts` x `--chains` chains sampled thought by thought with the study's stop rules;
(b) `--k` suffixes per prompt from a shared prefix (the prompt + the first `--prefix-thoughts`
    thoughts of a chain from (a)), as a reset samples them.
Tokens/s counts every generated token (a cut-back overflowing thought too). `generate` has no
thought stop rules; it gets equal work: the same prompts, num_return_sequences and, per row,
exactly the mean number of tokens the torch engine generated per chain (min = max new tokens).
Next to it, the compute limit of this CPU: matmul FLOP/s on the model's own weight shapes at the
decode batch, limit tokens/s = FLOP/s / (2 x parameters).

vLLM on a CPU needs its own environment (requirements-vllm.txt, docs/engines.md "vLLM engine"); run there
to get all three engines in one process:
    .venv-vllm/bin/python benchmarks/real_engines.py     # -> results/benchmarks/real_engines.json
With the main .venv the vLLM column records {"available": false, "why": ...}.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import replace

import torch
import torch.nn.functional as F
from common import engine_config, real_policy, task_prompts, timed, write_result

from resetrl.core.model import count_parameters
from resetrl.rollout.engine import SamplingSettings
from resetrl.rollout.factory import make_engine


def matmul_limit(model, batch: int, repeats: int) -> dict:
    """FLOP/s of the model's weight matmuls ([batch x in] @ [in x out]) and the tokens/s they allow.
    Shapes as the torch engine runs them: q|k|v and gate|up fused, o, down, the vocab head."""
    cfg = model.config
    E, M, V = cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size
    kv = cfg.num_key_value_heads * (getattr(cfg, "head_dim", None) or E // cfg.num_attention_heads)
    shapes = {"qkv": (E, E + 2 * kv), "o": (E, E), "gate_up": (E, 2 * M), "down": (M, E), "head": (E, V)}
    per_token = {"qkv": cfg.num_hidden_layers, "o": cfg.num_hidden_layers, "gate_up": cfg.num_hidden_layers,
                 "down": cfg.num_hidden_layers, "head": 1}
    out, seconds, flops = {}, 0.0, 0.0
    for name, (n_in, n_out) in shapes.items():
        x, w = torch.randn(batch, n_in), torch.randn(n_out, n_in)
        F.linear(x, w)  # warm up the kernel
        calls = max(1, int(2e9 / (2 * batch * n_in * n_out)))  # ~2 GFLOP per timing
        best = min(_time_calls(lambda x=x, w=w: F.linear(x, w), calls) for _ in range(repeats))
        out[name] = {"shape": f"[{batch} x {n_in}] @ [{n_in} x {n_out}]",
                     "gflop_per_s": 2 * batch * n_in * n_out / best / 1e9}
        seconds += per_token[name] * best
        flops += per_token[name] * 2 * batch * n_in * n_out
    params = count_parameters(model)
    flop_per_s = flops / seconds  # the model's mix of shapes, each weighted by its FLOPs
    return {"batch": batch, "shapes": out, "model_mix_gflop_per_s": flop_per_s / 1e9, "parameters": params,
            "limit_tokens_per_s": flop_per_s / (2 * params),
            "note": "weight matmuls only: attention over the KV cache, sampling and prefill are extra work"}


def _time_calls(fn, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - started) / calls


def generate_rows(model, tokenizer, contexts: list[list[int]], n: int, new_tokens: int, s: SamplingSettings,
                  batch: int) -> int:
    """`model.generate` with n samples per context, exactly `new_tokens` each (EOS ignored), left-padded
    batches of at most `batch` rows. Returns the tokens generated."""
    pad = tokenizer.pad_token_id
    per_call = max(1, batch // n)
    total = 0
    for start in range(0, len(contexts), per_call):
        part = contexts[start:start + per_call]
        width = max(len(c) for c in part)
        ids = torch.tensor([[pad] * (width - len(c)) + c for c in part])
        mask = torch.tensor([[0] * (width - len(c)) + [1] * len(c) for c in part])
        with torch.no_grad():
            out = model.generate(ids, attention_mask=mask, do_sample=True, temperature=s.temperature, top_p=s.top_p,
                                 top_k=0, num_return_sequences=n, max_new_tokens=new_tokens,
                                 min_new_tokens=new_tokens, pad_token_id=pad)
        total += out[:, width:].numel()
    return total


def engine_case(engine, requests, n: int, s: SamplingSettings, repeats: int) -> tuple[dict, list]:
    def run():
        return engine.generate(requests, n, s, torch.Generator().manual_seed(0))
    seconds, groups = timed(run, repeats)
    chains = [c for g in groups for c in g]
    tokens = sum(c.n_generated for c in chains)
    finish = {}
    for c in chains:
        finish[c.finish] = finish.get(c.finish, 0) + 1
    row = {"seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds, "chains": len(chains),
           "prefilled_tokens": sum(c.n_prefilled for c in chains), "finish": finish}
    return row, groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None,
                        help="model directory (default: the study's seed-0 warm start if present, else the base model)")
    parser.add_argument("--prompts", type=int, default=8, help="prompts of workload (a) and (b)")
    parser.add_argument("--chains", type=int, default=8, help="chains per prompt in (a)")
    parser.add_argument("--k", type=int, default=4, help="suffixes per shared prefix in (b)")
    parser.add_argument("--prefix-thoughts", type=int, default=2, help="thoughts of a chain in the prefix of (b)")
    parser.add_argument("--batch", type=int, default=None, help="rows sampled together (default: prompts x chains)")
    parser.add_argument("--max-thoughts", type=int, default=None, help="override rollout.max_thoughts (dev runs)")
    parser.add_argument("--max-tokens", type=int, default=None, help="override rollout.max_thought_tokens (dev runs)")
    parser.add_argument("--engines", default="torch,generate,vllm", help="comma-separated subset to run")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1, as runtime.threads: 2 threads collapse when the other core is busy)")
    parser.add_argument("--repeats", type=int, default=1, help="best of this many timings per case")
    parser.add_argument("--vllm-memory", type=float, default=0.3, help="vLLM gpu_memory_utilization")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    overrides = tuple(f"rollout.{k}={v}" for k, v in (("max_thoughts", args.max_thoughts),
                                                      ("max_thought_tokens", args.max_tokens)) if v is not None)
    model, tokenizer, params, model_dir = real_policy(args.model, overrides=overrides)
    batch = args.batch or args.prompts * args.chains
    s = replace(SamplingSettings.from_config(params.rollout), batch_size=batch)
    prompts = task_prompts(params, tokenizer, args.prompts)
    engines = args.engines.split(",")
    result = {"model": str(model_dir), "parameters": count_parameters(model), "batch": batch,
              "sampling": {"temperature": s.temperature, "top_p": s.top_p, "max_thoughts": s.max_thoughts,
                           "max_thought_tokens": s.max_thought_tokens, "response_budget": s.response_budget},
              "prompt_tokens_mean": sum(map(len, prompts)) / len(prompts),
              "a_chains": {"prompts": args.prompts, "chains_per_prompt": args.chains},
              "b_shared_prefix": {"prompts": args.prompts, "k": args.k, "prefix_thoughts": args.prefix_thoughts},
              "compute_limit": matmul_limit(model, batch, repeats=3)}
    print(f"compute limit: {result['compute_limit']['limit_tokens_per_s']:.0f} tokens/s")

    # The torch engine first: its chains of (a) give the prefixes of (b) and the generate budgets.
    torch_engine = make_engine(engine_config("torch", batch), model, tokenizer)
    torch_engine.generate([(prompts[0], [])], 1, replace(s, max_thoughts=1, max_thought_tokens=4))  # warm-up
    a_torch, groups = engine_case(torch_engine, [(p, []) for p in prompts], args.chains, s, args.repeats)
    result["a_chains"]["torch"] = a_torch
    prefixes = []
    for g in groups:  # the first chain with a thought to resample after the prefix
        c = next((c for c in g if len(c.thought_ends) > args.prefix_thoughts), g[0])
        cut = c.thought_ends[min(args.prefix_thoughts, len(c.thought_ends)) - 1] if c.thought_ends else 0
        prefixes.append(c.response_ids[:cut])
    requests_b = [(p, x) for p, x in zip(prompts, prefixes)]
    result["b_shared_prefix"]["prefix_tokens_mean"] = sum(map(len, prefixes)) / len(prefixes)
    b_torch, _ = engine_case(torch_engine, requests_b, args.k, s, args.repeats)
    result["b_shared_prefix"]["torch"] = b_torch
    print(f"torch engine: (a) {a_torch['tokens_per_s']:.1f} tok/s, (b) {b_torch['tokens_per_s']:.1f} tok/s")

    if "generate" in engines:
        for case, contexts, n, ref in (("a_chains", prompts, args.chains, a_torch),
                                       ("b_shared_prefix", [p + x for p, x in requests_b], args.k, b_torch)):
            new_tokens = max(1, math.ceil(ref["tokens"] / ref["chains"]))
            seconds, tokens = timed(lambda c=contexts, n=n, t=new_tokens: generate_rows(
                model, tokenizer, c, n, t, s, batch), args.repeats)
            result[case]["generate"] = {"seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds,
                                        "max_new_tokens": new_tokens,
                                        "budget": "min = max new tokens = the torch engine's mean tokens per chain"}
            print(f"generate ({case}): {tokens / seconds:.1f} tok/s")

    if "vllm" in engines:
        try:
            import vllm  # noqa: F401
        except ImportError as err:
            vllm_rows = {"available": False, "why": f"import vllm failed ({err}); run with .venv-vllm/bin/python"}
            result["a_chains"]["vllm"] = result["b_shared_prefix"]["vllm"] = vllm_rows
        else:
            started = time.perf_counter()
            vllm_engine = make_engine(engine_config("vllm", batch, args.vllm_memory), model, tokenizer)
            result["vllm_start_seconds"] = time.perf_counter() - started
            vllm_engine.generate([(prompts[0], [])], 1, replace(s, max_thoughts=1, max_thought_tokens=4))
            result["a_chains"]["vllm"], _ = engine_case(vllm_engine, [(p, []) for p in prompts], args.chains, s,
                                                        args.repeats)
            vllm_engine.reset_prefix_cache()  # (b)'s prefixes must be prefilled, as after a weight sync
            result["b_shared_prefix"]["vllm"], _ = engine_case(vllm_engine, requests_b, args.k, s, args.repeats)
            vllm_engine.close()

    ratios = {}
    for case in ("a_chains", "b_shared_prefix"):
        row, mine = result[case], result[case]["torch"]["tokens_per_s"]
        for other in ("generate", "vllm"):
            if row.get(other, {}).get("tokens_per_s"):
                ratios[f"{case}/torch_engine_over_{other}"] = mine / row[other]["tokens_per_s"]
        ratios[f"{case}/torch_engine_over_compute_limit"] = mine / result["compute_limit"]["limit_tokens_per_s"]
    result["ratios"] = ratios
    write_result("real_engines", result)
    print(" ".join(f"{k}={v:.2f}" for k, v in ratios.items()))


if __name__ == "__main__":  # vLLM spawns workers: the engine must be created under this guard
    main()
