"""Reward checks for real math data (math-verify, reasoning-gym), run in worker processes with a hard timeout.

math-verify's own timeouts use SIGALRM, which only works in a main thread and cannot interrupt long C-level work, and
a pathological expression can hang sympy. So checks run in long-lived worker processes; a check that outlives its
wall-clock budget has its worker killed and replaced, and scores 0 with status "timeout". A hung verifier never
stalls training.

Start method: "forkserver". Workers must not be forked from the trainer (torch and its threads make fork unsafe), and
"spawn" would pay a fresh interpreter plus 1-2 s of sympy / math-verify / reasoning-gym imports for every replacement
of a killed worker. The fork server is a fresh single-threaded interpreter that preloads those libraries once; each
worker is then a cheap fork of it (replacement ~0.3 s, mostly the warm-up parse). As with "spawn", each worker still
imports the parent's ``__main__`` module (the multiprocessing rule: it must be import-safe), so a trainer script that
imports torch pays that import once per worker start, in the background.
"""

from __future__ import annotations

import functools
import math
import multiprocessing
import pickle
import signal
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

from resetrl.tasks.procedural import extract_boxed

STATUSES = ("ok", "no_answer", "parse_error", "error", "timeout")
MATH_CHECKER = "math"
REASONING_GYM_PREFIX = "reasoning_gym:"
# Imported once in the fork server so that every (re)started worker has them already. "__main__" keeps Python's default
# (a no-op on 3.11, where the fork server is never told the main path).
_PRELOAD = ["__main__", "resetrl.tasks.verify", "math_verify", "reasoning_gym"]
_WORKER_START_TIMEOUT_S = 120.0  # a worker that cannot start is a setup error, not a reason to wait forever
_MATH_VERIFY_TIMEOUT_S = 5  # math-verify's own SIGALRM timeout (whole seconds); the pool's kill is the backstop


@dataclass(frozen=True)
class Verdict:
    reward: float  # 1.0 or 0.0
    status: str  # one of STATUSES


def validate_checker(checker: str) -> None:
    """Raise ValueError for an unknown checker, so that a typo fails in the caller rather than as 0 rewards."""
    if checker == MATH_CHECKER:
        return
    if isinstance(checker, str) and checker.startswith(REASONING_GYM_PREFIX):
        _reasoning_gym_scorer(checker.removeprefix(REASONING_GYM_PREFIX))  # raises ValueError if not registered
        return
    raise ValueError(f"unknown checker {checker!r}: expected {MATH_CHECKER!r} or '{REASONING_GYM_PREFIX}<dataset>'")


def check_item(item: tuple[str, object, str]) -> Verdict:
    """Score one (checker, gold, response) against the last ``\\boxed{...}`` of the response.

    "math": gold is a LaTeX answer string compared with math-verify. "reasoning_gym:<dataset>": gold is the entry dict,
    scored by the dataset's scorer; reward 1.0 only for a score >= 1.0. Unknown checker: ValueError.
    """
    checker, gold, response = item
    validate_checker(checker)
    answer = extract_boxed(response)
    if answer is None:
        return Verdict(0.0, "no_answer")
    if checker == MATH_CHECKER:
        return _check_math(str(gold), answer)
    return _check_reasoning_gym(checker.removeprefix(REASONING_GYM_PREFIX), gold, answer)


def _check_math(gold: str, answer: str) -> Verdict:
    from math_verify import parse, verify

    # SIGALRM only works in the main thread; elsewhere (in-process use from a thread) rely on the caller.
    alarm_s = _MATH_VERIFY_TIMEOUT_S if threading.current_thread() is threading.main_thread() else None
    try:
        # Wrapped in \boxed{} so that parse takes the whole string as the answer (a bare "x^2+1" is otherwise missed).
        gold_parsed = parse(f"\\boxed{{{gold}}}", parsing_timeout=alarm_s)
        answer_parsed = parse(f"\\boxed{{{answer}}}", parsing_timeout=alarm_s)
        if not gold_parsed or not answer_parsed:
            return Verdict(0.0, "parse_error")
        correct = verify(gold_parsed, answer_parsed, timeout_seconds=alarm_s)
    except Exception:
        return Verdict(0.0, "error")
    return Verdict(1.0 if correct else 0.0, "ok")


@functools.lru_cache(maxsize=None)
def _reasoning_gym_scorer(dataset: str) -> Callable[[str, dict], float]:
    import reasoning_gym

    return reasoning_gym.get_score_answer_fn(dataset)


def _check_reasoning_gym(dataset: str, entry: object, answer: str) -> Verdict:
    try:
        score = float(_reasoning_gym_scorer(dataset)(answer.strip(), entry))
    except Exception:
        return Verdict(0.0, "error")
    return Verdict(1.0 if score >= 1.0 else 0.0, "ok")


def _warm_up() -> None:
    """Pay lazy start-up costs before the worker's first timed check, not inside it.

    math-verify's first parse takes ~0.2 s; the imports are free when the fork server preloaded them, and ~1.5 s when
    it could not (someone else started it first).
    """
    _check_math("1", "1")
    try:
        import reasoning_gym  # noqa: F401
    except ImportError:
        pass


def _worker_main(conn: Connection, check_blob: bytes) -> None:
    """Worker loop: answer (index, item) requests with (index, kind, payload) until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it kills us on the way out
    try:
        check = pickle.loads(check_blob)
        _warm_up()
    except BaseException:
        conn.send((None, "failed", traceback.format_exc()))
        return
    conn.send((None, "ready", None))
    while True:
        try:
            index, item = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply = (index, "verdict", check(item))
        except Exception as exc:
            reply = (index, "raised", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        conn.send(reply)


class _Worker:
    def __init__(self, ctx: multiprocessing.context.BaseContext, check_blob: bytes) -> None:
        self.conn, child_conn = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child_conn, check_blob), daemon=True,
                                   name="resetrl-verifier")
        self.process.start()
        child_conn.close()
        self.started_at = time.monotonic()
        self.ready = False
        self.index: int | None = None  # item in flight
        self.deadline = math.inf

    def kill(self) -> None:
        self.conn.close()
        self.process.kill()
        self.process.join()


class VerifierPool:
    """Runs ``check`` on items in ``n_workers`` long-lived processes, each check under a hard wall-clock timeout.

    A check past ``timeout_s`` has its worker killed and replaced and scores ``Verdict(0.0, "timeout")``; a worker that
    dies mid-check (e.g. a segfault in sympy) scores ``Verdict(0.0, "error")``. An exception raised by ``check`` itself
    is a bug, not a verdict: it is raised (as RuntimeError) after the batch. ``n_workers=0`` checks in-process with no
    timeout and no start-up cost, for tiny CPU runs and tests only.
    """

    def __init__(self, n_workers: int = 2, timeout_s: float = 5.0, check: Callable[[object], Verdict] = check_item):
        if n_workers < 0 or timeout_s <= 0:
            raise ValueError(f"need n_workers >= 0 and timeout_s > 0, got {n_workers}, {timeout_s}")
        self.n_workers = n_workers
        self.timeout_s = timeout_s
        self.counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
        self._check = check
        self._check_blob = pickle.dumps(check)  # fails here, not in a worker, if check is not picklable
        self._lock = threading.Lock()
        self._closed = False
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(_PRELOAD)  # no effect if the fork server already runs; workers import lazily
        self._workers = [_Worker(self._ctx, self._check_blob) for _ in range(n_workers)]

    def score(self, items: Sequence) -> list[Verdict]:
        """Verdicts for ``items``, in order."""
        items = list(items)
        if self._check is check_item:
            for checker in {item[0] for item in items}:
                validate_checker(checker)
        with self._lock:
            if self._closed:
                raise RuntimeError("VerifierPool is closed")
            verdicts = [self._check(item) for item in items] if self.n_workers == 0 else self._score_in_workers(items)
            for verdict in verdicts:
                self.counts[verdict.status] = self.counts.get(verdict.status, 0) + 1
        return verdicts

    def _score_in_workers(self, items: list) -> list[Verdict]:
        verdicts: list[Verdict | None] = [None] * len(items)
        pending = deque(range(len(items)))
        raised: list[str] = []
        try:
            while pending or any(w.index is not None for w in self._workers):
                self._dispatch(items, pending)
                self._collect(verdicts, raised)
        except BaseException:
            for i, worker in enumerate(self._workers):  # leave no half-done check behind to answer the next batch
                if worker.index is not None:
                    self._replace(i)
            raise
        if raised:
            raise RuntimeError(f"check raised on {len(raised)} item(s); first:\n{raised[0]}")
        return verdicts  # type: ignore[return-value]

    def _dispatch(self, items: list, pending: deque[int]) -> None:
        for i, worker in enumerate(self._workers):
            if not pending:
                return
            if worker.ready and worker.index is None:
                index = pending.popleft()
                try:
                    worker.conn.send((index, items[index]))
                except (BrokenPipeError, ConnectionResetError):  # died while idle: retry on a fresh worker
                    pending.appendleft(index)
                    self._replace(i)
                    continue
                worker.index = index
                worker.deadline = time.monotonic() + self.timeout_s

    def _collect(self, verdicts: list, raised: list[str]) -> None:
        """Wait for the next reply, deadline or worker start-up, and handle what happened."""
        now = time.monotonic()
        deadlines = [w.deadline for w in self._workers if w.index is not None]
        deadlines += [w.started_at + _WORKER_START_TIMEOUT_S for w in self._workers if not w.ready]
        timeout = max(0.0, min(deadlines) - now) if deadlines else None
        by_conn = {w.conn: i for i, w in enumerate(self._workers) if w.index is not None or not w.ready}
        for conn in wait(list(by_conn), timeout):
            i = by_conn[conn]
            worker = self._workers[i]
            try:
                index, kind, payload = conn.recv()
            except (EOFError, OSError):  # the worker died
                if not worker.ready:
                    raise RuntimeError("verifier worker died while starting") from None
                verdicts[worker.index] = Verdict(0.0, "error")
                self._replace(i)
                continue
            if kind == "failed":
                raise RuntimeError(f"verifier worker failed to start:\n{payload}")
            if kind == "ready":
                worker.ready = True
                continue
            if kind == "raised":
                raised.append(payload)
                payload = Verdict(0.0, "error")
            verdicts[index] = payload
            worker.index, worker.deadline = None, math.inf
        now = time.monotonic()
        for i, worker in enumerate(self._workers):
            if worker.index is not None and now >= worker.deadline:
                verdicts[worker.index] = Verdict(0.0, "timeout")
                self._replace(i)
            elif not worker.ready and now >= worker.started_at + _WORKER_START_TIMEOUT_S:
                raise RuntimeError(f"verifier worker not ready after {_WORKER_START_TIMEOUT_S} s")

    def _replace(self, i: int) -> None:
        self._workers[i].kill()
        self._workers[i] = _Worker(self._ctx, self._check_blob)

    def close(self) -> None:
        """Kill the workers. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for worker in self._workers:
                worker.kill()
            self._workers = []

    def __enter__(self) -> VerifierPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
