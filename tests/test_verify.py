import multiprocessing
import os
import threading
import time

import pytest

from resetrl.tasks.verify import Verdict, VerifierPool, check_item

# The verifiers score math answers (math-verify) and reasoning-gym items: the cluster stack
# (requirements-cluster.txt), which the lean default install lacks.
pytest.importorskip("math_verify")
reasoning_gym = pytest.importorskip("reasoning_gym")

HALF = "\\frac{1}{2}"
TIMEOUT_S = 0.5


def misbehaving_check(item: tuple) -> Verdict:
    """check_item, except that the responses "HANG", "CRASH" and "RAISE" hang, kill the worker and raise."""
    response = item[2]
    if response == "HANG":
        time.sleep(3600)
    if response == "CRASH":
        os._exit(3)
    if response == "RAISE":
        raise KeyError("deliberate")
    return check_item(item)


def math_item(response: str, gold: str = HALF) -> tuple[str, str, str]:
    return ("math", gold, response)


def worker_pids() -> set[int]:
    return {p.pid for p in multiprocessing.active_children() if p.name == "resetrl-verifier"}


def assert_dead(pids: set[int]) -> None:
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.fixture()
def busy_torch_thread():
    """Keep torch working in a second thread of the parent, as in a trainer: workers must not be forked from it."""
    import torch  # here, not at the top: each worker imports this module to unpickle misbehaving_check

    stop = threading.Event()

    def work() -> None:
        while not stop.wait(0.01):
            torch.ones(64, 64) @ torch.ones(64, 64)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join()


@pytest.mark.parametrize("response", [
    "so x = \\boxed{0.5}", "\\boxed{1/2}", "\\boxed{\\dfrac{1}{2}}", "\\boxed{\\frac12}",
    "first \\boxed{3}, on reflection \\boxed{1/2}",
])
def test_math_equivalent_forms_are_correct(response: str) -> None:
    assert check_item(math_item(response)) == Verdict(1.0, "ok")


def test_math_symbolic_answer() -> None:
    assert check_item(math_item("\\boxed{1 + x^2}", gold="x^2+1")) == Verdict(1.0, "ok")


@pytest.mark.parametrize(("response", "verdict"), [
    ("\\boxed{3}", Verdict(0.0, "ok")),
    ("first \\boxed{1/2}, on reflection \\boxed{3}", Verdict(0.0, "ok")),  # the last box wins
    ("the answer is 1/2", Verdict(0.0, "no_answer")),
    ("\\boxed{1/2", Verdict(0.0, "no_answer")),  # unbalanced
    ("\\boxed{}", Verdict(0.0, "parse_error")),
])
def test_math_wrong_or_missing_answer(response: str, verdict: Verdict) -> None:
    assert check_item(math_item(response)) == verdict


def test_math_unparsable_gold() -> None:
    assert check_item(math_item("\\boxed{1}", gold="}{")) == Verdict(0.0, "parse_error")


def test_reasoning_gym_scores_with_the_dataset_scorer() -> None:
    entry = reasoning_gym.create_dataset("chain_sum", size=2, seed=1)[0]
    right, wrong = entry["answer"], str(int(entry["answer"]) + 1)
    assert check_item(("reasoning_gym:chain_sum", entry, f"so \\boxed{{ {right} }}")) == Verdict(1.0, "ok")
    assert check_item(("reasoning_gym:chain_sum", entry, f"\\boxed{{{wrong}}}")) == Verdict(0.0, "ok")
    assert check_item(("reasoning_gym:chain_sum", entry, right)) == Verdict(0.0, "no_answer")


def test_reasoning_gym_partial_credit_is_no_reward() -> None:
    entry = reasoning_gym.create_dataset("fraction_simplification", size=1, seed=1)[0]
    assert 0.0 < reasoning_gym.get_score_answer_fn("fraction_simplification")("zzz", entry) < 1.0
    assert check_item(("reasoning_gym:fraction_simplification", entry, "\\boxed{zzz}")) == Verdict(0.0, "ok")


def test_reasoning_gym_answer_is_stripped() -> None:
    """basic_arithmetic gives partial credit to " -4 "; the padding inside a box is not the model's answer."""
    entry = reasoning_gym.create_dataset("basic_arithmetic", size=1, seed=1)[0]
    padded = f" {entry['answer']} "
    assert reasoning_gym.get_score_answer_fn("basic_arithmetic")(padded, entry) < 1.0
    assert check_item(("reasoning_gym:basic_arithmetic", entry, f"\\boxed{{{padded}}}")) == Verdict(1.0, "ok")


def test_reasoning_gym_scorer_that_raises_is_an_error() -> None:
    entry = reasoning_gym.create_dataset("prime_factorization", size=1, seed=1)[0]
    assert check_item(("reasoning_gym:prime_factorization", entry, "\\boxed{garbage}")) == Verdict(0.0, "error")


@pytest.mark.parametrize("checker", ["maths", "reasoning_gym:no_such_dataset", "reasoning_gym"])
def test_unknown_checker_raises_in_the_caller(checker: str) -> None:
    with pytest.raises(ValueError, match="no_such_dataset|unknown checker"):
        check_item((checker, "1", "\\boxed{1}"))
    with VerifierPool(n_workers=0) as pool, pytest.raises(ValueError):
        pool.score([math_item("\\boxed{1/2}"), (checker, "1", "\\boxed{1}")])
    assert sum(pool.counts.values()) == 0


def test_worker_pool_rejects_an_unknown_checker_before_dispatch() -> None:
    with VerifierPool(n_workers=1) as pool:
        with pytest.raises(ValueError, match="unknown checker"):  # a worker would have turned it into RuntimeError
            pool.score([math_item("\\boxed{1/2}"), ("maths", "1", "\\boxed{1}")])
        assert pool.score([math_item("\\boxed{1/2}")]) == [Verdict(1.0, "ok")]


def test_in_process_pool_scores_and_counts() -> None:
    with VerifierPool(n_workers=0) as pool:
        verdicts = pool.score([math_item("\\boxed{0.5}"), math_item("none"), math_item("\\boxed{2}")])
    assert verdicts == [Verdict(1.0, "ok"), Verdict(0.0, "no_answer"), Verdict(0.0, "ok")]
    assert pool.counts == {"ok": 2, "no_answer": 1, "parse_error": 0, "error": 0, "timeout": 0}


@pytest.mark.usefixtures("busy_torch_thread")
def test_pool_kills_a_hung_check_and_keeps_working() -> None:
    items = [math_item(r) for r in ("\\boxed{1/2}", "HANG", "\\boxed{3}", "none", "\\boxed{0.5}")]
    expected = [Verdict(1.0, "ok"), Verdict(0.0, "timeout"), Verdict(0.0, "ok"), Verdict(0.0, "no_answer"),
                Verdict(1.0, "ok")]
    with VerifierPool(n_workers=2, timeout_s=TIMEOUT_S, check=misbehaving_check) as pool:
        pool.score([math_item("\\boxed{1}")] * 2)  # wait for both workers to be up: start-up is not a check's time
        before = worker_pids()
        assert len(before) == 2
        start = time.monotonic()
        assert pool.score(items) == expected
        assert TIMEOUT_S <= time.monotonic() - start < TIMEOUT_S + 3.0
        assert pool.counts["timeout"] == 1
        killed = before - worker_pids()
        assert len(killed) == 1
        assert_dead(killed)

        assert pool.score(items[2:] + items[:1]) == expected[2:] + expected[:1]  # the replacement works
        assert pool.counts == {"ok": 8, "no_answer": 2, "parse_error": 0, "error": 0, "timeout": 1}
        live = worker_pids()
        assert len(live) == 2
    assert worker_pids() == set()
    assert_dead(live)
    pool.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        pool.score([math_item("\\boxed{1}")])


def test_pool_survives_a_worker_crash_and_reports_a_raising_check() -> None:
    entry = reasoning_gym.create_dataset("chain_sum", size=1, seed=1)[0]
    with VerifierPool(n_workers=1, timeout_s=5.0, check=misbehaving_check) as pool:
        crash = [math_item("\\boxed{1/2}"), math_item("CRASH"), ("reasoning_gym:chain_sum", entry, "\\boxed{-4}")]
        assert entry["answer"] == "-4"
        assert pool.score(crash) == [Verdict(1.0, "ok"), Verdict(0.0, "error"), Verdict(1.0, "ok")]
        with pytest.raises(RuntimeError, match="KeyError: 'deliberate'"):
            pool.score([math_item("RAISE"), math_item("\\boxed{1/2}")])
        assert pool.score([math_item("\\boxed{3}")]) == [Verdict(0.0, "ok")]
        assert pool.counts == {"ok": 3, "no_answer": 0, "parse_error": 0, "error": 1, "timeout": 0}
