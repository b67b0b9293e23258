"""The sampler: equivalence with HF generate and a fresh forward pass, stop rules, budgets."""

from types import SimpleNamespace

import pytest
import torch

from resetrl.batch import pack_sequences, policy_logprobs_BT
from resetrl.model import load_policy
from resetrl.rollout import SamplingSettings, sample_chains
from resetrl.task import THOUGHT_END


def settings(**kw):
    base = dict(temperature=0.7, top_p=0.95, max_thoughts=4, max_thought_tokens=8, batch_size=8)
    return SamplingSettings(**{**base, **kw})


class ScriptedModel(torch.nn.Module):
    """Greedy-decodes a fixed token script: call k (after the prefill) emits script[k]."""

    def __init__(self, script: list[int], vocab: int):
        super().__init__()
        self.script, self.vocab, self.calls = script, vocab, 0

    def forward(self, input_ids, **_):
        logits = torch.zeros(input_ids.shape[0], input_ids.shape[1], self.vocab)
        logits[:, -1, self.script[min(self.calls, len(self.script) - 1)]] = 10.0
        self.calls += 1
        return SimpleNamespace(logits=logits)


def run_script(tokenizer, text: str, prefix: str = "", **kw):
    ids = tokenizer.encode(text, add_special_tokens=False)
    model = ScriptedModel(ids, len(tokenizer))
    prompt = tokenizer.encode("Q\n", add_special_tokens=False)
    prefix_ids = tokenizer.encode(prefix, add_special_tokens=False)
    return sample_chains(model, tokenizer, [(prompt, prefix_ids)], 1, settings(greedy=True, **kw))[0][0]


def test_chain_ends_at_the_thought_holding_boxed(tokenizer):
    chain = run_script(tokenizer, f"1+2=3{THOUGHT_END}3+1=4 \\boxed{{4}}{THOUGHT_END}9+9=18{THOUGHT_END}",
                       max_thought_tokens=16)
    assert chain.finish == "answer"
    assert chain.text == f"1+2=3{THOUGHT_END}3+1=4 \\boxed{{4}}{THOUGHT_END}"
    assert chain.n_generated == len(chain.gen_ids) == len(chain.gen_logprobs)


def test_chain_stops_at_max_thoughts(tokenizer):
    chain = run_script(tokenizer, f"ab{THOUGHT_END}" * 10, max_thoughts=3)
    assert chain.finish == "max_thoughts"
    assert chain.text == f"ab{THOUGHT_END}" * 3


def test_overflowing_thought_is_cut_back_but_counted(tokenizer):
    chain = run_script(tokenizer, f"ab{THOUGHT_END}cdefghijkl", max_thought_tokens=4)
    assert chain.finish == "overflow"
    assert chain.text == f"ab{THOUGHT_END}"
    assert chain.n_generated == 3 + 4  # the four cut tokens were generated, so they count
    assert len(chain.gen_logprobs) == len(chain.gen_ids) == 3


def test_budgets_include_the_prefix(tokenizer):
    prefix = f"x{THOUGHT_END}y{THOUGHT_END}"
    chain = run_script(tokenizer, f"z{THOUGHT_END}" * 5, prefix=prefix, max_thoughts=3)
    assert chain.finish == "max_thoughts"
    assert chain.text == prefix + f"z{THOUGHT_END}"
    assert chain.response_ids[:len(chain.prefix_ids)] == chain.prefix_ids
    assert chain.n_generated == 2  # prefix tokens are reused, not generated


def test_chain_stops_when_next_thought_could_overflow_budget(tokenizer):
    # budget 2 * 8 = 16 tokens; after a 10-token thought, 10 + 8 > 16 -> stop
    chain = run_script(tokenizer, f"123456789{THOUGHT_END}" * 3, max_thoughts=2, max_thought_tokens=8)
    assert chain.finish in {"budget", "overflow"}
    assert chain.text.count(THOUGHT_END) <= 1


def encode(tokenizer, texts):
    return [tokenizer.encode(t, add_special_tokens=False) for t in texts]


PROMPTS = ["Compute left to right: 37 +48 *3\n", "Compute left to right: 5 +3\n",
           "Compute left to right: 12 -3 +4 *2\n"]  # different lengths: the batch is left-padded


def test_greedy_matches_hf_generate_with_left_padding(warm_start):
    model, tokenizer = load_policy(warm_start / "sft" / "model")
    s = settings(greedy=True, max_thoughts=4, max_thought_tokens=16)
    groups = sample_chains(model, tokenizer, [(p, []) for p in encode(tokenizer, PROMPTS)], 1, s)
    compared = 0
    for prompt, (chain,) in zip(encode(tokenizer, PROMPTS), groups):
        ref = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                             do_sample=False, max_new_tokens=chain.n_generated, pad_token_id=tokenizer.pad_token_id)
        generated = ref[0, len(prompt):].tolist()
        assert generated[:len(chain.gen_ids)] == chain.gen_ids  # kept tokens (an overflow is cut)
        compared += len(chain.gen_ids)
    assert compared >= 10, "the comparison must cover real tokens"


def test_sampling_logprobs_equal_a_fresh_forward_pass(tiny_model, tokenizer):
    s = settings(max_thoughts=3, max_thought_tokens=12)
    gen = torch.Generator().manual_seed(3)
    groups = sample_chains(tiny_model, tokenizer, [(p, []) for p in encode(tokenizer, PROMPTS)], 2, s, gen)
    chains = [c for g in groups for c in g]
    batch = pack_sequences([c.prompt_ids for c in chains], [c.response_ids for c in chains],
                           [0] * len(chains), tokenizer.pad_token_id)
    with torch.no_grad():
        logp_BT = policy_logprobs_BT(tiny_model, batch, s.temperature)
    for i, c in enumerate(chains):
        start = len(c.prompt_ids) - 1
        fresh = logp_BT[i, start:start + len(c.gen_ids)]
        torch.testing.assert_close(fresh, torch.tensor(c.gen_logprobs), atol=1e-4, rtol=1e-4)
        assert batch.mask_BT[i].sum() == len(c.gen_ids)


def test_seeded_sampling_is_deterministic(tiny_model, tokenizer):
    s = settings()
    req = [(p, []) for p in encode(tokenizer, PROMPTS)]
    a = sample_chains(tiny_model, tokenizer, req, 3, s, torch.Generator().manual_seed(7))
    b = sample_chains(tiny_model, tokenizer, req, 3, s, torch.Generator().manual_seed(7))
    c = sample_chains(tiny_model, tokenizer, req, 3, s, torch.Generator().manual_seed(8))
    ids = lambda groups: [ch.gen_ids for g in groups for ch in g]  # noqa: E731
    assert ids(a) == ids(b)
    assert ids(a) != ids(c)


@pytest.mark.parametrize("batch_size", [1, 4])
def test_batching_does_not_change_greedy_output(tiny_model, tokenizer, batch_size):
    req = [(p, []) for p in encode(tokenizer, PROMPTS)]
    one = sample_chains(tiny_model, tokenizer, req, 1, settings(greedy=True, batch_size=1))
    many = sample_chains(tiny_model, tokenizer, req, 1, settings(greedy=True, batch_size=batch_size))
    assert [g[0].gen_ids for g in one] == [g[0].gen_ids for g in many]
