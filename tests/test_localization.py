import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resetrl.core.response_format import THOUGHT_END
from resetrl.core.tokenizer import build_char_tokenizer
from resetrl.rl.localization import (
    INSTRUCTION,
    heldout_failed_chains,
    localization_example,
    localization_prompt_ids,
    localization_target,
    localization_text,
    parse_localized_step,
)
from resetrl.tasks.procedural import Problem, check_chain, generate_problems, split_thoughts

EXAMPLE = Problem(id="ex", start=37, ops=(("+", 48), ("*", 3), ("-", 19)), answer=236)
THOUGHTS = ["37+48=85", "85*3=265", "265-19=246 \\boxed{246}"]
GEN = dict(
    min_steps=1, max_steps=5, start_max=99, addend_max=99, multiplier_max=9, value_max=999,
    op_weights={"+": 1.0, "-": 1.0, "*": 1.0}, id_prefix="p",
)
TEMPLATE = (
    "{% for m in messages %}<|user|>{{ m['content'] }}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="module")
def problems() -> list[Problem]:
    return generate_problems(200, seed=3, **GEN)


def test_text_format() -> None:
    assert INSTRUCTION.isascii() and "\\boxed{N}" in INSTRUCTION
    assert localization_text(EXAMPLE.prompt, THOUGHTS) == (
        "Problem: Compute left to right: 37 +48 *3 -19\n"
        "Step 1: 37+48=85\n"
        "Step 2: 85*3=265\n"
        "Step 3: 265-19=246 \\boxed{246}\n"
        f"{INSTRUCTION}\n"
    )


def test_newline_in_thought_keeps_one_line_per_step() -> None:
    text = localization_text("Q\n", ["a\nb", "c"])
    assert text.splitlines()[1:3] == ["Step 1: a b", "Step 2: c"]


def test_raw_prompt_ids_decode_to_text(tokenizer) -> None:
    ids = localization_prompt_ids(tokenizer, EXAMPLE.prompt, THOUGHTS)
    text = localization_text(EXAMPLE.prompt, THOUGHTS)
    assert isinstance(ids, list) and all(isinstance(i, int) for i in ids)
    assert tokenizer.decode(ids) == text
    assert THOUGHT_END not in text


def test_chat_template_prompt_ids(tokenizer) -> None:
    templated = build_char_tokenizer()
    templated.chat_template = TEMPLATE
    ids = localization_prompt_ids(templated, EXAMPLE.prompt, THOUGHTS)
    text = localization_text(EXAMPLE.prompt, THOUGHTS)
    assert isinstance(ids, list) and all(isinstance(i, int) for i in ids)
    assert templated.decode(ids) == f"<|user|>{text}<|assistant|>"
    assert ids != localization_prompt_ids(tokenizer, EXAMPLE.prompt, THOUGHTS)


def test_target() -> None:
    assert localization_target(3) == "\\boxed{3}"
    assert parse_localized_step(localization_target(3), 3) == (3, False)


@pytest.mark.parametrize(
    ("text", "n", "expected"),
    [
        ("The error is in \\boxed{2}", 4, (2, False)),
        ("\\boxed{ 2 }", 4, (2, False)),
        ("\\boxed{02}", 4, (2, False)),
        ("Step 3 is wrong \\boxed{7}", 4, (3, True)),  # out of range -> Step mention
        ("Step 2 ... Step 3", 4, (3, True)),
        ("step3 then STEP 9", 4, (3, True)),  # last mention *in range*
        ("\\boxed{0}", 4, (1, True)),
        ("Step 3 \\boxed{0}", 4, (1, True)),  # "no error" is not a Step fallback
        ("\\boxed{-2}", 4, (1, True)),
        ("\\boxed{2.0}", 4, (1, True)),
        ("\\boxed{1}\\boxed{3}", 4, (3, False)),  # last box wins
        ("\\boxed{\\boxed{2}}", 4, (2, False)),  # nested: innermost is last to open
        ("\\boxed{2} \\boxed{3", 4, (2, False)),  # unbalanced last box is skipped
        ("\\boxed{{2}", 4, (1, True)),
        ("}}{{\\boxed{", 4, (1, True)),
        ("\\boxed{" + "9" * 5000 + "}", 4, (1, True)),
        ("Step " + "9" * 5000, 4, (1, True)),
        ("\\boxed{３}", 4, (1, True)),  # fullwidth digit
        ("\\boxed{٢}", 4, (1, True)),  # Arabic-Indic digit
        ("Step ٢", 4, (1, True)),
        ("", 4, (1, True)),
        ("\\boxed{1}", 1, (1, False)),
    ],
)
def test_parse_cases(text: str, n: int, expected: tuple[int, bool]) -> None:
    assert parse_localized_step(text, n) == expected


def test_parse_rejects_empty_chain() -> None:
    with pytest.raises(ValueError):
        parse_localized_step("\\boxed{1}", 0)


@settings(max_examples=300, deadline=None)
@given(st.text(), st.integers(1, 20))
def test_parse_never_raises(text: str, n: int) -> None:
    step, fell_back = parse_localized_step(text, n)
    assert 1 <= step <= n and isinstance(fell_back, bool)


@settings(max_examples=300, deadline=None)
@given(st.text(), st.integers(1, 20), st.data())
def test_parse_trailing_box(prefix: str, n: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(1, n))
    assert parse_localized_step(prefix + f"\\boxed{{{k}}}", n) == (k, False)


def test_examples_match_checker(problems: list[Problem], tokenizer) -> None:
    rng = random.Random(0)
    seen = set()
    for p in problems:
        prompt, target_ids, at = localization_example(tokenizer, p, rng)
        text, target = tokenizer.decode(prompt), tokenizer.decode(target_ids[:-1])
        assert target_ids[-1] == tokenizer.eos_token_id
        steps = [line.split(": ", 1)[1] for line in text.splitlines()[1:-1]]
        failed = "".join(t + THOUGHT_END for t in steps)
        assert check_chain(p, failed).first_error == at
        assert len(steps) == len(p.ops) and target == f"\\boxed{{{at}}}"
        assert text.startswith(f"Problem: {p.prompt}") and text.endswith(f"{INSTRUCTION}\n")
        seen.add(at)
    assert seen == {1, 2, 3, 4, 5}


def test_heldout_is_fixed_and_checked(problems: list[Problem]) -> None:
    held = heldout_failed_chains(problems[:7], 20, seed=5)
    assert held == heldout_failed_chains(problems[:7], 20, seed=5)
    assert held != heldout_failed_chains(problems[:7], 20, seed=6)
    assert len(held) == 20 and [p for p, _, _ in held] == (problems[:7] * 3)[:20]
    for p, response, at in held:
        check = check_chain(p, response)
        assert check.first_error == at and not check.correct
        assert len(split_thoughts(response)) == len(p.ops)
    with pytest.raises(ValueError):
        heldout_failed_chains([], 1, seed=0)
