"""Real-data problem sources: the answer filter, the NuminaMath split, file readers, reasoning-gym and benchmarks."""

import json
import sys
import types

import pytest

from resetrl.core.response_format import THOUGHT_END
from resetrl.core.storage import write_jsonl
from resetrl.tasks.procedural import generate_problems
from resetrl.tasks.sources import (
    THOUGHT_PROMPT,
    TextProblem,
    boxed_answer_ok,
    eval_file_problems,
    load_numina,
    numina_problems,
    problem_from_dict,
    read_rows,
    reasoning_gym_problems,
)

# ---------------------------------------------------------------------------------------------
# The answer filter

ACCEPTED = [
    "42", " -7 ", "\\frac{3}{4}", "2\\sqrt{3}", "x=3", "\\frac{\\pi}{2}", "n(n+1)", "(1, 2)", "\\{1, 2\\}",
    "3 \\le x \\le 5", "B", "(C)", "A", "E", "1" * 60,
]
REJECTED = [
    "", "\\text{yes}", "\\textbf{3}", "3\\mbox{ cm}", "5\\mathrm{kg}", "\\operatorname{lcm}(2)", "5 cm", "5 m",
    "3\\,s", "12 hours", "30^\\circ", "30^{\\circ}", "30°", "15\\%", "15%", "1" * 61, "{1", "1}", "1}{",
    "\\{1, 2", "no digits here", "F", "(F)", "b", "\\pi", "2ab", "5 см",
]


@pytest.mark.parametrize("answer", ACCEPTED)
def test_filter_accepts_clean_math(answer):
    assert boxed_answer_ok(answer)


@pytest.mark.parametrize("answer", REJECTED)
def test_filter_rejects_prose_units_and_malformed(answer):
    assert not boxed_answer_ok(answer)


# ---------------------------------------------------------------------------------------------
# NuminaMath


def _row(i, source="olympiads", answer=None, problem=None):
    answer = str(i) if answer is None else answer
    return {"source": source, "problem": problem or f"Problem {i}?", "solution": f"So \\boxed{{{answer}}}.",
            "messages": []}


def _numina_rows():
    rows = [_row(i) for i in range(20)]
    rows += [_row(100, source="amc_aime"), _row(101, answer="\\text{no}"), _row(102, problem="  Problem 3? ")]
    rows.append({"source": "olympiads", "problem": "Two boxes", "solution": "\\boxed{1} then \\boxed{\\frac{1}{2}}"})
    rows.append({"source": "olympiads", "problem": "No box", "solution": "the answer is 3"})
    return rows


def test_numina_filters_dedups_and_splits():
    rows = _numina_rows()
    train, test = numina_problems(rows, n_train=15, n_test=6, seed=0)
    assert len(train) == 15 and len(test) == 6
    both = train + test
    assert len({p.question for p in both}) == 21  # 20 distinct + "Two boxes"; the duplicate Problem 3 is gone
    assert all(p.source == "numina/olympiads" and p.checker == "math" and p.entry is None for p in both)
    assert not {"numina-20", "numina-21", "numina-22", "numina-24"} & {p.id for p in both}
    two = next(p for p in both if p.question == "Two boxes")
    assert two.id == "numina-23" and two.answer == "\\frac{1}{2}" and two.gold == "\\frac{1}{2}"
    assert next(p for p in both if p.id == "numina-3").answer == "3"


def test_numina_is_deterministic_by_seed():
    rows = _numina_rows()
    ids = lambda split: [p.id for p in split]  # noqa: E731
    a, b, c = (numina_problems(rows, 10, 5, seed=s) for s in (1, 1, 2))
    assert ids(a[0]) == ids(b[0]) and ids(a[1]) == ids(b[1])
    assert ids(a[0]) + ids(a[1]) != ids(c[0]) + ids(c[1])


def test_numina_other_subset_and_too_few():
    train, test = numina_problems(_numina_rows(), n_train=1, n_test=0, subset="amc_aime")
    assert [p.id for p in train] == ["numina-20"] and test == []
    with pytest.raises(ValueError, match=r"only 21 of 24 'olympiads' rows passed.*need 22"):
        numina_problems(_numina_rows(), n_train=20, n_test=2)
    with pytest.raises(ValueError, match="row 1.*'solution'"):
        numina_problems([_row(0), {"source": "olympiads", "problem": "p"}], 1, 0)


def test_load_numina_needs_a_path_without_datasets(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    with pytest.raises(RuntimeError, match="task.numina.path"):
        load_numina(None)
    def load_dataset(*args, **kwargs):
        raise ConnectionError("offline")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    with pytest.raises(RuntimeError, match="offline.*task.numina.path"):
        load_numina(None)
    write_jsonl(tmp_path / "n.jsonl", [_row(1)])
    assert load_numina(str(tmp_path / "n.jsonl")) == [_row(1)]


# ---------------------------------------------------------------------------------------------
# Files


def test_read_rows_parquet_jsonl_json(tmp_path):
    pd = pytest.importorskip("pandas")
    rows = [{"problem": "p1", "answer": "1", "n": 1}, {"problem": "p2", "answer": "2", "n": 2}]
    pd.DataFrame(rows).to_parquet(tmp_path / "r.parquet")
    write_jsonl(tmp_path / "r.jsonl", rows)
    (tmp_path / "r.json").write_text(json.dumps(rows))
    for name in ("r.parquet", "r.jsonl", "r.json"):
        assert read_rows(tmp_path / name) == rows


@pytest.mark.cluster
def test_read_rows_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(ValueError, match=f"{bad}:2: invalid JSON"):
        read_rows(bad)
    (tmp_path / "r.csv").write_text("a\n1\n")
    with pytest.raises(ValueError, match=r"r\.csv: unknown suffix"):
        read_rows(tmp_path / "r.csv")
    with pytest.raises(ValueError, match=r"missing\.parquet: no such file"):
        read_rows(tmp_path / "missing.parquet")
    (tmp_path / "obj.json").write_text('{"a": 1}')
    with pytest.raises(ValueError, match=r"obj\.json: expected a JSON list"):
        read_rows(tmp_path / "obj.json")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(ValueError, match=r"broken\.parquet: cannot read parquet"):
        read_rows(tmp_path / "broken.parquet")


# ---------------------------------------------------------------------------------------------
# reasoning-gym

RG_NAMES = ["chain_sum", "basic_arithmetic", "gsm_symbolic", "countdown"]


@pytest.fixture(scope="module")
def rg_problems():
    pytest.importorskip("reasoning_gym")
    return reasoning_gym_problems(RG_NAMES, n=10, seed=7)


def test_reasoning_gym_spreads_evenly_and_is_deterministic(rg_problems):
    counts = {name: sum(p.source == f"reasoning_gym/{name}" for p in rg_problems) for name in RG_NAMES}
    assert counts == {"chain_sum": 3, "basic_arithmetic": 3, "gsm_symbolic": 2, "countdown": 2}
    assert [p.source for p in rg_problems[:4]] == [f"reasoning_gym/{n}" for n in RG_NAMES]  # interleaved
    assert len({p.id for p in rg_problems}) == 10
    assert reasoning_gym_problems(RG_NAMES, n=10, seed=7) == rg_problems
    assert [p.question for p in reasoning_gym_problems(RG_NAMES, n=10, seed=8)] != [p.question for p in rg_problems]


def test_reasoning_gym_gold_survives_json_and_scores_one(rg_problems):
    from reasoning_gym import get_score_answer_fn

    for p in rg_problems:
        stored = json.loads(json.dumps(p.to_dict()))
        back = problem_from_dict(stored)
        assert back == p and back.entry == p.entry
        name = back.checker.removeprefix("reasoning_gym:")
        assert back.source == f"reasoning_gym/{name}" and back.answer == back.gold["answer"]
        assert get_score_answer_fn(name)(back.answer, back.gold) == 1.0, p.id


def test_reasoning_gym_rejects_unknown_names():
    pytest.importorskip("reasoning_gym")
    with pytest.raises(ValueError, match=r"unknown reasoning-gym dataset 'no_such_set'; valid names include \w+, \w+"):
        reasoning_gym_problems(["chain_sum", "no_such_set"], n=4, seed=0)
    with pytest.raises(ValueError, match="duplicate"):
        reasoning_gym_problems(["chain_sum", "chain_sum"], n=4, seed=0)


# ---------------------------------------------------------------------------------------------
# Evaluation files


def test_eval_file_problems(tmp_path):
    path = tmp_path / "math_l5.jsonl"
    write_jsonl(path, [{"problem": " Find x. ", "answer": "\\frac{1}{2}", "id": "a"},
                       {"question": "How many?", "answer": 12}])
    a, b = eval_file_problems("math_l5", path)
    assert (a.id, a.question, a.answer, a.source, a.checker, a.gold) == (
        "eval-math_l5-a", "Find x.", "\\frac{1}{2}", "eval/math_l5", "math", "\\frac{1}{2}")
    assert (b.id, b.question, b.answer) == ("eval-math_l5-2", "How many?", "12")
    write_jsonl(path, [{"problem": "ok", "answer": "1"}, {"problem": "no answer"}])
    with pytest.raises(ValueError, match=rf"{path}: row 2: missing or empty 'answer'"):
        eval_file_problems("math_l5", path)
    write_jsonl(path, [{"answer": "1"}])
    with pytest.raises(ValueError, match=r"row 1: missing or empty 'problem'"):
        eval_file_problems("math_l5", path)
    write_jsonl(path, [{"problem": "p", "answer": "1", "id": 3}, {"problem": "q", "answer": "2", "id": 3}])
    with pytest.raises(ValueError, match="row 2: duplicate id"):
        eval_file_problems("math_l5", path)


# ---------------------------------------------------------------------------------------------
# Records and the prompt


def _text_problem(**changes):
    fields = dict(id="t1", question="What is \\frac{1}{2} + {x}?", answer="1", source="eval/x", checker="math")
    return TextProblem(**{**fields, **changes})


def test_prompt_carries_question_and_format():
    p = _text_problem()
    assert "{question}" in THOUGHT_PROMPT
    assert p.question in p.prompt and THOUGHT_END in p.prompt and "\\boxed{}" in p.prompt
    assert p.prompt.rstrip().endswith("Solution:") and "{" not in p.prompt.replace(p.question, "").replace("{}", "")


def test_problem_from_dict_reads_both_kinds():
    text = _text_problem()
    assert problem_from_dict(json.loads(json.dumps(text.to_dict()))) == text
    assert text.to_dict()["kind"] == "text" and hash(text) == hash(_text_problem())
    arithmetic = generate_problems(1, seed=0, min_steps=2, max_steps=2, start_max=20, addend_max=9, multiplier_max=3,
                                   value_max=99, op_weights={"+": 1, "-": 1, "*": 1}, id_prefix="old")[0]
    assert problem_from_dict(arithmetic.to_dict()) == arithmetic  # old JSONL has no "kind"
    with pytest.raises(ValueError, match="unknown problem 'kind'"):
        problem_from_dict({"kind": "image"})


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"answer": 1}, TypeError, "'answer' must be a str"),
        ({"extra": 1}, ValueError, "unknown key 'extra'"),
        ({"prompt": "stale"}, ValueError, "'prompt' differs"),
        ({"checker": "exact"}, ValueError, "'checker' must be"),
        ({"entry": {"a": 1}}, ValueError, "'entry' must be None"),
        ({"checker": "reasoning_gym:chain_sum"}, TypeError, "'entry' must be a dict"),
        ({"checker": "reasoning_gym:chain_sum", "entry": {"a": (1, 2)}}, ValueError, "JSON round trip"),
        ({"id": " "}, ValueError, "'id' must not be empty"),
    ],
)
def test_from_dict_is_strict(change, error, match):
    d = {**_text_problem().to_dict(), **change}
    with pytest.raises(error, match=match):
        TextProblem.from_dict(d)


def test_from_dict_names_a_missing_key():
    d = _text_problem().to_dict()
    del d["source"]
    with pytest.raises(ValueError, match="missing key 'source'"):
        TextProblem.from_dict(d)
