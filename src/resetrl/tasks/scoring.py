"""Outcome rewards: 1 for a correct final answer, else 0, whatever the problem source.

The procedural task is checked exactly in-process (microseconds). Real-data problems are checked
by math-verify or a reasoning-gym scorer in the verifier pool's worker processes, each check under
a hard timeout, so a hung check costs one reward, never the run.
"""

from __future__ import annotations

from collections.abc import Sequence

from resetrl.tasks.procedural import Problem, check_chain, reward
from resetrl.tasks.sources import TextProblem
from resetrl.tasks.verify import VerifierPool, check_item


def rewards(problems: Sequence, responses: Sequence[str], verifier: VerifierPool | None = None) -> list[float]:
    """Reward of each (problem, response). Without a pool, text problems are checked in-process
    with no timeout (tests, tiny runs)."""
    text = [i for i, p in enumerate(problems) if isinstance(p, TextProblem)]
    out = [0.0 if isinstance(p, TextProblem) else reward(p, r) for p, r in zip(problems, responses)]
    if text:
        items = [(problems[i].checker, problems[i].gold, responses[i]) for i in text]
        verdicts = verifier.score(items) if verifier is not None else [check_item(item) for item in items]
        for i, verdict in zip(text, verdicts):
            out[i] = verdict.reward
    return out


def group_rewards(problems: Sequence, groups: Sequence[Sequence], verifier: VerifierPool | None = None
                  ) -> list[list[float]]:
    """Rewards of each group of chains (`.text`) answering one problem, scored in one batch."""
    flat = rewards([p for p, g in zip(problems, groups) for _ in g], [c.text for g in groups for c in g], verifier)
    starts = [0]
    for g in groups:
        starts.append(starts[-1] + len(g))
    return [flat[a:b] for a, b in zip(starts, starts[1:])]


def has_step_checker(problem) -> bool:
    """Only the procedural task knows the first wrong thought of a chain; the oracle selector and
    the localization analyses need it."""
    return isinstance(problem, Problem)


def first_error(problem, response: str) -> int | None:
    """The first wrong thought by the step checker (None: none found, or no checker)."""
    return check_chain(problem, response).first_error if has_step_checker(problem) else None


def open_verifier(runtime, problem_sets: Sequence[Sequence]) -> VerifierPool | None:
    """A verifier pool when any problem needs one (close it when done), else None."""
    if any(isinstance(p, TextProblem) for problems in problem_sets for p in problems):
        return VerifierPool(runtime.verify_workers, runtime.verify_timeout_s)
    return None


def verifier_metrics(verifier: VerifierPool | None, before: dict[str, int]) -> dict[str, float]:
    """Checks per outcome since `before` (a copy of verifier.counts): timeouts and parse failures
    score 0 and are logged, so a silently failing verifier shows up in the metrics."""
    if verifier is None:
        return {}
    return {f"verify/{status}": float(n - before.get(status, 0)) for status, n in verifier.counts.items()}
