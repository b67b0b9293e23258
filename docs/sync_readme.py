"""Copy committed result files into the README between include markers (GitHub renders no includes).

    <!-- include: results/tables/family.md -->
    ...the file's content, written by this script...
    <!-- /include -->

    python docs/sync_readme.py            # rewrite every include block of README.md
    python docs/sync_readme.py --check    # exit 1 naming each stale block's file; change nothing

Other markdown files may be named after the options (paths relative to the repo root). Stdlib only.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(?P<open><!-- include: (?P<path>[^ ]+) -->\n)(?P<body>.*?)(?P<close><!-- /include -->)", re.S)
COMMAND = "python docs/sync_readme.py"


def body(path: str) -> str:
    """The text a block holds: the file's content between blank lines (a table needs them)."""
    return "\n" + (REPO / path).read_text().strip("\n") + "\n\n"


def synced(text: str) -> tuple[str, list[str]]:
    """The text with every include block rewritten, and the included paths whose block was stale."""
    stale = []

    def rewrite(m: re.Match) -> str:
        new = body(m["path"])
        if m["body"] != new:
            stale.append(m["path"])
        return m["open"] + new + m["close"]

    return BLOCK.sub(rewrite, text), stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a block is stale; write nothing")
    parser.add_argument("files", nargs="*", default=["README.md"], help="markdown files (default: README.md)")
    args = parser.parse_args(argv)
    status = 0
    for name in args.files:
        target = REPO / name
        text, stale = synced(target.read_text())
        if not stale:
            continue
        if args.check:
            status = 1
            for path in stale:
                print(f"{name}: the block of {path} differs from the file; run: {COMMAND}", file=sys.stderr)
        else:
            target.write_text(text)
            print(f"{name}: rewrote the blocks of {', '.join(stale)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
