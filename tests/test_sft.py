"""The warm start's loss mixing and schedule."""

import random

import pytest
import torch

from resetrl.rl.batch import pack_sequences, policy_logprobs_BT
from resetrl.rl.localization import localization_example
from resetrl.rl.losses import masked_mean
from resetrl.rl.warmstart import lr_at, mixed_sft_loss
from resetrl.tasks.procedural import Problem

PROBLEMS = [Problem("a", 13, (("*", 3), ("-", 4)), 35), Problem("b", 20, (("+", 7), ("*", 2), ("-", 5)), 49)]


def rows_of(tokenizer):
    encode = lambda text: tokenizer.encode(text, add_special_tokens=False)  # noqa: E731
    solve = [(encode(p.prompt), encode(p.solution)) for p in PROBLEMS]
    loc = [localization_example(tokenizer, p, random.Random(0))[:2] for p in PROBLEMS]
    return solve, loc


def task_mean(model, tokenizer, rows):
    batch = pack_sequences([r[0] for r in rows], [r[1] for r in rows], [0] * len(rows), tokenizer.pad_token_id)
    return -masked_mean(policy_logprobs_BT(model, batch), batch.mask_BT)


def test_each_task_weighs_by_the_localization_weight(tiny_model, tokenizer):
    solve, loc = rows_of(tokenizer)
    with torch.no_grad():
        mixed = mixed_sft_loss(tiny_model, tokenizer, solve, loc, 0.25)
        expected = 0.75 * task_mean(tiny_model, tokenizer, solve) + 0.25 * task_mean(tiny_model, tokenizer, loc)
    assert mixed.item() == pytest.approx(expected.item(), rel=1e-6)


def test_without_localization_rows_the_loss_is_the_chain_token_mean(tiny_model, tokenizer):
    solve, _ = rows_of(tokenizer)
    with torch.no_grad():
        assert mixed_sft_loss(tiny_model, tokenizer, solve, [], 0.0).item() == pytest.approx(
            task_mean(tiny_model, tokenizer, solve).item(), rel=1e-6)


def test_lr_warms_up_then_decays_to_a_tenth():
    assert lr_at(0, 100, 1.0, 10) == pytest.approx(0.1)
    assert lr_at(9, 100, 1.0, 10) == pytest.approx(1.0)
    assert lr_at(10, 100, 1.0, 10) == pytest.approx(1.0)
    assert lr_at(100, 100, 1.0, 10) == pytest.approx(0.1)
    assert all(lr_at(s, 100, 1.0, 10) >= lr_at(s + 1, 100, 1.0, 10) for s in range(10, 100))


def test_the_warm_start_stops_where_the_project_stops_under_plain_generate(warm_start, greedy_answers):
    """Outside the project (transformers' generate with the saved generation_config, default
    decoding) the warm start's greedy answers are the project's, then EOS: no stop rule needed."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(warm_start / "sft/model").eval()
    tokenizer = AutoTokenizer.from_pretrained(warm_start / "sft/model")
    assert len(greedy_answers) >= 8  # most validation chains end in an answer: the check is not vacuous
    for prompt, text in greedy_answers:
        ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").input_ids
        out = model.generate(ids, do_sample=False)[0, ids.shape[1]:]
        assert out[-1] == tokenizer.eos_token_id
        assert tokenizer.decode(out, skip_special_tokens=True) == text


def test_the_sft_stage_gives_each_study_seed_its_own_warm_start(warm_start, repo_root, tmp_path):
    # Through the stage command, as Snakemake runs it: the study seed offsets the SFT and
    # initialisation seeds, and the stage reads only the keys it declares.
    from resetrl.core.model import load_policy
    from resetrl.stages.sft import main

    def warm(seed: int):
        out = tmp_path / f"seed{seed}"
        main(["--params", str(repo_root / "params.yaml"), "--params", str(repo_root / "configs/smoke.yaml"),
              "--set", "sft.steps=2", "--set", "rl.loc_eval_problems=2", "--data", str(warm_start / "data"),
              "--seed", str(seed), "--out", str(out)])
        assert "| seed | " + str(seed) + " |" in (out / "model/README.md").read_text()
        return dict(load_policy(out / "model")[0].named_parameters())

    seed0, seed1 = warm(0), warm(1)
    assert seed0.keys() == seed1.keys()
    assert not all(torch.equal(seed0[name], seed1[name]) for name in seed0)
