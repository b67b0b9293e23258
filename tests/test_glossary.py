"""docs/metrics.md against the code: every per-step metric a run logs is in the glossary, every metric
the glossary lists is logged by some arm, and every params key it names exists."""

import re
from pathlib import Path

import pytest

from resetrl.core.config import params_to_dict
from resetrl.core.params import Params
from resetrl.rl.trainer import RLTrainer

GLOSSARY = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"
PREFIXES = ("train", "reset", "loc", "compute", "eval", "sft", "time", "rollout", "verify", "vine", "process")
# Logged only where the smoke study cannot reach: real-data answer checks.
UNREACHABLE = ("verify/<status>",)


def documented_metrics() -> list[str]:
    """The metric names in the first column of the glossary's tables (`<x>`: any name)."""
    names = []
    for line in GLOSSARY.read_text().splitlines():
        if line.startswith("| `"):
            first = line.split(" | ")[0]
            names += [n for n in re.findall(r"`([^`]+)`", first) if n.split("/")[0] in PREFIXES and "/" in n]
    return names


def pattern(name: str) -> re.Pattern:
    return re.compile("".join("[a-z_]+" if p.startswith("<") else re.escape(p)
                              for p in re.split(r"(<[a-z]+>)", name)) + "$")


def test_the_glossary_parses_its_placeholders():
    names = documented_metrics()
    assert "train/reward" in names and "train/adv_mean_<label>" in names and "sft/lr" in names
    assert pattern("train/adv_mean_<label>").match("train/adv_mean_reset")
    assert not pattern("train/adv_mean_<label>").match("train/adv_std_reset")


def test_every_params_key_the_glossary_names_exists():
    text = GLOSSARY.read_text()
    sections = set(Params.__dataclass_fields__)
    keys = [k for k in re.findall(r"`([a-z_]+(?:\.[a-z_<>]+)+)", text) if k.split(".")[0] in sections]
    assert "rl.grad_clip" in keys
    params = params_to_dict(Params())
    stale = []
    for key in keys:
        node = params
        for part in key.split("."):
            if not isinstance(node, dict) or (part not in node and not part.startswith("<")):
                stale.append(key)
                break
            node = next(iter(node.values())) if part.startswith("<") else node[part]  # <arm>: any arm
    assert stale == []


@pytest.mark.slow
def test_the_glossary_lists_exactly_what_the_arms_log(smoke_params, warm_start, tmp_path):
    logged = {p.relative_to(d).with_suffix("").as_posix()  # the warm start's per-step metrics
              for d in [warm_start / "sft" / "live" / "plots" / "metrics"] for p in d.rglob("*.tsv")}
    for arm in ("grpo", "srpo", "srpo_clip_kl", "oracle", "vineppo", "process_oracle"):
        trainer = RLTrainer(smoke_params, arm, 0, warm_start / "sft" / "model", warm_start / "data", tmp_path / arm)
        trainer.run(stop_at=1)
        logged |= {k for record in trainer.state["history"] for k in record if k != "step"}
    documented = documented_metrics()
    undocumented = sorted(k for k in logged if not any(pattern(d).match(k) for d in documented))
    never_logged = [d for d in documented if d not in UNREACHABLE and not any(pattern(d).match(k) for k in logged)]
    assert undocumented == [] and never_logged == []
