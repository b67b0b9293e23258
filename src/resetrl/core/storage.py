"""Atomic file I/O: an interrupted job never leaves a half-written artifact behind.

Every writer goes through a temporary sibling (same directory, so the final ``os.replace`` is an
atomic rename on the same filesystem) that is removed if anything fails.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar, overload

T = TypeVar("T")
PathLike = str | os.PathLike[str]


class DataError(ValueError):
    """A data file is missing or malformed; the message names ``file:line`` where possible."""


def _sibling(path: Path, kind: str) -> Path:
    # Hidden, unique name next to the target; uuid rather than mkstemp/mkdtemp so the result gets
    # the usual umask permissions instead of 0600/0700.
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.{kind}")


def check_writable(*paths: PathLike) -> None:
    """Fail before any compute where an output cannot be written: its directory cannot be made (a
    file in the way) or is read-only. The OSError names the path."""
    for path in map(Path, paths):
        path.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "directory is not writable", str(path.parent))


@contextmanager
def _atomic_open(path: PathLike) -> Iterator[IO[str]]:
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(final, "tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if isinstance(error, OSError) and error.filename is None:  # a full disk: say which file
            error.filename = str(final)
        raise


def atomic_write_text(path: PathLike, text: str) -> None:
    with _atomic_open(path) as f:
        f.write(text)


def atomic_write_json(path: PathLike, obj: Any) -> None:
    # Serialise first so an unserialisable object fails before any file is touched.
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_jsonl(path: PathLike, rows: Iterable[dict[str, Any]]) -> None:
    with _atomic_open(path) as f:
        for row in rows:
            if not isinstance(row, dict):
                raise TypeError(f"jsonl rows must be dicts, got {type(row).__name__}")
            f.write(json.dumps(row) + "\n")


@contextmanager
def atomic_dir(final_path: PathLike) -> Iterator[Path]:
    """Yield a fresh directory that replaces ``final_path`` only if the body succeeds."""
    final = Path(final_path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(final, "tmp")
    tmp.mkdir()
    try:
        yield tmp
        _usual_permissions(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = _sibling(final, "old") if final.exists() else None
    if old is not None:
        # Directories cannot be replaced by rename in one step: move the old one aside first.
        os.replace(final, old)
    try:
        os.replace(tmp, final)
    except BaseException:
        if old is not None:
            os.replace(old, final)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old)


def _usual_permissions(directory: Path) -> None:
    """Give files the umask's permissions: some writers (safetensors) create theirs 0600, which other
    users of a shared cluster could not read."""
    umask = os.umask(0)
    os.umask(umask)
    for path in directory.rglob("*"):
        if path.is_file() and not path.is_symlink():
            path.chmod(0o666 & ~umask)


@overload
def read_jsonl(path: PathLike, validate: None = None) -> list[dict[str, Any]]: ...
@overload
def read_jsonl(path: PathLike, validate: Callable[[dict[str, Any]], T]) -> list[T]: ...
def read_jsonl(
    path: PathLike, validate: Callable[[dict[str, Any]], T] | None = None
) -> list[T] | list[dict[str, Any]]:
    """Read one JSON object per line, optionally mapping each through ``validate``.

    Strict on purpose: a blank line, bad JSON, a non-object or a rejected record raises
    ``DataError("file:line: reason")`` rather than being skipped.
    """
    try:
        with open(path, "rb") as f:
            rows = [_parse_line(path, lineno, raw, validate) for lineno, raw in enumerate(f, 1)]
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from e
    if not rows:
        raise DataError(f"{path}: empty file")
    return rows


def _parse_line(
    path: PathLike, lineno: int, raw: bytes, validate: Callable[[dict[str, Any]], T] | None
) -> Any:
    where = f"{path}:{lineno}"
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{where}: not UTF-8 ({e.reason})") from e
    if not line.strip():
        raise DataError(f"{where}: blank line")
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError) as e:
        raise DataError(f"{where}: invalid JSON ({e})") from e
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if validate is None:
        return obj
    try:
        return validate(obj)
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{where}: invalid record ({type(e).__name__}: {e})") from e
