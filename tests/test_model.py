"""The char tokenizer and the tiny policy round-trip through save_pretrained / Auto classes."""

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from resetrl.model import count_parameters, save_policy
from resetrl.task import THOUGHT_END
from resetrl.tokenizer import ThoughtDelimiter

TEXT = "Compute left to right: 13 *3\n13*3=39 \\boxed{39}" + THOUGHT_END


def test_tokenizer_is_char_level_with_one_delimiter_token(tokenizer):
    ids = tokenizer.encode(TEXT, add_special_tokens=False)
    assert len(ids) == len(TEXT) - len(THOUGHT_END) + 1
    assert ids[-1] == ThoughtDelimiter(tokenizer).single_id
    assert tokenizer.decode(ids) == TEXT
    assert tokenizer.convert_ids_to_tokens(ids[:3]) == ["C", "o", "m"]


def test_unknown_characters_map_to_unk(tokenizer):
    ids = tokenizer.encode("1é2", add_special_tokens=False)
    assert ids[1] == tokenizer.unk_token_id


def test_checkpoint_loads_with_auto_classes(tiny_model, tokenizer, tmp_path):
    save_policy(tiny_model, tokenizer, tmp_path / "ckpt")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt")
    tok = AutoTokenizer.from_pretrained(tmp_path / "ckpt")
    ids = torch.tensor([tok.encode(TEXT, add_special_tokens=False)])
    assert tok.encode(TEXT, add_special_tokens=False) == tokenizer.encode(TEXT, add_special_tokens=False)
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, tiny_model(ids).logits)
    assert count_parameters(model) == count_parameters(tiny_model)


def test_save_replaces_a_checkpoint_atomically(tiny_model, tokenizer, tmp_path):
    save_policy(tiny_model, tokenizer, tmp_path / "ckpt")
    with torch.no_grad():
        next(tiny_model.parameters()).add_(1.0)
    save_policy(tiny_model, tokenizer, tmp_path / "ckpt")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt")
    assert torch.equal(next(reloaded.parameters()), next(tiny_model.parameters()))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]
