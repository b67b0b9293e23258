"""The embedded procedural task: left-to-right integer arithmetic with an exact step checker.

A solution is a chain of thoughts, one per operation (``a{op}b=c``), each closed by
``THOUGHT_END``; the last one also states the answer as ``\\boxed{c}``. Because every step is
checkable, the index of the first wrong thought of a failed chain is known exactly.

A thought can be written in several surface forms (``FORMS``: spacing and the sign between the
operation and its result). With ``task.surface_forms`` > 1 the warm start imitates solutions whose
every thought takes one of the first ``surface_forms`` forms at random, so two correct chains of a
problem rarely share their text: a literal shared prefix is then a property of a reset, as with
real reasoning chains, not of the task. The step checker reads every form.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from resetrl.core.response_format import BOXED, THOUGHT_END

OPS = ("+", "-", "*")

Ops = tuple[tuple[str, int], ...]

# The written forms of one thought, a{op}b=c; the first is the canonical one (Problem.solution).
FORMS = ("{a}{op}{b}={c}", "{a} {op} {b} = {c}", "{a}{op}{b} -> {c}", "{a} {op} {b} is {c}")
# ASCII so that int() only ever sees ASCII digits (\d would also accept e.g. Arabic-Indic ones).
_STEP_RE = re.compile(r"^\s*(-?\d+)\s*([+\-*])\s*(\d+)\s*(?:=|->|is)\s*(-?\d+)", re.ASCII)
_INT_RE = re.compile(r"-?[0-9]+")
_MAX_ATTEMPTS = 1000  # restarts of one problem when the op weights leave no legal operation


def _apply(a: int, op: str, b: int) -> int:
    return a + b if op == "+" else a - b if op == "-" else a * b


def _parse_int(text: str) -> int | None:
    if not _INT_RE.fullmatch(text):
        return None
    try:
        return int(text)
    except ValueError:  # beyond Python's int-from-str digit limit
        return None


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


@dataclass(frozen=True)
class Problem:
    id: str
    start: int
    ops: Ops
    answer: int

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _is_int(self.start) or not _is_int(self.answer):
            raise TypeError("id must be a str, start and answer ints")
        if not isinstance(self.ops, tuple) or not self.ops:
            raise ValueError("ops must be a non-empty tuple of (op, operand) pairs")
        for pair in self.ops:
            if not (isinstance(pair, tuple) and len(pair) == 2 and _is_int(pair[1])):
                raise TypeError(f"bad operation {pair!r}: expected (op, int operand)")
            op, b = pair
            if op not in OPS or b < (2 if op == "*" else 1):
                raise ValueError(f"illegal operation {op!r} {b}")
        values = self.values
        if min(values) < 0:
            raise ValueError(f"intermediate values must be non-negative, got {values}")
        if values[-1] != self.answer:
            raise ValueError(f"answer {self.answer} != {values[-1]} computed from the ops")

    @property
    def prompt(self) -> str:
        steps = " ".join(f"{op}{b}" for op, b in self.ops)
        return f"Compute left to right: {self.start} {steps}\n"

    @property
    def values(self) -> list[int]:
        """[start, v1, ..., answer]: the value after each operation."""
        values = [self.start]
        for op, b in self.ops:
            values.append(_apply(values[-1], op, b))
        return values

    @property
    def solution(self) -> str:
        return _render_chain(self.start, self.ops)

    def written_solution(self, rng: random.Random, surface_forms: int, slip_rate: float = 0.0,
                         final_step_accuracy: float | None = None) -> str:
        """A warm-start demonstration: each thought in one of the first `surface_forms` forms at
        random; with probability `slip_rate` an ordinary thought states its result one too high (a
        slip, carried forward by the later thoughts, so the boxed answer is wrong). With
        `final_step_accuracy` the last thought is the hard step: right with that probability, else
        its result is HARD_STEP_ERROR too high, an error of its own kind, and no slip there."""
        return _render_chain(self.start, self.ops, rng, surface_forms, slip_rate, final_step_accuracy)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "start": self.start,
            "ops": [[op, b] for op, b in self.ops],
            "answer": self.answer,
            "prompt": self.prompt,
            "solution": self.solution,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Problem:
        """Inverse of ``to_dict``; raises KeyError/TypeError/ValueError on any inconsistency."""
        ops = d["ops"]
        if not isinstance(ops, list) or not all(isinstance(o, list) for o in ops):
            raise TypeError("ops must be a list of [op, operand] pairs")
        ops_t = tuple(tuple(o) for o in ops)
        problem = cls(id=d["id"], start=d["start"], ops=ops_t, answer=d["answer"])
        for key in ("prompt", "solution"):
            if d[key] != getattr(problem, key):
                raise ValueError(f"{key} does not match the one recomputed from the ops")
        return problem


def _form(rng: random.Random | None, surface_forms: int) -> str:
    if not 1 <= surface_forms <= len(FORMS):
        raise ValueError(f"surface_forms must be in 1..{len(FORMS)}, got {surface_forms}")
    return FORMS[0] if rng is None or surface_forms == 1 else FORMS[rng.randrange(surface_forms)]


# Demonstrated errors are one-sided (a slip states its result one too high, the hard step's error
# HARD_STEP_ERROR too high), so two errors of a chain never cancel: every chain with an error fails,
# and the outcome reward never pays for a wrong step.
SLIP_ERROR = 1
HARD_STEP_ERROR = 10


def _render_chain(start: int, ops: Ops, rng: random.Random | None = None, surface_forms: int = 1,
                  slip_rate: float = 0.0, final_step_accuracy: float | None = None) -> str:
    """The chain that applies ``ops`` from ``start``, boxing its final value; each thought in a
    random one of the first ``surface_forms`` forms and with the demonstrated errors of
    ``Problem.written_solution`` (both need ``rng``), carried forward by later thoughts."""
    thoughts, a = [], start
    for i, (op, b) in enumerate(ops, 1):
        c = _apply(a, op, b)
        if final_step_accuracy is not None and i == len(ops):
            c += 0 if rng.random() < final_step_accuracy else HARD_STEP_ERROR
        elif slip_rate and rng.random() < slip_rate:
            c += SLIP_ERROR
        thoughts.append(_form(rng, surface_forms).format(a=a, op=op, b=b, c=c))
        a = c
    thoughts[-1] += f" {BOXED}{a}}}"
    return "".join(t + THOUGHT_END for t in thoughts)


# ---------------------------------------------------------------------------------------------
# Generation


@dataclass(frozen=True)
class _Generator:
    min_steps: int
    max_steps: int
    start_max: int
    addend_max: int
    multiplier_max: int
    value_max: int
    op_weights: Mapping[str, float]
    final_op_weights: Mapping[str, float] | None = None  # the last operation's mix (None: op_weights)

    def __post_init__(self) -> None:
        if not 1 <= self.min_steps <= self.max_steps:
            steps = f"{self.min_steps}..{self.max_steps}"
            raise ValueError(f"need 1 <= min_steps <= max_steps, got {steps}")
        if self.start_max < 10 or self.addend_max < 1 or self.multiplier_max < 2:
            raise ValueError("need start_max >= 10, addend_max >= 1, multiplier_max >= 2")
        # Guarantees some first operation is legal from every start value.
        if self.value_max < 2 * self.start_max:
            raise ValueError(f"value_max {self.value_max} < 2 * start_max {self.start_max}")
        mixes = {"op_weights": self.op_weights, "final_op_weights": self.final_op_weights}
        for name, weights in ((n, w) for n, w in mixes.items() if w is not None):
            if set(weights) - set(OPS) or any(w < 0 for w in weights.values()):
                raise ValueError(f"{name} must map a subset of {OPS} to weights >= 0")
            if not any(w > 0 for w in weights.values()):
                raise ValueError(f"{name}: at least one weight must be positive")

    def _operand_range(self, op: str, v: int) -> tuple[int, int]:
        """Inclusive operand range keeping the result in [0, value_max]; empty if lo > hi."""
        if op == "+":
            return 1, min(self.addend_max, self.value_max - v)
        if op == "-":
            return 1, min(self.addend_max, v)
        return 2, self.multiplier_max if v == 0 else min(self.multiplier_max, self.value_max // v)

    def _attempt(self, rng: random.Random, n_steps: int) -> tuple[int, Ops] | None:
        v = start = rng.randint(10, self.start_max)
        ops: list[tuple[str, int]] = []
        for i in range(n_steps):
            last = i == n_steps - 1 and self.final_op_weights is not None
            weights = self.final_op_weights if last else self.op_weights
            allowed = [op for op in OPS if weights.get(op, 0) > 0]
            ranges = [(op, self._operand_range(op, v)) for op in allowed]
            legal = [(op, r) for op, r in ranges if r[0] <= r[1]]
            if not legal:
                return None
            op, (lo, hi) = rng.choices(legal, weights=[weights[op] for op, _ in legal])[0]
            b = rng.randint(lo, hi)
            ops.append((op, b))
            v = _apply(v, op, b)
        return start, tuple(ops)

    def stream(self, seed: int) -> Iterator[tuple[int, Ops]]:
        """An endless deterministic sequence of (start, ops)."""
        rng = random.Random(seed)
        while True:
            n_steps = rng.randint(self.min_steps, self.max_steps)
            for _ in range(_MAX_ATTEMPTS):
                drawn = self._attempt(rng, n_steps)
                if drawn is not None:
                    yield drawn
                    break
            else:
                weights = dict(self.op_weights)
                raise ValueError(f"op_weights {weights} cannot build {n_steps}-step chains")


def _take(gen: _Generator, n: int, seed: int, prefix: str) -> list[Problem]:
    stream = gen.stream(seed)
    return [_make_problem(f"{prefix}-{i:06d}", *next(stream)) for i in range(n)]


def _make_problem(id_: str, start: int, ops: Ops) -> Problem:
    return Problem(id=id_, start=start, ops=ops, answer=_apply_all(start, ops))


def _apply_all(start: int, ops: Ops) -> int:
    for op, b in ops:
        start = _apply(start, op, b)
    return start


def generate_problems(
    n: int,
    *,
    seed: int,
    min_steps: int,
    max_steps: int,
    start_max: int,
    addend_max: int,
    multiplier_max: int,
    value_max: int,
    op_weights: Mapping[str, float],
    id_prefix: str,
    final_op_weights: Mapping[str, float] | None = None,
) -> list[Problem]:
    ranges = (start_max, addend_max, multiplier_max, value_max, op_weights, final_op_weights)
    return _take(_Generator(min_steps, max_steps, *ranges), n, seed, id_prefix)


class TaskSpec(Protocol):
    """The ``task`` section of the config, as far as splitting needs it."""

    seed: int
    n_train: int
    n_val: int
    n_test: int
    n_ood: int
    min_steps: int
    max_steps: int
    ood_min_steps: int
    ood_max_steps: int
    start_max: int
    addend_max: int
    multiplier_max: int
    value_max: int
    op_weights: Mapping[str, float]
    ood_op_weights: Mapping[str, float]
    final_op_weights: Mapping[str, float] | None


class ProblemSpaceError(ValueError):
    """The task's settings describe fewer distinct problems than a split asks for."""


def _unique_problems(
    gen: _Generator, n: int, seed: int, prefix: str, seen: set[str]
) -> list[Problem]:
    """n problems whose prompts are not in ``seen`` nor repeated; adds their prompts to ``seen``."""
    problems: list[Problem] = []
    stream = gen.stream(seed)
    for _ in range(100 * n + 1000):  # bounded: a tiny problem space must fail, not hang
        if len(problems) == n:
            break
        p = _make_problem(f"{prefix}-{len(problems):06d}", *next(stream))
        if p.prompt not in seen:
            seen.add(p.prompt)
            problems.append(p)
    if len(problems) < n:
        raise ProblemSpaceError(
            f"task.n_{prefix} ({n}): only {len(problems)} distinct {prefix} problems exist beside the other "
            f"splits' (the chain lengths, operand ranges and op weights allow too few): lower task.n_{prefix} "
            "or widen the task (e.g. task.max_steps, task.start_max, task.addend_max)")
    return problems


def make_splits(task: TaskSpec) -> dict[str, list[Problem]]:
    """train/val/test in distribution and an ood split (its own chain lengths and op mix), all
    fixed by ``task.seed``.

    Evaluation splits are disjoint from train and from each other (by prompt) so that no score
    rewards memorisation; train itself may repeat a problem.
    """
    ranges = (task.start_max, task.addend_max, task.multiplier_max, task.value_max)
    in_dist = _Generator(task.min_steps, task.max_steps, *ranges, task.op_weights, task.final_op_weights)
    ood = _Generator(task.ood_min_steps, task.ood_max_steps, *ranges, task.ood_op_weights, task.final_op_weights)
    # Fixed per-split offsets (not hash()) keep the splits reproducible across processes.
    train = _take(in_dist, task.n_train, task.seed * 10, "train")
    seen = {p.prompt for p in train}
    return {
        "train": train,
        "val": _unique_problems(in_dist, task.n_val, task.seed * 10 + 1, "val", seen),
        "test": _unique_problems(in_dist, task.n_test, task.seed * 10 + 2, "test", seen),
        "ood": _unique_problems(ood, task.n_ood, task.seed * 10 + 3, "ood", seen),
    }


# ---------------------------------------------------------------------------------------------
# Parsing and checking


def split_thoughts(response: str) -> list[str]:
    """The complete thoughts; text after the last ``THOUGHT_END`` is unfinished and dropped."""
    return response.split(THOUGHT_END)[:-1]


def extract_boxed(text: str) -> str | None:
    """Content of the last brace-balanced ``\\boxed{...}``, or None.

    "Last" means the last to open, so ``\\boxed{\\boxed{1}}`` gives "1". A box whose braces never
    close is skipped in favour of an earlier one. One linear pass matches all braces.
    """
    closing: dict[int, int] = {}
    stack: list[int] = []
    for i, ch in enumerate(text):
        if ch == "{":
            stack.append(i)
        elif ch == "}" and stack:
            closing[stack.pop()] = i
    pos = text.rfind(BOXED)
    while pos != -1:
        brace = pos + len(BOXED) - 1
        if brace in closing:
            return text[brace + 1 : closing[brace]]
        pos = text.rfind(BOXED, 0, pos)
    return None


def _boxed_int(text: str) -> int | None:
    boxed = extract_boxed(text)
    return None if boxed is None else _parse_int(boxed.strip())


def reward(problem: Problem, response: str) -> float:
    """Outcome reward: 1.0 iff the last boxed value is the answer."""
    return 1.0 if _boxed_int(response) == problem.answer else 0.0


@dataclass(frozen=True)
class ChainCheck:
    """Per-thought verdicts of ``check_chain``.

    ``first_error`` is the 1-based index of the first wrong thought, or None iff the thoughts form
    a complete correct solution. A chain that stops early with every thought ok is charged to its
    last thought (the one that should have been followed by more), and an empty chain to thought
    1, so a failed chain always has a first error. ``correct`` is strictly the outcome reward,
    which can disagree with ``first_error`` (e.g. errors that cancel out).
    """

    step_ok: tuple[bool, ...]
    first_error: int | None
    correct: bool


def _step_ok(
    problem: Problem, i: int, thought: str, carried: int | None
) -> tuple[bool, int | None]:
    """Whether thought i (1-based) is locally right, and the result it states (None: unparsable)."""
    m = _STEP_RE.match(thought)
    if m is None:
        return False, None
    a, op, b, c = (_parse_int(m[1]), m[2], _parse_int(m[3]), _parse_int(m[4]))
    if a is None or b is None or c is None:
        return False, None
    n_ops = len(problem.ops)
    # A step is judged against the value it was handed, so an earlier slip is not charged again.
    # After an unparsable thought nothing was handed on, and any starting value is accepted.
    ok = (
        i <= n_ops
        and (carried is None or a == carried)
        and (op, b) == problem.ops[i - 1]
        and c == _apply(a, op, b)
        and (_boxed_int(thought) == c if i == n_ops else "\\boxed" not in thought)
    )
    return ok, c


def check_chain(problem: Problem, response: str) -> ChainCheck:
    verdicts: list[bool] = []
    carried: int | None = problem.start
    for i, thought in enumerate(split_thoughts(response), 1):
        ok, carried = _step_ok(problem, i, thought, carried)
        verdicts.append(ok)
    n = len(verdicts)
    if not all(verdicts):
        first_error: int | None = verdicts.index(False) + 1
    elif n < len(problem.ops):
        first_error = max(1, n)
    else:
        first_error = None
    return ChainCheck(tuple(verdicts), first_error, reward(problem, response) == 1.0)


def _slips(c: int) -> set[int]:
    """Plausible wrong results for a true result c: small offsets, carry slips, one wrong digit."""
    wrong = {c + d for d in (-10, -2, -1, 1, 2, 10)}
    digits = str(c)
    for k, old in enumerate(digits):
        for new in "0123456789":
            if new != old and not (k == 0 and new == "0" and len(digits) > 1):
                wrong.add(int(digits[:k] + new + digits[k + 1 :]))
    return {w for w in wrong if w >= 0 and w != c}


def corrupt_chain(problem: Problem, rng: random.Random, at: int | None = None,
                  surface_forms: int = 1) -> tuple[str, int]:
    """A failed chain whose first error is thought ``at`` (default: uniform over the thoughts),
    written in the first ``surface_forms`` forms.

    Thought ``at`` states a wrong result; every later thought correctly carries it forward, so
    ``check_chain`` flags exactly ``at`` and the boxed answer is wrong.
    """
    n_ops = len(problem.ops)
    at = rng.randint(1, n_ops) if at is None else at
    if not 1 <= at <= n_ops:
        raise ValueError(f"at must be in 1..{n_ops}, got {at}")
    values = problem.values
    a, (op, b), rest = values[at - 1], problem.ops[at - 1], problem.ops[at:]
    # +/- keep and *k scales the offset, so the answer always ends up wrong; filter regardless.
    candidates = sorted(w for w in _slips(values[at]) if _apply_all(w, rest) != problem.answer)
    wrong = rng.choice(candidates)
    head = split_thoughts(_render_chain(problem.start, problem.ops, rng, surface_forms))[: at - 1]
    bad = _form(rng, surface_forms).format(a=a, op=op, b=b, c=wrong)
    if not rest:
        return "".join(t + THOUGHT_END for t in head) + f"{bad} {BOXED}{wrong}}}{THOUGHT_END}", at
    return "".join(t + THOUGHT_END for t in [*head, bad]) + _render_chain(wrong, rest, rng, surface_forms), at
