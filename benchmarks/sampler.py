"""Benchmark of the `torch` rollout engine on the default model (one process, side by side).

1. Against `model.generate`, same model, batch size and prompts:
   - fixed lengths (EOS ignored on both sides, every row samples `--new-tokens`): the decoding step
     alone;
   - variable lengths (rows stop at EOS or the budget, as rollouts do) over `--batches` batches of
     prompts: `generate` runs each batch until its longest row ends, the engine refills finished
     rows. Tokens/s counts the tokens each side generated up to EOS; this is the headline
     `speedup_vs_generate`.
2. Shared prefix: K suffixes from one prompt + prefix against K fresh chains from the prompt alone.
   The time ratio should follow the ratio of generated tokens (the prefix costs one prefill, not
   K); the same suffixes requested as K separate one-chain requests show what sharing saves.

Run: `python benchmarks/sampler.py` -> results/benchmarks/sampler.json; `speedup_vs_generate=<x>`
is printed last. `--model DIR` benchmarks a trained checkpoint (e.g. results/sft/seed0/model) instead of
random weights, whose lengths are closer to real chains.
"""

from __future__ import annotations

import argparse

import torch
from common import default_policy, task_prompts, timed, write_result

from resetrl.rollout.engine import SamplingSettings
from resetrl.rollout.torch_engine import TorchEngine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=None, help="rows per batch (default: rollout.batch_size)")
    parser.add_argument("--new-tokens", type=int, default=96)
    parser.add_argument("--prefix-tokens", type=int, default=48, help="prefix length of the shared-prefix test")
    parser.add_argument("--k", type=int, default=4, help="suffixes per prefix")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", type=int, default=4, help="batches of prompts in the variable-length test")
    parser.add_argument("--model", default=None, help="checkpoint directory (default: random weights)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer, params = default_policy(args.device, args.model)
    engine = TorchEngine(model, tokenizer)
    batch = args.batch or params.rollout.batch_size
    temperature, top_p = params.rollout.temperature, params.rollout.top_p
    prompts = task_prompts(params, tokenizer, batch * args.batches)
    n_new = args.new_tokens

    # 1. Throughput: the same left-padded batch through model.generate.
    def fixed_length(max_tokens: int, rows: int = batch) -> SamplingSettings:
        return SamplingSettings.for_free_text(temperature, top_p, max_tokens, rows, ignore_eos=True)

    def run_engine(rows: list[list[int]], settings: SamplingSettings) -> int:
        groups = engine.generate([(p, []) for p in rows], 1, settings, torch.Generator().manual_seed(0))
        return sum(c.n_generated for g in groups for c in g)

    def run_generate(rows: list[list[int]], fixed: bool, max_new: int) -> int:
        """Sampled tokens up to and including EOS, batch by batch (left-padded)."""
        total = 0
        for start in range(0, len(rows), batch):
            part = rows[start:start + batch]
            width = max(len(p) for p in part)
            ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(p)) + p for p in part], device=args.device)
            mask = (ids != tokenizer.pad_token_id).long()
            with torch.no_grad():
                out = model.generate(ids, attention_mask=mask, do_sample=True, temperature=temperature, top_p=top_p,
                                     top_k=0, max_new_tokens=max_new, min_new_tokens=max_new if fixed else 0,
                                     pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
            new_BN = out[:, width:]
            ended_BN = (new_BN == tokenizer.eos_token_id).long().cumsum(-1)
            total += int(((ended_BN == 0) | ((ended_BN == 1) & (new_BN == tokenizer.eos_token_id))).sum())
        return total

    first = prompts[:batch]
    t_engine, tokens_engine = timed(lambda: run_engine(first, fixed_length(n_new)), args.repeats)
    t_generate, tokens_generate = timed(lambda: run_generate(first, True, n_new), args.repeats)
    assert tokens_engine == tokens_generate == batch * n_new, (tokens_engine, tokens_generate)
    speedup_fixed = (tokens_engine / t_engine) / (tokens_generate / t_generate)

    budget_var = params.rollout.max_thoughts * params.rollout.max_thought_tokens
    var_settings = SamplingSettings.for_free_text(temperature, top_p, budget_var, batch)
    tv_engine, var_engine = timed(lambda: run_engine(prompts, var_settings), args.repeats)
    tv_generate, var_generate = timed(lambda: run_generate(prompts, False, budget_var), args.repeats)
    speedup = (var_engine / tv_engine) / (var_generate / tv_generate)

    # 2. Shared prefix: groups of K from prompt + prefix vs K fresh chains; the same total budget.
    n_groups = max(batch // args.k, 1)
    group_prompts = prompts[:n_groups]
    prefix = tokenizer.encode("1 + 2 = 3</thought>" * args.prefix_tokens, add_special_tokens=False)[:args.prefix_tokens]
    budget = n_new + args.prefix_tokens  # the budget includes the prefix: suffixes generate n_new
    settings = fixed_length(budget, n_groups * args.k)
    fresh = [(p, []) for p in group_prompts]
    shared = [(p, prefix) for p in group_prompts]
    unshared = [(p, prefix) for p in group_prompts for _ in range(args.k)]
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    t_fresh, fresh_chains = timed(lambda: engine.generate(fresh, args.k, settings, gen()), args.repeats)
    t_shared, shared_chains = timed(lambda: engine.generate(shared, args.k, settings, gen()), args.repeats)
    t_unshared, unshared_chains = timed(lambda: engine.generate(unshared, 1, settings, gen()), args.repeats)
    count = lambda groups, attr: sum(getattr(c, attr) for g in groups for c in g)  # noqa: E731
    token_ratio = count(shared_chains, "n_generated") / count(fresh_chains, "n_generated")
    time_ratio = t_shared / t_fresh

    write_result("sampler", {
        "device": args.device,
        "model_parameters": sum(p.numel() for p in model.parameters()),
        "batch": batch,
        "fixed_lengths": {
            "new_tokens": n_new, "engine_seconds": t_engine, "generate_seconds": t_generate,
            "engine_tokens_per_s": tokens_engine / t_engine, "generate_tokens_per_s": tokens_generate / t_generate,
            "speedup": speedup_fixed,
        },
        "variable_lengths": {
            "sequences": len(prompts), "budget": budget_var,
            "engine_tokens": var_engine, "generate_tokens": var_generate,
            "engine_seconds": tv_engine, "generate_seconds": tv_generate,
            "engine_tokens_per_s": var_engine / tv_engine, "generate_tokens_per_s": var_generate / tv_generate,
            "speedup": speedup,
        },
        "speedup_vs_generate": speedup,
        "shared_prefix": {
            "groups": n_groups, "k": args.k, "prefix_tokens": len(prefix), "budget": budget,
            "fresh_seconds": t_fresh, "shared_seconds": t_shared, "unshared_seconds": t_unshared,
            "generated_token_ratio": token_ratio, "time_ratio": time_ratio,
            "time_over_token_ratio": time_ratio / token_ratio,
            "prefilled_tokens_shared": count(shared_chains, "n_prefilled"),
            "prefilled_tokens_unshared": count(unshared_chains, "n_prefilled"),
            "sharing_speedup": t_unshared / t_shared,
        },
    })
    print(f"shared_prefix time_ratio={time_ratio:.3f} token_ratio={token_ratio:.3f} "
          f"(x{time_ratio / token_ratio:.2f}); sharing saves x{t_unshared / t_shared:.2f}")
    print(f"fixed lengths: x{speedup_fixed:.2f}; variable lengths: x{speedup:.2f}")
    print(f"speedup_vs_generate={speedup:.2f}")


if __name__ == "__main__":
    main()
