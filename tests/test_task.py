import random
import re
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resetrl.core.storage import DataError, read_jsonl, write_jsonl
from resetrl.tasks.procedural import (
    FORMS,
    HARD_STEP_ERROR,
    THOUGHT_END,
    Problem,
    check_chain,
    corrupt_chain,
    extract_boxed,
    generate_problems,
    make_splits,
    reward,
    split_thoughts,
)

T = THOUGHT_END
EXAMPLE = Problem(id="ex", start=37, ops=(("+", 48), ("*", 3), ("-", 19), ("+", 5)), answer=241)
GEN = dict(
    min_steps=3, max_steps=5, start_max=99, addend_max=99, multiplier_max=9, value_max=999,
    op_weights={"+": 1.0, "-": 1.0, "*": 1.0}, id_prefix="p",
)


def chain(*thoughts: str) -> str:
    return "".join(t + T for t in thoughts)


@pytest.fixture(scope="module")
def problems() -> list[Problem]:
    return generate_problems(500, seed=7, **GEN)


def test_example_strings() -> None:
    assert EXAMPLE.prompt == "Compute left to right: 37 +48 *3 -19 +5\n"
    assert EXAMPLE.values == [37, 85, 255, 236, 241]
    assert EXAMPLE.solution == (
        "37+48=85</thought>85*3=255</thought>255-19=236</thought>236+5=241 \\boxed{241}</thought>"
    )


def test_generation_is_deterministic() -> None:
    assert generate_problems(50, seed=1, **GEN) == generate_problems(50, seed=1, **GEN)
    assert generate_problems(50, seed=1, **GEN) != generate_problems(50, seed=2, **GEN)


def test_generated_problems_respect_ranges(problems: list[Problem]) -> None:
    for p in problems:
        assert 10 <= p.start <= 99 and 3 <= len(p.ops) <= 5
        assert all(0 <= v <= 999 for v in p.values)
        for op, b in p.ops:
            assert 2 <= b <= 9 if op == "*" else 1 <= b <= 99
    assert {op for p in problems for op, _ in p.ops} == {"+", "-", "*"}
    assert {len(p.ops) for p in problems} == {3, 4, 5}
    assert problems[17].id == "p-000017"


def test_op_weights_are_respected() -> None:
    only_add = generate_problems(20, seed=0, **{**GEN, "op_weights": {"+": 1.0, "*": 0.0}})
    assert all(op == "+" for p in only_add for op, _ in p.ops)


def test_final_op_weights_set_the_last_operation_only() -> None:
    hard_end = generate_problems(200, seed=0, **{**GEN, "op_weights": {"+": 1.0, "-": 1.0},
                                                 "final_op_weights": {"*": 1.0}})
    assert all(p.ops[-1][0] == "*" and all(op != "*" for op, _ in p.ops[:-1]) for p in hard_end)
    assert {op for p in hard_end for op, _ in p.ops[:-1]} == {"+", "-"}
    with pytest.raises(ValueError, match="final_op_weights"):
        generate_problems(1, seed=0, **{**GEN, "final_op_weights": {"*": 0.0}})


def test_correct_solutions_check_ok(problems: list[Problem]) -> None:
    for p in problems:
        result = check_chain(p, p.solution)
        assert result.first_error is None and result.correct
        assert result.step_ok == (True,) * len(p.ops)
        assert reward(p, p.solution) == 1.0


@pytest.mark.parametrize(
    ("response", "step_ok", "first_error"),
    [
        # Slip at thought 2, later thoughts consistently carry 256: only thought 2 is wrong.
        (chain("37+48=85", "85*3=256", "256-19=237", "237+5=242 \\boxed{242}"),
         (True, False, True, True), 2),
        # Wrong operand copied from the prompt.
        (chain("37+48=85", "85*4=340", "340-19=321", "321+5=326 \\boxed{326}"),
         (True, False, True, True), 2),
        # Thought 3 does not start from thought 2's result.
        (chain("37+48=85", "85*3=255", "250-19=231", "231+5=236 \\boxed{236}"),
         (True, True, False, True), 3),
        # Premature answer.
        (chain("37+48=85 \\boxed{85}", "85*3=255", "255-19=236", "236+5=241 \\boxed{241}"),
         (False, True, True, True), 1),
        # Missing final box.
        (chain("37+48=85", "85*3=255", "255-19=236", "236+5=241"), (True, True, True, False), 4),
        # Final box disagrees with the stated result.
        (chain("37+48=85", "85*3=255", "255-19=236", "236+5=241 \\boxed{240}"),
         (True, True, True, False), 4),
        # Extra thought after a complete solution.
        (EXAMPLE.solution + chain("241+0=241"), (True, True, True, True, False), 5),
        # Truncated: every thought is right but the chain stops; charged to its last thought.
        (chain("37+48=85", "85*3=255"), (True, True), 2),
        # Unfinished text after the last delimiter is ignored.
        (chain("37+48=85") + "85*3=255", (True,), 1),
        ("", (), 1),
        ("hello world" + T + "\\boxed{241}" + T, (False, False), 1),
    ],
)
def test_hand_made_chains(response: str, step_ok: tuple[bool, ...], first_error: int) -> None:
    result = check_chain(EXAMPLE, response)
    assert result.step_ok == step_ok
    assert result.first_error == first_error
    assert result.correct == (reward(EXAMPLE, response) == 1.0)


def test_whitespace_is_tolerated() -> None:
    response = chain(" 37 + 48 = 85", "85 * 3 = 255", "255 - 19 = 236", "236 +5= 241 \\boxed{241 }")
    assert check_chain(EXAMPLE, response) == check_chain(EXAMPLE, EXAMPLE.solution)


def test_cancelling_errors_are_correct_but_flagged() -> None:
    response = chain("37+48=86", "86*3=255", "255-19=236", "236+5=241 \\boxed{241}")
    result = check_chain(EXAMPLE, response)
    assert result.correct and result.first_error == 1
    assert result.step_ok == (False, False, True, True)


def test_split_thoughts() -> None:
    assert split_thoughts("a" + T + "b" + T + "c") == ["a", "b"]
    assert split_thoughts("no delimiter") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\\boxed{12}", "12"),
        ("\\boxed{{1}}", "{1}"),
        ("x \\boxed{a{b}c} y", "a{b}c"),
        ("\\boxed{1} then \\boxed{2}", "2"),
        ("\\boxed{1} then \\boxed{2", "1"),
        ("\\boxed{\\boxed{3}}", "3"),
        ("\\boxed{", None),
        ("} \\boxed{5}}", "5"),
        ("no box", None),
        ("", None),
    ],
)
def test_extract_boxed(text: str, expected: str | None) -> None:
    assert extract_boxed(text) == expected


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("\\boxed{241}", 1.0), ("\\boxed{ 241 }", 1.0), ("\\boxed{241.0}", 0.0),
        ("\\boxed{+241}", 0.0), ("\\boxed{٢٤١}", 0.0), ("\\boxed{241} \\boxed{7}", 0.0), ("241", 0.0),
    ],
)
def test_reward(text: str, value: float) -> None:
    assert reward(EXAMPLE, text) == value


def test_corrupt_chain_first_error_is_known(problems: list[Problem]) -> None:
    rng = random.Random(0)
    for p in problems[:200]:
        for at in [None, *range(1, len(p.ops) + 1)]:
            response, where = corrupt_chain(p, rng, at)
            assert where == (at or where) and 1 <= where <= len(p.ops)
            result = check_chain(p, response)
            assert result.first_error == where and not result.correct
            assert result.step_ok == tuple(i != where for i in range(1, len(p.ops) + 1))
            assert reward(p, response) == 0.0


def test_written_solutions_vary_and_all_check_ok(problems: list[Problem]) -> None:
    rng = random.Random(0)
    assert EXAMPLE.written_solution(rng, 1) == EXAMPLE.solution
    texts = {EXAMPLE.written_solution(rng, len(FORMS)) for _ in range(50)}
    assert len(texts) > 10  # 4 forms per thought: chains of one problem rarely share their text
    assert "37 + 48 is 85" + T in "".join(texts) and "85*3 -> 255" + T in "".join(texts)
    for p in problems[:200]:
        result = check_chain(p, p.written_solution(rng, len(FORMS)))
        assert result.first_error is None and result.correct
    with pytest.raises(ValueError, match="surface_forms"):
        EXAMPLE.written_solution(rng, len(FORMS) + 1)


def test_slipped_demonstrations_slip_at_the_rate_and_the_checker_finds_the_first_slip(problems: list[Problem]) -> None:
    apply = {"+": int.__add__, "-": int.__sub__, "*": int.__mul__}
    rng = random.Random(2)
    thoughts = slipped = 0
    for p in problems[:300]:
        text = p.written_solution(rng, len(FORMS), slip_rate=0.25)
        stated = [int(re.search(r"(?:=|->|is)\s*(-?\d+)", t)[1]) for t in split_thoughts(text)]
        handed = [p.start, *stated[:-1]]  # each thought works on the value the previous one stated
        exact = [apply[op](a, b) for a, (op, b) in zip(handed, p.ops)]
        assert all(s - e in (0, 1) for s, e in zip(stated, exact))  # a slip is one too high, nothing else
        slips = [s != e for s, e in zip(stated, exact)]
        thoughts, slipped = thoughts + len(slips), slipped + sum(slips)
        result = check_chain(p, text)
        assert result.first_error == (slips.index(True) + 1 if any(slips) else None)
        assert result.correct == (not any(slips))  # one-sided slips never cancel
    assert 0.21 < slipped / thoughts < 0.29
    assert EXAMPLE.written_solution(rng, 1, slip_rate=0.0) == EXAMPLE.solution


def test_the_hard_last_step_is_wrong_by_its_own_error_at_the_designed_rate(problems: list[Problem]) -> None:
    rng = random.Random(3)
    right = 0
    for p in problems[:400]:
        text = p.written_solution(rng, 1, slip_rate=0.0, final_step_accuracy=0.3)
        result = check_chain(p, text)
        stated = int(re.search(r"=(-?\d+)", split_thoughts(text)[-1])[1])
        assert stated - p.answer in (0, HARD_STEP_ERROR)
        assert result.correct == (stated == p.answer)
        assert result.first_error == (None if result.correct else len(p.ops))
        right += result.correct
    assert 0.25 < right / 400 < 0.35
    # slips and the hard step's error add up; they never cancel
    for p in problems[:200]:
        result = check_chain(p, p.written_solution(rng, 1, slip_rate=0.5, final_step_accuracy=0.5))
        assert result.correct == (result.first_error is None)


def test_corrupt_chain_in_every_form_keeps_its_first_error(problems: list[Problem]) -> None:
    rng = random.Random(1)
    for p in problems[:200]:
        response, where = corrupt_chain(p, rng, surface_forms=len(FORMS))
        assert check_chain(p, response).first_error == where and reward(p, response) == 0.0


def test_other_separators_are_not_steps() -> None:
    assert check_chain(EXAMPLE, chain("37+48 == 85")).first_error == 1
    assert check_chain(EXAMPLE, chain("37+48 => 85")).first_error == 1


def test_corrupt_chain_is_deterministic(problems: list[Problem]) -> None:
    a = [corrupt_chain(p, random.Random(3)) for p in problems[:50]]
    assert a == [corrupt_chain(p, random.Random(3)) for p in problems[:50]]
    with pytest.raises(ValueError):
        corrupt_chain(EXAMPLE, random.Random(0), at=5)


def test_splits_are_disjoint_and_ood_is_longer() -> None:
    task = SimpleNamespace(
        seed=5, n_train=2000, n_val=50, n_test=200, n_ood=100, min_steps=3, max_steps=5,
        ood_min_steps=6, ood_max_steps=8, start_max=99, addend_max=99, multiplier_max=9,
        value_max=999, op_weights={"+": 1.0, "-": 1.0, "*": 1.0}, ood_op_weights={"+": 1.0, "-": 1.0, "*": 1.0},
        final_op_weights=None,
    )
    splits = make_splits(task)
    sizes = {k: len(v) for k, v in splits.items()}
    assert sizes == {"train": 2000, "val": 50, "test": 200, "ood": 100}
    prompts = {k: {p.prompt for p in v} for k, v in splits.items()}
    assert not prompts["train"] & (prompts["val"] | prompts["test"] | prompts["ood"])
    assert not prompts["val"] & prompts["test"]
    assert len(prompts["test"]) == 200  # no duplicates within an evaluation split
    assert min(len(p.ops) for p in splits["ood"]) > max(len(p.ops) for p in splits["train"])
    assert splits["val"][3].id == "val-000003" and splits["train"][17].id == "train-000017"
    assert make_splits(task) == splits
    assert make_splits(SimpleNamespace(**{**vars(task), "seed": 6}))["test"] != splits["test"]


def test_ood_op_mix_is_its_own() -> None:
    task = SimpleNamespace(
        seed=5, n_train=200, n_val=20, n_test=20, n_ood=100, min_steps=3, max_steps=5, ood_min_steps=3,
        ood_max_steps=5, start_max=20, addend_max=20, multiplier_max=4, value_max=99,
        op_weights={"+": 1.0, "-": 1.0, "*": 0.0}, ood_op_weights={"*": 1.0, "+": 1.0}, final_op_weights=None)
    splits = make_splits(task)
    assert {op for p in splits["train"] + splits["test"] for op, _ in p.ops} == {"+", "-"}
    assert {op for p in splits["ood"] for op, _ in p.ops} == {"+", "*"}


def test_from_dict_roundtrip_and_rejections(tmp_path) -> None:
    d = EXAMPLE.to_dict()
    assert d["ops"] == [["+", 48], ["*", 3], ["-", 19], ["+", 5]]
    assert Problem.from_dict(d) == EXAMPLE
    bad = [
        {**d, "answer": 240},
        {**d, "ops": [["/", 48], ["*", 3], ["-", 19], ["+", 5]]},
        {**d, "ops": [["+", 48], ["*", 1], ["-", 19], ["+", 5]]},
        {**d, "ops": [["+", "48"], ["*", 3], ["-", 19], ["+", 5]]},
        {**d, "start": 37.0},
        {**d, "prompt": "tampered\n"},
        {**d, "solution": EXAMPLE.solution.replace("241", "242")},
        {k: v for k, v in d.items() if k != "answer"},
    ]
    for row in bad:
        with pytest.raises((KeyError, TypeError, ValueError)):
            Problem.from_dict(row)
    path = tmp_path / "split.jsonl"
    write_jsonl(path, [d, d, bad[0]])
    with pytest.raises(DataError, match=r"split\.jsonl:3: .*answer 240"):
        read_jsonl(path, Problem.from_dict)


PIECES = st.sampled_from([T, "\\boxed{", "{", "}", "=", "+", "-", "*", " ", "\n", "12", "241"])
TEXTS = st.lists(PIECES | st.characters(), max_size=40).map("".join) | st.text()


def assert_parsers_total(text: str) -> None:
    extract_boxed(text)
    assert reward(EXAMPLE, text) in (0.0, 1.0)
    result = check_chain(EXAMPLE, text)
    assert len(result.step_ok) == text.count(T)
    assert result.correct == (reward(EXAMPLE, text) == 1.0)


@settings(max_examples=200, deadline=None)
@given(TEXTS)
def test_parsers_never_raise(text: str) -> None:
    assert_parsers_total(text)


def test_parsers_survive_huge_numbers() -> None:
    huge = "9" * 5000
    assert_parsers_total(f"{huge}+48={huge} \\boxed{{{huge}}}{T}")
