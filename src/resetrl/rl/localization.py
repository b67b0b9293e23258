"""Self-localization: the policy names the first wrong step of its own failed chain.

The call shows the problem and the failed chain as numbered steps and asks for the originating
error as ``\\boxed{N}``; RL then resets just before step N. The call itself is never trained on
by RL; a synthetic SFT warm start (``localization_example``) stands in for the instruct tuning of
the paper's large models. The user text is, with ``\\n`` as the only line break::

    Problem: <problem prompt without its trailing newline>
    Step 1: <thought 1>
    ...
    Step n: <thought n>
    <INSTRUCTION>
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Mapping

from resetrl.core.tokenizer import target_ids
from resetrl.tasks.procedural import Problem, corrupt_chain, extract_boxed, split_thoughts
from resetrl.tasks.scoring import has_step_checker

# Kept to two short ASCII sentences: the char-level policy learns it from scratch.
INSTRUCTION = (
    "The final answer is wrong, so at least one step is wrong. Give the first step that does "
    "not follow from the problem and the earlier steps; do not re-solve. Answer with \\boxed{N}."
)

# ASCII only: int() would also accept e.g. fullwidth or Arabic-Indic digits.
_DIGITS_RE = re.compile(r"[0-9]+", re.ASCII)
_STEP_RE = re.compile(r"step\s*([0-9]+)", re.ASCII | re.IGNORECASE)


def localization_text(problem_prompt: str, thoughts: list[str]) -> str:
    """The user content of the localization call (format in the module docstring).

    Newlines inside a thought become spaces so that line i is always exactly step i.
    """
    problem = problem_prompt.removesuffix("\n")
    steps = [f"Step {i}: " + t.replace("\n", " ") for i, t in enumerate(thoughts, 1)]
    return "\n".join([f"Problem: {problem}", *steps, INSTRUCTION]) + "\n"


def localization_prompt_ids(tokenizer, problem_prompt: str, thoughts: list[str]) -> list[int]:
    """Prompt ids: one chat-templated user turn if the tokenizer has a template, else raw text."""
    text = localization_text(problem_prompt, thoughts)
    if getattr(tokenizer, "chat_template", None) is None:
        return tokenizer.encode(text, add_special_tokens=False)
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True
    )
    # transformers >= 5 returns a BatchEncoding here, older versions a plain list.
    if isinstance(ids, Mapping):
        ids = ids["input_ids"]
    return [int(i) for i in ids]


def localization_target(step: int) -> str:
    """The answer the policy should produce for first error ``step`` (the caller appends EOS)."""
    return f"\\boxed{{{step}}}"


def _bounded_int(digits: str, n: int) -> int | None:
    """ASCII ``digits`` as an int in 0..n, else None; the length check keeps int() off huge
    strings (which it would reject beyond ~4300 digits anyway)."""
    significant = digits.lstrip("0") or "0"
    if len(significant) > len(str(n)):
        return None
    value = int(significant)
    return value if value <= n else None


def parse_localized_step(text: str, n_thoughts: int) -> tuple[int, bool]:
    """(step in 1..n_thoughts, fell_back) from the policy's answer; never raises on any text.

    The answer is the last brace-balanced ``\\boxed{...}`` (as in ``task.extract_boxed``, so the
    model's final commitment, like the outcome reward). If its stripped content is an ASCII
    integer in 1..n it is returned with fell_back=False. ``\\boxed{0}`` ("no error") is
    impossible for a failed chain and maps to step 1. Any other answer (no box, not an integer,
    out of range) falls back to the last "Step N" mention with N in 1..n, else to step 1; every
    path except a valid box reports fell_back=True.
    """
    if n_thoughts < 1:
        raise ValueError(f"n_thoughts must be >= 1, got {n_thoughts}")
    boxed = (extract_boxed(text) or "").strip()
    if _DIGITS_RE.fullmatch(boxed):
        step = _bounded_int(boxed, n_thoughts)
        if step == 0:
            return 1, True
        if step is not None:
            return step, False
    mentioned = (_bounded_int(m[1], n_thoughts) for m in _STEP_RE.finditer(text))
    valid = [s for s in mentioned if s]  # drops both None (out of range) and 0
    return (valid[-1] if valid else 1), True


def localization_example(tokenizer, problem: Problem, rng: random.Random,
                         surface_forms: int = 1) -> tuple[list[int], list[int], int]:
    """A synthetic SFT example: (prompt ids, target ids ending in EOS, first error) of a chain
    corrupted at one thought with later thoughts carried forward, in the task's surface forms."""
    response, at = corrupt_chain(problem, rng, surface_forms=surface_forms)
    prompt = localization_prompt_ids(tokenizer, problem.prompt, split_thoughts(response))
    target = target_ids(tokenizer, localization_target(at))
    return prompt, target, at


HELDOUT_SEED = 0  # the same held-out failed chains for the warm start and every arm and seed


def heldout_failed_chains(
    problems: list[Problem], n: int, seed: int = HELDOUT_SEED
) -> list[tuple[Problem, str, int]]:
    """n fixed (problem, failed response, first error) triples, cycling through ``problems``; none
    where a problem has no step checker (real data: the first error is unknown)."""
    if n < 0 or (n > 0 and not problems):
        raise ValueError(f"need n >= 0 and, for n > 0, some problems; got n={n}")
    if not all(has_step_checker(p) for p in problems):
        return []
    rng = random.Random(seed)
    return [(p, *corrupt_chain(p, rng)) for p in itertools.islice(itertools.cycle(problems), n)]
