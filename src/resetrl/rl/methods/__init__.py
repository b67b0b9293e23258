"""Credit-assignment methods, one file per family, named once in `FAMILIES` (keyed by the `Family`
enumeration of the params schema): the trainer builds an arm's method from it, and the
analysis reads each family's roles, labels and claims from it.

Adding a method: a file here with a `Method` subclass (its `collect`, `role` and `comparisons`), one
line in `FAMILIES`, its name in `Family` (core/params.py), an arm under `arms` in params.yaml, and a
test of its advantages on hand-built chains."""

from __future__ import annotations

import torch

from resetrl.core.params import ArmConfig, Family, Params
from resetrl.core.schema import choices
from resetrl.rl.methods.base import Collected, Comparison, Context, Method, TrainGroup
from resetrl.rl.methods.grpo import GRPO
from resetrl.rl.methods.process import Process
from resetrl.rl.methods.reset import Reset
from resetrl.rl.methods.vine import Vine
from resetrl.rollout.engine import RolloutEngine, SamplingSettings
from resetrl.tasks.verify import VerifierPool

# Registry order is the order of the claims on the results page.
FAMILIES: dict[str, type[Method]] = {"reset": Reset, "grpo": GRPO, "vine": Vine, "process": Process}
assert set(FAMILIES) == set(choices(Family)), "FAMILIES and core.params.Family must name the same families"

__all__ = ["FAMILIES", "Collected", "Comparison", "Context", "Method", "TrainGroup", "build_method", "family_of"]


def family_of(arm: ArmConfig) -> type[Method]:
    """The method class of an arm's family."""
    return FAMILIES[arm.family]


def build_method(name: str, engine: RolloutEngine, params: Params, generator: torch.Generator,
                 verifier: VerifierPool | None = None) -> Method:
    """The method of arm `name` (params.arms[name]), sampling with the run's engine and generator."""
    arm = params.arms[name]
    ctx = Context(engine, generator, verifier, params.rl, SamplingSettings.from_config(params.rollout))
    return family_of(arm)(arm, ctx)
