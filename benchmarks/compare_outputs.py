"""Do two runs of a study hold the same outputs? Compares every file under two results roots, byte
for byte; JSON files are compared without timings (keys `time/...`, `wall_time_seconds`, `step_seconds`), which no
two runs share. Used to check that a refactoring changes no number (CPU runs are deterministic).

    python benchmarks/compare_outputs.py OLD_ROOT NEW_ROOT [--ignore PATTERN ...]

Prints each differing or missing file and exits 1 if there is any. Logs, hidden files and model
cards (README.md in model directories: they hold a params digest) are skipped by default; weights,
data, histories, evaluations, claims and tables are compared."""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from pathlib import Path

SKIPPED = ("logs/*", "*/README.md", "*/trainer_state.pt", "*/ckpt/index.json", "*/checksums.json", "*.tsv",
           "RESULTS.md",
           "*/live/metrics.json")
TIMING_KEYS = ("wall_time_seconds", "step_seconds")


def without_timings(value):
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items()
                if not k.startswith("time/") and k not in TIMING_KEYS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def same(a: Path, b: Path) -> bool:
    if a.read_bytes() == b.read_bytes():
        return True
    if a.suffix == ".json":
        return without_timings(json.loads(a.read_text())) == without_timings(json.loads(b.read_text()))
    return False


def compare(old: Path, new: Path, ignore: tuple[str, ...]) -> tuple[int, list[str]]:
    problems, compared = [], 0
    for path in sorted(p for p in old.rglob("*") if p.is_file()):
        rel = path.relative_to(old).as_posix()
        if any(part.startswith(".") for part in Path(rel).parts) or any(fnmatch.fnmatch(rel, g) for g in ignore):
            continue
        compared += 1
        if not (new / rel).is_file():
            problems.append(f"missing: {rel}")
        elif not same(path, new / rel):
            problems.append(f"differs: {rel}")
    return compared, problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", type=Path, help="results root of the reference run")
    parser.add_argument("new", type=Path, help="results root of the run to check")
    parser.add_argument("--ignore", action="append", default=list(SKIPPED), metavar="PATTERN",
                        help="glob of root-relative paths to skip (repeatable; defaults: logs, model cards, timings)")
    args = parser.parse_args()
    compared, problems = compare(args.old, args.new, tuple(args.ignore))
    print("\n".join(problems) or f"{compared} files compared: identical (timings aside)")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
