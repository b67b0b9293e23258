"""The char tokenizer and the tiny policy round-trip through save_pretrained / Auto classes, with
the model card and stop settings that make a checkpoint usable outside the project."""

import json

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from resetrl.core.model import count_parameters, save_policy
from resetrl.core.response_format import THOUGHT_END
from resetrl.core.tokenizer import ThoughtDelimiter, target_ids

TEXT = "Compute left to right: 13 *3\n13*3=39 \\boxed{39}" + THOUGHT_END


def test_tokenizer_is_char_level_with_one_delimiter_token(tokenizer):
    ids = tokenizer.encode(TEXT, add_special_tokens=False)
    assert len(ids) == len(TEXT) - len(THOUGHT_END) + 1
    assert ids[-1] == ThoughtDelimiter(tokenizer).single_id
    assert tokenizer.decode(ids) == TEXT
    assert tokenizer.convert_ids_to_tokens(ids[:3]) == ["C", "o", "m"]


def test_thought_boundaries_survive_default_decoding(tokenizer, tmp_path):
    """Servers and `decode(skip_special_tokens=True)` drop special tokens: the delimiter is not one."""
    ids = tokenizer.encode(TEXT, add_special_tokens=False) + [tokenizer.eos_token_id]
    assert tokenizer.decode(ids, skip_special_tokens=True) == TEXT
    tokenizer.save_pretrained(tmp_path)
    assert AutoTokenizer.from_pretrained(tmp_path).decode(ids, skip_special_tokens=True) == TEXT


def test_training_targets_end_with_eos(tokenizer):
    ids = target_ids(tokenizer, TEXT)
    assert ids[-1] == tokenizer.eos_token_id and ids[:-1] == tokenizer.encode(TEXT, add_special_tokens=False)


def test_checkpoint_carries_a_model_card_and_stops_at_eos(tiny_model, tokenizer, model_card, tmp_path):
    save_policy(tiny_model, tokenizer, tmp_path / "ckpt", model_card.with_scores({"pass@1": 0.25, "unmeasured": None}))
    card = (tmp_path / "ckpt/README.md").read_text()
    assert card.startswith("---\nlibrary_name: transformers")
    assert "| arm | grpo |" in card and "| seed | 3 |" in card and "| validation pass@1 | 0.2500 |" in card
    assert "unmeasured" not in card and "base_model" not in card  # no unknown score, no base for a from-scratch model
    assert "--dtype float32" in card and THOUGHT_END in card
    assert '"max_tokens": 48' in card and "max_tokens=48" in card  # vLLM's API reads no max_new_tokens
    assert "was not measured" in card  # no EOS measurement given: the card does not claim one
    generation = json.loads((tmp_path / "ckpt/generation_config.json").read_text())
    assert (generation["eos_token_id"], generation["max_new_tokens"]) == (tokenizer.eos_token_id, 48)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt")
    out = model.generate(torch.tensor([[10, 11, 12]]), do_sample=False)
    assert out.shape[1] <= 3 + 48  # the card's budget holds without any argument


def test_the_card_states_the_measured_eos_share(tiny_model, tokenizer, model_card, tmp_path):
    save_policy(tiny_model, tokenizer, tmp_path / "all", model_card.with_eos({"eos": 10, "chains": 10}))
    assert "ends in EOS on 10 of 10 validation problems (100%), so plain generation stops where the project " \
        "stops" in (tmp_path / "all/README.md").read_text()
    save_policy(tiny_model, tokenizer, tmp_path / "some", model_card.with_eos({"eos": 3, "chains": 10}))
    card = (tmp_path / "some/README.md").read_text()
    assert "3 of 10 validation problems (30%)" in card and "cut each response after the thought" in card
    assert "stops where the project stops" not in card


def test_unknown_characters_map_to_unk(tokenizer):
    ids = tokenizer.encode("1é2", add_special_tokens=False)
    assert ids[1] == tokenizer.unk_token_id


def test_checkpoint_loads_with_auto_classes(tiny_model, tokenizer, model_card, tmp_path):
    save_policy(tiny_model, tokenizer, tmp_path / "ckpt", model_card)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt")
    tok = AutoTokenizer.from_pretrained(tmp_path / "ckpt")
    ids = torch.tensor([tok.encode(TEXT, add_special_tokens=False)])
    assert tok.encode(TEXT, add_special_tokens=False) == tokenizer.encode(TEXT, add_special_tokens=False)
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, tiny_model(ids).logits)
    assert count_parameters(model) == count_parameters(tiny_model)


def test_save_replaces_a_checkpoint_atomically(tiny_model, tokenizer, model_card, tmp_path):
    save_policy(tiny_model, tokenizer, tmp_path / "ckpt", model_card)
    with torch.no_grad():
        next(tiny_model.parameters()).add_(1.0)
    save_policy(tiny_model, tokenizer, tmp_path / "ckpt", model_card)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt")
    assert torch.equal(next(reloaded.parameters()), next(tiny_model.parameters()))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]
