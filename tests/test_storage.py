import json
import os
from pathlib import Path

import pytest

from resetrl.core.storage import (
    DataError,
    atomic_dir,
    atomic_write_json,
    atomic_write_text,
    read_jsonl,
    write_jsonl,
)


def test_atomic_write_text_creates_parents_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_atomic_write_keeps_old_file_when_serialisation_fails(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    write_jsonl(target, [{"a": 1}])

    def rows():
        yield {"a": 2}
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_jsonl(target, rows())
    assert target.read_text() == '{"a": 1}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_atomic_write_json_format(tmp_path: Path) -> None:
    target = tmp_path / "m.json"
    atomic_write_json(target, {"b": 1, "a": [1, 2]})
    text = target.read_text()
    assert text.endswith("}\n") and text.index('"b"') < text.index('"a"')
    assert json.loads(text) == {"b": 1, "a": [1, 2]}


def test_atomic_dir_replaces_on_success(tmp_path: Path) -> None:
    final = tmp_path / "ckpt"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with atomic_dir(final) as tmp:
        assert tmp.parent == tmp_path and tmp != final
        (tmp / "new.txt").write_text("new")
        assert (final / "old.txt").exists()  # nothing visible until the body finishes
    assert sorted(p.name for p in final.iterdir()) == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_atomic_dir_keeps_old_when_body_raises(tmp_path: Path) -> None:
    final = tmp_path / "ckpt"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(final) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("crash")
    assert sorted(p.name for p in final.iterdir()) == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_atomic_dir_creates_new(tmp_path: Path) -> None:
    with atomic_dir(tmp_path / "sub" / "d") as tmp:
        (tmp / "x").write_text("x")
    assert (tmp_path / "sub" / "d" / "x").read_text() == "x"


def test_jsonl_roundtrip_and_validator(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    rows = [{"x": 1}, {"x": 2, "y": "z"}]
    write_jsonl(path, rows)
    assert read_jsonl(path) == rows
    assert read_jsonl(path, lambda d: d["x"] * 10) == [10, 20]


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ('{"x": 1}\n{"x": \n', 2, "invalid JSON"),
        ('{"x": 1}\n{"x": 2}\n[1, 2]\n', 3, "expected a JSON object"),
        ('{"x": 1}\n\n{"x": 2}\n', 2, "blank line"),
        ('{"x": 1}\n{"y": 2}\n', 2, r"invalid record \(KeyError: 'x'\)"),
    ],
)
def test_read_jsonl_errors_name_file_and_line(
    tmp_path: Path, text: str, line: int, reason: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(text)
    with pytest.raises(DataError, match=rf"bad\.jsonl:{line}: {reason}"):
        read_jsonl(path, lambda d: d["x"])


def test_read_jsonl_validator_value_error(tmp_path: Path) -> None:
    path = tmp_path / "v.jsonl"
    path.write_text('{"x": 1}\n{"x": -1}\n')

    def positive(d: dict) -> int:
        if d["x"] < 0:
            raise ValueError("x must be >= 0")
        return d["x"]

    with pytest.raises(DataError, match=r"v\.jsonl:2: .*x must be >= 0"):
        read_jsonl(path, positive)


def test_read_jsonl_missing_or_empty(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="missing.jsonl"):
        read_jsonl(tmp_path / "missing.jsonl")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(DataError, match="empty.jsonl: empty file"):
        read_jsonl(tmp_path / "empty.jsonl")


def test_atomic_dir_gives_files_the_umask_permissions(tmp_path: Path) -> None:
    # safetensors writes its weights 0600: other users of a shared cluster could not read a checkpoint.
    with atomic_dir(tmp_path / "model") as tmp:
        (tmp / "model.safetensors").write_bytes(b"weights")
        (tmp / "model.safetensors").chmod(0o600)
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "model" / "model.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask
