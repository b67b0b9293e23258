"""Shared fixtures: a tiny random policy built locally (no downloads) and the smoke params."""

from importlib.util import find_spec
from pathlib import Path

import pytest
import torch

from resetrl.core.config import load_params
from resetrl.core.model import build_model
from resetrl.core.params import ModelConfig
from resetrl.core.tokenizer import build_char_tokenizer

REPO = Path(__file__).resolve().parents[1]

torch.set_num_threads(1)

# The cluster stack (requirements-cluster.txt; CI installs it): tests marked `cluster` skip where the
# lean default install lacks it.
CLUSTER_STACK = ("peft", "math_verify", "reasoning_gym", "pyarrow", "snakemake_executor_plugin_slurm")


def pytest_collection_modifyitems(config, items):
    missing = [name for name in CLUSTER_STACK if find_spec(name) is None]
    if missing:
        skip = pytest.mark.skip(reason=f"needs requirements-cluster.txt (missing: {', '.join(missing)})")
        for item in items:
            if "cluster" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def smoke_params():
    return load_params([REPO / "params.yaml", REPO / "configs" / "smoke.yaml"])


@pytest.fixture(scope="session")
def tokenizer():
    return build_char_tokenizer()


@pytest.fixture()
def tiny_model(tokenizer):
    cfg = ModelConfig(pretrained=None, hidden_size=32, num_layers=2, num_heads=1, intermediate_size=64,
                      max_position_embeddings=512, init_seed=0)
    return build_model(cfg, tokenizer).eval()


@pytest.fixture(scope="session")
def model_card():
    from resetrl.core.model_card import ModelCard

    return ModelCard("test policy", {"arm": "grpo", "seed": 3, "params digest": "0123abcd"}, max_new_tokens=48)


@pytest.fixture(scope="session")
def warm_start(tmp_path_factory, smoke_params):
    """Smoke data and a briefly SFT-trained tiny policy that already emits thought delimiters."""
    from resetrl.rl.warmstart import run_sft
    from resetrl.tasks.splits import prepare_data

    root = tmp_path_factory.mktemp("warm")
    prepare_data(smoke_params.task, root / "data")
    run_sft(smoke_params, root / "data", root / "sft")
    return root


@pytest.fixture(scope="session")
def greedy_answers(warm_start, smoke_params):
    """(prompt, response text) of the warm start's greedy chains that end in an answer, as the
    project's own evaluation decodes them: what an outside engine must reproduce."""
    from resetrl.core.model import load_policy
    from resetrl.rollout.engine import SamplingSettings, prompt_ids
    from resetrl.rollout.factory import make_engine
    from resetrl.tasks.splits import load_split

    model, tokenizer = load_policy(warm_start / "sft/model")
    problems = load_split(warm_start / "data", "val")
    engine = make_engine(smoke_params.rollout, model, tokenizer)
    groups = engine.generate([(prompt_ids(tokenizer, p), []) for p in problems], 1,
                             SamplingSettings.from_config(smoke_params.rollout, greedy=True))
    return [(p.prompt, g[0].text) for p, g in zip(problems, groups) if g[0].finish == "answer"]
