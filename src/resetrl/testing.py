"""Tiny local stand-ins for hub checkpoints (tests, benchmarks, the GPU check), no downloads: a
random Qwen2 model with a byte-level BPE tokenizer trained here, which splits the thought delimiter
into several tokens and carries a chat template, saved like a hub directory."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

from resetrl.core.response_format import THOUGHT_END
from resetrl.rl.batch import pack_sequences, policy_logprobs_BT
from resetrl.rl.localization import INSTRUCTION
from resetrl.tasks.sources import THOUGHT_PROMPT

CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
ANSWER = f"3*4=12{THOUGHT_END}\\boxed{{12}}{THOUGHT_END}"


def build_bpe_tokenizer() -> PreTrainedTokenizerFast:
    corpus = [THOUGHT_PROMPT.format(question="What is 3*4?"), INSTRUCTION, ANSWER,
              "Compute left to right: 13 *3 -4\n", "Step 1: 13*3=39 Step 2: 39-4=35"] * 20
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=320, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|endoftext|>",
                                        pad_token="<|endoftext|>", padding_side="left")
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def save_tiny_hub_model(path: str | Path, seed: int = 0) -> Path:
    """A directory laid out like a hub checkpoint: Qwen2 (q/k/v biases, grouped-query attention,
    head dim 32 as vLLM's CPU attention needs)."""
    tokenizer = build_bpe_tokenizer()
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                         tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return Path(path)


def memorize(model, prompt_ids, response_ids, max_steps=400):
    """Train the random model until greedy decoding reproduces one response: until the argmax after each
    teacher-forced prefix is the next token (how many steps that takes depends on the float kernels)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    batch = pack_sequences([prompt_ids], [response_ids + [0]], [0], 0)
    ids = torch.tensor([prompt_ids + response_ids])
    for _ in range(max_steps):
        model.eval()
        with torch.no_grad():
            if model(input_ids=ids).logits[0, len(prompt_ids) - 1:-1].argmax(-1).tolist() == response_ids:
                return
        model.train()
        loss = -(policy_logprobs_BT(model, batch) * batch.mask_BT).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    raise AssertionError(f"the model did not memorize the response in {max_steps} steps")
