"""Problems from real data: NuminaMath, reasoning-gym and evaluation benchmarks in local files.

The procedural task (``resetrl.tasks.procedural``) checks every step; these sources only have a verifiable final
answer, so they carry the gold answer and the name of the checker that compares against it. All of
them share the paper's raw-completion prompt, which asks for the same ``</thought>``-delimited chain.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resetrl.core.response_format import THOUGHT_END
from resetrl.core.storage import DataError, PathLike, read_jsonl
from resetrl.tasks.procedural import Problem, extract_boxed

# A str.format template (hence "{{}}"): no chat template and no worked examples, as in the paper.
THOUGHT_PROMPT = (
    "Solve the following problem step by step. Write the solution as a sequence of thoughts. Each thought is"
    " one self-contained step: it says what it does and states its result, so that it can be checked on its own."
    " End every thought with " + THOUGHT_END + ". Put the final answer inside \\boxed{{}} in the last thought.\n\n"
    "Problem: {question}\n\n"
    "Solution:\n"
)

MATH_CHECKER = "math"
RG_CHECKER_PREFIX = "reasoning_gym:"
_FIELDS = ("id", "question", "answer", "source", "checker")

# ---------------------------------------------------------------------------------------------
# The problem record


@dataclass(frozen=True)
class TextProblem:
    """A problem judged only by its final answer, with everything its checker needs."""

    id: str
    question: str
    answer: str
    source: str
    checker: str
    entry: dict | None = field(default=None, hash=False)  # dicts are unhashable; the other fields identify it

    def __post_init__(self) -> None:
        for key in _FIELDS:
            value = getattr(self, key)
            if not isinstance(value, str):
                raise TypeError(f"{key!r} must be a str, got {type(value).__name__}")
            if not value.strip():
                raise ValueError(f"{key!r} must not be empty")
        if self.checker == MATH_CHECKER:
            if self.entry is not None:
                raise ValueError("'entry' must be None for the math checker")
        elif self.checker.startswith(RG_CHECKER_PREFIX) and self.checker != RG_CHECKER_PREFIX:
            if not isinstance(self.entry, dict):
                raise TypeError(f"'entry' must be a dict for {self.checker}, got {type(self.entry).__name__}")
            # Stored problems are re-read from JSON; a tuple or NaN would silently change what the scorer sees.
            if json.loads(json.dumps(self.entry)) != self.entry:
                raise ValueError("'entry' does not survive a JSON round trip (tuples, NaN, non-str keys?)")
        else:
            expected = f"{MATH_CHECKER!r} or '{RG_CHECKER_PREFIX}<dataset>'"
            raise ValueError(f"'checker' must be {expected}, got {self.checker!r}")

    @property
    def prompt(self) -> str:
        return THOUGHT_PROMPT.format(question=self.question)

    @property
    def gold(self) -> Any:
        """What the checker compares against: math-verify takes the answer, reasoning-gym the whole entry."""
        return self.answer if self.checker == MATH_CHECKER else self.entry

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": "text"}
        d.update({key: getattr(self, key) for key in _FIELDS})
        d["entry"] = self.entry
        d["prompt"] = self.prompt
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TextProblem:
        """Inverse of ``to_dict``; strict so that a stale or hand-edited file fails at load, not in training."""
        if not isinstance(d, Mapping):
            raise TypeError(f"expected a mapping, got {type(d).__name__}")
        if d.get("kind") != "text":
            raise ValueError(f"'kind' must be 'text', got {d.get('kind')!r}")
        missing = [key for key in _FIELDS if key not in d]
        if missing:
            raise ValueError(f"missing key {missing[0]!r}")
        unknown = sorted(set(d) - {"kind", "entry", "prompt", *_FIELDS})
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r}")
        problem = cls(**{key: d[key] for key in _FIELDS}, entry=d.get("entry"))
        if "prompt" in d and d["prompt"] != problem.prompt:
            raise ValueError("'prompt' differs from THOUGHT_PROMPT applied to the question (another prompt version?)")
        return problem


def problem_from_dict(d: Mapping[str, Any]) -> Problem | TextProblem:
    """Read either kind of stored problem; records without "kind" predate TextProblem and are procedural."""
    kind = d.get("kind")
    if kind is None:
        return Problem.from_dict(d)
    if kind == "text":
        return TextProblem.from_dict(d)
    raise ValueError(f"unknown problem 'kind' {kind!r} (expected 'text' or none)")


# ---------------------------------------------------------------------------------------------
# The verifiable-answer filter

_TEXT_COMMAND = re.compile(r"\\(?:text[a-z]*|mbox|hbox|mathrm|operatorname)(?![A-Za-z])")
_DEGREES = re.compile(r"\\circ(?![A-Za-z])|\\degree(?![A-Za-z])|°")
# Single-letter units (metres, seconds, grams, hours, litres) only count after a number and a space, so "3x" or
# "x=3" stay algebra; multi-letter units (cm, kg, km, hours) are caught as words below.
_LETTER_UNIT = re.compile(r"[0-9]\s*(?:\s|~|\\[,;:! ])\s*[msghlL](?:\^\{?[23]\}?)?$")
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")
_WORD = re.compile(r"[^\W\d_]{2,}")  # two or more letters of any script: a word, a unit or a product of variables
_CHOICE = re.compile(r"[A-E]|\([A-E]\)")


def _braces_balanced(text: str) -> bool:
    depth = 0
    for ch in text.replace("\\{", "").replace("\\}", ""):
        depth += (ch == "{") - (ch == "}")
        if depth < 0:
            return False
    return depth == 0 and text.count("\\{") == text.count("\\}")


def boxed_answer_ok(answer: str) -> bool:
    """Whether a NuminaMath boxed answer is short, clean mathematics that math-verify can compare.

    The paper keeps only such problems, so that the outcome reward is not noise from answers in prose or units.
    """
    answer = answer.strip()
    if not answer or len(answer) > 60 or not _braces_balanced(answer):
        return False
    if _TEXT_COMMAND.search(answer) or _DEGREES.search(answer) or "%" in answer or _LETTER_UNIT.search(answer):
        return False
    if _WORD.search(_LATEX_COMMAND.sub(" ", answer)):
        return False
    return any(ch in "0123456789" for ch in answer) or _CHOICE.fullmatch(answer) is not None


# ---------------------------------------------------------------------------------------------
# Files


def read_rows(path: PathLike) -> list[dict[str, Any]]:
    """Rows of a local .parquet, .jsonl or .json file: the formats datasets are shipped in offline."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return read_jsonl(path)
    if suffix == ".json":
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise DataError(f"{path}: cannot read JSON ({e})") from e
        if not isinstance(rows, list):
            raise DataError(f"{path}: expected a JSON list of objects, got {type(rows).__name__}")
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise DataError(f"{path}: row {i + 1}: expected an object, got {type(row).__name__}")
        return rows
    if suffix == ".parquet":
        import pyarrow.parquet as pq  # lazy: only parquet inputs need pyarrow

        try:
            return pq.read_table(path).to_pylist()
        except Exception as e:  # pyarrow raises its own error types for corrupt files
            raise DataError(f"{path}: cannot read parquet ({e})") from e
    raise DataError(f"{path}: unknown suffix {path.suffix!r} (expected .parquet, .jsonl or .json)")


# ---------------------------------------------------------------------------------------------
# NuminaMath


def numina_problems(
    rows: Sequence[Mapping[str, Any]], n_train: int = 400, n_test: int = 100, seed: int = 42, subset: str = "olympiads"
) -> tuple[list[TextProblem], list[TextProblem]]:
    """The paper's split: verifiable-answer problems of one NuminaMath-CoT source, shuffled, train then test.

    Duplicates are dropped before splitting so no test problem is also a train problem.
    """
    if n_train < 0 or n_test < 0:
        raise ValueError(f"n_train and n_test must be >= 0, got {n_train}, {n_test}")
    kept: list[TextProblem] = []
    seen: set[str] = set()
    n_subset = 0
    for i, row in enumerate(rows):
        missing = [key for key in ("source", "problem", "solution") if not isinstance(row.get(key), str)]
        if missing:
            raise ValueError(f"numina row {i}: missing or non-str {missing[0]!r}")
        if row["source"] != subset:
            continue
        n_subset += 1
        answer = extract_boxed(row["solution"])
        question = row["problem"].strip()
        key = " ".join(question.split())
        if answer is None or not boxed_answer_ok(answer) or not key or key in seen:
            continue
        seen.add(key)
        kept.append(TextProblem(f"numina-{i}", question, answer.strip(), f"numina/{subset}", MATH_CHECKER))
    need = n_train + n_test
    if len(kept) < need:
        raise ValueError(
            f"only {len(kept)} of {n_subset} {subset!r} rows passed the answer filter (distinct problems); need {need}"
        )
    random.Random(seed).shuffle(kept)
    return kept[:n_train], kept[n_train:need]


def load_numina(path: str | None) -> list[dict[str, Any]]:
    """NuminaMath-CoT rows from a local file, or from the Hugging Face hub when no path is configured."""
    if path:
        return read_rows(path)
    hint = "pass a local parquet/JSONL copy of AI-MO/NuminaMath-CoT via the config key task.numina.path"
    try:
        import datasets  # optional: clusters without hub access use a local file
    except ImportError as e:
        raise RuntimeError(f"the `datasets` package is not installed; {hint}") from e
    try:
        ds = datasets.load_dataset("AI-MO/NuminaMath-CoT", split="train")
    except Exception as e:  # offline, gated or unreachable hub: all mean the same to the user
        raise RuntimeError(f"cannot load AI-MO/NuminaMath-CoT from the hub ({type(e).__name__}: {e}); {hint}") from e
    return ds.to_list() if hasattr(ds, "to_list") else [dict(row) for row in ds]


# ---------------------------------------------------------------------------------------------
# reasoning-gym


def _jsonable(x: Any, where: str) -> Any:
    """x with tuples as lists and numpy scalars as Python ones, so the stored entry equals the scored one."""
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    if isinstance(x, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(x)]
    if isinstance(x, Mapping):
        if not all(isinstance(k, str) for k in x):
            raise TypeError(f"{where}: non-str key in {sorted(map(repr, x))[:5]}")
        return {k: _jsonable(v, f"{where}.{k}") for k, v in x.items()}
    if hasattr(x, "item") and callable(x.item):  # numpy scalar
        return _jsonable(x.item(), where)
    raise TypeError(f"{where}: cannot store a {type(x).__name__} as JSON")


def reasoning_gym_problems(names: Sequence[str], n: int, seed: int) -> list[TextProblem]:
    """n procedural problems spread evenly over reasoning-gym datasets, interleaved so any prefix stays mixed."""
    import reasoning_gym
    from reasoning_gym.factory import DATASETS

    if isinstance(names, str) or not names:
        raise ValueError("names must be a non-empty list of reasoning-gym dataset names")
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate dataset names in {list(names)}")
    unknown = [name for name in names if name not in DATASETS]
    if unknown:
        valid = ", ".join(sorted(DATASETS)[:8])
        raise ValueError(f"unknown reasoning-gym dataset {unknown[0]!r}; valid names include {valid}, ...")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    base, extra = divmod(n, len(names))
    per_dataset: list[list[TextProblem]] = []
    for k, name in enumerate(names):
        count = base + (k < extra)
        if count == 0:
            continue
        ds = reasoning_gym.create_dataset(name, size=count, seed=seed)
        problems = []
        for i in range(count):
            raw = ds[i]
            entry = _jsonable({key: raw[key] for key in ("question", "answer", "metadata")}, f"{name}[{i}]")
            problems.append(
                TextProblem(
                    id=f"rg-{name}-{seed}-{i}",
                    question=entry["question"],
                    answer=str(entry["answer"]),
                    source=f"reasoning_gym/{name}",
                    checker=f"{RG_CHECKER_PREFIX}{name}",
                    entry=entry,
                )
            )
        per_dataset.append(problems)
    longest = max((len(p) for p in per_dataset), default=0)
    return [p[i] for i in range(longest) for p in per_dataset if i < len(p)]


# ---------------------------------------------------------------------------------------------
# Evaluation benchmarks


def eval_file_problems(name: str, path: PathLike) -> list[TextProblem]:
    """A benchmark (MATH level 5, AIME, ...) exported to a local file, so evaluation never needs the hub.

    Schema, one row per problem: "problem" (or "question"): the statement; "answer": the gold answer as
    LaTeX or plain text (an integer is accepted); optional "id" (str or int, unique; default: the row number).
    """
    if not name or "/" in name:
        raise ValueError(f"benchmark name must be non-empty without '/', got {name!r}")
    problems: list[TextProblem] = []
    ids: set[str] = set()
    for i, row in enumerate(read_rows(path), 1):
        where = f"{path}: row {i}"
        question = row.get("problem", row.get("question"))
        if not isinstance(question, str) or not question.strip():
            raise DataError(f"{where}: missing or empty 'problem' (or 'question')")
        answer = row.get("answer")
        if isinstance(answer, int) and not isinstance(answer, bool):
            answer = str(answer)
        if not isinstance(answer, str) or not answer.strip():
            raise DataError(f"{where}: missing or empty 'answer' (a str, or an int)")
        raw_id = row.get("id", i)
        if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)) or raw_id == "":
            raise DataError(f"{where}: 'id' must be a non-empty str or an int, got {raw_id!r}")
        problem_id = f"eval-{name}-{raw_id}"
        if problem_id in ids:
            raise DataError(f"{where}: duplicate id {raw_id!r}")
        ids.add(problem_id)
        problems.append(TextProblem(problem_id, question.strip(), answer.strip(), f"eval/{name}", MATH_CHECKER))
    return problems
