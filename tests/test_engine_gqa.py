"""The torch engine on grouped-query attention (fewer K/V heads than query heads, as SmolLM2, Qwen2 and
Llama checkpoints have): its decoding step packs each K/V head's group of queries into one matmul
instead of copying K/V out to every query head. Small random Llama and Qwen2 models built from a
config (no downloads) are checked against transformers itself: greedy tokens equal to `generate`, and
every next-token logit the engine sampled from equal to a forward pass over the same sequence."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

import resetrl.rollout.torch_engine as sampler
from resetrl.rollout.engine import SamplingSettings
from resetrl.rollout.torch_engine import TorchEngine

NEW_TOKENS = 12
# (architecture, query heads, K/V heads): groups of 2, 3 (SmolLM2-135M has 9 over 3) and 4 queries.
CASES = [("llama", 4, 2), ("llama", 6, 2), ("qwen2", 4, 1)]


def gqa_model(arch: str, n_heads: int, n_kv_heads: int, vocab: int):
    kw = dict(vocab_size=vocab, hidden_size=16 * n_heads, intermediate_size=96, num_hidden_layers=2,
              num_attention_heads=n_heads, num_key_value_heads=n_kv_heads, max_position_embeddings=256,
              initializer_range=0.2)  # spread logits: greedy ties are not decided by rounding
    config, cls = (LlamaConfig(**kw), LlamaForCausalLM) if arch == "llama" else (Qwen2Config(**kw), Qwen2ForCausalLM)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = cls(config).eval()
    if arch == "qwen2":  # q/k/v biases are zero at init: make them count
        with torch.no_grad():
            for layer in model.model.layers:
                for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                    proj.bias.normal_(0, 0.2, generator=torch.Generator().manual_seed(1))
    model.generation_config.eos_token_id = None  # generate runs to max_new_tokens, EOS sampled like any token
    return model


def requests(tokenizer):
    texts = ["Compute left to right: 37 +48 *3\n", "Compute left to right: 5 +3\n",
             "Compute left to right: 12 -3 +4 *2\n", "2+2=", "Compute: 9 *9 -80 +1\n"]  # ragged lengths
    return [(tokenizer.encode(t, add_special_tokens=False), []) for t in texts]


def greedy(batch_size: int) -> SamplingSettings:
    return SamplingSettings.for_free_text(0.0, 1.0, NEW_TOKENS, batch_size, ignore_eos=True)


@pytest.fixture(params=CASES, ids=["-".join(map(str, c)) for c in CASES])
def model(request, tokenizer):
    return gqa_model(*request.param, vocab=len(tokenizer))


def test_the_case_is_grouped_query_attention(model, tokenizer):
    engine = TorchEngine(model, tokenizer)
    batch = sampler._Batch(engine, [[sampler.Chain(*requests(tokenizer)[0])]], greedy(2), None)
    assert batch.gqa and batch.n_kv_heads < batch.n_heads
    assert batch.keys[0].shape[1] == model.config.num_key_value_heads  # the cache holds K/V heads only


@pytest.mark.parametrize("batch_size", [2, 5])
def test_greedy_tokens_equal_transformers_generate(model, tokenizer, batch_size, monkeypatch):
    def no_copy(*args, **kwargs):
        raise AssertionError("the engine copied K/V out to the query heads")

    with monkeypatch.context() as patch:
        patch.setattr(torch.Tensor, "repeat_interleave", no_copy)
        groups = TorchEngine(model, tokenizer).generate(requests(tokenizer), 1, greedy(batch_size))
    for (prompt, _), (chain,) in zip(requests(tokenizer), groups):
        with torch.no_grad():
            ref = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                                 do_sample=False, max_new_tokens=NEW_TOKENS, pad_token_id=tokenizer.pad_token_id)
        assert chain.gen_ids == ref[0, len(prompt):].tolist()
        assert chain.finish == "length" and chain.n_generated == NEW_TOKENS


def test_every_sampled_logit_equals_a_forward_pass(model, tokenizer, monkeypatch):
    """Prefill (SDPA with enable_gqa) and every decoding step (packed query groups): the logits the
    engine sampled each token from, against transformers' forward pass over prompt + tokens so far.
    Rows are refilled (batch 2 < 5 requests) and a group of 3 shares its prefilled context."""
    seen = {}  # (chain, token index) -> the logits it was sampled from
    record = sampler._Batch._record

    def spy(self, rows_R, logits_RV):
        for row, logits_V in zip(rows_R.tolist(), logits_RV):
            seen[id(self.chain[row]), int(self.kept_B[row])] = logits_V.clone()
        return record(self, rows_R, logits_RV)

    monkeypatch.setattr(sampler._Batch, "_record", spy)
    reqs = requests(tokenizer)
    s = SamplingSettings.for_free_text(1.0, 1.0, NEW_TOKENS, 2, ignore_eos=True)  # sampled: rows diverge
    groups = TorchEngine(model, tokenizer).generate(reqs[:4] + [(reqs[4][0], reqs[0][0][:5])], 3, s,
                                                    torch.Generator().manual_seed(0))
    checked = 0
    for group in groups:
        for chain in group:
            context = chain.prompt_ids + chain.prefix_ids
            with torch.no_grad():
                ref_TV = model(torch.tensor([context + chain.gen_ids])).logits[0, len(context) - 1:-1]
            ours_TV = torch.stack([seen[id(chain), k] for k in range(len(chain.gen_ids))])
            torch.testing.assert_close(ours_TV, ref_TV, atol=1e-4, rtol=1e-4)
            checked += len(chain.gen_ids)
    assert checked == 3 * (4 * NEW_TOKENS + NEW_TOKENS - 5)  # the prefix counts towards the budget
