"""Cluster-scale code paths on CPU: a tiny random Qwen2 model with a locally trained byte-level BPE
tokenizer that has a chat template (no downloads), loaded by path like a hub checkpoint; LoRA;
thought delimiters split over several tokens; real-data sources end to end; micro-batched updates."""

import dataclasses
import json
import os

import pytest
import torch
from transformers import AutoModelForCausalLM

from resetrl.core.config import ParamsError, load_params
from resetrl.core.lora import add_lora, is_lora, merged_model, merged_named_weights
from resetrl.core.model import POINTER, initial_policy, load_policy, resolve_base, save_pointer, save_policy
from resetrl.core.params import LoraConfig
from resetrl.core.response_format import THOUGHT_END
from resetrl.core.tokenizer import ThoughtDelimiter
from resetrl.rl.batch import pack_sequences, policy_logprobs_BT
from resetrl.rl.localization import INSTRUCTION, localization_prompt_ids
from resetrl.rl.losses import micro_batch_share, policy_loss
from resetrl.rollout.engine import SamplingSettings
from resetrl.rollout.factory import make_engine
from resetrl.tasks.sources import THOUGHT_PROMPT
from resetrl.testing import ANSWER, memorize, save_tiny_hub_model


@pytest.fixture(scope="module")
def hub_dir(tmp_path_factory):
    return save_tiny_hub_model(tmp_path_factory.mktemp("hub") / "tiny-qwen2")


def model_cfg(params, path):
    return dataclasses.replace(params.model, pretrained=str(path))


def logits(model, ids):
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits


def test_a_model_loads_by_path_and_through_a_pointer(hub_dir, smoke_params, model_card, tmp_path):
    model, tokenizer = initial_policy(model_cfg(smoke_params, hub_dir))
    assert model.config.model_type == "qwen2" and next(model.parameters()).dtype == torch.float32
    relative = os.path.relpath(hub_dir)  # as a params file would give it: relative to the repository root
    save_pointer(relative, tmp_path / "init", model_card, tokenizer)
    # the absolute path, loadable from any directory, and the path as given for a copy elsewhere
    assert json.loads((tmp_path / "init" / POINTER).read_text()) == {"name_or_path": str(hub_dir.resolve()),
                                                                   "relative": relative}
    assert "only points to it" in (tmp_path / "init/README.md").read_text()
    again, _ = load_policy(tmp_path / "init")
    ids = tokenizer.encode("Step 1: 2+2=4", add_special_tokens=False)
    assert torch.equal(logits(model, ids), logits(again, ids))
    assert resolve_base({"name_or_path": "/moved/away", "relative": relative}) == relative
    assert resolve_base({"name_or_path": "org/model-id"}) == "org/model-id"  # a hub id, as is


def test_a_delimiter_split_over_tokens_still_ends_thoughts(hub_dir):
    tokenizer = load_policy(hub_dir)[1]
    assert len(tokenizer.encode(THOUGHT_END, add_special_tokens=False)) > 1  # the case under test
    delimiter = ThoughtDelimiter(tokenizer)
    ids = tokenizer.encode(ANSWER + "tail", add_special_tokens=False)
    ends = delimiter.ends(ids)
    assert len(ends) == 2
    for end in ends:
        assert tokenizer.decode(ids[:end]).endswith(THOUGHT_END)
        assert not tokenizer.decode(ids[:end - 1]).endswith(THOUGHT_END)
    assert not delimiter.completes(tokenizer.encode("</thought", add_special_tokens=False))


def test_torch_engine_stops_at_a_multi_token_delimiter(hub_dir, smoke_params):
    model, tokenizer = load_policy(hub_dir)
    prompt = tokenizer.encode(THOUGHT_PROMPT.format(question="What is 3*4?"), add_special_tokens=False)
    answer = tokenizer.encode(ANSWER, add_special_tokens=False)
    memorize(model, prompt, answer + [tokenizer.eos_token_id])
    engine = make_engine(smoke_params.rollout, model, tokenizer)
    settings = SamplingSettings(1.0, 1.0, max_thoughts=4, max_thought_tokens=24, batch_size=4, greedy=True)
    chain = engine.generate([(prompt, [])], 1, settings)[0][0]
    assert chain.finish == "answer" and chain.text == ANSWER
    assert [tokenizer.decode(chain.response_ids[:e]) for e in chain.thought_ends] == [
        f"3*4=12{THOUGHT_END}", ANSWER]
    # A prefix of complete thoughts counts towards the thought budget.
    first = chain.response_ids[:chain.thought_ends[0]]
    capped = dataclasses.replace(settings, max_thoughts=2)
    resumed = engine.generate([(prompt, first)], 1, capped)[0][0]
    assert resumed.text == ANSWER and resumed.finish == "answer" and resumed.n_reused == len(first)


def lora_step(model):
    """One AdamW step on a policy-gradient loss; returns the batch it used."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-2)
    batch = pack_sequences([[5, 6, 7]], [[8, 9, 10, 11]], [0], 0)
    loss = -(policy_logprobs_BT(model, batch) * batch.mask_BT).sum()
    loss.backward()
    optimizer.step()
    return batch


@pytest.mark.cluster
def test_a_lora_step_changes_only_the_adapters(hub_dir):
    model = add_lora(load_policy(hub_dir)[0], LoraConfig(4, 8.0, 0.0, "all-linear"))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    lora_step(model)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all("lora_" in n for n in changed)
    assert any("lora_B" in n for n in changed)  # B starts at 0: the adapter now changes the output


@pytest.mark.cluster
def test_engines_sample_from_the_adapted_weights_and_checkpoints_round_trip(hub_dir, smoke_params, model_card,
                                                                           tmp_path):
    model, tokenizer = load_policy(hub_dir)
    model = add_lora(model, LoraConfig(4, 8.0, 0.0, ("q_proj", "v_proj", "down_proj")))
    lora_step(model)
    model.eval()
    engine = make_engine(smoke_params.rollout, model, tokenizer)
    settings = SamplingSettings(1.0, 1.0, max_thoughts=1, max_thought_tokens=12, batch_size=4, free_text=True)
    chain = engine.generate([([5, 6, 7], [])], 1, settings, torch.Generator().manual_seed(0))[0][0]
    batch = pack_sequences([chain.prompt_ids], [chain.response_ids], [0], tokenizer.pad_token_id)
    trainer_BT = policy_logprobs_BT(model, batch)[0, len(chain.prompt_ids) - 1:]
    assert torch.allclose(torch.tensor(chain.gen_logprobs), trainer_BT, atol=1e-5)
    merged_names = dict(merged_named_weights(model))
    save_policy(model, tokenizer, tmp_path / "adapter", model_card)  # a checkpoint: the adapter only
    assert (tmp_path / "adapter" / "adapter_config.json").exists()
    card = (tmp_path / "adapter/README.md").read_text()
    assert "AutoPeftModelForCausalLM" in card and "--enable-lora --lora-modules policy=DIR" in card
    generation = json.loads((tmp_path / "adapter/generation_config.json").read_text())
    assert generation["max_new_tokens"] == model_card.max_new_tokens  # the stop settings travel with adapters
    resumed, _ = load_policy(tmp_path / "adapter")
    assert is_lora(resumed) and any(p.requires_grad for p in resumed.parameters())
    ids = [5, 6, 7, 8]
    assert torch.allclose(logits(model, ids), logits(resumed, ids), atol=1e-6)
    plain = merged_model(model)
    assert set(merged_names) == {n for n, _ in plain.named_parameters()}
    assert all(torch.allclose(merged_names[n], p, atol=1e-6) for n, p in plain.named_parameters())
    save_policy(plain, tokenizer, tmp_path / "final", model_card)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "final")
    assert torch.allclose(logits(loaded, ids), logits(resumed, ids), atol=1e-5)


@pytest.mark.cluster
def test_a_lora_checkpoint_loads_as_its_card_says_from_another_directory(hub_dir, model_card, tmp_path,
                                                                        monkeypatch):
    # The base as a params file names it: a path relative to where the run started.
    monkeypatch.chdir(hub_dir.parent)
    model, tokenizer = load_policy(hub_dir.name)
    model = add_lora(model, LoraConfig(4, 8.0, 0.0, ("q_proj", "v_proj")))
    lora_step(model)
    model.eval()
    save_policy(model, tokenizer, tmp_path / "ckpt", model_card)
    monkeypatch.chdir(tmp_path)  # elsewhere: the relative base path no longer resolves from here
    card = (tmp_path / "ckpt/README.md").read_text()
    block = card.split("## Load")[1].split("```python\n")[1].split("```")[0]
    prompt = "Step 1: 2+2=4"
    scope = {"DIR": str(tmp_path / "ckpt"), "prompt": prompt}
    exec(block, scope)  # the card's own load-and-generate code, as a user runs it  # noqa: S102
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").input_ids
    assert torch.allclose(logits(scope["model"], ids[0].tolist()), logits(model, ids[0].tolist()), atol=1e-5)
    assert torch.equal(scope["out"], model.generate(ids, do_sample=False))  # greedy, the card's stop settings


def test_localization_prompt_is_one_chat_templated_user_turn(hub_dir):
    tokenizer = load_policy(hub_dir)[1]
    text = tokenizer.decode(localization_prompt_ids(tokenizer, "What is 3*4?\n", ["3*4=11", "\\boxed{11}"]))
    assert text.startswith("<|im_start|>user\nProblem: What is 3*4?\nStep 1: 3*4=11\nStep 2: \\boxed{11}\n")
    assert INSTRUCTION in text and text.endswith("<|im_end|>\n<|im_start|>assistant\n")


@pytest.mark.parametrize("kind", ["clip_token_mean", "pg_seq_mean"])
def test_micro_batches_accumulate_the_minibatch_gradient(tiny_model, kind):
    batch = pack_sequences([[5, 6], [7], [8, 9, 10], [11]], [[12, 13, 14], [15], [16, 17], [18, 19, 20, 21]],
                           [0, 0, 1, 0], 0)
    adv_BT = torch.tensor([1.0, -0.5, 0.3, -1.2])[:, None].expand_as(batch.mask_BT)
    old_BT = policy_logprobs_BT(tiny_model, batch).detach() - 0.1

    def grads(micro: int) -> list[torch.Tensor]:
        tiny_model.zero_grad()
        for rows, sub in batch.micro_batches(micro):
            loss, _ = policy_loss(kind, policy_logprobs_BT(tiny_model, sub), old_BT[rows], adv_BT[rows], sub.mask_BT,
                                  clip_eps=0.2, dual_clip=3.0)
            (loss * micro_batch_share(kind, sub.mask_BT, batch.mask_BT)).backward()
        return [p.grad.clone() for p in tiny_model.parameters()]

    whole, parts = grads(0), grads(3)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(whole, parts))
    assert any(a.abs().sum() > 0 for a in whole)


def test_real_data_sources_reject_what_needs_the_step_checker(repo_root, tmp_path):
    overlay = tmp_path / "o.yaml"
    overlay.write_text("task: {source: reasoning_gym}\nsft: {steps: 0}\n")
    message = error_of(repo_root / "params.yaml", overlay)
    assert "oracle or demo selector or process rewards" in message and "task.source" in message
    overlay.write_text("task: {source: numina}\nstudy: {methods: [grpo, srpo], ablations: []}\n")
    message = error_of(repo_root / "params.yaml", overlay)
    assert "sft.steps" in message
    # Without benchmark files the ood split would be empty and evaluation fail at the end of the study.
    assert "task.eval_files" in message and "name at least one" in message


def error_of(*paths) -> str:
    with pytest.raises(ParamsError) as info:
        load_params(list(paths))
    return str(info.value)


@pytest.mark.cluster
def test_real_data_pipeline_end_to_end(hub_dir, repo_root, tmp_path):
    """reasoning-gym problems, two benchmark files, a pretrained model by path, no SFT, LoRA, SRPO
    with the verifier pool: every stage's Python entry point, in order."""
    from resetrl.rl.evaluation import evaluate_checkpoint
    from resetrl.rl.trainer import RLTrainer
    from resetrl.rl.warmstart import run_sft
    from resetrl.tasks.splits import load_split, prepare_data

    for name, answer in (("bench_a", "12"), ("bench_b", "7")):
        rows = [{"problem": f"What is {answer}?", "answer": answer, "id": i} for i in range(3)]
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    overlay = tmp_path / "real.yaml"
    overlay.write_text(f"""
study: {{methods: [grpo, srpo], ablations: [], seeds: [0]}}
task: {{source: reasoning_gym, n_train: 12, n_val: 4, n_test: 4,
        reasoning_gym: {{datasets: [chain_sum, basic_arithmetic], seed: 0}},
        eval_files: {{bench_a: {tmp_path / 'bench_a.jsonl'}, bench_b: {tmp_path / 'bench_b.jsonl'}}}}}
model: {{pretrained: {hub_dir}}}
sft: {{steps: 0}}
rollout: {{max_thoughts: 3, max_thought_tokens: 8, batch_size: 16}}
rl: {{steps: 2, prompts_per_step: 2, group_size: 4, minibatches: 2, eval_every: 1, save_every: 1,
      localization_max_tokens: 8, lora: {{rank: 4, alpha: 8}}}}
runtime: {{verify_workers: 1, micro_batch_size: 2}}
""")
    params = load_params([repo_root / "params.yaml", repo_root / "configs" / "smoke.yaml", overlay])
    prepare_data(params.task, tmp_path / "data")
    questions = [{p.question for p in load_split(tmp_path / "data", s)} for s in ("train", "val", "test")]
    assert [len(q) for q in questions] == [12, 4, 4]
    assert not (questions[0] & questions[1] or questions[0] & questions[2] or questions[1] & questions[2])
    summary = run_sft(params, tmp_path / "data", tmp_path / "sft")
    assert summary["loc/heldout_exact_match"] is None  # no step checker, no held-out localization
    assert (tmp_path / "sft" / "model" / POINTER).exists()  # the pretrained model is not copied
    history = RLTrainer(params, "srpo", 0, tmp_path / "sft" / "model", tmp_path / "data", tmp_path / "run").run()
    steps = [r for r in history if "train/reward" in r]
    assert len(steps) == 2 and all(r["verify/ok"] + r["verify/no_answer"] > 0 for r in steps)
    assert all(r["verify/timeout"] == 0 for r in steps)
    final = AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "model")  # merged, no adapter
    assert not (tmp_path / "run" / "model" / "adapter_config.json").exists() and final.config.model_type == "qwen2"
    metrics, outcomes = evaluate_checkpoint(params, tmp_path / "run" / "model", tmp_path / "data", seed=0)
    assert metrics["ood"]["problems"] == 6 and len(outcomes["ood"]["greedy"]) == 6
    assert sum(outcomes["test"]["greedy"]) / len(outcomes["test"]["ids"]) == metrics["test"]["greedy_pass1"]
    assert set(metrics["ood"]["by_source"]) == {"eval/bench_a", "eval/bench_b"}
    assert 0.0 <= metrics["test"]["greedy_pass1"] <= 1.0
