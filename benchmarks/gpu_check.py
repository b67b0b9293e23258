"""GPU check (a few minutes on one GPU): engine correctness and tokens/s for the default tiny model
on CUDA. Run: `python benchmarks/gpu_check.py` (or benchmarks/gpu_check.sh) -> results/benchmarks/gpu_check.json.

- torch engine: greedy output equal to `model.generate`, sampled log-probs equal to a forward pass,
  tokens/s against `model.generate` (fixed lengths) at batch 128;
- vllm engine (where vLLM is installed): greedy equal to the torch engine, and after an optimizer
  step plus `sync_weights` greedy equal to the updated trainer model;
- the cluster path on a tiny stand-in for a hub checkpoint (Qwen2, BPE tokenizer that splits the
  thought delimiter): loaded by path in bfloat16, a LoRA step on CUDA that changes only adapter
  weights, and the engines' log-probs against the adapted trainer model;
- the memory plan's estimate of one update (LoRA, one max-length sequence) against the peak CUDA memory the
  update allocates;
- one RL run as two processes through the train stage, as Snakemake starts it (NCCL on two GPUs where the
  machine has them, else gloo on the CPU: NCCL cannot put two ranks on one GPU).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch
from common import REPO, default_policy, engine_config, task_prompts, timed, write_result

from resetrl.core.config import load_params
from resetrl.core.lora import add_lora
from resetrl.core.memory_plan import GIB, plan
from resetrl.core.model import load_policy
from resetrl.core.params import LoraConfig
from resetrl.rl.batch import pack_sequences, policy_logprobs_BT
from resetrl.rollout.engine import SamplingSettings
from resetrl.rollout.factory import make_engine
from resetrl.testing import save_tiny_hub_model


def main() -> None:
    assert torch.cuda.is_available(), "no CUDA device"
    model, tokenizer, params = default_policy("cuda")
    prompts = task_prompts(params, tokenizer, 128)
    engine = make_engine(engine_config("torch"), model, tokenizer)
    out: dict = {"device": torch.cuda.get_device_name()}

    greedy = SamplingSettings.for_free_text(0.0, 1.0, 64, 128)
    chains = [g[0] for g in engine.generate([(p, []) for p in prompts[:16]], 1, greedy)]
    same = 0
    for p, c in zip(prompts[:16], chains):
        ref = model.generate(torch.tensor([p], device="cuda"), do_sample=False, max_new_tokens=c.n_generated,
                             pad_token_id=tokenizer.pad_token_id)[0, len(p):].tolist()
        same += ref[:len(c.gen_ids)] == c.gen_ids
    out["torch_greedy_equal_generate"] = f"{same}/16"

    sampled = [c for g in engine.generate([(p, []) for p in prompts[:32]], 2, SamplingSettings.from_config(
        params.rollout), torch.Generator(device="cpu").manual_seed(0)) for c in g]
    batch = pack_sequences([c.prompt_ids for c in sampled], [c.response_ids for c in sampled], [0] * len(sampled),
                           tokenizer.pad_token_id, [c.gen_logprobs for c in sampled])
    with torch.no_grad():
        gap = ((policy_logprobs_BT(model, batch) - batch.sampled_logp_BT).abs() * batch.sampled_BT).max()
    out["torch_logprob_max_gap"] = float(gap)

    fixed = SamplingSettings.for_free_text(0.7, 0.95, 128, 128, ignore_eos=True)
    t_engine, n = timed(lambda: sum(c.n_generated for g in engine.generate([(p, []) for p in prompts], 1, fixed)
                                    for c in g), 2)
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(p)) + p for p in prompts], device="cuda")
    t_gen, _ = timed(lambda: model.generate(ids, attention_mask=(ids != tokenizer.pad_token_id).long(), do_sample=True,
                                            temperature=0.7, top_p=0.95, top_k=0, max_new_tokens=128,
                                            min_new_tokens=128, pad_token_id=tokenizer.pad_token_id), 2)
    out["torch_tokens_per_s"], out["generate_tokens_per_s"] = n / t_engine, n / t_gen

    if importlib.util.find_spec("vllm") is None:
        out["vllm"] = "not installed"
    else:
        vllm_engine = make_engine(engine_config("vllm"), model, tokenizer)
        req = [(p, []) for p in prompts[:16]]
        g = lambda e: [x[0].gen_ids for x in e.generate(req, 1, greedy)]  # noqa: E731
        out["vllm_greedy_equal_torch"] = g(vllm_engine) == g(engine)
        model.lm_head.weight.grad = torch.randn_like(model.lm_head.weight)
        torch.optim.SGD(model.parameters(), lr=0.5).step()
        vllm_engine.sync_weights(model)
        out["vllm_after_sync_equal_trainer"] = g(vllm_engine) == g(engine)
        t_vllm, n_vllm = timed(lambda: sum(c.n_generated for x in vllm_engine.generate(
            [(p, []) for p in prompts], 1, fixed) for c in x), 2)
        out["vllm_tokens_per_s"] = n_vllm / t_vllm
        vllm_engine.close()
    out["cluster_path"] = cluster_path()
    out["memory_plan"] = memory_plan_check()
    out["two_processes"] = two_process_run()
    write_result("gpu_check", out)


def cluster_path(device: str = "cuda") -> dict:
    """A hub-style checkpoint by path (bf16 on CUDA), one LoRA step, engines on the adapted model."""
    runtime = SimpleNamespace(device=device, dtype="auto")
    model, tokenizer = load_policy(save_tiny_hub_model(tempfile.mkdtemp()), runtime)
    model = add_lora(model, LoraConfig(8, 16.0, 0.0, "all-linear"))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    batch = pack_sequences([[5, 6, 7]], [[8, 9, 10, 11]], [0], tokenizer.pad_token_id)
    loss = -(policy_logprobs_BT(model, batch) * batch.mask_BT).sum()
    loss.backward()
    torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2).step()
    changed = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    model.eval()
    result = {"dtype": str(next(model.parameters()).dtype), "lora_changed_only_adapters":
              bool(changed) and all("lora_" in n for n in changed)}
    settings = SamplingSettings.for_free_text(1.0, 1.0, 16, 8)
    engines = ["torch"] + (["vllm"] if importlib.util.find_spec("vllm") else [])
    for name in engines:
        engine = make_engine(engine_config(name, 8), model, tokenizer)
        chains = [c for g in engine.generate([([5, 6, 7], [])], 4, settings, torch.Generator().manual_seed(0))
                  for c in g]
        packed = pack_sequences([c.prompt_ids for c in chains], [c.response_ids for c in chains], [0] * len(chains),
                                tokenizer.pad_token_id, [c.gen_logprobs for c in chains])
        with torch.no_grad():
            gap = ((policy_logprobs_BT(model, packed) - packed.sampled_logp_BT).abs() * packed.sampled_BT).max()
        result[f"{name}_lora_logprob_max_gap"] = float(gap)
        engine.close()
    return result


def memory_plan_check() -> dict:
    """The plan's `update` term (activations autograd keeps for one sequence) against the peak CUDA memory a LoRA
    update of one sequence of the plan's length allocates above the loaded weights (tiny Qwen2 stand-in, bf16)."""
    hub = save_tiny_hub_model(tempfile.mkdtemp())
    params = load_params([REPO / "params.yaml"], [f"model.pretrained={hub}", "rl.lora.rank=8", "runtime.device=cuda",
                                                  "runtime.dtype=bfloat16", "runtime.micro_batch_size=1",
                                                  "rollout.max_thoughts=4", "rollout.max_thought_tokens=64"])
    estimate = plan(params, ("train",), "grpo")
    update = next(b for name, b in estimate.stages[0].peaks if name.startswith("update"))
    model, tokenizer = load_policy(hub, params.runtime)
    model = add_lora(model, params.rl.lora)
    ids = torch.randint(3, len(tokenizer), (estimate.tokens,)).tolist()
    batch = pack_sequences([ids[:64]], [ids[64:]], [0], tokenizer.pad_token_id)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    (-(policy_logprobs_BT(model, batch) * batch.mask_BT).sum()).backward()
    torch.cuda.synchronize()
    measured = torch.cuda.max_memory_allocated() - before
    return {"tokens": estimate.tokens, "update_estimate_gib": update / GIB, "update_measured_gib": measured / GIB,
            "measured_over_estimate": measured / update}


def two_process_run() -> dict:
    """Two steps of the smoke configuration as one run of two processes, from a 20-step warm start: launch, DDP,
    gathering and checkpoints on this machine's devices (the update's exactness is tests/test_distributed.py's)."""
    from resetrl.rl.warmstart import run_sft
    from resetrl.tasks.splits import prepare_data

    device = "cuda" if torch.cuda.device_count() >= 2 else "cpu"
    files = [REPO / "params.yaml", REPO / "configs/smoke.yaml"]
    work = Path(tempfile.mkdtemp())
    params = load_params(files, ["sft.steps=20", "sft.eval_every=20", f"runtime.device={device}"])
    prepare_data(params.task, work / "data")
    run_sft(params, work / "data", work / "sft")
    sets = [f"runtime.device={device}", "runtime.world_size=2", "rl.steps=2"]
    command = [sys.executable, "-m", "resetrl.stages.train", *(a for f in files for a in ("--params", str(f))),
               *(a for s in sets for a in ("--set", s)), "--method", "grpo", "--seed", "0",
               "--init", str(work / "sft/model"), "--data", str(work / "data"), "--out", str(work / "run")]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=240)
    return {"device": device, "exit": result.returncode, "seconds": time.perf_counter() - started,
            "history_steps": len(json.loads((work / "run/history.json").read_text()))
            if result.returncode == 0 else result.stderr[-2000:]}


if __name__ == "__main__":
    main()
