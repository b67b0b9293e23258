"""The reset rollout buffer shared by RRPO, SRPO and the oracle arm.

Per prompt (paper's release): draw fresh chains one at a time until the base group is full and
enough chains failed, at most `max_draws`; each failed *parent* (not trained on) is cut at a reset
step e chosen by a selector, its thoughts 1..e-1 are kept as a prefix (token ids reused, not
regenerated) and a suffix group is sampled from prompt + prefix. A failure without a complete
thought has nothing to reset into: it joins the base group (reward 0) and is never a parent.
Without enough failures the prompt falls back to one GRPO-style group of `group_size` chains: the
first half of its fresh draws plus as many new, unconditioned ones, which can fail (the first
draws cannot, or they would have been parents). Draws are batched across prompts in rounds that
never draw more than the one-at-a-time rule would.

The positive control (`selector: demo`, beyond the paper) needs no failed parent: its prefix is the
task's own correct solution cut at a late step, the reset a method that knew the right path would make.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from resetrl.core.response_format import THOUGHT_END
from resetrl.rl.localization import localization_prompt_ids, parse_localized_step
from resetrl.rollout.engine import Chain, RolloutEngine, SamplingSettings, prompt_ids
from resetrl.tasks.scoring import first_error, group_rewards, has_step_checker, rewards
from resetrl.tasks.verify import VerifierPool

# layout -> (parents, suffixes per parent, base group size)
LAYOUTS = {"1x4": (1, 4, 4), "2x4": (2, 4, 0), "1x8": (1, 8, 0)}


def clamp_step(step: int | None, n_thoughts: int) -> int:
    """Reset steps live in 1..n (1 when the chain holds no complete thought)."""
    return min(max(step or 1, 1), max(n_thoughts, 1))


@dataclass
class Reset:
    """One reset: the failed parent (None: a demonstration's prefix), where it was cut, and the suffixes
    sampled from there."""

    parent: Chain | None
    n_thoughts: int
    step: int  # e: thoughts 1..e-1 are the prefix, thought e is resampled
    oracle_step: int | None  # the step checker's first erroneous thought, clamped like e (None: no checker)
    prefix_ids: list[int]
    localization: Chain | None = None  # the SRPO call; counted as compute, never trained on
    loc_fell_back: bool = False
    suffixes: list[Chain] = field(default_factory=list)
    suffix_rewards_G: torch.Tensor | None = None  # scored once, shared by training and metrics

    @property
    def deviation(self) -> int | None:
        return None if self.oracle_step is None else self.step - self.oracle_step

    @property
    def clean_prefix(self) -> bool | None:
        """The kept prefix holds no error: the reset is at or before the first error."""
        return None if self.oracle_step is None else self.deviation <= 0


@dataclass
class PromptBuffer:
    problem: object  # a task.Problem or a sources.TextProblem
    drawn: list[Chain] = field(default_factory=list)  # every fresh chain, in draw order (fallback draws last)
    base: list[Chain] = field(default_factory=list)  # group 1, or the fallback fresh group
    parents: list[Chain] = field(default_factory=list)
    resets: list[Reset] = field(default_factory=list)

    @property
    def fallback(self) -> bool:
        """No failed parent and no demonstration reset: the prompt trains as one GRPO-style group."""
        return not self.parents and not self.resets


def draw_fresh(engine: RolloutEngine, problems: list, layout: str, max_draws: int, group_size: int,
               settings: SamplingSettings, generator: torch.Generator,
               verifier: VerifierPool | None = None) -> list[PromptBuffer]:
    n_parents, _, n_base = LAYOUTS[layout]
    buffers = [PromptBuffer(p) for p in problems]

    def missing(b: PromptBuffer) -> int:
        # Each draw fills at most one need, so drawing `missing` at once never over-draws.
        need = max(n_base - len(b.base), 0) + max(n_parents - len(b.parents), 0)
        return min(need, max_draws - len(b.drawn))

    while todo := [(b, missing(b)) for b in buffers if missing(b) > 0]:
        requests = [(prompt_ids(engine.tokenizer, b.problem), []) for b, k in todo for _ in range(k)]
        drawn = [g[0] for g in engine.generate(requests, 1, settings, generator)]
        owners = [b for b, k in todo for _ in range(k)]
        scored = iter(zip(drawn, rewards([b.problem for b in owners], [c.text for c in drawn], verifier)))
        for b, k in todo:
            for _ in range(k):
                chain, score = next(scored)
                b.drawn.append(chain)
                if score == 0.0 and chain.thought_ends and len(b.parents) < n_parents:
                    b.parents.append(chain)
                elif len(b.base) < n_base:
                    b.base.append(chain)
    fallback = [b for b in buffers if len(b.parents) < n_parents]
    kept = group_size // 2
    for b in fallback:
        b.parents, b.base = [], b.drawn[:kept]
    requests = [(prompt_ids(engine.tokenizer, b.problem), []) for b in fallback]
    for b, group in zip(fallback, engine.generate(requests, group_size - kept, settings, generator)):
        b.drawn += group
        b.base += group
    return buffers


def draw_base(engine: RolloutEngine, problems: list, n: int, settings: SamplingSettings,
              generator: torch.Generator) -> list[PromptBuffer]:
    """n fresh chains per problem as its base group (the demonstration arm has no parent to find)."""
    requests = [(prompt_ids(engine.tokenizer, p), []) for p in problems]
    groups = engine.generate(requests, n, settings, generator) if n else [[] for _ in problems]
    return [PromptBuffer(p, drawn=list(g), base=list(g)) for p, g in zip(problems, groups)]


def demonstration_resets(tokenizer, buffers: list[PromptBuffer], progress: float, generator: torch.Generator) -> None:
    """The positive control's reset: thoughts 1..e-1 of the problem's correct solution as the prefix, e
    uniform over the last `window` thoughts, a window that widens from the last thought alone to the whole
    chain as `progress` goes from 0 to 1 (R^3's reverse curriculum: start next to the answer)."""
    for b in buffers:
        thoughts = b.problem.solution.split(THOUGHT_END)[:-1]
        n = len(thoughts)
        window = 1 + int(progress * (n - 1))
        e = n - int(torch.randint(0, window, (1,), generator=generator))
        prefix = tokenizer.encode("".join(t + THOUGHT_END for t in thoughts[:e - 1]), add_special_tokens=False)
        b.resets.append(Reset(None, n, e, None, prefix))


def make_resets(buffers: list[PromptBuffer], steps: list[tuple[int, Chain | None, bool]]) -> None:
    """Attach a Reset to each parent; `steps` holds (e, localization call, fell back) per parent
    in buffer order."""
    pending = iter(steps)
    for b in buffers:
        for parent in b.parents:
            step, loc, fell_back = next(pending)
            ends = parent.thought_ends  # thought i spans ends[i-2]:ends[i-1]
            e = clamp_step(step, len(ends))
            oracle = clamp_step(first_error(b.problem, parent.text), len(ends)) if has_step_checker(b.problem) else None
            prefix = parent.response_ids[:ends[e - 2]] if e > 1 else []
            b.resets.append(Reset(parent, len(ends), e, oracle, prefix, loc, fell_back))


def sample_suffixes(engine: RolloutEngine, buffers: list[PromptBuffer], n: int, settings: SamplingSettings,
                    generator: torch.Generator, verifier: VerifierPool | None = None) -> None:
    resets = [(b, r) for b in buffers for r in b.resets]
    requests = [(prompt_ids(engine.tokenizer, b.problem), r.prefix_ids) for b, r in resets]
    groups = engine.generate(requests, n, settings, generator)
    for (_, r), group, scores in zip(resets, groups, group_rewards([b.problem for b, _ in resets], groups, verifier)):
        r.suffixes = group
        r.suffix_rewards_G = torch.tensor(scores)


def thought_texts(tokenizer, chain: Chain) -> list[str]:
    """The complete thoughts of a chain, cut at its thought spans (not re-split from decoded text)."""
    ends = [0] + chain.thought_ends
    spans = (tokenizer.decode(chain.response_ids[a:b]) for a, b in zip(ends, ends[1:]))
    return [text[:text.rfind(THOUGHT_END)] for text in spans]


# --- reset selectors: (problem, parent) -> (e, localization call or None, fell back) ----------

class RandomSelector:
    """RRPO: e uniform in 1..n, drawn from the run's generator (so resuming replays it)."""

    def __init__(self, generator: torch.Generator):
        self.generator = generator

    def select(self, items: list[tuple[object, Chain]]) -> list[tuple[int, Chain | None, bool]]:
        out = []
        for _, parent in items:
            n = max(len(parent.thought_ends), 1)
            out.append((int(torch.randint(1, n + 1, (1,), generator=self.generator)), None, False))
        return out


class OracleSelector:
    """CPI-CARO's improvability oracle, here exact: the step checker's first erroneous thought."""

    def select(self, items: list[tuple[object, Chain]]) -> list[tuple[int, Chain | None, bool]]:
        return [(first_error(problem, parent.text) or 1, None, False) for problem, parent in items]


class SelfSelector:
    """SRPO: one localization call to the current policy per parent (batched); parse failures and
    the answer 0 fall back to e = 1."""

    def __init__(self, engine: RolloutEngine, settings: SamplingSettings, generator: torch.Generator):
        self.engine, self.settings, self.generator = engine, settings, generator

    def select(self, items: list[tuple[object, Chain]]) -> list[tuple[int, Chain | None, bool]]:
        tokenizer = self.engine.tokenizer
        thoughts = [thought_texts(tokenizer, parent) for _, parent in items]
        requests = [(localization_prompt_ids(tokenizer, problem.prompt, t), [])
                    for (problem, _), t in zip(items, thoughts)]
        calls = [g[0] for g in self.engine.generate(requests, 1, self.settings, self.generator)]
        out = []
        for call, t in zip(calls, thoughts):
            step, fell_back = parse_localized_step(call.text, max(len(t), 1))
            out.append((step, call, fell_back))
        return out
