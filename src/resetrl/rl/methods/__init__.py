"""Credit-assignment methods, one file per family, named once in `METHODS` (keyed by the
`MethodName` enumeration of the params schema): the trainer builds an arm's method from it, and the
analysis reads each family's roles, labels and claims from it.

Adding a method: a file here with a `Method` subclass (its `collect`, `role` and `comparisons`), one
line in `METHODS`, its name in `MethodName` (core/params.py), an arm under `arms` in params.yaml, and a
test of its advantages on hand-built chains."""

from __future__ import annotations

import torch

from resetrl.core.params import ArmConfig, MethodName, Params
from resetrl.core.schema import choices
from resetrl.rl.methods.base import Collected, Comparison, Context, Method, TrainGroup
from resetrl.rl.methods.grpo import GRPO
from resetrl.rl.methods.process import Process
from resetrl.rl.methods.reset import Reset
from resetrl.rl.methods.vine import Vine
from resetrl.rollout.engine import RolloutEngine, SamplingSettings
from resetrl.tasks.verify import VerifierPool

# Registry order is the order of the claims on the results page.
METHODS: dict[str, type[Method]] = {"reset": Reset, "grpo": GRPO, "vine": Vine, "process": Process}
assert set(METHODS) == set(choices(MethodName)), "METHODS and core.params.MethodName must name the same methods"

__all__ = ["METHODS", "Collected", "Comparison", "Context", "Method", "TrainGroup", "build_method", "method_of"]


def method_of(arm: ArmConfig) -> type[Method]:
    return METHODS[arm.method]


def build_method(name: str, engine: RolloutEngine, params: Params, generator: torch.Generator,
                 verifier: VerifierPool | None = None) -> Method:
    """The method of arm `name` (params.arms[name]), sampling with the run's engine and generator."""
    arm = params.arms[name]
    ctx = Context(engine, generator, verifier, params.rl, SamplingSettings.from_config(params.rollout),
                  params.rollout.top_p)
    return method_of(arm)(arm, ctx)
