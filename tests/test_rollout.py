"""Rollout engines: one correctness contract for every backend (greedy equivalence with HF generate,
log-prob equality with a fresh forward pass, stop rules, budgets that include the prefix, seeded
determinism, one prefill per group), exact stop rules on scripted tokens, and vLLM weight sync.

The vLLM cases run where vLLM is installed (CI: its own environment, `pytest -m vllm`) and are
skipped with the reason elsewhere."""

import importlib.util
from pathlib import Path

import pytest
import torch

import resetrl.rollout.torch_engine as sampler
from resetrl.core.model import load_policy
from resetrl.core.response_format import BOXED, THOUGHT_END
from resetrl.core.tokenizer import ThoughtDelimiter
from resetrl.rl.batch import pack_sequences, policy_logprobs_BT
from resetrl.rollout.engine import SamplingSettings, prompt_ids
from resetrl.rollout.factory import make_engine
from resetrl.rollout.rounds import _ChainState
from resetrl.rollout.torch_engine import TorchEngine

HAS_VLLM = importlib.util.find_spec("vllm") is not None
needs_vllm = pytest.mark.skipif(not HAS_VLLM, reason="vLLM is not installed here (its tests run in CI's vLLM "
                                                     "environment: pytest -m vllm)")
ENGINES = ["torch", *(pytest.param(name, marks=[pytest.mark.vllm, needs_vllm]) for name in ("vllm", "vllm_server"))]
PROMPTS = ["Compute left to right: 37 +48 *3\n", "Compute left to right: 5 +3\n",
           "Compute left to right: 12 -3 +4 *2\n"]  # different lengths


def settings(**kw):
    base = dict(temperature=0.7, top_p=0.95, max_thoughts=4, max_thought_tokens=16, batch_size=8)
    return SamplingSettings(**{**base, **kw})


def encode(tokenizer, texts):
    return [tokenizer.encode(t, add_special_tokens=False) for t in texts]


class _Rollout:
    """Engine settings as params.yaml `rollout` gives them."""

    def __init__(self, engine: str):
        self.engine, self.vllm_gpu_memory_utilization, self.batch_size = engine, 0.3, 8
        self.vllm_server_url, self.vllm_server_gpus = "", 1  # vllm_server: a server of its own


@pytest.fixture(scope="module")
def policy(warm_start):
    """The warm-started smoke policy: it writes thoughts, answers and EOS, so stop rules fire."""
    return load_policy(warm_start / "sft" / "model")


@pytest.fixture(scope="module")
def engines(policy):
    made = {}

    def get(name):
        if name not in made:
            made[name] = make_engine(_Rollout(name), *policy)
        return made[name]
    yield get
    for engine in made.values():
        engine.close()


# --- the contract, for every engine --------------------------------------------------------------

def logprob_gap(model, tokenizer, chains) -> float:
    """The largest gap between the engine's log-prob of a generated token and a fresh forward pass's."""
    batch = pack_sequences([c.prompt_ids for c in chains], [c.response_ids for c in chains], [0] * len(chains),
                           tokenizer.pad_token_id, [c.gen_logprobs for c in chains])
    assert batch.sampled_BT.sum() == sum(len(c.gen_ids) for c in chains)
    with torch.no_grad():
        return float(((policy_logprobs_BT(model, batch) - batch.sampled_logp_BT).abs() * batch.sampled_BT).max())


def check_stop_rules(chain, s: SamplingSettings, tokenizer):
    """The chain obeys the paper's rules: budgets include the prefix, no thought overflows, and
    the finish reason matches what the chain holds."""
    delimiter = tokenizer.convert_tokens_to_ids(THOUGHT_END)
    ids = chain.response_ids
    assert ids[:len(chain.prefix_ids)] == chain.prefix_ids
    assert len(ids) <= s.response_budget
    assert chain.thought_ends == [i + 1 for i, t in enumerate(ids) if t == delimiter]
    starts = [0] + chain.thought_ends
    thoughts = [ids[a:b] for a, b in zip(starts, starts[1:])]
    assert all(len(t) <= s.max_thought_tokens for t in thoughts)
    assert len(thoughts) <= s.max_thoughts
    texts = [tokenizer.decode(t) for t in thoughts]
    assert not any(BOXED in t for t in texts[:-1]), "a chain goes on after its answer thought"
    assert len(chain.gen_ids) == len(chain.gen_logprobs) <= chain.n_generated
    if chain.finish == "answer":
        assert BOXED in texts[-1] and ids[-1] == delimiter
    elif chain.finish == "max_thoughts":
        assert len(thoughts) == s.max_thoughts and ids[-1] == delimiter
    elif chain.finish == "eos":
        assert ids[-1] == tokenizer.eos_token_id
    elif chain.finish == "overflow":
        assert chain.n_generated > len(chain.gen_ids) and (not ids or ids[-1] == delimiter)
    else:
        assert chain.finish == "budget" and len(ids) + s.max_thought_tokens > s.response_budget


@pytest.mark.parametrize("name", ENGINES)
def test_greedy_matches_hf_generate(engines, policy, name):
    model, tokenizer = policy
    s = settings(greedy=True, max_thoughts=4, max_thought_tokens=16)
    groups = engines(name).generate([(p, []) for p in encode(tokenizer, PROMPTS)], 1, s)
    compared = 0
    for prompt, (chain,) in zip(encode(tokenizer, PROMPTS), groups):
        ref = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                             do_sample=False, max_new_tokens=chain.n_generated, pad_token_id=tokenizer.pad_token_id)
        generated = ref[0, len(prompt):].tolist()
        assert generated[:len(chain.gen_ids)] == chain.gen_ids  # kept tokens (an overflow is cut)
        compared += len(chain.gen_ids)
    assert compared >= 10, "the comparison must cover real tokens"


@pytest.mark.parametrize("name", ENGINES)
def test_sampling_logprobs_equal_a_fresh_forward_pass(engines, policy, name):
    model, tokenizer = policy
    prefix = tokenizer.encode(f"37+48=85{THOUGHT_END}", add_special_tokens=False)
    requests = [(p, []) for p in encode(tokenizer, PROMPTS)] + [(encode(tokenizer, PROMPTS[:1])[0], prefix)]
    groups = engines(name).generate(requests, 3, settings(), torch.Generator().manual_seed(3))
    chains = [c for g in groups for c in g]
    assert sum(len(c.gen_ids) for c in chains) >= 20
    assert logprob_gap(model, tokenizer, chains) < 1e-4


@pytest.mark.parametrize("name", ENGINES)
def test_sampled_chains_obey_the_stop_rules_and_budgets(engines, policy, name):
    _, tokenizer = policy
    prefix = tokenizer.encode(f"37+48=85{THOUGHT_END}85*3=255{THOUGHT_END}", add_special_tokens=False)
    prompts = encode(tokenizer, PROMPTS)
    for s in (settings(), settings(max_thoughts=3, max_thought_tokens=10), settings(max_thoughts=2)):
        groups = engines(name).generate([(p, []) for p in prompts] + [(prompts[0], prefix)], 4, s,
                                        torch.Generator().manual_seed(0))
        for group in groups:
            for chain in group:
                check_stop_rules(chain, s, tokenizer)
        suffixes = groups[-1]
        assert all(c.response_ids[:len(prefix)] == prefix for c in suffixes)
        assert all(c.n_generated <= s.response_budget - len(prefix) for c in suffixes)


@pytest.mark.parametrize("name", ENGINES)
def test_seeded_sampling_is_deterministic(engines, policy, name):
    _, tokenizer = policy
    req = [(p, []) for p in encode(tokenizer, PROMPTS)]
    run = lambda seed: [c.gen_ids for g in engines(name).generate(  # noqa: E731
        req, 3, settings(temperature=1.5, top_p=1.0), torch.Generator().manual_seed(seed)) for c in g]
    assert run(7) == run(7)  # a hot temperature: the warm start is too sure of itself for seeds to differ at 0.7
    assert run(7) != run(8)


@pytest.mark.parametrize("name", ENGINES)
def test_a_group_prefills_its_shared_context_once(engines, policy, name):
    _, tokenizer = policy
    prompt = encode(tokenizer, PROMPTS[:1])[0]
    prefix = tokenizer.encode(f"37+48=85{THOUGHT_END}", add_special_tokens=False)
    (group,) = engines(name).generate([(prompt, prefix)], 4, settings(), torch.Generator().manual_seed(0))
    first_round = len(prompt) + len(prefix)
    assert 0 < group[0].n_prefilled
    if name == "torch":
        assert [c.n_prefilled for c in group] == [first_round, 0, 0, 0]
        assert all(c.n_reused == len(prefix) for c in group)


@pytest.mark.vllm
@needs_vllm
def test_vllm_and_torch_engines_agree_greedily(engines, policy):
    _, tokenizer = policy
    req = [(p, []) for p in encode(tokenizer, PROMPTS)]
    s = settings(greedy=True)
    assert [g[0].gen_ids for g in engines("vllm").generate(req, 1, s)] == \
        [g[0].gen_ids for g in engines("torch").generate(req, 1, s)]


@pytest.mark.vllm
@needs_vllm
def test_a_checkpoint_served_as_its_card_says_gives_the_projects_greedy_answers(warm_start, greedy_answers):
    """The model card's own offline vLLM code, run as a user would (its max_tokens, float32, no project stop
    rule, default decoding: special tokens skipped), reproduces the project's greedy answers."""
    card = (warm_start / "sft/model/README.md").read_text()
    code = card.split("The same requests offline")[1].split("```python\n")[1].split("```")[0]
    scope = {"DIR": str(warm_start / "sft/model"), "PROMPTS": [prompt for prompt, _ in greedy_answers]}
    exec(code, scope)  # noqa: S102
    outputs = [o.outputs[0] for o in scope["outputs"]]
    assert [o.text for o in outputs] == [text for _, text in greedy_answers]
    assert all(o.finish_reason == "stop" for o in outputs)  # at EOS, not at the token budget


# --- weight sync ---------------------------------------------------------------------------------

@pytest.mark.vllm
@needs_vllm
def test_vllm_samples_from_new_weights_after_sync_and_resets_the_prefix_cache(warm_start):
    model, tokenizer = load_policy(warm_start / "sft" / "model")
    engine = make_engine(_Rollout("vllm"), model, tokenizer)
    reference = TorchEngine(model, tokenizer)  # shares the trainer's weights: the ground truth
    req = [(p, []) for p in encode(tokenizer, PROMPTS)]
    s = SamplingSettings.for_free_text(0.0, 1.0, 24, 8)
    greedy = lambda e: [g[0].gen_ids for g in e.generate(req, 1, s)]  # noqa: E731
    before = greedy(engine)
    assert before == greedy(reference)
    model.lm_head.weight.grad = torch.randn_like(model.lm_head.weight)  # tied to the embedding
    torch.optim.SGD(model.parameters(), lr=0.5).step()
    after_trainer = greedy(reference)
    assert after_trainer != before, "the step must change the greedy output for the test to mean anything"
    engine.sync_weights(model)
    assert engine.cache_resets == 1
    assert greedy(engine) == after_trainer
    chains = [g[0] for g in engine.generate(req, 1, s)]
    assert logprob_gap(model, tokenizer, chains) < 1e-4
    engine.close()


@pytest.mark.vllm
@needs_vllm
def test_a_vllm_server_follows_the_trainers_lora_adapters(tmp_path):
    """A server started for the run samples from the base model plus the trainer's adapters: greedy output equal
    to the torch engine's on the trainer's own weights before and after an update, and the raw log-probs too."""
    from types import SimpleNamespace

    from resetrl.core.lora import add_lora
    from resetrl.testing import save_tiny_hub_model

    model, tokenizer = load_policy(save_tiny_hub_model(tmp_path / "hub"))
    model = add_lora(model, SimpleNamespace(rank=8, alpha=16.0, dropout=0.0, target_modules="all-linear"))
    adapters = [p for name, p in model.named_parameters() if "lora_B" in name]

    def update(seed):  # an optimizer step's worth of change to every adapter
        with torch.no_grad():
            for p in adapters:
                p.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(seed))

    update(0)
    model.eval()
    engine = make_engine(_Rollout("vllm_server"), model, tokenizer)
    req = [(tokenizer.encode(t, add_special_tokens=False), []) for t in ("What is 3*4?", "Hello there", "abc")]
    s = SamplingSettings.for_free_text(0.0, 1.0, 24, 8)
    greedy = lambda e: [g[0].gen_ids for g in e.generate(req, 1, s)]  # noqa: E731
    before = greedy(engine)
    assert before == greedy(TorchEngine(model, tokenizer))
    update(1)
    engine.sync_weights(model)
    after = greedy(TorchEngine(model, tokenizer))
    assert after != before, "the update must change the greedy output for the test to mean anything"
    chains = [g[0] for g in engine.generate(req, 1, s)]
    assert [c.gen_ids for c in chains] == after
    assert logprob_gap(model, tokenizer, chains) < 1e-4
    engine.close()


@pytest.mark.vllm
@needs_vllm
def test_a_lora_run_samples_on_policy_from_a_vllm_server(repo_root, tmp_path):
    """The overlays' path on the smoke task: a hub model by path, no SFT (the sft stage only evaluates it on a
    server), SRPO with LoRA whose every step samples from a server that loaded the adapters of the step before
    (the engine's log-probs equal the trainer's), and the merged model evaluated on a server."""
    from resetrl.core.config import load_params
    from resetrl.rl.evaluation import evaluate_checkpoint
    from resetrl.rl.trainer import RLTrainer
    from resetrl.rl.warmstart import run_sft
    from resetrl.tasks.splits import load_split, prepare_data
    from resetrl.testing import ANSWER, memorize, save_tiny_hub_model

    hub = save_tiny_hub_model(tmp_path / "hub")
    overlay = tmp_path / "served.yaml"
    overlay.write_text(f"""
study: {{methods: [srpo], ablations: [], seeds: [0]}}
task: {{n_train: 16, n_val: 4, n_test: 4}}
model: {{pretrained: {hub}}}
sft: {{steps: 0}}
rollout: {{engine: vllm_server, max_thoughts: 3, max_thought_tokens: 16, batch_size: 16}}
rl: {{steps: 2, prompts_per_step: 2, group_size: 4, minibatches: 2, eval_every: 2, save_every: 2,
      localization_max_tokens: 8, lora: {{rank: 4, alpha: 8}}}}
eval: {{n_samples: 2, pass_k: [1, 2]}}
runtime: {{device: cpu}}
""")
    params = load_params([repo_root / "params.yaml", repo_root / "configs" / "smoke.yaml", overlay])
    prepare_data(params.task, tmp_path / "data")
    model, tokenizer = load_policy(hub)  # taught one chain of thoughts, so sampled chains keep their tokens
    memorize(model, prompt_ids(tokenizer, load_split(tmp_path / "data", "train")[0]),
             tokenizer.encode(ANSWER, add_special_tokens=False) + [tokenizer.eos_token_id])
    model.save_pretrained(hub)
    run_sft(params, tmp_path / "data", tmp_path / "sft")
    history = RLTrainer(params, "srpo", 0, tmp_path / "sft" / "model", tmp_path / "data", tmp_path / "run").run()
    steps = [r for r in history if "rollout/logprob_mismatch_max" in r]
    assert len(steps) == 2 and all(r["rollout/logprob_mismatch_max"] < 1e-3 for r in steps), steps
    metrics, _ = evaluate_checkpoint(params, tmp_path / "run" / "model", tmp_path / "data", seed=0)
    assert 0.0 <= metrics["test"]["greedy_pass1"] <= 1.0


@pytest.mark.vllm
@needs_vllm
def test_a_vllm_server_stops_when_its_stage_is_killed(tmp_path):
    """kill -9 of the stage leaves no server holding its GPUs: the server gets SIGTERM from the kernel."""
    import os
    import subprocess
    import sys
    import time

    from resetrl.testing import save_tiny_hub_model

    stage = (f"import time\nfrom resetrl.core.model import load_policy\nfrom resetrl.rollout.factory import "
             f"make_engine\nfrom tests.test_rollout import _Rollout\n"
             f"engine = make_engine(_Rollout('vllm_server'), *load_policy({str(save_tiny_hub_model(tmp_path))!r}))\n"
             f"print(engine._server.pid, flush=True)\ntime.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", stage], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    server = int(proc.stdout.readline())
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:  # gone, or a zombie (exited, its new parent not reaping it)
            if Path(f"/proc/{server}/stat").read_text().split(") ")[1].startswith("Z"):
                return
        except FileNotFoundError:
            return
        time.sleep(0.5)
    os.kill(server, 9)
    raise AssertionError("the vLLM server outlived its stage by 2 minutes")


# --- exact stop rules on scripted tokens (torch engine) -------------------------------------------

@pytest.fixture()
def scripted(monkeypatch, tiny_model, tokenizer):
    """Runs the torch engine on logits that spell a script: row r's k-th token is script[k]."""

    def run(text: str, prefix: str = "", **kw):
        script = tokenizer.encode(text, add_special_tokens=False)

        def logits(batch, rows_R):
            out = torch.full((len(rows_R), len(tokenizer)), -30.0)
            for i, row in enumerate(rows_R.tolist()):
                out[i, script[min(int(batch.sampled_B[row]), len(script) - 1)]] = 30.0
            return out

        monkeypatch.setattr(sampler._Batch, "_prefill", lambda self, contexts, rows_R, unit_R: logits(self, rows_R))
        monkeypatch.setattr(sampler._Batch, "_decode", lambda self: logits(self, torch.arange(self.B)))
        prefix_ids = tokenizer.encode(prefix, add_special_tokens=False)
        engine = TorchEngine(tiny_model, tokenizer)
        return engine.generate([(tokenizer.encode("Q\n", add_special_tokens=False), prefix_ids)], 1,
                               settings(greedy=True, **kw))[0][0]
    return run


def test_chain_ends_at_the_thought_holding_boxed(scripted):
    chain = scripted(f"1+2=3{THOUGHT_END}3+1=4 \\boxed{{4}}{THOUGHT_END}9+9=18{THOUGHT_END}")
    assert chain.finish == "answer"
    assert chain.text == f"1+2=3{THOUGHT_END}3+1=4 \\boxed{{4}}{THOUGHT_END}"
    assert chain.n_generated == len(chain.gen_ids) == len(chain.gen_logprobs)


def test_chain_stops_at_max_thoughts(scripted):
    chain = scripted(f"ab{THOUGHT_END}" * 10, max_thoughts=3)
    assert chain.finish == "max_thoughts"
    assert chain.text == f"ab{THOUGHT_END}" * 3


def test_overflowing_thought_is_cut_back_but_counted(scripted):
    chain = scripted(f"ab{THOUGHT_END}cdefghijkl", max_thought_tokens=4)
    assert chain.finish == "overflow"
    assert chain.text == f"ab{THOUGHT_END}"
    assert chain.n_generated == 3 + 4  # the four cut tokens were generated, so they count
    assert len(chain.gen_logprobs) == len(chain.gen_ids) == 3


def test_budgets_include_the_prefix(scripted):
    prefix = f"x{THOUGHT_END}y{THOUGHT_END}"
    chain = scripted(f"z{THOUGHT_END}" * 5, prefix=prefix, max_thoughts=3)
    assert chain.finish == "max_thoughts"
    assert chain.text == prefix + f"z{THOUGHT_END}"
    assert chain.n_generated == 2  # prefix tokens are reused, not generated


def test_chain_stops_when_next_thought_could_overflow_budget(scripted):
    # Only a prefix with long thoughts can trigger it: budget 4 * 10 = 40; after 24 prefix tokens
    # and one 10-token thought, 34 + 10 > 40 -> stop with 3 of 4 thoughts.
    prefix = f"12345678901{THOUGHT_END}" * 2
    chain = scripted(f"123456789{THOUGHT_END}" * 3, prefix=prefix, max_thoughts=4, max_thought_tokens=10)
    assert chain.finish == "budget"
    assert chain.text == prefix + f"123456789{THOUGHT_END}"


def test_free_text_stops_at_eos_or_its_token_budget(scripted, tokenizer):
    answer = scripted("Step 3" + tokenizer.eos_token, free_text=True, max_thoughts=1, max_thought_tokens=16)
    assert answer.finish == "eos" and answer.text == "Step 3"
    long = scripted(f"a{THOUGHT_END}" * 20, free_text=True, max_thoughts=1, max_thought_tokens=5)
    assert long.finish == "length" and long.n_generated == 5 and THOUGHT_END in long.text


def test_ignore_eos_runs_to_the_budget(scripted, tokenizer):
    chain = scripted(tokenizer.eos_token * 3, free_text=True, max_thoughts=1, max_thought_tokens=7, ignore_eos=True)
    assert chain.finish == "length" and chain.n_generated == 7


# --- the torch engine's batching -----------------------------------------------------------------

@pytest.mark.parametrize("batch_size", [1, 2, 5])
def test_batching_and_refill_do_not_change_greedy_output(policy, batch_size):
    model, tokenizer = policy
    engine = TorchEngine(model, tokenizer)
    req = [(p, []) for p in encode(tokenizer, PROMPTS * 3)]
    one = engine.generate(req, 1, settings(greedy=True, batch_size=1))
    many = engine.generate(req, 1, settings(greedy=True, batch_size=batch_size))
    assert [g[0].gen_ids for g in one] == [g[0].gen_ids for g in many]
    assert [g[0].finish for g in one] == [g[0].finish for g in many]


def test_groups_larger_than_the_batch_are_split(policy):
    model, tokenizer = policy
    (group,) = TorchEngine(model, tokenizer).generate([(encode(tokenizer, PROMPTS[:1])[0], [])], 5,
                                                       settings(batch_size=2), torch.Generator().manual_seed(0))
    assert len(group) == 5 and all(c.finish for c in group)
    assert sum(c.n_prefilled > 0 for c in group) == 3  # parts of 2, 2 and 1 rows


def test_torch_engine_refuses_unsupported_architectures(tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=1))
    with pytest.raises(ValueError, match="rollout.engine"):
        TorchEngine(model, tokenizer)


def test_make_engine_rejects_unknown_names(tiny_model, tokenizer):
    with pytest.raises(ValueError, match="rollout.engine"):
        make_engine(_Rollout("sglang"), tiny_model, tokenizer)


@pytest.mark.skipif(HAS_VLLM, reason="checks the message shown where vLLM is missing")
@pytest.mark.parametrize("name", ["vllm", "vllm_server"])
def test_vllm_engines_without_vllm_say_how_to_install(tiny_model, tokenizer, name):
    with pytest.raises(ImportError, match=f"rollout.engine: {name} needs vLLM: `pip install"):
        make_engine(_Rollout(name), tiny_model, tokenizer)


def test_a_server_takes_the_gpus_after_the_trainers(monkeypatch):
    from resetrl.rollout.vllm_server import _server_gpus

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5,6")
    assert _server_gpus(1) == ["5"] and _server_gpus(2) == ["5", "6"]
    with pytest.raises(RuntimeError, match=r"this job sees 3 GPU\(s\) \(CUDA_VISIBLE_DEVICES=3,5,6\) and the "
                                           r"trainer takes the first: ask the scheduler for 4"):
        _server_gpus(3)


# --- the vLLM engine's thought-by-thought assembly (no vLLM needed) -------------------------------

class _Tokens:
    def __init__(self, tokenizer):
        self.tokenizer, self.delimiter = tokenizer, ThoughtDelimiter(tokenizer)


def test_vllm_rounds_apply_the_same_stop_rules(tokenizer):
    from resetrl.rollout.engine import Chain

    engine, s = _Tokens(tokenizer), settings(max_thoughts=3, max_thought_tokens=8)
    ids = lambda text: tokenizer.encode(text, add_special_tokens=False)  # noqa: E731
    answered = Chain([1], [])
    state = _ChainState(answered, 0)
    assert not state.add_thought(ids(f"1+2=3{THOUGHT_END}"), [0.0] * 6, settings(), engine)
    assert state.add_thought(ids(f"\\boxed{{3}}{THOUGHT_END}"), [0.0] * 10, settings(), engine)
    assert answered.finish == "answer" and answered.text == "" and len(answered.gen_ids) == 16
    overflow = Chain([1], [])
    state = _ChainState(overflow, 0)
    assert not state.add_thought(ids(f"ab{THOUGHT_END}"), [0.0] * 3, s, engine)
    assert state.add_thought(ids("cdefghij"), [0.0] * 8, s, engine)
    assert overflow.finish == "overflow" and overflow.gen_ids == ids(f"ab{THOUGHT_END}") and overflow.n_generated == 11
    capped = Chain([1], ids(f"a{THOUGHT_END}b{THOUGHT_END}"))
    state = _ChainState(capped, 2)
    assert state.add_thought(ids(f"c{THOUGHT_END}"), [0.0] * 2, s, engine)
    assert capped.finish == "max_thoughts"
    ended = Chain([1], [])
    assert _ChainState(ended, 0).add_thought(ids("ab") + [tokenizer.eos_token_id], [0.0] * 3, s, engine)
    assert ended.finish == "eos" and ended.gen_ids[-1] == tokenizer.eos_token_id


def nucleus_by_definition_BV(logits_BV: torch.Tensor, top_p: float) -> torch.Tensor:
    """The smallest most-likely set whose probability reaches top_p, token by token in float64."""
    probs_BV = torch.softmax(logits_BV.double(), -1)
    keep_BV = torch.zeros_like(logits_BV, dtype=torch.bool)
    for b, order in enumerate(probs_BV.argsort(-1, descending=True)):
        mass = 0.0
        for token in order.tolist():
            keep_BV[b, token], mass = True, mass + float(probs_BV[b, token])
            if mass >= top_p:
                break
    return keep_BV


@pytest.mark.parametrize("peaks", [(8.0, 8.0, 8.0), (0.0, 0.0, 0.0), (8.0, 0.0, 8.0)],
                         ids=["nuclei among the candidates", "flat: full sort", "mixed rows"])
def test_top_p_keeps_the_nucleus_on_a_large_vocabulary(peaks):
    """A peaked row takes the partial sort over the most likely candidates, a flat one (its nucleus spans
    more than the candidates) the full sort; every row keeps exactly its nucleus, logits unchanged inside it."""
    from resetrl.rollout.engine import TOP_P_CANDIDATES, top_p_filter

    logits_BV = torch.randn(3, 4 * TOP_P_CANDIDATES, generator=torch.Generator().manual_seed(0))
    logits_BV[:, :20] += torch.tensor(peaks)[:, None]
    filtered_BV = top_p_filter(logits_BV, 0.9)
    kept_BV = ~torch.isinf(filtered_BV)
    assert torch.equal(kept_BV, nucleus_by_definition_BV(logits_BV, 0.9))
    assert torch.equal(filtered_BV[kept_BV], logits_BV[kept_BV])
    assert (kept_BV.sum(-1) > TOP_P_CANDIDATES).tolist() == [p == 0.0 for p in peaks]


@pytest.mark.parametrize("peaks", [(8.0, 8.0, 8.0), (8.0, 0.0, 8.0)], ids=["among the candidates", "a row wider"])
def test_sampling_a_large_vocabulary_draws_from_the_nucleus_at_the_temperature(peaks):
    """Drawn among the most likely candidates (or, when a row's nucleus is wider, over the whole vocabulary):
    every token lies in softmax(logits / T)'s nucleus, a peaked row's frequencies are its renormalized
    probabilities, and the log-probs are log softmax(logits) at T = 1."""
    from resetrl.rollout.engine import TOP_P_CANDIDATES, SamplingSettings, sample_tokens

    draws, temperature = 3000, 0.7
    logits_BV = torch.randn(3, 4 * TOP_P_CANDIDATES, generator=torch.Generator().manual_seed(0))
    logits_BV[:, :20] += torch.tensor(peaks)[:, None]
    s = SamplingSettings(temperature=temperature, top_p=0.9, max_thoughts=1, max_thought_tokens=1, batch_size=1)
    rows_RV = logits_BV.repeat_interleave(draws, 0)
    token_R, logp_R = sample_tokens(rows_RV, s, torch.Generator().manual_seed(1))
    assert torch.allclose(logp_R, torch.log_softmax(rows_RV, -1).gather(-1, token_R[:, None]).squeeze(-1), atol=1e-5)
    nucleus_BV = nucleus_by_definition_BV(logits_BV / temperature, 0.9)
    for b, tokens in enumerate(token_R.view(3, draws)):
        assert bool(nucleus_BV[b, tokens].all()), f"row {b} drew outside its nucleus"
        if peaks[b]:
            probs_V = torch.softmax((logits_BV[b] / temperature).double(), -1) * nucleus_BV[b]
            frequencies_V = torch.bincount(tokens, minlength=logits_BV.shape[-1]).double() / draws
            assert 0.5 * float((frequencies_V - probs_V / probs_V.sum()).abs().sum()) < 0.06


def test_drawing_by_the_cumulative_sum_keeps_every_weight_share_and_never_draws_a_zero_weight():
    """Tokens in different blocks, one alone in an otherwise empty block, a tiny weight after most of the mass,
    zeros at both ends: frequencies are the normalized weights, and a zero weight is never drawn."""
    from resetrl.rollout.engine import DRAW_BLOCK, _draw_B

    weights_V = torch.zeros(4 * DRAW_BLOCK + 7)
    shares = {1: 0.3, DRAW_BLOCK - 1: 0.2, DRAW_BLOCK: 0.25, 2 * DRAW_BLOCK + 100: 0.15, 4 * DRAW_BLOCK + 5: 0.1}
    for token, share in shares.items():
        weights_V[token] = share * 7.0  # unnormalized
    weights_V[4 * DRAW_BLOCK + 6] = 1e-6  # after almost all the mass
    draws = 40_000
    token_R = _draw_B(weights_V.expand(draws, -1), torch.Generator().manual_seed(0))
    counts = torch.bincount(token_R, minlength=weights_V.numel())
    assert set(torch.nonzero(counts).flatten().tolist()) <= set(shares) | {4 * DRAW_BLOCK + 6}
    for token, share in shares.items():
        assert abs(counts[token].item() / draws - share) < 0.01, token
    one_hot_V = torch.zeros(3 * DRAW_BLOCK)
    one_hot_V[-1] = 2.0  # the last token of the last block, the only one with weight
    drawn_R = _draw_B(one_hot_V.expand(1000, -1), torch.Generator().manual_seed(1))
    assert drawn_R.unique().tolist() == [3 * DRAW_BLOCK - 1]
