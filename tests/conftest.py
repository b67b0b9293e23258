"""Shared fixtures: a tiny random policy built locally (no downloads) and the smoke params."""

from importlib.util import find_spec
from pathlib import Path

import pytest
import torch

from resetrl.config import ModelConfig, load_params
from resetrl.model import build_model
from resetrl.tokenizer import build_char_tokenizer

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
def warm_start(tmp_path_factory, smoke_params):
    """Smoke data and a briefly SFT-trained tiny policy that already emits thought delimiters."""
    from resetrl.data import prepare_data
    from resetrl.warmstart import run_sft

    root = tmp_path_factory.mktemp("warm")
    prepare_data(smoke_params.task, root / "data")
    run_sft(smoke_params, root / "data", root / "sft")
    return root
