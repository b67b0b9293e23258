"""Atomic file I/O: an interrupted job never leaves a half-written artifact behind.

Every writer goes through a temporary sibling (same directory, so the final ``os.replace`` is an
atomic rename on the same filesystem) that is removed if anything fails; any failure of a write (a
full disk included, whatever library raised it) is an ``OutputError`` naming the output. A stage whose
outputs must change together writes them through ``StagedOutputs``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
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


class OutputError(OSError):
    """An output could not be written; ``filename`` is the output (not a temporary file)."""


def _reason(error: BaseException) -> str:
    """One line for a failed write: the OS message where the library wrapped one (safetensors reports a
    full disk as `IoError(Os { code: 28, ..., message: "No space left on device" })`)."""
    text = getattr(error, "strerror", None) or str(error)
    found = re.search(r'message: "([^"]+)"', text)
    lines = (found.group(1) if found else text).strip().splitlines()
    return lines[0] if lines else type(error).__name__


@contextmanager
def writing(path: PathLike) -> Iterator[None]:
    """Any exception from the writes inside becomes one ``OutputError`` naming ``path``: safetensors'
    and other libraries' errors are not OSErrors, yet a full disk must still end in one line."""
    try:
        yield
    except (OutputError, DataError):
        raise
    except Exception as error:
        raise OutputError(getattr(error, "errno", None) or errno.EIO, _reason(error), str(path)) from error


def file_sha256(path: PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_free_space(path: PathLike, needed_bytes: int, what: str) -> None:
    """Fail before compute where the disk holding ``path`` has less free space than ``what`` will write."""
    existing = Path(path).absolute()
    while not existing.exists():
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if free < needed_bytes:
        raise OutputError(errno.ENOSPC, f"{what} needs about {needed_bytes / 2**20:.0f} MiB, "
                          f"{free / 2**20:.0f} MiB free", str(path))


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
        if isinstance(error, OSError) and error.filename in (None, tmp, str(tmp)):  # a full disk: name the output
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


STAGING = ".staging"  # a run directory's outputs in the making
_COMMITTED = "COMMITTED"  # in STAGING: every output is written; the swap may proceed (or be completed)


class StagedOutputs:
    """Outputs of one job under ``root`` that change together: written into ``root/.staging/`` and swapped
    in only once all of them are written, so a failure or a kill before then leaves the previous set
    whole. Opening it first recovers from an earlier job: a committed swap that a kill interrupted is
    completed; an unfinished staging directory and temporary files are removed."""

    def __init__(self, root: PathLike, names: Iterable[str]):
        self.root, self.names = Path(root), tuple(names)
        self.dir = self.root / STAGING
        recover_outputs(self.root)
        with writing(self.dir):
            self.dir.mkdir(parents=True)

    def __truediv__(self, name: str) -> Path:
        if name not in self.names:
            raise KeyError(f"{name!r} is not one of the staged outputs {self.names}")
        return self.dir / name

    def commit(self) -> None:
        """Swap every staged output in (each one present must have been written)."""
        missing = [name for name in self.names if not (self.dir / name).exists()]
        if missing:
            raise OutputError(errno.ENOENT, f"staged outputs {missing} were not written", str(self.root))
        atomic_write_json(self.dir / _COMMITTED, list(self.names))
        _swap_in(self.root)


def _swap_in(root: Path) -> None:
    """Move each committed output over its predecessor (which goes aside, then away). Idempotent: a run
    of it that a kill stopped half-way is finished by the next."""
    staging = root / STAGING
    names = json.loads((staging / _COMMITTED).read_text())
    aside = staging / ".previous"
    aside.mkdir(exist_ok=True)
    for name in names:
        if (staging / name).exists():
            if (root / name).exists():
                os.replace(root / name, aside / name)
            os.replace(staging / name, root / name)
    shutil.rmtree(staging)


def final_name(path: PathLike) -> str:
    """The output a staged path becomes (for messages): ``run/.staging/model`` -> ``run/model``."""
    return str(path).replace(f"/{STAGING}/", "/")


def recover_outputs(root: PathLike) -> None:
    """Finish a committed swap under ``root``; remove an uncommitted staging directory and the temporary
    siblings (``.NAME.*.tmp`` / ``.old``) that a kill during a write leaves behind."""
    root = Path(root)
    if (root / STAGING / _COMMITTED).exists():
        _swap_in(root)
    elif (root / STAGING).exists():
        shutil.rmtree(root / STAGING)
    for orphan in [*root.glob(".*.tmp"), *root.glob(".*.old")]:
        shutil.rmtree(orphan) if orphan.is_dir() else orphan.unlink()


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
